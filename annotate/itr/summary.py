"""The ITR summary of a dataset's test split (docs/architecture.md#itr): progress, changes by
kind, agreement among reviewers, the label distribution before and after correction, Spearman's
rho between the model's image-text similarity and the category score, the imported list's
fate, and each reviewer's agreement with the final labels.

One computation, several front doors: the API (`GET /api/itr/{dataset}/summary/`), the lead's
dashboard and the benchmark call `itr_summary`. Cost: two queries whatever the size (the test
items' values, the reviews' values), then Python; pinned in tests/itr/test_cost.py.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from annotate.datasets.models import Dataset
from annotate.itr.consensus import CHANGE_KINDS, Labels, category_score, change_kind, pair_code
from annotate.itr.models import ItrItem, ItrReview
from annotate.runtime import import_long_lived
from annotate.validation.metrics import votes_alpha

PAIR_CODES = ("00", "01", "10", "11")
SETTLED = (ItrItem.Status.CONSENSUS, ItrItem.Status.DECIDED)
ITEM_FIELDS = (
    "id",
    "text_is_represented",
    "image_adds",
    "final_text",
    "final_image",
    "status",
    "wanted_reviews",
    "listed",
    "listed_text",
    "listed_image",
    "similarity",
)

# A review as the summary reads it: (ITR item id, reviewer's username, text, image).
ReviewRow = tuple[int, str, int, int]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def label_distribution(labels: list[Labels]) -> dict[str, Any]:
    """Counts of the four types ("00" ... "11") and the % of items whose text is represented
    and whose image adds."""
    counts = Counter(pair_code(pair) for pair in labels)
    n = len(labels)
    return {
        **{code: counts.get(code, 0) for code in PAIR_CODES},
        "text_is_represented_percent": _percent(sum(t for t, _ in labels), n),
        "image_adds_percent": _percent(sum(i for _, i in labels), n),
    }


def spearman(similarities: list[float], labels: list[Labels]) -> dict[str, Any] | None:
    """Spearman's rho between similarity and category score (1..4), with its p-value and the
    number of items; None with fewer than three items or a constant side (undefined)."""
    stats = import_long_lived("scipy.stats")  # on first use: only the summary needs scipy

    n = len(similarities)
    scores = [category_score(pair) for pair in labels]
    if n < 3 or len(set(similarities)) < 2 or len(set(scores)) < 2:
        return None
    result = stats.spearmanr(similarities, scores)
    rho, p = float(result.statistic), float(result.pvalue)
    if math.isnan(rho):
        return None
    return {"rho": round(rho, 4), "p": p, "n": n}


def task_alpha(reviews: Iterable[ReviewRow], task: int) -> float | None:
    """Krippendorff's alpha (nominal) of one task (0 text, 1 image) among reviewers, over the
    items with two or more reviews (a matrix reviewers × items, missing values for items a
    reviewer did not review); None when undefined."""
    votes: dict[int, dict[str, int]] = defaultdict(dict)
    for item_id, reviewer, text, image in reviews:
        votes[item_id][reviewer] = (text, image)[task]
    alpha, _units = votes_alpha(votes, value_domain=[0, 1])
    return None if alpha is None else round(alpha, 4)


def reviewer_agreement(
    reviews: Iterable[ReviewRow], finals: Mapping[int, Labels]
) -> list[dict[str, Any]]:
    """Per reviewer (by username): their reviews, how many are on settled items (those in
    `finals`: {item id: final labels} of the items with a consensus or a decision), and the
    share of those whose labels (both; text; image) equal the final ones (None without any).
    The lead's page reuses it (queue.py)."""
    totals: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    same_text: Counter[str] = Counter()
    same_image: Counter[str] = Counter()
    same_both: Counter[str] = Counter()
    for item_id, reviewer, text, image in reviews:
        totals[reviewer] += 1
        final = finals.get(item_id)
        if final is None:
            continue
        settled[reviewer] += 1
        same_text[reviewer] += text == final[0]
        same_image[reviewer] += image == final[1]
        same_both[reviewer] += (text, image) == final
    return [
        {
            "reviewer": reviewer,
            "reviews": totals[reviewer],
            "settled": settled[reviewer],
            "agreement": _share(same_both[reviewer], settled[reviewer]),
            "agreement_text": _share(same_text[reviewer], settled[reviewer]),
            "agreement_image": _share(same_image[reviewer], settled[reviewer]),
        }
        for reviewer in sorted(totals)
    ]


def split_items(dataset: Dataset) -> list[dict[str, Any]]:
    """The values of a dataset's test items (one query)."""
    rows = ItrItem.objects.filter(dataset=dataset, split=ItrItem.Split.TEST)
    return list(rows.order_by("row").values(*ITEM_FIELDS))


def split_reviews(dataset: Dataset) -> list[ReviewRow]:
    """Every review of a dataset's test items (one query)."""
    rows = ItrReview.objects.filter(item__dataset=dataset, item__split=ItrItem.Split.TEST)
    return list(
        rows.order_by("id").values_list(
            "item_id", "reviewer__username", "text_is_represented", "image_adds"
        )
    )


def _listed(items: list[dict[str, Any]]) -> dict[str, int]:
    listed = [i for i in items if i["listed"]]
    settled = [i for i in listed if i["status"] in SETTLED]
    return {
        "items": len(listed),
        "settled": len(settled),
        "confirmed": sum(
            (i["final_text"], i["final_image"]) == (i["listed_text"], i["listed_image"])
            for i in listed
        ),
        "kept": sum(
            (i["final_text"], i["final_image"]) == (i["text_is_represented"], i["image_adds"])
            for i in settled
        ),
    }


def itr_summary(dataset: Dataset) -> dict[str, Any]:
    """The summary of `dataset`'s test split (see the module docstring); two queries."""
    items = split_items(dataset)
    reviews = split_reviews(dataset)
    originals = [(i["text_is_represented"], i["image_adds"]) for i in items]
    finals = [(i["final_text"], i["final_image"]) for i in items]
    kinds = Counter(change_kind(o, f) for o, f in zip(originals, finals, strict=True))
    quorums = Counter(i["wanted_reviews"] for i in items)
    statuses = Counter(i["status"] for i in items)
    with_similarity = [k for k, i in enumerate(items) if i["similarity"] is not None]
    similarities = [items[k]["similarity"] for k in with_similarity]
    settled = {
        i["id"]: final for i, final in zip(items, finals, strict=True) if i["status"] in SETTLED
    }
    return {
        "items": len(items),
        "reviewed": len({review[0] for review in reviews}),
        "reviews": len(reviews),
        "quorum": quorums.most_common(1)[0][0] if quorums else None,
        "status": {status: statuses.get(status, 0) for status in ItrItem.Status.values},
        **{kind: kinds.get(kind, 0) for kind in CHANGE_KINDS},
        "changed": sum(kinds.get(kind, 0) for kind in CHANGE_KINDS),
        "alpha_text": task_alpha(reviews, 0),
        "alpha_image": task_alpha(reviews, 1),
        "distribution": {
            "before": label_distribution(originals),
            "after": label_distribution(finals),
        },
        "spearman_before": spearman(similarities, [originals[k] for k in with_similarity]),
        "spearman_after": spearman(similarities, [finals[k] for k in with_similarity]),
        "listed": _listed(items),
        "reviewers": reviewer_agreement(reviews, settled),
    }
