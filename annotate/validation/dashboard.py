"""The live dashboard page of a sample, its poller and its CSV downloads.

Live updates: the page holds a tiny poller element that htmx asks every second for
`poll/?v=<version>`. The version is a one-query fingerprint of the verdicts; while it is
unchanged the answer is an empty 204 (htmx swaps nothing). When it changed, the answer is the
poller with the new version plus the tables region as an out-of-band swap; dashboard.js then
updates the charts in place, so nothing reloads and the scroll position stays.

The headline reads the threshold table as a trade-off (docs/architecture.md#dashboard-reading):
at θ, precision = hits(θ) / classified(θ) over the sample, with its 95 % Wilson interval, and
coverage = the run's items with p ≥ θ / all its predicted items (`run_coverage`).
"""

from datetime import datetime
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
from classifier.selectors import run_coverage_at

PERCENT_KEYS = ("precision", "precision_low", "precision_high", "coverage")
# How the tables are ordered, one rule for all: thresholds ascending; labels by how often the
# run predicts them (descending), then key; annotators by name.


def headline(
    *, thresholds: dict[str, Any], coverage: list[dict], theta: float | None
) -> dict[str, Any]:
    """Precision (with its Wilson interval, from the threshold table) and coverage at every θ,
    and the row of θ (the best threshold when None, else the grid's 0.5 or nearest)."""
    total = coverage[0]["classified"] if coverage else 0  # θ = 0 keeps every prediction
    rows = []
    for row, cov in zip(thresholds["rows"], coverage, strict=True):
        share = cov["classified"] / total if total else None
        rows.append(
            {
                "threshold": row["threshold"],
                "precision": row["precision"],
                "precision_low": row["precision_low"],
                "precision_high": row["precision_high"],
                "judged": row["classified"],  # sample items with a verdict and p >= θ
                "kept": cov["classified"],  # the run's items with p >= θ
                "coverage": share,
            }
        )
    if theta is None:
        theta = thresholds["best_threshold"]
    if theta is None:
        theta = 0.5
    chosen = min(rows, key=lambda r: (abs(r["threshold"] - theta), r["threshold"]))
    return {"rows": rows, "chosen": _percents(chosen), "total": total}


def _percents(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its shares as whole percents, for the sentence people read."""
    percent = {k: None if row[k] is None else round(100 * row[k]) for k in PERCENT_KEYS}
    return {**row, **{f"{k}_percent": v for k, v in percent.items()}}


def _sorted_tables(data: dict[str, Any]) -> dict[str, Any]:
    """The label progress table in the per-class table's order (frequency, then key)."""
    order = {row["label"]: i for i, row in enumerate(data["classes"]["rows"])}
    data["progress"]["labels"].sort(key=lambda row: order.get(row["label"], len(order)))
    return data


def _context(
    request: HttpRequest, sample, step: float, theta: float | None, version: str | None = None
) -> dict[str, Any]:
    data = _sorted_tables(metrics.dashboard_build(sample=sample, step=step))
    th = data["thresholds"]
    grid = [row["threshold"] for row in th["rows"]]
    head = headline(
        thresholds=th, coverage=run_coverage_at(run=sample.run, thresholds=grid), theta=theta
    )
    for row in data["progress"]["annotators"]:
        row["last_at"] = datetime.fromisoformat(row["last"])
    charts = {
        "headline": head["rows"],
        "chosen": head["chosen"]["threshold"],
        "thresholds": [
            {k: r[k] for k in ("threshold", "hit_rate", "error_rate", "ratio", "ratio_low",
                               "ratio_high")}
            for r in th["rows"]
        ],
        "classes": [
            {k: r[k] for k in ("label", "label_key", "accuracy", "accuracy_low",
                               "accuracy_high")}
            for r in data["classes"]["rows"]
        ],
        "histogram": th["histogram"],
    }  # fmt: skip
    return {
        "sample": sample,
        "run": sample.run,
        "step": step,
        "theta": theta,
        "headline": head,
        "version": version or metrics.sample_version(sample=sample),
        "charts": charts,
        **data,
    }


def _step_or_400(request: HttpRequest) -> float | HttpResponse:
    try:
        return metrics.parse_step(request.GET.get("step"))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))


def _theta_or_400(request: HttpRequest) -> float | HttpResponse | None:
    """`?theta=`: the threshold the headline reads (None: the best threshold)."""
    value = request.GET.get("theta")
    if value in (None, ""):
        return None
    try:
        theta = float(value)
    except ValueError:
        theta = -1.0
    if not 0 <= theta <= 1:  # also NaN
        return HttpResponseBadRequest("theta must be a number between 0 and 1")
    return theta


@login_required
@require_GET
def sample_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    sample = metrics.get_sample_for_lead(request.user, pk)
    step, theta = _step_or_400(request), _theta_or_400(request)
    for bad in (step, theta):
        if isinstance(bad, HttpResponse):
            return bad
    context = _context(request, sample, step, theta)
    return render(request, "validation/dashboard.html", context)


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
    step, theta = _step_or_400(request), _theta_or_400(request)
    for bad in (step, theta):
        if isinstance(bad, HttpResponse):
            return bad
    version = metrics.sample_version(sample=sample)
    if request.GET.get("v") == version:
        return HttpResponse(status=204)
    context = _context(request, sample, step, theta, version)
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
    rows = pick(_sorted_tables(metrics.dashboard_build(sample=sample, step=step)))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sample-{sample.pk}-{table}.csv"'
    write_csv(response, columns, rows)  # label and user names never run as formulas
    return response
