"""REST endpoints for samples, assignment and verdicts. Thin: input is checked by explicit
serializers, the work is done by `sampling`, `assignment` and `services`, the answers are
`serializers`; service errors reach the API's one error handler (annotate/rest.py)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.decorators import api_view, renderer_classes
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.csvexport import csv_text
from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.api import item_image_url, item_thumbnail_url
from annotate.datasets.models import Role
from annotate.rest import (
    ExcludeQuery,
    IdOrNameField,
    PageQuery,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    duration_field,
    error_body,
    exclude_parameter,
    page_of,
    paginate,
    query_params,
    responses,
)
from annotate.taxonomies.models import Label
from annotate.validation.assignment import sample_item_next, samples_progress
from annotate.validation.models import Sample, SampleItem, Verdict
from annotate.validation.sampling import MAX_CLASSES, MAX_PER_CLASS, MAX_REDUNDANCY, sample_draw
from annotate.validation.selectors import (
    get_own_verdict_for_user,
    get_sample_for_user,
    get_sample_item_for_user,
    samples_for_user,
)
from annotate.validation.serializers import (
    NextItemSerializer,
    SampleItemSerializer,
    SampleSerializer,
    VerdictConflictSerializer,
    VerdictExportSerializer,
    VerdictSerializer,
)
from annotate.validation.services import (
    VerdictConflict,
    sample_set_status,
    verdict_change,
    verdict_record,
    verdict_undo,
)
from classifier.prompts import label_prompts
from classifier.selectors import get_run_for_user

# ---------------------------------------------------------------- representations


def sample_json(sample: Sample, progress: dict | None = None) -> dict:
    context = {"progress": {sample.pk: progress}} if progress is not None else {}
    return SampleSerializer(sample, context=context).data


def label_json(label: Label | None) -> dict | None:
    if label is None:
        return None
    return {"id": label.pk, "key": label.key, "name": label.name}


def suggestions(item: SampleItem, limit: int = 5) -> list[Label]:
    """Likely right labels for a miss: the prediction's runners-up, best first."""
    prediction = item.prediction
    ids = []
    for entry in prediction.top5 or []:
        try:
            label_id = int(entry[0])
        except (TypeError, ValueError, IndexError):
            continue
        if label_id != prediction.label_id and label_id not in ids:
            ids.append(label_id)
    found = Label.objects.in_bulk(ids[:limit])
    return [found[i] for i in ids[:limit] if i in found]


def next_item_json(item: SampleItem, lease_expires=None, request: Request | None = None) -> dict:
    """What an annotator sees of an item: never other people's verdicts; no probability when
    the sample is blind. Image URLs are absolute when a `request` is given (the API)."""
    prediction = item.prediction
    label = prediction.label
    prompts = label_prompts(item.sample.run, label)
    return {
        "id": item.pk,
        "sample": item.sample_id,
        "position": item.position,
        "item": prediction.item_id,
        "external_id": prediction.item.external_id,
        "caption": prediction.item.caption,
        "label": label_json(label),
        "prompt": prompts[0],
        "prompts": prompts,
        "probability": None if item.sample.blind else prediction.probability,
        "image_url": item_image_url(prediction.item_id, request),
        "thumbnail_url": item_thumbnail_url(prediction.item_id, request),
        "suggestions": [label_json(s) for s in suggestions(item)],
        "lease_expires": lease_expires,
    }


def verdict_json(verdict: Verdict) -> dict:
    return VerdictSerializer(verdict).data


@error_body.register
def _verdict_conflict_body(exc: VerdictConflict) -> dict:
    """409 for a verdict on an item the caller already judged: the verdict that stays."""
    return {"detail": str(exc), "verdict": verdict_json(exc.verdict)}


# ---------------------------------------------------------------- samples


class SampleInput(serializers.Serializer):
    classes = StrictIntegerField(min_value=1, max_value=MAX_CLASSES, default=10)
    per_class = StrictIntegerField(min_value=1, max_value=MAX_PER_CLASS, default=100)
    seed = StrictIntegerField(
        required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1
    )
    redundancy = StrictIntegerField(min_value=1, max_value=MAX_REDUNDANCY, default=1)
    overlap = StrictFloatField(min_value=0.0, max_value=1.0, default=0.1)
    min_probability = StrictFloatField(min_value=0.0, max_value=1.0, default=0.0)
    exclude_previous = StrictBooleanField(default=False)
    blind = StrictBooleanField(default=False)
    strategy = serializers.ChoiceField(
        choices=Sample.Strategy.values,
        default=Sample.Strategy.BALANCED,
        help_text="balanced (random: estimates the run's accuracy), suspects (each label's "
        "likeliest errors; targeted), uncertain (a probe run's least certain items without a "
        "verdict; targeted; 409 on a run that is not a probe run)",
    )


LEADS_ONLY = "Only leads and admins of this dataset may do this."


