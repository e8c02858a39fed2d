"""Celery tasks: the only bridge between `classifier.engine` (torch, imported lazily) and the
ORM. Tasks take ids, load rows and call plain functions, so the `classify --sync` command runs
exactly the same code without a broker.

Queues: `classify_chunk` runs on `gpu` (one worker per GPU), `rescore_run` on `default` (CPU
only, no image decoding). Both are safe to run twice: predictions are upserts (chunks) or a
delete + bulk load in one transaction (re-scoring)."""

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from annotate.datasets.models import Item
from annotate.datasets.paths import PathMissing, UnsafePath, safe_path
from classifier.cache import cache_dir, cache_load, cache_write
from classifier.models import ClassificationRun, RunChunk
from classifier.prompts import run_label_prompts
from classifier.services import (
    ModelUnavailable,
    PredictionBlock,
    chunk_finish,
    chunk_heartbeat,
    chunk_start,
    chunk_stop,
    dataset_item_ids,
    items_mark_failed,
    predictions_replace,
    predictions_write,
    run_fail,
    run_is_active,
    run_model_load,
    run_rescored,
    run_start,
    run_sweep,
    run_to_model,
)

log = logging.getLogger(__name__)
Status = ClassificationRun.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)
Failure = tuple[str, str]  # (reason to count by, precise detail for the item)


@worker_process_init.connect
def _allow_decode_workers(**_) -> None:
    """Celery's prefork children are daemonic, and daemonic processes may not start the
    DataLoader's decode workers. Those workers watch their parent and exit with it, which is
    what the rule protects, so lift it in pool children."""
    multiprocessing.current_process()._config["daemon"] = False


@shared_task(name="classifier.classify_chunk", bind=True, acks_late=True,
             reject_on_worker_lost=True)  # fmt: skip
def classify_chunk(self, chunk_id: int) -> str:
    try:
        return chunk_process(chunk_id=chunk_id, worker=self.request.hostname or "")
    except Exception as exc:
        # No blind retry (it could repeat forever); the run fails visibly and can be resumed.
        log.exception("chunk %s failed", chunk_id)
        chunk = RunChunk.objects.filter(pk=chunk_id).values_list("run_id", "index").first()
        if chunk:
            run_fail(run_id=chunk[0], message=f"chunk {chunk[1]}: {type(exc).__name__}: {exc}")
        return "failed"


@shared_task(name="classifier.rescore_run", acks_late=True, reject_on_worker_lost=True)
def rescore_run(run_id: int) -> str:
    try:
        return run_rescore(run_id=run_id)
    except Exception as exc:
        log.exception("re-scoring run %s failed", run_id)
        run_fail(run_id=run_id, message=f"re-scoring: {type(exc).__name__}: {exc}")
        return "failed"


@shared_task(name="classifier.sweep_runs")
def sweep_runs() -> int:
    """Periodic (Celery beat, every SIEVE_SWEEP_SECONDS): re-dispatch the chunks of workers
    that died, in every active run, so a run never waits for someone to notice."""
    return run_sweep()


def image_path(root: str, relative: str) -> tuple[str, Failure | None]:
    """The item's image file, through the same check as the import and the image views
    (inside the dataset folder and SIEVE_IMAGE_ROOTS, symlinks resolved): (path, None), or
    ("", why not)."""
    if not relative or not root:
        return "", ("no image", "")
    try:
        return str(safe_path(relative, base=root, kind="file")), None
    except PathMissing:
        return "", ("missing file", "")
    except UnsafePath:
        return "", ("unsafe path", "outside the dataset folder or SIEVE_IMAGE_ROOTS")


_LABELS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def label_features_of(loaded, run: ClassificationRun) -> tuple[np.ndarray, np.ndarray]:
    """(label ids, label embeddings) of the run's prompts, once per worker process per
    (model, prompts)."""
    from classifier import engine

    ids, prompts = run_label_prompts(run)
    key = (loaded.arch, loaded.weights, str(loaded.device), tuple(map(tuple, prompts)))
    if key not in _LABELS:
        _LABELS.clear()
        _LABELS[key] = (np.array(ids, np.int64), engine.encode_texts(loaded, prompts))
    return np.array(ids, np.int64), _LABELS[key][1]


def load_model_or_fail(run: ClassificationRun, device: str | None):
    """The run's model, or None once the run has failed with the reason."""
    try:
        return run_model_load(run, device)
    except ModelUnavailable as exc:
        log.warning("run %s failed: %s", run.pk, exc)
        run_fail(run_id=run.pk, message=str(exc))
        return None


