"""`POST /api/runs/{id}/probe/`: queue a probe run learned from the verdicts on the run's
dataset (docs/architecture.md#probe). Leads and admins of the run's dataset; annotators 403,
other datasets 404; a run that cannot give a probe (not finished, a probe or import itself,
too few verdicts, no embedding cache) 409."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.rest import StrictIntegerField, responses
from annotate.validation.probing import DEFAULT_FOLDS, MAX_FOLDS, MIN_FOLDS, probe_request
from classifier.api import run_json
from classifier.selectors import get_run_for_user
from classifier.serializers import RunSerializer

PROBE_LEADS_ONLY = "Only leads and admins of this dataset may train a probe."


class ProbeRequestSerializer(serializers.Serializer):
    folds = StrictIntegerField(
        default=DEFAULT_FOLDS, min_value=MIN_FOLDS, max_value=MAX_FOLDS,
        help_text="cross-fitting folds over the verdict items",
    )  # fmt: skip
    seed = StrictIntegerField(
        default=0, min_value=0, max_value=2**31 - 1, help_text="folds and basis sample"
    )


@extend_schema(
    request=ProbeRequestSerializer,
    responses=responses({202: RunSerializer}, 400, 403, 404, 409),
)
@api_view(["POST"])
def run_probe(request: Request, pk: int) -> Response:
    """Queue a probe of the run: a new run (`source` "probe", `parent` this run) trained by a
    worker; poll `GET /api/runs/{id}/` until `status` is `succeeded`, then read `probe`. While
    a probe of this run is queued or running, that one is answered instead of a second."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, PROBE_LEADS_ONLY)
    body = ProbeRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    probe_run = probe_request(run=run, created_by=request.user, **body.validated_data)
    return Response(run_json(probe_run, request, role), status=status.HTTP_202_ACCEPTED)
