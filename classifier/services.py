"""State changes of classification runs. The console view, the API, the `classify` and
`import_predictions` commands and the Celery tasks all call these functions.

No torch here: the web tier imports this module. The GPU work is in `classifier.tasks`."""

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotate.datasets.models import Dataset, Item
from annotate.errors import Conflict, NotFound
from annotate.taxonomies.models import Taxonomy
from annotate.taxonomies.prompts import TemplateError, template_check
from classifier import catalog
from classifier.cache import cache_dir
from classifier.models import ClassificationRun, Prediction, RunChunk
from classifier.scoring import count_labels
from classifier.selectors import run_dependents

Status = ClassificationRun.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)
ENSEMBLES = ("image", "weighted", "conditional")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")


def weights_look_like_path(weights: str) -> bool:
    """A checkpoint path rather than a pretrained tag (tags are plain words: `openai`,
    `laion2b_s34b_b79k`)."""
    return (
        "/" in weights
        or "\\" in weights
        or weights.startswith((".", "~"))
        or weights.lower().endswith(CHECKPOINT_SUFFIXES)
    )


class ModelUnavailable(Exception):
    """The run's model cannot be loaded; the message says why (weights, hub, checkpoint)."""


def run_model_load(run: ClassificationRun, device: str | None) -> Any:
    """The run's model through `engine.get_model` (one per process), its checkpoint path
    checked again (the file may have changed since the run was created). ModelUnavailable
    otherwise; the caller decides what that costs (a chunk fails the run, a search does not).
    The engine is imported here, never by the web tier."""
    from classifier import engine

    try:
        weights = run.weights
        if weights and weights_look_like_path(weights):
            weights = str(checkpoint_path(weights))
        return engine.get_model(
            run.model, weights, device=device, cpu_precision=settings.SIEVE_CPU_PRECISION,
            hub_offline=settings.HF_HUB_OFFLINE,
        )  # fmt: skip
    except ValidationError as exc:
        raise ModelUnavailable("; ".join(exc.messages)) from None
    except engine.EngineError as exc:
        raise ModelUnavailable(str(exc)) from None


def model_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.SIEVE_MODEL_ROOTS]


def checkpoint_path(weights: str) -> Path:
    """The real location of checkpoint `weights`, which must be a file inside one of
    SIEVE_MODEL_ROOTS once symlinks and `..` are resolved. A relative path is looked up from
    the current folder, then from each root. Anything else (`/etc/passwd`,
    `/proc/self/environ`, `../..`) is refused with the same message whether or not it
    exists, so the answer says nothing about files outside the roots."""
    roots = model_roots()
    try:
        raw = Path(weights).expanduser()
    except RuntimeError:  # `~someone` without a home folder
        raw = Path(weights)
    candidates = [raw] if raw.is_absolute() else [Path.cwd() / raw, *(r / raw for r in roots)]
    for candidate in candidates:
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, symlink loop, NUL byte
            continue
        if any(real.is_relative_to(root) for root in roots) and real.is_file():
            return real
    raise ValidationError(
        {
            "weights": f"Checkpoint not found in the model folders (SIEVE_MODEL_ROOTS): "
            f"{weights!r}. Put the checkpoint in one of them and give its path."
        }
    )


