"""REST endpoints for samples, assignment and verdicts. Thin: input is checked by explicit
serializers, the work is done by `sampling`, `assignment` and `services`."""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, renderer_classes
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.csvexport import csv_text
from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.taxonomies.models import Label
from annotate.validation.assignment import (
    sample_item_next,
    sample_progress,
    samples_progress,
)
from annotate.validation.models import Sample, SampleItem, Verdict
from annotate.validation.sampling import MAX_CLASSES, MAX_PER_CLASS, SampleError, sample_draw
from annotate.validation.selectors import (
    get_sample_for_user,
    get_sample_item_for_user,
    samples_for_user,
)
from annotate.validation.services import (
    VerdictConflict,
    VerdictError,
    sample_set_status,
    verdict_change,
    verdict_record,
    verdict_undo,
)
from classifier.prompts import label_prompts
from classifier.selectors import get_run_for_user

# ---------------------------------------------------------------- representations


def image_url(item_id: int) -> str:
    return reverse("item-image", args=[item_id])


def thumbnail_url(item_id: int, size: int = 256) -> str:
    return reverse("item-thumbnail", args=[item_id]) + f"?size={size}"


def sample_json(sample: Sample, progress: dict | None = None) -> dict:
    return {
        "id": sample.pk,
        "run": sample.run_id,
        "dataset": sample.run.dataset_id,
        "taxonomy": sample.run.taxonomy_id,
        "classes": sample.classes,
        "per_class": sample.per_class,
        "seed": sample.seed,
        "redundancy": sample.redundancy,
        "overlap": sample.overlap,
        "min_probability": sample.min_probability,
        "exclude_previous": sample.exclude_previous,
        "blind": sample.blind,
        "status": sample.status,
        "created_by": sample.created_by.username if sample.created_by else None,
        "created": sample.created,
        "progress": progress if progress is not None else sample_progress(sample=sample),
    }


def samples_json(samples) -> list[dict]:
    samples = list(samples)
    progress = samples_progress(samples=samples)
    return [sample_json(sample, progress[sample.pk]) for sample in samples]


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


def next_item_json(item: SampleItem, lease_expires=None) -> dict:
    """What an annotator sees of an item: never other people's verdicts; no probability when
    the sample is blind."""
    prediction = item.prediction
    label = prediction.label
    return {
        "id": item.pk,
        "sample": item.sample_id,
        "position": item.position,
        "item": prediction.item_id,
        "external_id": prediction.item.external_id,
        "caption": prediction.item.caption,
        "label": label_json(label),
        "prompt": label_prompts(item.sample.run, label)[0],
        "prompts": label_prompts(item.sample.run, label),
        "probability": None if item.sample.blind else prediction.probability,
        "image_url": image_url(prediction.item_id),
        "thumbnail_url": thumbnail_url(prediction.item_id),
        "suggestions": [label_json(s) for s in suggestions(item)],
        "lease_expires": lease_expires,
    }


def verdict_json(verdict: Verdict) -> dict:
    return {
        "id": verdict.pk,
        "sample_item": verdict.sample_item_id,
        "annotator": verdict.annotator.username,
        "value": verdict.value,
        "corrected_label": verdict.corrected_label_id,
        "corrected_label_key": verdict.corrected_label.key if verdict.corrected_label else None,
        "key": verdict.key,
        "duration_ms": verdict.duration_ms,
        "created": verdict.created,
        "updated": verdict.updated,
    }


# ---------------------------------------------------------------- samples


class SampleInput(serializers.Serializer):
    classes = serializers.IntegerField(min_value=1, max_value=MAX_CLASSES, default=10)
    per_class = serializers.IntegerField(min_value=1, max_value=MAX_PER_CLASS, default=100)
    seed = serializers.IntegerField(
        required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1
    )
    redundancy = serializers.IntegerField(min_value=1, max_value=20, default=1)
    overlap = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.1)
    min_probability = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    exclude_previous = serializers.BooleanField(default=False)
    blind = serializers.BooleanField(default=False)


