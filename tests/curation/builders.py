"""A small run built for the curated export tests: real PNG files under the dataset's root, a
balanced sample with verdicts (a confirmed, a corrected and a rejected item among them), a
second sample whose verdict counts too, and the rows the export must write, written out by
hand from that table (not computed by the code under test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.models import Sample, SampleItem
from annotate.validation.services import verdict_record
from classifier.models import ClassificationRun, Prediction

LABELS = [("/b/beach", "beach"), ("/f/forest", "forest"), ("/c/cave", "cave"),
          ("/d/desert", "desert")]  # fmt: skip
TRICKY = '=HYPERLINK("http://evil","x")\n"quoted", ünïcödé ✓ 🙂'

# index: (label, probability, in sample 1, verdict in a sample, expected at θ = 0.5)
# verdict: "hit", "miss", ("miss", corrected label) or None; expected: (verdict, label) or
# "rejected", or None when the row is not selected at θ = 0.5 (p below it, or label 2 which
# the sample does not measure). Item 5's hit comes from a second sample.
TABLE: dict[int, tuple[int, float, bool, Any, Any]] = {
    0: (0, 0.95, True, "hit", ("confirmed", 0)),
    1: (0, 0.90, True, ("miss", 1), ("corrected", 1)),
    2: (0, 0.85, True, "miss", "rejected"),
    3: (0, 0.80, True, "hit", ("confirmed", 0)),
    4: (0, 0.40, True, "hit", None),
    5: (0, 0.70, False, "hit", ("confirmed", 0)),
    6: (0, 0.60, False, None, ("", 0)),
    7: (1, 0.99, True, "hit", ("confirmed", 1)),
    8: (1, 0.75, True, ("miss", 3), ("corrected", 3)),
    9: (1, 0.65, True, "hit", ("confirmed", 1)),
    10: (1, 0.30, True, "miss", None),
    11: (1, 0.55, False, None, ("", 1)),
    12: (2, 0.90, False, None, None),  # unvalidated: exported only when asked for
    13: (2, 0.20, False, None, None),
    14: (0, 0.50, True, "hit", ("confirmed", 0)),  # p exactly at θ: selected
}
# At θ = 0.5, each measured label's precision over the sample's judged items with p >= 0.5.
PRECISION = {0: 3 / 5, 1: 2 / 3}  # beach: 0 1 2 3 14 (3 hits); forest: 7 8 9 (2 hits)
UNVALIDATED_AT_HALF = [12]


@dataclass
class Curated:
    dataset: Dataset
    taxonomy: Taxonomy
    labels: list[Label]
    items: list[Item]  # in TABLE order (ascending ids)
    run: ClassificationRun
    sample: Sample
    other_sample: Sample


def write_png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), colour).save(path, format="PNG")


def image_path(index: int) -> str:
    return f"sub/img{index:02d}.png" if index == 6 else f"img{index:02d}.png"


def caption(index: int) -> str:
    return {0: TRICKY, 3: "+1 plain -2"}.get(index, f"caption {index}")


def build_curated(dataset: Dataset, annotator, name: str = "curated") -> Curated:
    root = Path(dataset.image_root)
    for index in TABLE:
        write_png(root / image_path(index), (10 * index, 100, 200))
    taxonomy = Taxonomy.objects.create(name=name)
    labels = [Label.objects.create(taxonomy=taxonomy, key=key, name=label, position=i)
              for i, (key, label) in enumerate(LABELS)]  # fmt: skip
    items = [
        Item.objects.create(
            dataset=dataset, external_id=f"ext-{index:02d}", image_path=image_path(index),
            caption=caption(index),
        )
        for index in TABLE
    ]  # fmt: skip
    run = ClassificationRun.objects.create(
        dataset=dataset, taxonomy=taxonomy, name="curated run", status="succeeded",
        model="ViT-B-32", weights="openai",
    )  # fmt: skip
    predictions = {
        index: Prediction.objects.create(
            run=run, item=items[index], label=labels[row[0]], probability=row[1]
        )
        for index, row in TABLE.items()
    }
    sample = _sample(run, [predictions[i] for i, row in TABLE.items() if row[2]])
    other = _sample(run, [predictions[5]])
    for s in (sample, other):
        for sample_item in SampleItem.objects.filter(sample=s).select_related("prediction"):
            index = next(i for i, p in predictions.items() if p.pk == sample_item.prediction_id)
            verdict = TABLE[index][3]
            if verdict is None:
                continue
            value, corrected = (verdict, None) if isinstance(verdict, str) else verdict
            verdict_record(
                sample_item=sample_item, annotator=annotator, value=value,
                corrected_label=labels[corrected] if corrected is not None else None,
            )  # fmt: skip
    return Curated(dataset, taxonomy, labels, items, run, sample, other)


def _sample(run: ClassificationRun, predictions: list[Prediction]) -> Sample:
    sample = Sample.objects.create(run=run, classes=2, per_class=7)
    SampleItem.objects.bulk_create(
        SampleItem(sample=sample, prediction=p, position=i) for i, p in enumerate(predictions)
    )
    return sample


def expected_rows(built: Curated, *, include_unvalidated: bool = False) -> list[dict]:
    """The rows at θ = 0.5, in item order, from TABLE alone."""
    rows = []
    for index, (label, p, _in_sample, _verdict, expected) in TABLE.items():
        if expected is None and not (include_unvalidated and index in UNVALIDATED_AT_HALF):
            continue
        if expected == "rejected":
            continue
        verdict, final = expected if expected is not None else ("", label)
        item = built.items[index]
        rows.append({
            "item": item.pk, "external_id": item.external_id, "image_path": item.image_path,
            "caption": item.caption, "label": LABELS[final][0], "label_name": LABELS[final][1],
            "probability": p, "verdict": verdict, "predicted_label": LABELS[label][0],
            "label_precision": PRECISION.get(label),
        })  # fmt: skip
    return rows
