"""Approximate-index builds and near-duplicate scans: the `search` queue's long jobs
(docs/architecture.md#search, docs/architecture.md#near-duplicates).

- `index_request` queues `classifier.search_build_index` for a cache folder unless a build is
  queued or running, or a succeeded index matches the cache's current files (fingerprint).
  `index_for` gives a search worker the built index (loaded once per process).
- An index is requested when a run with more than `SIEVE_SEARCH_EXACT_MAX` items succeeds
  (`index_after_run`, from `classifier.services`), and by a search over a cache that large.
- `duplicate_scan_run` finds the run's near-duplicate groups (`classifier.search_duplicates`),
  counting progress in `DuplicateScan.done`/`total`.

The index file lives next to the cache: <cache folder>/index/<fingerprint>.faiss. faiss is
imported inside `classifier.search` functions only, so importing this module (the tasks are
registered by `classifier.tasks`) costs nothing on the web or GPU workers."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from celery import current_app, shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from classifier.cache import cache_dir
from classifier.models import ClassificationRun, DuplicateScan, JobStatus, Prediction, SearchIndex
from classifier.search import (
    EXACT_DUPLICATES_MAX,
    AnnIndex,
    duplicate_groups,
    exact_search,
    recall_at_k,
)

log = logging.getLogger(__name__)

RECALL_QUERIES = 100  # item vectors used as queries to measure a new index's recall@50
RECALL_K = 50
INDEX_SEED = 0
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)

_INDEXES: dict[str, tuple[str, AnnIndex]] = {}  # folder -> (fingerprint, index), this process
_LOCK = threading.Lock()


def _relative(folder: Path) -> str:
    folder = Path(folder)
    try:
        return str(folder.relative_to(settings.MEDIA_ROOT))
    except ValueError:
        return str(folder)


def _absolute(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def index_path(folder: Path, fingerprint: str) -> Path:
    return Path(folder) / "index" / f"{fingerprint}.faiss"


# -- the index ---------------------------------------------------------------------------------


def index_for(folder: Path, fingerprint: str) -> AnnIndex | None:
    """The succeeded index built from exactly these cache files (`fingerprint`), loaded once per
    process; None when there is none (never built, stale, or its file is gone)."""
    key = str(folder)
    with _LOCK:
        hit = _INDEXES.get(key)
        if hit is not None and hit[0] == fingerprint:
            return hit[1]
    if not fingerprint:
        return None
    ok = SearchIndex.objects.filter(
        folder=_relative(folder), fingerprint=fingerprint, status=JobStatus.SUCCEEDED
    ).exists()
    path = index_path(folder, fingerprint)
    if not ok or not path.is_file():
        return None
    index = AnnIndex.load(path)
    with _LOCK:
        _INDEXES[key] = (fingerprint, index)
    return index


def index_request(*, dataset_id: int, folder: Path) -> SearchIndex:
    """Queue a build of the folder's index, unless one is queued or running, or the succeeded
    one matches the cache's current files. The task is sent once the transaction commits."""
    from classifier.search_worker import cache_fingerprint

    relative = _relative(folder)
    fingerprint = cache_fingerprint(Path(folder))
    with transaction.atomic():
        try:
            with transaction.atomic():
                row, created = SearchIndex.objects.select_for_update().get_or_create(
                    folder=relative, defaults={"dataset_id": dataset_id, "fingerprint": fingerprint}
                )
        except IntegrityError:  # another request created it meanwhile
            row, created = SearchIndex.objects.select_for_update().get(folder=relative), False
        if not created:
            if row.status in ACTIVE:
                return row
            fresh = row.fingerprint == fingerprint and index_path(folder, fingerprint).is_file()
            if row.status == JobStatus.SUCCEEDED and fresh:
                return row
            row.status, row.fingerprint, row.error, row.finished = (
                JobStatus.QUEUED, fingerprint, "", None,
            )  # fmt: skip
            row.save(update_fields=["status", "fingerprint", "error", "finished"])
        pk = row.pk
        transaction.on_commit(
            lambda: current_app.send_task("classifier.search_build_index", args=[pk])
        )
    return row


