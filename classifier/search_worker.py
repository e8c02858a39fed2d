"""The search worker: embedding caches kept in memory between queries, and the query task
(docs/architecture.md#search).

Runs on workers of the `search` queue (`CELERY_TASK_ROUTES`). Each worker process keeps up to
`SIEVE_SEARCH_CACHES` loaded caches (least recently used first out; 0 keeps none, so every
query reads its cache from disk: the benchmark's baseline), reloaded when the cache's files
change. The web tier never imports this module: it sends `classifier.search_query` by name
and waits for the answer in the result backend (`annotate.validation.searching`).

A query answers a JSON-able dict, never raises for a refusal: `{"error": ..., "status": ...}`
says why (no embedding cache, item not in it, model cannot load), and a search never fails
the run."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from celery import shared_task
from django.conf import settings

from annotate.taxonomies.prompts import template_format
from classifier.cache import cache_dir, cache_load
from classifier.models import ClassificationRun
from classifier.search import Vectors, exact_search
from classifier.search_jobs import index_for, index_request
from classifier.services import ModelUnavailable, run_model_load

log = logging.getLogger(__name__)

_CACHES: OrderedDict[str, tuple[str, Vectors]] = OrderedDict()
_LOCK = threading.Lock()


class SearchRefused(Exception):
    """A query the worker cannot answer; `status` is the HTTP status the web gives it."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def cache_fingerprint(folder: Path) -> str:
    """A hash of the cache's chunk files (names, sizes, mtimes): it changes whenever a run
    adds or rewrites a chunk. "" when the folder holds no chunk file."""
    files = sorted(folder.glob("items-*.npz")) if folder.is_dir() else []
    digest = hashlib.sha1(usedforsecurity=False)
    for path in files:
        try:
            stat = path.stat()
        except FileNotFoundError:  # replaced while listing: the next query sees the new one
            continue
        digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest() if files else ""


def _unit_rows(image: np.ndarray) -> np.ndarray:
    """float32 C-contiguous rows of unit length, converted a block at a time (the float16
    cache is already normalised; this only removes its rounding), so loading a million
    vectors needs the float32 matrix and little more."""
    out = np.empty(image.shape, np.float32)
    step = 65536
    for start in range(0, len(image), step):
        block = image[start : start + step].astype(np.float32)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        np.divide(block, norms, out=block, where=norms > 0)
        out[start : start + step] = block
    return out


def vectors_for(folder: Path) -> Vectors | None:
    """The cache in `folder` as `Vectors` (None without a cache or without any embedded
    item): from this process's memory when its files have not changed, else read from disk
    (and kept, up to SIEVE_SEARCH_CACHES caches)."""
    key = str(folder)
    fingerprint = cache_fingerprint(folder)
    with _LOCK:
        if not fingerprint:
            _CACHES.pop(key, None)
            return None
        hit = _CACHES.get(key)
        if hit is not None and hit[0] == fingerprint:
            _CACHES.move_to_end(key)
            return hit[1]
        _CACHES.pop(key, None)  # stale: free it before loading the new one
    cached = cache_load(folder, with_captions=False)
    if cached is None or not len(cached.item_ids):
        return None
    vectors = Vectors(cached.item_ids, _unit_rows(cached.image))
    del cached
    keep = max(int(settings.SIEVE_SEARCH_CACHES), 0)
    with _LOCK:
        if keep:
            _CACHES[key] = (fingerprint, vectors)
            while len(_CACHES) > keep:
                _CACHES.popitem(last=False)
    return vectors


def caches_clear() -> None:
    """Forget every loaded cache (tests)."""
    with _LOCK:
        _CACHES.clear()


def _model(run: ClassificationRun):
    """The run's model; SearchRefused when it cannot load. Unlike a classification chunk, a
    search never fails the run."""
    try:
        return run_model_load(run, settings.SIEVE_DEVICE or None)
    except ModelUnavailable as exc:
        raise SearchRefused(f"The run's model cannot be loaded: {exc}", status=503) from None


def query_prompts(run: ClassificationRun, text: str, template: bool) -> list[str]:
    """The prompts encoded for a text query (their embeddings are averaged): the text as
    typed, or the text in each of the run's templates (none: the taxonomy's), as the run
    built its label prompts."""
    if not template:
        return [text]
    templates = run.templates or [run.taxonomy.prompt_template]
    prompts = []
    for pattern in templates:
        try:
            prompts.append(template_format(pattern, text))
        except (IndexError, KeyError, ValueError):  # a template without a usable `{}`
            prompts.append(text)
    return prompts


