"""`GET /api/runs/{id}/items/`: the explorer's rows (docs/architecture.md#explorer). Leads
and admins of the run's dataset; annotators answer 403 (probabilities and verdicts would sway
their own verdicts), other datasets 404."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role
from annotate.datasets.api import item_image_url, item_thumbnail_url
from annotate.datasets.models import Role
from annotate.rest import MAX_ID, NO_NUL, absolute_url, responses
from annotate.validation.explorer import (
    MAX_LIMIT,
    ORDERS,
    VERDICTS,
    ExplorerPage,
    ExplorerRow,
    explore,
    parse_query,
)
from classifier.selectors import get_run_for_user

EXPLORER_LEADS_ONLY = (
    "Only leads and admins of this dataset explore runs: annotators judge without seeing "
    "probabilities or other people's verdicts."
)


class ExplorerRowSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    prediction = serializers.IntegerField()
    external_id = serializers.CharField()
    caption = serializers.CharField(allow_blank=True)
    label = serializers.CharField(source="label_key", help_text="the predicted label's key")
    label_name = serializers.CharField()
    probability = serializers.FloatField()
    image_probability = serializers.FloatField(allow_null=True, help_text="max P_img")
    text_probability = serializers.FloatField(allow_null=True, help_text="max P_txt")
    image_label = serializers.CharField(
        allow_null=True, help_text="name of the image-only top label (null when unknown)"
    )
    text_label = serializers.CharField(
        allow_null=True, help_text="name of the caption-only top label (null without caption)"
    )
    disagreement = serializers.BooleanField(help_text="image-only and caption-only top differ")
    thumbnail_url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    hits = serializers.IntegerField(help_text="hit verdicts on the item's sample items")
    misses = serializers.IntegerField(help_text="miss verdicts on the item's sample items")
    adjudicated = serializers.ChoiceField(
        choices=["hit", "miss"], allow_null=True, help_text="a lead's final say, if any"
    )

    def get_thumbnail_url(self, row: ExplorerRow) -> str:
        return item_thumbnail_url(row.item, self.context.get("request"))

    def get_image_url(self, row: ExplorerRow) -> str:
        return item_image_url(row.item, self.context.get("request"))


class ExplorerPageSerializer(serializers.Serializer):
    results = ExplorerRowSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="the next page; null on the last")
    seed = serializers.IntegerField(
        allow_null=True, help_text="the random order's seed (drawn when not given)"
    )


def _parameter(name: str, schema: dict, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, schema, description=description)


PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
PARAMETERS = [
    _parameter(
        "label",
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL},
        "a label of the run's taxonomy, by key or name",
    ),
    _parameter("min_probability", PROBABILITY, "top probability at least this"),
    _parameter("max_probability", PROBABILITY, "top probability at most this"),
    _parameter(
        "verdict",
        {"type": "string", "enum": list(VERDICTS)},
        "hit or miss (adjudication, else majority), none (no hit/miss verdict), disputed "
        "(at least one hit and one miss)",
    ),
    _parameter(
        "disagreement",
        {"type": "string", "enum": ["1", "0", "true", "false"]},
        "1: only items whose image-only and caption-only top labels differ",
    ),
    _parameter(
        "sample",
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "only this sample's items, and only its verdicts",
    ),
    _parameter(
        "order", {"type": "string", "enum": list(ORDERS)}, "default -probability (surest first)"
    ),
    _parameter(
        "seed",
        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        "the random order's seed (drawn and returned when not given)",
    ),
    _parameter(
        "cursor",
        {"type": "string", "minLength": 1, "maxLength": 400, "pattern": NO_NUL},
        "from the previous page's `next`",
    ),
    _parameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        f"rows per page (default 48); more than {MAX_LIMIT} gives {MAX_LIMIT}",
    ),
]


def page_json(page: ExplorerPage, request: Request, run_id: int) -> dict:
    next_url = None
    if page.next_params is not None:
        path = reverse("api-run-items", args=[run_id]) + "?" + urlencode(page.next_params)
        next_url = absolute_url(request, path)
    context = {"request": request}
    return ExplorerPageSerializer(
        {"results": page.rows, "next": next_url, "seed": page.seed}, context=context
    ).data


@extend_schema(
    parameters=PARAMETERS, responses=responses({200: ExplorerPageSerializer}, 400, 403, 404)
)
@api_view(["GET"])
def run_items(request: Request, pk: int) -> Response:
    """The run's predictions that pass the filters, a keyset page at a time (follow `next`)."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPLORER_LEADS_ONLY)
    page = explore(run=run, query=parse_query(request.query_params))
    return Response(page_json(page, request, run.pk))
