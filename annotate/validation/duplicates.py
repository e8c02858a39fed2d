"""Near-duplicate groups of a run's items (docs/architecture.md#near-duplicates): the web side.

A scan is a `DuplicateScan` row computed by a worker of the `search` queue
(`classifier.search_duplicates`, sent by name: the web tier imports neither faiss nor the
worker module). The API and the page read the latest scan for (run, threshold); when there is
none, reading queues one. Leads and admins may start a new scan (a rescan after a new run
wrote the cache, say)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from django.db import transaction

from annotate.datasets.models import Item
from annotate.errors import Conflict, FieldInvalid
from annotate.validation.models import SampleItem
from classifier.models import ClassificationRun, DuplicateScan, JobStatus, Prediction

DEFAULT_MIN_SIMILARITY = 0.97
LOWEST_MIN_SIMILARITY = 0.5
SHOWN_GROUPS = 200  # groups a page shows (the API answers all)


class DuplicatesInvalid(FieldInvalid):
    """A bad `min_similarity` (HTTP 400, named like a serializer's field error)."""

    def __init__(self, message: str) -> None:
        super().__init__("min_similarity", message)


def parse_min_similarity(value: Any) -> float:
    """The threshold from a query string or form: a number from 0.5 to 1 (default 0.97),
    rounded to 4 decimals so that equal thresholds find the same scan."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_MIN_SIMILARITY
    try:
        number = float(str(value).strip())
    except ValueError:
        raise DuplicatesInvalid("min_similarity must be a number from 0.5 to 1.") from None
    if not LOWEST_MIN_SIMILARITY <= number <= 1.0:  # also refuses nan and inf
        raise DuplicatesInvalid("min_similarity must be a number from 0.5 to 1.")
    return round(number, 4)


def _check_run(run: ClassificationRun) -> None:
    if run.source == ClassificationRun.Source.IMPORT:
        raise Conflict(
            "This run's predictions were imported: it has no image embeddings to compare. "
            "Scan a run that classified the dataset with a model."
        )


def duplicate_scan_latest(*, run: ClassificationRun, min_similarity: float) -> DuplicateScan | None:
    return (
        DuplicateScan.objects.filter(run=run, min_similarity=min_similarity).order_by("-id").first()
    )


def duplicate_scan_start(*, run: ClassificationRun, min_similarity: float, user) -> DuplicateScan:
    """A new scan of the run at this threshold, queued for a `search` worker once the
    transaction commits. `run` comes from a permission-checked fetch."""
    _check_run(run)
    with transaction.atomic():
        scan = DuplicateScan.objects.create(
            run=run,
            min_similarity=min_similarity,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            total=run.item_count,
        )
        pk = scan.pk
        transaction.on_commit(
            lambda: current_app.send_task("classifier.search_duplicates", args=[pk])
        )
    return scan


def duplicate_scan_for(
    *, run: ClassificationRun, min_similarity: float, user
) -> tuple[DuplicateScan, bool]:
    """(the latest scan at this threshold, False), or (a new queued one, True) when there is
    none. Two readers at once start one scan: the run row is locked while checking."""
    _check_run(run)
    with transaction.atomic():
        ClassificationRun.objects.select_for_update().filter(pk=run.pk).first()
        scan = duplicate_scan_latest(run=run, min_similarity=min_similarity)
        if scan is not None:
            return scan, False
        return duplicate_scan_start(run=run, min_similarity=min_similarity, user=user), True


def scan_active(scan: DuplicateScan) -> bool:
    return scan.status in (JobStatus.QUEUED, JobStatus.RUNNING)


def scan_percent(scan: DuplicateScan) -> int:
    if scan.status == JobStatus.SUCCEEDED:
        return 100
    return int(100 * scan.done / scan.total) if scan.total else 0


# -- the page's view of the groups -------------------------------------------------------------


@dataclass
class GroupMember:
    item: int
    external_id: str
    label_name: str | None
    samples: list[int] = field(default_factory=list)  # samples of the run holding the item


@dataclass
class GroupView:
    members: list[GroupMember]
    similarity: float
    size: int
    in_samples: list[tuple[int, int]]  # (sample id, copies in it), only samples with 2+ copies


def groups_for_page(
    scan: DuplicateScan, *, limit: int = SHOWN_GROUPS
) -> tuple[list[GroupView], int]:
    """The scan's first `limit` groups with each member's external id, predicted label and the
    run's samples that hold it (three queries), and the number of groups in all."""
    groups = [g for g in (scan.groups or []) if isinstance(g, dict) and g.get("items")]
    shown = groups[:limit]
    ids = {int(i) for g in shown for i in g["items"]}
    items = dict(
        Item.objects.filter(pk__in=ids, dataset_id=scan.run.dataset_id).values_list(
            "id", "external_id"
        )
    )
    labels = dict(
        Prediction.objects.filter(run_id=scan.run_id, item_id__in=ids).values_list(
            "item_id", "label__name"
        )
    )
    samples: dict[int, list[int]] = {}
    for item_id, sample_id in (
        SampleItem.objects.filter(sample__run_id=scan.run_id, prediction__item_id__in=ids)
        .order_by("sample_id")
        .values_list("prediction__item_id", "sample_id")
    ):
        samples.setdefault(item_id, []).append(sample_id)
    views = []
    for group in shown:
        members = [
            GroupMember(
                item=int(i),
                external_id=items[int(i)],
                label_name=labels.get(int(i)),
                samples=samples.get(int(i), []),
            )
            for i in group["items"]
            if int(i) in items  # an item deleted since the scan is left out
        ]
        if len(members) < 2:
            continue
        counts: dict[int, int] = {}
        for member in members:
            for sample_id in member.samples:
                counts[sample_id] = counts.get(sample_id, 0) + 1
        views.append(
            GroupView(
                members=members,
                similarity=float(group.get("similarity", 0.0)),
                size=len(members),
                in_samples=sorted((s, n) for s, n in counts.items() if n >= 2),
            )
        )
    return views, len(groups)


# Above this share of items with a "near-duplicate", the groups say more about the model than
# about reposts (docs/architecture.md#near-duplicates).
CROWDED_SHARE = 0.1


def nearest_advice(scan: DuplicateScan) -> dict | None:
    """The scan's nearest-neighbour figures for the page, with `crowded` (too many items have
    a neighbour above the threshold to be reposts) and `suggested`, a threshold that the
    closest 1 % of items reach."""
    nearest = scan.nearest or None
    if not nearest:
        return None
    suggested = min(1.0, math.ceil(nearest["p99"] * 1000) / 1000)
    return {
        **nearest,
        "linked_percent": round(100 * nearest["linked_share"], 1),
        "crowded": nearest["linked_share"] > CROWDED_SHARE,
        "suggested": suggested if suggested > scan.min_similarity else None,
    }
