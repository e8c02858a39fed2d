"""Placeholder: filled in by the suspects work (docs/architecture.md#suspects)."""

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


@api_view(["GET", "POST"])
def run_suspects(request: Request, pk: int) -> Response:
    return Response(status=501)
