"""Pages of the annotation workflow: the run page with its samples, the annotate page and its
fragments (htmx / fetch), the sample form of the run page, and closing or reopening a
sample from the run page or the dashboard. Thin: assignment, verdicts and
sampling live in their modules; the page saves verdicts through the same REST endpoint as any
script (`POST /api/verdicts/`)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.rest import id_param
from annotate.taxonomies.models import Label
from annotate.validation.api import LEADS_ONLY, next_item_json
from annotate.validation.assignment import (
    annotator_progress,
    sample_item_next,
    sample_progress,
    samples_progress,
)
from annotate.validation.models import Sample, SampleItem
from annotate.validation.sampling import SampleError, sample_draw
from annotate.validation.selectors import get_sample_for_user
from annotate.validation.services import sample_set_status
from classifier.scoring import run_coverage, run_label_distribution
from classifier.selectors import get_run_for_user
from classifier.views import run_status_context

NUMBERS_PLEASE = (
    "Please enter numbers: whole numbers for labels, items, seed and verdicts, decimals from "
    "0 to 1 for the shares."
)
ITEM_RELATED = ("sample__run__taxonomy", "prediction__item", "prediction__label")


def _exclude_ids(request: HttpRequest) -> list[int]:
    ids = (id_param(x) for x in request.GET.get("exclude", "").split(","))
    return [pk for pk in ids if pk is not None][:50]


def _item_context(item: SampleItem | None) -> dict:
    if item is None:
        return {"item": None}
    item = SampleItem.objects.select_related(*ITEM_RELATED).get(pk=item.pk)
    return {"item": next_item_json(item)}


def _progress_context(sample, user) -> dict:
    return {
        "sample": sample,
        "mine": annotator_progress(sample=sample, annotator=user),
        "progress": sample_progress(sample=sample),
    }


@login_required
@require_GET
def annotate_page(request: HttpRequest, pk: int) -> HttpResponse:
    sample, _ = get_sample_for_user(request.user, pk)
    item = sample_item_next(sample=sample, annotator=request.user)
    context = {**_progress_context(sample, request.user), **_item_context(item)}
    return render(request, "validation/annotate.html", context)


@login_required
@require_GET
def annotate_item(request: HttpRequest, pk: int) -> HttpResponse:
    """One item as an HTML fragment: the caller's next one (`?exclude=` the ones they hold), or
    `?item=ID` after an undo. 204 when nothing is left for the caller."""
    sample, _ = get_sample_for_user(request.user, pk)
    if request.GET.get("item", ""):
        item_id = id_param(request.GET["item"])
        item = SampleItem.objects.filter(sample=sample, pk=item_id).first() if item_id else None
        if item is None:
            raise Http404("No such item in this sample")
    else:
        exclude = _exclude_ids(request)
        item = sample_item_next(sample=sample, annotator=request.user, exclude=exclude)
    if item is None:
        return HttpResponse(status=204)
    return render(request, "validation/_annotate_item.html", _item_context(item))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def annotate_progress(request: HttpRequest, pk: int) -> HttpResponse:
    sample, _ = get_sample_for_user(request.user, pk)
    return render(
        request, "validation/_annotate_progress.html", _progress_context(sample, request.user)
    )


@login_required
@require_GET
def label_search(request: HttpRequest, pk: int) -> HttpResponse:
    """Type-ahead over the run's taxonomy for a corrected label (at most 8 matches)."""
    sample, _ = get_sample_for_user(request.user, pk)
    query = request.GET.get("q", "").strip()[:100]
    labels = Label.objects.none()
    if query:
        labels = Label.objects.filter(taxonomy_id=sample.run.taxonomy_id).filter(
            name__icontains=query
        ) | Label.objects.filter(taxonomy_id=sample.run.taxonomy_id, key__icontains=query)
        labels = labels.order_by("name")[:8]
    return render(request, "validation/_label_results.html", {"labels": labels, "q": query})


