"""Suspects: a run's items ranked by how likely the run's label is wrong
(docs/architecture.md#suspects).

The score, in [0, 1], higher = more likely mislabelled, comes from the run's own signals:
- the margin m = p1 - p2 between the top two probabilities (p1 = the stored probability,
  p2 = top5[1]; 0 when the prediction has no second label);
- the disagreement d = 1 when the image-only and the caption-only top labels are both known and
  differ (never for the `image` ensemble or items without a caption), else 0.

    score = clamp(W_MARGIN * (1 - m) + W_DISAGREE * d, 0, 1)

Once the run has a probe (its latest succeeded probe run that is not hidden,
docs/architecture.md#probe), the probe's probability q of the run's label joins them: read from
the top5 of the probe's prediction of the same item (0 when the label is not among its five;
the run's own p1 when the probe has no prediction of the item, so a missing row is neutral):

    score = clamp(WP_MARGIN * (1 - m) + WP_DISAGREE * d + WP_PROBE * (1 - q), 0, 1)

The probe learned from the verdicts, so it tells apart look-alikes that the zero-shot run
confuses; its predictions of verdict items are cross-fitted (no item's own verdict raises or
lowers its score). An item whose probe top label differs from the run's label gets the reason
`probe_disagrees`.

The score is computed by the database (the margin and q read from the top5 JSON, the probe's
prediction joined on the item) and only the best `limit` rows leave it: ORDER BY score DESC,
id LIMIT, with no stored column. Items whose run label a verdict
fact confirms (docs/architecture.md#verdicts-as-facts) are left out; items whose label a fact
says is wrong stay, with that reason (the score does not use verdicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from django.db.models import (
    Case,
    F,
    FilteredRelation,
    FloatField,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Greatest, Least
from django.db.models.lookups import Exact

from annotate.datasets.models import Item
from annotate.errors import FieldInvalid
from annotate.taxonomies.models import Label
from annotate.validation.explorer import resolve_label
from annotate.validation.metrics import dataset_facts
from classifier.models import ClassificationRun, Prediction

W_MARGIN = 0.75
W_DISAGREE = 0.25
# Once a probe exists: its verdict-trained view takes its weight mostly from the margin.
WP_MARGIN = 0.5
WP_DISAGREE = 0.15
WP_PROBE = 0.35
LOW_MARGIN = 0.5  # a margin under this is a reason of its own
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class SuspectsQueryError(FieldInvalid):
    """A malformed parameter (400, `{"field": ["why"]}` in the API)."""


@dataclass
class Suspect:
    prediction: int
    item: int
    external_id: str
    caption: str
    label_id: int
    label_key: str
    label_name: str
    probability: float
    second_probability: float
    score: float
    reasons: list[dict] = field(default_factory=list)
    probe_probability: float | None = None  # q: the probe's probability of the run's label

    @property
    def margin(self) -> float:
        return self.probability - self.second_probability


def second_probability() -> Coalesce:
    """p2 = top5[1][1] in SQL (PostgreSQL `top5 #>> '{1,1}'`, SQLite `$[1][1]`); 0 if absent."""
    text = KeyTextTransform("1", KeyTransform("1", "top5"))
    return Coalesce(Cast(text, FloatField()), Value(0.0), output_field=FloatField())


def _probe_probability_of_label(top5: str) -> Case:
    """The probability the top5 JSON at `top5` gives the row's `label_id` when it is not the
    top label (positions 1..4, read like `second_probability`; 0 when it is not among them)."""
    whens = []
    for position in range(1, 5):
        entry = KeyTransform(str(position), top5)
        label = Cast(KeyTextTransform("0", entry), IntegerField())
        probability = Cast(KeyTextTransform("1", entry), FloatField())
        whens.append(When(Exact(label, F("label_id")), then=probability))
    return Case(*whens, default=Value(0.0), output_field=FloatField())


def latest_probe(run: ClassificationRun) -> ClassificationRun | None:
    """The probe the suspects use: the run's latest succeeded probe run that is not hidden."""
    return (
        run.probes.filter(status=ClassificationRun.Status.SUCCEEDED, hidden=False)
        .order_by("-id")
        .first()
    )


