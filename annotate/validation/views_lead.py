"""The lead's pages of a sample: disagreements with adjudication, and per-annotator figures
(docs/architecture.md#adjudication). Leads and admins of the sample's dataset; annotators get
403 (live results would bias them), everybody else 404.

Thin: the list is `metrics.disagreements`, the figures `metrics.annotators_table`, decisions
go through `services.adjudication_record` / `adjudication_withdraw`, the same functions as
`POST /api/adjudications/`. The decision forms post to the page itself with htmx and get back
the item's card; without JavaScript they redirect back to the page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from annotate.errors import ServiceError
from annotate.rest import id_param
from annotate.validation import metrics
from annotate.validation.models import Sample, SampleItem
from annotate.validation.services import adjudication_record, adjudication_withdraw

PER_PAGE = 25
FILTERS = [("all", "All"), ("open", "Not decided"), ("decided", "Decided by the lead")]


def _suggest(entries) -> None:
    """The right labels the annotators gave, once each: quick picks of the decision form."""
    for entry in entries:
        labels = {v.corrected_label_id: v.corrected_label for v in entry.verdicts.all()}
        entry.suggested = [label for key, label in labels.items() if key is not None]


def _page_number(request: HttpRequest) -> int:
    number = id_param(request.GET.get("page", ""))
    return min(number, 10**6) if number else 1


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def sample_disagreements(request: HttpRequest, pk: int) -> HttpResponse:
    """The items whose annotators disagree, their verdicts side by side and a decision form
    each; `?status=open|decided|all` filters, `?page=` pages. POST: a decision form."""
    sample = metrics.get_sample_for_lead(request.user, pk)
    if request.method == "POST":
        return _decide(request, sample)
    status = request.GET.get("status", "all")
    status = status if status in metrics.DISAGREEMENT_STATUSES else "all"
    pages = Paginator(metrics.disagreements(sample=sample, status=status), PER_PAGE)
    page = pages.get_page(_page_number(request))
    _suggest(page.object_list)
    context = {
        "sample": sample,
        "page": page,
        "status": status,
        "filters": FILTERS,
    }
    return render(request, "validation/disagreements.html", context)


def _decide(request: HttpRequest, sample: Sample) -> HttpResponse:
    item_id = id_param(request.POST.get("item", ""))
    item = SampleItem.objects.filter(sample=sample, pk=item_id).first() if item_id else None
    if item is None:
        raise Http404("No such item in this sample")
    item.sample = sample  # with its run loaded (the corrected label's taxonomy)
    error, saved = None, None
    try:
        if request.POST.get("action") == "withdraw":
            adjudication_withdraw(sample_item=item)
            saved = "Decision withdrawn: the majority counts again."
        else:
            adjudication_record(
                sample_item=item,
                lead=request.user,
                value=request.POST.get("value", ""),
                corrected_label=request.POST.get("corrected_label") or None,
                note=request.POST.get("note", ""),
            )
            saved = "Decision saved: it counts in every table."
    except ServiceError as exc:
        error = str(exc)
    if not request.htmx:
        (messages.error if error else messages.success)(request, error or saved)
        url = reverse("sample-disagreements", args=[sample.pk])
        return redirect(f"{url}#item-{item.pk}")
    return _card(request, sample, item, error=error, saved=saved)


def _card(request: HttpRequest, sample: Sample, item: SampleItem, **extra: Any) -> HttpResponse:
    entry = metrics.disagreements(sample=sample).filter(pk=item.pk).first()
    if entry is not None:
        _suggest([entry])
    context = {
        "sample": sample,
        "entry": entry,
        "item_id": item.pk,
        "note": request.POST.get("note", "") if extra.get("error") else "",
        **extra,
    }
    return render(request, "validation/disagreements_item.html", context)


@login_required
@require_GET
def sample_annotators(request: HttpRequest, pk: int) -> HttpResponse:
    """Per annotator: counts, seconds per verdict, agreement with the others' majority
    (leave-one-out) and with the lead, last verdict."""
    sample = metrics.get_sample_for_lead(request.user, pk)
    context = {"sample": sample, "table": metrics.annotators_table(sample=sample)}
    return render(request, "validation/annotators.html", context)
