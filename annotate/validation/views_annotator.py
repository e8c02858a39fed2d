"""The annotator's path (docs/architecture.md#annotator-path): the home page's inbox and the
history of one's own verdicts, where any of them can be changed through the same service as
the API's `PATCH /api/verdicts/{id}/` (`verdict_change`, with the same idempotency key rule)."""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from annotate.datasets.models import Dataset
from annotate.datasets.selectors import datasets_for_user
from annotate.errors import ServiceError
from annotate.validation.models import Lease, Sample, SampleItem, Verdict
from annotate.validation.selectors import get_own_verdict_for_user
from annotate.validation.services import verdict_change

INBOX_LIMIT = 50  # the newest open samples; older ones are reached from the datasets
HISTORY_PAGE_SIZE = 25


def human_delta(when: datetime, now: datetime) -> str:
    """`when` as people say it: "in 4 min", "in less than a minute", "12 min ago",
    "3 h ago", "yesterday", "5 days ago", or the date beyond a week."""
    seconds = (when - now).total_seconds()
    if seconds > 0:
        if seconds < 60:
            return "in less than a minute"
        if seconds < 5400:
            return f"in {math.ceil(seconds / 60)} min"
        return f"in {round(seconds / 3600)} h"
    seconds = -seconds
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    return dateformat.format(timezone.localtime(when), "j M Y")


# ---------------------------------------------------------------- inbox


