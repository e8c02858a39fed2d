"""The ITR consensus rule (docs/architecture.md#itr), pure functions with no database.

Per task, once an item has at least `quorum` reviews, the majority value of that task is the
proposed label; a tie keeps the original. A lead's decision overrides the proposal. The final
labels are the decision, else the proposal, else the original.

Labels are pairs (text_is_represented, image_adds) of 0/1. The four types are their pairs;
the category score of correlation studies is 1 (0,0), 2 (0,1), 3 (1,0), 4 (1,1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Labels = tuple[int, int]

# Change kinds, in the order of the published list: text only, image only, both.
CHANGE_KINDS = ("text", "image", "both")


def category_score(labels: Labels) -> int:
    return 1 + 2 * labels[0] + labels[1]


def change_kind(original: Labels, final: Labels) -> str | None:
    """ "text", "image", "both", or None when nothing changed."""
    text, image = original[0] != final[0], original[1] != final[1]
    if text and image:
        return "both"
    if text:
        return "text"
    return "image" if image else None


def pair_code(labels: Labels) -> str:
    """`01` for text_is_represented=0, image_adds=1 (the list format)."""
    return f"{labels[0]}{labels[1]}"


def task_majority(original: int, votes: Sequence[int]) -> int:
    """The majority value of one task; a tie keeps the original."""
    ones = sum(votes)
    zeros = len(votes) - ones
    if ones == zeros:
        return original
    return 1 if ones > zeros else 0


@dataclass(frozen=True)
class ItemState:
    proposed: Labels | None  # the reviewers' majority, once the quorum is reached
    final: Labels
    status: str  # pending | in_review | consensus | decided
    disagreement: bool  # reviewers split, or their majority differs from the original
    margin: float | None  # smallest |ones - zeros| / n of the two tasks; None without votes


def item_state(
    original: Labels, votes: Sequence[Labels], decision: Labels | None, quorum: int
) -> ItemState:
    n = len(votes)
    majority = (
        (
            task_majority(original[0], [v[0] for v in votes]),
            task_majority(original[1], [v[1] for v in votes]),
        )
        if n
        else None
    )
    proposed = majority if n >= max(quorum, 1) else None
    if decision is not None:
        status, final = "decided", decision
    elif proposed is not None:
        status, final = "consensus", proposed
    else:
        status, final = ("in_review" if n else "pending"), original
    split = n > 1 and (len({v[0] for v in votes}) > 1 or len({v[1] for v in votes}) > 1)
    margin = None
    if n:
        margin = min(abs(2 * sum(v[task] for v in votes) - n) / n for task in (0, 1))
    return ItemState(
        proposed=proposed,
        final=final,
        status=status,
        disagreement=split or (majority is not None and majority != original),
        margin=margin,
    )


# The four types (keys 1-4 on the review page): their labels, category score and names.
TYPES = [
    {
        "number": category_score((text, image)),
        "text": text,
        "image": image,
        "name": name,
        "title": ("text represented" if text else "text not represented")
        + (", image adds" if image else ", image does not add"),
    }
    for (text, image), name in (
        ((0, 0), "neither"),
        ((0, 1), "image adds"),
        ((1, 0), "text in image"),
        ((1, 1), "both"),
    )
]
