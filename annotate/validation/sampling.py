"""Balanced samples: the N most frequent predicted labels of a run x K items each.

One function (`sample_draw`) shared by the `draw_sample` command, `POST /api/runs/{id}/samples/`
and the form on the run page.

Speed on large runs (1,000,000 predictions in well under 2 s on PostgreSQL): no
`ORDER BY random()` over all rows. The label counts come from one GROUP BY on the (run, label)
index; then the candidate ids of the chosen labels are read once, ordered by id, and drawn in
Python with `random.Random(seed)`, so the same seed always gives the same sample.
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count

from annotate.validation.models import Sample, SampleItem
from classifier.models import ClassificationRun, Prediction

MAX_CLASSES = 1000
MAX_PER_CLASS = 100_000
MAX_REDUNDANCY = 20


class SampleError(ValueError):
    """Bad options or a run that cannot be sampled; the message is shown to the user."""


@dataclass(frozen=True)
class LabelCount:
    label_id: int
    key: str
    frequency: int


def run_label_frequencies(*, run: ClassificationRun, limit: int | None = None) -> list[LabelCount]:
    """Labels of a run by how often they were predicted (most frequent first, ties by key)."""
    rows = (
        Prediction.objects.filter(run=run)
        .values("label_id", "label__key")
        .annotate(n=Count("id"))
        .order_by("-n", "label__key")
    )
    if limit is not None:
        rows = rows[:limit]
    return [LabelCount(r["label_id"], r["label__key"], r["n"]) for r in rows]


def _candidate_ids(
    *, run: ClassificationRun, label_ids: list[int], min_probability: float, exclude_previous: bool
) -> dict[int, list[int]]:
    """Prediction ids per label (ascending id), after the optional filters."""
    qs = Prediction.objects.filter(run=run, label_id__in=label_ids)
    if min_probability > 0:
        qs = qs.filter(probability__gte=min_probability)
    if exclude_previous:
        # Items (not predictions): an earlier sample may come from another run of the dataset.
        earlier = SampleItem.objects.filter(sample__run__dataset_id=run.dataset_id).values(
            "prediction__item_id"
        )
        qs = qs.exclude(item_id__in=earlier)
    query = qs.order_by("label_id", "id").values_list("label_id", "id").query
    sql, params = query.sql_with_params()
    ids: dict[int, list[int]] = defaultdict(list)
    # A plain cursor: a million (label, id) tuples without model or values() overhead.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(50_000):
            for label_id, pk in rows:
                ids[label_id].append(pk)
    return ids


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
    created_by=None,
) -> Sample:
    """Draw and freeze a balanced sample of `run`.

    The `classes` labels predicted most often in the whole run (ties by label key) are taken;
    from each, `per_class` predictions are drawn uniformly without replacement (all of them when
    fewer remain after `min_probability` and `exclude_previous`). Items are shuffled so that an
    annotator does not see one label a hundred times in a row. Every item wants `redundancy`
    verdicts; a share `overlap` of them wants at least 2, for agreement statistics.
    """
    _check_options(classes, per_class, redundancy, overlap, min_probability)
    if run.status != ClassificationRun.Status.SUCCEEDED:
        raise SampleError(f"run {run.pk} is {run.status}; only a finished run can be sampled")
    if seed is None:
        seed = secrets.randbelow(2**31)
    if not -(2**63) <= seed < 2**63:
        raise SampleError("seed must fit in 64 bits")

    top = run_label_frequencies(run=run, limit=classes)
    if not top:
        raise SampleError(f"run {run.pk} has no predictions")
    ids = _candidate_ids(
        run=run,
        label_ids=[t.label_id for t in top],
        min_probability=min_probability,
        exclude_previous=exclude_previous,
    )
    rng = random.Random(seed)
    chosen: list[int] = []
    for t in top:  # fixed order (frequency, key): the seed alone decides the draw
        pool = ids.get(t.label_id, [])
        chosen.extend(rng.sample(pool, min(per_class, len(pool))))
    if not chosen:
        raise SampleError("no prediction is left to sample after the filters")
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
