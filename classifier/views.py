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
