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
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from annotate.datasets.selectors import datasets_for_user
from annotate.errors import ServiceError
from annotate.rest import id_param
from annotate.validation.assignment import inbox_for_user
from annotate.validation.models import Sample, Verdict
from annotate.validation.selectors import get_own_verdict_for_user, history_for_user
from annotate.validation.services import verdict_change

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


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The inbox (open samples and what is left of them for the caller); the datasets below it
    for leads and admins, and for anyone with nothing in the inbox."""
    now = timezone.now()
    inbox = inbox_for_user(request.user, now)
    for sample in inbox:
        sample.comes_back_text = human_delta(sample.comes_back, now) if sample.comes_back else ""
    datasets = datasets_for_user(request.user)
    return render(request, "validation/home.html", {"inbox": inbox, "datasets": datasets})


# ---------------------------------------------------------------- history


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
    page = page if id_param(page) else ""
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
