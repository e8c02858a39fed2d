"""The curated selection of a run, chosen from a balanced sample, and its estimated precision
(docs/architecture.md#curated-selection).

One computation, several front doors: `GET /api/samples/{id}/selection/` (api_curation.py),
the dashboard's "what you get" panel (views_curation.py), the `export_curated` command and the
queued export (curated_export.py) all call `selection_compute`.

Cost: the sample's outcomes (two queries, `metrics.sample_outcomes`) and one aggregate over the
run's predictions: how many of each label's predictions reach each hundredth of probability,
cached for a succeeded run under its finish time (its predictions never change), so the panel's
slider answers from memory after the first request. A threshold off the hundredths grid is
counted exactly (one more query).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, FloatField, IntegerField
from django.db.models.functions import Cast, Floor

from annotate.errors import Conflict, FieldInvalid
from annotate.taxonomies.models import Label
from annotate.validation import metrics
from annotate.validation.models import Sample
from classifier.models import ClassificationRun, Prediction
from classifier.scoring import EPSILON

GRID_STEP = 0.05  # per-label thresholds are chosen on 0, 0.05, ..., 1
RESAMPLES = 2000
SEED = 0  # fixed: the same verdicts always give the same interval
BUCKETS = 100  # the cached counts: how many predictions reach each hundredth
DEFAULT_TARGET = 0.9

# A label's status in the selection.
SELECTED = "selected"  # validated and selected
BELOW_TARGET = "below_target"  # the Wilson lower bound never reaches the target
UNMEASURED = "unmeasured"  # no judged sample item of the label at its threshold


@dataclass(frozen=True)
class Rule:
    """How items are selected: one global threshold, or per-label thresholds for a target
    precision; and whether items without a measured precision are included."""

    threshold: float | None = None
    target_precision: float | None = None
    include_unvalidated: bool = False

    def as_dict(self) -> dict[str, Any]:
        kind = "threshold" if self.threshold is not None else "target_precision"
        value = self.threshold if self.threshold is not None else self.target_precision
        return {"kind": kind, kind: value, "include_unvalidated": self.include_unvalidated}


def parse_rule(
    *,
    threshold: Any = None,
    target_precision: Any = None,
    include_unvalidated: Any = False,
) -> Rule:
    """Exactly one of `threshold` and `target_precision`, each a number in [0, 1] (text from a
    query string is accepted); FieldInvalid (400) otherwise."""
    given = {k: v for k, v in (("threshold", threshold), ("target_precision", target_precision))
             if v not in (None, "")}  # fmt: skip
    if len(given) != 1:
        raise FieldInvalid("threshold", "Give exactly one of threshold and target_precision.")
    ((name, raw),) = given.items()
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise FieldInvalid(name, f"{name} must be a number between 0 and 1.") from None
    if not 0 <= value <= 1:  # also NaN
        raise FieldInvalid(name, f"{name} must be a number between 0 and 1.")
    if isinstance(include_unvalidated, str):
        include_unvalidated = include_unvalidated.lower() in ("1", "true", "on", "yes")
    return Rule(**{name: value}, include_unvalidated=bool(include_unvalidated))


@dataclass
class LabelSelection:
    """One label of the run in the selection."""

    label_id: int
    key: str
    name: str
    status: str  # SELECTED, BELOW_TARGET or UNMEASURED (validated labels); "unvalidated"
    threshold: float | None  # None: the label never reaches the target
    available: int  # the run's predictions of the label with p >= threshold (0 without one)
    judged: int  # the sample's decided items of the label with p >= threshold
    hits: int
    precision: float | None
    precision_low: float | None  # 95 % Wilson interval of `precision`
    precision_high: float | None
    # Target rule: the highest Wilson lower bound the label reached on the grid (None for a
    # global threshold), so a label left out says how far it is from the target.
    best_lower_bound: float | None = None

    @property
    def selected(self) -> int:
        """The label's items that the selection holds (before unvalidated are included)."""
        return self.available if self.status == SELECTED else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.key,
            "name": self.name,
            "status": self.status,
            "threshold": self.threshold,
            "selected": self.selected,
            "available": self.available,
            "judged": self.judged,
            "hits": self.hits,
            "precision": self.precision,
            "precision_low": self.precision_low,
            "precision_high": self.precision_high,
            "best_lower_bound": self.best_lower_bound,
        }