def run_samples_card(*, run, role: str) -> dict:
    """What the run page's sample card (`validation/_run_samples.html`) shows: the run's
    samples with progress, and the form for leads."""
    samples = list(run.samples.select_related("created_by"))
    progress = samples_progress(samples=samples)
    for sample in samples:
        sample.progress = progress[sample.pk]
    return {"samples": samples, "is_lead": role_at_least(role, Role.LEAD)}


def run_page_context(run, role: str, **card_extra) -> dict:
    """The whole run page's context; `card_extra` (an error, the submitted sample form) goes
    to the sample card."""
    context = run_status_context(run=run, role=role)
    coverage = run_coverage(run=run)
    labels = run_label_distribution(run=run, limit=20)
    context.update(
        coverage=coverage,
        labels=labels,
        card=run_samples_card(run=run, role=role),
        chart={
            "labels": [row["name"] for row in labels],
            "counts": [row["count"] for row in labels],
            "thresholds": [row["threshold"] for row in coverage],
            "percents": [row["percent"] for row in coverage],
        },
        **card_extra,
    )
    return context


@login_required
@require_GET
@vary_on_headers("HX-Request")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The run page: status (polled by htmx while the run is active), the run's samples,
    label distribution and coverage table."""
    run, role = get_run_for_user(request.user, pk)
    if request.htmx:
        return render(
            request, "classifier/_run_status.html", run_status_context(run=run, role=role)
        )
    return render(request, "classifier/run_detail.html", run_page_context(run, role))


@login_required
@require_POST
def run_sample_create(request: HttpRequest, pk: int) -> HttpResponse:
    """The sample form of the run page (leads and admins): htmx swaps the card, a plain POST
    redirects back to the run page. A refused form comes back with the values as typed."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, "Only leads and admins of this dataset may draw samples.")
    error = None
    try:
        options = {
            "classes": int(request.POST.get("classes") or 10),
            "per_class": int(request.POST.get("per_class") or 100),
            "redundancy": int(request.POST.get("redundancy") or 1),
            "overlap": float(request.POST.get("overlap") or 0.1),
            "min_probability": float(request.POST.get("min_probability") or 0),
            "seed": int(request.POST["seed"]) if request.POST.get("seed") else None,
            "exclude_previous": bool(request.POST.get("exclude_previous")),
            "blind": bool(request.POST.get("blind")),
            "strategy": request.POST.get("strategy") or Sample.Strategy.BALANCED,
        }
        sample = sample_draw(run=run, created_by=request.user, **options)
    except (ValueError, SampleError) as exc:
        error = str(exc) if isinstance(exc, SampleError) else NUMBERS_PLEASE
    if error is None and not request.htmx:
        messages.success(request, f"Sample {sample.pk} drawn ({sample.get_strategy_display()}).")
        return redirect("run-detail", pk=run.pk)
    values = request.POST if error else None
    if not request.htmx:
        context = run_page_context(run, role, error=error, values=values)
        return render(request, "classifier/run_detail.html", context, status=400)
    card = run_samples_card(run=run, role=role)
    return render(
        request,
        "validation/_run_samples.html",
        {"run": run, "card": card, "error": error, "values": values},
    )


@login_required
@require_POST
def sample_status_page(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Close or reopen a sample from the run page's sample list (`from=run`: htmx swaps that
    card) or from its dashboard (htmx swaps the status box). Leads and admins; the same
    service as `POST /api/samples/{id}/close/` and `reopen/`."""
    sample, role = get_sample_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    status = Sample.Status.CLOSED if action == "close" else Sample.Status.OPEN
    sample = sample_set_status(sample=sample, status=status)
    from_run = request.POST.get("from") == "run"
    if not request.htmx:
        messages.success(request, f"Sample {sample.pk} is {sample.status}.")
        return redirect(
            "run-detail" if from_run else "sample-dashboard",
            pk=sample.run_id if from_run else sample.pk,
        )
    if from_run:
        card = run_samples_card(run=sample.run, role=role)
        return render(request, "validation/_run_samples.html", {"run": sample.run, "card": card})
    return render(request, "validation/_sample_status.html", {"sample": sample})