def index_after_run(*, run_id: int) -> SearchIndex | None:
    """After a run succeeded: request the index of its cache when the run has more than
    SIEVE_SEARCH_EXACT_MAX items (exact search is fast enough below). Never raises: a failed
    request must not touch the run, and a later search requests the index again."""
    try:
        run = ClassificationRun.objects.filter(pk=run_id).first()
        if run is None or run.source == ClassificationRun.Source.IMPORT:
            return None
        if run.item_count <= settings.SIEVE_SEARCH_EXACT_MAX:
            return None
        folder = cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights)
        return index_request(dataset_id=run.dataset_id, folder=folder)
    except Exception:
        log.exception("requesting the search index after run %s failed", run_id)
        return None


def index_build(*, index_id: int) -> str:
    """Build the index of one cache folder: train and fill an AnnIndex from the cache's
    vectors, measure its recall@50 against exact search on RECALL_QUERIES of the items
    themselves, save it next to the cache and drop older index files."""
    from classifier.search_worker import cache_fingerprint, vectors_for

    claimed = SearchIndex.objects.filter(pk=index_id, status__in=ACTIVE).update(
        status=JobStatus.RUNNING
    )  # running too: a task redelivered after its worker died takes it up again
    if not claimed:
        return "skipped"
    row = SearchIndex.objects.get(pk=index_id)
    folder = _absolute(row.folder)
    fingerprint = cache_fingerprint(folder)
    vectors = vectors_for(folder)
    if vectors is None or not fingerprint:
        _index_fail(index_id, "The embedding cache is empty or gone.")
        return "failed"
    started = time.perf_counter()
    index = AnnIndex.build(vectors.matrix, seed=INDEX_SEED)
    seconds = time.perf_counter() - started
    rng = np.random.default_rng(INDEX_SEED)
    picks = rng.choice(len(vectors), size=min(RECALL_QUERIES, len(vectors)), replace=False)
    queries = vectors.matrix[np.sort(picks)]
    k = min(RECALL_K, len(vectors))
    exact_rows = np.stack([exact_search(vectors.matrix, q, k)[1] for q in queries])
    approx_rows = index.search(queries, k)[1]
    recall = recall_at_k(approx_rows, exact_rows)
    path = index_path(folder, fingerprint)
    index.save(path)
    for old in path.parent.glob("*.faiss"):
        if old != path:
            old.unlink(missing_ok=True)
    SearchIndex.objects.filter(pk=index_id).update(
        status=JobStatus.SUCCEEDED, fingerprint=fingerprint, kind=index.kind,
        items=len(vectors), build_seconds=round(seconds, 3), memory_bytes=index.memory_bytes,
        recall_at_50=round(recall, 4), error="", finished=timezone.now(),
    )  # fmt: skip
    with _LOCK:
        _INDEXES[str(folder)] = (fingerprint, index)
    return "succeeded"


def _index_fail(index_id: int, message: str) -> None:
    SearchIndex.objects.filter(pk=index_id).update(
        status=JobStatus.FAILED, error=message[:2000], finished=timezone.now()
    )


@shared_task(name="classifier.search_build_index", acks_late=True, reject_on_worker_lost=True)
def search_build_index(index_id: int) -> str:
    try:
        return index_build(index_id=index_id)
    except Exception as exc:
        log.exception("building search index %s failed", index_id)
        _index_fail(index_id, f"{type(exc).__name__}: {exc}")
        return "failed"


# -- near-duplicates ---------------------------------------------------------------------------


def _scan_fail(scan_id: int, message: str) -> None:
    DuplicateScan.objects.filter(pk=scan_id).update(
        status=JobStatus.FAILED, error=message[:2000], finished=timezone.now()
    )


