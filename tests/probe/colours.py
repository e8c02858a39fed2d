"""A dataset a linear head can learn from a random-weight model: solid colours with a little
noise, one class per colour, the truth in `metadata["truth"]` (a label key). The tiny model's
random towers scatter the colours over its labels (zero-shot is near chance), yet its image
embeddings keep the colours apart, so verdicts can teach a head what zero-shot never knew."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.sampling import sample_draw
from annotate.validation.services import verdict_record
from classifier.models import ClassificationRun, Prediction
from classifier.services import run_create
from classifier.tasks import run_process_here
from tests.classifier.conftest import make_taxonomy

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 40, 220),
    "yellow": (235, 225, 40),
    "cyan": (40, 220, 225),
    "magenta": (215, 40, 210),
    "orange": (245, 140, 20),
    "purple": (110, 30, 150),
    "white": (240, 240, 240),
    "black": (15, 15, 15),
}
NOISE = 30.0  # per-pixel standard deviation, on 0..255
JITTER = 25.0  # per-image standard deviation of the colour itself, on 0..255


def colour_key(name: str) -> str:
    return f"/{name[0]}/{name}"


def colour_taxonomy(name: str = "colours") -> Taxonomy:
    return make_taxonomy(name, list(COLOURS))


def colour_jpeg(rgb: tuple[int, int, int], rng: np.random.Generator, size: int = 32) -> bytes:
    colour = np.asarray(rgb, np.float64) + rng.normal(0.0, JITTER, 3)
    pixels = colour + rng.normal(0.0, NOISE, (size, size, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def add_colour_items(dataset: Dataset, per_class: int, *, seed: int = 0) -> list[Item]:
    """`per_class` images of every colour, interleaved, each with its truth."""
    rng = np.random.default_rng(seed)
    folder = Path(dataset.image_root)
    items = []
    for n in range(per_class):
        for name, rgb in COLOURS.items():
            file = f"{name}-{n:03d}.jpg"
            (folder / file).write_bytes(colour_jpeg(rgb, rng))
            items.append(
                Item(
                    dataset=dataset,
                    external_id=file,
                    image_path=file,
                    caption=f"a {name} square",
                    metadata={"truth": colour_key(name)},
                )
            )
    return Item.objects.bulk_create(items)


def classify(
    dataset: Dataset, taxonomy: Taxonomy, checkpoint: Path, **options
) -> ClassificationRun:
    """A finished run of the tiny model through the real run path (chunks, or a re-scoring
    from the embedding cache), in this process."""
    run = run_create(
        dataset=dataset, taxonomy=taxonomy, model="sieve-tiny", weights=str(checkpoint),
        send=False, **options,
    )  # fmt: skip
    run = run_process_here(run=run, worker="t")
    assert run.status == ClassificationRun.Status.SUCCEEDED, run.error
    return run


def truth_of(dataset: Dataset, field: str = "truth") -> dict[int, str]:
    """Item id -> its true label key."""
    return {
        pk: (meta or {}).get(field, "")
        for pk, meta in Item.objects.filter(dataset=dataset).values_list("pk", "metadata")
    }


def predicted(run: ClassificationRun) -> dict[int, str]:
    """Item id -> the run's top label key."""
    return dict(Prediction.objects.filter(run=run).values_list("item_id", "label__key"))


def accuracy(run: ClassificationRun, truth: dict[int, str], items: set[int]) -> float:
    labels = predicted(run)
    return sum(labels[i] == truth[i] for i in items) / len(items)


@dataclass
class Judged:
    items: set[int]  # the items that got a verdict
    hits: int
    misses: int


def judge_sample(
    run: ClassificationRun, annotator, truth: dict[int, str], *, classes: int, per_class: int,
    seed: int, correct: bool = True, hits: bool = True, client=None,
) -> Judged:  # fmt: skip
    """Draw a balanced sample of `run` and judge every item from the truth through the verdict
    service: a hit when the prediction is right, else a miss, corrected (`correct`) or not.
    `hits=False` skips the right predictions (only misses are recorded). With `client` (an API
    client of the annotator), each verdict is posted to the verdict API instead."""
    sample = sample_draw(run=run, classes=classes, per_class=per_class, seed=seed, overlap=0.0)
    labels = {label.key: label for label in Label.objects.filter(taxonomy=run.taxonomy)}
    judged = Judged(set(), 0, 0)
    for sample_item in sample.items.select_related("prediction__label"):
        item_id = sample_item.prediction.item_id
        right = sample_item.prediction.label.key == truth[item_id]
        if right and not hits:
            continue
        value = "hit" if right else "miss"
        corrected = labels[truth[item_id]] if correct and not right else None
        if client is None:
            verdict_record(
                sample_item=sample_item, annotator=annotator, value=value,
                corrected_label=corrected,
            )  # fmt: skip
        else:
            body = {"sample_item": sample_item.pk, "value": value}
            if corrected is not None:
                body["corrected_label"] = corrected.key
            response = client.post("/api/verdicts/", body, format="json")
            assert response.status_code == 201, response.content
        judged.items.add(item_id)
        judged.hits += right
        judged.misses += not right
    return judged
