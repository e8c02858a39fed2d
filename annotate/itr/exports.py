"""ITR exports of a dataset's test split (docs/architecture.md#itr):

- `corrected`: every test item with its final labels (the published ones replaced by the
  reviewers' consensus or a lead's decision), with the published labels, the reviewers'
  reasons and the decision beside them (CSV);
- `removed`: the test items minus every item whose labels changed (CSV, same columns);
- `changes`: the changed items in the published list's format (`list`, the default: one line
  per transition `01->11: 3997, 4067`, ids are rows, which `import_itr --controversial`
  reads back) or per item (`csv`, same columns as above).

One computation, two front doors: `GET /api/itr/{dataset}/export/` and `export_itr`. CSV goes
through the one writer (annotate/csvexport.py: tweets and reasons are other people's text).
Cost: two queries whatever the size (the items with their decision, the reasons).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from annotate.csvexport import csv_text
from annotate.datasets.models import Dataset
from annotate.errors import Invalid
from annotate.itr.consensus import CHANGE_KINDS, change_kind, pair_code
from annotate.itr.models import ItrItem, ItrReview

SETS = ("corrected", "removed", "changes")
SETS_HELP = (
    "corrected: the test set with the final labels; removed: the test set without the changed "
    "items; changes: the changed items"
)
FORMATS = ("list", "csv")
COLUMNS = (
    "row",
    "tweet_id",
    "user_id",
    "tweet",
    "text_is_represented",
    "image_adds",
    "original_text_is_represented",
    "original_image_adds",
    "status",
    "changed",
    "reviews",
    "reasons",
    "decision",
    "decision_note",
    "decided_by",
)
# The order of the published list: by change kind, then by the published labels.
ORIGINAL_CODES = ("00", "01", "10", "11")


class ItrExportError(Invalid):
    """An export that cannot be made as asked: HTTP 400, a command error."""


@dataclass(frozen=True)
class ExportResult:
    text: str
    media_type: str  # text/csv or text/plain
    filename: str
    rows: int  # items in the export


def export_rows(dataset: Dataset) -> list[dict[str, Any]]:
    """The test items as export rows, in row order: two queries."""
    items = (
        ItrItem.objects.filter(dataset=dataset, split=ItrItem.Split.TEST)
        .order_by("row")
        .values(
            "id",
            "row",
            "tweet_id",
            "user_id",
            "item__caption",
            "text_is_represented",
            "image_adds",
            "final_text",
            "final_image",
            "status",
            "review_count",
            "decision__text_is_represented",
            "decision__image_adds",
            "decision__note",
            "decision__decided_by__username",
        )
    )
    reasons: dict[int, list[str]] = defaultdict(list)
    written = (
        ItrReview.objects.filter(item__dataset=dataset, item__split=ItrItem.Split.TEST)
        .exclude(reason="")
        .order_by("id")
        .values_list("item_id", "reviewer__username", "reason")
    )
    for item_id, reviewer, reason in written:
        reasons[item_id].append(f"{reviewer}: {reason}")
    return [_row(item, reasons.get(item["id"], [])) for item in items]


def _row(item: Mapping[str, Any], reasons: list[str]) -> dict[str, Any]:
    original = (item["text_is_represented"], item["image_adds"])
    final = (item["final_text"], item["final_image"])
    decided = item["decision__text_is_represented"] is not None
    return {
        "row": item["row"],
        "tweet_id": item["tweet_id"],
        "user_id": item["user_id"],
        "tweet": item["item__caption"],
        "text_is_represented": final[0],
        "image_adds": final[1],
        "original_text_is_represented": original[0],
        "original_image_adds": original[1],
        "status": item["status"],
        "changed": change_kind(original, final) or "",
        "reviews": item["review_count"],
        "reasons": " | ".join(reasons),
        "decision": (
            pair_code((item["decision__text_is_represented"], item["decision__image_adds"]))
            if decided
            else ""
        ),
        "decision_note": item["decision__note"] or "",
        "decided_by": item["decision__decided_by__username"] or "",
    }


def changes_list(rows: list[dict[str, Any]]) -> str:
    """The changed rows in the published list's format: one line per transition, lines by
    change kind (text, image, both) then by the published labels, ids ascending; transitions
    without items are left out; a newline ends every line."""
    by_transition: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        if row["changed"]:
            original = f"{row['original_text_is_represented']}{row['original_image_adds']}"
            final = f"{row['text_is_represented']}{row['image_adds']}"
            by_transition[(original, final)].append(row["row"])
    lines = []
    for kind in CHANGE_KINDS:
        for original in ORIGINAL_CODES:
            final = _changed_code(original, kind)
            ids = sorted(by_transition.get((original, final), []))
            if ids:
                lines.append(f"{original}->{final}: {', '.join(map(str, ids))}\n")
    return "".join(lines)


def _changed_code(original: str, kind: str) -> str:
    """`original` ("01") with the text label, the image label or both flipped."""
    text, image = original[0], original[1]
    flip = {"0": "1", "1": "0"}
    if kind in ("text", "both"):
        text = flip[text]
    if kind in ("image", "both"):
        image = flip[image]
    return text + image


def itr_export(dataset: Dataset, which: str, fmt: str | None = None) -> ExportResult:
    """The export `which` (one of SETS) of `dataset`, as `fmt` (`list` only for changes, its
    default; `csv` for every set, the default of the others)."""
    if which not in SETS:
        raise ItrExportError(f"set must be one of {', '.join(SETS)}")
    fmt = fmt or ("list" if which == "changes" else "csv")
    if fmt not in FORMATS:
        raise ItrExportError(f"format must be one of {', '.join(FORMATS)}")
    if fmt == "list" and which != "changes":
        raise ItrExportError("the list format is for set=changes only; use format=csv")
    rows = export_rows(dataset)
    if which == "removed":
        rows = [row for row in rows if not row["changed"]]
    elif which == "changes":
        rows = [row for row in rows if row["changed"]]
    name = f"{dataset.name}-itr-{which}"
    if fmt == "list":
        return ExportResult(changes_list(rows), "text/plain", f"{name}.txt", len(rows))
    return ExportResult(csv_text(COLUMNS, rows), "text/csv", f"{name}.csv", len(rows))