def duplicate_scan_run(*, scan_id: int) -> str:
    """Find the run's near-duplicate groups at the scan's threshold and store them: exact
    (every pair) up to EXACT_DUPLICATES_MAX items, else through the approximate index (the
    cache's built index when the run covers the whole cache and the index is current; else one
    built here). `done` counts the items scanned, written every 2% or so."""
    from classifier.search_worker import cache_fingerprint, vectors_for

    claimed = DuplicateScan.objects.filter(pk=scan_id, status__in=ACTIVE).update(
        status=JobStatus.RUNNING
    )  # running too: a task redelivered after its worker died takes it up again
    if not claimed:
        return "skipped"
    scan = DuplicateScan.objects.select_related("run").get(pk=scan_id)
    run = scan.run
    if run.source == ClassificationRun.Source.IMPORT:
        _scan_fail(scan_id, "This run's predictions were imported: it has no image embeddings.")
        return "failed"
    started = time.perf_counter()
    folder = cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights)
    vectors = vectors_for(folder)
    if vectors is None:
        _scan_fail(
            scan_id,
            "This run has no embedding cache (none was written yet, or it was deleted or its "
            "checkpoint changed since). Run the model again to build it.",
        )
        return "failed"
    run_items = np.fromiter(
        Prediction.objects.filter(run_id=run.pk).values_list("item_id", flat=True).iterator(),
        np.int64,
    )
    whole = np.isin(vectors.item_ids, run_items, assume_unique=True)
    covers_all = bool(whole.all())
    item_ids = vectors.item_ids if covers_all else vectors.item_ids[whole]
    matrix = vectors.matrix if covers_all else vectors.matrix[whole]
    total = len(item_ids)
    DuplicateScan.objects.filter(pk=scan_id).update(total=total, done=0)
    index = None
    if total > EXACT_DUPLICATES_MAX:
        if covers_all:
            index = index_for(folder, cache_fingerprint(folder))
        if index is None:
            index = AnnIndex.build(matrix, seed=INDEX_SEED)
    step = max(1, total // 50)
    last = [0]

    def progress(done: int, of: int) -> None:
        if done - last[0] >= step or done == of:
            last[0] = done
            DuplicateScan.objects.filter(pk=scan_id).update(done=done)

    nearest = np.full(total, -1.0, np.float32)
    groups = duplicate_groups(
        matrix, scan.min_similarity, index=index, progress=progress, nearest=nearest
    )
    payload = [
        {"items": [int(i) for i in item_ids[rows]], "similarity": round(min(1.0, sim), 6)}
        for rows, sim in groups
    ]
    DuplicateScan.objects.filter(pk=scan_id).update(
        status=JobStatus.SUCCEEDED, groups=payload, done=total, total=total,
        exact=index is None, nearest=nearest_summary(nearest, scan.min_similarity),
        seconds=round(time.perf_counter() - started, 3), error="",
        finished=timezone.now(),
    )  # fmt: skip
    return "succeeded"


def nearest_summary(nearest: np.ndarray, min_similarity: float) -> dict:
    """Quantiles of each item's highest cosine to another item, and the share of items with
    one at or above the threshold (docs/architecture.md#near-duplicates)."""
    if not len(nearest):
        return {}
    median, p90, p99 = (round(float(q), 4) for q in np.quantile(nearest, [0.5, 0.9, 0.99]))
    share = float(np.mean(nearest >= min_similarity))
    return {"median": median, "p90": p90, "p99": p99, "linked_share": round(share, 4)}


@shared_task(name="classifier.search_duplicates", acks_late=True, reject_on_worker_lost=True)
def search_duplicates(scan_id: int) -> str:
    try:
        return duplicate_scan_run(scan_id=scan_id)
    except Exception as exc:
        log.exception("duplicate scan %s failed", scan_id)
        _scan_fail(scan_id, f"{type(exc).__name__}: {exc}")
        return "failed"
