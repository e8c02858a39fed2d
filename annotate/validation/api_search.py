"""Placeholder: filled in by the search work (docs/architecture.md#search)."""

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


@api_view(["GET", "POST"])
def run_search(request: Request, pk: int) -> Response:
    return Response(status=501)
