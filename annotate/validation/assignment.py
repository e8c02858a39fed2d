"""Which sample item an annotator sees next: one service for `GET /api/samples/{id}/next/` and
the annotation page. The leases are the shared work queue of `annotate/leasing.py`
(docs/architecture.md#annotation-leases): an item is offered while its hit/miss verdicts plus other
annotators' live leases stay under its wanted verdicts, never to an annotator who already
judged it (skips included), and a reload resumes the item already leased.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from annotate import leasing
from annotate.validation.models import Lease, Sample, SampleItem, Verdict

INBOX_LIMIT = 50  # the newest open samples; older ones are reached from the datasets

SAMPLE_QUEUE = leasing.WorkQueue(
    lease=Lease,
    answer=Verdict,
    row_field="sample_item",
    worker_field="annotator",
    count_field="verdict_count",
    wanted_field="wanted_verdicts",
    order=("position",),
)


def lease_grant(item: SampleItem, annotator, now, *, exists: bool | None = None) -> SampleItem:
    """Lease (or extend the lease of) `item` to `annotator` from `now` (`leasing.lease_grant`)."""
    leasing.lease_grant(SAMPLE_QUEUE, item, annotator, now, exists=exists)
    return item


def sample_item_next(
    *, sample: Sample, annotator, exclude: Iterable[int] = ()
) -> SampleItem | None:
    """Lease and return the annotator's next item of `sample`, or None when none is left.

    `exclude` lists item ids the caller already holds (the item on screen), so that the page can
    ask for the one to preload."""
    if sample.status != Sample.Status.OPEN:
        return None
    return leasing.lease_next(
        SAMPLE_QUEUE,
        SampleItem.objects.filter(sample=sample),
        worker=annotator,
        exclude=exclude,
        related=("prediction__item", "prediction__label"),
    )


def lease_release(*, sample_item: SampleItem, annotator) -> None:
    """Give an item back (the verdict service calls it once the annotator has judged it)."""
    leasing.lease_release(SAMPLE_QUEUE, sample_item, annotator)


# "Complete" has one definition: an item is complete once its hit/miss verdicts
# (`verdict_count`) reach the wanted number. Skips never count: a skip asks for someone else's
# verdict. Every progress figure (sample lists, the annotation page, the dashboard and
# /api/samples/{id}/progress/) comes from `progress_counts`.
COMPLETE = Q(verdict_count__gte=F("wanted_verdicts"))
PROGRESS_KEYS = ("items", "wanted", "given", "done")


def progress_sum(counts: Iterable[dict]) -> dict:
    """Add up progress counts (groups into a whole) and give the percent of wanted verdicts."""
    total = dict.fromkeys(PROGRESS_KEYS, 0)
    for row in counts:
        for key in PROGRESS_KEYS:
            total[key] += row[key]
    wanted = total["wanted"]
    total["percent"] = round(100 * total["given"] / wanted, 1) if wanted else 0.0
    return total


def progress_counts(*, items: QuerySet[SampleItem], by: str) -> dict[Any, dict]:
    """Progress of sample items grouped by the field `by`, in one grouped query: items, wanted
    verdicts, given (hit/miss verdicts, at most the wanted number per item), done (complete
    items) and percent."""
    rows = (
        items.values(by)
        .order_by()
        .annotate(
            items=Count("id"),
            wanted=Coalesce(Sum("wanted_verdicts"), 0),
            given=Coalesce(Sum(Least("verdict_count", "wanted_verdicts")), 0),
            done=Count("id", filter=COMPLETE),
        )
    )
    return {row[by]: progress_sum([row]) for row in rows}


def samples_progress(*, samples: Iterable[Sample]) -> dict[int, dict]:
    """Progress per sample id (see `progress_counts`), in one grouped query."""
    ids = [sample.pk for sample in samples]
    found = progress_counts(items=SampleItem.objects.filter(sample_id__in=ids), by="sample_id")
    return {pk: found.get(pk) or progress_sum([]) for pk in ids}


def sample_progress(*, sample: Sample) -> dict:
    return samples_progress(samples=[sample])[sample.pk]


def annotator_progress(*, sample: Sample, annotator) -> int:
    """How many verdicts (skips included) the annotator gave on the sample."""
    return Verdict.objects.filter(sample_item__sample=sample, annotator=annotator).count()


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
    samples.sort(key=lambda s: (s.left == 0, s.waiting == 0))  # stable: newest first within
    return samples