def scored(predictions: QuerySet[Prediction], probe_id: int | None = None) -> QuerySet:
    """`predictions` annotated with `p2` and `score` (see the module docstring). With
    `probe_id`, the score uses that probe run, and `q` (the probe's probability of the run's
    label), `probe_label_id` and `probe_top` (the probe's top label and its probability; null
    when the probe has no prediction of the item) are annotated too."""
    disagree = Case(
        When(
            image_label_id__isnull=False,
            text_label_id__isnull=False,
            then=Case(
                When(image_label_id=F("text_label_id"), then=Value(0.0)),
                default=Value(1.0),
                output_field=FloatField(),
            ),
        ),
        default=Value(0.0),
        output_field=FloatField(),
    )
    unsure = Value(1.0) - (F("probability") - F("p2"))
    predictions = predictions.annotate(p2=second_probability())
    if probe_id is None:
        raw = Value(W_MARGIN) * unsure + Value(W_DISAGREE) * disagree
    else:
        # One LEFT JOIN on (run, item): the probe's prediction of the same item.
        predictions = predictions.annotate(
            probe_row=FilteredRelation(
                "item__predictions", condition=Q(item__predictions__run_id=probe_id)
            )
        ).annotate(
            probe_label_id=F("probe_row__label_id"),
            probe_top=F("probe_row__probability"),
            q=Case(
                When(probe_row__id__isnull=True, then=F("probability")),
                # Mostly the probe agrees: its stored top probability, no JSON to read.
                When(probe_row__label_id=F("label_id"), then=F("probe_row__probability")),
                default=_probe_probability_of_label("probe_row__top5"),
                output_field=FloatField(),
            ),
        )
        raw = (
            Value(WP_MARGIN) * unsure
            + Value(WP_DISAGREE) * disagree
            + Value(WP_PROBE) * (Value(1.0) - F("q"))
        )
    score = Greatest(Value(0.0), Least(Value(1.0), raw, output_field=FloatField()))
    return predictions.annotate(score=score)


def suspect_facts(run: ClassificationRun) -> tuple[dict[int, set], dict[int, set]]:
    """Per item, the labels the verdict facts of the dataset (every sample, every run of the
    taxonomy) say are true, and those they say are false."""
    facts = dataset_facts(dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id)
    true = {item: known[0] for item, known in facts.items() if known[0]}
    false = {item: known[1] for item, known in facts.items() if known[1]}
    return true, false


LATEST: Final = "latest"  # top_suspects(probe=LATEST): look the run's probe up (`latest_probe`)


def top_suspects(
    *,
    run: ClassificationRun,
    predictions: QuerySet[Prediction] | None = None,
    limit: int = DEFAULT_LIMIT,
    facts: tuple[dict[int, set], dict[int, set]] | None = None,
    probe: ClassificationRun | Literal["latest"] | None = LATEST,
) -> list[Suspect]:
    """The `limit` highest-scoring predictions of `predictions` (default: the whole run), best
    first (ties by id), leaving out those whose label a verdict fact confirms. `probe`: the
    probe run whose view joins the score (default: the run's latest, `latest_probe`; None:
    without). One query for the facts (unless given), one for the probe (unless given), one
    for the ranked rows, one for their items' ids and captions, one for the labels named."""
    true, false = facts if facts is not None else suspect_facts(run)
    if probe == LATEST:
        probe = latest_probe(run)
    probe_id = probe.pk if isinstance(probe, ClassificationRun) else None
    if predictions is None:
        predictions = Prediction.objects.filter(run_id=run.pk)
    # A confirmed item is dropped after the query: fetch that many more rows (at most one
    # prediction per item in a run), so the page is still full.
    extra = len(true)
    # The ranking reads the prediction rows (and the probe's) only: the items' and labels'
    # text is fetched for the rows kept, not carried through the sort of every row.
    fields = [
        "id", "item_id", "label_id", "probability", "p2", "score", "top5", "image_label_id",
        "text_label_id",
    ]  # fmt: skip
    if probe_id is not None:
        fields += ["q", "probe_label_id", "probe_top"]
    rows = list(
        scored(predictions.order_by(), probe_id)
        .order_by("-score", "id")
        .values(*fields)[: limit + extra]
    )
    rows = [r for r in rows if r["label_id"] not in true.get(r["item_id"], ())][:limit]
    items = Item.objects.filter(pk__in=[r["item_id"] for r in rows])
    texts = {pk: (external_id, caption) for pk, external_id, caption in
             items.values_list("pk", "external_id", "caption")}  # fmt: skip
    wanted = {r["label_id"] for r in rows}
    wanted |= {r["image_label_id"] for r in rows} | {r["text_label_id"] for r in rows}
    wanted |= {int(r["top5"][1][0]) for r in rows if _has_second(r["top5"])}
    wanted |= {label for r in rows for label in true.get(r["item_id"], ())}
    wanted |= {r.get("probe_label_id") for r in rows}
    found = Label.objects.filter(pk__in=wanted - {None}).values_list("pk", "key", "name")
    labels = {pk: (key, name) for pk, key, name in found}
    for r in rows:
        r["item__external_id"], r["item__caption"] = texts[r["item_id"]]
        r["label__key"], r["label__name"] = labels.get(r["label_id"], ("?", "?"))
    return [_suspect(r, labels, true.get(r["item_id"], set()), false.get(r["item_id"], set()))
            for r in rows]  # fmt: skip


