"""Placeholder: filled in by the duplicates work (docs/architecture.md#duplicates)."""

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


@api_view(["GET", "POST"])
def run_duplicates(request: Request, pk: int) -> Response:
    return Response(status=501)
