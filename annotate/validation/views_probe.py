"""The run page's probe card (docs/architecture.md#probe): its htmx poll while a probe trains,
and the "Train a probe from verdicts" form (leads and admins). The card's context comes from
`classifier.views.run_probe_context`; the form lives here because the verdicts do."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.errors import Conflict, FieldInvalid
from annotate.validation.api_probe import PROBE_LEADS_ONLY
from annotate.validation.probing import DEFAULT_FOLDS, MAX_FOLDS, MIN_FOLDS, probe_request
from annotate.validation.views import run_page_context
from classifier.selectors import get_run_for_user
from classifier.views import run_probe_context

FOLDS_PLEASE = f"Folds must be a whole number from {MIN_FOLDS} to {MAX_FOLDS}."


@login_required
@require_http_methods(["GET", "POST"])
def run_probe(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the probe card (htmx polls it while a probe trains; once the probe ends the page
    reloads, so the status card and charts show the finished run). POST: queue a probe and go
    to its page; a refusal comes back on the run page with the reason (409)."""
    run, role = get_run_for_user(request.user, pk)
    if request.method == "GET":
        if not request.htmx:
            return redirect("run-detail", pk=run.pk)
        card = run_probe_context(run=run, role=role)
        response = render(request, "classifier/_run_probe.html", {"run": run, "probe_card": card})
        if not card["active"]:
            response["HX-Refresh"] = "true"
        return response
    require_role(role, Role.LEAD, PROBE_LEADS_ONLY)
    raw = request.POST.get("folds", "").strip()
    try:
        folds = int(raw) if raw else DEFAULT_FOLDS
        probe_run = probe_request(run=run, folds=folds, created_by=request.user)
    except (ValueError, FieldInvalid, Conflict) as exc:
        refused = isinstance(exc, Conflict)
        error = str(exc) if refused else FOLDS_PLEASE
        context = run_page_context(run, role, probe_error=error, probe_values={"folds": raw})
        return render(
            request, "classifier/run_detail.html", context, status=409 if refused else 400
        )
    messages.success(request, f"Probe run #{probe_run.pk} of run #{run.pk} is {probe_run.status}.")
    return redirect("run-detail", pk=probe_run.pk)