def _model_errors(model: str, weights: str, *, random_weights: bool = False) -> dict[str, str]:
    """Architecture and weights checked against the catalog shipped with Sieve (the web tier
    cannot import open_clip: see classifier/catalog.py). Weights are required: empty weights
    would load a randomly initialised model, and a run never starts with silently random
    weights (docs/architecture.md#runs-chunks-and-predictions)."""
    if not model.strip():
        return {"model": "Give an open_clip architecture, e.g. ViT-B-32."}
    if model not in catalog.known_architectures():
        return {
            "model": f"Unknown architecture {model!r}. Use an open_clip name such as ViT-B-32, "
            f"ViT-L-14 or sieve-tiny."
        }
    tags = catalog.pretrained_tags(model)
    if not weights:
        if random_weights:
            return {}
        example = f"a pretrained tag of {model} (e.g. {tags[0]}) or " if tags else ""
        return {
            "weights": f"Give the weights: {example}a checkpoint file inside SIEVE_MODEL_ROOTS. "
            f"Empty weights would mean a randomly initialised {model}, and Sieve never runs "
            f"a model with silently random weights."
        }
    if weights_look_like_path(weights):
        return {}
    if weights.lower() not in (tag.lower() for tag in tags):
        known = ", ".join(tags) or "none: give a checkpoint path"
        return {
            "weights": f"{weights!r} is not a pretrained tag of {model} (tags: {known}) nor a "
            f"checkpoint path."
        }
    return {}


def _check_parameters(
    *, taxonomy: Taxonomy, model: str, weights: str, ensemble: str, w_img: float,
    w_txt: float, condition_threshold: float, templates: list[str], random_weights: bool = False,
) -> str:  # fmt: skip
    """Every parameter of a new run, checked before anything is written; returns the weights
    to store (a checkpoint's real path)."""
    errors: dict[str, str | list[str]] = {}
    if not taxonomy.labels.exists():
        errors["taxonomy"] = f"Taxonomy {taxonomy.name} has no labels."
    errors.update(_model_errors(model, weights, random_weights=random_weights))
    if ensemble not in ENSEMBLES:
        errors["ensemble"] = f"Ensemble must be one of {', '.join(ENSEMBLES)}."
    for field, value in (("w_img", w_img), ("w_txt", w_txt), ("tau", condition_threshold)):
        if not 0.0 <= value <= 1.0:
            errors[field] = f"{field} must be between 0 and 1."
    for template in templates:
        try:
            template_check(template)
        except TemplateError as exc:
            errors["templates"] = str(exc)
            break
    if weights and weights_look_like_path(weights) and "weights" not in errors:
        try:
            weights = str(checkpoint_path(weights))
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return weights


def run_create(
    *,
    dataset: Dataset,
    taxonomy: Taxonomy,
    model: str = "ViT-B-32",
    weights: str = "",
    ensemble: str = "image",
    w_img: float = 0.8,
    w_txt: float = 0.2,
    condition_threshold: float = 0.6,
    templates: Iterable[str] = (),
    name: str = "",
    created_by=None,
    use_cache: bool = True,
    send: bool = True,
    random_weights: bool = False,
) -> ClassificationRun:
    """Create a run and queue its work (chunks on queue `gpu`, or a re-scoring from the
    embedding cache on queue `default` when the same model already embedded the dataset).

    `weights` is required (a pretrained tag or a checkpoint inside SIEVE_MODEL_ROOTS).
    `random_weights=True` allows empty weights, i.e. a randomly initialised model, on
    purpose: for speed benchmarks only; the API, the console and `classify` never set it."""
    templates = [t.strip() for t in templates if t.strip()]
    model, weights = model.strip(), weights.strip()
    weights = _check_parameters(
        taxonomy=taxonomy, model=model, weights=weights, ensemble=ensemble, w_img=w_img,
        w_txt=w_txt, condition_threshold=condition_threshold, templates=templates,
        random_weights=random_weights,
    )  # fmt: skip
    with transaction.atomic():
        run = ClassificationRun.objects.create(
            name=name, dataset=dataset, taxonomy=taxonomy, model=model,
            weights=weights, ensemble=ensemble, w_img=w_img, w_txt=w_txt,
            condition_threshold=condition_threshold, templates=templates, created_by=created_by,
        )  # fmt: skip
        run_dispatch(run=run, use_cache=use_cache, send=send)
    return run


