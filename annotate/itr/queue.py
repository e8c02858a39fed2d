"""The lead's adjudication queue (docs/architecture.md#itr-adjudication): the items whose
reviewers disagree (`ItrItem.disagreement`), the weakest consensus first.

Ranking:
- **crowdlab**, when the dataset has a model signal: cleanlab's multi-annotator label quality
  (CROWDLAB, `get_label_quality_multiannotator`) over every reviewed item, the four types as
  classes (class = 2 · text_is_represented + image_adds), the labels matrix items × reviewers
  with NaN where a reviewer did not review, and pred_probs from the signal as a product over
  the two tasks (P(t, i) = P_text(t) · P_image(i)); items without a signal (no image) take the
  train split's base rates. Lowest `consensus_quality_score` first.
- **margin** otherwise, or when CROWDLAB cannot rank (one reviewer, no item with two reviews,
  or any error): the smaller vote margin of the two tasks, smallest first.
Ties go by margin, then row. The answer says which ranking was used and why.

CROWDLAB's scores depend only on the reviews and the signal, so they are cached (Django's
cache) under a key made of the signal's time and the reviews' count, id sum and latest update:
a new, changed or undone review gives a new key. Decisions do not enter CROWDLAB (a lead's
decision is not one more vote), so they need no new scores. The queue takes the same number
of queries whatever the dataset's size.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Max, Prefetch, Sum
from django.db.models.functions import Coalesce

from annotate.datasets.models import Dataset
from annotate.itr.models import ItrComment, ItrItem, ItrReview, ItrSignal
from annotate.itr.summary import SETTLED, reviewer_agreement, split_reviews
from annotate.runtime import import_long_lived

log = logging.getLogger(__name__)

CROWDLAB, MARGIN = "crowdlab", "margin"
CACHE_SECONDS = 24 * 3600
DEFAULT_LIMIT = 20  # items per page of the queue (the page and the API)


def type_of(text: int, image: int) -> int:
    """The class index of a label pair: 0 (00), 1 (01), 2 (10), 3 (11)."""
    return 2 * int(text) + int(image)


def pair_of(index: int) -> tuple[int, int]:
    return (index // 2, index % 2)


def pred_probs_of(p_text: np.ndarray, p_image: np.ndarray) -> np.ndarray:
    """[N, 4] probabilities of the four types from the two tasks' P(label = 1)."""
    t, i = np.clip(p_text, 1e-6, 1 - 1e-6), np.clip(p_image, 1e-6, 1 - 1e-6)
    probs = np.stack([(1 - t) * (1 - i), (1 - t) * i, t * (1 - i), t * i], axis=1)
    return probs / probs.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- CROWDLAB


class CannotRank(Exception):
    """CROWDLAB cannot rank this input; the message says why (shown to the lead)."""


def crowdlab_scores(
    reviews: list[tuple[int, str, int, int, float | None, float | None]],
    prior: tuple[float, float],
) -> dict[str, Any]:
    """CROWDLAB over `reviews` rows (item, reviewer's name, text, image, p_text, p_image); items
    without p_text/p_image take `prior`. Returns {"items": {item: [score, consensus class]},
    "reviewers": {reviewer: quality}}, or raises CannotRank."""
    items = sorted({r[0] for r in reviews})
    reviewers = sorted({r[1] for r in reviews})
    if len(reviewers) < 2:
        raise CannotRank("CROWDLAB needs at least two reviewers")
    item_index = {pk: n for n, pk in enumerate(items)}
    reviewer_index = {pk: n for n, pk in enumerate(reviewers)}
    labels = np.full((len(items), len(reviewers)), np.nan)
    p_text = np.full(len(items), prior[0])
    p_image = np.full(len(items), prior[1])
    for item, reviewer, text, image, pt, pi in reviews:
        n = item_index[item]
        labels[n, reviewer_index[reviewer]] = type_of(text, image)
        if pt is not None and pi is not None:
            p_text[n], p_image[n] = pt, pi
    if not ((~np.isnan(labels)).sum(axis=1) > 1).any():
        raise CannotRank("CROWDLAB needs an item with two reviews or more")
    multiannotator = import_long_lived("cleanlab.multiannotator")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = multiannotator.get_label_quality_multiannotator(
                labels,
                pred_probs_of(p_text, p_image),
                return_detailed_quality=False,
                verbose=False,
            )
    except Exception as exc:  # cleanlab's checks raise assorted errors on degenerate input
        log.warning("CROWDLAB failed: %s", exc)
        raise CannotRank(f"CROWDLAB failed: {str(exc).splitlines()[0][:200]}") from None
    quality = result["label_quality"]
    stats = result["annotator_stats"]
    return {
        "items": {
            pk: [float(s), int(c)]
            for pk, s, c in zip(
                items, quality["consensus_quality_score"], quality["consensus_label"], strict=True
            )
        },
        "reviewers": {
            reviewers[int(col)]: float(q) for col, q in stats["annotator_quality"].items()
        },
    }


def _state_key(dataset: Dataset, signal: ItrSignal) -> str:
    """A cache key that changes whenever a review or the signal changes (one query)."""
    state = ItrReview.objects.filter(item__dataset=dataset).aggregate(
        n=Count("id"), ids=Coalesce(Sum("id"), 0), updated=Max("updated")
    )
    stamp = state["updated"].timestamp() if state["updated"] else 0
    raw = (
        f"{dataset.pk}:{signal.pk}:{signal.created.timestamp()}:{state['n']}:{state['ids']}:{stamp}"
    )
    return "sieve:itr-crowdlab:" + hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()


