"""The answer for paths under /api/ that name no endpoint (the last API URL pattern)."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def api_not_found(request: Request) -> Response:
    """A JSON 404, as the endpoints answer (Django's own 404 is an HTML page)."""
    raise NotFound()