def _has_second(top5: object) -> bool:
    return isinstance(top5, list) and len(top5) > 1 and isinstance(top5[1], list | tuple)


def _suspect(row: dict, labels: dict[int, tuple[str, str]], true: set, false: set) -> Suspect:
    names = {pk: name for pk, (_key, name) in labels.items()}
    p1, p2 = float(row["probability"]), float(row["p2"])
    reasons: list[dict[str, Any]] = []
    margin = p1 - p2
    second = names.get(int(row["top5"][1][0])) if _has_second(row["top5"]) else None
    if second is not None:
        text = f"top two labels {row['label__name']} {p1:.2f} vs {second} {p2:.2f}"
    else:
        text = f"top label {row['label__name']} {p1:.2f}, no second label stored"
    reasons.append({"code": "low_margin" if margin < LOW_MARGIN else "margin", "text": text})
    image, caption = row["image_label_id"], row["text_label_id"]
    if image is not None and caption is not None and image != caption:
        reasons.append(
            {
                "code": "image_caption_disagree",
                "text": f"image says {names.get(image, '?')}, caption says "
                f"{names.get(caption, '?')}",
            }
        )
    probe_label, q = row.get("probe_label_id"), row.get("q")
    if probe_label is not None and probe_label != row["label_id"]:
        key, name = labels.get(probe_label, ("?", "?"))
        top = float(row["probe_top"])
        reasons.append(
            {
                "code": "probe_disagrees",
                "text": f"the probe says {name} {top:.2f}; it gives {row['label__name']} "
                f"{float(q or 0):.2f}",
                "label": key,
                "label_name": name,
                "probability": top,
            }
        )
    if row["label_id"] in false:
        known = sorted(names.get(label, "?") for label in true)
        text = "a verdict says this label is wrong"
        if known:
            text += f"; the true label is {', '.join(known)}"
        reasons.append({"code": "verdict_wrong", "text": text})
    return Suspect(
        prediction=row["id"],
        item=row["item_id"],
        external_id=row["item__external_id"],
        caption=row["item__caption"],
        label_id=row["label_id"],
        label_key=row["label__key"],
        label_name=row["label__name"],
        probability=p1,
        second_probability=p2,
        score=round(float(row["score"]), 6),
        reasons=reasons,
        probe_probability=None if q is None else round(float(q), 6),
    )


@dataclass(frozen=True)
class SuspectsQuery:
    limit: int = DEFAULT_LIMIT
    label: str | None = None


def parse_suspects_query(params: Mapping, *, form: bool = False) -> SuspectsQuery:
    """`limit` (1..MAX_LIMIT, default 100) and `label` (a key or name); a malformed one raises
    SuspectsQueryError (400). `form`: empty fields mean "not given"."""
    getlist = getattr(params, "getlist", None)

    def one(name: str) -> str | None:
        values = getlist(name) if getlist else ([params[name]] if name in params else [])
        if form:
            values = [v.strip() for v in values if v.strip()]
        if len(values) > 1:
            raise SuspectsQueryError(name, "Give this parameter once.")
        return str(values[0]) if values else None

    limit_text = one("limit")
    limit = DEFAULT_LIMIT
    if limit_text is not None:
        good = limit_text.isascii() and limit_text.isdigit() and len(limit_text) < 8
        if not good or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise SuspectsQueryError("limit", f"Give a whole number between 1 and {MAX_LIMIT}.")
        limit = int(limit_text)
    label = one("label")
    if label is not None and (not label or len(label) > 200 or "\x00" in label):
        raise SuspectsQueryError("label", "Give a label key or name (at most 200 characters).")
    return SuspectsQuery(limit=limit, label=label)


@dataclass
class SuspectsPage:
    rows: list[Suspect]
    label: Label | None
    probe: ClassificationRun | None = None  # the probe run the scores use


def suspects_page(*, run: ClassificationRun, query: SuspectsQuery) -> SuspectsPage:
    """The run's top suspects (optionally of one label of its taxonomy: 404 for another)."""
    label = resolve_label(run, query.label) if query.label is not None else None
    predictions = Prediction.objects.filter(run_id=run.pk)
    if label is not None:
        predictions = predictions.filter(label_id=label.pk)
    probe = latest_probe(run)
    rows = top_suspects(run=run, predictions=predictions, limit=query.limit, probe=probe)
    return SuspectsPage(rows=rows, label=label, probe=probe)
