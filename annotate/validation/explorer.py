"""The run explorer: a run's predictions filtered by label, probability, verdicts and
image-caption disagreement, in keyset pages (docs/architecture.md#explorer).

One function, `explore`, serves `GET /api/runs/{id}/items/` and the page `/runs/{id}/items/`.
A page costs the same three queries whatever its size, position and filters (plus one to
check a `label` and one to check a `sample` when given):
1. the page's keys: one index range scan per order (indexes on (run, [label,] probability, id)
   and (run, [label,] shuffle, id)), never an OFFSET, never a sort of the whole run;
2. the page's rows with their item and labels, by primary key;
3. the page's hit and miss counts and adjudications.

Random order walks `Prediction.shuffle`, a pseudo-random key the database computes from the
item id. The seed picks where the walk starts: pages go from the seed's start point to the end
of the key range, then wrap around to the beginning. So every seed gives the same cycle of
items read from a different start, not an independent permutation; what it buys is a random
order that a 10-million-row run pages through by index, like the others.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet

from annotate.errors import FieldInvalid, NotFound
from annotate.taxonomies.models import Label
from annotate.validation.models import Adjudication, Sample, SampleItem, Verdict
from classifier.models import ClassificationRun, Prediction, shuffle_of

ORDERS = ("-probability", "probability", "random")
VERDICTS = ("hit", "miss", "none", "disputed")
DEFAULT_LIMIT = 48
MAX_LIMIT = 200
MAX_SEED = 2**63 - 1
# A stored 0.3 counts at "min_probability=0.3", as in the coverage and threshold tables.
EPSILON = 1e-9
BOOLEAN_TRUE = ("1", "true")
BOOLEAN_FALSE = ("0", "false")
PARAMETERS = (
    "label", "min_probability", "max_probability", "verdict", "disagreement", "sample",
    "order", "seed", "cursor", "limit",
)  # fmt: skip


class ExplorerQueryError(FieldInvalid):
    """A malformed query parameter: `field` names it (400, `{"field": ["why"]}` in the API)."""


class ExplorerNotFound(NotFound):
    """A well-formed parameter naming nothing of this run: a label outside its taxonomy, a
    sample of another run, a cursor that is not a page of this list (404)."""


@dataclass(frozen=True)
class ExplorerQuery:
    """The explorer's parameters, checked. `label` is a key or a name of the run's taxonomy."""

    label: str | None = None
    min_probability: float | None = None
    max_probability: float | None = None
    verdict: str | None = None
    disagreement: bool = False
    sample: int | None = None
    order: str = "-probability"
    seed: int | None = None
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    def as_params(self, **changes: Any) -> dict[str, str]:
        """The query string that gives this query (absent values left out), with `changes`."""
        query = replace(self, **changes)
        params = {
            "label": query.label,
            "min_probability": _number(query.min_probability),
            "max_probability": _number(query.max_probability),
            "verdict": query.verdict,
            "disagreement": "1" if query.disagreement else None,
            "sample": query.sample,
            "order": None if query.order == "-probability" else query.order,
            "seed": query.seed if query.order == "random" else None,
            "limit": None if query.limit == DEFAULT_LIMIT else query.limit,
            "cursor": query.cursor,
        }
        return {name: str(value) for name, value in params.items() if value is not None}


def _number(value: float | None) -> str | None:
    return None if value is None else repr(value)  # exact: the next page filters the same


@dataclass
class ExplorerRow:
    prediction: int
    item: int
    external_id: str
    caption: str
    item_status: str
    label_id: int
    label_key: str
    label_name: str
    probability: float
    image_probability: float | None
    text_probability: float | None
    image_label: str | None  # name of the image-only top label
    text_label: str | None  # name of the caption-only top label
    hits: int = 0
    misses: int = 0
    adjudicated: str | None = None  # a lead's hit or miss, which overrides the majority

    @property
    def disagreement(self) -> bool:
        return bool(self.image_label and self.text_label and self.image_label != self.text_label)


@dataclass
class ExplorerPage:
    rows: list[ExplorerRow]
    query: ExplorerQuery
    next_cursor: str | None
    seed: int | None  # the seed of a random order (drawn when the query gave none)
    label: Label | None = None
    sample: Sample | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def next_params(self) -> dict[str, str] | None:
        """The query string of the next page; None on the last one."""
        if self.next_cursor is None:
            return None
        return self.query.as_params(cursor=self.next_cursor, seed=self.seed)


# ---------------------------------------------------------------- parameters


def _one(params: Mapping, name: str) -> str | None:
    """A parameter given once (the page's form drops its empty fields before this)."""
    getlist = getattr(params, "getlist", None)
    values = getlist(name) if getlist else ([params[name]] if name in params else [])
    if len(values) > 1:
        raise ExplorerQueryError(name, "Give this parameter once.")
    return str(values[0]) if values else None


def _probability(params: Mapping, name: str) -> float | None:
    text = _one(params, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ExplorerQueryError(name, "Give a probability between 0 and 1.")
    return value


def _integer(params: Mapping, name: str, low: int, high: int) -> int | None:
    text = _one(params, name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise ExplorerQueryError(name, f"Give a whole number between {low} and {high}.")
    return int(text)


def _choice(params: Mapping, name: str, choices: tuple[str, ...]) -> str | None:
    text = _one(params, name)
    if text is not None and text not in choices:
        raise ExplorerQueryError(name, f"Give one of: {', '.join(choices)}.")
    return text


def parse_query(params: Mapping, *, form: bool = False) -> ExplorerQuery:
    """The explorer's query string, checked: a malformed value raises ExplorerQueryError (400).
    `form`: the page's filter form, whose empty fields mean "any" (the API takes only what its
    schema says)."""
    if form:
        getlist = getattr(params, "getlist", None)
        params = {
            name: value.strip()
            for name in PARAMETERS
            for value in (getlist(name) if getlist else [params.get(name, "")])[-1:]
            if value.strip()
        }
    label = _one(params, "label")
    if label is not None and (len(label) > 200 or "\x00" in label):
        raise ExplorerQueryError("label", "Give a label key or name (at most 200 characters).")
    disagreement = _one(params, "disagreement")
    if disagreement is not None and disagreement not in BOOLEAN_TRUE + BOOLEAN_FALSE:
        raise ExplorerQueryError("disagreement", "Give 1 or 0.")
    query = ExplorerQuery(
        label=label,
        min_probability=_probability(params, "min_probability"),
        max_probability=_probability(params, "max_probability"),
        verdict=_choice(params, "verdict", VERDICTS),
        disagreement=disagreement in BOOLEAN_TRUE,
        sample=_integer(params, "sample", 1, MAX_SEED),
        order=_choice(params, "order", ORDERS) or "-probability",
        seed=_integer(params, "seed", 0, MAX_SEED),
        cursor=_one(params, "cursor"),
        limit=_integer(params, "limit", 1, MAX_SEED) or DEFAULT_LIMIT,
    )
    return replace(query, limit=min(query.limit, MAX_LIMIT))


# ---------------------------------------------------------------- cursors


def _encode_cursor(order: str, seed: int | None, phase: int, key: float, last_id: int) -> str:
    raw = json.dumps([order, seed, phase, key, last_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(query: ExplorerQuery, seed: int | None) -> tuple[int, float, int] | None:
    """(phase, last key, last id) of the query's cursor; 400 when it is not one of ours or was
    made for another order or seed (404: it names no page of this list)."""
    if query.cursor is None:
        return None
    bad = ExplorerNotFound("Not a page of this list: start again without the cursor.")
    try:
        text = query.cursor + "=" * (-len(query.cursor) % 4)
        order, cursor_seed, phase, key, last_id = json.loads(base64.urlsafe_b64decode(text))
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if order != query.order or (order == "random" and cursor_seed != seed):
        raise ExplorerNotFound(
            "This cursor belongs to another order or seed: start again without it."
        )
    valid = (
        phase in (0, 1)
        and isinstance(key, int | float)
        and not isinstance(key, bool)
        and math.isfinite(key)
        and isinstance(last_id, int)
        and not isinstance(last_id, bool)
        and abs(last_id) <= MAX_SEED
        and abs(key) <= 2**53
    )
    if not valid:
        raise bad
    return phase, float(key) if order != "random" else int(key), last_id


# ---------------------------------------------------------------- filters


def resolve_label(run: ClassificationRun, text: str) -> Label:
    """The run taxonomy's label with key `text`, else the one named `text`."""
    labels = list(
        Label.objects.filter(taxonomy_id=run.taxonomy_id).filter(Q(key=text) | Q(name=text))[:3]
    )
    by_key = [label for label in labels if label.key == text]
    if by_key:
        return by_key[0]
    if len(labels) == 1:
        return labels[0]
    if labels:
        raise ExplorerQueryError("label", f"Several labels are named {text!r}: give the key.")
    raise ExplorerNotFound(f"No label {text!r} in taxonomy {run.taxonomy.name}.")


def _sample_items(run: ClassificationRun, sample: Sample | None) -> QuerySet[SampleItem]:
    """The sample items whose verdicts count: the given sample's (so the explorer agrees with
    the dashboard that links to it), else every sample's of the run."""
    if sample is not None:
        return SampleItem.objects.filter(sample_id=sample.pk)
    return SampleItem.objects.filter(sample__run_id=run.pk)


def _judgements(items: QuerySet[SampleItem]) -> QuerySet:
    """Per prediction: hit and miss verdicts, and the adjudication (a lead's final say; where
    two samples' adjudications differ, the miss wins)."""
    return (
        items.order_by()
        .values("prediction_id")
        .annotate(
            hits=Count("verdicts", filter=Q(verdicts__value=Verdict.Value.HIT)),
            misses=Count("verdicts", filter=Q(verdicts__value=Verdict.Value.MISS)),
            adjudicated=Max("adjudication__value"),
        )
    )


def _verdict_filter(verdict: str, items: QuerySet[SampleItem]) -> Q:
    """hit / miss: the adjudication, else the majority of hit and miss verdicts; disputed:
    at least one hit and one miss (adjudicated or not); none: no hit or miss verdict and no
    adjudication."""
    if verdict == "none":
        judged = items.filter(Q(verdict_count__gt=0) | Q(adjudication__isnull=False))
        return ~Q(id__in=judged.values("prediction_id"))
    groups = _judgements(items)
    if verdict == "disputed":
        groups = groups.filter(hits__gt=0, misses__gt=0)
    else:
        majority = {"hits__gt": F("misses")} if verdict == "hit" else {"misses__gt": F("hits")}
        groups = groups.filter(Q(adjudicated=verdict) | Q(adjudicated__isnull=True, **majority))
    return Q(id__in=groups.values("prediction_id"))


def _filtered(
    run: ClassificationRun, query: ExplorerQuery, label: Label | None, sample: Sample | None
) -> QuerySet[Prediction]:
    predictions = Prediction.objects.filter(run_id=run.pk)
    if label is not None:
        predictions = predictions.filter(label_id=label.pk)
    if query.min_probability is not None:
        predictions = predictions.filter(probability__gte=query.min_probability - EPSILON)
    if query.max_probability is not None:
        predictions = predictions.filter(probability__lte=query.max_probability + EPSILON)
    if query.disagreement:
        predictions = predictions.filter(
            image_label_id__isnull=False, text_label_id__isnull=False
        ).exclude(image_label_id=F("text_label_id"))
    if sample is not None:
        predictions = predictions.filter(
            id__in=SampleItem.objects.filter(sample_id=sample.pk).values("prediction_id")
        )
    if query.verdict is not None:
        predictions = predictions.filter(_verdict_filter(query.verdict, _sample_items(run, sample)))
    return predictions.order_by()


# ---------------------------------------------------------------- keyset pages


def _probability_keys(
    predictions: QuerySet[Prediction], order: str, after: tuple | None, size: int
) -> list[tuple[int, float, int]]:
    """(phase 0, probability, id) of up to `size` predictions after the cursor, in order."""
    descending = order == "-probability"
    if after is not None:
        _, p, last_id = after
        if descending:
            predictions = predictions.filter(probability__lte=p).filter(
                Q(probability__lt=p) | Q(id__lt=last_id)
            )
        else:
            predictions = predictions.filter(probability__gte=p).filter(
                Q(probability__gt=p) | Q(id__gt=last_id)
            )
    ordering = ("-probability", "-id") if descending else ("probability", "id")
    rows = predictions.order_by(*ordering).values_list("probability", "id")[:size]
    return [(0, p, pk) for p, pk in rows]


def _random_keys(
    predictions: QuerySet[Prediction], seed: int, after: tuple | None, size: int
) -> list[tuple[int, int, int]]:
    """(phase, shuffle, id) of up to `size` predictions after the cursor, in the seed's order:
    phase 0 is shuffle >= start, phase 1 wraps around to shuffle < start. Both phases are
    read by one statement (UNION ALL of two index range scans, each with its own LIMIT)."""
    start = shuffle_of(seed)
    phase, last_key, last_id = after if after is not None else (0, None, None)
    branches = []
    for branch in (0, 1):
        if branch < phase:
            continue
        if branch == 0:
            part = predictions.filter(shuffle__gte=start)
        else:
            part = predictions.filter(shuffle__lt=start)
        if branch == phase and last_key is not None:
            part = part.filter(shuffle__gte=last_key).filter(
                Q(shuffle__gt=last_key) | Q(id__gt=last_id)
            )
        ordered = part.order_by("shuffle", "id").values_list("shuffle", "id")[:size]
        sql, params = ordered.query.sql_with_params()
        # The SQL is the ORM's own; the values stay parameters.
        branches.append((f"SELECT {branch}, b{branch}.* FROM ({sql}) b{branch}", params))  # noqa: S608
    statement = " UNION ALL ".join(sql for sql, _ in branches)
    with connection.cursor() as cursor:
        cursor.execute(statement, [p for _, params in branches for p in params])
        keys = sorted((int(a), int(b), int(c)) for a, b, c in cursor.fetchall())
    return keys[:size]


def _rows(run: ClassificationRun, ids: list[int], sample: Sample | None) -> list[ExplorerRow]:
    """The page's rows in the order of `ids`: one query for the predictions with their items
    and labels, one for their verdict counts and adjudications."""
    found = {
        p.pk: p
        for p in Prediction.objects.filter(id__in=ids)
        .select_related("item", "label", "image_label", "text_label")
        .only(
            "id",
            "probability",
            "image_probability",
            "text_probability",
            "label_id",
            "item__id",
            "item__external_id",
            "item__caption",
            "item__status",
            "label__key",
            "label__name",
            "image_label__name",
            "text_label__name",
        )
    }
    judged = {
        g["prediction_id"]: g
        for g in _judgements(_sample_items(run, sample).filter(prediction_id__in=ids))
    }
    rows = []
    for pk in ids:
        p = found[pk]
        g = judged.get(pk, {})
        rows.append(
            ExplorerRow(
                prediction=p.pk,
                item=p.item.pk,
                external_id=p.item.external_id,
                caption=p.item.caption,
                item_status=p.item.status,
                label_id=p.label_id,
                label_key=p.label.key,
                label_name=p.label.name,
                probability=p.probability,
                image_probability=p.image_probability,
                text_probability=p.text_probability,
                image_label=p.image_label.name if p.image_label else None,
                text_label=p.text_label.name if p.text_label else None,
                hits=g.get("hits", 0),
                misses=g.get("misses", 0),
                adjudicated=g.get("adjudicated"),
            )
        )
    return rows


def explore(*, run: ClassificationRun, query: ExplorerQuery) -> ExplorerPage:
    """One keyset page of the run's predictions that pass `query`'s filters, in its order."""
    label = resolve_label(run, query.label) if query.label is not None else None
    sample = None
    if query.sample is not None:
        sample = Sample.objects.filter(pk=query.sample, run_id=run.pk).first()
        if sample is None:
            message = f"Sample {query.sample} is not a sample of this run."
            raise ExplorerNotFound(message)
    seed = None
    if query.order == "random":
        seed = query.seed if query.seed is not None else secrets.randbelow(2**31)
    after = _decode_cursor(query, seed)
    predictions = _filtered(run, query, label, sample)
    size = query.limit + 1  # one more tells whether a next page exists
    if seed is not None:
        keys: list = _random_keys(predictions, seed, after, size)
    else:
        keys = _probability_keys(predictions, query.order, after, size)
    more = len(keys) > query.limit
    keys = keys[: query.limit]
    next_cursor = None
    if more and keys:
        phase, key, last_id = keys[-1]
        next_cursor = _encode_cursor(query.order, seed, phase, key, last_id)
    rows = _rows(run, [pk for _, _, pk in keys], sample) if keys else []
    return ExplorerPage(
        rows=rows, query=query, next_cursor=next_cursor, seed=seed, label=label, sample=sample
    )


# ---------------------------------------------------------------- the item page


@dataclass
class TopLabel:
    key: str
    name: str
    probability: float


@dataclass
class RunPrediction:
    """What one run said about the item."""

    run: ClassificationRun
    label: Label
    probability: float
    image_probability: float | None
    text_probability: float | None
    image_label: Label | None
    text_label: Label | None
    top5: list[TopLabel]


@dataclass
class ItemOverview:
    predictions: list[RunPrediction]  # visible runs, newest first, then hidden ones
    verdicts: list[Verdict]  # with annotator, corrected label and sample
    adjudications: list[Adjudication]  # with decided_by, corrected label and sample
    all_verdicts: bool  # False: the caller sees only their own verdicts


def item_overview(*, item: Any, user: Any, lead: bool) -> ItemOverview:
    """Every run's top-5 for the item and every verdict and adjudication on its sample items
    (five queries). Annotators get neither predictions nor other people's verdicts: both would
    sway the verdicts they give (docs/architecture.md#explorer)."""
    verdicts = Verdict.objects.filter(sample_item__prediction__item_id=item.pk).select_related(
        "annotator", "corrected_label", "sample_item__sample", "sample_item__prediction__label"
    )
    if not lead:
        mine = list(verdicts.filter(annotator=user).order_by("created"))
        return ItemOverview(predictions=[], verdicts=mine, adjudications=[], all_verdicts=False)
    predictions = list(
        Prediction.objects.filter(item_id=item.pk)
        .select_related("run", "label", "image_label", "text_label")
        .order_by("run__hidden", "-run_id")
    )
    top_ids = {int(pair[0]) for p in predictions for pair in p.top5 or []}
    labels = {label.pk: label for label in Label.objects.filter(pk__in=top_ids)}
    rows = []
    for p in predictions:
        top5 = [
            TopLabel(labels[int(pk)].key, labels[int(pk)].name, float(prob))
            for pk, prob in p.top5 or []
            if int(pk) in labels
        ]
        rows.append(
            RunPrediction(
                run=p.run,
                label=p.label,
                probability=p.probability,
                image_probability=p.image_probability,
                text_probability=p.text_probability,
                image_label=p.image_label,
                text_label=p.text_label,
                top5=top5 or [TopLabel(p.label.key, p.label.name, p.probability)],
            )
        )
    adjudications = list(
        Adjudication.objects.filter(sample_item__prediction__item_id=item.pk)
        .select_related("decided_by", "corrected_label", "sample_item__sample")
        .order_by("created")
    )
    return ItemOverview(
        predictions=rows,
        verdicts=list(verdicts.order_by("created")),
        adjudications=adjudications,
        all_verdicts=True,
    )
