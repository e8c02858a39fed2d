"""Work queues with leases: which row a worker sees next. One implementation serves the hit/miss
sample items (`annotate/validation/assignment.py`) and the ITR review queue
(`annotate/itr/services.py`); see docs/architecture.md#annotation-leases.

Rules:
- a row is offered only while `done count + active leases of others < wanted`, so with one
  wanted answer it is leased to one worker at a time;
- a worker never gets a row they already answered;
- a lease lasts `SIEVE_LEASE_SECONDS` (default 300 s); an expired lease frees the slot;
- a worker may hold a few leases at once (a page shows one row and preloads the next); asking
  again returns their oldest still-valid lease first, so a reload resumes the same row.

Concurrency: candidates are locked with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so
two workers never wait on or collide over one row. The lease count in that query comes from
the statement's snapshot, which can be stale for a row whose lock was released a moment ago;
so once a row is locked, its capacity is checked again with a fresh statement before leasing.
On SQLite, `transaction_mode=IMMEDIATE` makes every transaction take the write lock first, so
writers are serialized anyway.

No app imports here: the apps describe their queue with a `WorkQueue`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

BATCH = 1  # rows locked per attempt: lock only what we lease
ATTEMPTS = 20
LOCKED_WAIT = 0.05  # seconds to wait when every row with room is locked by a writer


@dataclass(frozen=True)
class WorkQueue:
    """How one kind of work row is leased.

    `lease` has a foreign key `row_field` to the row, `worker_field` to the user and an
    `expires` time; `answer` (one row per worker and work row) has the same two foreign keys.
    The work row counts its answers in `count_field` and wants `wanted_field` of them; rows
    are offered in `order`."""

    lease: type[Model]
    answer: type[Model]
    row_field: str
    worker_field: str
    count_field: str
    wanted_field: str
    order: tuple[str, ...]


MAX_DURATION_MS = 24 * 3600 * 1000


def answer_duration(value: Any, error: type[Exception]) -> int | None:
    """The milliseconds a worker spent on a row before answering, as the page measures it:
    None when not given, else an integer from 0 to 24 h (`error` otherwise)."""
    if value in (None, ""):
        return None
    try:
        duration = int(value)
    except (TypeError, ValueError):
        raise error("duration_ms must be an integer") from None
    if not 0 <= duration <= MAX_DURATION_MS:
        raise error("duration_ms is out of range")
    return duration


def lease_seconds() -> int:
    return int(getattr(settings, "SIEVE_LEASE_SECONDS", 300))


def _others_leases(queue: WorkQueue, now: datetime, worker: Any) -> Subquery:
    return Subquery(
        queue.lease._default_manager.filter(**{queue.row_field: OuterRef("pk")}, expires__gt=now)
        .exclude(**{queue.worker_field: worker})
        .order_by()
        .values(queue.row_field)
        .annotate(n=Count("id"))
        .values("n"),
        output_field=IntegerField(),
    )


def _room(queue: WorkQueue) -> Q:
    return Q(**{f"{queue.count_field}__lt": F(queue.wanted_field) - F("others")})


def lease_grant(
    queue: WorkQueue, row: Model, worker: Any, now: datetime, *, exists: bool | None = None
) -> Model:
    """Lease (or extend the lease of) `row` to `worker` from `now`.

    `exists` says whether a lease (live or expired) of this worker is already there, when the
    caller knows; the caller holds the row's lock (or SQLite's write lock)."""
    expires = now + timedelta(seconds=lease_seconds())
    who = {queue.row_field: row, queue.worker_field: worker}
    lease = queue.lease._default_manager.filter(**who)
    if exists is None:  # unknown: try an update first
        exists = bool(lease.update(expires=expires))
    elif exists:
        lease.update(expires=expires)
    if not exists:
        queue.lease._default_manager.create(**who, expires=expires)
    return row


def lease_release(queue: WorkQueue, row: Model, worker: Any) -> None:
    """Give a row back (the answer services call it once the worker has answered)."""
    queue.lease._default_manager.filter(
        **{queue.row_field: row, queue.worker_field: worker}
    ).delete()


def _has_room(queue: WorkQueue, rows: QuerySet, pk: int, worker: Any, now: datetime) -> bool:
    """Fresh check (new statement, new snapshot) for a row this transaction has locked."""
    others = Coalesce(_others_leases(queue, now, worker), Value(0))
    return (
        rows.model._default_manager.filter(pk=pk)
        .annotate(others=others)
        .filter(_room(queue))
        .exists()
    )


def lease_next(
    queue: WorkQueue,
    rows: QuerySet,
    *,
    worker: Any,
    exclude: Iterable[int] = (),
    related: Iterable[str] = (),
) -> Any:
    """Lease and return the worker's next row of `rows` (the queue's rows, e.g. one sample's
    items), or None when none is left.

    `exclude` lists row ids the caller already holds (the row on screen), so that a page can
    ask for the one to preload; `related` is passed to select_related (what the caller shows;
    the row lock stays on the work row only)."""
    exclude = [int(pk) for pk in exclude]
    now = timezone.now()
    answered = queue.answer._default_manager.filter(
        **{queue.worker_field: worker, queue.row_field: OuterRef("pk")}
    )
    base = (
        rows.filter(**{f"{queue.count_field}__lt": F(queue.wanted_field)})
        .exclude(pk__in=exclude)
        .exclude(Exists(answered))
        .select_related(*related)
    )
    leases = queue.lease._default_manager
    with transaction.atomic():
        # 1. Resume: a row already leased to me, so that a reload shows the same row. Read
        #    from my (few) leases, not by scanning the queue.
        mine = (
            leases.filter(
                **{queue.worker_field: worker, f"{queue.row_field}__in": rows.values("pk")},
                expires__gt=now,
            )
            .exclude(**{f"{queue.row_field}_id__in": exclude})
            .order_by(*(f"{queue.row_field}__{field}" for field in queue.order))
            .values_list(f"{queue.row_field}_id", flat=True)
        )
        for pk in mine:
            row = base.filter(pk=pk).first()
            if row is not None:
                return lease_grant(queue, row, worker, now, exists=True)
        # 2. The first row with room in queue order, skipping rows that other workers hold
        #    locked right now; an index on the order lets the scan stop early.
        my_lease = leases.filter(**{queue.row_field: OuterRef("pk"), queue.worker_field: worker})
        candidates = (
            base.annotate(
                my_lease_expires=Subquery(my_lease.values("expires")[:1]),
                others=Coalesce(_others_leases(queue, now, worker), Value(0)),
            )
            .filter(_room(queue))
            .filter(Q(my_lease_expires__isnull=True) | Q(my_lease_expires__lte=now))
            .order_by(*queue.order)
        )
        unlocked = candidates
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        skipped: list[int] = []
        for _ in range(ATTEMPTS):
            batch = list(candidates.exclude(pk__in=skipped)[:BATCH])
            if not batch:
                # Rows with room may be locked for a moment by another worker's answer (an
                # item that wants several answers): wait for that write rather than report
                # an empty queue.
                if not unlocked.exclude(pk__in=skipped).exists():
                    return None
                time.sleep(LOCKED_WAIT)
                continue
            for row in batch:
                if _has_room(queue, rows, row.pk, worker, now):
                    exists = row.my_lease_expires is not None  # an expired lease of mine
                    return lease_grant(queue, row, worker, now, exists=exists)
                skipped.append(row.pk)
    return None
