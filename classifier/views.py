"""Pages: the run page `/runs/{id}/` and the console's run panel (`/console/runs/...`).
Thin: selectors fetch (404 across datasets), services change, scoring computes."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from annotate.accounts.roles import has_role
from annotate.console.views import admin_required
from annotate.datasets.models import Role
from classifier.forms import RunForm
from classifier.models import ClassificationRun
from classifier.scoring import run_coverage, run_label_distribution
from classifier.selectors import (
    get_run_for_user,
    run_progress,
    runs_for_user,
    runs_with_progress,
)
from classifier.services import run_cancel, run_create, run_resume

CONSOLE_RUNS = 20


def _status_context(request: HttpRequest, run: ClassificationRun) -> dict:
    return {
        "run": run,
        "progress": run_progress(run=run),
        "can_manage": has_role(request.user, run.dataset, Role.ADMIN),
        "active": run.status not in ClassificationRun.TERMINAL,
    }


@login_required
@vary_on_headers("HX-Request")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    context = _status_context(request, run)
    if request.htmx:
        return render(request, "classifier/_run_status.html", context)
    coverage = run_coverage(run=run)
    labels = run_label_distribution(run=run, limit=20)
    context.update(
        coverage=coverage,
        labels=labels,
        chart={
            "labels": [row["name"] for row in labels],
            "counts": [row["count"] for row in labels],
            "thresholds": [row["threshold"] for row in coverage],
            "percents": [row["percent"] for row in coverage],
        },
    )
    return render(request, "classifier/run_detail.html", context)


@login_required
@require_POST
def run_cancel_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    if not has_role(request.user, run.dataset, Role.ADMIN):
        raise PermissionDenied("Only admins cancel runs")
    run = run_cancel(run=run)
    if request.htmx:
        return render(request, "classifier/_run_status.html", _status_context(request, run))
    return redirect(f"/runs/{run.pk}/")


@login_required
@require_POST
def run_resume_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    if not has_role(request.user, run.dataset, Role.ADMIN):
        raise PermissionDenied("Only admins resume runs")
    try:
        run = run_resume(run=run)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect(f"/runs/{run.pk}/")


def _console_rows(request: HttpRequest) -> list[dict]:
    runs = runs_for_user(request.user).select_related("dataset", "taxonomy").order_by("-id")
    return runs_with_progress(runs[:CONSOLE_RUNS])


def _console_panel(request: HttpRequest, form: RunForm | None = None, status: int = 200):
    context = {"form": form or RunForm(user=request.user), "rows": _console_rows(request)}
    template = "classifier/_console_panel.html" if request.htmx else "classifier/console_runs.html"
    return render(request, template, context, status=status)


@admin_required
@vary_on_headers("HX-Request")
def console_runs(request: HttpRequest) -> HttpResponse:
    """The console's run panel: loaded by htmx into /console/, or a page of its own."""
    return _console_panel(request)


@admin_required
def console_run_list(request: HttpRequest) -> HttpResponse:
    """The live run list (polled by htmx every 2 s)."""
    return render(request, "classifier/_console_run_rows.html", {"rows": _console_rows(request)})


@admin_required
@require_POST
def console_run_start(request: HttpRequest) -> HttpResponse:
    form = RunForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = run_create(
                dataset=data["dataset"], taxonomy=data["taxonomy"], model=data["model"],
                weights=data["weights"], ensemble=data["ensemble"], w_img=data["w_img"],
                w_txt=data["w_txt"], condition_threshold=data["condition_threshold"],
                templates=data["templates"], name=data["name"], created_by=request.user,
            )  # fmt: skip
        except ValidationError as exc:
            for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Run {run.pk} queued ({run.item_count} items).")
            if not request.htmx:
                return redirect("/console/")
            return _console_panel(request)
    if not request.htmx:
        return _console_panel(request, form, status=400)
    return _console_panel(request, form)


@admin_required
@require_POST
def console_run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run_cancel(run=get_run_for_user(request.user, pk))
    if request.htmx:
        return console_run_list(request)
    return redirect("/console/")
