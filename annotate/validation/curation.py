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


class RunCounts:
    """The run's predictions per label at a θ (p >= θ − EPSILON): from the cached buckets on
    the hundredths grid, else one exact query per θ for every label (memoised)."""

    def __init__(self, run: ClassificationRun) -> None:
        self.run = run
        self.buckets = run_label_buckets(run)
        self._counted: dict[float, dict[int, int]] = {}

    def total(self, label_id: int) -> int:
        counts = self.buckets.get(label_id)
        return 0 if counts is None else int(counts.sum())

    def at(self, theta: float) -> dict[int, int]:
        if theta not in self._counted:
            b = _bucket(theta)
            if b is not None:
                found = {lid: int(c[b:].sum()) for lid, c in self.buckets.items()}
            else:
                rows = (
                    Prediction.objects.filter(run_id=self.run.pk, probability__gte=theta - EPSILON)
                    .order_by()
                    .values("label_id")
                    .annotate(n=Count("*"))
                    .values_list("label_id", "n")
                )
                found = {lid: int(n) for lid, n in rows}
            self._counted[theta] = found
        return self._counted[theta]


# ---------------------------------------------------------------- the selection


def _label_selection(
    outcomes: metrics.Outcomes, label_id: int, rule: Rule, start: float, counts: RunCounts
) -> LabelSelection:
    """One sampled label: its θ (the rule's, or the target's on the grid), the run's items
    there, and its precision among its decided sample items there."""
    hit = outcomes.outcome == metrics.HIT
    mine = outcomes.decided & (outcomes.label_id == label_id)
    best: float | None = None
    if rule.threshold is not None:
        theta: float | None = rule.threshold
    else:
        target = float(rule.target_precision or 0.0)  # the rule has one of the two
        theta, best = threshold_for_target(
            outcomes.probability[mine], hit[mine], target, start=start
        )
    # A label that never reaches the target shows its figures over all its judged items.
    kept = mine & (outcomes.probability >= (start if theta is None else theta) - EPSILON)
    judged, hits = int(kept.sum()), int((kept & hit).sum())
    low, high = metrics.wilson(hits, judged)
    if theta is None:
        status, available = BELOW_TARGET, 0
    else:
        status = SELECTED if judged else UNMEASURED
        available = counts.at(theta).get(label_id, 0)
    name, key = outcomes.labels[label_id]
    return LabelSelection(
        label_id=label_id, key=key, name=name, status=status, threshold=theta,
        available=available, judged=judged, hits=hits,
        precision=None if judged == 0 else hits / judged,
        precision_low=low, precision_high=high, best_lower_bound=best,
    )  # fmt: skip


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
    outcomes = metrics.sample_outcomes(sample=sample)
    counts = RunCounts(sample.run)
    # The dashboard's order for labels: how often the run predicts them, then key.
    sampled = sorted(
        {int(x) for x in outcomes.label_id},
        key=lambda lid: (-counts.total(lid), outcomes.labels[lid][1]),
    )
    per_label = [_label_selection(outcomes, lid, rule, start, counts) for lid in sampled]

    chosen = [row for row in per_label if row.status == SELECTED and row.available > 0]
    validated = sum(row.available for row in chosen)
    estimate, low, high = stratified_estimate(
        np.array([row.available / validated for row in chosen]),
        np.array([row.hits for row in chosen], dtype=np.float64),
        np.array([row.judged for row in chosen], dtype=np.float64),
    )

    # Unvalidated: labels outside the sample at the rule's threshold (a target rule: the
    # strictest threshold a validated label needed), plus sampled labels unmeasured at theirs.
    if rule.threshold is not None:
        others_theta: float | None = rule.threshold
    else:
        reached = [row.threshold for row in per_label if row.status == SELECTED]
        others_theta = max(t for t in reached if t is not None) if reached else None
    unvalidated = sum(row.available for row in per_label if row.status == UNMEASURED)
    if others_theta is not None:
        unvalidated += sum(n for lid, n in counts.at(others_theta).items() if lid not in sampled)

    kept = (SELECTED, UNMEASURED) if rule.include_unvalidated else (SELECTED,)
    exported = {row.label_id: float(row.threshold) for row in per_label
                if row.status in kept and row.threshold is not None}  # fmt: skip
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