def _samples_page(request: Request, samples) -> Response:
    """A page of samples, with their progress counted for the page in one query."""

    def serialize(page: list[Sample]) -> list:
        context = {"progress": samples_progress(samples=page)}
        return SampleSerializer(page, many=True, context=context).data

    return paginate(request, samples.select_related("run", "created_by"), serialize)


@extend_schema(
    methods=["GET"],
    parameters=[PageQuery],
    responses=responses({200: page_of(SampleSerializer)}, 400, 404),
)
@extend_schema(
    methods=["POST"],
    request=SampleInput,
    responses=responses({201: SampleSerializer}, 400, 403, 404, 409),
)
@api_view(["GET", "POST"])
def run_samples(request: Request, pk: int) -> Response:
    """GET: the run's samples. POST: draw a new sample (leads and admins of the dataset);
    409 when the run cannot give it (not finished, or no prediction left after the filters)."""
    run, role = get_run_for_user(request.user, pk)
    if request.method == "GET":
        return _samples_page(request, run.samples.all())
    require_role(role, Role.LEAD, LEADS_ONLY)
    data = SampleInput(data=request.data)
    data.is_valid(raise_exception=True)
    sample = sample_draw(run=run, created_by=request.user, **data.validated_data)
    return Response(sample_json(sample), status=status.HTTP_201_CREATED)


@extend_schema(
    operation_id="samples_list",
    parameters=[PageQuery],
    responses=responses({200: page_of(SampleSerializer)}, 400),
)
@api_view(["GET"])
def sample_list(request: Request) -> Response:
    """The samples of your datasets, newest first."""
    return _samples_page(request, samples_for_user(request.user).order_by("-id"))


@extend_schema(responses=responses({200: SampleSerializer}, 404))
@api_view(["GET"])
def sample_detail(request: Request, pk: int) -> Response:
    return Response(sample_json(get_sample_for_user(request.user, pk)[0]))


@extend_schema(
    parameters=[PageQuery],
    responses=responses({200: page_of(SampleItemSerializer)}, 400, 404),
)
@api_view(["GET"])
def sample_items(request: Request, pk: int) -> Response:
    """The frozen item list; `verdicts` (how many an item has) only for leads."""
    sample, role = get_sample_for_user(request.user, pk)
    lead = role_at_least(role, Role.LEAD)
    items = sample.items.select_related("prediction__item", "prediction__label").order_by(
        "position"
    )
    context = {"lead": lead, "hide_probability": sample.blind and not lead}
    return paginate(
        request, items, lambda page: SampleItemSerializer(page, many=True, context=context).data
    )


@extend_schema(
    parameters=[exclude_parameter()],
    responses=responses(
        {200: NextItemSerializer, 204: OpenApiResponse(description="nothing left for you")},
        400,
        404,
    ),
)
@api_view(["GET"])
def sample_next(request: Request, pk: int) -> Response:
    """Lease and return the caller's next item; 204 when nothing is left for them.
    `?exclude=1,2` skips items the caller already holds (the page preloads one ahead)."""
    sample, _ = get_sample_for_user(request.user, pk)
    exclude = query_params(ExcludeQuery, request).get("exclude", [])
    item = sample_item_next(sample=sample, annotator=request.user, exclude=exclude)
    if item is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    item.sample = sample  # with its run and taxonomy already loaded
    return Response(NextItemSerializer(next_item_json(item, request=request)).data)


EXPORT_FIELDS = tuple(VerdictExportSerializer().fields)


