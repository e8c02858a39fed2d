"""The curated selection and its queued export (docs/architecture.md#curated-selection,
docs/architecture.md#curated-export):

- `GET /api/samples/{id}/selection/?threshold=T` or `?target_precision=P`
  (`&include_unvalidated=true`): the selection and its estimated precision;
- `POST /api/samples/{id}/exports/`: queue an export of it (202);
- `GET /api/exports/{id}/`: its progress, then its links; `.../file/` and `.../manifest/` the
  downloads once it succeeded (409 before).

Leads and admins of the sample's dataset only (annotators 403: live results would bias them;
other datasets 404). Thin: the computation is curation.selection_compute, the jobs curated_jobs.
"""

from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, renderer_classes
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.rest import (
    StrictBooleanField,
    StrictFloatField,
    StrictIntegerField,
    absolute_url,
    query_params,
    responses,
)
from annotate.validation import metrics
from annotate.validation.curated_export import FORMATS, MAX_EXCLUDE_SUSPECTS
from annotate.validation.curated_jobs import (
    EXPORT_LEADS_ONLY,
    MEDIA_TYPES,
    curated_export_request,
    export_download_name,
    export_error,
    export_file_path,
    export_percent,
    export_rule,
    get_export_for_lead,
)
from annotate.validation.curation import parse_rule, selection_compute
from annotate.validation.models import CuratedExport
from annotate.validation.selectors import get_sample_for_user
from annotate.validation.serializers import CuratedExportSerializer, SelectionSerializer

# ---------------------------------------------------------------- the selection


class SelectionQuery(serializers.Serializer):
    threshold = serializers.FloatField(required=False, min_value=0, max_value=1)
    target_precision = serializers.FloatField(required=False, min_value=0, max_value=1)
    include_unvalidated = serializers.BooleanField(required=False, default=False)


def _rule_form(name: str, description: str) -> dict:
    return {
        "type": "object",
        "properties": {
            name: {"type": "number", "minimum": 0, "maximum": 1, "description": description},
            "include_unvalidated": {
                "type": "boolean",
                "description": "include items of labels the sample cannot measure (default "
                "false); the estimate still covers the validated items only",
            },
        },
        "required": [name],
        "additionalProperties": False,
    }


# Exactly one of threshold and target_precision: query parameters cannot say that one by one,
# so the schema gives them as one exploded object parameter in two forms.
RULE_PARAMETER = OpenApiParameter(
    "rule",
    {
        "oneOf": [
            _rule_form("threshold", "one global θ: the run's items with p ≥ θ"),
            _rule_form(
                "target_precision",
                "per-label θ: the lowest θ (step 0.05) whose Wilson lower bound of the label's "
                "precision reaches this",
            ),
        ]
    },
    location=OpenApiParameter.QUERY,
    required=True,
    style="form",
    explode=True,
    description="`threshold=T` or `target_precision=P`, and `include_unvalidated`",
)


@extend_schema(
    parameters=[RULE_PARAMETER],
    responses=responses({200: SelectionSerializer}, 400, 403, 404, 409),
)
@api_view(["GET"])
def sample_selection(request: Request, pk: int) -> Response:
    """The run's items that a rule selects, from this balanced sample's verdicts: per label its
    threshold, items selected and precision (Wilson interval); the stratified precision of the
    whole selection with its 95 % bootstrap interval and the expected wrong labels. A targeted
    sample answers 409: it does not estimate precision."""
    sample = metrics.get_sample_for_lead(request.user, pk)
    query = query_params(SelectionQuery, request)
    rule = parse_rule(
        threshold=query.get("threshold"),
        target_precision=query.get("target_precision"),
        include_unvalidated=query.get("include_unvalidated", False),
    )
    selection = selection_compute(sample=sample, rule=rule)
    return Response(SelectionSerializer(selection.as_dict()).data)


# ---------------------------------------------------------------- the export


def _export_fields() -> dict:
    return {
        "include_unvalidated": StrictBooleanField(
            required=False, default=False,
            help_text="include items of labels the sample cannot measure",
        ),
        "format": serializers.ChoiceField(
            choices=CuratedExport.Format.choices, required=False, default="csv",
            help_text="csv, jsonl, or imagefolder (Hugging Face's layout, zipped)",
        ),
        "exclude_duplicates": StrictBooleanField(
            required=False, default=False,
            help_text="leave out near-duplicates of an exported item",
        ),
        "exclude_suspects": StrictIntegerField(
            required=False, default=0, min_value=0, max_value=MAX_EXCLUDE_SUSPECTS,
            help_text="leave out the N most likely label errors (0: none)",
        ),
    }  # fmt: skip


def _rule_input(name: str, field: str, help_text: str) -> type[serializers.Serializer]:
    attrs = {
        field: StrictFloatField(min_value=0, max_value=1, help_text=help_text),
        **_export_fields(),
    }
    return type(name, (serializers.Serializer,), attrs)


ThresholdExportInput = _rule_input(
    "ThresholdExportInput", "threshold", "one global θ: the run's items with p ≥ θ"
)
TargetExportInput = _rule_input(
    "TargetExportInput", "target_precision", "per-label thresholds reaching this precision"
)
EXPORT_BODY = PolymorphicProxySerializer(
    component_name="CuratedExportBody",
    serializers=[ThresholdExportInput, TargetExportInput],
    resource_type_field_name=None,
)


