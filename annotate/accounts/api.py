"""API token endpoint: a token for a username and password, with the login lockout."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.accounts.lockout import cooloff_minutes, lockout_message
from annotate.rest import JSONParser


class ObtainTokenView(ObtainAuthToken):
    """POST username and password, get `{"token": ...}`; 429 while the username is locked out."""

    # DRF's form encodings, and the API's JSON parser (JSON nested too deeply answers 400).
    parser_classes = (FormParser, MultiPartParser, JSONParser)

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("TokenResponse", {"token": serializers.CharField()}),
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Too many failed logins: the username is locked."),
        },
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # axes marks the request it was given (DRF's) when the username is locked out.
            if getattr(request, "axes_locked_out", False):
                raise Throttled(
                    wait=cooloff_minutes(request) * 60, detail=lockout_message(request)
                ) from None
            raise
