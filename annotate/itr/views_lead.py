"""The ITR lead's pages: the adjudication page (`/itr/{dataset}/adjudicate/`, leads and
admins) and the dataset's ITR dashboard (`/itr/{dataset}/`, members; the results are for
leads). Thin: the queue is queue.py, the summary summary.py, the signal signal.py, the list
importers.py; decisions and comments go through services.py, the same functions as the API.

Forms post with htmx and get back the fragment they replace (an item's card, its comment
thread, a dashboard card); without JavaScript they redirect back to the page. A refused input
is shown in the fragment, like the run page's sample form."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Dataset, Role
from annotate.errors import ServiceError
from annotate.itr.consensus import TYPES
from annotate.itr.importers import ItrImportError, controversial_import
from annotate.itr.models import ItrItem, ItrSignal
from annotate.itr.queue import CROWDLAB, DEFAULT_LIMIT, lead_queue, queue_entry
from annotate.itr.selectors import (
    get_itr_dataset_for_user,
    get_itr_item_for_user,
    review_progress,
)
from annotate.itr.services import comment_add, decision_record, decision_withdraw
from annotate.itr.signal import signal_compute
from annotate.itr.summary import itr_summary
from annotate.rest import id_param
from classifier.models import ClassificationRun

LEADS_ONLY = "Only leads and admins of this dataset may adjudicate."
PER_PAGE = DEFAULT_LIMIT
FILTERS = [
    ("", "All"),
    (ItrItem.Status.IN_REVIEW, "In review"),
    (ItrItem.Status.CONSENSUS, "Consensus"),
    (ItrItem.Status.DECIDED, "Decided"),
]
MAX_LIST_BYTES = 1_000_000


def _lead_dataset(request: HttpRequest, pk: int) -> Dataset:
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    return dataset


def _lead_item(request: HttpRequest, pk: int) -> ItrItem:
    item, role = get_itr_item_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    return item


# ---------------------------------------------------------------- adjudication


def _page_number(request: HttpRequest) -> int:
    number = id_param(request.GET.get("page", ""))
    return min(number, 10**6) if number else 1


@login_required
@require_GET
def adjudicate_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The items whose reviewers disagree, the weakest consensus first, each with its votes,
    comments and a decision form; `?status=` filters, `?page=` pages."""
    dataset = _lead_dataset(request, pk)
    status = request.GET.get("status", "")
    status = status if status in ItrItem.Status.values else ""
    number = _page_number(request)
    queue = lead_queue(
        dataset, status=status or None, limit=PER_PAGE, offset=(number - 1) * PER_PAGE
    )
    pages = Paginator(range(queue["count"]), PER_PAGE)
    number = min(number, pages.num_pages)
    if queue["count"] and not queue["entries"]:  # a page beyond the end: show the last one
        return redirect(f"{request.path}?status={status}&page={pages.num_pages}")
    context = {
        "dataset": dataset,
        "queue": queue,
        "crowdlab": queue["ranking"] == CROWDLAB,
        "status": status,
        "filters": FILTERS,
        "page": pages.page(number),
        "first_rank": (number - 1) * PER_PAGE + 1,
    }
    return render(request, "itr/adjudicate.html", context)


def _card(request: HttpRequest, item: ItrItem, **extra: Any) -> HttpResponse:
    rank = id_param(request.POST.get("rank", ""))
    context = {
        "entry": queue_entry(item),
        "rank": rank if rank is not None and rank < 10**8 else None,
        **extra,
    }
    return render(request, "itr/_adjudicate_item.html", context)


def _back_to_queue(item: ItrItem) -> HttpResponse:
    return redirect(reverse("itr-adjudicate", args=[item.dataset_id]) + f"#item-{item.pk}")


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    """The card's decision form: `services.decision_record`, as `POST /api/itr/decisions/`."""
    item = _lead_item(request, pk)
    error, saved = None, None
    try:
        decision_record(
            item=item,
            lead=request.user,
            text_is_represented=request.POST.get("text_is_represented"),
            image_adds=request.POST.get("image_adds"),
            note=request.POST.get("note"),
        )
        saved = "Decision saved."
    except ServiceError as exc:
        error = str(exc)
    if not request.htmx:
        (messages.error if error else messages.success)(request, error or saved)
        return _back_to_queue(item)
    return _card(request, item, error=error, saved=saved, note=request.POST.get("note", ""))


@login_required
@require_POST
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw the decision on an item: it goes back to its consensus."""
    item = _lead_item(request, pk)
    decision_withdraw(item=item)
    if not request.htmx:
        messages.success(request, "Decision withdrawn.")
        return _back_to_queue(item)
    return _card(request, item, saved="Decision withdrawn.")


@login_required
@require_POST
def comment(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a comment to an item's thread; htmx gets the thread back."""
    item = _lead_item(request, pk)
    error = None
    try:
        comment_add(item=item, author=request.user, text=request.POST.get("text"))
    except ServiceError as exc:
        error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return _back_to_queue(item)
    context = {"entry": queue_entry(item), "error": error}
    return render(request, "itr/_adjudicate_comments.html", context)


# ---------------------------------------------------------------- dashboard


def _runs(dataset: Dataset):
    succeeded = ClassificationRun.Status.SUCCEEDED
    runs = ClassificationRun.objects.filter(dataset=dataset, status=succeeded)
    return runs.select_related("taxonomy").order_by("-id")


