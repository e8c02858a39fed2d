"""Permission-checked reads of datasets and items (other datasets answer 404)."""

from django.db.models import Count, QuerySet
from django.http import Http404

from annotate.accounts.roles import has_role
from annotate.datasets.models import Dataset, Item, Role

# The only values `?status=` may filter on (never pass user input to ORM lookups).
ITEM_STATUSES = set(Item.Status.values)


def datasets_for_user(user) -> QuerySet[Dataset]:
    return Dataset.objects.for_user(user).annotate(item_count=Count("items"))


def get_item_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> Item:
    """The item if the user has at least `minimum` role on its dataset; 404 otherwise."""
    try:
        item = Item.objects.select_related("dataset").get(pk=pk)
    except (Item.DoesNotExist, ValueError, TypeError):
        raise Http404("No such item") from None
    if not has_role(user, item.dataset, minimum):
        raise Http404("No such item")
    return item


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
