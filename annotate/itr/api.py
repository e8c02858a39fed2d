"""REST endpoints of ITR relabelling (docs/architecture.md#itr): items, the review queue,
reviews, decisions, the summary and the exports. Thin: input is checked by the serializers of
serializers.py, the work is done by services.py, summary.py and exports.py, and every object
comes through a selector, so other datasets answer 404. The lead's queue and comments are in
api_lead.py."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, renderer_classes
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.itr import exports
from annotate.itr.models import ItrDecision, ItrItem, ItrReview
from annotate.itr.selectors import (
    get_itr_dataset_for_user,
    get_itr_item_for_user,
    get_own_review_for_user,
    itr_items,
    own_reviews,
)
from annotate.itr.serializers import (
    DecisionInput,
    ItrDecisionSerializer,
    ItrItemSerializer,
    ItrReviewSerializer,
    ReviewInput,
    SummarySerializer,
)
from annotate.itr.services import (
    decision_record,
    decision_withdraw,
    review_next,
    review_record,
    review_undo,
)
from annotate.itr.summary import itr_summary
from annotate.rest import (
    ExcludeQuery,
    PageQuery,
    exclude_parameter,
    page_of,
    paginate,
    query_params,
    responses,
)

LEADS_ONLY = "Only leads and admins of this dataset may do this."


def item_json(item: ItrItem, request: Request, *, lead: bool = False) -> dict:
    """One item as `ItrItemSerializer` answers it, with the caller's review."""
    context = {"request": request, "lead": lead, "reviews": own_reviews(request.user, [item])}
    return ItrItemSerializer(item, context=context).data


# ---------------------------------------------------------------- items


class ItemsQuery(serializers.Serializer):
    split = serializers.ChoiceField(choices=ItrItem.Split.choices, required=False)
    status = serializers.ChoiceField(
        choices=ItrItem.Status.choices, required=False, help_text="leads only"
    )
    listed = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="leads only"
    )
    changed = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="final labels differ from the published ones (leads only)",
    )


LEAD_FILTERS = ("status", "listed", "changed")


@extend_schema(
    operation_id="itr_items_list",
    parameters=[ItemsQuery, PageQuery],
    responses=responses({200: page_of(ItrItemSerializer)}, 400, 403, 404),
)
@api_view(["GET"])
def item_list(request: Request, pk: int) -> Response:
    """The dataset's ITR items in row order, each with the caller's own review. Leads also get
    the consensus state, the final labels and the imported list's labels, and may filter on
    them (`status`, `listed`, `changed`; 403 for reviewers)."""
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    query = query_params(ItemsQuery, request)
    lead = role_at_least(role, Role.LEAD)
    if any(query.get(name) is not None for name in LEAD_FILTERS):
        require_role(role, Role.LEAD, LEADS_ONLY)
    items = itr_items(dataset, query).select_related("item").order_by("row")

    def serialize(page: list[ItrItem]) -> list:
        context = {"request": request, "lead": lead, "reviews": own_reviews(request.user, page)}
        return ItrItemSerializer(page, many=True, context=context).data

    return paginate(request, items, serialize)


@extend_schema(operation_id="itr_item_retrieve", responses=responses({200: ItrItemSerializer}, 404))
@api_view(["GET"])
def item_detail(request: Request, pk: int) -> Response:
    """One item with the caller's own review (and, for leads, its consensus state)."""
    item, role = get_itr_item_for_user(request.user, pk)
    return Response(item_json(item, request, lead=role_at_least(role, Role.LEAD)))


@extend_schema(
    parameters=[exclude_parameter()],
    responses=responses(
        {200: ItrItemSerializer, 204: OpenApiResponse(description="nothing left for you")},
        400,
        404,
    ),
)
@api_view(["GET"])
def item_next(request: Request, pk: int) -> Response:
    """Lease and return the caller's next test item to review (the imported list's items
    first, then the likeliest errors, then by row); 204 when every item has its quorum or the
    caller's review. `?exclude=1,2` skips items the caller already holds (the page preloads
    one ahead). Reviewers' view: no consensus state, whatever the caller's role."""
    dataset, _ = get_itr_dataset_for_user(request.user, pk)
    exclude = query_params(ExcludeQuery, request).get("exclude", [])
    item = review_next(dataset=dataset, reviewer=request.user, exclude=exclude)
    if item is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(item_json(item, request))


# ---------------------------------------------------------------- reviews


class ReviewsQuery(serializers.Serializer):
    dataset = serializers.IntegerField(min_value=1, required=False, help_text="an ITR dataset")


