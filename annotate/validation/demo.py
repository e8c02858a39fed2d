"""The image demo's classification run and a validation study under way (`seed_demo`,
docs/architecture.md#demo).

The demo dataset is classified with the demo model through the real services (`run_create`,
then the chunks processed in this process, as `classify --sync` does). Its accuracy is
measured against the ground truth in `metadata["scene"]`. A balanced sample is drawn from
the run and two simulated annotators judge it through `verdict_record`, from the ground truth
with a little noise: annotator2 most items, annotator1 part of the items that want two
verdicts, so the dashboard, the threshold table and the agreement figures look like a real
study's, and annotator1 still has plenty left for the person trying the demo.

Running it again does only the missing work: an up-to-date run and its sample are kept, and
the simulated verdicts carry idempotency keys.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db.models import F

from annotate.datasets.models import Dataset
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.models import Sample, SampleItem, Verdict
from annotate.validation.sampling import sample_draw
from annotate.validation.services import VerdictConflict, verdict_record
from classifier.models import ClassificationRun, Prediction
from classifier.services import run_create

DEMO_MODEL_ARCH = "sieve-tiny"
DEMO_RUN_NAME = "demo model"
SAMPLE_CLASSES = 10
SAMPLE_PER_CLASS = 20
SAMPLE_SEED = 20260
SAMPLE_OVERLAP = 0.3  # share of sample items that want two verdicts
MAIN_ANNOTATOR = "annotator2"  # judges every overlap item and most others
SECOND_ANNOTATOR = "annotator1"  # the README tour's login: judges part of the overlap only
MAIN_SHARE = 0.75  # of the single-verdict items
SECOND_SHARE = 0.5  # of the overlap items
NOISE = {MAIN_ANNOTATOR: 0.03, SECOND_ANNOTATOR: 0.06}  # chance of the wrong verdict
CORRECTS = 0.8  # chance that a miss names the true scene

Progress = Callable[[int, int | None], None]


@dataclass
class DemoStudy:
    run_id: int
    items: int  # predictions of the run
    accuracy: float | None  # top-1 against metadata["scene"]
    share_at_0_5: float | None  # items with top probability >= 0.5
    sample_id: int
    sample_items: int
    verdicts: int  # simulated verdicts on the sample
    left_for_annotator1: int  # sample items annotator1 may still judge
    classified_now: bool  # False: an up-to-date run was kept

    def as_dict(self) -> dict:
        return asdict(self)


def _weights_variants(checkpoint: str) -> list[str]:
    return sorted({checkpoint, str(Path(checkpoint).resolve())})


def demo_run_classify(
    *, dataset: Dataset, taxonomy: Taxonomy, checkpoint: str, retrained: bool,
    created_by=None, progress: Progress | None = None,
) -> tuple[ClassificationRun, bool]:  # fmt: skip
    """The demo's run with the demo model, created and processed here (no worker needed);
    an earlier succeeded run of the same checkpoint over the same items is kept unless the
    model was just retrained. Returns (run, classified now)."""
    items = dataset.items.count()
    if not retrained:
        same = ClassificationRun.objects.filter(
            dataset=dataset, taxonomy=taxonomy, model=DEMO_MODEL_ARCH,
            weights__in=_weights_variants(checkpoint), ensemble="image",
            status=ClassificationRun.Status.SUCCEEDED, item_count=items,
        )  # fmt: skip
        kept = same.order_by("-pk").first()
        if kept is not None:
            if progress is not None:
                progress(items, items)
            return kept, False
    run = run_create(
        dataset=dataset, taxonomy=taxonomy, model=DEMO_MODEL_ARCH, weights=checkpoint,
        name=DEMO_RUN_NAME, created_by=created_by, send=False,
    )  # fmt: skip
    # No worker: the tasks' own code, in this process (as `classify --sync`).
    from classifier.tasks import run_process_here

    def report() -> None:
        if progress is not None:
            progress(run.predictions.count(), items)

    run_process_here(run=run, worker="seed_demo", after_chunk=report)
    if run.status != ClassificationRun.Status.SUCCEEDED:
        raise RuntimeError(f"the demo run {run.pk} {run.status}: {run.error}")
    if progress is not None:
        progress(items, items)
    return run, True


def demo_run_accuracy(*, run: ClassificationRun) -> tuple[int, float | None, float | None]:
    """(predictions, top-1 accuracy against metadata["scene"], share with p >= 0.5)."""
    rows = list(
        Prediction.objects.filter(run=run).values_list(
            "label__key", "probability", "item__metadata__scene"
        )
    )
    if not rows:
        return 0, None, None
    right = sum(1 for key, _p, scene in rows if key == scene)
    sure = sum(1 for _key, p, _scene in rows if p >= 0.5)
    return len(rows), right / len(rows), sure / len(rows)


def _duration_ms(rng: random.Random, value: str) -> int:
    """About 2 s for a hit, longer for a miss (and longer still when picking a label)."""
    median = 1800 if value == Verdict.Value.HIT else 3500
    return min(60_000, int(rng.lognormvariate(math.log(median), 0.45)))


def _judge(
    rng: random.Random, predicted: Label, truth: Label | None, noise: float
) -> tuple[str, Label | None]:
    right = truth is not None and predicted.pk == truth.pk
    if rng.random() < noise:
        right = not right
    if right:
        return Verdict.Value.HIT, None
    if truth is not None and truth.pk != predicted.pk and rng.random() < CORRECTS:
        return Verdict.Value.MISS, truth
    return Verdict.Value.MISS, None


def demo_verdicts_simulate(*, sample: Sample) -> int:
    """The simulated annotators' verdicts on `sample`; returns how many it has from them."""
    User = get_user_model()
    people = {name: User.objects.get(username=name) for name in NOISE}
    labels = {label.key: label for label in Label.objects.filter(taxonomy=sample.run.taxonomy)}
    rng = random.Random(sample.seed)  # noqa: S311 - a reproducible simulation
    items = sample.items.select_related("prediction__label", "prediction__item", "sample__run")
    for sample_item in items.order_by("position"):
        truth = labels.get((sample_item.prediction.item.metadata or {}).get("scene", ""))
        judges = []
        if sample_item.wanted_verdicts >= 2:
            judges.append(MAIN_ANNOTATOR)
            if rng.random() < SECOND_SHARE:
                judges.append(SECOND_ANNOTATOR)
        elif rng.random() < MAIN_SHARE:
            judges.append(MAIN_ANNOTATOR)
        for name in judges:
            value, corrected = _judge(rng, sample_item.prediction.label, truth, NOISE[name])
            # A conflict: someone judged it by hand since, and theirs stands.
            with contextlib.suppress(VerdictConflict):
                verdict_record(
                    sample_item=sample_item, annotator=people[name], value=value,
                    corrected_label=corrected, key=f"demo-{sample_item.pk}-{name}",
                    duration_ms=_duration_ms(rng, value),
                )  # fmt: skip
    return Verdict.objects.filter(
        sample_item__sample=sample, annotator__username__in=list(NOISE)
    ).count()