LEADS_ONLY = "Only leads and admins of this dataset may do this."


@extend_schema(request=SampleInput, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
@api_view(["GET", "POST"])
def run_samples(request: Request, pk: int) -> Response:
    """GET: the run's samples. POST: draw a new sample (leads and admins of the dataset)."""
    run, role = get_run_for_user(request.user, pk)
    if request.method == "GET":
        return Response(samples_json(run.samples.select_related("run", "created_by")))
    require_role(role, Role.LEAD, LEADS_ONLY)
    data = SampleInput(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        sample = sample_draw(run=run, created_by=request.user, **data.validated_data)
    except SampleError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(sample_json(sample), status=status.HTTP_201_CREATED)


@extend_schema(operation_id="samples_list", responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def sample_list(request: Request) -> Response:
    samples = samples_for_user(request.user).select_related("run", "created_by")[:200]
    return Response(samples_json(samples))


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def sample_detail(request: Request, pk: int) -> Response:
    return Response(sample_json(get_sample_for_user(request.user, pk)[0]))


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def sample_items(request: Request, pk: int) -> Response:
    """The frozen item list; `verdicts` (how many an item has) only for leads."""
    sample, role = get_sample_for_user(request.user, pk)
    lead = role_at_least(role, Role.LEAD)
    items = sample.items.select_related("prediction__item", "prediction__label").order_by(
        "position"
    )
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(items, request)
    hide_probability = sample.blind and not lead
    rows = []
    for si in page:
        row = {
            "id": si.pk,
            "position": si.position,
            "external_id": si.prediction.item.external_id,
            "label": si.prediction.label.key,
            "probability": None if hide_probability else si.prediction.probability,
            "wanted_verdicts": si.wanted_verdicts,
        }
        if lead:
            row["verdicts"] = si.verdict_count
        rows.append(row)
    return paginator.get_paginated_response(rows)


@extend_schema(
    parameters=[OpenApiParameter("exclude", str, description="item ids, comma separated")],
    responses={200: OpenApiTypes.OBJECT, 204: None},
)
@api_view(["GET"])
def sample_next(request: Request, pk: int) -> Response:
    """Lease and return the caller's next item; 204 when nothing is left for them.
    `?exclude=1,2` skips items the caller already holds (the page preloads one ahead)."""
    sample, _ = get_sample_for_user(request.user, pk)
    try:
        exclude = [int(x) for x in request.query_params.get("exclude", "").split(",") if x]
    except ValueError:
        return Response({"detail": "exclude must be item ids"}, status=400)
    item = sample_item_next(sample=sample, annotator=request.user, exclude=exclude[:50])
    if item is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    item.sample = sample  # with its run and taxonomy already loaded
    return Response(next_item_json(item))


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        rows = data if isinstance(data, list) else [data]
        if not rows or not isinstance(rows[0], dict):
            return b""
        return csv_text(list(rows[0]), rows).encode()  # the one writer: no formula cells


EXPORT_FIELDS = (
    "id",
    "sample_item",
    "position",
    "external_id",
    "label",
    "probability",
    "annotator",
    "value",
    "corrected_label",
    "duration_ms",
    "created",
    "updated",
)


@extend_schema(
    parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, CSVRenderer, BrowsableAPIRenderer])
def sample_verdicts(request: Request, pk: int) -> Response:
    """All verdicts of a sample, `?format=csv` or `?format=json` (leads and admins)."""
    sample, role = get_sample_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    verdicts = (
        Verdict.objects.filter(sample_item__sample=sample)
        .select_related(
            "annotator",
            "corrected_label",
            "sample_item__prediction__item",
            "sample_item__prediction__label",
        )  # fmt: skip
        .order_by("sample_item__position", "id")
    )
    rows = [
        {
            "id": v.pk,
            "sample_item": v.sample_item_id,
            "position": v.sample_item.position,
            "external_id": v.sample_item.prediction.item.external_id,
            "label": v.sample_item.prediction.label.key,
            "probability": v.sample_item.prediction.probability,
            "annotator": v.annotator.username,
            "value": v.value,
            "corrected_label": v.corrected_label.key if v.corrected_label else "",
            "duration_ms": v.duration_ms,
            "created": v.created.isoformat(),
            "updated": v.updated.isoformat(),
        }
        for v in verdicts
    ]
    response = Response(rows)
    if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
        response["Content-Disposition"] = f'attachment; filename="sample-{sample.pk}-verdicts.csv"'
    return response


@extend_schema(request=None, responses=OpenApiTypes.OBJECT)
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


class VerdictInput(serializers.Serializer):
    sample_item = serializers.IntegerField()
    value = serializers.CharField(max_length=10)
    corrected_label = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=200
    )
    key = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    duration_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class VerdictChangeInput(serializers.Serializer):
    value = serializers.CharField(max_length=10)
    corrected_label = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=200
    )
    duration_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0)


