"""The curated selection's estimate (docs/architecture.md#curated-selection), checked against an
independent computation on constructed samples whose per-label precision is known, and its
interval's coverage over simulated samples."""

import math
from dataclasses import dataclass

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.errors import Conflict, FieldInvalid
from annotate.validation.curation import (
    BELOW_TARGET,
    SELECTED,
    UNMEASURED,
    parse_rule,
    selection_compute,
    selection_count,
    stratified_estimate,
    threshold_for_target,
)
from annotate.validation.models import Sample
from tests.dashboards.conftest import add_verdicts, make_items, make_labels, make_run, make_sample

Z = 1.959963984540054


def wilson_low(hits: int, n: int) -> float:
    """The Wilson 95 % lower bound, written out here (not the app's function)."""
    p = hits / n
    centre = p + Z * Z / (2 * n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n)


# Per label: run items, sampled items, and the verdict of the sampled items by rank of p
# (ascending). Label 3 is predicted but not sampled (unvalidated).
RUN_SIZES = [400, 300, 200, 100]
SAMPLED = [40, 30, 20, 0]


def _hit(label: int, rank: int, n: int) -> bool:
    """The constructed truth: a label's sampled item is right when the item is in the upper
    part of the label's probabilities, with a share that differs per label."""
    upper = rank >= n // 2
    pattern = {0: (upper or rank % 2 == 0), 1: upper or rank % 3 == 0,
               2: rank % 2 == 0}  # fmt: skip
    return bool(pattern[label])


@dataclass
class Constructed:
    labels: list
    sample: Sample
    predictions: list
    truth: list  # (sample item, right) per judged item