class CSVRenderer(BaseRenderer):
    """The verdict export as CSV: a header row (also when there is no verdict yet), then one
    row per verdict."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        rows = data if isinstance(data, list) else [data]
        columns = list(data) if isinstance(data, dict) else EXPORT_FIELDS
        return csv_text(columns, rows).encode()  # the one writer: no formula cells


class ExportQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "csv"], required=False)


@extend_schema(
    parameters=[ExportQuery],
    responses=responses(
        {
            (200, "application/json"): VerdictExportSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
        },
        400,
        403,
        404,
    ),
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, CSVRenderer, BrowsableAPIRenderer])
def sample_verdicts(request: Request, pk: int) -> Response:
    """All verdicts of a sample, `?format=csv` or `?format=json` (leads and admins)."""
    sample, role = get_sample_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    query_params(ExportQuery, request)  # DRF picks the renderer; an empty format is an error
    verdicts = (
        Verdict.objects.filter(sample_item__sample=sample)
        .select_related(
            "annotator",
            "corrected_label",
            "sample_item__prediction__item",
            "sample_item__prediction__label",
        )
        .order_by("sample_item__position", "id")
    )
    response = Response(VerdictExportSerializer(verdicts, many=True).data)
    if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
        response["Content-Disposition"] = f'attachment; filename="sample-{sample.pk}-verdicts.csv"'
    return response


@extend_schema(request=None, responses=responses({200: SampleSerializer}, 403, 404))
@api_view(["POST"])
def sample_status(request: Request, pk: int, action: str) -> Response:
    """Close a sample (no more assignments, verdicts, changes or undos) or reopen it (leads)."""
    sample, role = get_sample_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    sample_set_status(
        sample=sample, status=Sample.Status.CLOSED if action == "close" else Sample.Status.OPEN
    )
    return Response(sample_json(sample))


# ---------------------------------------------------------------- verdicts


def _corrected_label() -> IdOrNameField:
    return IdOrNameField(
        required=False, allow_null=True, help_text="the right label of a miss: id or key"
    )


class VerdictInput(serializers.Serializer):
    sample_item = StrictIntegerField(min_value=1)
    value = serializers.ChoiceField(choices=Verdict.Value.choices)
    corrected_label = _corrected_label()
    key = StrictCharField(
        required=False, allow_blank=True, max_length=100, default="", help_text="idempotency key"
    )
    duration_ms = duration_field()


class VerdictChangeInput(serializers.Serializer):
    value = serializers.ChoiceField(choices=Verdict.Value.choices)
    corrected_label = _corrected_label()
    duration_ms = duration_field()
    key = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=100,
        default="",
        help_text="idempotency key of this change: the same key again changes nothing",
    )


# The schema of the bodies: a corrected label goes only with a miss, which one serializer
# cannot say, so the schema offers the two forms (the input serializers above check them).
class HitOrSkipVerdict(VerdictInput):
    value = serializers.ChoiceField(choices=["hit", "skip"])
    corrected_label = None


class MissVerdict(VerdictInput):
    value = serializers.ChoiceField(choices=["miss"])


class HitOrSkipChange(VerdictChangeInput):
    value = serializers.ChoiceField(choices=["hit", "skip"])
    corrected_label = None


class MissChange(VerdictChangeInput):
    value = serializers.ChoiceField(choices=["miss"])


VERDICT_BODY = PolymorphicProxySerializer(
    component_name="VerdictBody",
    serializers=[HitOrSkipVerdict, MissVerdict],
    resource_type_field_name=None,
)
VERDICT_CHANGE_BODY = PolymorphicProxySerializer(
    component_name="VerdictChangeBody",
    serializers=[HitOrSkipChange, MissChange],
    resource_type_field_name=None,
)


@extend_schema(
    request=VERDICT_BODY,
    responses={
        **responses({200: VerdictSerializer, 201: VerdictSerializer}, 400, 403, 404),
        409: VerdictConflictSerializer,
    },
)
@api_view(["POST"])
def verdict_create(request: Request) -> Response:
    """201 new verdict; 200 when the same `key` was already recorded (nothing changes); 409 with
    the existing verdict when the caller already judged the item, without one when the sample
    is closed; 400 bad input; 404 when the item (or the corrected label) is not one the caller
    works on."""
    data = VerdictInput(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    item, _ = get_sample_item_for_user(request.user, fields["sample_item"])
    verdict, created = verdict_record(
        sample_item=item,
        annotator=request.user,
        value=fields["value"],
        corrected_label=fields.get("corrected_label"),
        key=fields.get("key", ""),
        duration_ms=fields.get("duration_ms"),
    )
    return Response(verdict_json(verdict), status=201 if created else 200)


@extend_schema(methods=["GET"], responses=responses({200: VerdictSerializer}, 404))
@extend_schema(
    methods=["PATCH"],
    request=VERDICT_CHANGE_BODY,
    responses=responses({200: VerdictSerializer}, 400, 403, 404, 409),
)
@extend_schema(
    methods=["DELETE"],
    responses=responses({204: OpenApiResponse(description="undone")}, 403, 404, 409),
)
@api_view(["GET", "PATCH", "DELETE"])
def verdict_detail(request: Request, pk: int) -> Response:
    """One's own verdict: read, change (the same `key` again changes nothing) or delete it (409
    once the sample is closed)."""
    verdict, _ = get_own_verdict_for_user(request.user, pk)
    if request.method == "DELETE":
        verdict_undo(verdict=verdict)
        return Response(status=status.HTTP_204_NO_CONTENT)
    if request.method == "PATCH":
        data = VerdictChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        verdict = verdict_change(verdict=verdict, **data.validated_data)
    return Response(verdict_json(verdict))


@extend_schema(request=None, responses=responses({200: NextItemSerializer}, 403, 404, 409))
@api_view(["POST"])
def verdict_undo_view(request: Request, pk: int) -> Response:
    """Undo one's own verdict; answers the item again (leased back to the caller)."""
    verdict, _ = get_own_verdict_for_user(request.user, pk)
    item = verdict_undo(verdict=verdict)
    item = SampleItem.objects.select_related(
        "sample__run__taxonomy", "prediction__item", "prediction__label"
    ).get(pk=item.pk)
    return Response(NextItemSerializer(next_item_json(item, request=request)).data)