@dataclass
class Selection:
    """A run's items chosen by a rule, with the stratified estimate of their precision."""

    sample: Sample
    rule: Rule
    per_label: list[LabelSelection]
    # Labels of the run outside the sample (or unmeasured at their threshold): their threshold
    # and their predictions there. Exported only with `rule.include_unvalidated`.
    unvalidated_threshold: float | None
    unvalidated: int
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    validated: int  # items of the selected, validated labels
    thresholds: dict[int, float] = field(default_factory=dict)  # label id -> θ, exported labels
    others_threshold: float | None = None  # θ of every other label (None: not exported)

    @property
    def run(self) -> ClassificationRun:
        return self.sample.run

    @property
    def selected(self) -> int:
        return self.validated + (self.unvalidated if self.rule.include_unvalidated else 0)

    @property
    def expected_wrong(self) -> float | None:
        if self.precision is None:
            return None
        return round((1 - self.precision) * self.validated, 1)

    def label_precision(self) -> dict[int, float | None]:
        """label id -> its estimated precision, for the export's rows (None: unvalidated)."""
        return {row.label_id: row.precision for row in self.per_label if row.status == SELECTED}

    def as_dict(self) -> dict[str, Any]:
        """The public answer (DESIGN's field names first)."""
        left_out = [row.key for row in self.per_label if row.status != SELECTED]
        return {
            "rule": self.rule.as_dict(),
            "selected": self.selected,
            "unvalidated": self.unvalidated,
            "per_label": [row.as_dict() for row in self.per_label],
            "precision": self.precision,
            "precision_low": self.precision_low,
            "precision_high": self.precision_high,
            "expected_wrong": self.expected_wrong,
            "validated": self.validated,
            "unvalidated_included": self.rule.include_unvalidated,
            "unvalidated_threshold": self.unvalidated_threshold,
            "left_out": left_out,
            "sample": self.sample.pk,
            "run": self.sample.run_id,
            "resamples": RESAMPLES,
            "seed": SEED,
        }


# ---------------------------------------------------------------- the estimate


def stratified_estimate(
    weights: np.ndarray,
    hits: np.ndarray,
    judged: np.ndarray,
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
) -> tuple[float | None, float | None, float | None]:
    """Σ_l w_l · hits_l / judged_l, and its 95 % percentile interval from a bootstrap within
    each stratum: resampling a label's `judged` items with replacement changes only how many are
    hits, so each resample draws hits_l* ~ Binomial(judged_l, hits_l / judged_l), which is
    exactly the item bootstrap's distribution. `weights` sum to 1 over the strata given (every
    judged_l > 0). Bounds as the threshold table's: v[floor(0.025·k)] and v[ceil(0.975·k)] of
    the m sorted resamples, k = m − 1."""
    if len(weights) == 0:
        return None, None, None
    share = hits / judged
    estimate = float(np.dot(weights, share))
    rng = np.random.default_rng(seed)
    drawn = rng.binomial(judged[None, :].astype(np.int64), share[None, :], (resamples, len(share)))
    values = np.sort((drawn / judged[None, :]) @ weights)
    k = resamples - 1
    low = float(values[math.floor(0.025 * k)])
    high = float(values[math.ceil(0.975 * k)])
    return estimate, low, high


def threshold_for_target(
    probability: np.ndarray, hit: np.ndarray, target: float, *, start: float = 0.0
) -> tuple[float | None, float | None]:
    """(θ, its lower bound): the lowest θ on the grid (step GRID_STEP, from `start`) at which
    the Wilson 95 % lower bound of hits / judged over the items with p >= θ reaches `target`;
    (None, the highest lower bound any θ reached) when none does, so a page can say how far
    the label is. `probability` and `hit` are one label's decided sample items."""
    best: float | None = None
    for theta in metrics.thresholds_grid(GRID_STEP):
        if theta < start - EPSILON:
            continue
        kept = probability >= theta - EPSILON
        low, _ = metrics.wilson(int(hit[kept].sum()), int(kept.sum()))
        if low is None:
            continue
        if low >= target - 1e-12:
            return float(theta), low
        best = low if best is None else max(best, low)
    return None, best


# ---------------------------------------------------------------- the run's counts


def _bucket(theta: float) -> int | None:
    """The hundredth θ sits on, or None when it is off that grid."""
    scaled = theta * BUCKETS
    nearest = round(scaled)
    return int(nearest) if abs(scaled - nearest) < 1e-6 else None


