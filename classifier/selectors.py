from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from annotate.datasets.access import fetch_for_user, role_at_least
from annotate.datasets.models import Dataset, Role
from classifier.models import ClassificationRun, Prediction
from classifier.scoring import run_coverage


def runs_for_user(user, *, include_hidden: bool = False):
    """Runs of the datasets the user may see; hidden runs only with `include_hidden` (lists
    leave them out, their pages stay: docs/architecture.md#hidden-and-deleted-runs)."""
    runs = ClassificationRun.objects.filter(dataset__in=Dataset.objects.for_user(user))
    return runs if include_hidden else runs.filter(hidden=False)


RUNS_ADMINS_ONLY = "Only admins of this dataset start, cancel or resume runs."
RUNS_HIDE_LEADS_ONLY = "Only leads and admins of this dataset hide runs."
RUNS_DELETE_ADMINS_ONLY = "Only admins of this dataset delete runs."
# Worker tracebacks and exception texts name files, hosts and settings: only admins of the
# run's dataset read them, on the run page and in the API.
RUN_ERROR_HIDDEN = "The run failed; an admin can see why."


def get_run_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> tuple[ClassificationRun, str]:
    """(run, caller's role), or 404 (`fetch_for_user`)."""
    runs = ClassificationRun.objects.select_related("dataset", "taxonomy")
    return fetch_for_user(runs, pk, user, dataset_field="dataset", minimum=minimum)


def run_error_for(run: ClassificationRun, role: str | None) -> str | None:
    """The run's error as a caller with `role` on its dataset may read it; None when none."""
    if not run.error:
        return None
    return run.error if role_at_least(role, Role.ADMIN) else RUN_ERROR_HIDDEN


def run_unreadable(*, run: ClassificationRun) -> dict[str, int]:
    """{reason: count} of the run's items without a prediction (live while running)."""
    if run.status == ClassificationRun.Status.SUCCEEDED or not run.pk:
        return dict(run.unreadable)  # aggregated when the run ended
    counts: dict[str, int] = {}
    for chunk_counts in run.chunks.values_list("unreadable", flat=True):
        for reason, count in chunk_counts.items():
            counts[reason] = counts.get(reason, 0) + count
    return counts


def run_progress(*, run: ClassificationRun, predicted: int | None = None) -> dict:
    """Progress counted from the database: predictions stored + images found unreadable."""
    unreadable = run_unreadable(run=run)
    if predicted is None:
        if run.status == ClassificationRun.Status.SUCCEEDED and run.item_count:
            # Every item of a finished run is either predicted or counted as unreadable.
            predicted = max(run.item_count - sum(unreadable.values()), 0)
        else:
            predicted = run.predictions.count()
    processed = predicted + sum(unreadable.values())
    total = max(run.item_count, processed)
    end = run.finished or timezone.now()
    elapsed = (end - run.started).total_seconds() if run.started else 0.0
    rate = processed / elapsed if elapsed > 0 else 0.0
    remaining = total - processed
    eta = remaining / rate if rate > 0 and run.status not in ClassificationRun.TERMINAL else None
    return {
        "total": total,
        "predicted": predicted,
        "unreadable": sum(unreadable.values()),
        "unreadable_by_reason": unreadable,
        "processed": processed,
        "percent": round(100.0 * processed / total, 1) if total else 100.0,
        "elapsed_seconds": round(elapsed, 1),
        "items_per_second": round(rate, 1),
        "eta_seconds": None if eta is None else round(eta, 1),
    }


def runs_with_progress(runs) -> list[dict]:
    """[{"run", "progress"}] for a list of runs: predictions are counted (one grouped query)
    only for the runs that are not finished."""
    runs = list(runs)
    finished = ClassificationRun.Status.SUCCEEDED
    active = [r.pk for r in runs if r.status != finished or not r.item_count]
    counts = dict(
        Prediction.objects.filter(run_id__in=active)
        .values("run_id")
        .annotate(n=Count("id"))
        .values_list("run_id", "n")
    )
    return [
        {
            "run": r,
            "progress": run_progress(
                run=r, predicted=counts.get(r.pk, 0) if r.pk in active else None
            ),
        }
        for r in runs
    ]


def run_dependents(*, run: ClassificationRun) -> dict[str, int]:
    """What deleting the run deletes with it: its predictions, samples and their verdicts
    (two queries; shown before the delete is confirmed, and returned by `run_delete`)."""
    counts = ClassificationRun.objects.filter(pk=run.pk).aggregate(
        n_samples=Count("samples", distinct=True), n_verdicts=Count("samples__items__verdicts")
    )
    return {
        "predictions": Prediction.objects.filter(run_id=run.pk).count(),
        "samples": counts["n_samples"],
        "verdicts": counts["n_verdicts"],
    }


def run_coverage_at(*, run: ClassificationRun, thresholds: list[float]) -> list[dict]:
    """`scoring.run_coverage` at any thresholds (the dashboard's grid). A succeeded run's
    predictions no longer change, so its coverage is cached under its finish time: the live
    dashboard recomputes on every verdict, and this is a scan of the run's predictions."""
    key = None
    if run.status == ClassificationRun.Status.SUCCEEDED and run.finished:
        grid = ",".join(f"{t:.10g}" for t in thresholds)
        key = f"sieve:coverage:{run.pk}:{run.finished.timestamp()}:{grid}"
        cached = cache.get(key)
        if cached is not None:
            return cached
    rows = run_coverage(run=run, thresholds=thresholds)
    if key:
        cache.set(key, rows, 24 * 3600)
    return rows