def _export_body(data) -> dict:
    """The body checked by the form it takes (threshold or target_precision): 400 otherwise."""
    if not isinstance(data, dict):
        raise serializers.ValidationError({"detail": "The body must be a JSON object."})
    # A key given as null counts as given, as the schema's forms say.
    has_threshold = "threshold" in data
    if has_threshold == ("target_precision" in data):
        raise serializers.ValidationError(
            {"threshold": ["Give exactly one of threshold and target_precision."]}
        )
    body = (ThresholdExportInput if has_threshold else TargetExportInput)(data=data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def export_json(export: CuratedExport, *, role: str | None, request: Request | None) -> dict:
    """The export as the API answers it (and the dashboard's fragment reads it)."""
    ready = export.status == CuratedExport.Status.SUCCEEDED and bool(export.file)
    urls = {
        key: absolute_url(request, reverse(name, args=[export.pk])) if ready else None
        for key, name in (("download_url", "api-export-file"),
                          ("manifest_url", "api-export-manifest"))
    }  # fmt: skip
    return CuratedExportSerializer(
        {
            "id": export.pk,
            "sample": export.sample_id,
            "run": export.sample.run_id,
            "status": export.status,
            "format": export.format,
            "rule": export_rule(export).as_dict(),
            "exclude_duplicates": bool(export.rule.get("exclude_duplicates", False)),
            "exclude_suspects": int(export.rule.get("exclude_suspects", 0)),
            "done": export.done,
            "total": export.total,
            "percent": export_percent(export),
            "manifest": export.manifest if ready else None,
            "error": export_error(export, role),
            "created": export.created,
            "started": export.started,
            "finished": export.finished,
            **urls,
        }
    ).data


@extend_schema(
    request=EXPORT_BODY,
    responses=responses({202: CuratedExportSerializer}, 400, 403, 404, 409),
)
@api_view(["POST"])
def sample_exports(request: Request, pk: int) -> Response:
    """Queue a curated export of the selection (the rule as the selection endpoint's, plus a
    format and exclusions): a worker writes it; poll `GET /api/exports/{id}/` until `status` is
    `succeeded`, then fetch `download_url`. The same request while one is queued or running
    answers that one."""
    sample, role = get_sample_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPORT_LEADS_ONLY)
    body = _export_body(request.data)
    rule = parse_rule(
        threshold=body.get("threshold"),
        target_precision=body.get("target_precision"),
        include_unvalidated=body["include_unvalidated"],
    )
    export = curated_export_request(
        sample=sample, rule=rule, fmt=body["format"],
        exclude_duplicates=body["exclude_duplicates"], exclude_suspects=body["exclude_suspects"],
        user=request.user,
    )  # fmt: skip
    return Response(
        export_json(export, role=role, request=request), status=status.HTTP_202_ACCEPTED
    )


@extend_schema(responses=responses({200: CuratedExportSerializer}, 403, 404))
@api_view(["GET"])
def export_detail(request: Request, pk: int) -> Response:
    """A curated export: `status` (queued, running, succeeded, failed), rows `done` of `total`,
    and once it succeeded its manifest and the download links."""
    export, role = get_export_for_lead(request.user, pk)
    return Response(export_json(export, role=role, request=request))


class _FileRenderer(BaseRenderer):
    """Lets a client ask for the file's type in Accept; the view answers the file itself."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return b"" if data is None else str(data).encode()


def _file_renderer(media_type: str, fmt: str) -> type[BaseRenderer]:
    return type(f"{fmt.title()}FileRenderer", (_FileRenderer,), {"media_type": media_type,
                                                                  "format": fmt})  # fmt: skip


FILE_RENDERERS = [_file_renderer(MEDIA_TYPES[fmt], fmt) for fmt in FORMATS]


@extend_schema(
    responses=responses(
        {(200, MEDIA_TYPES[fmt]): OpenApiTypes.BINARY for fmt in FORMATS}, 403, 404, 409
    ),
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, *FILE_RENDERERS])
def export_file(request: Request, pk: int) -> FileResponse:
    """The export's file as an attachment: CSV, JSON lines, or the imagefolder as a zip. 409
    until the export succeeded."""
    export, _role = get_export_for_lead(request.user, pk)
    path = export_file_path(export)
    return FileResponse(
        path.open("rb"),  # FileResponse closes it
        as_attachment=True,
        filename=export_download_name(export),
        content_type=MEDIA_TYPES[export.format],
    )


@extend_schema(responses=responses({200: OpenApiTypes.OBJECT}, 403, 404, 409))
@api_view(["GET"])
@renderer_classes([JSONRenderer])  # a browser's link asks for HTML first: still the JSON file
def export_manifest(request: Request, pk: int) -> Response:
    """The export's manifest as a JSON download: the run, the sample, the rule, the estimate,
    the date and the verdict counts, enough to reproduce it. 409 until the export succeeded."""
    export, _role = get_export_for_lead(request.user, pk)
    export_file_path(export)  # ready, or 409
    response = Response(export.manifest)
    name = f"sample-{export.sample_id}-curated-{export.pk}.manifest.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
