"""Run state changes from the run page (cancel, resume) and the run status card they and the
run page render. The run page itself lives with validation (it lists the run's samples).
Thin: selectors fetch (404 across datasets), services change."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.errors import Conflict
from classifier.models import ClassificationRun
from classifier.selectors import RUNS_ADMINS_ONLY, get_run_for_user, run_error_for, run_progress
from classifier.services import run_cancel, run_resume


def run_status_context(*, run: ClassificationRun, role: str) -> dict:
    """What the run status card (`classifier/_run_status.html`) shows."""
    return {
        "run": run,
        "progress": run_progress(run=run),
        "error": run_error_for(run, role),
        "can_manage": role_at_least(role, Role.ADMIN),
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