def chunk_process(*, chunk_id: int, worker: str = "") -> str:
    """Classify one chunk: decode + encode images in batches, score, upsert predictions after
    every batch (progress is counted from the database), cache the embeddings, then finish
    the run when it was the last chunk. Stops at the next batch once the run is cancelled."""
    from classifier import engine

    chunk = RunChunk.objects.select_related("run__dataset", "run__taxonomy").filter(pk=chunk_id)
    chunk = chunk.first()
    if chunk is None or chunk.status == RunChunk.Status.DONE:
        return "done"
    run = chunk.run
    if run.status not in ACTIVE:
        return "skipped"
    chunk_start(chunk=chunk, worker=worker)
    run_start(run=run)
    loaded = load_model_or_fail(run, settings.SIEVE_DEVICE or None)
    if loaded is None:
        return "failed"
    label_ids, label_features = label_features_of(loaded, run)

    items = list(
        Item.objects.filter(
            dataset_id=run.dataset_id, id__gte=chunk.first_item_id, id__lte=chunk.last_item_id
        )
        .order_by("id")
        .values_list("id", "image_path", "caption")
    )
    ids = np.array([row[0] for row in items], np.int64)
    located = [image_path(run.dataset.image_root, row[1]) for row in items]
    paths = [path for path, _ in located]
    refused = {position: why for position, (_, why) in enumerate(located) if why is not None}
    captions = [(row[2] or "").strip() for row in items]
    has_caption = np.array([bool(c) for c in captions], bool)
    dim = label_features.shape[1]
    caption_features = np.zeros((len(items), dim), np.float32)
    if has_caption.any():
        caption_features[has_caption] = engine.encode_texts(loaded, [c for c in captions if c])

    unreadable: dict[str, int] = {}
    failures: dict[int, Failure] = {}
    done_ids: list[np.ndarray] = []
    done_embeddings: list[np.ndarray] = []
    for batch in engine.encode_image_batches(
        loaded,
        paths,
        batch_size=settings.SIEVE_BATCH_SIZE,
        workers=settings.SIEVE_DECODE_WORKERS,
        max_pixels=settings.SIEVE_MAX_IMAGE_PIXELS,
        max_aspect_ratio=settings.SIEVE_MAX_ASPECT_RATIO,
    ):
        if not run_is_active(run_id=run.pk):
            chunk_stop(chunk=chunk)
            return "stopped"
        for position, reason, detail in batch.failures:
            reason, detail = refused.get(position, (reason, detail))
            failures[int(ids[position])] = (reason, detail)
            unreadable[reason] = unreadable.get(reason, 0) + 1
        if batch.positions:
            pos = np.array(batch.positions)
            scores = engine.score(
                batch.embeddings,
                label_features,
                loaded.logit_scale,
                caption_features=caption_features[pos],
                has_caption=has_caption[pos],
                mode=run.ensemble,
                w_img=run.w_img,
                w_txt=run.w_txt,
                tau=run.condition_threshold,
            )
            predictions_write(
                run_id=run.pk, item_ids=ids[pos], label_ids=label_ids,
                top_labels=scores.top_labels, top_probs=scores.top_probs,
                image_max=scores.image_max, text_max=scores.text_max,
                image_top=scores.image_top, text_top=scores.text_top,
            )  # fmt: skip
            done_ids.append(ids[pos])
            done_embeddings.append(batch.embeddings)
        chunk_heartbeat(chunk=chunk, unreadable=unreadable)

    embedded = np.concatenate(done_ids) if done_ids else np.zeros(0, np.int64)
    rows = np.searchsorted(ids, embedded)
    cache_write(
        cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights),
        item_ids=embedded,
        image=np.concatenate(done_embeddings) if done_embeddings else np.zeros((0, dim)),
        caption=caption_features[rows],
        has_caption=has_caption[rows],
        failed_ids=np.fromiter(failures, np.int64, len(failures)),
        failed_reasons=[reason for reason, _ in failures.values()],
    )
    items_mark_failed(failures=failures)
    chunk_finish(chunk=chunk, unreadable=unreadable)
    return "done"


@dataclass
class CachedRows:
    """A run's items as the embedding cache holds them (sorted ids), and how many of its
    items could not be embedded, by reason."""

    ids: np.ndarray
    image: np.ndarray
    caption: np.ndarray | None  # None for the `image` ensemble (not read)
    has_caption: np.ndarray
    unreadable: dict[str, int]

    def take(self, positions: np.ndarray) -> "CachedRows":
        """Some of the rows (positions into them, sorted), e.g. a probe fold's items."""
        return CachedRows(
            ids=self.ids[positions],
            image=self.image[positions],
            caption=None if self.caption is None else self.caption[positions],
            has_caption=self.has_caption[positions],
            unreadable=self.unreadable,
        )


def cached_rows(run: ClassificationRun, item_ids: np.ndarray) -> CachedRows | None:
    """The cached embeddings of `item_ids` for the run's (dataset, model, weights), or None
    when the cache does not cover them all (the dataset grew, or the cache was removed)."""
    use_text = run.ensemble != ClassificationRun.Ensemble.IMAGE
    cached = cache_load(
        cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights),
        with_captions=use_text,
    )
    if cached is None or not cached.covers(item_ids):
        return None
    keep = np.isin(cached.item_ids, item_ids)
    if keep.all():
        ids, image, caption, has_caption = (
            cached.item_ids, cached.image, cached.caption, cached.has_caption
        )  # fmt: skip
    else:
        ids, image, has_caption = (
            cached.item_ids[keep],
            cached.image[keep],
            cached.has_caption[keep],
        )
        caption = cached.caption[keep] if use_text else None
    wanted = set(item_ids.tolist()) if cached.failures else set()
    unreadable: dict[str, int] = {}
    for item_id, reason in cached.failures.items():
        if item_id in wanted:
            unreadable[reason] = unreadable.get(reason, 0) + 1
    return CachedRows(ids, image, caption if use_text else None, has_caption, unreadable)


