"""Read-side computations on a run's predictions, shared by the API, the run page and the
commands (docs/architecture.md "Coverage table")."""

from collections.abc import Sequence

from django.db.models import Count, Q

from annotate.taxonomies.models import Label
from classifier.models import ClassificationRun, Prediction

THRESHOLDS = [round(i / 10, 1) for i in range(11)]
EPSILON = 1e-9  # 0.3 stored as a float must count as >= 0.3


def run_coverage(*, run: ClassificationRun, thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """For each threshold 0.0..1.0 (or each of `thresholds`): items with top probability >=
    threshold, and their percent of the run's predicted items (one query)."""
    aggregates = {
        f"t{i}": Count("id", filter=Q(probability__gte=t - EPSILON))
        for i, t in enumerate(thresholds)
    }
    aggregates["total"] = Count("id")
    counts = run.predictions.aggregate(**aggregates)
    total = counts["total"]
    return [
        {
            "threshold": t,
            "classified": counts[f"t{i}"],
            "percent": round(100.0 * counts[f"t{i}"] / total, 2) if total else 0.0,
        }
        for i, t in enumerate(thresholds)
    ]


def stored_label_counts(run: ClassificationRun) -> dict[int, int] | None:
    """{label id: predictions} as the run stored them when it succeeded; None for a run that
    has not (still active, failed, or finished before the counts were stored), which the
    callers then count (docs/architecture.md#explorer)."""
    if run.status != ClassificationRun.Status.SUCCEEDED or not run.label_counts:
        return None
    return {int(label_id): count for label_id, count in run.label_counts.items()}


def count_labels(run_id: int) -> dict[int, int]:
    """{label id: predictions} counted (one GROUP BY over the run's predictions): what a run
    stores in `label_counts` when it succeeds, and what callers count without them."""
    return dict(
        Prediction.objects.filter(run_id=run_id)
        .order_by()
        .values("label_id")
        .annotate(n=Count("*"))
        .values_list("label_id", "n")
    )


def run_label_distribution(*, run: ClassificationRun, limit: int = 20) -> list[dict]:
    """The most frequent predicted labels (ties by label key), with counts and percents:
    from the counts a succeeded run stored, else counted; then one query on labels."""
    counts = stored_label_counts(run)
    if counts is None:
        counts = count_labels(run.pk)
    total = sum(counts.values())
    labels = Label.objects.filter(pk__in=counts).values_list("pk", "key", "name")
    ranked = sorted(labels, key=lambda row: (-counts[row[0]], row[1]))[:limit]
    return [
        {
            "label_id": pk,
            "key": key,
            "name": name,
            "count": counts[pk],
            "percent": round(100.0 * counts[pk] / total, 2) if total else 0.0,
        }
        for pk, key, name in ranked
    ]