def run_label_buckets(run: ClassificationRun) -> dict[int, np.ndarray]:
    """label id -> predictions per bucket b = floor((p + EPSILON) · 100), b in 0..100; the
    predictions with p >= b/100 − EPSILON are then the sum of buckets >= b. One GROUP BY; cached
    for a succeeded run under its finish time."""
    key = None
    if run.status == ClassificationRun.Status.SUCCEEDED and run.finished is not None:
        key = f"curation-buckets:{run.pk}:{run.finished.timestamp()}"
        cached = cache.get(key)
        if cached is not None:
            return cached
    bucket = Cast(Floor((Cast("probability", FloatField()) + EPSILON) * BUCKETS), IntegerField())
    rows = (
        Prediction.objects.filter(run_id=run.pk)
        .order_by()
        .annotate(bucket=bucket)
        .values("label_id", "bucket")
        .annotate(n=Count("*"))
        .values_list("label_id", "bucket", "n")
    )
    counts: dict[int, np.ndarray] = {}
    for label_id, b, n in rows:
        counts.setdefault(label_id, np.zeros(BUCKETS + 1, dtype=np.int64))[
            min(max(int(b), 0), BUCKETS)
        ] += n
    if key is not None:
        cache.set(key, counts, 24 * 3600)
    return counts


def _count_at(run: ClassificationRun, buckets: dict[int, np.ndarray], label_ids: list[int],
              theta: float) -> dict[int, int]:  # fmt: skip
    """Predictions of each label with p >= θ − EPSILON: from the buckets on the hundredths
    grid, else one exact query."""
    b = _bucket(theta)
    if b is not None:
        return {lid: int(buckets[lid][b:].sum()) if lid in buckets else 0 for lid in label_ids}
    rows = (
        Prediction.objects.filter(
            run_id=run.pk, label_id__in=label_ids, probability__gte=theta - EPSILON
        )
        .order_by()
        .values("label_id")
        .annotate(n=Count("*"))
        .values_list("label_id", "n")
    )
    found = dict(rows)
    return {lid: int(found.get(lid, 0)) for lid in label_ids}


def _others_at(buckets: dict[int, np.ndarray], validated: set[int], theta: float | None,
               run: ClassificationRun) -> int:  # fmt: skip
    """Predictions of the labels outside `validated` with p >= θ."""
    if theta is None:
        return 0
    others = [lid for lid in buckets if lid not in validated]
    return sum(_count_at(run, buckets, others, theta).values()) if others else 0


# ---------------------------------------------------------------- the selection


def selection_compute(*, sample: Sample, rule: Rule) -> Selection:
    """The selection of the sample's run by `rule`, and its estimate
    (docs/architecture.md#curated-selection). Only a balanced sample estimates precision
    (Conflict, 409, otherwise); a threshold below the sample's `min_probability` is refused
    (FieldInvalid, 400): the sample holds no item below it."""
    if not sample.random:
        raise Conflict(
            "This sample is targeted (its items were chosen, not drawn at random), so it does "
            "not estimate precision. Draw a balanced sample to curate the run."
        )
    start = sample.min_probability or 0.0
    if rule.threshold is not None and rule.threshold < start - EPSILON:
        raise FieldInvalid(
            "threshold",
            f"The sample holds no item below p = {start:g} (its min_probability), so it says "
            f"nothing about a threshold of {rule.threshold:g}.",
        )
    run = sample.run
    outcomes = metrics.sample_outcomes(sample=sample)
    decided = outcomes.decided
    hit = outcomes.outcome == metrics.HIT
    buckets = run_label_buckets(run)
    # The dashboard's order for labels: how often the run predicts them, then key.
    names = dict(outcomes.labels)
    sampled = sorted(
        {int(x) for x in outcomes.label_id},
        key=lambda lid: (-int(buckets[lid].sum()) if lid in buckets else 0, names[lid][1]),
    )

    thresholds: dict[int, float | None] = {}
    best_low: dict[int, float | None] = {}
    for lid in sampled:
        mine = decided & (outcomes.label_id == lid)
        if rule.threshold is not None:
            thresholds[lid] = rule.threshold
        else:
            target = float(rule.target_precision or 0.0)  # the rule has one of the two
            thresholds[lid], best_low[lid] = threshold_for_target(
                outcomes.probability[mine], hit[mine], target, start=start
            )

    per_label: list[LabelSelection] = []
    for lid in sampled:
        theta = thresholds[lid]
        mine = decided & (outcomes.label_id == lid)
        if theta is None:
            # Never reaches the target: its figures over all its judged items show why.
            kept = mine & (outcomes.probability >= start - EPSILON)
            available = 0
        else:
            kept = mine & (outcomes.probability >= theta - EPSILON)
            available = _count_at(run, buckets, [lid], theta)[lid]
        judged, hits = int(kept.sum()), int((kept & hit).sum())
        low, high = metrics.wilson(hits, judged)
        if theta is None:
            status = BELOW_TARGET
        elif judged == 0:
            status = UNMEASURED
        else:
            status = SELECTED
        name, key = names[lid]
        per_label.append(
            LabelSelection(
                label_id=lid, key=key, name=name, status=status, threshold=theta,
                available=available, judged=judged, hits=hits,
                precision=None if judged == 0 else hits / judged,
                precision_low=low, precision_high=high, best_lower_bound=best_low.get(lid),
            )
        )  # fmt: skip

    chosen = [row for row in per_label if row.status == SELECTED and row.available > 0]
    validated = sum(row.available for row in chosen)
    if validated:
        weights = np.array([row.available / validated for row in chosen])
        estimate, low, high = stratified_estimate(
            weights,
            np.array([row.hits for row in chosen], dtype=np.float64),
            np.array([row.judged for row in chosen], dtype=np.float64),
        )
    else:
        estimate = low = high = None

    # Unvalidated: labels outside the sample at the rule's threshold (a target rule: the
    # strictest threshold a validated label needed), plus sampled labels unmeasured at theirs.
    if rule.threshold is not None:
        others_theta: float | None = rule.threshold
    else:
        reached = [row.threshold for row in per_label if row.status == SELECTED]
        others_theta = max(t for t in reached if t is not None) if reached else None
    unmeasured = sum(row.available for row in per_label if row.status == UNMEASURED)
    unvalidated = _others_at(buckets, set(sampled), others_theta, run) + unmeasured

    exported = {row.label_id: float(row.threshold) for row in per_label
                if row.status == SELECTED and row.threshold is not None}  # fmt: skip
    if rule.include_unvalidated:
        exported.update({row.label_id: float(row.threshold) for row in per_label
                         if row.status == UNMEASURED and row.threshold is not None})  # fmt: skip
    return Selection(
        sample=sample,
        rule=rule,
        per_label=per_label,
        unvalidated_threshold=others_theta,
        unvalidated=unvalidated,
        precision=estimate,
        precision_low=low,
        precision_high=high,
        validated=validated,
        thresholds=exported,
        others_threshold=others_theta if rule.include_unvalidated else None,
    )