def _cache_covers(run: ClassificationRun, item_ids: np.ndarray) -> bool:
    """Cheap check from file names only (each file covers an id range of one chunk)."""
    folder = cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights)
    ranges = []
    for path in folder.glob("items-*.npz") if folder.is_dir() else []:
        _, lo, hi = path.stem.split("-")
        ranges.append((int(lo), int(hi)))
    if not ranges:
        return False
    ranges.sort()
    starts = np.array([r[0] for r in ranges])
    ends = np.array([r[1] for r in ranges])
    pos = np.searchsorted(starts, item_ids, side="right") - 1
    return bool((pos >= 0).all() and (item_ids <= ends[np.maximum(pos, 0)]).all())


def cache_covers_dataset(run: ClassificationRun) -> bool:
    """Whether the embedding cache of the run's (dataset, model, weights) holds every item of
    the dataset (from the chunk file names only: cheap enough for a request)."""
    return _cache_covers(run, dataset_item_ids(run.dataset_id))


def dataset_item_ids(dataset_id: int) -> np.ndarray:
    """The dataset's item ids, sorted (one raw query: a million ids in well under a second,
    where the ORM's per-row overhead took seconds)."""
    with connection.cursor() as cursor:
        cursor.execute(
            # The table name comes from the model, never from input.
            f"SELECT id FROM {Item._meta.db_table} WHERE dataset_id = %s ORDER BY id",  # noqa: S608
            [dataset_id],
        )
        rows = cursor.fetchall()
    return np.array(rows, dtype=np.int64).reshape(-1)


def run_dispatch(*, run: ClassificationRun, use_cache: bool = True, send: bool = True) -> None:
    """Split the run into chunks and queue them once the transaction commits (send=False:
    the caller processes them itself, e.g. `classify --sync`)."""
    item_ids = dataset_item_ids(run.dataset_id)
    run.item_count = len(item_ids)
    if not len(item_ids):
        now = timezone.now()
        run.status, run.started, run.finished = Status.SUCCEEDED, now, now
        run.save()
        return
    if use_cache and _cache_covers(run, item_ids):
        run.source = ClassificationRun.Source.CACHE
        run.save()
        if send:
            transaction.on_commit(lambda: _send_rescore(run.pk))
        return
    run.save()
    size = max(1, settings.SIEVE_CHUNK_SIZE)
    chunks = RunChunk.objects.bulk_create(
        RunChunk(
            run=run,
            index=i,
            first_item_id=int(item_ids[start]),
            last_item_id=int(item_ids[min(start + size, len(item_ids)) - 1]),
            size=min(size, len(item_ids) - start),
            task_id=str(uuid.uuid4()),
        )
        for i, start in enumerate(range(0, len(item_ids), size))
    )
    ids = [(c.pk, c.task_id) for c in chunks]
    if send:
        transaction.on_commit(lambda: _send_chunks(ids))


def _send_chunks(chunks: list[tuple[int, str]]) -> None:
    from classifier.tasks import classify_chunk

    for chunk_id, task_id in chunks:
        classify_chunk.apply_async((chunk_id,), task_id=task_id, queue="gpu")


def _send_rescore(run_id: int) -> None:
    from classifier.tasks import rescore_run

    rescore_run.apply_async((run_id,), queue="default")


def _send_probe(run_id: int) -> None:
    """Queue a probe run's training. By name: its task lives in annotate.validation (it reads
    verdicts), which this module may not import (docs/architecture.md#probe)."""
    from annotate.celery import app

    app.send_task("validation.train_probe", args=(run_id,), queue="default")


def _revoke(task_ids: list[str]) -> None:
    if not task_ids:
        return
    from annotate.celery import app

    # Brokers without broadcast cannot revoke; the tasks check the run status anyway.
    with contextlib.suppress(Exception):
        app.control.revoke(task_ids)


