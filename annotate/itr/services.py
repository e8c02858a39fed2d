"""ITR state changes: the review queue, reviews, undo, decisions and comments. The API, the
review page, the lead's page and the commands all call these functions; their errors
(annotate/errors.py) carry the status code the API answers.

Every change to an item's reviews or decision happens in one transaction that first locks the
item row, then recomputes the item's consensus state (`refresh_item`), so concurrent reviewers
never lose or double a vote and the stored state always matches the rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotate import leasing
from annotate.datasets.models import Dataset
from annotate.errors import Conflict, Invalid
from annotate.itr.consensus import item_state
from annotate.itr.models import ItrComment, ItrDecision, ItrItem, ItrLease, ItrReview
from annotate.itr.selectors import review_queue_rows

MAX_TEXT = 5000

REVIEW_QUEUE = leasing.WorkQueue(
    lease=ItrLease,
    answer=ItrReview,
    row_field="item",
    worker_field="reviewer",
    count_field="review_count",
    wanted_field="wanted_reviews",
    order=("priority", "row"),
)


class ReviewError(Invalid):
    """A review or decision the rules refuse (bad label value, missing reason): HTTP 400."""


class KeyReused(Conflict):
    """The idempotency key was already used for another item: HTTP 409."""


def binary(value: Any, field: str) -> int:
    """0 or 1 from 0/1, "0"/"1" or a boolean; anything else is refused."""
    if isinstance(value, bool):
        return int(value)
    if value in (0, 1, "0", "1"):
        return int(value)
    raise ReviewError(f"{field} must be 0 or 1")


def _text(value: Any, field: str, *, required: bool = False) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > MAX_TEXT:
        raise ReviewError(f"{field} is longer than {MAX_TEXT} characters")
    if required and not text:
        raise ReviewError(f"{field} is required")
    return text


def review_next(*, dataset: Dataset, reviewer, exclude: Iterable[int] = ()) -> ItrItem | None:
    """Lease and return the reviewer's next test item (listed items first, then the likeliest
    errors, then by row), or None when every item has its quorum or the reviewer's review."""
    return leasing.lease_next(
        REVIEW_QUEUE,
        review_queue_rows(dataset),
        worker=reviewer,
        exclude=exclude,
        related=("item", "dataset"),
    )


STATE_FIELDS = [
    "review_count",
    "proposed_text",
    "proposed_image",
    "final_text",
    "final_image",
    "status",
    "disagreement",
    "margin",
]


def refresh_items(item_ids: list[int]) -> list[ItrItem]:
    """Recompute and store the consensus state of items from their reviews and decisions, in
    three queries whatever their number (the caller holds the rows' locks, or owns them, as an
    import does)."""
    items = list(ItrItem.objects.select_related("decision").filter(pk__in=item_ids))
    votes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    reviews = ItrReview.objects.filter(item_id__in=item_ids).order_by("id")
    for item_id, text, image in reviews.values_list("item_id", "text_is_represented", "image_adds"):
        votes[item_id].append((int(text), int(image)))
    for item in items:
        decision = getattr(item, "decision", None)
        state = item_state(
            item.original,
            votes[item.pk],
            (decision.text_is_represented, decision.image_adds) if decision else None,
            item.wanted_reviews,
        )
        item.review_count = len(votes[item.pk])
        item.proposed_text, item.proposed_image = state.proposed or (None, None)
        item.final_text, item.final_image = state.final
        item.status = state.status
        item.disagreement = state.disagreement
        item.margin = state.margin
    ItrItem.objects.bulk_update(items, STATE_FIELDS, batch_size=900)
    return items


def refresh_item(item_id: int) -> ItrItem:
    """`refresh_items` of one item (the caller holds its row lock)."""
    return refresh_items([item_id])[0]


def _lock(item: ItrItem) -> None:
    ItrItem.objects.select_for_update().filter(pk=item.pk).first()