def _signal_context(dataset: Dataset, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "signal": ItrSignal.objects.filter(dataset=dataset).select_related("run").first(),
        "runs": list(_runs(dataset)[:50]),
        **extra,
    }


def _chart(summary: dict[str, Any]) -> dict[str, Any]:
    """The distribution chart's data (itr_dashboard.js)."""
    codes = [f"{t['text']}{t['image']}" for t in TYPES]
    return {
        "labels": [f"{code} {t['name']}" for code, t in zip(codes, TYPES, strict=True)],
        "before": [summary["distribution"]["before"][code] for code in codes],
        "after": [summary["distribution"]["after"][code] for code in codes],
    }


@login_required
@require_GET
def dashboard_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Members see the progress and the way to review; leads also see the results (changes,
    alpha, distributions, Spearman, reviewers' agreement), the exports, the model signal and
    the list upload. Reviewers do not see results: live results would bias them."""
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    lead = role_at_least(role, Role.LEAD)
    context: dict[str, Any] = {
        "dataset": dataset,
        "lead": lead,
        "role": role,
        "progress": review_progress(dataset=dataset, reviewer=request.user),
    }
    if lead:
        summary = itr_summary(dataset)
        chart = _chart(summary)
        distribution = [
            {"label": label, "before": before, "after": after}
            for label, before, after in zip(
                chart["labels"], chart["before"], chart["after"], strict=True
            )
        ]
        context.update(summary=summary, chart=chart, distribution=distribution)
        context.update(_signal_context(dataset))
    return render(request, "itr/dashboard.html", context)


def _dashboard_answer(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    """A refused form comes back in its card (htmx) with the reasons; a done one reloads the
    dashboard, whose figures it changed, with a message."""
    if request.htmx and context.get("error"):
        return render(request, template, context)
    if context.get("error"):
        messages.error(request, context["error"])
        for line in context.get("errors", [])[:20]:
            messages.error(request, line)
    else:
        messages.success(request, context["saved"])
    if request.htmx:
        return HttpResponse(headers={"HX-Refresh": "true"})
    return redirect("itr-dashboard", pk=context["dataset"].pk)


@login_required
@require_POST
@vary_on_headers("HX-Request")
def signal_form(request: HttpRequest, pk: int) -> HttpResponse:
    """The dashboard's model-signal form: a succeeded run of this dataset."""
    dataset = _lead_dataset(request, pk)
    error, saved = None, None
    run_id = id_param(request.POST.get("run", ""))
    # The dataset's own succeeded runs (the form's choices): the dataset's selector scopes them.
    run = _runs(dataset).filter(pk=run_id).first() if run_id is not None else None
    if run is None:
        error = "Choose a succeeded classification run of this dataset."
    else:
        try:
            result = signal_compute(dataset=dataset, run=run)
            saved = (
                f"Model signal computed from run {run.pk}: {result['test_items']:,} test items "
                f"scored, {result['candidates']:,} likely errors."
            )
        except ServiceError as exc:
            error = str(exc)
    context = _signal_context(dataset, error=error, saved=saved)
    return _dashboard_answer(request, "itr/_dashboard_signal.html", context)


def _list_text(request: HttpRequest) -> str:
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size > MAX_LIST_BYTES:
            raise ItrImportError(f"the file is larger than {MAX_LIST_BYTES:,} bytes")
        return upload.read().decode("utf-8", errors="replace")
    text = request.POST.get("text", "")
    if len(text) > MAX_LIST_BYTES:
        raise ItrImportError(f"the list is longer than {MAX_LIST_BYTES:,} characters")
    return text


@login_required
@require_POST
@vary_on_headers("HX-Request")
def controversial_form(request: HttpRequest, pk: int) -> HttpResponse:
    """The dashboard's list upload (a file or pasted lines); per-line errors are listed."""
    dataset = _lead_dataset(request, pk)
    error, errors, saved = None, [], None
    pasted = request.POST.get("text", "")[:MAX_LIST_BYTES]
    try:
        text = _list_text(request)
        if not text.strip():
            raise ItrImportError("the list is empty: choose a file or paste its lines")
        result = controversial_import(dataset=dataset, text=text)
        saved = (
            f"List imported: {result['listed']} items ({result['text']} text only, "
            f"{result['image']} image only, {result['both']} both)."
        )
    except ItrImportError as exc:
        error, errors = str(exc).splitlines()[0], exc.errors
    context = {"dataset": dataset, "error": error, "errors": errors, "saved": saved}
    context["text"] = pasted  # a refused list stays in the form, to be mended
    return _dashboard_answer(request, "itr/_dashboard_list.html", context)


urlpatterns: list = [
    path("itr/<int:pk>/", dashboard_page, name="itr-dashboard"),
    path("itr/<int:pk>/signal/", signal_form, name="itr-signal"),
    path("itr/<int:pk>/controversial/", controversial_form, name="itr-controversial"),
    path("itr/<int:pk>/adjudicate/", adjudicate_page, name="itr-adjudicate"),
    path("itr/items/<int:pk>/decide/", decide, name="itr-decide"),
    path("itr/items/<int:pk>/withdraw/", withdraw, name="itr-withdraw"),
    path("itr/items/<int:pk>/comments/", comment, name="itr-comment"),
]
