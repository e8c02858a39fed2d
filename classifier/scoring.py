"""Read-side computations on a run's predictions, shared by the API, the run page and the
commands (docs/architecture.md "Coverage table")."""

from django.db.models import Count, Q

from classifier.models import ClassificationRun

THRESHOLDS = [round(i / 10, 1) for i in range(11)]
EPSILON = 1e-9  # 0.3 stored as a float must count as >= 0.3


def run_coverage(*, run: ClassificationRun) -> list[dict]:
    """For each threshold 0.0..1.0: items with top probability >= threshold, and their
    percent of the run's predicted items (one query)."""
    aggregates = {
        f"t{i}": Count("id", filter=Q(probability__gte=t - EPSILON))
        for i, t in enumerate(THRESHOLDS)
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
        for i, t in enumerate(THRESHOLDS)
    ]


def run_label_distribution(*, run: ClassificationRun, limit: int = 20) -> list[dict]:
    """The most frequent predicted labels (ties by label key), with counts and percents."""
    total = run.predictions.count()
    rows = (
        run.predictions.values("label_id", "label__key", "label__name")
        .annotate(count=Count("id"))
        .order_by("-count", "label__key")[:limit]
    )
    return [
        {
            "label_id": r["label_id"],
            "key": r["label__key"],
            "name": r["label__name"],
            "count": r["count"],
            "percent": round(100.0 * r["count"] / total, 2) if total else 0.0,
        }
        for r in rows
    ]
