"""The near-duplicates page of a run (docs/architecture.md#near-duplicates). Thin: the scans
are in `duplicates.py`, shared with `/api/runs/{id}/duplicates/`.

GET shows the latest scan at the threshold (queueing one when there is none); while it runs,
htmx polls the progress fragment, which asks the browser to reload once the scan is done.
POST (CSRF) starts a rescan and redirects back to the page."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.errors import ServiceError
from annotate.validation.api_duplicates import SCAN_ERROR_HIDDEN
from annotate.validation.api_explorer import EXPLORER_LEADS_ONLY
from annotate.validation.duplicates import (
    DEFAULT_MIN_SIMILARITY,
    SHOWN_GROUPS,
    duplicate_scan_for,
    duplicate_scan_latest,
    duplicate_scan_start,
    groups_for_page,
    nearest_advice,
    parse_min_similarity,
    scan_active,
    scan_percent,
)
from classifier.selectors import get_run_for_user


def _page_url(run_id: int, min_similarity: float) -> str:
    query = urlencode({"min_similarity": f"{min_similarity:g}"})
    return reverse("run-duplicates", args=[run_id]) + "?" + query


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def run_duplicates(request: HttpRequest, pk: int) -> HttpResponse:
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPLORER_LEADS_ONLY)
    raw = request.POST.get("min_similarity") if request.method == "POST" else None
    raw = raw if raw is not None else request.GET.get("min_similarity")
    context: dict = {"run": run, "min_similarity": raw or DEFAULT_MIN_SIMILARITY}
    try:
        min_similarity = parse_min_similarity(raw)
    except ServiceError as exc:
        context["error"] = str(exc)
        return render(request, "validation/duplicates.html", context, status=400)
    context["min_similarity"] = min_similarity
    try:
        if request.method == "POST":
            latest = duplicate_scan_latest(run=run, min_similarity=min_similarity)
            if latest is None or not scan_active(latest):
                duplicate_scan_start(run=run, min_similarity=min_similarity, user=request.user)
            return redirect(_page_url(run.pk, min_similarity))
        if request.htmx:  # the progress poll: never starts a scan
            scan = duplicate_scan_latest(run=run, min_similarity=min_similarity)
        else:
            scan, _ = duplicate_scan_for(run=run, min_similarity=min_similarity, user=request.user)
    except ServiceError as exc:
        context["error"] = str(exc)
        return render(request, "validation/duplicates.html", context, status=exc.status_code)
    context.update(scan=scan, active=scan is not None and scan_active(scan))
    if scan is not None:
        context["percent"] = scan_percent(scan)
        if scan.error:
            admin = role_at_least(role, Role.ADMIN)
            context["scan_error"] = scan.error if admin else SCAN_ERROR_HIDDEN
    if request.htmx:
        response = render(request, "validation/_duplicates_progress.html", context)
        if not context["active"]:
            response["HX-Refresh"] = "true"  # done: the whole page shows the groups
        return response
    if scan is not None and not context["active"]:
        groups, count = groups_for_page(scan)
        context.update(groups=groups, group_count=count, shown_max=SHOWN_GROUPS)
        context["nearest"] = nearest_advice(scan)
    return render(request, "validation/duplicates.html", context)
