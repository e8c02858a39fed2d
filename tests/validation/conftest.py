"""Runs with predictions, built directly with the ORM (the classifier is tested elsewhere)."""

from collections.abc import Callable

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label, Taxonomy
from classifier.models import ClassificationRun, Prediction

# Label frequencies of the default run: 12 labels, the 10 most frequent have >= 100 items,
# two labels tie at 120 (broken by key).
SIZES = [150, 140, 130, 120, 120, 115, 110, 108, 105, 103, 60, 5]


@pytest.fixture
def taxonomy(db) -> Taxonomy:
    tax = Taxonomy.objects.create(name="places")
    Label.objects.bulk_create(
        [
            Label(taxonomy=tax, key=f"/l/label{i:02d}", name=f"label {i:02d}", position=i)
            for i in range(len(SIZES) + 3)
        ]
    )
    return tax


@pytest.fixture
def other_taxonomy(db) -> Taxonomy:
    tax = Taxonomy.objects.create(name="other")
    Label.objects.create(taxonomy=tax, key="/o/elsewhere", name="elsewhere")
    return tax


def build_run(
    dataset: Dataset, taxonomy: Taxonomy, sizes: list[int], prefix: str = "img"
) -> ClassificationRun:
    """A succeeded run whose label i is predicted sizes[i] times; probabilities spread 0..1."""
    labels = list(taxonomy.labels.order_by("position"))
    run = ClassificationRun.objects.create(
        dataset=dataset,
        taxonomy=taxonomy,
        status=ClassificationRun.Status.SUCCEEDED,
        ensemble=ClassificationRun.Ensemble.EXTERNAL,
    )
    n = sum(sizes)
    items = Item.objects.bulk_create(
        [
            Item(
                dataset=dataset,
                external_id=f"{prefix}{run.pk}-{i:06d}.jpg",
                image_path=f"{prefix}{i:06d}.jpg",
                caption=f"caption {i} <b>bold</b>",
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    preds = []
    index = 0
    for label_index, size in enumerate(sizes):
        label = labels[label_index]
        runners = [lb for lb in labels if lb.pk != label.pk][:4]
        for _ in range(size):
            p = (index % 97) / 96
            top5 = [[label.pk, p]] + [[r.pk, p / (k + 2)] for k, r in enumerate(runners)]
            preds.append(Prediction(run=run, item=items[index], label=label, probability=p,
                                    top5=top5))  # fmt: skip
            index += 1
    Prediction.objects.bulk_create(preds, batch_size=2000)
    return run


@pytest.fixture
def make_run(dataset, taxonomy) -> Callable[..., ClassificationRun]:
    counter = iter(range(1000))

    def make(sizes: list[int] | None = None) -> ClassificationRun:
        return build_run(dataset, taxonomy, sizes or SIZES, prefix=f"r{next(counter)}-")

    return make


@pytest.fixture
def run(make_run) -> ClassificationRun:
    return make_run()


def api_for(user) -> APIClient:
    """An API client authenticated with the user's token (token auth: no CSRF involved)."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
