"""`GET /api/runs/{id}/suspects/`: the run's items ranked by how likely its label is wrong, with
the reasons, and the probe run whose view joins the score (docs/architecture.md#suspects).
Leads and admins of the run's dataset; annotators answer 403 (probabilities would sway their
verdicts), other datasets 404."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role
from annotate.datasets.api import item_thumbnail_url
from annotate.datasets.models import Role
from annotate.rest import NO_NUL, responses
from annotate.validation.suspects import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Suspect,
    parse_suspects_query,
    suspects_page,
)
from classifier.selectors import get_run_for_user

SUSPECTS_LEADS_ONLY = (
    "Only leads and admins of this dataset see likely errors: annotators judge without seeing "
    "probabilities."
)


class ReasonSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "low_margin", "margin", "image_caption_disagree", "probe_disagrees", "verdict_wrong"
        ]
    )  # fmt: skip
    text = serializers.CharField()
    label = serializers.CharField(
        required=False, help_text="probe_disagrees only: the probe's top label's key"
    )
    label_name = serializers.CharField(required=False, help_text="probe_disagrees only")
    probability = serializers.FloatField(
        required=False, help_text="probe_disagrees only: the probe's top probability"
    )


class SuspectSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    prediction = serializers.IntegerField()
    external_id = serializers.CharField()
    label = serializers.CharField(source="label_key", help_text="the run's label's key")
    label_name = serializers.CharField()
    probability = serializers.FloatField(help_text="the run's top probability")
    second_probability = serializers.FloatField(help_text="the second label's (0 when none)")
    score = serializers.FloatField(help_text="0..1, higher = more likely mislabelled")
    probe_probability = serializers.FloatField(
        allow_null=True,
        help_text="the probe's probability of the run's label (null when the run has no probe)",
    )
    reasons = ReasonSerializer(many=True)
    thumbnail_url = serializers.SerializerMethodField()

    def get_thumbnail_url(self, row: Suspect) -> str:
        return item_thumbnail_url(row.item, self.context.get("request"))


class SuspectsSerializer(serializers.Serializer):
    probe_run = serializers.IntegerField(
        allow_null=True, help_text="the probe run whose view joins the score (null: none)"
    )
    results = SuspectSerializer(many=True)


PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"how many (default {DEFAULT_LIMIT})",
    ),
    OpenApiParameter(
        "label",
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL},
        description="only items the run gave this label (key or name)",
    ),
]


@extend_schema(parameters=PARAMETERS, responses=responses({200: SuspectsSerializer}, 400, 403, 404))
@api_view(["GET"])
def run_suspects(request: Request, pk: int) -> Response:
    """The run's likeliest label errors, best first, with the reasons; items whose label a
    verdict confirms are left out."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, SUSPECTS_LEADS_ONLY)
    page = suspects_page(run=run, query=parse_suspects_query(request.query_params))
    body = {"probe_run": page.probe.pk if page.probe else None, "results": page.rows}
    return Response(SuspectsSerializer(body, context={"request": request}).data)
