"""Run state changes from the run page (cancel, resume, hide, delete) and the run status card
they and the run page render. The run page itself lives with validation (it lists the run's
samples). Thin: selectors fetch (404 across datasets), services change."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.errors import Conflict
from classifier.models import ClassificationRun
from classifier.selectors import (
    RUNS_ADMINS_ONLY,
    RUNS_DELETE_ADMINS_ONLY,
    RUNS_HIDE_LEADS_ONLY,
    get_run_for_user,
    run_dependents,
    run_error_for,
    run_progress,
)
from classifier.services import run_cancel, run_delete, run_hide, run_resume


def run_status_context(*, run: ClassificationRun, role: str) -> dict:
    """What the run status card (`classifier/_run_status.html`) shows."""
    return {
        "run": run,
        "progress": run_progress(run=run),
        "error": run_error_for(run, role),
        "can_manage": role_at_least(role, Role.ADMIN),
        "can_hide": role_at_least(role, Role.LEAD),
        "active": run.status not in ClassificationRun.TERMINAL,
        "probe_card": run_probe_context(run=run, role=role),
    }


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def probe_figures(figures: dict) -> dict:
    """A succeeded probe's figures as its card shows them: the accuracies in percent, and
    what McNemar's p says in words (docs/architecture.md#probe)."""
    if not figures.get("judged_items"):
        return {**figures, "rows": [], "finding": ""}
    rows = [
        {
            "name": name,
            "accuracy": _percent(figures.get(f"{prefix}_accuracy")),
            "low": _percent(figures.get(f"{prefix}_low")),
            "high": _percent(figures.get(f"{prefix}_high")),
            "only": figures.get(only),
        }
        for name, prefix, only in (
            ("Probe (cross-validated)", "cross_validated", "probe_only"),
            ("Parent (zero-shot)", "zero_shot", "zero_shot_only"),
        )
    ]
    p = figures.get("mcnemar_p")
    better = "probe" if rows[0]["accuracy"] > rows[1]["accuracy"] else "parent"
    if p is not None and p < 0.05:
        finding = f"The {better} is better on these items; chance alone rarely gives such a gap."
    else:
        finding = "No clear difference on these items: the gap could be chance."
    return {**figures, "rows": rows, "finding": finding}


def run_probe_context(*, run: ClassificationRun, role: str) -> dict:
    """What the run page's probe card (`classifier/_run_probe.html`) shows: a probe run's
    progress and figures, or the probes learned from this run and whether the caller may
    train one (leads and admins, of a zero-shot run: a probe or an import has no zero-shot
    head to start from). The form posts to validation, which holds the verdicts."""
    terminal = ClassificationRun.TERMINAL
    is_probe = run.source == ClassificationRun.Source.PROBE
    probes = [] if is_probe else list(run.probes.order_by("-id"))
    for probe in probes:
        probe.figures = probe_figures(probe.probe or {})
    can_probe = (
        not is_probe
        and run.source != ClassificationRun.Source.IMPORT
        and role_at_least(role, Role.LEAD)
    )
    return {
        "is_probe": is_probe,
        "figures": probe_figures(run.probe or {}) if is_probe else {},
        "progress": (run.probe or {}).get("progress") or {},
        "active": (run.status not in terminal)
        if is_probe
        else any(probe.status not in terminal for probe in probes),
        "probes": probes,
        "can_probe": can_probe,
        "finished": run.status == ClassificationRun.Status.SUCCEEDED,
        "shown": is_probe or bool(probes) or can_probe,
    }


@login_required
@require_POST
def run_cancel_page(request: HttpRequest, pk: int) -> HttpResponse:
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.ADMIN, RUNS_ADMINS_ONLY)
    run = run_cancel(run=run)
    if request.htmx:
        return render(
            request, "classifier/_run_status.html", run_status_context(run=run, role=role)
        )
    return redirect("run-detail", pk=run.pk)


@login_required
@require_POST
def run_resume_page(request: HttpRequest, pk: int) -> HttpResponse:
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.ADMIN, RUNS_ADMINS_ONLY)
    try:
        run = run_resume(run=run)
    except Conflict as exc:
        messages.error(request, str(exc))
    return redirect("run-detail", pk=run.pk)


def _back(request: HttpRequest, fallback: str) -> str:
    """Where a plain form POST goes back to: its `next` field when it is a page of this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


@login_required
@require_POST
def run_hide_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Hide or unhide (`hidden` = 1 or 0) from the run page (htmx swaps the status card) or
    the dataset page's run list (back to `next`). Leads and admins."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, RUNS_HIDE_LEADS_ONLY)
    run = run_hide(run=run, hidden=request.POST.get("hidden", "1") != "0")
    if request.htmx:
        return render(
            request, "classifier/_run_status.html", run_status_context(run=run, role=role)
        )
    state = "hidden: it left the run lists" if run.hidden else "shown in the run lists again"
    messages.success(request, f"Run #{run.pk} is {state}.")
    return redirect(_back(request, fallback=reverse("run-detail", args=[run.pk])))


@login_required
@require_http_methods(["GET", "POST"])
def run_delete_page(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what deleting the run would delete, and a button to confirm. POST: delete it and
    go to its dataset's page. Admins of the dataset; refused while the run is active."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.ADMIN, RUNS_DELETE_ADMINS_ONLY)
    active = run.status not in ClassificationRun.TERMINAL
    if request.method == "POST" and not active:
        try:
            deleted = run_delete(run=run)
        except Conflict as exc:  # it was resumed between the page and the click
            messages.error(request, str(exc))
            return redirect("run-detail", pk=run.pk)
        messages.success(
            request,
            f"Deleted run #{pk} with {deleted['predictions']} predictions, "
            f"{deleted['samples']} samples and {deleted['verdicts']} verdicts.",
        )
        return redirect("dataset-detail", pk=run.dataset_id)
    context = {"run": run, "dependents": run_dependents(run=run), "active": active}
    status = 409 if request.method == "POST" else 200  # POST here: the run is active
    return render(request, "classifier/run_delete.html", context, status=status)
