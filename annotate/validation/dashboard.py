"""The live dashboard page of a sample, its poller and its CSV downloads.

Live updates: the page holds a tiny poller element that htmx asks every second for
`poll/?v=<version>`. The version is a one-query fingerprint of the verdicts; while it is
unchanged the answer is an empty 204 (htmx swaps nothing). When it changed, the answer is the
poller with the new version plus the tables region as an out-of-band swap; dashboard.js then
updates the charts in place, so nothing reloads and the scroll position stays.
"""

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.views.decorators.http import require_GET

from annotate.csvexport import write_csv
from annotate.validation import metrics


def _context(
    request: HttpRequest, sample, step: float, version: str | None = None
) -> dict[str, Any]:
    data = metrics.dashboard_build(sample=sample, step=step)
    th = data["thresholds"]
    charts = {
        "thresholds": [
            {k: r[k] for k in ("threshold", "hit_rate", "error_rate", "ratio", "ratio_low",
                               "ratio_high")}
            for r in th["rows"]
        ],
        "classes": [
            {k: r[k] for k in ("label", "accuracy", "accuracy_low", "accuracy_high")}
            for r in data["classes"]["rows"]
        ],
        "histogram": th["histogram"],
    }  # fmt: skip
    return {
        "sample": sample,
        "step": step,
        "version": version or metrics.sample_version(sample=sample),
        "charts": charts,
        **data,
    }


def _step_or_400(request: HttpRequest) -> float | HttpResponse:
    try:
        return metrics.parse_step(request.GET.get("step"))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))


@login_required
@require_GET
def sample_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    sample = metrics.get_sample_for_lead(request.user, pk)
    step = _step_or_400(request)
    if isinstance(step, HttpResponse):
        return step
    return render(request, "validation/dashboard.html", _context(request, sample, step))


@require_GET
def sample_dashboard_poll(request: HttpRequest, pk: int) -> HttpResponse:
    """204 while the verdicts are unchanged (one aggregate query), else the fresh tables."""
    if not request.user.is_authenticated:
        # Session expired: send the whole page to the login form instead of swapping the login
        # page into the poller.
        response = HttpResponse(status=204)
        page = reverse("sample-dashboard", args=[pk])
        login = resolve_url(settings.LOGIN_URL)
        response["HX-Redirect"] = f"{login}?{urlencode({'next': page})}"
        return response
    sample = metrics.get_sample_for_lead(request.user, pk)
    step = _step_or_400(request)
    if isinstance(step, HttpResponse):
        return step
    version = metrics.sample_version(sample=sample)
    if request.GET.get("v") == version:
        return HttpResponse(status=204)
    context = _context(request, sample, step, version)
    context["oob"] = True
    return render(request, "validation/_dash_poll.html", context)


CSV_TABLES = {
    "thresholds": (metrics.THRESHOLD_COLUMNS, lambda d: d["thresholds"]["rows"]),
    "classes": (metrics.CLASS_COLUMNS, lambda d: d["classes"]["rows"]),
    "agreement": (metrics.PAIR_COLUMNS, lambda d: d["agreement"]["pairs"]),
    "annotators": (metrics.ANNOTATOR_COLUMNS, lambda d: d["progress"]["annotators"]),
    "labels": (metrics.LABEL_PROGRESS_COLUMNS, lambda d: d["progress"]["labels"]),
    "scores": (metrics.SCORE_COLUMNS, lambda d: d["scores"]["rows"]),
    "annotator-figures": (metrics.ANNOTATOR_FIGURE_COLUMNS, lambda d: d["annotators"]["rows"]),
}


@login_required
@require_GET
def sample_dashboard_csv(request: HttpRequest, pk: int, table: str) -> HttpResponse:
    """Any dashboard table as CSV (the same rows as the page and the API)."""
    sample = metrics.get_sample_for_lead(request.user, pk)
    if table not in CSV_TABLES:
        raise Http404("No such table")
    step = _step_or_400(request)
    if isinstance(step, HttpResponse):
        return step
    columns, pick = CSV_TABLES[table]
    rows = pick(metrics.dashboard_build(sample=sample, step=step))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sample-{sample.pk}-{table}.csv"'
    write_csv(response, columns, rows)  # label and user names never run as formulas
    return response
