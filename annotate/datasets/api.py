"""REST API for datasets and their items (read-only; imports go through commands/console).

Every queryset is filtered by membership: another dataset's id answers 404."""

from django.http import HttpRequest
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import role_on, roles_by_dataset
from annotate.datasets.images import DEFAULT_THUMBNAIL_SIZE
from annotate.datasets.models import Dataset, Item, Role
from annotate.datasets.selectors import (
    datasets_for_user,
    get_dataset_for_user,
    items_of_dataset,
)
from annotate.rest import OptionalCharField, absolute_url, query_params, responses


class DatasetSerializer(serializers.ModelSerializer):
    item_count = serializers.IntegerField(read_only=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "name", "kind", "item_count", "role", "created", "updated"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, dataset: Dataset) -> str | None:
        roles = self.context.get("roles")
        if roles is not None:
            return roles[dataset.pk]
        return role_on(self.context["request"].user, dataset)


def item_image_url(item_id: int, request: HttpRequest | None = None) -> str:
    """The item's image; absolute when a `request` is given (API answers)."""
    return absolute_url(request, reverse("item-image", args=[item_id]))


def item_thumbnail_url(
    item_id: int, request: HttpRequest | None = None, size: int = DEFAULT_THUMBNAIL_SIZE
) -> str:
    """The item's cached JPEG thumbnail; absolute when a `request` is given."""
    return absolute_url(request, reverse("item-thumbnail", args=[item_id]) + f"?size={size}")


class ItemSerializer(serializers.ModelSerializer):
    status_reason = OptionalCharField(help_text="why the image is not usable")
    image_format = OptionalCharField()
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "caption",
            "status",
            "status_reason",
            "width",
            "height",
            "image_format",
            "metadata",
            "image_url",
            "thumbnail_url",
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, item: Item) -> str | None:
        ok = item.status == Item.Status.OK
        return item_image_url(item.pk, self.context["request"]) if ok else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, item: Item) -> str | None:
        ok = item.status == Item.Status.OK
        return item_thumbnail_url(item.pk, self.context["request"]) if ok else None


class ItemQuery(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=Item.Status.choices, required=False, help_text="only items with this status"
    )


@extend_schema_view(
    list=extend_schema(responses=responses({200: DatasetSerializer(many=True)}, 400)),
    retrieve=extend_schema(responses=responses({200: DatasetSerializer}, 404)),
)
class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    """Datasets the caller is a member of (all of them for admins)."""

    serializer_class = DatasetSerializer

    def get_queryset(self):
        return datasets_for_user(self.request.user)

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if self.action == "list":
            context["roles"] = roles_by_dataset(self.request.user)
        return context

    @extend_schema(
        parameters=[ItemQuery],
        responses=responses({200: ItemSerializer(many=True)}, 400, 404),
    )
    @action(detail=True, methods=["get"], serializer_class=ItemSerializer)
    def items(self, request: Request, pk: str | None = None) -> Response:
        """The dataset's items, paginated (`?limit=&offset=`), optionally `?status=`."""
        dataset, _ = get_dataset_for_user(request.user, pk)
        status = query_params(ItemQuery, request).get("status")
        page = self.paginate_queryset(items_of_dataset(dataset, status=status))
        serializer = ItemSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)