def review_record(
    *,
    item: ItrItem,
    reviewer,
    text_is_represented: Any,
    image_adds: Any,
    reason: Any = "",
    key: str = "",
    duration_ms: Any = None,
) -> tuple[ItrReview, bool]:
    """Record the reviewer's labels for an item; returns (review, created).

    - the same idempotency `key` again (same item): no-op, returns the review as it is;
    - the same key on another item: KeyReused (409);
    - a reviewer who already reviewed the item: their review is updated, never a second vote;
    - a reason is required when the labels differ from the original ones.
    """
    if item.split != ItrItem.Split.TEST:
        raise ReviewError("only items of the test split are reviewed")
    labels = (binary(text_is_represented, "text_is_represented"), binary(image_adds, "image_adds"))
    reason = _text(reason, "reason", required=labels != item.original)
    key = (key or "").strip()
    if len(key) > 100:
        raise ReviewError("key is longer than 100 characters")
    duration = leasing.answer_duration(duration_ms, ReviewError)
    values = {"text_is_represented": labels[0], "image_adds": labels[1], "reason": reason}
    try:
        with transaction.atomic():
            # One writer per item at a time: repeated and concurrent submissions queue here.
            _lock(item)
            match = Q(item=item) | Q(key=key) if key else Q(item=item)
            found = list(ItrReview.objects.filter(match, reviewer=reviewer))
            for existing in found:
                if key and existing.key == key:
                    if existing.item_id == item.pk:
                        return existing, False
                    raise KeyReused("this key was already used for another item")
            if found:
                review = found[0]
                for field, value in values.items():
                    setattr(review, field, value)
                review.key = key or review.key
                if duration is not None:
                    review.duration_ms = duration
                review.save()
                created = False
            else:
                review = ItrReview.objects.create(
                    item=item, reviewer=reviewer, key=key, duration_ms=duration, **values
                )
                created = True
            leasing.lease_release(REVIEW_QUEUE, item, reviewer)
            refresh_item(item.pk)
    except IntegrityError:
        # The same key raced on two different items (two row locks): all was rolled back.
        same = ItrReview.objects.filter(reviewer=reviewer, key=key).first() if key else None
        if same is not None and same.item_id == item.pk:
            return same, False
        if same is not None:
            raise KeyReused("this key was already used for another item") from None
        raise
    return review, created


def review_undo(*, review: ItrReview) -> ItrItem:
    """Delete one's own review; the item is leased back to the reviewer, so that the review
    page shows it again."""
    item = review.item
    with transaction.atomic():
        _lock(item)
        ItrReview.objects.filter(pk=review.pk).delete()
        leasing.lease_grant(REVIEW_QUEUE, item, review.reviewer, timezone.now())
        return refresh_item(item.pk)


def decision_record(
    *, item: ItrItem, lead, text_is_represented: Any, image_adds: Any, note: Any
) -> tuple[ItrDecision, bool]:
    """A lead's decision on an item (the caller checked the role): created or replaced. The
    note is required: it is the record of why."""
    labels = (binary(text_is_represented, "text_is_represented"), binary(image_adds, "image_adds"))
    text = _text(note, "note", required=True)
    with transaction.atomic():
        _lock(item)
        decision, created = ItrDecision.objects.update_or_create(
            item=item,
            defaults={
                "text_is_represented": labels[0],
                "image_adds": labels[1],
                "note": text,
                "decided_by": lead,
            },
        )
        refresh_item(item.pk)
    return decision, created


def decision_withdraw(*, item: ItrItem) -> ItrItem:
    """Remove a lead's decision: the item goes back to its consensus."""
    with transaction.atomic():
        _lock(item)
        ItrDecision.objects.filter(item=item).delete()
        return refresh_item(item.pk)


def comment_add(*, item: ItrItem, author, text: Any) -> ItrComment:
    return ItrComment.objects.create(
        item=item, author=author, text=_text(text, "comment", required=True)
    )


def quorum_set(*, dataset: Dataset, quorum: int) -> int:
    """Change the number of reviews wanted per test item; returns how many items changed."""
    if not 1 <= quorum <= 20:
        raise ReviewError("quorum must be between 1 and 20")
    with transaction.atomic():
        rows = ItrItem.objects.select_for_update().filter(dataset=dataset)
        ids = list(rows.exclude(wanted_reviews=quorum).values_list("pk", flat=True))
        ItrItem.objects.filter(pk__in=ids).update(wanted_reviews=quorum)
        refresh_items(ids)
    return len(ids)


def priorities_refresh(*, dataset: Dataset) -> None:
    """Queue order: listed items first, then by model score (probability of the item's own
    labels, lowest first; unscored items after the scored ones), then by row. One UPDATE with a
    window function (PostgreSQL, and SQLite >= 3.33 for UPDATE ... FROM)."""
    table = ItrItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET priority = ranked.position
            FROM (
                SELECT id, ROW_NUMBER() OVER (
                    ORDER BY listed DESC, COALESCE(model_score, 2.0), "row"
                ) - 1 AS position
                FROM {table} WHERE dataset_id = %s
            ) AS ranked
            WHERE {table}.id = ranked.id
            """,  # noqa: S608 - the table name is the model's, the value a parameter
            [dataset.pk],
        )
