"""Dashboard fixtures: runs and samples built directly with the ORM (bulk inserts); verdicts
through `verdict_record`, as users give them.

`published` reproduces the study's table: a 1,000-item sample (10 labels × 100) with 460 hits
and, at θ = 0.6, 507 classified, 270 hits and 237 errors.
"""

import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.models import Sample, SampleItem
from annotate.validation.services import verdict_record
from classifier.models import ClassificationRun, Prediction


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Runs before the user fixtures: cheap hashing keeps these tests fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Built:
    taxonomy: Taxonomy
    labels: list[Label]
    items: list[Item]
    run: ClassificationRun
    predictions: list[Prediction]
    sample: Sample
    sample_items: list[SampleItem] = field(default_factory=list)


def make_labels(n: int = 12, name: str = "places") -> tuple[Taxonomy, list[Label]]:
    taxonomy = Taxonomy.objects.create(name=name)
    Label.objects.bulk_create(
        Label(taxonomy=taxonomy, key=f"/l/label{i:02d}", name=f"label {i:02d}", position=i)
        for i in range(n)
    )
    return taxonomy, list(Label.objects.filter(taxonomy=taxonomy).order_by("position"))


def make_items(dataset: Dataset, n: int, prefix: str = "img") -> list[Item]:
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"{prefix}{i:05d}.jpg", image_path=f"{prefix}{i:05d}.jpg")
        for i in range(n)
    )
    return list(Item.objects.filter(dataset=dataset, external_id__startswith=prefix).order_by("id"))


def make_run(dataset, taxonomy, items, labels, probabilities, name="run") -> tuple:
    run = ClassificationRun.objects.create(
        dataset=dataset, taxonomy=taxonomy, name=name, status="succeeded"
    )
    Prediction.objects.bulk_create(
        Prediction(run=run, item=item, label=label, probability=float(p))
        for item, label, p in zip(items, labels, probabilities, strict=True)
    )
    return run, list(Prediction.objects.filter(run=run).order_by("item_id"))


def make_sample(run, predictions, wanted: int = 1) -> tuple[Sample, list[SampleItem]]:
    sample = Sample.objects.create(run=run, redundancy=wanted)
    SampleItem.objects.bulk_create(
        SampleItem(sample=sample, prediction=p, position=i, wanted_verdicts=wanted)
        for i, p in enumerate(predictions)
    )
    items = SampleItem.objects.filter(sample=sample).select_related("sample__run")
    return sample, list(items.order_by("position"))


def add_verdicts(rows) -> None:
    """rows: (sample_item, annotator, value[, corrected_label]), recorded by the verdict service
    the API and the annotation page call, so verdict counts are what production keeps."""
    for sample_item, annotator, value, *corrected in rows:
        verdict_record(
            sample_item=sample_item,
            annotator=annotator,
            value=value,
            corrected_label=corrected[0] if corrected else None,
        )


def published_outcomes() -> list[tuple[float, str]]:
    """1,000 (probability, verdict) pairs matching the published table, in a seeded order."""
    pairs = [(p, "hit") for p in np.linspace(0.605, 0.995, 270)]
    pairs += [(p, "hit") for p in np.linspace(0.105, 0.595, 190)]
    pairs += [(p, "miss") for p in np.linspace(0.6025, 0.9, 237)]
    pairs += [(p, "miss") for p in np.linspace(0.1, 0.59, 303)]
    random.Random(5).shuffle(pairs)
    return [(float(p), v) for p, v in pairs]


@pytest.fixture
def published(dataset, ann) -> Built:
    """Run of 1,300 items (1,000 sampled, 100 per label for labels 0-9; 300 unsampled spread
    over all 12 labels) and one verdict per sampled item by ann."""
    taxonomy, labels = make_labels(12)
    items = make_items(dataset, 1300)
    outcomes = published_outcomes()
    run_labels = [labels[i // 100] for i in range(1000)] + [labels[j % 12] for j in range(300)]
    probabilities = [p for p, _ in outcomes] + [0.5] * 300
    run, predictions = make_run(dataset, taxonomy, items, run_labels, probabilities)
    sample, sample_items = make_sample(run, predictions[:1000])
    add_verdicts((si, ann, v) for si, (_, v) in zip(sample_items, outcomes, strict=True))
    return Built(taxonomy, labels, items, run, predictions, sample, sample_items)


@pytest.fixture
def small(dataset) -> Built:
    """A 10-item run and sample (2 labels × 5) without verdicts."""
    taxonomy, labels = make_labels(3, name="small")
    items = make_items(dataset, 12, prefix="small")
    run_labels = [labels[0]] * 5 + [labels[1]] * 5 + [labels[2]] * 2
    probabilities = [0.95, 0.85, 0.75, 0.45, 0.35, 0.9, 0.8, 0.7, 0.3, 0.2, 0.5, 0.5]
    run, predictions = make_run(dataset, taxonomy, items, run_labels, probabilities)
    sample, sample_items = make_sample(run, predictions[:10], wanted=2)
    return Built(taxonomy, labels, items, run, predictions, sample, sample_items)