def run_cancel(*, run: ClassificationRun) -> ClassificationRun:
    """Cancel a queued or running run: pending chunks are revoked, running ones stop at their
    next batch (they check the run status)."""
    with transaction.atomic():
        updated = ClassificationRun.objects.filter(
            pk=run.pk, status__in=[Status.QUEUED, Status.RUNNING]
        ).update(status=Status.CANCELLED, finished=timezone.now())
        pending = list(
            run.chunks.filter(status__in=[RunChunk.Status.QUEUED, RunChunk.Status.RUNNING])
            .values_list("task_id", flat=True)
        )  # fmt: skip
        if updated:
            run.chunks.filter(status=RunChunk.Status.QUEUED).update(
                status=RunChunk.Status.CANCELLED
            )
    if updated:
        _revoke(pending)
    run.refresh_from_db()
    return run


def run_resume(*, run: ClassificationRun) -> ClassificationRun:
    """Re-queue a cancelled or failed run: only chunks that are not done are dispatched."""
    if run.status not in (Status.CANCELLED, Status.FAILED):
        raise Conflict(f"Only cancelled or failed runs can be resumed, not {run.status}.")
    with transaction.atomic():
        run.status, run.error, run.finished = Status.QUEUED, "", None
        run.save(update_fields=["status", "error", "finished"])
        if run.source == ClassificationRun.Source.PROBE:
            transaction.on_commit(lambda: _send_probe(run.pk))
            return run
        if run.source == ClassificationRun.Source.CACHE:
            transaction.on_commit(lambda: _send_rescore(run.pk))
            return run
        if not run.chunks.exists():
            run_dispatch(run=run)
            return run
        ids = _requeue(run.chunks.exclude(status=RunChunk.Status.DONE))
        transaction.on_commit(lambda: _send_chunks(ids))
    return run


def _requeue(chunks) -> list[tuple[int, str]]:
    ids = []
    for chunk in chunks:
        chunk.status, chunk.task_id, chunk.worker = RunChunk.Status.QUEUED, str(uuid.uuid4()), ""
        chunk.save(update_fields=["status", "task_id", "worker"])
        ids.append((chunk.pk, chunk.task_id))
    return ids


def run_sweep(*, run: ClassificationRun | None = None, stale_after: float | None = None) -> int:
    """Re-dispatch running chunks whose worker stopped sending heartbeats (killed, lost).
    A duplicate is harmless: predictions are upserts. Returns how many were re-dispatched."""
    stale_after = settings.SIEVE_CHUNK_STALE_SECONDS if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    chunks = RunChunk.objects.filter(
        status=RunChunk.Status.RUNNING,
        run__status__in=[Status.QUEUED, Status.RUNNING],
    ).filter(Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True))
    if run is not None:
        chunks = chunks.filter(run=run)
    with transaction.atomic():
        ids = _requeue(chunks.select_for_update())
        transaction.on_commit(lambda: _send_chunks(ids))
    return len(ids)


def run_fail(*, run_id: int, message: str) -> None:
    with transaction.atomic():
        ClassificationRun.objects.filter(pk=run_id).exclude(status=Status.FAILED).update(
            status=Status.FAILED, error=message, finished=timezone.now()
        )
        chunks = RunChunk.objects.filter(run_id=run_id).exclude(status=RunChunk.Status.DONE)
        task_ids = list(chunks.values_list("task_id", flat=True))
        chunks.update(status=RunChunk.Status.CANCELLED)
    _revoke(task_ids)


def _run_succeed(*, run_id: int, unreadable: dict[str, int], **fields) -> bool:
    """An active run becomes succeeded (a cancelled or failed one stays as it is). Its
    per-label counts are taken here, once (one GROUP BY): a finished run's predictions no
    longer change, so no page counts them again (docs/architecture.md#explorer). A run over
    more than SIEVE_SEARCH_EXACT_MAX items then gets its cache's approximate search index
    (docs/architecture.md#search)."""
    succeeded = bool(
        ClassificationRun.objects.filter(pk=run_id, status__in=ACTIVE).update(
            status=Status.SUCCEEDED,
            finished=timezone.now(),
            unreadable=unreadable,
            label_counts={str(k): n for k, n in count_labels(run_id).items()},
            **fields,
        )
    )
    if succeeded:
        from classifier.search_jobs import index_after_run

        transaction.on_commit(lambda: index_after_run(run_id=run_id))
    return succeeded