@pytest.fixture
def constructed(dataset, ann):
    taxonomy, labels = make_labels(4, name="constructed")
    items = make_items(dataset, sum(RUN_SIZES), prefix="c")
    run_labels, probabilities = [], []
    for index, size in enumerate(RUN_SIZES):
        run_labels += [labels[index]] * size
        # Each label's probabilities spread evenly over (0.1, 0.98).
        probabilities += list(np.round(np.linspace(0.1, 0.98, size), 6))
    run, predictions = make_run(dataset, taxonomy, items, run_labels, probabilities)
    chosen = []
    start = 0
    for size, k in zip(RUN_SIZES, SAMPLED, strict=True):
        chosen += predictions[start : start + size][:: size // k] if k else []
        start += size
    sample, sample_items = make_sample(run, chosen)
    truth = []
    for index in range(3):
        mine = [si for si in sample_items if si.prediction.label_id == labels[index].pk]
        mine.sort(key=lambda si: si.prediction.probability)
        for rank, si in enumerate(mine):
            truth.append((si, _hit(index, rank, len(mine))))
    add_verdicts((si, ann, "hit" if hit else "miss") for si, hit in truth)
    return Constructed(labels, sample, predictions, truth)


def _independent(predictions, truth, labels, thresholds: dict[int, float]) -> dict:
    """Weights, per-label precision and the estimate, from the raw rows."""
    counts, prec = {}, {}
    for lid, theta in thresholds.items():
        counts[lid] = sum(1 for p in predictions if p.label_id == lid and p.probability >= theta)
        judged = [
            h
            for si, h in truth
            if si.prediction.label_id == lid and si.prediction.probability >= theta
        ]
        prec[lid] = sum(judged) / len(judged)
    total = sum(counts.values())
    weights = {lid: c / total for lid, c in counts.items()}
    return {
        "counts": counts,
        "weights": weights,
        "precision": prec,
        "estimate": sum(weights[lid] * prec[lid] for lid in thresholds),
        "total": total,
    }


@pytest.mark.django_db
def test_global_threshold_matches_an_independent_computation(constructed):
    c = constructed
    labels, sample, predictions, truth = c.labels, c.sample, c.predictions, c.truth
    theta = 0.55
    selection = selection_compute(sample=sample, rule=parse_rule(threshold=theta))
    expected = _independent(predictions, truth, labels, {lab.pk: theta for lab in labels[:3]})
    body = selection.as_dict()
    rows = {row["label"]: row for row in body["per_label"]}
    for lab in labels[:3]:
        row = rows[lab.key]
        assert row["selected"] == expected["counts"][lab.pk]
        assert row["precision"] == pytest.approx(expected["precision"][lab.pk])
        assert row["status"] == SELECTED
    assert body["selected"] == expected["total"] == selection.validated
    assert body["precision"] == pytest.approx(expected["estimate"])
    assert body["expected_wrong"] == pytest.approx((1 - expected["estimate"]) * expected["total"],
                                                   abs=0.05)  # fmt: skip
    # Label 3 is outside the sample: unvalidated, counted but not selected.
    unsampled = sum(1 for p in predictions if p.label_id == labels[3].pk and p.probability >= theta)
    assert body["unvalidated"] == unsampled > 0
    assert labels[3].key not in rows
    # The interval: an item bootstrap within each label, done the slow way, agrees.
    rng = np.random.default_rng(12345)
    values = []
    strata = {lab.pk: np.array([h for si, h in truth if si.prediction.label_id == lab.pk
                                and si.prediction.probability >= theta], dtype=float)
              for lab in labels[:3]}  # fmt: skip
    for _ in range(2000):
        values.append(sum(expected["weights"][lid] * rng.choice(s, size=len(s)).mean()
                          for lid, s in strata.items()))  # fmt: skip
    low, high = np.percentile(values, [2.5, 97.5])
    assert body["precision_low"] == pytest.approx(low, abs=0.02)
    assert body["precision_high"] == pytest.approx(high, abs=0.02)
    assert body["precision_low"] < body["precision"] < body["precision_high"]
    # What the filter streams is what was counted.
    assert selection_count(selection) == body["selected"]


@pytest.mark.django_db
def test_including_unvalidated_labels_adds_items_not_precision(constructed):
    c = constructed
    sample = c.sample
    without = selection_compute(sample=sample, rule=parse_rule(threshold=0.5)).as_dict()
    selection = selection_compute(
        sample=sample, rule=parse_rule(threshold=0.5, include_unvalidated=True)
    )
    with_them = selection.as_dict()
    assert with_them["selected"] == without["selected"] + without["unvalidated"]
    assert with_them["precision"] == without["precision"]
    assert with_them["unvalidated_included"] is True
    assert selection_count(selection) == with_them["selected"]


@pytest.mark.django_db
def test_off_grid_threshold_counts_exactly(constructed):
    c = constructed
    labels, sample, predictions, truth = c.labels, c.sample, c.predictions, c.truth
    theta = 0.5537
    with CaptureQueriesContext(connection) as off_grid:
        selection = selection_compute(sample=sample, rule=parse_rule(threshold=theta))
    expected = _independent(predictions, truth, labels, {lab.pk: theta for lab in labels[:3]})
    assert selection.validated == expected["total"] == selection_count(selection)
    # Off the hundredths grid the run is counted once for every label, not once per label.
    with CaptureQueriesContext(connection) as on_grid:
        selection_compute(sample=sample, rule=parse_rule(threshold=0.55))
    assert len(off_grid) == len(on_grid) + 1


@pytest.mark.django_db
def test_per_label_thresholds_and_a_label_that_never_reaches_the_target(constructed):
    c = constructed
    labels, sample, predictions, truth = c.labels, c.sample, c.predictions, c.truth
    target = 0.7
    selection = selection_compute(sample=sample, rule=parse_rule(target_precision=target))
    body = selection.as_dict()
    rows = {row["label"]: row for row in body["per_label"]}
    expected_thresholds = {}
    for lab in labels[:3]:
        judged = sorted((si.prediction.probability, h) for si, h in truth
                        if si.prediction.label_id == lab.pk)  # fmt: skip
        found = None
        for step in range(21):
            theta = round(step * 0.05, 10)
            kept = [h for p, h in judged if p >= theta - 1e-9]
            if kept and wilson_low(sum(kept), len(kept)) >= target:
                found = theta
                break
        expected_thresholds[lab.pk] = found
        assert rows[lab.key]["threshold"] == found
    # Label 2 is right on every other item whatever p: it never reaches 0.7.
    assert expected_thresholds[labels[2].pk] is None
    assert rows[labels[2].key]["status"] == BELOW_TARGET
    assert rows[labels[2].key]["selected"] == 0
    # It shows its figures over all its judged items, and how close it came.
    assert rows[labels[2].key]["judged"] == SAMPLED[2]
    assert rows[labels[2].key]["best_lower_bound"] < target
    assert labels[2].key in body["left_out"]
    reached = {lid: t for lid, t in expected_thresholds.items() if t is not None}
    assert len(reached) == 2
    for lid in reached:
        key = next(lab.key for lab in labels if lab.pk == lid)
        assert rows[key]["status"] == SELECTED
        assert rows[key]["precision_low"] >= target
    expected = _independent(predictions, truth, labels, reached)
    assert body["selected"] == expected["total"] == selection_count(selection)
    assert body["precision"] == pytest.approx(expected["estimate"])
    # The unvalidated label would be judged at the strictest threshold a label needed.
    assert body["unvalidated_threshold"] == max(reached.values())


@pytest.mark.django_db
def test_a_label_without_judged_items_at_the_threshold_is_unmeasured(constructed):
    c = constructed
    labels, sample, truth = c.labels, c.sample, c.truth
    # Above the highest sampled probability of label 2, its run still has items.
    top = max(
        si.prediction.probability for si, _ in truth if si.prediction.label_id == labels[2].pk
    )
    theta = round(top + 0.005, 4)
    body = selection_compute(sample=sample, rule=parse_rule(threshold=theta)).as_dict()
    row = next(r for r in body["per_label"] if r["label"] == labels[2].key)
    assert row["status"] == UNMEASURED
    assert row["precision"] is None
    assert row["selected"] == 0
    assert row["available"] > 0
    assert body["unvalidated"] >= row["available"]


@pytest.mark.django_db
def test_refusals(constructed):
    c = constructed
    sample = c.sample
    for kwargs in ({}, {"threshold": 0.5, "target_precision": 0.9}, {"threshold": "x"},
                   {"threshold": 1.5}, {"target_precision": "nan"}):  # fmt: skip
        with pytest.raises(FieldInvalid):
            parse_rule(**kwargs)
    Sample.objects.filter(pk=sample.pk).update(strategy=Sample.Strategy.SUSPECTS)
    sample.refresh_from_db()
    with pytest.raises(Conflict, match="targeted"):
        selection_compute(sample=sample, rule=parse_rule(threshold=0.5))
    Sample.objects.filter(pk=sample.pk).update(strategy="balanced", min_probability=0.4)
    sample.refresh_from_db()
    with pytest.raises(FieldInvalid, match="min_probability"):
        selection_compute(sample=sample, rule=parse_rule(threshold=0.3))
    # A target rule starts its grid at the sample's min_probability.
    body = selection_compute(sample=sample, rule=parse_rule(target_precision=0.5)).as_dict()
    assert all(r["threshold"] is None or r["threshold"] >= 0.4 for r in body["per_label"])


def test_threshold_for_target_on_the_grid():
    p = np.array([0.1, 0.2, 0.3, 0.62, 0.7, 0.8, 0.9] * 10)
    hit = np.array([False, False, False, True, True, True, True] * 10)
    assert threshold_for_target(p, hit, 0.9)[0] == 0.35  # first grid θ past the misses
    assert threshold_for_target(p, hit, 0.9, start=0.5)[0] == 0.5
    # 40 hits of 70 at θ = 0 is the best the inverted label does: its bound is reported.
    theta, best = threshold_for_target(p, ~hit, 0.9)
    assert theta is None
    assert best == pytest.approx(wilson_low(30, 70))


def test_the_interval_covers_the_truth_in_simulated_samples():
    """200 balanced samples (100 items per label, drawn without replacement) from a constructed
    population of 8 labels whose correctness depends on p; the estimate's 95 % interval must
    cover the population's precision at θ in >= 90 % of them."""
    rng = np.random.default_rng(2026)
    theta = 0.5
    sizes = rng.integers(2_000, 20_000, size=8)
    population = []
    for size, skill in zip(sizes, np.linspace(0.4, 0.95, 8), strict=True):
        p = rng.beta(4, 2, size=size)
        right = rng.random(size) < np.clip(skill * (0.5 + p), 0, 0.99)
        population.append((p, right))
    kept = [p >= theta for p, _ in population]
    counts = np.array([k.sum() for k in kept], dtype=float)
    weights = counts / counts.sum()
    truth = float(sum(w * right[k].mean() for w, (_, right), k in
                      zip(weights, population, kept, strict=True)))  # fmt: skip
    covered = 0
    widths = []
    for _ in range(200):
        hits, judged = [], []
        for p, right in population:
            drawn = rng.choice(len(p), size=100, replace=False)
            above = p[drawn] >= theta
            hits.append(right[drawn][above].sum())
            judged.append(above.sum())
        _, low, high = stratified_estimate(
            weights, np.array(hits, dtype=float), np.array(judged, dtype=float)
        )
        covered += low <= truth <= high
        widths.append(high - low)
    assert covered >= 180, f"covered {covered} of 200"
    assert 0.02 < float(np.mean(widths)) < 0.2
