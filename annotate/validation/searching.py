"""Search a run's items by text or by an item's image (docs/architecture.md#search): the web
side. The query is encoded and searched by a worker of the `search` queue
(`classifier.search_query`, sent by name: the web tier imports neither torch nor faiss nor
the worker module); this waits for its answer in the result backend, then reads the run's
predictions for the items found, in one query."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from celery import current_app
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings

from annotate.datasets.models import Item
from annotate.errors import Conflict, FieldInvalid, NotFound, ServiceError
from classifier.cache import cache_dir
from classifier.models import ClassificationRun, Prediction

MAX_TEXT = 1000
MAX_K = 500
DEFAULT_K = 50
NO_WORKER = (
    "No search worker answered: start a worker on the `search` queue "
    "(`celery -A annotate worker -Q search --pool solo`; `make run` and compose start one)."
)


NO_CACHE = (
    "This run has no embedding cache to search (none was written yet, or it was deleted or "
    "its checkpoint changed since). Run the model again to build it."
)


class SearchUnavailable(ServiceError):
    """No worker answered, or the worker could not run the query: HTTP 503."""

    status_code = 503


class SearchInvalid(FieldInvalid):
    """Bad search input; `field` names the input (a 400 like a serializer's field error)."""


@dataclass
class SearchHit:
    item: int
    external_id: str
    caption: str
    item_status: str
    score: float
    label_key: str | None
    label_name: str | None
    probability: float | None


@dataclass
class SearchAnswer:
    hits: list[SearchHit]
    exact: bool
    took_ms: float  # the whole search as the web saw it
    search_ms: float  # the nearest-neighbour search in the worker
    worker_ms: float  # everything the worker did (cache, text encoding, search)
    items: int  # vectors searched
    query_item: Item | None


def search_check(*, text: str | None, item_id: int | None, k: int) -> str | None:
    """The cleaned text (None for an item query); SearchInvalid for bad input."""
    if (text is None) == (item_id is None):
        raise SearchInvalid("text", "Give either a text or an item, not both.")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise SearchInvalid("k", f"k must be a whole number from 1 to {MAX_K}.")
    if text is None:
        return None
    text = text.strip()
    if not text:
        raise SearchInvalid("text", "Type something to search for.")
    if len(text) > MAX_TEXT:
        raise SearchInvalid("text", f"The text is longer than {MAX_TEXT} characters.")
    if "\x00" in text:
        raise SearchInvalid("text", "The text contains a NUL character.")
    return text


def _ask_worker(kwargs: dict) -> dict:
    timeout = settings.SIEVE_SEARCH_TIMEOUT
    result = current_app.send_task(
        "classifier.search_query", kwargs=kwargs, queue="search", expires=timeout
    )
    try:
        answer = result.get(timeout=timeout, interval=0.005, propagate=False)
    except CeleryTimeout:
        with contextlib.suppress(Exception):  # it expires anyway; a broker hiccup is no 500
            result.revoke()
        raise SearchUnavailable(NO_WORKER) from None
    finally:
        result.forget()  # the answer's row in the result backend
    if not isinstance(answer, dict):
        raise SearchUnavailable(f"The search worker failed: {answer}")
    return answer


ERRORS: dict[int, type[ServiceError]] = {404: NotFound, 409: Conflict, 503: SearchUnavailable}


def run_search(
    *, run: ClassificationRun, text: str | None = None, item_id: int | None = None,
    k: int = DEFAULT_K, template: bool = False,
) -> SearchAnswer:  # fmt: skip
    """The k items of the run's dataset nearest to `text` or to item `item_id`'s image,
    best first, with the run's prediction for each. `run` comes from a permission-checked
    fetch; an item of another dataset is a 404."""
    clock = time.perf_counter()
    text = search_check(text=text, item_id=item_id, k=k)
    if run.source == ClassificationRun.Source.IMPORT:
        raise Conflict(
            "This run's predictions were imported: it has no embeddings to search. Search a "
            "run that classified the dataset with a model."
        )
    folder = cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights)
    if not folder.is_dir() or next(folder.glob("items-*.npz"), None) is None:
        # Checked here too (file names only), so such a run answers without a worker.
        raise Conflict(NO_CACHE)
    query_item = None
    if item_id is not None:
        query_item = Item.objects.filter(pk=item_id, dataset_id=run.dataset_id).first()
        if query_item is None:
            raise NotFound("No such item in this run's dataset.")
    kwargs: dict[str, Any] = {"run_id": run.pk, "k": k, "template": bool(template)}
    kwargs.update({"text": text} if text is not None else {"item_id": item_id})
    answer = _ask_worker(kwargs)
    if "error" in answer:
        raise ERRORS.get(answer.get("status", 409), Conflict)(answer["error"])
    pairs = [(int(item), float(score)) for item, score in answer["results"]]
    ids = [item for item, _ in pairs]
    found: dict[int, dict[str, Any]] = {}
    predictions = Prediction.objects.filter(run=run, item_id__in=ids, item__dataset=run.dataset_id)
    for item, external_id, caption, status, key, name, probability in predictions.values_list(
        "item_id", "item__external_id", "item__caption", "item__status", "label__key",
        "label__name", "probability",
    ):  # fmt: skip
        found[item] = {
            "external_id": external_id, "caption": caption or "", "item_status": status,
            "label_key": key, "label_name": name, "probability": probability,
        }  # fmt: skip
    missing = [item for item in ids if item not in found]
    if missing:  # in the cache but without a prediction of this run (a cancelled run)
        items = Item.objects.filter(pk__in=missing, dataset_id=run.dataset_id)
        for item, external_id, caption, status in items.values_list(
            "id", "external_id", "caption", "status"
        ):
            found[item] = {
                "external_id": external_id, "caption": caption or "", "item_status": status,
                "label_key": None, "label_name": None, "probability": None,
            }  # fmt: skip
    hits = [
        SearchHit(item=item, score=score, **found[item]) for item, score in pairs if item in found
    ]
    return SearchAnswer(
        hits=hits,
        exact=bool(answer.get("exact", True)),
        took_ms=round((time.perf_counter() - clock) * 1000, 2),
        search_ms=float(answer.get("took_ms", 0.0)),
        worker_ms=float(answer.get("total_ms", 0.0)),
        items=int(answer.get("items", 0)),
        query_item=query_item,
    )