def _text_vector(run: ClassificationRun, text: str, template: bool) -> np.ndarray:
    """The query's text embedding. One short text on the CPU is encoded on one thread: torch's
    thread pool costs more than it gains here, and on a busy host its threads wait for each
    other (ViT-B-32: about 25 ms on one thread, 200 to 800 ms on two busy cores)."""
    import torch

    from classifier import engine

    loaded = _model(run)
    threads = torch.get_num_threads()
    if loaded.device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return engine.encode_texts(loaded, [query_prompts(run, text, template)])[0]
    finally:
        torch.set_num_threads(threads)


def _nearest(vectors: Vectors, folder: Path, query: np.ndarray, k: int, dataset_id: int):
    """(scores, rows, exact): exact up to SIEVE_SEARCH_EXACT_MAX vectors; above, the
    approximate index when one is built for this cache (else one is requested, and this
    query is exact)."""
    if len(vectors) > settings.SIEVE_SEARCH_EXACT_MAX:
        try:
            index = index_for(folder, cache_fingerprint(folder))
            if index is not None:
                scores, rows = index.search(query, k)
                return scores, rows, False
            index_request(dataset_id=dataset_id, folder=folder)
        except Exception:  # an index problem must not cost the query: answer exactly
            log.exception("approximate index for %s unavailable", folder)
    with _one_blas_thread():
        scores, rows = exact_search(vectors.matrix, query, k)
    return scores, rows, True


def _one_blas_thread():
    """One matrix-vector product is bound by memory, not arithmetic: one BLAS thread reads a
    million rows as fast as two, and on a busy host the second thread only makes the first
    wait (1M x 512: 130 ms against 180 ms here). threadpoolctl when installed, else as is."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def search(
    *, run_id: int, text: str | None = None, item_id: int | None = None, k: int = 50,
    template: bool = False,
) -> dict:  # fmt: skip
    """The k items of the run's embedding cache nearest to a text (encoded by the run's text
    tower) or to an item's image embedding. Raises SearchRefused."""
    clock = time.perf_counter()
    run = ClassificationRun.objects.select_related("taxonomy").filter(pk=run_id).first()
    if run is None:
        raise SearchRefused("No such run.", status=404)
    if run.source == ClassificationRun.Source.IMPORT:
        raise SearchRefused(
            "This run's predictions were imported: it has no embeddings to search. Search a "
            "run that classified the dataset with a model."
        )
    folder = cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights)
    vectors = vectors_for(folder)
    if vectors is None:
        raise SearchRefused(
            "This run has no embedding cache to search (none was written yet, or it was "
            "deleted or its checkpoint changed since). Run the model again to build it."
        )
    load_ms = (time.perf_counter() - clock) * 1000
    if item_id is not None:
        row = vectors.row_of(item_id)
        if row is None:
            raise SearchRefused(
                f"Item {item_id} has no embedding in this run's cache (its image could not "
                "be read, or the run did not cover it)."
            )
        query = vectors.matrix[row]
    else:
        query = _text_vector(run, text or "", template)
        if query.shape[-1] != vectors.matrix.shape[1]:
            raise SearchRefused(
                f"The model's text embeddings ({query.shape[-1]}-d) do not match the cache's "
                f"image embeddings ({vectors.matrix.shape[1]}-d)."
            )
    encoded = time.perf_counter()
    scores, rows, exact = _nearest(vectors, folder, query, k, run.dataset_id)
    done = time.perf_counter()
    ids = vectors.item_ids[rows]
    return {
        "results": [[int(i), round(float(s), 6)] for i, s in zip(ids, scores, strict=True)],
        "exact": exact,
        "took_ms": round((done - encoded) * 1000, 2),
        "total_ms": round((done - clock) * 1000, 2),
        "load_ms": round(load_ms, 2),
        "encode_ms": round((encoded - clock) * 1000 - load_ms, 2),
        "items": len(vectors),
    }


@shared_task(name="classifier.search_query", ignore_result=False, acks_late=False)
def search_query(
    run_id: int, text: str | None = None, item_id: int | None = None, k: int = 50,
    template: bool = False,
) -> dict:  # fmt: skip
    """One query (queue `search`); the web waits for its answer in the result backend."""
    try:
        return search(run_id=run_id, text=text, item_id=item_id, k=k, template=template)
    except SearchRefused as exc:
        return {"error": str(exc), "status": exc.status}
    except Exception as exc:  # answer something: the web would otherwise wait for nothing
        log.exception("search on run %s failed", run_id)
        return {"error": f"The search failed: {type(exc).__name__}: {exc}", "status": 503}
