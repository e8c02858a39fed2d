"""`GET|POST /api/runs/{id}/duplicates/?min_similarity=0.97`: near-duplicate groups of a run's
items (docs/architecture.md#near-duplicates). Leads and admins of the run's dataset, as the
explorer; annotators 403, other datasets 404.

GET answers the latest scan at that threshold: 200 once it succeeded (or failed), 202 while it
is queued or running; with no scan yet, GET queues one and answers 202. POST starts a new scan
(a rescan) and answers 202. Same JSON shape in every case."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.rest import responses
from annotate.validation.api_explorer import EXPLORER_LEADS_ONLY
from annotate.validation.duplicates import (
    DEFAULT_MIN_SIMILARITY,
    DuplicatesInvalid,
    duplicate_scan_for,
    duplicate_scan_latest,
    duplicate_scan_start,
    parse_min_similarity,
    scan_active,
)
from classifier.models import DuplicateScan
from classifier.selectors import get_run_for_user

SCAN_ERROR_HIDDEN = "The scan failed; an admin can read why in the scan's record."


class DuplicateGroupSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.IntegerField(), help_text="item ids")
    similarity = serializers.FloatField(
        help_text="the lowest cosine similarity among the links that joined the group"
    )
    size = serializers.IntegerField()


class NearestSerializer(serializers.Serializer):
    median = serializers.FloatField(help_text="median of each item's nearest other item's cosine")
    p90 = serializers.FloatField()
    p99 = serializers.FloatField()
    linked_share = serializers.FloatField(
        help_text="share of items with another item at or above min_similarity"
    )


class DuplicateScanSerializer(serializers.Serializer):
    scan = serializers.IntegerField(help_text="the scan's id")
    run = serializers.IntegerField()
    min_similarity = serializers.FloatField()
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"])
    done = serializers.IntegerField(help_text="items scanned so far")
    total = serializers.IntegerField(help_text="items to scan")
    scanned = serializers.IntegerField(help_text="items scanned (= total once it succeeded)")
    exact = serializers.BooleanField(
        help_text="every pair compared (false: each item's nearest neighbours by the index)"
    )
    group_count = serializers.IntegerField()
    groups = DuplicateGroupSerializer(many=True, help_text="largest first")
    nearest = NearestSerializer(
        allow_null=True,
        help_text="each item's nearest other item (null until the scan succeeds): when most "
        "items have one above the threshold, the model puts distinct images that close",
    )
    seconds = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()
    finished = serializers.DateTimeField(allow_null=True)


def scan_json(scan: DuplicateScan, *, role: str | None) -> dict:
    groups = [
        {"items": g["items"], "similarity": g["similarity"], "size": len(g["items"])}
        for g in (scan.groups or [])
    ]
    error = None
    if scan.error:
        error = scan.error if role_at_least(role, Role.ADMIN) else SCAN_ERROR_HIDDEN
    return DuplicateScanSerializer(
        {
            "scan": scan.pk,
            "run": scan.run_id,
            "min_similarity": scan.min_similarity,
            "status": scan.status,
            "done": scan.done,
            "total": scan.total,
            "scanned": scan.done,
            "exact": scan.exact,
            "group_count": len(groups),
            "groups": groups,
            "nearest": scan.nearest or None,
            "seconds": scan.seconds,
            "error": error,
            "created": scan.created,
            "finished": scan.finished,
        }
    ).data


MIN_SIMILARITY = OpenApiParameter(
    "min_similarity",
    {"type": "number", "minimum": 0.5, "maximum": 1},
    description=f"cosine similarity at least this links two items (default "
    f"{DEFAULT_MIN_SIMILARITY})",
)


class DuplicateScanRequestSerializer(serializers.Serializer):
    min_similarity = serializers.FloatField(
        required=False, min_value=0.5, max_value=1.0,
        help_text=f"as the query parameter (default {DEFAULT_MIN_SIMILARITY})",
    )  # fmt: skip


@extend_schema(
    parameters=[MIN_SIMILARITY],
    request=DuplicateScanRequestSerializer,
    responses=responses(
        {200: DuplicateScanSerializer, 202: DuplicateScanSerializer}, 400, 403, 404, 409
    ),
)
@api_view(["GET", "POST"])
def run_duplicates(request: Request, pk: int) -> Response:
    """Groups of the run's items whose image embeddings have cosine similarity at or above
    `min_similarity` (reposts, re-encodings): computed by a `search` worker. GET reads the
    latest scan (queueing one if there is none); POST starts a new one. 202 while it runs:
    poll until `status` is `succeeded`."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPLORER_LEADS_ONLY)
    raw = request.query_params.get("min_similarity")
    data = request.data if request.method == "POST" else {}
    if not isinstance(data, dict):
        raise serializers.ValidationError({"detail": "The body must be a JSON object."})
    if "min_similarity" in data:
        # A bad body is a 400, even beside a good query parameter (which wins when both are).
        body = data["min_similarity"]
        if isinstance(body, bool) or not isinstance(body, int | float):
            raise DuplicatesInvalid("min_similarity must be a number from 0.5 to 1.")
        parsed = parse_min_similarity(body)
        raw = raw if raw is not None else parsed
    min_similarity = parse_min_similarity(raw)
    if request.method == "POST":
        latest = duplicate_scan_latest(run=run, min_similarity=min_similarity)
        if latest is not None and scan_active(latest):
            scan = latest  # one scan at a time per threshold
        else:
            scan = duplicate_scan_start(run=run, min_similarity=min_similarity, user=request.user)
    else:
        scan, _ = duplicate_scan_for(run=run, min_similarity=min_similarity, user=request.user)
    code = status.HTTP_202_ACCEPTED if scan_active(scan) else status.HTTP_200_OK
    return Response(scan_json(scan, role=role), status=code)
