"""Samples: the N most frequent predicted labels of a run x K items each, chosen by a strategy
(docs/architecture.md#sample-strategies): `balanced` draws the K items of each label at random
(the only random sample: its tables estimate the run's accuracy); `suspects` takes each label's
K highest-scoring suspects (annotate/validation/suspects.py), a targeted sample for fixing
labels; `uncertain` (probe runs only, docs/architecture.md#probe) takes each label's K items
with the smallest margin between the probe's top two probabilities among the items that no
verdict decides yet: the verdicts the probe would learn most from. Targeted samples train the
probe like any verdicts, but only a balanced sample's tables estimate the run's accuracy.

One function (`sample_draw`) shared by the `draw_sample` command, `POST /api/runs/{id}/samples/`
and the form on the run page.

Speed on large runs (1,000,000 predictions in well under 2 s on PostgreSQL): no
`ORDER BY random()` over all rows. The label counts come from one GROUP BY on the (run, label)
index; `random.Random(seed)` then draws positions in each label's id-ordered list, and one
row_number() query per label fetches just those ids. Same seed, same sample.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber

from annotate.errors import Conflict, Invalid
from annotate.taxonomies.models import Label
from annotate.validation.metrics import dataset_facts
from annotate.validation.models import Sample, SampleItem
from annotate.validation.suspects import (
    latest_probe,
    second_probability,
    suspect_facts,
    top_suspects,
)
from classifier.models import ClassificationRun, Prediction

MAX_CLASSES = 1000
MAX_PER_CLASS = 100_000
MAX_REDUNDANCY = 20


class SampleError(Invalid):
    """Bad options or a run that cannot be sampled; the message is shown to the user."""


class SampleConflict(Conflict, SampleError):
    """The run cannot give this sample (not finished, no predictions, none left after the
    filters): the options are fine, the run's state is not."""


@dataclass(frozen=True)
class LabelCount:
    label_id: int
    key: str
    frequency: int


def run_label_frequencies(*, run: ClassificationRun, limit: int | None = None) -> list[LabelCount]:
    """Labels of a run by how often they were predicted (most frequent first, ties by key)."""
    # COUNT(*) grouped by label alone is an index-only scan of (run, label); the keys of the
    # few hundred labels are read separately, and the order is settled in Python.
    counts = dict(
        Prediction.objects.filter(run=run)
        .order_by()
        .values("label_id")
        .annotate(n=Count("*"))
        .values_list("label_id", "n")
    )
    keys = dict(Label.objects.filter(pk__in=counts).values_list("pk", "key"))
    rows = sorted((LabelCount(pk, keys[pk], n) for pk, n in counts.items()),
                  key=lambda r: (-r.frequency, r.key))  # fmt: skip
    return rows if limit is None else rows[:limit]


def _pool(*, run: ClassificationRun, min_probability: float, exclude_previous: bool) -> QuerySet:
    """The run's predictions that may be drawn, after the optional filters."""
    qs = Prediction.objects.filter(run=run)
    if min_probability > 0:
        qs = qs.filter(probability__gte=min_probability)
    if exclude_previous:
        # Items (not predictions): an earlier sample may come from another run of the dataset.
        earlier = SampleItem.objects.filter(sample__run__dataset_id=run.dataset_id).values(
            "prediction__item_id"
        )
        qs = qs.exclude(item_id__in=earlier)
    return qs


def _ids_at(pool: QuerySet, label_id: int, size: int, positions: list[int]) -> list[int]:
    """The ids at the given 0-based positions of the label's pool ordered by id.

    Only the drawn ids leave the database: row_number() over the label's rows (read through the
    (run, label) index) picks them. Large draws read the whole id list instead."""
    rows = pool.filter(label_id=label_id)
    if len(positions) > 5000 or len(positions) * 4 > size:
        ids = list(rows.order_by("id").values_list("id", flat=True))
    else:
        ranked = rows.annotate(rn=Window(RowNumber(), order_by=F("id").asc()))
        wanted = ranked.filter(rn__in=[p + 1 for p in positions]).order_by("id")
        found = list(wanted.values_list("rn", "id"))
        ids = [0] * size
        for rn, pk in found:
            ids[rn - 1] = pk
    return [ids[p] for p in positions]


def _balanced_of(
    pool: QuerySet, top: list[LabelCount], sizes: dict[int, int], per_class: int, rng
) -> list[int]:
    """`per_class` prediction ids of each label drawn uniformly without replacement."""
    chosen: list[int] = []
    for t in top:  # fixed order (frequency, key): the seed alone decides the draw
        size = sizes[t.label_id]
        positions = rng.sample(range(size), min(per_class, size))
        if positions:
            chosen.extend(_ids_at(pool, t.label_id, size, positions))
    return chosen


def _suspects_of(
    run: ClassificationRun, pool: QuerySet, top: list[LabelCount], per_class: int
) -> list[int]:
    """The `per_class` highest-scoring suspects of each label (docs/architecture.md#suspects):
    one ranked query per label over the (run, label) rows; the verdict facts and the run's
    probe are read once."""
    facts = suspect_facts(run)
    probe = latest_probe(run)
    chosen: list[int] = []
    for t in top:
        found = top_suspects(
            run=run,
            predictions=pool.filter(label_id=t.label_id),
            limit=per_class,
            facts=facts,
            probe=probe,
        )
        chosen.extend(s.prediction for s in found)
    return chosen


