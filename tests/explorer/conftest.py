"""A run written through the real write path (`predictions_write`: COPY on PostgreSQL), with
image-only and caption-only top labels, two samples, verdicts that agree, disagree and are
adjudicated. Actors: lee (lead), ann and abe (annotators), otto (outsider)."""

from dataclasses import dataclass

import numpy as np
import pytest

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.models import Adjudication, Sample, SampleItem
from annotate.validation.services import verdict_record
from classifier.models import ClassificationRun, Prediction
from classifier.services import predictions_write

N_ITEMS = 40
SCRIPT_CAPTION = '<script>alert("owned")</script> a street'


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Explored:
    run: ClassificationRun
    labels: list[Label]
    items: list[Item]
    predictions: list[Prediction]  # in item order
    sample: Sample
    other_sample: Sample
    sample_items: list[SampleItem]


def write_run(dataset: Dataset, taxonomy: Taxonomy, items: list[Item], **fields):
    """A succeeded weighted run over `items`: probabilities in ten steps (so four items tie on
    each), top labels cycling over four labels; every third item's caption disagrees with its
    image, every fifth has no caption (null caption-only label)."""
    labels = list(taxonomy.labels.order_by("position"))
    label_ids = np.array([label.pk for label in labels])
    n = len(items)
    index = np.arange(n)
    top = np.stack([index % 4, (index + 1) % 4, (index + 2) % 4], axis=1)
    first = np.round((index % 10) / 10 + 0.05, 2)
    probs = np.stack([first, (1 - first) / 2, (1 - first) / 4], axis=1)
    text_top = np.where(index % 3 == 0, (top[:, 0] + 1) % len(labels), top[:, 0])
    text_top = np.where(index % 5 == 0, -1, text_top)
    text_max = np.where(index % 5 == 0, np.nan, 0.5)
    run = ClassificationRun.objects.create(
        dataset=dataset, taxonomy=taxonomy, ensemble="weighted", status="succeeded", **fields
    )
    predictions_write(
        run_id=run.pk, item_ids=np.array([i.pk for i in items]), label_ids=label_ids,
        top_labels=top, top_probs=probs, image_max=first, text_max=text_max,
        image_top=top[:, 0], text_top=text_top, replace=True,
    )  # fmt: skip
    return run


@pytest.fixture
def taxonomy(db) -> Taxonomy:
    tax = Taxonomy.objects.create(name="scenes")
    names = ["street", "beach", "forest", "kitchen", "office", "street"]  # a repeated name
    Label.objects.bulk_create(
        Label(taxonomy=tax, key=f"/s/{name}{i}", name=name if i < 5 else "street", position=i)
        for i, name in enumerate(names)
    )
    return tax


@pytest.fixture
def explored(dataset: Dataset, taxonomy: Taxonomy, lee, ann, abe) -> Explored:
    Item.objects.bulk_create(
        Item(
            dataset=dataset,
            external_id=f"img{i:03d}.jpg",
            image_path=f"img{i:03d}.jpg",
            caption=SCRIPT_CAPTION if i == 0 else f"caption {i}",
        )
        for i in range(N_ITEMS)
    )
    items = list(dataset.items.order_by("id"))
    run = write_run(dataset, taxonomy, items, name="scenes run")
    predictions = list(Prediction.objects.filter(run=run).order_by("item_id"))
    sample = Sample.objects.create(run=run, redundancy=2)
    SampleItem.objects.bulk_create(
        SampleItem(sample=sample, prediction=p, position=i, wanted_verdicts=2)
        for i, p in enumerate(predictions[:12])
    )
    sample_items = list(sample.items.order_by("position"))
    for si, values in zip(
        sample_items,
        [("hit", "hit"), ("miss", "miss"), ("hit", "miss"), ("hit",), ("hit", "miss"), ("skip",)],
        strict=False,
    ):
        for annotator, value in zip((ann, abe), values, strict=False):
            verdict_record(sample_item=si, annotator=annotator, value=value)
    Adjudication.objects.create(
        sample_item=sample_items[4], value="miss", note="the sign says bakery", decided_by=lee
    )
    other = Sample.objects.create(run=run)
    SampleItem.objects.create(sample=other, prediction=predictions[0], position=0)
    other_item = SampleItem.objects.create(sample=other, prediction=predictions[6], position=1)
    verdict_record(sample_item=other_item, annotator=lee, value="miss")
    return Explored(run, list(taxonomy.labels.order_by("position")), items, predictions,
                    sample, other, sample_items)  # fmt: skip
