"""Probe runs: a linear head learned from the verdicts on a dataset, over the parent run's
cached embeddings, written as a complete run of its own (docs/architecture.md#probe).

`probe_request` (page, API, `train_probe`) checks the parent and queues a new run with
source "probe"; `probe_train` (the `validation.train_probe` task on queue `default`) turns
the verdict facts into examples, fits `classifier.probe` with cross-fitting, writes a
prediction for every item and stores the probe's figures. torch is imported inside the
task only: the web tier imports this module."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from annotate.errors import Conflict, FieldInvalid
from annotate.validation.metrics import dataset_facts, fact_judgement, mcnemar_exact, wilson
from classifier.models import ClassificationRun, Prediction
from classifier.services import (
    PredictionBlock,
    cache_covers_dataset,
    dataset_item_ids,
    predictions_replace,
    run_fail,
    run_probe_succeed,
    run_start,
)

log = logging.getLogger(__name__)
Status = ClassificationRun.Status
Source = ClassificationRun.Source
ACTIVE = (Status.QUEUED, Status.RUNNING)
MIN_VERDICT_ITEMS = 20
DEFAULT_FOLDS = 5
MIN_FOLDS, MAX_FOLDS = 3, 20
BASIS_SAMPLE = 20_000  # embeddings the label-free basis is computed from


class ProbeRefused(Conflict):
    """The run cannot give a probe now (409): not finished, no embeddings, too few verdicts."""


@dataclass
class VerdictExamples:
    """The verdict facts as training examples: `item_ids` (sorted) are the verdict items;
    example j says label column `columns[j]` is right (positive) or not for item
    `item_ids[rows[j]]`."""

    item_ids: np.ndarray
    rows: np.ndarray
    columns: np.ndarray
    positive: np.ndarray

    @property
    def positives(self) -> int:
        return int(self.positive.sum())


def verdict_examples(
    facts: dict[int, tuple[set, set]], label_ids: np.ndarray, embedded: np.ndarray | None = None
) -> VerdictExamples:
    """Examples from the facts (docs/architecture.md#verdicts-as-facts): a label known true
    (confirmed, or the correction of a miss) is a positive; a label known false is "not this
    label" unless the item also has a known true label (the positive says more). Labels
    outside `label_ids` (the run's columns) and items outside `embedded` are left out."""
    column = {int(label): j for j, label in enumerate(label_ids.tolist())}
    allowed = None if embedded is None else set(embedded.tolist())
    by_item: dict[int, list[tuple[int, bool]]] = {}
    for item_id, (true, false) in facts.items():
        if allowed is not None and item_id not in allowed:
            continue
        examples = [(column[label], True) for label in true if label in column]
        if len(examples) > 1:
            examples = []  # conflicting true labels: no positive to trust
        if not examples:
            examples = [(column[label], False) for label in false if label in column]
        if examples:
            by_item[item_id] = sorted(examples)
    item_ids = np.array(sorted(by_item), np.int64)
    rows, columns, positive = [], [], []
    for row, item_id in enumerate(item_ids.tolist()):
        for col, is_positive in by_item[item_id]:
            rows.append(row)
            columns.append(col)
            positive.append(is_positive)
    return VerdictExamples(
        item_ids=item_ids,
        rows=np.array(rows, np.int64),
        columns=np.array(columns, np.int64),
        positive=np.array(positive, bool),
    )


def _parent_problem(run: ClassificationRun) -> str | None:
    if run.source in (Source.PROBE, Source.IMPORT):
        what = "a probe run" if run.source == Source.PROBE else "imported predictions"
        return (
            f"run {run.pk} holds {what}, which have no zero-shot head of their own; train the "
            f"probe from the zero-shot run it came from"
        )
    if run.status != Status.SUCCEEDED:
        return f"run {run.pk} is {run.status}; a probe learns from a finished run"
    return None


def probe_request(
    *, run: ClassificationRun, folds: int = DEFAULT_FOLDS, seed: int = 0, created_by=None,
    send: bool = True,
) -> ClassificationRun:  # fmt: skip
    """Queue a probe run of `run` (its parent). A probe of the same parent that is still
    queued or running is returned instead of a second one (a repeated click). `send=False`
    (`train_probe --sync`) leaves the task unsent: the caller runs `probe_train` itself."""
    if isinstance(folds, bool) or not isinstance(folds, int) or not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise FieldInvalid("folds", f"folds must be a whole number from {MIN_FOLDS} to {MAX_FOLDS}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise FieldInvalid("seed", "seed must be a whole number from 0 to 2^31 - 1")
    problem = _parent_problem(run)
    if problem:
        raise ProbeRefused(problem)
    facts = dataset_facts(dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id)
    decided = sum(1 for true, false in facts.values() if true or false)
    if decided < MIN_VERDICT_ITEMS:
        raise ProbeRefused(
            f"a probe needs verdicts on at least {MIN_VERDICT_ITEMS} items of this dataset; "
            f"there are {decided}. Annotate a sample first."
        )
    if not cache_covers_dataset(run):
        raise ProbeRefused(
            f"the embedding cache of run {run.pk}'s model does not cover the dataset (it grew, "
            f"or the cache was removed); re-classify the dataset with this model first"
        )
    with transaction.atomic():
        ClassificationRun.objects.select_for_update().filter(pk=run.pk).first()
        pending = run.probes.filter(status__in=ACTIVE).order_by("-id").first()
        if pending is not None:
            return pending
        probe_run = ClassificationRun.objects.create(
            name=f"probe of {run.name or f'run {run.pk}'}"[:200],
            dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id, model=run.model,
            weights=run.weights, ensemble=run.ensemble, w_img=run.w_img, w_txt=run.w_txt,
            condition_threshold=run.condition_threshold, templates=run.templates,
            source=Source.PROBE, parent=run, created_by=created_by,
            item_count=len(dataset_item_ids(run.dataset_id)),
            probe={"folds": folds, "seed": seed, "progress": _progress("queued", 0, 1)},
        )  # fmt: skip
        if send:
            transaction.on_commit(lambda: _send(probe_run.pk))
    return probe_run


def _send(run_id: int) -> None:
    from annotate.validation.tasks import train_probe

    train_probe.apply_async((run_id,), queue="default")


def _progress(phase: str, done: int, total: int) -> dict[str, Any]:
    return {"phase": phase, "done": done, "total": total}


def _save_progress(run: ClassificationRun, phase: str, done: int, total: int) -> None:
    run.probe = {**run.probe, "progress": _progress(phase, done, total)}
    ClassificationRun.objects.filter(pk=run.pk).update(probe=run.probe)


def probe_train(*, run_id: int, timings: dict[str, float] | None = None) -> str:
    """The task's work (see the module docstring). Safe to run twice: the predictions are
    replaced in one transaction. `timings`, when given, receives each phase's seconds."""
    from classifier import probe
    from classifier.tasks import cached_rows, label_features_of, load_model_or_fail, phase_clock

    timings = {} if timings is None else timings
    lap = phase_clock(timings)

    run = ClassificationRun.objects.select_related("parent").filter(pk=run_id).first()
    if run is None or run.status not in ACTIVE:
        return "skipped"
    parent = run.parent
    if parent is None:
        run_fail(run_id=run.pk, message="the parent run was deleted before the probe trained")
        return "failed"
    run_start(run=run)
    folds, seed = int(run.probe.get("folds", DEFAULT_FOLDS)), int(run.probe.get("seed", 0))
    item_ids = dataset_item_ids(run.dataset_id)
    rows = cached_rows(run, item_ids)
    if rows is None:
        run_fail(run_id=run.pk, message="the embedding cache no longer covers the dataset")
        return "failed"
    lap("load")
    loaded = load_model_or_fail(run, "cpu")
    if loaded is None:
        return "failed"
    label_ids, label_features = label_features_of(loaded, run)
    lap("model+prompts")
    facts = dataset_facts(dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id)
    examples = verdict_examples(facts, label_ids, embedded=rows.ids)
    if len(examples.item_ids) < max(MIN_VERDICT_ITEMS, folds):
        run_fail(
            run_id=run.pk,
            message=f"only {len(examples.item_ids)} embedded items have verdicts; a probe "
            f"needs {max(MIN_VERDICT_ITEMS, folds)}",
        )
        return "failed"
    at = np.searchsorted(rows.ids, examples.item_ids)
    ensemble = probe.Ensemble(run.ensemble, run.w_img, run.w_txt, run.condition_threshold)
    features = _features(probe, rows, at)
    zero_shot = probe.Head.zero_shot(label_features, loaded.logit_scale)
    basis = probe.basis_from(_basis_sample(rows, seed), probe.DEFAULT_RANK)
    lap("examples")
    fitted = probe.fit(
        features,
        probe.Examples(examples.rows, examples.columns, examples.positive),
        zero_shot, ensemble, basis, folds=folds, seed=seed, threads=settings.SIEVE_PROBE_THREADS,
        progress=lambda done, total: _save_progress(run, "training", done, total),
    )  # fmt: skip
    lap("training")
    _save_progress(run, "writing", 0, len(rows.ids))
    verdict_blocks = _verdict_blocks(run, rows, at, fitted, label_ids)
    figures = _figures(parent=parent, facts=facts, examples=examples, blocks=verdict_blocks) | {
        "folds": folds, "seed": seed, "alpha": fitted.alpha, "fold_alphas": fitted.fold_alphas,
        "l2": probe.DEFAULT_L2, "rank": int(basis.shape[1]),
        "active_labels": len(fitted.active_labels), "trainings": fitted.trainings,
    }  # fmt: skip
    if not ClassificationRun.objects.filter(pk=run.pk, status__in=ACTIVE).exists():
        return "stopped"  # cancelled while training
    _write(run, rows, at, verdict_blocks, label_ids, fitted.head)
    lap("write")
    figures["seconds"] = dict(timings)
    figures["progress"] = _progress("done", 1, 1)
    run_probe_succeed(
        run=run, unreadable=rows.unreadable, item_count=len(item_ids), figures=figures
    )
    log.info("probe run %s of run %s: %s", run.pk, parent.pk, timings)
    return "done"


def _features(probe: Any, rows: Any, at: np.ndarray) -> Any:
    return probe.Features(
        image=rows.image[at].astype(np.float32),
        caption=None if rows.caption is None else rows.caption[at].astype(np.float32),
        has_caption=rows.has_caption[at],
    )


def _basis_sample(rows: Any, seed: int) -> np.ndarray:
    """A seeded sample of the dataset's embeddings (captions too where the ensemble reads
    them): no verdict goes in, so the basis leaks nothing."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(rows.ids), min(BASIS_SAMPLE, len(rows.ids)), replace=False))
    parts = [rows.image[pick].astype(np.float32)]
    if rows.caption is not None:
        parts.append(rows.caption[pick][rows.has_caption[pick]].astype(np.float32))
    return np.concatenate(parts)


def _head_args(head: Any) -> dict[str, Any]:
    """A probe head as `score_blocks` takes it: the logit scale is inside the weights."""
    text_weight, text_bias = head.for_captions
    return {
        "label_features": head.weight, "logit_scale": 1.0, "bias": head.bias,
        "text_label_features": text_weight, "text_bias": text_bias,
    }  # fmt: skip


def _verdict_blocks(
    run: ClassificationRun, rows: Any, at: np.ndarray, fitted: Any, label_ids: np.ndarray
) -> list[PredictionBlock]:
    """The verdict items' predictions, each from the head of its fold (never trained on it)."""
    from classifier.tasks import score_blocks

    blocks: list[PredictionBlock] = []
    for fold, head in enumerate(fitted.fold_heads):
        members = rows.take(np.sort(at[fitted.fold_of == fold]))
        blocks += score_blocks(run=run, rows=members, label_ids=label_ids, **_head_args(head))
    return blocks


def _write(
    run: ClassificationRun, rows: Any, at: np.ndarray, verdict_blocks: list[PredictionBlock],
    label_ids: np.ndarray, head: Any,
) -> None:  # fmt: skip
    """Every prediction of the probe run in one replacement: the verdict items' blocks, then
    every other item with the head trained on all verdicts (a head's weights carry the
    logit scale)."""
    from classifier.tasks import score_blocks

    others = np.ones(len(rows.ids), bool)
    others[at] = False
    rest = rows.take(np.flatnonzero(others))

    def blocks():
        yield from verdict_blocks
        yield from score_blocks(run=run, rows=rest, label_ids=label_ids, **_head_args(head))

    predictions_replace(run_id=run.pk, blocks=blocks())


def _figures(
    *, parent: ClassificationRun, facts: dict,
    examples: VerdictExamples, blocks: list[PredictionBlock],
) -> dict[str, Any]:  # fmt: skip
    """The probe against its parent on the verdict items that the facts decide for both:
    the probe's cross-fitted accuracy, the parent's zero-shot accuracy, their Wilson
    intervals and the exact McNemar p-value of the paired difference."""
    probe_labels = {
        int(item): int(labels[0])
        for block in blocks
        for item, labels in zip(block.item_ids.tolist(), block.labels.tolist(), strict=True)
    }
    parent_labels = dict(
        Prediction.objects.filter(run_id=parent.pk, item_id__in=examples.item_ids.tolist())
        .values_list("item_id", "label_id")
    )  # fmt: skip
    both = probe_only = parent_only = neither = 0
    for item_id, probe_label in probe_labels.items():
        if item_id not in parent_labels:
            continue
        a = fact_judgement(probe_label, facts[item_id])
        b = fact_judgement(parent_labels[item_id], facts[item_id])
        if a is None or b is None:
            continue
        both += a and b
        probe_only += a and not b
        parent_only += b and not a
        neither += not a and not b
    judged = both + probe_only + parent_only + neither
    cv_low, cv_high = wilson(both + probe_only, judged)
    zs_low, zs_high = wilson(both + parent_only, judged)
    return {
        "parent": parent.pk,
        "verdict_items": len(examples.item_ids),
        "examples": {
            "positive": examples.positives,
            "not_label": len(examples.positive) - examples.positives,
        },
        "judged_items": judged,
        "cross_validated_accuracy": (both + probe_only) / judged if judged else None,
        "cross_validated_low": cv_low,
        "cross_validated_high": cv_high,
        "zero_shot_accuracy": (both + parent_only) / judged if judged else None,
        "zero_shot_low": zs_low,
        "zero_shot_high": zs_high,
        "probe_only": probe_only,
        "zero_shot_only": parent_only,
        "mcnemar_p": mcnemar_exact(probe_only, parent_only),
    }
