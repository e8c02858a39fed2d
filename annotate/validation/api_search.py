"""`POST /api/runs/{id}/search/`: the run's items nearest to a text or to an item's image
(docs/architecture.md#search). Leads and admins of the run's dataset, as the explorer;
annotators 403, other datasets 404. A worker of the `search` queue answers; none within
SIEVE_SEARCH_TIMEOUT seconds is a 503."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role
from annotate.datasets.api import item_thumbnail_url
from annotate.datasets.models import Role
from annotate.rest import (
    MAX_ID,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    absolute_url,
    responses,
)
from annotate.validation.api_explorer import EXPLORER_LEADS_ONLY
from annotate.validation.searching import (
    DEFAULT_K,
    MAX_K,
    MAX_TEXT,
    SearchAnswer,
    SearchHit,
)
from annotate.validation.searching import (
    run_search as search_service,
)
from classifier.selectors import get_run_for_user


def _k() -> StrictIntegerField:
    return StrictIntegerField(
        required=False, default=DEFAULT_K, min_value=1, max_value=MAX_K,
        help_text=f"how many items (default {DEFAULT_K})",
    )  # fmt: skip


class TextSearchInput(serializers.Serializer):
    text = StrictCharField(
        min_length=1, max_length=MAX_TEXT, help_text='what to look for: "people eating pizza"'
    )
    k = _k()
    template = StrictBooleanField(
        required=False, default=False,
        help_text="put the text in the run's prompt template(s) first, as its labels are",
    )  # fmt: skip


class ItemSearchInput(serializers.Serializer):
    item = StrictIntegerField(
        min_value=1, max_value=MAX_ID, help_text="more like this item (of the run's dataset)"
    )
    k = _k()


SEARCH_BODY = PolymorphicProxySerializer(
    component_name="SearchBody",
    serializers=[TextSearchInput, ItemSearchInput],
    resource_type_field_name=None,
)


class SearchHitSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    external_id = serializers.CharField()
    caption = serializers.CharField(allow_blank=True)
    score = serializers.FloatField(help_text="cosine similarity to the query, -1 to 1")
    label = serializers.CharField(
        source="label_key", allow_null=True, help_text="the run's predicted label's key"
    )
    label_name = serializers.CharField(allow_null=True)
    probability = serializers.FloatField(allow_null=True, help_text="the run's top probability")
    thumbnail_url = serializers.SerializerMethodField()
    item_url = serializers.SerializerMethodField(help_text="the item page")

    def get_thumbnail_url(self, hit: SearchHit) -> str:
        return item_thumbnail_url(hit.item, self.context.get("request"))

    def get_item_url(self, hit: SearchHit) -> str:
        path = reverse("item-detail", args=[hit.item]) + f"?run={self.context['run_id']}"
        return absolute_url(self.context.get("request"), path)


class SearchAnswerSerializer(serializers.Serializer):
    results = SearchHitSerializer(many=True, source="hits")
    exact = serializers.BooleanField(help_text="exact search (false: the approximate index)")
    took_ms = serializers.FloatField(help_text="the whole search as this endpoint saw it")
    search_ms = serializers.FloatField(help_text="the nearest-neighbour search in the worker")
    worker_ms = serializers.FloatField(
        help_text="all the worker did: cache lookup, text encoding, search"
    )
    items = serializers.IntegerField(help_text="embedded items searched")


def _body(data) -> dict:
    """The body checked by the form it takes (text or item): 400 otherwise."""
    if not isinstance(data, dict):
        raise serializers.ValidationError({"detail": "The body must be a JSON object."})
    has_text, has_item = data.get("text") is not None, data.get("item") is not None
    if has_text == has_item:
        raise serializers.ValidationError({"text": ["Give either `text` or `item`, not both."]})
    serializer = (TextSearchInput if has_text else ItemSearchInput)(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@extend_schema(
    request=SEARCH_BODY,
    responses=responses({200: SearchAnswerSerializer}, 400, 403, 404, 409, 503),
)
@api_view(["POST"])
def run_search(request: Request, pk: int) -> Response:
    """The k items whose image embeddings are nearest (cosine) to the text, encoded by the
    run's CLIP text tower, or to an item's image embedding ("more like this": the item itself
    comes first), with the run's prediction for each."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPLORER_LEADS_ONLY)
    body = _body(request.data)
    answer: SearchAnswer = search_service(
        run=run, text=body.get("text"), item_id=body.get("item"), k=body["k"],
        template=body.get("template", False),
    )  # fmt: skip
    context = {"request": request, "run_id": run.pk}
    return Response(SearchAnswerSerializer(answer, context=context).data)
