"""The annotator's path: the home page's inbox and the history of one's own verdicts."""

from django.http import Http404, HttpRequest, HttpResponse

from annotate.datasets.views import dataset_list


def home(request: HttpRequest) -> HttpResponse:
    return dataset_list(request)


def verdict_history(request: HttpRequest) -> HttpResponse:
    raise Http404("not built yet")
