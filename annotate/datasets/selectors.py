"""Permission-checked reads of datasets and items (other datasets answer 404)."""

from typing import TypeVar

from django.db.models import Count, Model, QuerySet

from annotate.datasets.access import fetch_for_user
from annotate.datasets.models import Dataset, DatasetQuerySet, Item, Role

M = TypeVar("M", bound=Model)

# The only values `?status=` may filter on (never pass user input to ORM lookups).
ITEM_STATUSES = set(Item.Status.values)


def datasets_for_user(user) -> DatasetQuerySet:
    return Dataset.objects.for_user(user).annotate(item_count=Count("items"))


def get_dataset_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> tuple[Dataset, str]:
    """(dataset, caller's role), or 404 (`fetch_for_user`)."""
    return fetch_for_user(Dataset.objects.all(), pk, user, dataset_field="pk", minimum=minimum)


def get_item_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> tuple[Item, str]:
    """(item, caller's role), or 404 (`fetch_for_user`)."""
    items = Item.objects.select_related("dataset")
    return fetch_for_user(items, pk, user, dataset_field="dataset", minimum=minimum)


def items_of_dataset(dataset: Dataset, *, status: str | None = None) -> QuerySet[Item]:
    items = dataset.items.order_by("id")
    if status in ITEM_STATUSES:
        items = items.filter(status=status)
    return items


def item_counts_by_status(dataset: Dataset) -> dict[str, int]:
    counts = dict.fromkeys(Item.Status.values, 0)
    for row in dataset.items.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def find_by_name_or_id(queryset: QuerySet[M], value: str | int) -> M | None:
    """The row of `queryset` named `value`, else the one whose id it is (commands and the API
    name datasets and taxonomies either way); None when there is neither."""
    text = str(value)
    found = queryset.filter(name=text).first()
    if found is None and text.isascii() and text.isdigit():
        found = queryset.filter(pk=int(text)).first()
    return found