def _conflict(exc: VerdictConflict) -> Response:
    return Response(
        {"detail": str(exc), "verdict": verdict_json(exc.verdict)}, status=status.HTTP_409_CONFLICT
    )


@extend_schema(
    request=VerdictInput,
    responses=dict.fromkeys((200, 201, 400, 404, 409), OpenApiTypes.OBJECT),
)
@api_view(["POST"])
def verdict_create(request: Request) -> Response:
    """201 new verdict; 200 when the same `key` was already recorded (nothing changes); 409 with
    the existing verdict when the caller already judged the item; 400 bad input; 404 when the
    item is not in a dataset the caller works on."""
    data = VerdictInput(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    item, _ = get_sample_item_for_user(request.user, fields["sample_item"])
    try:
        verdict, created = verdict_record(
            sample_item=item,
            annotator=request.user,
            value=fields["value"],
            corrected_label=fields.get("corrected_label"),
            key=fields.get("key", ""),
            duration_ms=fields.get("duration_ms"),
        )
    except VerdictError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    except VerdictConflict as exc:
        return _conflict(exc)
    return Response(verdict_json(verdict), status=201 if created else 200)


def _own_verdict(request: Request, pk: int) -> Verdict:
    """Only one's own verdicts: everybody else's answer 404."""
    verdict = (
        Verdict.objects.select_related("sample_item__sample__run", "annotator", "corrected_label")
        .filter(pk=pk, annotator=request.user)
        .first()
    )
    if verdict is None:
        raise Http404("No such verdict")
    get_sample_item_for_user(request.user, verdict.sample_item_id)  # still a member?
    return verdict


@extend_schema(request=VerdictChangeInput, responses=OpenApiTypes.OBJECT)
@api_view(["GET", "PATCH", "DELETE"])
def verdict_detail(request: Request, pk: int) -> Response:
    verdict = _own_verdict(request, pk)
    try:
        if request.method == "DELETE":
            verdict_undo(verdict=verdict)
            return Response(status=status.HTTP_204_NO_CONTENT)
        if request.method == "PATCH":
            data = VerdictChangeInput(data=request.data)
            data.is_valid(raise_exception=True)
            verdict = verdict_change(verdict=verdict, **data.validated_data)
    except VerdictError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(verdict_json(verdict))


@extend_schema(request=None, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
def verdict_undo_view(request: Request, pk: int) -> Response:
    """Undo one's own verdict; answers the item again (leased back to the caller)."""
    verdict = _own_verdict(request, pk)
    try:
        item = verdict_undo(verdict=verdict)
    except VerdictError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    item = SampleItem.objects.select_related(
        "sample__run__taxonomy", "prediction__item", "prediction__label"
    ).get(pk=item.pk)
    return Response(next_item_json(item))
