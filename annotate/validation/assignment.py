"""Which sample item an annotator sees next: one service for `GET /api/samples/{id}/next/` and
the annotation page. The leases are the shared work queue of `annotate/leasing.py`
(docs/architecture.md#annotation-leases): an item is offered while its hit/miss verdicts plus other
annotators' live leases stay under its wanted verdicts, never to an annotator who already
judged it (skips included), and a reload resumes the item already leased.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Least

from annotate import leasing
from annotate.validation.models import Lease, Sample, SampleItem, Verdict

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