def run_finish_if_done(*, run_id: int) -> bool:
    """Mark the run succeeded once every chunk is done (unreadable images do not fail it)."""
    chunks = RunChunk.objects.filter(run_id=run_id)
    if chunks.exclude(status=RunChunk.Status.DONE).exists():
        return False
    unreadable: dict[str, int] = {}
    for counts in chunks.values_list("unreadable", flat=True):
        for reason, count in counts.items():
            unreadable[reason] = unreadable.get(reason, 0) + count
    return _run_succeed(run_id=run_id, unreadable=unreadable)


def run_rescored(*, run: ClassificationRun, unreadable: dict[str, int], item_count: int) -> bool:
    """A run scored from the embedding cache has all its predictions: it succeeded."""
    return _run_succeed(run_id=run.pk, unreadable=unreadable, item_count=item_count)


def run_probe_succeed(
    *, run: ClassificationRun, unreadable: dict[str, int], item_count: int, figures: dict
) -> bool:
    """A probe run has written all its predictions: it succeeded, with its figures
    (docs/architecture.md#probe) stored in the same update."""
    return _run_succeed(run_id=run.pk, unreadable=unreadable, item_count=item_count, probe=figures)


def run_start(*, run: ClassificationRun) -> None:
    """A worker took up the run: queued -> running, and its start time once."""
    ClassificationRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(status=Status.RUNNING)
    ClassificationRun.objects.filter(pk=run.pk, started__isnull=True).update(started=timezone.now())


def run_is_active(*, run_id: int) -> bool:
    """Still queued or running (workers ask between batches: a cancel stops them)."""
    return ClassificationRun.objects.filter(pk=run_id, status__in=ACTIVE).exists()


def run_to_model(*, run: ClassificationRun, send: bool = True) -> None:
    """A cache re-scoring whose cache no longer covers the dataset (it grew, or the cache was
    removed): the run is classified on the GPU workers instead."""
    with transaction.atomic():
        run.source = ClassificationRun.Source.MODEL
        ClassificationRun.objects.filter(pk=run.pk).update(source=run.source)
        run_dispatch(run=run, use_cache=False, send=send)


def chunk_start(*, chunk: RunChunk, worker: str) -> None:
    now = timezone.now()
    RunChunk.objects.filter(pk=chunk.pk).update(
        status=RunChunk.Status.RUNNING, worker=worker, heartbeat=now, started=now,
        attempts=F("attempts") + 1,
    )  # fmt: skip


def chunk_heartbeat(*, chunk: RunChunk, unreadable: dict[str, int]) -> None:
    """After every batch: the sweep leaves a chunk with a fresh heartbeat alone."""
    RunChunk.objects.filter(pk=chunk.pk).update(heartbeat=timezone.now(), unreadable=unreadable)


def chunk_stop(*, chunk: RunChunk) -> None:
    """The run was cancelled while the chunk ran."""
    RunChunk.objects.filter(pk=chunk.pk, status=RunChunk.Status.RUNNING).update(
        status=RunChunk.Status.CANCELLED
    )


def chunk_finish(*, chunk: RunChunk, unreadable: dict[str, int]) -> None:
    """The chunk is done; the run succeeds when it was the last one. A finished chunk also
    rescues its run's chunks from dead workers."""
    RunChunk.objects.filter(pk=chunk.pk).update(
        status=RunChunk.Status.DONE, finished=timezone.now(), unreadable=unreadable
    )
    run_finish_if_done(run_id=chunk.run_id)
    run_sweep(run=chunk.run)


def _failure_status(reason: str) -> str:
    if reason in ("no image", "missing file"):
        return Item.Status.MISSING
    return Item.Status.UNREADABLE