NOT_A_PROBE = (
    "strategy 'uncertain' samples a probe run (the items its head is least sure of), and run "
    "{run} is not one: train a probe of it (POST /api/runs/{run}/probe/, the run page's 'Train "
    "a probe' form, or `manage.py train_probe {run}`), then draw the sample from that probe run"
)


def _uncertain_of(
    run: ClassificationRun, pool: QuerySet, top: list[LabelCount], per_class: int
) -> list[int]:
    """Each label's `per_class` predictions with the smallest margin p1 - p2 (ties by id),
    among the items without a verdict fact (docs/architecture.md#verdicts-as-facts): one
    ordered query per label over the (run, label) rows; the facts are read once."""
    decided = list(dataset_facts(dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id))
    open_items = pool.exclude(item_id__in=decided) if decided else pool
    ranked = open_items.annotate(margin=F("probability") - second_probability())
    chosen: list[int] = []
    for t in top:
        rows = ranked.filter(label_id=t.label_id).order_by("margin", "id")
        chosen.extend(rows.values_list("id", flat=True)[:per_class])
    return chosen


def _check_options(
    classes: int, per_class: int, redundancy: int, overlap: float, min_probability: float
) -> None:
    if not 1 <= classes <= MAX_CLASSES:
        raise SampleError(f"classes must be between 1 and {MAX_CLASSES}")
    if not 1 <= per_class <= MAX_PER_CLASS:
        raise SampleError(f"per_class must be between 1 and {MAX_PER_CLASS}")
    if not 1 <= redundancy <= MAX_REDUNDANCY:
        raise SampleError(f"redundancy must be between 1 and {MAX_REDUNDANCY}")
    if not 0.0 <= overlap <= 1.0:
        raise SampleError("overlap must be between 0 and 1")
    if not 0.0 <= min_probability <= 1.0:
        raise SampleError("min_probability must be between 0 and 1")


def sample_draw(
    *,
    run: ClassificationRun,
    classes: int = 10,
    per_class: int = 100,
    seed: int | None = None,
    redundancy: int = 1,
    overlap: float = 0.1,
    min_probability: float = 0.0,
    exclude_previous: bool = False,
    blind: bool = False,
    strategy: str = Sample.Strategy.BALANCED,
    created_by=None,
) -> Sample:
    """Draw and freeze a balanced sample of `run`.

    The `classes` labels predicted most often in the whole run (ties by label key) are taken;
    from each, `per_class` predictions are drawn uniformly without replacement (all of them when
    fewer remain after `min_probability` and `exclude_previous`). Items are shuffled so that an
    annotator does not see one label a hundred times in a row. Every item wants `redundancy`
    verdicts; a share `overlap` of them wants at least 2, for agreement statistics.

    `strategy="suspects"`: the same labels and filters, but each label's `per_class`
    highest-scoring suspects instead of a random draw (the seed still orders the items).
    `strategy="uncertain"` (probe runs only): each label's `per_class` items with the smallest
    margin among those without a verdict fact.
    """
    _check_options(classes, per_class, redundancy, overlap, min_probability)
    if strategy not in Sample.Strategy.values:
        raise SampleError("strategy must be one of: balanced, suspects, uncertain")
    if strategy == Sample.Strategy.UNCERTAIN and run.source != ClassificationRun.Source.PROBE:
        # A valid option this run cannot give (409, like an unfinished run): only a probe
        # run's margins come from a head that learned from the verdicts.
        raise SampleConflict(NOT_A_PROBE.format(run=run.pk))
    if run.status != ClassificationRun.Status.SUCCEEDED:
        raise SampleConflict(f"run {run.pk} is {run.status}; only a finished run can be sampled")
    if seed is None:
        seed = secrets.randbelow(2**31)
    if not -(2**63) <= seed < 2**63:
        raise SampleError("seed must fit in 64 bits")

    top = run_label_frequencies(run=run, limit=classes)
    if not top:
        raise SampleConflict(f"run {run.pk} has no predictions")
    pool = _pool(run=run, min_probability=min_probability, exclude_previous=exclude_previous)
    sizes = {t.label_id: t.frequency for t in top}
    if min_probability > 0 or exclude_previous:
        counted = pool.filter(label_id__in=sizes).values("label_id").annotate(n=Count("id"))
        sizes = {t.label_id: 0 for t in top} | {r["label_id"]: r["n"] for r in counted}
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw from the seed, not a secret
    if strategy == Sample.Strategy.BALANCED:
        chosen = _balanced_of(pool, top, sizes, per_class, rng)
    else:
        targeted = _suspects_of if strategy == Sample.Strategy.SUSPECTS else _uncertain_of
        chosen = targeted(run, pool, top, per_class)
    if not chosen:
        raise SampleConflict("no prediction is left to sample after the filters")
    rng.shuffle(chosen)
    wanted = [redundancy] * len(chosen)
    if redundancy < 2 and overlap > 0:
        for index in rng.sample(range(len(chosen)), round(overlap * len(chosen))):
            wanted[index] = 2

    with transaction.atomic():
        sample = Sample.objects.create(
            run=run,
            classes=classes,
            per_class=per_class,
            seed=seed,
            redundancy=redundancy,
            overlap=overlap,
            min_probability=min_probability,
            exclude_previous=exclude_previous,
            blind=blind,
            strategy=strategy,
            created_by=created_by,
        )
        SampleItem.objects.bulk_create(
            [
                SampleItem(sample=sample, prediction_id=pk, position=pos, wanted_verdicts=w)
                for pos, (pk, w) in enumerate(zip(chosen, wanted, strict=True))
            ],
            batch_size=2000,
        )
    return sample