def inbox_for_user(user, now: datetime | None = None) -> list[Sample]:
    """The open samples of the datasets the user is a member of (the newest INBOX_LIMIT), each
    with the user's figures:

    - `left`: items still wanting verdicts that the user has not judged and may take now;
    - `waiting`: such items that other annotators' live leases fill for now, and `comes_back`,
      the earliest expiry of those leases (the rule of docs/architecture.md#annotation-leases);
    - `mine`: the user's own verdicts on the sample, skips included.

    Four queries whatever the number of samples, none of them per item: items wanting
    verdicts, the user's verdicts, and others' live leases (few: each annotator holds a
    handful) are counted separately. Samples with something left come first."""
    now = now or timezone.now()
    samples = list(
        Sample.objects.filter(status=Sample.Status.OPEN, run__dataset__memberships__user=user.pk)
        .select_related("run__dataset", "run__taxonomy")
        .order_by("-id")[:INBOX_LIMIT]
    )
    if not samples:
        return []
    ids = [sample.pk for sample in samples]
    wanting = Q(verdict_count__lt=F("wanted_verdicts"))
    open_items = dict(
        SampleItem.objects.filter(wanting, sample__in=ids)
        .values("sample_id")
        .order_by()
        .annotate(n=Count("id"))
        .values_list("sample_id", "n")
    )
    still_wanted = Q(sample_item__verdict_count__lt=F("sample_item__wanted_verdicts"))
    judged = {
        row["sample"]: row
        for row in Verdict.objects.filter(annotator=user.pk, sample_item__sample__in=ids)
        .values(sample=F("sample_item__sample_id"))
        .order_by()
        .annotate(
            mine=Count("id"),
            open=Count("id", filter=still_wanted),
        )
    }
    # Others' live leases on items the user may still judge: an item is held when they fill
    # the verdicts it still wants.
    leases = (
        Lease.objects.filter(
            still_wanted,
            expires__gt=now,
            sample_item__sample__in=ids,
        )
        .exclude(annotator=user.pk)
        .exclude(
            Exists(Verdict.objects.filter(sample_item=OuterRef("sample_item"), annotator=user.pk))
        )
        .values_list(
            "sample_item_id",
            "sample_item__sample_id",
            "sample_item__wanted_verdicts",
            "sample_item__verdict_count",
            "expires",
        )
    )
    held: dict[int, dict] = {}
    for item_id, sample_id, wanted, count, expires in leases:
        item = held.setdefault(item_id, {"sample": sample_id, "room": wanted - count, "n": 0})
        item["n"] += 1
        item["freed"] = min(item.get("freed", expires), expires)
    waiting: dict[int, list] = {}
    for item in held.values():
        if item["n"] >= item["room"]:
            waiting.setdefault(item["sample"], []).append(item["freed"])
    for sample in samples:
        mine = judged.get(sample.pk, {"mine": 0, "open": 0})
        back = waiting.get(sample.pk, [])
        sample.waiting = len(back)
        sample.left = open_items.get(sample.pk, 0) - mine["open"] - sample.waiting
        sample.mine = mine["mine"]
        sample.comes_back = min(back) if back else None
        sample.comes_back_text = human_delta(sample.comes_back, now) if back else ""
    samples.sort(key=lambda s: (s.left == 0, s.waiting == 0))  # stable: newest first within
    return samples


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The inbox (open samples and what is left of them for the caller); the datasets below it
    for leads and admins, and for anyone with nothing in the inbox."""
    inbox = inbox_for_user(request.user)
    datasets = datasets_for_user(request.user)
    return render(request, "validation/home.html", {"inbox": inbox, "datasets": datasets})


# ---------------------------------------------------------------- history


def history_for_user(user) -> QuerySet[Verdict]:
    """The user's own verdicts, newest first, on the datasets they may still see (the others
    answer 404 to `get_own_verdict_for_user`, so they are not offered for a change)."""
    return (
        Verdict.objects.filter(
            annotator=user.pk,
            sample_item__sample__run__dataset__in=Dataset.objects.for_user(user).values("pk"),
        )
        .select_related(
            "sample_item__sample__run__dataset",
            "sample_item__prediction__item",
            "sample_item__prediction__label",
            "corrected_label",
        )
        .order_by("-created", "-id")
    )


def history_row(verdict: Verdict, now: datetime, *, error: str = "", note: str = "") -> dict:
    """What a row of the history shows, with a fresh idempotency key for its change form."""
    sample = verdict.sample_item.sample
    changed = (verdict.updated - verdict.created).total_seconds() > 1
    return {
        "verdict": verdict,
        "item": verdict.sample_item.prediction.item,
        "label": verdict.sample_item.prediction.label,
        "sample": sample,
        "position": verdict.sample_item.position + 1,
        "open": sample.status == Sample.Status.OPEN,
        "when": human_delta(verdict.created, now),
        "changed": human_delta(verdict.updated, now) if changed else "",
        "key": uuid.uuid4().hex,
        "error": error,
        "note": note,
    }


def _history_change(request: HttpRequest) -> HttpResponse:
    """A change from a history row: htmx swaps the row (with the service's refusal, if any);
    a plain POST comes back to the page with a message."""
    verdict, _ = get_own_verdict_for_user(request.user, request.POST.get("verdict"))
    error = note = ""
    try:
        verdict = verdict_change(
            verdict=verdict,
            value=request.POST.get("value", ""),
            corrected_label=request.POST.get("corrected_label") or None,
            key=request.POST.get("key", ""),
        )
        note = "Saved."
    except ServiceError as exc:
        error = f"Not changed: {exc}."
    page = request.POST.get("page", "")
    page = page if page.isdigit() else ""
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "Verdict changed.")
        query = f"?page={page}" if page else ""
        return redirect(reverse("verdict-history") + query + f"#verdict-{verdict.pk}")
    verdict = history_for_user(request.user).get(pk=verdict.pk)
    row = history_row(verdict, timezone.now(), error=error, note=note)
    return render(request, "validation/history_row.html", {"row": row, "page_number": page})


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def verdict_history(request: HttpRequest) -> HttpResponse:
    """One's own verdicts, newest first, paginated; each can be changed (POST)."""
    if request.method == "POST":
        return _history_change(request)
    page = Paginator(history_for_user(request.user), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    now = timezone.now()
    rows = [history_row(verdict, now) for verdict in page]
    return render(request, "validation/history.html", {"page": page, "rows": rows})