def items_mark_failed(*, failures: dict[int, tuple[str, str]]) -> int:
    """Record on each item why its image could not be classified: {item id: (reason,
    detail)}. An item already marked unreadable or missing keeps its reason: the import's
    is the precise one ("empty file", "symbolic link leading outside...", the bomb's size),
    where a run's may be coarser ("not an image")."""
    by_outcome: dict[tuple[str, str], list[int]] = {}
    for item_id, (reason, detail) in failures.items():
        text = f"{reason}: {detail}" if detail else reason
        by_outcome.setdefault((_failure_status(reason), text[:500]), []).append(item_id)
    marked = 0
    for (status, text), item_ids in by_outcome.items():
        marked += (
            Item.objects.filter(pk__in=item_ids, status=Item.Status.OK)
            .update(status=status, status_reason=text)
        )  # fmt: skip
    return marked


# --- bulk prediction writes ----------------------------------------------------------------


@dataclass
class PredictionBlock:
    """Predictions of consecutive items, ready to store."""

    item_ids: np.ndarray  # int64 [n]
    labels: np.ndarray  # int64 [n, k] label ids, best first
    probs: np.ndarray  # float [n, k]
    image_max: np.ndarray | None = None  # [n] max P_img
    text_max: np.ndarray | None = None  # [n] max P_txt, NaN = none
    image_labels: np.ndarray | None = None  # int64 [n] label ids of argmax P_img
    text_labels: np.ndarray | None = None  # int64 [n] label ids of argmax P_txt, -1 = none

    @classmethod
    def build(
        cls, *, item_ids, label_ids, top_labels, top_probs, image_max=None, text_max=None,
        image_top=None, text_top=None,
    ):  # fmt: skip
        """`top_labels`, `image_top` and `text_top` (-1: none) index into `label_ids`."""
        label_ids = np.asarray(label_ids, np.int64)

        def ids_of(top):
            if top is None:
                return None
            top = np.asarray(top, np.int64)
            return np.where(top >= 0, label_ids[np.maximum(top, 0)], -1)

        return cls(
            item_ids=np.asarray(item_ids, np.int64),
            labels=label_ids[np.asarray(top_labels)],
            probs=np.round(np.asarray(top_probs, np.float64), 6),
            image_max=None if image_max is None else np.round(np.asarray(image_max, np.float64), 6),
            text_max=None if text_max is None else np.round(np.asarray(text_max, np.float64), 6),
            image_labels=ids_of(image_top),
            text_labels=ids_of(text_top),
        )


def predictions_write(
    *,
    run_id: int,
    item_ids: np.ndarray,
    label_ids: np.ndarray,
    top_labels: np.ndarray,
    top_probs: np.ndarray,
    image_max: np.ndarray | None = None,
    text_max: np.ndarray | None = None,
    image_top: np.ndarray | None = None,
    text_top: np.ndarray | None = None,
    replace: bool = False,
) -> int:
    """Store predictions for many items. `top_labels` index into `label_ids`.

    replace=True (re-scoring, imports): the run's rows are replaced by a bulk load (see
    `predictions_replace`). replace=False (GPU chunks): upsert on (run, item), so a
    re-delivered chunk never duplicates a row."""
    if not len(item_ids):
        return 0
    block = PredictionBlock.build(
        item_ids=item_ids, label_ids=label_ids, top_labels=top_labels, top_probs=top_probs,
        image_max=image_max, text_max=text_max, image_top=image_top, text_top=text_top,
    )  # fmt: skip
    if replace:
        return predictions_replace(run_id=run_id, blocks=[block])
    img, txt = block.image_max, block.text_max
    img_label = _label_column(block.image_labels, len(block.item_ids), None)
    txt_label = _label_column(block.text_labels, len(block.item_ids), None)
    rows = [
        Prediction(
            run_id=run_id,
            item_id=int(block.item_ids[i]),
            label_id=int(block.labels[i, 0]),
            probability=float(block.probs[i, 0]),
            top5=[[int(a), float(b)] for a, b in zip(block.labels[i], block.probs[i], strict=True)],
            image_probability=None if img is None else float(img[i]),
            text_probability=None if txt is None or np.isnan(txt[i]) else float(txt[i]),
            image_label_id=img_label[i],
            text_label_id=txt_label[i],
        )
        for i in range(len(block.item_ids))
    ]
    Prediction.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["run", "item"],
        update_fields=[
            "label", "probability", "top5", "image_probability", "text_probability",
            "image_label", "text_label",
        ],
    )  # fmt: skip
    return len(rows)


