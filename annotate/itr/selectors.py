"""Permission-checked reads of ITR datasets, items and reviews (other datasets answer 404), and
the review progress that the review page and the dashboard show."""

from typing import Any

from django.db.models import Count, F, Q, QuerySet

from annotate.datasets.access import fetch_for_user
from annotate.datasets.models import Dataset, Role
from annotate.itr.models import ItrItem, ItrReview


def get_itr_dataset_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> tuple[Dataset, str]:
    """(ITR dataset, caller's role), or 404 (`fetch_for_user`); other kinds of dataset too."""
    datasets = Dataset.objects.filter(kind=Dataset.Kind.ITR)
    return fetch_for_user(datasets, pk, user, dataset_field="pk", minimum=minimum)


def get_itr_item_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> tuple[ItrItem, str]:
    """(ITR item, caller's role), or 404 (`fetch_for_user`)."""
    items = ItrItem.objects.select_related("item", "dataset")
    return fetch_for_user(items, pk, user, dataset_field="dataset", minimum=minimum)


def get_own_review_for_user(user, pk) -> tuple[ItrReview, str]:
    """(one of the caller's own reviews, caller's role), or 404 (`fetch_for_user`)."""
    reviews = ItrReview.objects.filter(reviewer=user.pk).select_related("item__dataset")
    return fetch_for_user(reviews, pk, user, dataset_field="item__dataset")


def review_queue_rows(dataset: Dataset) -> QuerySet[ItrItem]:
    """The rows of a dataset's review queue: its test split."""
    return ItrItem.objects.filter(dataset=dataset, split=ItrItem.Split.TEST)


def review_progress(*, dataset: Dataset, reviewer) -> dict[str, Any]:
    """The reviewer's count of reviews, and how many test items have their quorum."""
    mine = ItrReview.objects.filter(item__dataset=dataset, reviewer=reviewer).count()
    counts = review_queue_rows(dataset).aggregate(
        total=Count("pk"), quorum=Count("pk", filter=Q(review_count__gte=F("wanted_reviews")))
    )
    total = counts["total"] or 0
    return {
        "mine": mine,
        "quorum": counts["quorum"] or 0,
        "total": total,
        "percent": round(100 * (counts["quorum"] or 0) / total, 1) if total else 0.0,
    }


def itr_items(dataset: Dataset, query: dict[str, Any]) -> QuerySet[ItrItem]:
    """The dataset's ITR items with the API's allow-listed filters (`split`, `status`, `listed`,
    `changed`: final labels differ from the published ones), never user input as lookups."""
    items = ItrItem.objects.filter(dataset=dataset)
    if "split" in query:
        items = items.filter(split=query["split"])
    if "status" in query:
        items = items.filter(status=query["status"])
    if query.get("listed") is not None:
        items = items.filter(listed=query["listed"])
    if query.get("changed") is not None:
        changed = ~Q(final_text=F("text_is_represented")) | ~Q(final_image=F("image_adds"))
        items = items.filter(changed) if query["changed"] else items.exclude(changed)
    return items


def own_reviews(user, items: list[ItrItem]) -> dict[int, ItrReview]:
    """{item id: the user's review} for a page of items, in one query."""
    reviews = ItrReview.objects.filter(reviewer=user.pk, item__in=[i.pk for i in items])
    return {r.item_id: r for r in reviews.select_related("reviewer")}
