"""REST API for datasets and their items (read-only; imports go through commands/console).

Every queryset is filtered by membership: another dataset's id answers 404."""

from collections import defaultdict
from collections.abc import Mapping

from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import AnyUser, is_global_admin, role_on
from annotate.datasets.models import Dataset, Item, Membership, Role
from annotate.datasets.selectors import (
    datasets_for_user,
    get_dataset_for_user,
    items_of_dataset,
)
from annotate.rest import OptionalCharField, query_params, responses


def dataset_roles(user: AnyUser) -> Mapping[int, str]:
    """{dataset id: the user's role} for every dataset they may see, in one query."""
    if is_global_admin(user):
        return defaultdict(lambda: Role.ADMIN)
    return dict(Membership.objects.filter(user=user).values_list("dataset_id", "role"))


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

    def _url(self, name: str, item: Item) -> str | None:
        if item.status != Item.Status.OK:
            return None
        return self.context["request"].build_absolute_uri(reverse(name, args=[item.pk]))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, item: Item) -> str | None:
        return self._url("item-image", item)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, item: Item) -> str | None:
        return self._url("item-thumbnail", item)


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
            context["roles"] = dataset_roles(self.request.user)  # not one query per row
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
