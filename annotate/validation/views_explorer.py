"""The run explorer and the item page (docs/architecture.md#explorer)."""

from django.http import Http404, HttpRequest, HttpResponse


def run_items(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404("not built yet")


def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    raise Http404("not built yet")