@extend_schema(
    methods=["GET"],
    operation_id="itr_reviews_list",
    parameters=[ReviewsQuery, PageQuery],
    responses=responses({200: page_of(ItrReviewSerializer)}, 400, 404),
)
@extend_schema(
    methods=["POST"],
    request=ReviewInput,
    responses=responses({200: ItrReviewSerializer, 201: ItrReviewSerializer}, 400, 404, 409),
)
@api_view(["GET", "POST"])
def reviews(request: Request) -> Response:
    """GET: the caller's own reviews, newest first (`?dataset=ID` for one dataset).

    POST: review an item. 201 for a new review; 200 when the caller had already reviewed the
    item (their review is updated: one vote per reviewer) or when the same `key` was already
    recorded for this item (nothing changes); 409 when the key was used for another item;
    400 for bad labels or a missing reason (required when the labels differ from the
    published ones); 404 for an item of a dataset the caller is not a member of."""
    if request.method == "GET":
        return _own_reviews_page(request)
    data = ReviewInput(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    item, _ = get_itr_item_for_user(request.user, fields.pop("item"))
    review, created = review_record(item=item, reviewer=request.user, **fields)
    return Response(ItrReviewSerializer(review).data, status=201 if created else 200)


def _own_reviews_page(request: Request) -> Response:
    query = query_params(ReviewsQuery, request)
    rows = ItrReview.objects.filter(reviewer=request.user.pk)
    if "dataset" in query:
        dataset, _ = get_itr_dataset_for_user(request.user, query["dataset"])
        rows = rows.filter(item__dataset=dataset)
    else:
        rows = rows.filter(item__dataset__memberships__user=request.user.pk)
    rows = rows.select_related("reviewer").order_by("-id")
    return paginate(request, rows, lambda page: ItrReviewSerializer(page, many=True).data)


@extend_schema(request=None, responses=responses({200: ItrItemSerializer}, 404))
@api_view(["POST"])
def review_undo_view(request: Request, pk: int) -> Response:
    """Undo one's own review: it is deleted and the item is leased back to the caller;
    answers the item (404 for anybody else's review)."""
    review, _ = get_own_review_for_user(request.user, pk)
    item = review_undo(review=review)
    item = ItrItem.objects.select_related("item").get(pk=item.pk)
    return Response(item_json(item, request))


# ---------------------------------------------------------------- decisions


@extend_schema(
    request=DecisionInput,
    responses=responses({200: ItrDecisionSerializer, 201: ItrDecisionSerializer}, 400, 403, 404),
)
@api_view(["POST"])
def decision_create(request: Request) -> Response:
    """A lead's decision on an item, overriding the reviewers' consensus: 201 new, 200 when it
    replaces an earlier decision; the note is required. 403 for reviewers, 404 for
    non-members."""
    data = DecisionInput(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    item, role = get_itr_item_for_user(request.user, fields.pop("item"))
    require_role(role, Role.LEAD, LEADS_ONLY)
    decision, created = decision_record(item=item, lead=request.user, **fields)
    return Response(ItrDecisionSerializer(decision).data, status=201 if created else 200)


@extend_schema(methods=["GET"], responses=responses({200: ItrDecisionSerializer}, 403, 404))
@extend_schema(methods=["DELETE"], responses=responses({200: ItrItemSerializer}, 403, 404))
@api_view(["GET", "DELETE"])
def decision_detail(request: Request, pk: int) -> Response:
    """The decision on item `pk` (leads): read it, or withdraw it (DELETE answers the item,
    back to its consensus). 404 when the item has no decision."""
    item, role = get_itr_item_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    decision = ItrDecision.objects.filter(item=item).select_related("decided_by").first()
    if decision is None:
        raise Http404("This item has no decision.")
    if request.method == "GET":
        return Response(ItrDecisionSerializer(decision).data)
    decision_withdraw(item=item)
    item = ItrItem.objects.select_related("item").get(pk=item.pk)
    return Response(item_json(item, request, lead=True))


# ---------------------------------------------------------------- summary and exports


@extend_schema(responses=responses({200: SummarySerializer}, 403, 404))
@api_view(["GET"])
def summary(request: Request, pk: int) -> Response:
    """Progress, changes by kind, agreement among reviewers (Krippendorff's alpha per task),
    the label distribution and Spearman's rho between the model's similarity and the category
    score, before and after correction; per reviewer, agreement with the final labels. Leads
    and admins (live results would bias reviewers)."""
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    return Response(SummarySerializer(itr_summary(dataset)).data)


class _TextRenderer(BaseRenderer):
    """Lets DRF accept `?format=csv` / `?format=list`; the export view answers the file
    itself (an error is rendered as JSON by the error handler)."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return str(data).encode()


class CSVRenderer(_TextRenderer):
    media_type = "text/csv"
    format = "csv"


class ListRenderer(_TextRenderer):
    media_type = "text/plain"
    format = "list"


class ExportQuery(serializers.Serializer):
    set = serializers.ChoiceField(choices=exports.SETS, help_text=exports.SETS_HELP)
    format = serializers.ChoiceField(
        choices=exports.FORMATS,
        required=False,
        help_text="`list` (changes only, the default there) or `csv` (the default otherwise)",
    )


@extend_schema(
    parameters=[ExportQuery],
    responses=responses(
        {(200, "text/csv"): OpenApiTypes.STR, (200, "text/plain"): OpenApiTypes.STR},
        400,
        403,
        404,
    ),
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, CSVRenderer, ListRenderer, BrowsableAPIRenderer])
def export(request: Request, pk: int) -> HttpResponse:
    """The corrected test set (`set=corrected`), the test set without the changed items
    (`removed`) or the changes (`changes`, in the published list's format, or per item with
    `format=csv`). Leads and admins, as the verdict export."""
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    query = query_params(ExportQuery, request)
    result = exports.itr_export(dataset, query["set"], query.get("format"))
    response = HttpResponse(result.text, content_type=f"{result.media_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


urlpatterns: list = [
    path("itr/<int:pk>/items/", item_list, name="api-itr-items"),
    path("itr/<int:pk>/next/", item_next, name="api-itr-next"),
    path("itr/items/<int:pk>/", item_detail, name="api-itr-item"),
    path("itr/reviews/", reviews, name="api-itr-reviews"),
    path("itr/reviews/<int:pk>/undo/", review_undo_view, name="api-itr-review-undo"),
    path("itr/decisions/", decision_create, name="api-itr-decisions"),
    path("itr/decisions/<int:pk>/", decision_detail, name="api-itr-decision"),
    path("itr/<int:pk>/summary/", summary, name="api-itr-summary"),
    path("itr/<int:pk>/export/", export, name="api-itr-export"),
]
