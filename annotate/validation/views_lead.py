"""The lead's pages of a sample: disagreements with adjudication, and per-annotator figures
(docs/architecture.md#adjudication)."""

from django.http import Http404, HttpRequest, HttpResponse


def sample_disagreements(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404("not built yet")


def sample_annotators(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404("not built yet")
