"""The dashboard's "What you get" panel and its curated export (docs/architecture.md#curated-
selection, docs/architecture.md#curated-export). Leads and admins of the sample's dataset.

- `sample_selection`: the selection by the panel's rule (one θ, or a target precision) as a
  fragment that htmx swaps under the controls as they move; without htmx, a page of its own.
- `sample_export_create`: the export form's POST: `curated_jobs.curated_export_request`, then the
  export's status fragment (a page without htmx); a refusal comes back in the fragment with its
  status (400, 409) and the reason.
- `export_status`: that fragment, polled every second while the export is queued or running,
  then the download and manifest links (the API's file endpoints, which take the session).

The panel sits outside the region the dashboard's poller swaps, so its controls keep their
values; static/js/selection.js asks it to refresh when new verdicts arrive.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.errors import Conflict, FieldInvalid
from annotate.validation import metrics
from annotate.validation.curated_jobs import (
    EXPORT_LEADS_ONLY,
    curated_export_request,
    export_active,
    export_error,
    export_percent,
    export_rule,
    get_export_for_lead,
)
from annotate.validation.curation import (
    BELOW_TARGET,
    SELECTED,
    UNMEASURED,
    Rule,
    Selection,
    parse_rule,
    selection_compute,
)
from annotate.validation.models import CuratedExport
from annotate.validation.selectors import get_sample_for_user

MODES = ("threshold", "target")
TRUE = ("1", "true", "on", "yes")
STATUS_TEXT = {
    SELECTED: "selected",
    BELOW_TARGET: "below target: left out",
    UNMEASURED: "unmeasured: unvalidated",
}


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}"


def _rule_from(data) -> Rule:
    """The panel's rule from its form: `mode` picks which of the two numbers counts."""
    mode = data.get("mode", "threshold")
    if mode not in MODES:
        raise FieldInvalid("mode", "mode must be threshold or target.")
    return parse_rule(
        threshold=data.get("threshold") if mode == "threshold" else None,
        target_precision=data.get("target_precision") if mode == "target" else None,
        include_unvalidated=str(data.get("include_unvalidated", "")).lower() in TRUE,
    )


def selection_context(selection: Selection) -> dict[str, Any]:
    """What the panel shows: the selection's figures, percents for people, the labels."""
    rows = [
        {
            **row.as_dict(),
            "status_text": STATUS_TEXT[row.status],
            "precision_percent": _percent(row.precision),
            "low_percent": _percent(row.precision_low),
            "high_percent": _percent(row.precision_high),
        }
        for row in selection.per_label
    ]
    return {
        "selection": selection.as_dict(),
        "rows": rows,
        "left_out": [row for row in rows if row["status"] != SELECTED],
        # Strata with every judged item right add no spread to the bootstrap: the page says so.
        "perfect": [r for r in rows if r["status"] == SELECTED and r["hits"] == r["judged"]],
        "precision_percent": _percent(selection.precision),
        "low_percent": _percent(selection.precision_low),
        "high_percent": _percent(selection.precision_high),
    }


def _fragment_or_page(request: HttpRequest, fragment: str, page: str, context: dict,
                      status: int = 200) -> HttpResponse:  # fmt: skip
    response = render(request, fragment if request.htmx else page, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def sample_selection(request: HttpRequest, pk: int) -> HttpResponse:
    """The selection by the panel's rule: the fragment under the panel's controls (htmx), or a
    page with the panel. A bad value answers 400 and a targeted sample 409, with the reason."""
    sample = metrics.get_sample_for_lead(request.user, pk)
    context: dict[str, Any] = {"sample": sample, "values": request.GET}
    status = 200
    try:
        selection = selection_compute(sample=sample, rule=_rule_from(request.GET))
        context.update(selection_context(selection))
    except (FieldInvalid, Conflict) as exc:
        context["error"] = str(exc)
        status = 409 if isinstance(exc, Conflict) else 400
    return _fragment_or_page(
        request, "validation/_selection_result.html", "validation/selection.html", context, status
    )


def export_context(export: CuratedExport, role: str | None) -> dict[str, Any]:
    rule = export_rule(export)
    return {
        "export": export,
        "rule": rule,
        "active": export_active(export),
        "percent": export_percent(export),
        "export_error": export_error(export, role),
        "ready": export.status == CuratedExport.Status.SUCCEEDED and bool(export.file),
    }


@login_required
@require_POST
def sample_export_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue an export of the panel's selection (its rule comes with the form, htmx includes
    the panel's controls) and answer its status; a refusal answers 400 or 409 with why."""
    sample, role = get_sample_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPORT_LEADS_ONLY)
    try:
        export = curated_export_request(
            sample=sample,
            rule=_rule_from(request.POST),
            fmt=request.POST.get("format", "csv"),
            exclude_duplicates=request.POST.get("exclude_duplicates", "").lower() in TRUE,
            exclude_suspects=request.POST.get("exclude_suspects", ""),
            user=request.user,
        )
    except (FieldInvalid, Conflict) as exc:
        context = {"sample": sample, "request_error": str(exc)}
        status = 409 if isinstance(exc, Conflict) else 400
        return _fragment_or_page(
            request, "validation/_curated_export.html", "validation/curated_export.html", context,
            status,
        )  # fmt: skip
    if not request.htmx:
        return redirect("curated-export", pk=export.pk)
    context = {"sample": sample, **export_context(export, role)}
    return render(request, "validation/_curated_export.html", context)


@login_required
@require_GET
def export_status(request: HttpRequest, pk: int) -> HttpResponse:
    """An export's status: polled by htmx while it is queued or running, then its links."""
    export, role = get_export_for_lead(request.user, pk)
    context = {"sample": export.sample, **export_context(export, role)}
    return _fragment_or_page(
        request, "validation/_curated_export.html", "validation/curated_export.html", context
    )
