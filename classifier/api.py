"""REST endpoints for classification runs. Thin: objects come from the permission-checked
selectors, state changes from `classifier.services`, numbers from `classifier.scoring`.

Leads and annotators of a dataset read its runs; only admins (global, or admin of the
dataset) start, cancel or resume them. Another dataset's run answers 404."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.datasets.selectors import get_dataset_for_user
from annotate.taxonomies.models import Taxonomy
from classifier.models import ClassificationRun
from classifier.scoring import run_coverage, run_label_distribution
from classifier.selectors import (
    get_run_for_user,
    run_progress,
    runs_for_user,
    runs_with_progress,
)
from classifier.services import ENSEMBLES, run_cancel, run_create, run_resume


def run_json(run: ClassificationRun, progress: dict | None = None) -> dict:
    return {
        "id": run.pk,
        "name": run.name,
        "dataset": run.dataset_id,
        "dataset_name": run.dataset.name,
        "taxonomy": run.taxonomy_id,
        "taxonomy_name": run.taxonomy.name,
        "model": run.model,
        "weights": run.weights,
        "ensemble": run.ensemble,
        "w_img": run.w_img,
        "w_txt": run.w_txt,
        "condition_threshold": run.condition_threshold,
        "templates": run.templates,
        "source": run.source,
        "status": run.status,
        "error": run.error,
        "created": run.created,
        "started": run.started,
        "finished": run.finished,
        "created_by": run.created_by.username if run.created_by else None,
        "progress": progress or run_progress(run=run),
        "url": f"/runs/{run.pk}/",
    }


class RunCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    taxonomy = serializers.CharField(help_text="taxonomy id or name")
    model = serializers.CharField(default="ViT-B-32", max_length=100)
    weights = serializers.CharField(default="", allow_blank=True, max_length=1000)
    ensemble = serializers.ChoiceField(choices=ENSEMBLES, default="image")
    w_img = serializers.FloatField(default=0.8, min_value=0, max_value=1)
    w_txt = serializers.FloatField(default=0.2, min_value=0, max_value=1)
    condition_threshold = serializers.FloatField(default=0.6, min_value=0, max_value=1)
    templates = serializers.ListField(
        child=serializers.CharField(max_length=300), default=list, max_length=50
    )
    name = serializers.CharField(default="", allow_blank=True, max_length=200)


def _taxonomy(value: str) -> Taxonomy:
    taxonomy = Taxonomy.objects.filter(
        **({"pk": int(value)} if value.isdigit() else {"name": value})
    ).first()
    if taxonomy is None:
        raise serializers.ValidationError({"taxonomy": f"No taxonomy {value!r}."})
    return taxonomy


ADMINS_ONLY = "Only admins of this dataset start, cancel or resume runs."


@extend_schema(methods=["GET"], operation_id="runs_list", responses={200: dict})
@extend_schema(methods=["POST"], request=RunCreateSerializer, responses={201: dict})
@api_view(["GET", "POST"])
def run_list(request: Request) -> Response:
    """GET: the runs of your datasets (newest first; ?dataset=ID, ?status=...).
    POST (admins): start a run."""
    if request.method == "POST":
        return _run_start(request)
    runs = runs_for_user(request.user).select_related("dataset", "taxonomy", "created_by")
    runs = runs.order_by("-id")
    if (dataset := request.query_params.get("dataset", "")).isdigit():
        runs = runs.filter(dataset_id=int(dataset))
    if (wanted := request.query_params.get("status")) in ClassificationRun.Status.values:
        runs = runs.filter(status=wanted)
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(runs, request)
    rows = runs_with_progress(page)
    return paginator.get_paginated_response([run_json(r["run"], r["progress"]) for r in rows])


def _run_start(request: Request) -> Response:
    data = RunCreateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    dataset, role = get_dataset_for_user(request.user, values["dataset"])
    require_role(role, Role.ADMIN, ADMINS_ONLY)
    try:
        run = run_create(
            dataset=dataset, taxonomy=_taxonomy(values["taxonomy"]), model=values["model"],
            weights=values["weights"], ensemble=values["ensemble"], w_img=values["w_img"],
            w_txt=values["w_txt"], condition_threshold=values["condition_threshold"],
            templates=values["templates"], name=values["name"], created_by=request.user,
        )  # fmt: skip
    except ValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return Response(run_json(run), status=status.HTTP_201_CREATED)


@extend_schema(responses={200: dict})
@api_view(["GET"])
def run_detail(request: Request, pk: int) -> Response:
    return Response(run_json(get_run_for_user(request.user, pk)[0]))


@extend_schema(request=None, responses={200: dict})
@api_view(["POST"])
def run_cancel_view(request: Request, pk: int) -> Response:
    """Cancel (admins): pending chunks are revoked, running ones stop at their next batch."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.ADMIN, ADMINS_ONLY)
    return Response(run_json(run_cancel(run=run)))


@extend_schema(request=None, responses={200: dict})
@api_view(["POST"])
def run_resume_view(request: Request, pk: int) -> Response:
    """Resume a cancelled or failed run (admins): only missing chunks are re-dispatched."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.ADMIN, ADMINS_ONLY)
    try:
        run = run_resume(run=run)
    except ValidationError as exc:
        return Response({"detail": exc.messages[0]}, status=status.HTTP_409_CONFLICT)
    return Response(run_json(run))


@extend_schema(responses={200: dict})
@api_view(["GET"])
def run_coverage_view(request: Request, pk: int) -> Response:
    """Per threshold 0.0..1.0: items with top probability >= threshold, and their percent."""
    run, _ = get_run_for_user(request.user, pk)
    return Response({"rows": run_coverage(run=run)})


@extend_schema(responses={200: dict})
@api_view(["GET"])
def run_labels_view(request: Request, pk: int) -> Response:
    """The most frequent predicted labels (?limit=20, at most 400)."""
    run, _ = get_run_for_user(request.user, pk)
    limit = request.query_params.get("limit", "20")
    limit = min(int(limit), 400) if limit.isdigit() else 20
    return Response({"rows": run_label_distribution(run=run, limit=limit)})