def selection_filter(selection: Selection, alias: str = "p") -> tuple[str, list[Any]]:
    """The SQL condition on prediction rows (table alias `alias`) that the selection holds:
    the run, each exported label at its threshold and, with unvalidated items included, every
    label of neither the sample nor that list at the unvalidated threshold. The export streams
    with it, so what is written is exactly what was counted."""
    sampled = [row.label_id for row in selection.per_label]
    clauses: list[str] = []
    params: list[Any] = []
    by_theta: dict[float, list[int]] = {}
    for label_id, theta in selection.thresholds.items():
        by_theta.setdefault(theta, []).append(label_id)
    for theta, label_ids in sorted(by_theta.items()):
        marks = ", ".join(["%s"] * len(label_ids))
        clauses.append(f"({alias}.label_id IN ({marks}) AND {alias}.probability >= %s)")
        params += [*label_ids, theta - EPSILON]
    if selection.others_threshold is not None:
        if sampled:
            marks = ", ".join(["%s"] * len(sampled))
            clauses.append(f"({alias}.label_id NOT IN ({marks}) AND {alias}.probability >= %s)")
            params += [*sampled, selection.others_threshold - EPSILON]
        else:
            clauses.append(f"({alias}.probability >= %s)")
            params.append(selection.others_threshold - EPSILON)
    where = " OR ".join(clauses) if clauses else "FALSE"
    return f"{alias}.run_id = %s AND ({where})", [selection.sample.run_id, *params]


def selection_labels(selection: Selection) -> dict[int, tuple[str, str]]:
    """label id -> (key, name) for every label of the run's taxonomy (the export's rows name
    corrected labels too)."""
    rows = Label.objects.filter(taxonomy_id=selection.run.taxonomy_id)
    return {pk: (key, name) for pk, key, name in rows.values_list("pk", "key", "name")}


def selection_count(selection: Selection) -> int:
    """Rows the filter matches, counted by the database (the export's `total`)."""
    where, params = selection_filter(selection)
    table = Prediction._meta.db_table
    with connection.cursor() as cursor:
        # Only placeholders and the model's table name are formatted in; values are params.
        cursor.execute(f"SELECT COUNT(*) FROM {table} p WHERE {where}", params)  # noqa: S608
        return int(cursor.fetchone()[0])
