"""Placeholder: filled in by the duplicates work."""

from django.http import HttpRequest, HttpResponse


def run_duplicates(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(status=501)