def demo_study_seed(
    *, dataset_id: int, taxonomy_id: int, checkpoint: str, retrained: bool,
    progress: Progress | None = None,
) -> DemoStudy:  # fmt: skip
    """Classify the demo, measure it against the ground truth, draw the sample (kept when
    there is one) and record the simulated verdicts."""
    dataset = Dataset.objects.get(pk=dataset_id)
    taxonomy = Taxonomy.objects.get(pk=taxonomy_id)
    User = get_user_model()
    run, classified = demo_run_classify(
        dataset=dataset, taxonomy=taxonomy, checkpoint=checkpoint, retrained=retrained,
        created_by=User.objects.filter(username="admin").first(), progress=progress,
    )  # fmt: skip
    items, accuracy, share = demo_run_accuracy(run=run)
    sample = (
        Sample.objects.filter(
            run=run, classes=SAMPLE_CLASSES, per_class=SAMPLE_PER_CLASS, seed=SAMPLE_SEED
        )
        .order_by("pk")
        .first()
    )
    if sample is None:
        sample = sample_draw(
            run=run, classes=SAMPLE_CLASSES, per_class=SAMPLE_PER_CLASS, seed=SAMPLE_SEED,
            overlap=SAMPLE_OVERLAP, created_by=User.objects.filter(username="lead").first(),
        )  # fmt: skip
    verdicts = demo_verdicts_simulate(sample=sample)
    second = User.objects.get(username=SECOND_ANNOTATOR)
    left = (
        SampleItem.objects.filter(sample=sample)
        .exclude(verdicts__annotator=second)
        .filter(verdict_count__lt=F("wanted_verdicts"))
        .count()
    )
    return DemoStudy(
        run_id=run.pk, items=items, accuracy=accuracy, share_at_0_5=share,
        sample_id=sample.pk, sample_items=sample.items.count(), verdicts=verdicts,
        left_for_annotator1=left, classified_now=classified,
    )  # fmt: skip