def score_blocks(
    *, run: ClassificationRun, rows: CachedRows, label_ids: np.ndarray,
    label_features: np.ndarray, logit_scale: float, bias: np.ndarray | None = None,
    text_label_features: np.ndarray | None = None, text_bias: np.ndarray | None = None,
    size: int = 65536,
) -> Iterator[PredictionBlock]:  # fmt: skip
    """Predictions of the cached rows with the run's ensemble, block by block, ready for
    `predictions_replace` (a probe passes its head: see `engine.score`). Three stages
    overlap: a thread scores block k+1 (torch releases the GIL) while the caller formats
    block k for COPY and PostgreSQL ingests block k-1."""
    from classifier import engine

    def score(part: slice) -> PredictionBlock:
        scores = engine.score(
            rows.image[part], label_features, logit_scale,
            caption_features=None if rows.caption is None else rows.caption[part],
            has_caption=rows.has_caption[part], mode=run.ensemble, w_img=run.w_img,
            w_txt=run.w_txt, tau=run.condition_threshold, bias=bias,
            text_label_features=text_label_features, text_bias=text_bias,
        )  # fmt: skip
        return PredictionBlock.build(
            item_ids=rows.ids[part], label_ids=label_ids, top_labels=scores.top_labels,
            top_probs=scores.top_probs, image_max=scores.image_max, text_max=scores.text_max,
            image_top=scores.image_top, text_top=scores.text_top,
        )  # fmt: skip

    parts = [slice(start, start + size) for start in range(0, len(rows.ids), size)]
    if not parts:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(score, parts[0])
        for following in parts[1:]:
            block = pending.result()
            pending = pool.submit(score, following)
            yield block
        yield pending.result()


def phase_clock(timings: dict[str, float]) -> Callable[[str], None]:
    """`lap(name)` records in `timings` the seconds since the previous lap (or the start)."""
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    return lap


def run_rescore(*, run_id: int, send: bool = True, timings: dict | None = None) -> str:
    """Score a run from the embedding cache: no image is opened, no GPU is needed; the
    predictions are bulk loaded (COPY on PostgreSQL). `timings`, when given, receives the
    seconds of each phase."""
    lap = phase_clock({} if timings is None else timings)
    run = ClassificationRun.objects.select_related("dataset", "taxonomy").filter(pk=run_id).first()
    if run is None or run.status not in ACTIVE:
        return "skipped"
    run_start(run=run)
    item_ids = dataset_item_ids(run.dataset_id)
    lap("ids")
    rows = cached_rows(run, item_ids)
    if rows is None:
        # The dataset grew (or the cache was removed): classify it on the GPU workers instead.
        run_to_model(run=run, send=send)
        return "dispatched"
    lap("load")
    loaded = load_model_or_fail(run, "cpu")
    if loaded is None:
        return "failed"
    label_ids, label_features = label_features_of(loaded, run)
    lap("model+prompts")
    if not run_is_active(run_id=run.pk):
        return "stopped"  # cancelled meanwhile
    blocks = score_blocks(
        run=run, rows=rows, label_ids=label_ids, label_features=label_features,
        logit_scale=loaded.logit_scale,
    )  # fmt: skip
    predictions_replace(run_id=run.pk, blocks=blocks)
    lap("score+write")
    run_rescored(run=run, unreadable=rows.unreadable, item_count=len(item_ids))
    log.info("re-scored run %s (%s items) from the cache: %s", run.pk, len(rows.ids), timings)
    return "done"


def run_process_here(
    *, run: ClassificationRun, worker: str, after_chunk: Callable[[], None] | None = None
) -> ClassificationRun:
    """Do a run's work in this process, without a broker (`classify --sync`, `seed_demo`):
    the re-scoring of a cache run, or its open chunks in order, with the tasks' own code.
    `after_chunk` is called after each chunk (progress); stops once the run has ended."""
    if run.source == ClassificationRun.Source.CACHE:
        run_rescore(run_id=run.pk, send=False)
        run.refresh_from_db()
    for chunk in run.chunks.exclude(status=RunChunk.Status.DONE).order_by("index"):
        chunk_process(chunk_id=chunk.pk, worker=worker)
        run.refresh_from_db()
        if after_chunk is not None:
            after_chunk()
        if run.status in ClassificationRun.TERMINAL:
            break
    run.refresh_from_db()
    return run


# The search queue's tasks live next to their code; importing them here registers them with
# Celery, whose autodiscovery reads each app's `tasks` module only.
from classifier import search_jobs, search_worker  # noqa: E402, F401