def dataset_crowdlab(dataset: Dataset, signal: ItrSignal) -> dict[str, Any]:
    """The dataset's CROWDLAB scores, from the cache when the reviews did not change. A
    failure is cached too (`{"error": why}`), so a degenerate dataset is not retried on
    every request."""
    key = _state_key(dataset, signal)
    found = cache.get(key)
    if found is not None:
        return found
    rows = list(
        ItrReview.objects.filter(item__dataset=dataset).values_list(
            "item_id", "reviewer__username", "text_is_represented", "image_adds",
            "item__p_text", "item__p_image",
        )
    )  # fmt: skip
    details = signal.details or {}
    prior = (float(details.get("prior_text", 0.5)), float(details.get("prior_image", 0.5)))
    try:
        scores = crowdlab_scores(rows, prior)
    except CannotRank as exc:
        scores = {"error": str(exc)}
    cache.set(key, scores, CACHE_SECONDS)
    return scores


# ---------------------------------------------------------------- the queue


def _ranked_ids(dataset: Dataset, status: str | None, scores: dict | None) -> list[int]:
    """The queue's item ids in ranking order (one query)."""
    items = ItrItem.objects.filter(dataset=dataset, disagreement=True)
    if status:
        items = items.filter(status=status)
    rows = list(items.values_list("pk", "margin", "row"))

    def key(row: tuple) -> tuple:
        pk, margin, number = row
        score = scores.get(pk, [2.0])[0] if scores is not None else 0.0
        return (score, margin if margin is not None else 2.0, number)

    return [row[0] for row in sorted(rows, key=key)]


def _page_items(ids: list[int]) -> list[ItrItem]:
    """The page's items with their tweet, decision, reviews and comments (three queries)."""
    found = (
        ItrItem.objects.filter(pk__in=ids)
        .select_related("item", "decision__decided_by")
        .prefetch_related(
            Prefetch("reviews", ItrReview.objects.select_related("reviewer").order_by("id")),
            Prefetch("comments", ItrComment.objects.select_related("author").order_by("id")),
        )
    )
    by_id = {item.pk: item for item in found}
    return [by_id[pk] for pk in ids if pk in by_id]


@dataclass
class Vote:
    review: ItrReview
    agrees: bool  # with the item's final labels


@dataclass
class QueueEntry:
    """An item of the lead's queue with what the page and the API show about it."""

    item: ItrItem  # with its tweet, decision and comments
    votes: list[Vote]
    consensus_quality: float | None  # CROWDLAB's score, when ranked by it
    crowdlab_label: tuple[int, int] | None  # CROWDLAB's consensus labels


def _entries(items: list[ItrItem], scores: dict | None) -> list[QueueEntry]:
    entries = []
    for item in items:
        score = scores.get(item.pk) if scores is not None else None
        votes = [
            Vote(r, (r.text_is_represented, r.image_adds) == item.final) for r in item.reviews.all()
        ]
        entries.append(
            QueueEntry(
                item=item,
                votes=votes,
                consensus_quality=round(score[0], 4) if score else None,
                crowdlab_label=pair_of(score[1]) if score else None,
            )
        )
    return entries


def _scores(dataset: Dataset) -> tuple[ItrSignal | None, dict[str, Any]]:
    signal = ItrSignal.objects.filter(dataset=dataset).first()
    return signal, (dataset_crowdlab(dataset, signal) if signal is not None else {})


def queue_entry(item: ItrItem) -> QueueEntry:
    """One item as the queue shows it (its card, redrawn after a decision)."""
    _, crowdlab = _scores(item.dataset)
    return _entries(_page_items([item.pk]), crowdlab.get("items"))[0]


def reviewers_agreement(dataset: Dataset) -> list[dict[str, Any]]:
    """Each reviewer's agreement with the final labels of the settled items they reviewed
    (summary.py's `reviewer_agreement`, the dashboard's numbers; two queries)."""
    settled = ItrItem.objects.filter(dataset=dataset, status__in=SETTLED)
    finals = {pk: (t, i) for pk, t, i in settled.values_list("pk", "final_text", "final_image")}
    return reviewer_agreement(split_reviews(dataset), finals)


def lead_queue(
    dataset: Dataset,
    *,
    status: str | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of the lead's queue: {"ranking", "ranking_note" (why not CROWDLAB), "signal",
    "count", "entries" (QueueEntry), "reviewers" (agreement with the final labels, and
    CROWDLAB's annotator quality when ranked by it)}."""
    signal, crowdlab = _scores(dataset)
    ranking = MARGIN
    note: str | None = "no model signal"
    scores: dict | None = None
    if signal is not None:
        if "error" in crowdlab:
            note = str(crowdlab["error"])
        else:
            ranking, note, scores = CROWDLAB, None, crowdlab["items"]
    ids = _ranked_ids(dataset, status, scores)
    entries = _entries(_page_items(ids[offset : offset + limit]), scores)
    reviewers = reviewers_agreement(dataset)
    quality = crowdlab.get("reviewers", {}) if ranking == CROWDLAB else {}
    for row in reviewers:
        value = quality.get(row["reviewer"])
        row["quality"] = round(value, 4) if value is not None else None
    return {
        "ranking": ranking,
        "ranking_note": note,
        "signal": signal,
        "count": len(ids),
        "entries": entries,
        "reviewers": reviewers,
    }
