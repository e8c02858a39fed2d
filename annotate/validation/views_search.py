"""Placeholder: filled in by the search work."""

from django.http import HttpRequest, HttpResponse


def run_search(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(status=501)
