"""Which sample item an annotator sees next: one service for `GET /api/samples/{id}/next/` and
the annotation page.

Rules:
- an item is offered only while `verdict_count + active leases of others < wanted_verdicts`,
  so with one wanted verdict it is leased to one annotator at a time;
- an annotator never gets an item they already judged (any value, skip included);
- a lease lasts `SIEVE_LEASE_SECONDS` (default 300 s); an expired lease frees the slot;
- an annotator may hold a few leases at once (the page shows one item and preloads the next);
  asking again returns their oldest still-valid lease first, so a reload resumes the same item.

Concurrency: candidates are locked with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so
two annotators never wait on or collide over one row. The lease count in that query comes from
the statement's snapshot, which can be stale for a row whose lock was released a moment ago;
so once a row is locked, its capacity is checked again with a fresh statement before leasing.
On SQLite, `transaction_mode=IMMEDIATE` makes every transaction take the write lock first, so
writers are serialized anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from annotate.validation.models import Lease, Sample, SampleItem, Verdict

BATCH = 1  # rows locked per attempt: lock only what we lease
ATTEMPTS = 20


def lease_seconds() -> int:
    return int(getattr(settings, "SIEVE_LEASE_SECONDS", 300))


def _others_leases(now, annotator) -> Subquery:
    return Subquery(
        Lease.objects.filter(sample_item=OuterRef("pk"), expires__gt=now)
        .exclude(annotator=annotator)
        .order_by()
        .values("sample_item")
        .annotate(n=Count("id"))
        .values("n"),
        output_field=IntegerField(),
    )


def lease_grant(item: SampleItem, annotator, now, *, exists: bool | None = None) -> SampleItem:
    """Lease (or extend the lease of) `item` to `annotator` from `now`.

    `exists` says whether a lease row (live or expired) of this annotator is already there,
    when the caller knows; the caller holds the item's row lock (or SQLite's write lock)."""
    expires = now + timedelta(seconds=lease_seconds())
    lease = Lease.objects.filter(sample_item=item, annotator=annotator)
    if exists is None:  # unknown: try an update first
        exists = bool(lease.update(expires=expires))
    elif exists:
        lease.update(expires=expires)
    if not exists:
        Lease.objects.create(sample_item=item, annotator=annotator, expires=expires)
    return item


def _has_room(item_id: int, annotator, now) -> bool:
    """Fresh check (new statement, new snapshot) for a row this transaction has locked."""
    return (
        SampleItem.objects.filter(pk=item_id)
        .annotate(others=Coalesce(_others_leases(now, annotator), Value(0)))
        .filter(verdict_count__lt=F("wanted_verdicts") - F("others"))
        .exists()
    )


def sample_item_next(
    *, sample: Sample, annotator, exclude: Iterable[int] = ()
) -> SampleItem | None:
    """Lease and return the annotator's next item of `sample`, or None when none is left.

    `exclude` lists item ids the caller already holds (the item on screen), so that the page can
    ask for the one to preload."""
    if sample.status != Sample.Status.OPEN:
        return None
    exclude = [int(pk) for pk in exclude]
    now = timezone.now()
    judged = Verdict.objects.filter(annotator=annotator, sample_item=OuterRef("pk"))
    base = (
        SampleItem.objects.filter(sample=sample, verdict_count__lt=F("wanted_verdicts"))
        .exclude(pk__in=exclude)
        .exclude(Exists(judged))
        # What the caller shows comes along (the row lock stays on the sample item only).
        .select_related("prediction__item", "prediction__label")
    )
    with transaction.atomic():
        # 1. Resume: an item already leased to me, so that a reload shows the same item. Read
        #    from my (few) leases, not by scanning the sample.
        mine = (
            Lease.objects.filter(annotator=annotator, sample_item__sample=sample, expires__gt=now)
            .exclude(sample_item_id__in=exclude)
            .order_by("sample_item__position")
            .values_list("sample_item_id", flat=True)
        )
        for item_id in mine:
            item = base.filter(pk=item_id).first()
            if item is not None:
                return lease_grant(item, annotator, now, exists=True)
        # 2. The first item with room in sample order, skipping rows that other annotators
        #    hold locked right now; the (sample, position) index lets the scan stop early.
        my_lease = Lease.objects.filter(annotator=annotator, sample_item=OuterRef("pk"))
        candidates = (
            base.annotate(
                my_lease_expires=Subquery(my_lease.values("expires")[:1]),
                others=Coalesce(_others_leases(now, annotator), Value(0)),
            )
            .filter(verdict_count__lt=F("wanted_verdicts") - F("others"))
            .filter(Q(my_lease_expires__isnull=True) | Q(my_lease_expires__lte=now))
            .order_by("position")
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        skipped: list[int] = []
        for _ in range(ATTEMPTS):
            batch = list(candidates.exclude(pk__in=skipped)[:BATCH])
            if not batch:
                return None
            for item in batch:
                if _has_room(item.pk, annotator, now):
                    exists = item.my_lease_expires is not None  # an expired lease of mine
                    return lease_grant(item, annotator, now, exists=exists)
                skipped.append(item.pk)
    return None


def lease_release(*, sample_item: SampleItem, annotator) -> None:
    """Give an item back (the verdict service calls it once the annotator has judged it)."""
    Lease.objects.filter(sample_item=sample_item, annotator=annotator).delete()


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
