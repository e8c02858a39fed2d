"""Placeholder: filled in by the suspects work."""

from django.http import HttpRequest, HttpResponse


def run_suspects(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(status=501)
