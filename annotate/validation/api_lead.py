"""REST endpoints of the lead's work on a sample (docs/architecture.md#adjudication): the
disagreements and the adjudications that settle them. Thin: the list is
`metrics.disagreements`, the decisions `services.adjudication_record` and
`services.adjudication_withdraw`, the same functions as the lead's page (views_lead.py).

Leads and admins of the sample's dataset only: annotators get 403 (they know the sample, and
must not see the others' verdicts while they judge), everybody else 404."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.rest import (
    IdOrNameField,
    PageQuery,
    StrictCharField,
    StrictIntegerField,
    page_of,
    paginate,
    query_params,
    responses,
)
from annotate.validation import metrics
from annotate.validation.models import Adjudication
from annotate.validation.selectors import (
    ADJUDICATION_LEADS_ONLY,
    get_adjudication_for_lead,
    get_sample_item_for_user,
)
from annotate.validation.serializers import AdjudicationSerializer, DisagreementSerializer
from annotate.validation.services import MAX_NOTE, adjudication_record, adjudication_withdraw

# ---------------------------------------------------------------- input


class AdjudicationInput(serializers.Serializer):
    sample_item = StrictIntegerField(min_value=1)
    value = serializers.ChoiceField(choices=Adjudication.Value.choices)
    corrected_label = IdOrNameField(
        required=False, allow_null=True, help_text="the right label of a miss: id or key"
    )
    note = StrictCharField(max_length=MAX_NOTE, help_text="why (required)")


# The schema of the body: a corrected label goes only with a miss (as for verdicts, api.py).
class HitAdjudication(AdjudicationInput):
    value = serializers.ChoiceField(choices=["hit"])
    corrected_label = None


class MissAdjudication(AdjudicationInput):
    value = serializers.ChoiceField(choices=["miss"])


ADJUDICATION_BODY = PolymorphicProxySerializer(
    component_name="AdjudicationBody",
    serializers=[HitAdjudication, MissAdjudication],
    resource_type_field_name=None,
)


class DisagreementsQuery(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=metrics.DISAGREEMENT_STATUSES,
        required=False,
        help_text="open: not adjudicated yet; decided: adjudicated; all (default)",
    )


# ---------------------------------------------------------------- endpoints


@extend_schema(
    parameters=[DisagreementsQuery, PageQuery],
    responses=responses({200: page_of(DisagreementSerializer)}, 400, 403, 404),
)
@api_view(["GET"])
def sample_disagreements(request: Request, pk: int) -> Response:
    """The sample's items whose annotators disagree (a hit and a miss, or different corrected
    labels) or that the lead adjudicated, in sample order, each with every verdict side by
    side and the adjudication. Leads and admins."""
    sample = metrics.get_sample_for_lead(request.user, pk)
    status_filter = query_params(DisagreementsQuery, request).get("status", "all")
    rows = metrics.disagreements(sample=sample, status=status_filter)
    context = {"request": request}
    return paginate(
        request, rows, lambda page: DisagreementSerializer(page, many=True, context=context).data
    )


@extend_schema(
    request=ADJUDICATION_BODY,
    responses=responses({200: AdjudicationSerializer, 201: AdjudicationSerializer}, 400, 403, 404),
)
@api_view(["POST"])
def adjudication_create(request: Request) -> Response:
    """The lead's decision on a sample item, overriding the annotators' majority in every
    table: 201 new; 200 when it replaces the item's decision, or repeats it (then nothing
    changes). The note is required; a corrected label goes only with a miss. Closed samples
    take decisions too. 403 for annotators, 404 for items (or labels) of other datasets."""
    data = AdjudicationInput(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    item, role = get_sample_item_for_user(request.user, fields.pop("sample_item"))
    require_role(role, Role.LEAD, ADJUDICATION_LEADS_ONLY)
    adjudication, created = adjudication_record(sample_item=item, lead=request.user, **fields)
    return Response(AdjudicationSerializer(adjudication).data, status=201 if created else 200)


WITHDRAWN = OpenApiResponse(description="withdrawn: the item goes back to its majority")


@extend_schema(methods=["GET"], responses=responses({200: AdjudicationSerializer}, 403, 404))
@extend_schema(methods=["DELETE"], responses=responses({204: WITHDRAWN}, 403, 404))
@api_view(["GET", "DELETE"])
def adjudication_detail(request: Request, pk: int) -> Response:
    """One adjudication: read it, or withdraw it (DELETE). Leads and admins."""
    adjudication = get_adjudication_for_lead(request.user, pk)
    if request.method == "DELETE":
        adjudication_withdraw(sample_item=adjudication.sample_item)
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(AdjudicationSerializer(adjudication).data)


@extend_schema(request=None, responses=responses({204: WITHDRAWN}, 403, 404))
@api_view(["POST"])
def adjudication_withdraw_view(request: Request, pk: int) -> Response:
    """Withdraw an adjudication (as DELETE on it): the item goes back to its majority."""
    adjudication = get_adjudication_for_lead(request.user, pk)
    if not adjudication_withdraw(sample_item=adjudication.sample_item):
        raise Http404("No such adjudication")
    return Response(status=status.HTTP_204_NO_CONTENT)