def predictions_replace(*, run_id: int, blocks: Iterable[PredictionBlock]) -> int:
    """Replace the run's predictions in one transaction: PostgreSQL COPY through psycopg 3
    (blocks are streamed, so the server ingests one block while the caller computes the
    next); executemany on SQLite."""
    written = 0
    with transaction.atomic():
        Prediction.objects.filter(run_id=run_id).delete()
        if connection.vendor == "postgresql":
            table = Prediction._meta.db_table
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy,
            ):
                for block in blocks:
                    copy.write(_copy_text(run_id, block))
                    written += len(block.item_ids)
        else:
            table = Prediction._meta.db_table
            marks = ", ".join(["%s"] * len(COLUMNS.split(",")))
            sql = f"INSERT INTO {table} ({COLUMNS}) VALUES ({marks})"  # noqa: S608
            with connection.cursor() as cursor:
                for block in blocks:
                    cursor.executemany(sql, _rows(run_id, block))
                    written += len(block.item_ids)
    return written


COLUMNS = (
    "run_id, item_id, label_id, probability, top5, image_probability, text_probability, "
    "image_label_id, text_label_id"
)


def _label_column(labels: np.ndarray | None, n: int, null) -> list:
    """Label ids of a block's image-only or caption-only argmax; -1 (no caption) is null."""
    if labels is None:
        return [null] * n
    return [null if v < 0 else v for v in labels.tolist()]


def _rows(run_id: int, block: PredictionBlock) -> list[tuple]:
    ids, lab, pro = block.item_ids.tolist(), block.labels.tolist(), block.probs.tolist()
    img = [None] * len(ids) if block.image_max is None else block.image_max.tolist()
    txt = [None] * len(ids) if block.text_max is None else block.text_max.tolist()
    img_label = _label_column(block.image_labels, len(ids), None)
    txt_label = _label_column(block.text_labels, len(ids), None)
    return [
        (
            run_id,
            ids[i],
            lab[i][0],
            pro[i][0],
            "[" + ",".join(f"[{a},{b}]" for a, b in zip(lab[i], pro[i], strict=True)) + "]",
            img[i],
            None if txt[i] is None or txt[i] != txt[i] else txt[i],  # x != x: NaN
            img_label[i],
            txt_label[i],
        )
        for i in range(len(ids))
    ]


def _copy_text(run_id: int, block: PredictionBlock) -> str:
    """COPY text format (tab separated, NULL = \\N), built with one format string per row:
    this loop is the Python cost of storing a million predictions."""
    n, k = block.labels.shape
    ids, lab, pro = block.item_ids.tolist(), block.labels.tolist(), block.probs.tolist()
    null = "\\N"
    img = [null] * n if block.image_max is None else [str(v) for v in block.image_max.tolist()]
    txt = [null] * n if block.text_max is None else [
        null if v != v else str(v) for v in block.text_max.tolist()  # v != v: NaN
    ]  # fmt: skip
    img_label = _label_column(block.image_labels, n, null)
    txt_label = _label_column(block.text_labels, n, null)
    pairs = ",".join(f"[{{{j}}},{{{k + j}}}]" for j in range(k))
    row = (
        f"{run_id}\t{{{2 * k}}}\t{{0}}\t{{{k}}}\t[{pairs}]\t{{{2 * k + 1}}}\t{{{2 * k + 2}}}"
        f"\t{{{2 * k + 3}}}\t{{{2 * k + 4}}}\n"
    )
    return "".join(
        row.format(*lab[i], *pro[i], ids[i], img[i], txt[i], img_label[i], txt_label[i])
        for i in range(n)
    )


