"""The admin console (global admins only): imports, members, and the run panel."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from annotate.console.forms import DatasetImportForm, MembershipForm, TaxonomyImportForm
from annotate.datasets.access import admin_required, membership_set
from annotate.datasets.import_jobs import import_job_start
from annotate.datasets.models import Dataset, ImportJob, Membership
from annotate.taxonomies.importers import TaxonomyImportError, taxonomy_import
from annotate.taxonomies.models import Taxonomy
from classifier.forms import RunForm
from classifier.selectors import get_run_for_user, runs_for_user, runs_with_progress
from classifier.services import run_cancel, run_create

CONSOLE_RUNS = 20
CONSOLE_IMPORT_JOBS = 10


def _import_jobs() -> dict:
    jobs = list(ImportJob.objects.select_related("dataset", "created_by")[:CONSOLE_IMPORT_JOBS])
    return {"jobs": jobs, "jobs_active": any(job.status in ImportJob.ACTIVE for job in jobs)}


def _render_console(request: HttpRequest, status: int = 200, **forms) -> HttpResponse:
    context = {
        **_import_jobs(),
        "dataset_form": forms.get("dataset_form") or DatasetImportForm(),
        "taxonomy_form": forms.get("taxonomy_form") or TaxonomyImportForm(),
        "membership_form": forms.get("membership_form") or MembershipForm(),
        "datasets": Dataset.objects.annotate(item_count=Count("items")).prefetch_related(
            "memberships__user"
        ),
        "taxonomies": Taxonomy.objects.annotate(label_count=Count("labels")),
    }
    return render(request, "console/console.html", context, status=status)


@admin_required
def console(request: HttpRequest) -> HttpResponse:
    return _render_console(request)


@require_POST
@admin_required
def import_dataset(request: HttpRequest) -> HttpResponse:
    """Queue the import (a worker runs it: docs/architecture.md#import-jobs); bad input is
    refused here, with the form."""
    form = DatasetImportForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            job = import_job_start(
                name=data["name"], folder=data["folder"], captions=str(data["captions"] or ""),
                created_by=request.user,
            )  # fmt: skip
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Import of {job.dataset_name} queued (job {job.pk}).")
            return redirect(reverse("console") + "#console-import-jobs")
    return _render_console(request, status=400, dataset_form=form)


@admin_required
def import_job_list(request: HttpRequest) -> HttpResponse:
    """The import jobs and their progress (polled by htmx every second while one is active)."""
    return render(request, "console/_import_jobs.html", _import_jobs())


@require_POST
@admin_required
def import_taxonomy(request: HttpRequest) -> HttpResponse:
    form = TaxonomyImportForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = taxonomy_import(
                name=data["name"],
                path=data["file"],
                text=data["upload"].read() if data["upload"] else None,
                template=data["template"],
                indoor_outdoor=data["indoor_outdoor"],
            )
        except TaxonomyImportError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Imported {result.summary()}")
            for warning in result.warnings:
                messages.warning(request, warning)
            return redirect("console")
    return _render_console(request, status=400, taxonomy_form=form)


@require_POST
@admin_required
def member_set(request: HttpRequest) -> HttpResponse:
    form = MembershipForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        membership = membership_set(
            dataset=data["dataset"], user=data["username"], role=data["role"]
        )
        messages.success(
            request, f"{membership.user} is now {membership.role} on {membership.dataset}"
        )
        return redirect("console")
    return _render_console(request, status=400, membership_form=form)


@require_http_methods(["GET", "POST"])
@admin_required
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation step (without JavaScript; with it, htmx asks in a dialog and
    posts). POST: remove the membership."""
    membership = get_object_or_404(Membership.objects.select_related("user", "dataset"), pk=pk)
    if request.method == "GET":
        return render(request, "console/member_remove.html", {"membership": membership})
    membership.delete()
    messages.success(request, f"Removed {membership.user} from {membership.dataset}")
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": reverse("console")})
    return redirect("console")


# ---------------------------------------------------------------- run panel


def _console_rows(request: HttpRequest) -> list[dict]:
    runs = runs_for_user(request.user).select_related("dataset", "taxonomy").order_by("-id")
    return runs_with_progress(runs[:CONSOLE_RUNS])


def _console_panel(request: HttpRequest, form: RunForm | None = None, status: int = 200):
    context = {"form": form or RunForm(user=request.user), "rows": _console_rows(request)}
    template = "console/_console_panel.html" if request.htmx else "console/console_runs.html"
    return render(request, template, context, status=status)


@admin_required
@vary_on_headers("HX-Request")
def console_runs(request: HttpRequest) -> HttpResponse:
    """The console's run panel: loaded by htmx into /console/, or a page of its own."""
    return _console_panel(request)


@admin_required
def console_run_list(request: HttpRequest) -> HttpResponse:
    """The live run list (polled by htmx every 2 s)."""
    return render(request, "console/_console_run_rows.html", {"rows": _console_rows(request)})


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
                return redirect("console")
            return _console_panel(request)
    if not request.htmx:
        return _console_panel(request, form, status=400)
    return _console_panel(request, form)


@admin_required
@require_POST
def console_run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run, _ = get_run_for_user(request.user, pk)
    run_cancel(run=run)
    if request.htmx:
        return console_run_list(request)
    return redirect("console")
