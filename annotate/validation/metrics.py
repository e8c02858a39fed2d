"""Live validation metrics of a sample: threshold table, per-class table, agreement, progress,
and scores of other runs against the verdicts collected so far.

Definitions: docs/architecture.md#computations. One computation, several front doors: the API
(api_metrics.py), the dashboard page (dashboard.py) and the `thresholds` command call these.

Cost: every function loads its rows with a constant number of queries (values_list over the
sample's items and verdicts, and SQL aggregates), then computes in one numpy pass, so the
number of queries never grows with the sample size (pinned in tests/dashboards).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from django.db.models import Case, Count, F, Max, Prefetch, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.runtime import import_long_lived
from annotate.validation.assignment import progress_counts, progress_sum
from annotate.validation.models import Adjudication, Sample, SampleItem, Verdict
from annotate.validation.selectors import get_sample_for_user
from classifier.models import ClassificationRun, Prediction
from classifier.scoring import count_labels, stored_label_counts

HIT, MISS, SKIP = Verdict.Value.HIT.value, Verdict.Value.MISS.value, Verdict.Value.SKIP.value
# Majority outcome of an item: no hit/miss verdict yet, or a tie between hits and misses.
PENDING, TIE = "pending", "tie"
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0  # fixed: the same verdicts always give the same interval
MIN_STEP, DEFAULT_STEP = 0.01, 0.1
HISTOGRAM_BINS = 20

THRESHOLD_COLUMNS = [
    "threshold", "classified", "hits", "errors", "hit_rate", "error_rate", "ratio",
    "ratio_low", "ratio_high", "precision", "precision_low", "precision_high", "adjudicated",
]  # fmt: skip
CLASS_COLUMNS = [
    "label", "label_key", "frequency", "sampled", "hits", "misses", "ties", "accuracy",
    "accuracy_low", "accuracy_high", "adjudicated",
]  # fmt: skip
PAIR_COLUMNS = ["a", "b", "kappa", "items", "agreement"]
ANNOTATOR_COLUMNS = ["annotator", "verdicts", "hits", "misses", "skips", "corrected", "last"]
LABEL_PROGRESS_COLUMNS = [
    "label", "items", "started", "complete", "decided", "ties", "verdicts", "adjudicated",
]  # fmt: skip
SCORE_COLUMNS = [
    "run", "name", "model", "ensemble", "status", "current", "covered", "correct", "accuracy",
    "accuracy_low", "accuracy_high",
]  # fmt: skip


def get_sample_for_lead(user, pk) -> Sample:
    """The sample for a lead or admin of its dataset. Outsiders get 404 (as everywhere);
    annotators of the dataset get 403: they know the sample exists (they annotate it) but
    must not see live results while they judge (it would bias them)."""
    sample, role = get_sample_for_user(user, pk)
    require_role(role, Role.LEAD, "Dashboards are for leads and admins of the dataset.")
    return sample


def parse_step(value: str | None) -> float:
    """`?step=` / `--step`: a threshold step in [0.01, 1]; ValueError otherwise."""
    if value in (None, ""):
        return DEFAULT_STEP
    step = float(value)
    if not (MIN_STEP <= step <= 1) or math.isnan(step):
        raise ValueError(f"step must be between {MIN_STEP} and 1")
    return step


def sample_version(*, sample: Sample) -> str:
    """A cheap fingerprint of what the dashboard shows (two aggregate queries): the verdicts of
    every sample on the dataset with this taxonomy (the scores table uses them all), and in
    one UNION its runs (a new, finished or hidden run changes the scores) and the lead's
    adjudications (docs/architecture.md#adjudication). It changes whenever a verdict or an
    adjudication is added, changed or removed. Used as ETag and by the dashboard's poller."""
    dataset_id, taxonomy_id = sample.run.dataset_id, sample.run.taxonomy_id
    verdicts = _verdicts_of_dataset(dataset_id=dataset_id, taxonomy_id=taxonomy_id).aggregate(
        n=Count("id"), top=Max("id"), last=Max("updated")
    )
    # Each part is one aggregate row: (part, count, top id, last change, a fifth count).
    runs = (
        ClassificationRun.objects.filter(dataset_id=dataset_id, taxonomy_id=taxonomy_id)
        .order_by()
        .values(part=Value(0))
        .annotate(
            n=Count("id"), top=Max("id"), last=Max("finished"),
            extra=Count("id", filter=Q(hidden=True)),
        )
        .values_list("part", "n", "top", "last", "extra")
    )  # fmt: skip
    adjudications = (
        _adjudications_of_dataset(dataset_id=dataset_id, taxonomy_id=taxonomy_id)
        .order_by()
        .values(part=Value(1))
        .annotate(
            n=Count("id"), top=Max("id"), last=Max("updated"),
            extra=Count("id", filter=Q(value=HIT)),
        )
        .values_list("part", "n", "top", "last", "extra")
    )  # fmt: skip
    parts: list[Any] = [sample.pk, verdicts["n"], verdicts["top"] or 0, _stamp(verdicts["last"])]
    for _part, n, top, last, extra in sorted(runs.union(adjudications, all=True)):
        parts += [n, top or 0, _stamp(last), extra]
    return ".".join(map(str, parts))


def _stamp(moment: Any) -> str:
    """A timestamp of the fingerprint (SQLite may give a UNION's datetime back as text)."""
    if moment is None:
        return "0"
    return f"{moment.timestamp():.6f}" if hasattr(moment, "timestamp") else str(moment)


def _majority(hits: int, misses: int) -> str:
    if hits == misses:
        return PENDING if hits == 0 else TIE
    return HIT if hits > misses else MISS


@dataclass
class Outcomes:
    """The sample's items and verdicts, loaded once (two queries) and shared by the tables."""

    item_ids: np.ndarray
    probability: np.ndarray
    label_id: np.ndarray
    wanted: np.ndarray
    # HIT / MISS / TIE / PENDING per item: the lead's adjudication where there is one, else the
    # majority of the hit/miss verdicts (docs/architecture.md#adjudication).
    outcome: np.ndarray
    labels: dict[int, tuple[str, str]]  # label id -> (name, key)
    # (sample item id, annotator id, value, corrected label id, updated) per verdict
    verdicts: list[tuple] = field(default_factory=list)
    usernames: dict[int, str] = field(default_factory=dict)
    # True where the outcome is the lead's adjudication (it may equal the majority).
    adjudicated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # Hit and miss verdicts per item (the majority before any adjudication comes from them).
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    misses: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    durations: list[int | None] = field(default_factory=list)  # duration_ms per verdict

    @property
    def decided(self) -> np.ndarray:
        return (self.outcome == HIT) | (self.outcome == MISS)


def sample_outcomes(*, sample: Sample) -> Outcomes:
    """Load the sample once: items with probability, label and adjudication (a LEFT JOIN, no
    query of its own), verdicts, outcome per item."""
    rows = list(
        SampleItem.objects.filter(sample=sample)
        .order_by("position")
        .values_list(
            "id", "prediction__probability", "prediction__label_id", "wanted_verdicts",
            "prediction__label__name", "prediction__label__key", "adjudication__value",
        )
    )  # fmt: skip
    verdicts = list(
        Verdict.objects.filter(sample_item__sample=sample)
        .order_by("id")
        .values_list(
            "sample_item_id", "annotator_id", "value", "corrected_label_id", "updated",
            "annotator__username", "duration_ms",
        )
    )  # fmt: skip
    n = len(rows)
    item_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    index = {int(pk): i for i, pk in enumerate(item_ids)}
    hits = np.zeros(n, dtype=np.int64)
    misses = np.zeros(n, dtype=np.int64)
    usernames: dict[int, str] = {}
    for sample_item_id, annotator_id, value, _corrected, _updated, username, _ms in verdicts:
        usernames[annotator_id] = username
        if value == HIT:
            hits[index[sample_item_id]] += 1
        elif value == MISS:
            misses[index[sample_item_id]] += 1
    majority = np.array(
        [_majority(int(h), int(m)) for h, m in zip(hits, misses, strict=True)], dtype="<U7"
    )
    adjudication = np.array([r[6] or "" for r in rows], dtype="<U4")
    adjudicated = adjudication != ""
    return Outcomes(
        item_ids=item_ids,
        probability=np.fromiter((r[1] for r in rows), dtype=np.float64, count=n),
        label_id=np.fromiter((r[2] for r in rows), dtype=np.int64, count=n),
        wanted=np.fromiter((r[3] for r in rows), dtype=np.int64, count=n),
        outcome=np.where(adjudicated, adjudication, majority).astype("<U7"),
        labels={r[2]: (r[4], r[5]) for r in rows},
        verdicts=[v[:5] for v in verdicts],
        usernames=usernames,
        adjudicated=adjudicated,
        hits=hits,
        misses=misses,
        durations=[v[6] for v in verdicts],
    )


DISAGREEMENT_STATUSES = ("open", "decided", "all")


def disagreements(*, sample: Sample, status: str = "all"):
    """The sample items the lead should look at (docs/architecture.md#adjudication): at least
    one hit and one miss, or misses with different corrected labels, or already adjudicated.
    `status`: `open` (no adjudication yet), `decided`, or `all`. Each row carries `hits`,
    `misses` and `majority` (hit, miss or tie, before the lead), its prediction, its item, its
    adjudication and, prefetched, its verdicts: two queries for a page of any size."""
    if status not in DISAGREEMENT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(DISAGREEMENT_STATUSES)}")
    rows = SampleItem.objects.filter(sample=sample).annotate(
        hits=Count("verdicts", filter=Q(verdicts__value=HIT)),
        misses=Count("verdicts", filter=Q(verdicts__value=MISS)),
        corrections=Count("verdicts__corrected_label", distinct=True),
        majority=Case(
            When(hits__gt=F("misses"), then=Value(HIT)),
            When(misses__gt=F("hits"), then=Value(MISS)),
            default=Value(TIE),
        ),
    )
    rows = rows.filter(
        Q(hits__gt=0, misses__gt=0) | Q(corrections__gt=1) | Q(adjudication__isnull=False)
    )
    if status != "all":
        rows = rows.filter(adjudication__isnull=status == "open")
    verdicts = Verdict.objects.select_related("annotator", "corrected_label").order_by("id")
    return (
        rows.select_related(
            "prediction__item",
            "prediction__label",
            "adjudication__corrected_label",
            "adjudication__decided_by",
        )
        .prefetch_related(Prefetch("verdicts", queryset=verdicts))
        .order_by("position")
    )


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion; (None, None) when n is 0.

    The bounds are exact at the ends: no successes give a lower bound of 0.0 and all successes
    an upper bound of 1.0 (the formula's subtraction leaves rounding residue such as 3.5e-18)."""
    if n == 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def thresholds_grid(step: float) -> np.ndarray:
    """0, step, 2·step, ... up to 1 (rounded, so 0.6 is exactly the float 0.6)."""
    count = math.floor(1 / step + 1e-9) + 1
    return np.round(np.arange(count) * step, 10)


def _ratio_interval(
    p: np.ndarray, hit: np.ndarray, thetas: np.ndarray, resamples: int, seed: int
) -> tuple[list, list]:
    """Percentile bootstrap (items resampled with replacement) of ratio(θ) = hit_rate/error_rate.

    hits(θ) and errors(θ) of a resample depend only on how many drawn items fall in each
    (highest θ passed, hit or miss) cell, so drawing the cell counts from the multinomial of
    the observed cell shares is exactly the item bootstrap, vectorised over resamples and at
    a cost independent of the number of items. An upper bound of None means unbounded (some
    resamples have no errors above θ)."""
    n, t = len(p), len(thetas)
    if n == 0:
        return [None] * t, [None] * t
    rng = np.random.default_rng(seed)
    passed = np.searchsorted(thetas, p, side="right")  # item passes thetas[:passed]
    cells = np.bincount(passed + (t + 1) * (~hit), minlength=2 * (t + 1))
    draws = rng.multinomial(n, cells / cells.sum(), size=resamples)
    # Items passing θ_j are those whose cell index is above j: reversed cumulative sums.
    hits_b = np.cumsum(draws[:, t::-1], axis=1)[:, ::-1][:, 1:].astype(np.float64)
    errors_b = np.cumsum(draws[:, :t:-1], axis=1)[:, ::-1][:, 1:].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # One division of exact integer products: a ratio of 0 or 1 comes out exactly.
        ratio = (hits_b * errors_b[:, :1]) / (hits_b[:, :1] * errors_b)  # inf: no errors, nan: 0/0
    lows, highs = [], []
    for column in ratio.T:
        values = np.sort(column[~np.isnan(column)])
        if len(values) < resamples / 2:  # undefined in most resamples: no interval
            lows.append(None)
            highs.append(None)
            continue
        k = len(values) - 1
        low = values[math.floor(0.025 * k)]
        high = values[math.ceil(0.975 * k)]
        lows.append(float(low) if np.isfinite(low) else None)
        highs.append(float(high) if np.isfinite(high) else None)
    return lows, highs


def thresholds_table(
    *,
    sample: Sample,
    step: float = DEFAULT_STEP,
    outcomes: Outcomes | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> dict[str, Any]:
    """The threshold table (docs/architecture.md#threshold-table): over items with a majority
    hit/miss verdict, for each θ:
    classified, hits, errors, hit_rate, error_rate, ratio (None when error_rate is 0),
    precision with its 95 % Wilson interval precision_low/precision_high, and a 95 % bootstrap
    interval ratio_low/ratio_high. Ties are excluded and
    counted; skips are ignored. An item the lead adjudicated counts as the lead decided it;
    `adjudicated` (per row and in all) says how many of the counted items that is."""
    o = outcomes or sample_outcomes(sample=sample)
    decided = o.decided
    p = o.probability[decided]
    hit = o.outcome[decided] == HIT
    thetas = thresholds_grid(step)
    above = p[:, None] >= thetas[None, :]
    hits = (above & hit[:, None]).sum(axis=0)
    errors = (above & ~hit[:, None]).sum(axis=0)
    by_lead = (above & o.adjudicated[decided][:, None]).sum(axis=0)
    hits0, errors0 = int(hit.sum()), int((~hit).sum())
    lows, highs = _ratio_interval(p, hit, thetas, resamples, BOOTSTRAP_SEED)
    rows = []
    for i, theta in enumerate(thetas):
        h, e = int(hits[i]), int(errors[i])
        hit_rate, error_rate = _div(h, hits0), _div(e, errors0)
        ratio = None
        if hit_rate is not None and error_rate:
            ratio = (h * errors0) / (hits0 * e)  # hit_rate / error_rate, rounded once
        precision_low, precision_high = wilson(h, h + e)
        rows.append(
            {
                "threshold": float(theta),
                "classified": h + e,
                "hits": h,
                "errors": e,
                "hit_rate": hit_rate,
                "error_rate": error_rate,
                "ratio": ratio,
                "ratio_low": lows[i],
                "ratio_high": highs[i],
                "precision": _div(h, h + e),
                "precision_low": precision_low,
                "precision_high": precision_high,
                "adjudicated": int(by_lead[i]),
            }
        )
    best = max(
        (r for r in rows if r["ratio"] is not None),
        key=lambda r: r["ratio"],  # max() keeps the first: the lowest θ among equal ratios
        default=None,
    )
    bins = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    return {
        "rows": rows,
        "best_threshold": best["threshold"] if best else None,
        "best_ratio": best["ratio"] if best else None,
        "mean_probability_hits": float(p[hit].mean()) if hits0 else None,
        "mean_probability_misses": float(p[~hit].mean()) if errors0 else None,
        "items": len(o.item_ids),
        "decided": int(decided.sum()),
        "ties": int((o.outcome == TIE).sum()),
        "pending": int((o.outcome == PENDING).sum()),
        "adjudicated": int(o.adjudicated.sum()),
        "step": step,
        "histogram": {
            "bins": [float(b) for b in bins],
            "hits": np.histogram(p[hit], bins=bins)[0].tolist(),
            "misses": np.histogram(p[~hit], bins=bins)[0].tolist(),
        },
    }


def run_label_frequency(*, run: ClassificationRun, label_ids: list[int]) -> dict[int, int]:
    """How often the run predicted each label: the counts a succeeded run stored (migration
    0008 filled them in for older runs), else one GROUP BY over the run's predictions, which
    only a run still at work pays (docs/architecture.md#explorer)."""
    counts = stored_label_counts(run)
    if counts is None:
        counts = count_labels(run.pk)
    return {label_id: counts[label_id] for label_id in label_ids if label_id in counts}


def classes_table(*, sample: Sample, outcomes: Outcomes | None = None) -> dict[str, Any]:
    """Per sampled label: frequency in the whole run (one SQL aggregate), sampled, hits,
    misses, accuracy = hits / (hits + misses) with its 95 % Wilson interval."""
    o = outcomes or sample_outcomes(sample=sample)
    label_ids = sorted(o.labels)
    frequency = run_label_frequency(run=sample.run, label_ids=label_ids)
    rows = []
    for label_id in label_ids:
        mine = o.label_id == label_id
        hits = int((mine & (o.outcome == HIT)).sum())
        misses = int((mine & (o.outcome == MISS)).sum())
        low, high = wilson(hits, hits + misses)
        name, key = o.labels[label_id]
        rows.append(
            {
                "label": name,
                "label_key": key,
                "label_id": label_id,
                "frequency": frequency.get(label_id, 0),
                "sampled": int(mine.sum()),
                "hits": hits,
                "misses": misses,
                "ties": int((mine & (o.outcome == TIE)).sum()),
                "accuracy": _div(hits, hits + misses),
                "accuracy_low": low,
                "accuracy_high": high,
                "adjudicated": int((mine & o.adjudicated).sum()),
            }
        )
    rows.sort(key=lambda r: (-r["frequency"], r["label_key"]))
    return {"rows": rows}


def cohen_kappa(a: list, b: list) -> float | None:
    """Cohen's kappa of two raters over the same items; None when undefined (chance
    agreement 1, e.g. both always say hit)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def nominal_alpha(data: np.ndarray, value_domain: list | None = None) -> float | None:
    """Krippendorff's alpha, nominal, of a coders × units matrix (NaN = missing), computed by
    the maintained `krippendorff` package; None when undefined (a single value observed)."""
    import krippendorff  # imported here: only the agreement table needs it

    domain = value_domain or sorted(set(data[~np.isnan(data)].tolist()))
    if len(domain) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        value = krippendorff.alpha(
            reliability_data=data, level_of_measurement="nominal", value_domain=domain
        )
    return None if math.isnan(value) else float(value)


def votes_alpha(
    votes: Mapping[Any, Mapping[Any, int]], value_domain: list | None = None
) -> tuple[float | None, int]:
    """Krippendorff's alpha (nominal) of votes given as {unit: {coder: value}}, over the units
    with two votes or more (a coders × units matrix, missing where a coder did not vote), and
    the number of those units. The hit/miss agreement and the ITR alphas both use it."""
    units = sorted(unit for unit, by in votes.items() if len(by) >= 2)
    if not units:
        return None, 0
    coders = sorted({coder for unit in units for coder in votes[unit]})
    position = {coder: row for row, coder in enumerate(coders)}
    data = np.full((len(coders), len(units)), np.nan)
    for column, unit in enumerate(units):
        for coder, value in votes[unit].items():
            data[position[coder], column] = value
    return nominal_alpha(data, value_domain=value_domain), len(units)


def agreement_table(*, sample: Sample, outcomes: Outcomes | None = None) -> dict[str, Any]:
    """Krippendorff's alpha (nominal, hit/miss; skips are missing values) over the items with
    two or more hit/miss verdicts, and Cohen's kappa for every pair of annotators over the
    items both judged hit or miss. `items` is the number of items that enter alpha."""
    o = outcomes or sample_outcomes(sample=sample)
    judged: dict[int, dict[int, int]] = defaultdict(dict)  # item -> annotator -> 1 hit / 0 miss
    for sample_item_id, annotator_id, value, _corrected, _updated in o.verdicts:
        if value != SKIP:
            judged[sample_item_id][annotator_id] = 1 if value == HIT else 0
    alpha, units = votes_alpha(judged, value_domain=[0, 1])
    annotators = sorted(o.usernames, key=lambda a: o.usernames[a])
    pairs = []
    for a, b in combinations(annotators, 2):
        shared = [votes for votes in judged.values() if a in votes and b in votes]
        va, vb = [v[a] for v in shared], [v[b] for v in shared]
        pairs.append(
            {
                "a": o.usernames[a],
                "b": o.usernames[b],
                "kappa": cohen_kappa(va, vb),
                "items": len(shared),
                "agreement": _div(sum(x == y for x, y in zip(va, vb, strict=True)), len(shared)),
            }
        )
    return {"alpha": alpha, "items": units, "pairs": pairs}


def _annotator_counts(o: Outcomes) -> dict[int, dict[str, Any]]:
    """Per annotator id, in name order, what the progress table and the annotator figures
    both show: verdicts (skips included), hits, misses, skips, corrected labels, last verdict's
    time."""
    counts: dict[int, Counter] = defaultdict(Counter)
    last: dict[int, Any] = {}
    for _sample_item_id, annotator_id, value, corrected, updated in o.verdicts:
        counts[annotator_id][value] += 1
        counts[annotator_id]["corrected"] += corrected is not None
        last[annotator_id] = max(last.get(annotator_id, updated), updated)
    return {
        a: {
            "annotator": o.usernames[a],
            "verdicts": c[HIT] + c[MISS] + c[SKIP],
            "hits": c[HIT],
            "misses": c[MISS],
            "skips": c[SKIP],
            "corrected": c["corrected"],
            "last": last[a],
        }
        for a, c in sorted(counts.items(), key=lambda kv: o.usernames[kv[0]])
    }


def progress_table(*, sample: Sample, outcomes: Outcomes | None = None) -> dict[str, Any]:
    """Progress per annotator (verdict counts, skips included) and per label (items started,
    complete, decided by majority or by the lead, ties, adjudicated by the lead). Completion
    and the totals come from `assignment.progress_counts`, the one definition the annotation
    page uses too: an item is complete once its hit/miss verdicts reach the wanted number;
    skips do not count."""
    o = outcomes or sample_outcomes(sample=sample)
    count = np.zeros(len(o.item_ids), dtype=np.int64)
    index = {int(pk): i for i, pk in enumerate(o.item_ids)}
    for sample_item_id, *_rest in o.verdicts:
        count[index[sample_item_id]] += 1
    annotators = [{**row, "last": row["last"].isoformat()} for row in _annotator_counts(o).values()]
    by_label = progress_counts(
        items=SampleItem.objects.filter(sample=sample), by="prediction__label_id"
    )
    labels = []
    for label_id, (name, _key) in sorted(o.labels.items(), key=lambda kv: kv[1][1]):
        mine = o.label_id == label_id
        labels.append(
            {
                "label": name,
                "items": int(mine.sum()),
                "started": int((mine & (count > 0)).sum()),
                "complete": by_label[label_id]["done"],
                "decided": int((mine & o.decided).sum()),
                "ties": int((mine & (o.outcome == TIE)).sum()),
                "verdicts": int(count[mine].sum()),
                "adjudicated": int((mine & o.adjudicated).sum()),
            }
        )
    total = progress_sum(by_label.values())
    return {
        "verdicts": len(o.verdicts),
        "items": total["items"],
        "wanted": total["wanted"],
        "given": total["given"],
        "complete": total["done"],
        "percent": total["percent"],
        "adjudicated": int(o.adjudicated.sum()),
        "annotators": annotators,
        "labels": labels,
    }


def _verdicts_of_dataset(*, dataset_id: int, taxonomy_id: int):
    return Verdict.objects.filter(
        sample_item__sample__run__dataset_id=dataset_id,
        sample_item__sample__run__taxonomy_id=taxonomy_id,
    )


def _adjudications_of_dataset(*, dataset_id: int, taxonomy_id: int):
    return Adjudication.objects.filter(
        sample_item__sample__run__dataset_id=dataset_id,
        sample_item__sample__run__taxonomy_id=taxonomy_id,
    )


FACT_FIELDS = (
    "sample_item_id", "sample_item__prediction__item_id", "sample_item__prediction__label_id",
    "value", "corrected_label_id", "updated", "lead",
)  # fmt: skip


def _facts(*, dataset_id: int, taxonomy_id: int) -> dict[int, tuple[set, set]]:
    """What the verdicts and adjudications of ALL samples of the dataset (same taxonomy) say,
    per item: (labels known true, labels known false). A majority hit confirms the predicted
    label; a majority miss makes it false and, with a corrected label (strictly the most common
    correction), gives the true label. A lead's adjudication of (item, label) replaces the
    majorities of every sample item with that item and label: its value decides, and its
    corrected label, if any, is the true label (the latest adjudication wins if two samples
    hold one; docs/architecture.md#adjudication). One query (a UNION)."""
    verdicts = _verdicts_of_dataset(dataset_id=dataset_id, taxonomy_id=taxonomy_id)
    adjudications = _adjudications_of_dataset(dataset_id=dataset_id, taxonomy_id=taxonomy_id)
    rows = (
        verdicts.order_by()
        .annotate(lead=Value(False))
        .values_list(*FACT_FIELDS)
        .union(
            adjudications.order_by().annotate(lead=Value(True)).values_list(*FACT_FIELDS), all=True
        )
    )
    votes: dict[int, list] = {}
    decisions: dict[tuple[int, int], tuple] = {}  # (item, label) -> (updated, value, corrected)
    for sample_item_id, item_id, label_id, value, corrected, updated, lead in rows:
        if lead:
            known = decisions.get((item_id, label_id))
            if known is None or _later(updated, known[0]):
                decisions[(item_id, label_id)] = (updated, value, corrected)
            continue
        entry = votes.get(sample_item_id)
        if entry is None:
            entry = votes[sample_item_id] = [item_id, label_id, 0, 0, None]
        if value == HIT:
            entry[2] += 1
        elif value == MISS:
            entry[3] += 1
            if corrected is not None:
                entry[4] = entry[4] or Counter()
                entry[4][corrected] += 1
    facts: dict[int, tuple[set, set]] = defaultdict(lambda: (set(), set()))
    for item_id, label_id, hits, misses, corrections in votes.values():
        outcome = _majority(hits, misses)
        if outcome in (HIT, MISS) and (item_id, label_id) not in decisions:
            top = corrections.most_common(2) if corrections else []
            strict = top and (len(top) == 1 or top[0][1] > top[1][1])
            _learn(facts[item_id], label_id, outcome, top[0][0] if strict else None)
    for (item_id, label_id), (_updated, value, corrected) in decisions.items():
        _learn(facts[item_id], label_id, value, corrected)
    return dict(facts)


def dataset_facts(*, dataset_id: int, taxonomy_id: int) -> dict[int, tuple[set, set]]:
    """Per item: (labels known true, labels known false), from the verdicts and adjudications
    of every sample of the dataset with this taxonomy (see `_facts`). Used by the suspects."""
    return _facts(dataset_id=dataset_id, taxonomy_id=taxonomy_id)


def fact_judgement(label_id: int, known: tuple[set, set]) -> bool | None:
    """Whether a label is right for an item, given the item's facts (labels known true,
    labels known false): right when it is the one known true label, wrong when it is known
    false or another label is known true; None when the facts do not decide (only other
    labels known false, or several conflicting true labels and this one among them)."""
    true, false = known
    if len(true) == 1:
        return label_id in true
    if label_id in false or (true and label_id not in true):
        return False
    return None


def _later(a: Any, b: Any) -> bool:
    """Whether time a is after b (SQLite may give a UNION's datetimes back as ISO text)."""
    if hasattr(a, "timestamp") and hasattr(b, "timestamp"):
        return a > b
    return str(a) > str(b)


def _learn(known: tuple[set, set], label_id: int, value: str, corrected: int | None) -> None:
    """A hit makes the label true; a miss makes it false, and its correction true."""
    true, false = known
    if value == HIT:
        true.add(label_id)
    else:
        false.add(label_id)
        if corrected is not None:
            true.add(corrected)


# Every pair of runs is compared when there are at most this many runs; above, only the
# sample's run against each other run (the pairs grow as the square of the runs).
MAX_RUNS_ALL_PAIRS = 8


def mcnemar_exact(a_only: int, b_only: int) -> float | None:
    """Exact two-sided McNemar test: under "both runs are equally often right", each item
    that only one run gets right is that run's with probability 1/2, so `a_only` is
    Binomial(a_only + b_only, 1/2). None without discordant items (nothing to test)."""
    if a_only + b_only == 0:
        return None
    stats = import_long_lived("scipy.stats")  # on first use: only the comparison needs scipy
    return float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)


def _pair(a: tuple, b: tuple, judged: dict[int, dict[int, bool]], current: bool) -> dict:
    """Runs a and b, given as (id, name), on the items the facts decide for both."""
    right_a, right_b = judged[a[0]], judged[b[0]]
    shared = right_a.keys() & right_b.keys()
    counts = Counter((right_a[item], right_b[item]) for item in shared)
    n = len(shared)
    a_only, b_only = counts[(True, False)], counts[(False, True)]
    return {
        "a": a[0],
        "a_name": a[1],
        "b": b[0],
        "b_name": b[1],
        "current": current,
        "items": n,
        "a_correct": counts[(True, True)] + a_only,
        "b_correct": counts[(True, True)] + b_only,
        "both_correct": counts[(True, True)],
        "a_only": a_only,
        "b_only": b_only,
        "neither": counts[(False, False)],
        "a_accuracy": _div(counts[(True, True)] + a_only, n),
        "b_accuracy": _div(counts[(True, True)] + b_only, n),
        "mcnemar_p": mcnemar_exact(a_only, b_only),
    }


def _mark_probe_pairs(rows: list[dict], pairs: list[dict], named: list, judged: dict) -> None:
    """`probe` on each pair: true when one run is a probe learned from the other
    (docs/architecture.md#probe), the comparison its figures report. A probe and its parent
    are always compared, even among too many runs for every pair."""
    parent_of = {r["run"]: r["parent"] for r in rows if r["source"] == "probe" and r["parent"]}
    compared = set()
    for pair in pairs:
        pair["probe"] = (
            parent_of.get(pair["a"]) == pair["b"] or parent_of.get(pair["b"]) == pair["a"]
        )
        compared.add(frozenset((pair["a"], pair["b"])))
    name = dict(named)
    for probe_id, parent_id in parent_of.items():
        if parent_id in name and frozenset((probe_id, parent_id)) not in compared:
            pair = _pair((parent_id, name[parent_id]), (probe_id, name[probe_id]), judged, False)
            pairs.append({**pair, "probe": True})
    # The sample's own comparisons first, then each probe against its parent.
    pairs.sort(key=lambda pair: (not pair["current"], not pair["probe"]))


def runs_score(*, sample: Sample) -> dict[str, Any]:
    """Score every run on the sample's dataset with the same taxonomy against all verdicts and
    adjudications so far, without new annotation (hidden runs are left out, except the
    sample's own). An item is covered for a run when the facts decide its prediction: correct
    when the label is the item's one known true label, wrong when it is known false (or
    another label is known true).

    Each run's row scores it on the items it covers. Rows over different items are not
    comparable, so `pairs` compares two runs on the items the facts decide for BOTH, with an
    exact McNemar test on the items only one of them gets right
    (docs/architecture.md#run-comparison): the sample's run against every other run, and
    every pair when there are at most MAX_RUNS_ALL_PAIRS runs. `targeted_samples`: how many
    of the facts' samples are targeted (not random). Three queries."""
    dataset_id, taxonomy_id = sample.run.dataset_id, sample.run.taxonomy_id
    facts = _facts(dataset_id=dataset_id, taxonomy_id=taxonomy_id)
    # Targeted samples (docs/architecture.md#sample-strategies) pick likely errors: their facts
    # count here like any other, but the items they decide are not a random draw. Counted by a
    # scalar subquery of the runs query (the same value on every row; no query of its own).
    targeted = (
        Sample.objects.filter(run__dataset_id=dataset_id, run__taxonomy_id=taxonomy_id)
        .exclude(strategy=Sample.Strategy.BALANCED)
        .order_by()
        .values("run__dataset_id")
        .annotate(n=Count("*"))
        .values("n")[:1]
    )
    runs = list(
        ClassificationRun.objects.filter(dataset_id=dataset_id, taxonomy_id=taxonomy_id)
        .filter(Q(hidden=False) | Q(pk=sample.run_id))
        .annotate(targeted=Coalesce(Subquery(targeted), 0))
        .order_by("id")
        .values_list("id", "name", "model", "ensemble", "status", "targeted", "source", "parent")
    )
    # The judged items as a subquery: the same single query whether or not there are facts.
    judged_items = (
        SampleItem.objects.filter(
            sample__run__dataset_id=dataset_id, sample__run__taxonomy_id=taxonomy_id
        )
        .filter(Q(verdict_count__gt=0) | Q(adjudication__isnull=False))
        .values("prediction__item_id")
    )
    predictions = Prediction.objects.filter(
        run_id__in=[r[0] for r in runs], item_id__in=judged_items
    ).values_list("run_id", "item_id", "label_id")
    judged: dict[int, dict[int, bool]] = defaultdict(dict)  # run -> item -> right
    for run_id, item_id, label_id in predictions:
        if item_id not in facts:
            continue  # only skips or ties so far
        right = fact_judgement(label_id, facts[item_id])
        if right is not None:
            judged[run_id][item_id] = right
    rows = []
    for run_id, name, model, ensemble, status, _targeted, source, parent in runs:
        covered, correct = len(judged[run_id]), sum(judged[run_id].values())
        low, high = wilson(correct, covered)
        rows.append(
            {
                "run": run_id,
                "name": name or f"run {run_id}",
                "model": model,
                "ensemble": ensemble,
                "status": status,
                "current": run_id == sample.run_id,
                "covered": covered,
                "correct": correct,
                "accuracy": _div(correct, covered),
                "accuracy_low": low,
                "accuracy_high": high,
                "source": source,
                "parent": parent,
            }
        )
    named = [(r["run"], r["name"]) for r in rows]
    own = [r for r in named if r[0] == sample.run_id]
    pairs = [_pair(own[0], other, judged, True) for other in named if own and other != own[0]]
    if len(named) <= MAX_RUNS_ALL_PAIRS:
        others = [r for r in named if r[0] != sample.run_id]
        pairs += [_pair(a, b, judged, False) for a, b in combinations(others, 2)]
    _mark_probe_pairs(rows, pairs, named, judged)
    targeted_samples = runs[0][5] if runs else 0
    return {"items": len(facts), "rows": rows, "pairs": pairs, "targeted_samples": targeted_samples}


ANNOTATOR_FIGURE_COLUMNS = [
    "annotator", "verdicts", "hits", "misses", "skips", "corrected", "timed", "median_seconds",
    "q1_seconds", "q3_seconds", "majority_items", "majority_agree", "majority_agreement",
    "majority_low", "majority_high", "majority_ties", "lead_items", "lead_agree",
    "lead_agreement", "lead_low", "lead_high", "last",
]  # fmt: skip


def annotators_table(*, sample: Sample, outcomes: Outcomes | None = None) -> dict[str, Any]:
    """Per annotator of the sample (docs/architecture.md#annotator-figures):
    - verdicts (skips included), hits, misses, skips, corrected labels;
    - seconds per verdict from `Verdict.duration_ms`: median and quartiles (numpy's linear
      interpolation) over the verdicts that carry a duration (`timed`);
    - agreement with the majority, leave-one-out: over the annotator's hit/miss verdicts on
      items with at least one other hit/miss verdict, the share equal to the majority of the
      OTHER annotators' hit/miss verdicts; items where the others tie are left out
      (`majority_ties`). 95 % Wilson interval;
    - agreement with the lead: over their hit/miss verdicts on adjudicated items, the share
      equal to the lead's value, with its Wilson interval;
    - the time of their last verdict.
    No query of its own besides the sample's one load."""
    o = outcomes or sample_outcomes(sample=sample)
    index = {int(pk): i for i, pk in enumerate(o.item_ids)}
    figures: dict[int, Counter] = defaultdict(Counter)
    seconds: dict[int, list[float]] = defaultdict(list)
    for verdict, duration in zip(o.verdicts, o.durations, strict=True):
        sample_item_id, annotator_id, value, _corrected, _updated = verdict
        mine = figures[annotator_id]
        if duration is not None:
            seconds[annotator_id].append(duration / 1000)
        if value == SKIP:
            continue
        i = index[sample_item_id]
        others_hits = int(o.hits[i]) - (value == HIT)
        others_misses = int(o.misses[i]) - (value == MISS)
        if others_hits + others_misses:
            if others_hits == others_misses:
                mine["majority_ties"] += 1
            else:
                mine["majority_items"] += 1
                mine["majority_agree"] += value == (HIT if others_hits > others_misses else MISS)
        if o.adjudicated[i]:
            mine["lead_items"] += 1
            mine["lead_agree"] += value == o.outcome[i]
    rows = []
    for annotator_id, counts in _annotator_counts(o).items():
        c = figures[annotator_id]
        q1, median, q3 = (
            (float(q) for q in np.percentile(seconds[annotator_id], [25, 50, 75]))
            if seconds[annotator_id]
            else (None, None, None)
        )
        majority_low, majority_high = wilson(c["majority_agree"], c["majority_items"])
        lead_low, lead_high = wilson(c["lead_agree"], c["lead_items"])
        rows.append(
            {
                **counts,
                "timed": len(seconds[annotator_id]),
                "median_seconds": median,
                "q1_seconds": q1,
                "q3_seconds": q3,
                "majority_items": c["majority_items"],
                "majority_agree": c["majority_agree"],
                "majority_agreement": _div(c["majority_agree"], c["majority_items"]),
                "majority_low": majority_low,
                "majority_high": majority_high,
                "majority_ties": c["majority_ties"],
                "lead_items": c["lead_items"],
                "lead_agree": c["lead_agree"],
                "lead_agreement": _div(c["lead_agree"], c["lead_items"]),
                "lead_low": lead_low,
                "lead_high": lead_high,
            }
        )
    return {"rows": rows, "adjudicated": int(o.adjudicated.sum())}


def dashboard_build(*, sample: Sample, step: float = DEFAULT_STEP) -> dict[str, Any]:
    """Everything the dashboard shows, from one load of the sample (constant query count)."""
    outcomes = sample_outcomes(sample=sample)
    return {
        "thresholds": thresholds_table(sample=sample, step=step, outcomes=outcomes),
        "classes": classes_table(sample=sample, outcomes=outcomes),
        "agreement": agreement_table(sample=sample, outcomes=outcomes),
        "progress": progress_table(sample=sample, outcomes=outcomes),
        "scores": runs_score(sample=sample),
        "annotators": annotators_table(sample=sample, outcomes=outcomes),
    }