# --- external predictions ------------------------------------------------------------------


def run_import_predictions(
    *,
    dataset: Dataset,
    taxonomy: Taxonomy,
    rows: Iterable[tuple[str, str, str]],
    name: str = "",
    created_by=None,
) -> tuple[ClassificationRun, dict[str, int]]:
    """A succeeded run from another model's predictions: rows of (external_id, label key or
    name, probability). Unknown items or labels and bad probabilities are skipped and
    counted; a repeated external id keeps its last row."""
    by_key = dict(taxonomy.labels.values_list("key", "id"))
    by_name = dict(taxonomy.labels.values_list("name", "id"))
    items = dict(dataset.items.values_list("external_id", "id"))
    chosen: dict[int, tuple[int, float]] = {}
    skipped = {"unknown item": 0, "unknown label": 0, "bad probability": 0}
    for external_id, label, probability in rows:
        item_id = items.get(external_id.strip())
        label_id = by_key.get(label.strip()) or by_name.get(label.strip())
        if item_id is None:
            skipped["unknown item"] += 1
            continue
        if label_id is None:
            skipped["unknown label"] += 1
            continue
        try:
            p = float(probability)
        except ValueError:
            p = float("nan")
        if not 0.0 <= p <= 1.0:
            skipped["bad probability"] += 1
            continue
        chosen[item_id] = (label_id, p)
    now = timezone.now()
    with transaction.atomic():
        run = ClassificationRun.objects.create(
            name=name, dataset=dataset, taxonomy=taxonomy, model="external", weights="",
            ensemble=ClassificationRun.Ensemble.EXTERNAL, source=ClassificationRun.Source.IMPORT,
            status=Status.SUCCEEDED, created_by=created_by, started=now, finished=now,
            item_count=len(chosen),
            label_counts={str(k): n for k, n in Counter(v[0] for v in chosen.values()).items()},
        )  # fmt: skip
        item_ids = np.fromiter(chosen, np.int64, len(chosen))
        label_ids = np.array([v[0] for v in chosen.values()], np.int64)
        probs = np.array([[v[1]] for v in chosen.values()], np.float64).reshape(-1, 1)
        predictions_write(
            run_id=run.pk, item_ids=item_ids, label_ids=label_ids,
            top_labels=np.arange(len(chosen)).reshape(-1, 1), top_probs=probs, replace=True,
        )  # fmt: skip
    return run, {k: v for k, v in skipped.items() if v}


# ---------------------------------------------------------------- hide and delete


def run_hide(*, run: ClassificationRun, hidden: bool) -> ClassificationRun:
    """Take a run out of the run lists (dataset page, console, `GET /api/runs/`) or put it
    back. Nothing else changes: its page, samples and verdicts stay
    (docs/architecture.md#hidden-and-deleted-runs)."""
    ClassificationRun.objects.filter(pk=run.pk).update(hidden=hidden)
    run.hidden = hidden
    return run


def run_delete(*, run: ClassificationRun) -> dict[str, int]:
    """Delete a finished run with its predictions, chunks, samples and their verdicts, and
    return how many of each went (`run_dependents`). Refused while the run is queued or
    running: a worker would go on writing predictions of a run that no longer exists."""
    with transaction.atomic():
        locked = ClassificationRun.objects.select_for_update().filter(pk=run.pk).first()
        if locked is None:
            raise NotFound("No such classification run.")
        if locked.status in ACTIVE:
            raise Conflict(f"The run is {locked.status}: cancel it before deleting it.")
        deleted = run_dependents(run=locked)
        locked.samples.all().delete()  # their items, verdicts, leases and adjudications
        # The predictions in one statement: the ORM's cascade would first load every one
        # (a million objects) to look for sample items pointing at them, and those are gone.
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {Prediction._meta.db_table} WHERE run_id = %s",  # noqa: S608
                [locked.pk],
            )
        locked.delete()
    return deleted
