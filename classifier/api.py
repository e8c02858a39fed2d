"""REST endpoints for classification runs. Thin: objects come from the permission-checked
selectors, state changes from `classifier.services`, numbers from `classifier.scoring`; the
answers are `classifier.serializers`, the errors `annotate.rest`'s handler.

Leads and annotators of a dataset read its runs; leads also hide and unhide them; only admins
(global, or admin of the dataset) start, cancel, resume or delete them. Another dataset's run
answers 404."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role, roles_by_dataset
from annotate.datasets.models import Role
from annotate.datasets.selectors import find_by_name_or_id, get_dataset_for_user
from annotate.errors import NotFound
from annotate.rest import (
    PageQuery,
    StrictBooleanField,
    page_of,
    paginate,
    query_params,
    responses,
)
from annotate.taxonomies.models import Taxonomy
from classifier.models import ClassificationRun
from classifier.scoring import run_coverage, run_label_distribution
from classifier.selectors import (
    RUNS_ADMINS_ONLY,
    RUNS_DELETE_ADMINS_ONLY,
    RUNS_HIDE_LEADS_ONLY,
    get_run_for_user,
    runs_for_user,
    runs_with_progress,
)
from classifier.serializers import (
    CoverageSerializer,
    LabelDistributionSerializer,
    RunCreateSerializer,
    RunDeletedSerializer,
    RunSerializer,
)
from classifier.services import run_cancel, run_create, run_delete, run_hide, run_resume


def run_json(run: ClassificationRun, request: Request | None = None, role: str | None = None):
    """One run as the caller (with `role` on its dataset) sees it."""
    context = {"request": request, "roles": {run.dataset_id: role}}
    return RunSerializer(run, context=context).data


class RunListQuery(PageQuery):
    dataset = serializers.IntegerField(required=False, min_value=1, help_text="only this dataset")
    status = serializers.ChoiceField(
        choices=ClassificationRun.Status.choices, required=False, help_text="only this status"
    )
    hidden = serializers.BooleanField(
        required=False, help_text="1: hidden runs too (left out by default)"
    )


def _taxonomy(value: str) -> Taxonomy:
    """The taxonomy named by id or name; 404 when there is none."""
    taxonomy = find_by_name_or_id(Taxonomy.objects.all(), value)
    if taxonomy is None:
        raise NotFound(f"No taxonomy {value!r}.")
    return taxonomy


@extend_schema(
    methods=["GET"],
    operation_id="runs_list",
    parameters=[RunListQuery],
    responses=responses({200: page_of(RunSerializer)}, 400),
)
@extend_schema(
    methods=["POST"],
    request=RunCreateSerializer,
    responses=responses({201: RunSerializer}, 400, 403, 404),
)
@api_view(["GET", "POST"])
def run_list(request: Request) -> Response:
    """GET: the runs of your datasets (newest first; ?dataset=ID, ?status=..., ?hidden=1 to
    list hidden runs too).
    POST (admins of the dataset): start a run."""
    if request.method == "POST":
        return _run_start(request)
    query = query_params(RunListQuery, request)
    runs = runs_for_user(request.user, include_hidden=query.get("hidden", False))
    runs = runs.select_related("dataset", "taxonomy", "created_by")
    runs = runs.order_by("-id")
    if "dataset" in query:
        runs = runs.filter(dataset_id=query["dataset"])
    if "status" in query:
        runs = runs.filter(status=query["status"])
    roles = roles_by_dataset(request.user)

    def serialize(page: list[ClassificationRun]) -> list:
        rows = runs_with_progress(page)
        context = {
            "request": request,
            "roles": roles,
            "progress": {row["run"].pk: row["progress"] for row in rows},
        }
        return RunSerializer(page, many=True, context=context).data

    return paginate(request, runs, serialize)


def _run_start(request: Request) -> Response:
    data = RunCreateSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    values = data.validated_data
    dataset, role = get_dataset_for_user(request.user, values["dataset"])
    require_role(role, Role.ADMIN, RUNS_ADMINS_ONLY)
    run = run_create(
        dataset=dataset, taxonomy=_taxonomy(values["taxonomy"]), model=values["model"],
        weights=values["weights"], ensemble=values["ensemble"], w_img=values["w_img"],
        w_txt=values["w_txt"], condition_threshold=values["condition_threshold"],
        templates=values["templates"], name=values["name"], created_by=request.user,
    )  # fmt: skip
    return Response(run_json(run, request, role), status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], responses=responses({200: RunSerializer}, 404))
@extend_schema(
    methods=["DELETE"],
    request=None,
    responses=responses({200: RunDeletedSerializer}, 403, 404, 409),
)
@api_view(["GET", "DELETE"])
def run_detail(request: Request, pk: int) -> Response:
    """GET: the run (hidden or not). DELETE (admins of the dataset): the run with its
    predictions, samples and verdicts, answered with how many of each went; 409 while the
    run is queued or running (cancel it first)."""
    run, role = get_run_for_user(request.user, pk)
    if request.method == "DELETE":
        require_role(role, Role.ADMIN, RUNS_DELETE_ADMINS_ONLY)
        deleted = run_delete(run=run)
        return Response(RunDeletedSerializer({"run": run.pk, **deleted}).data)
    return Response(run_json(run, request, role))


class RunHideSerializer(serializers.Serializer):
    hidden = StrictBooleanField(default=True, help_text="true hides the run, false shows it")


@extend_schema(request=RunHideSerializer, responses=responses({200: RunSerializer}, 400, 403, 404))
@api_view(["POST"])
def run_hide_view(request: Request, pk: int) -> Response:
    """Hide a run from the run lists, or show it again with `{"hidden": false}` (leads and
    admins of the dataset). Its page, samples and verdicts stay."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, RUNS_HIDE_LEADS_ONLY)
    body = RunHideSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    run = run_hide(run=run, hidden=body.validated_data["hidden"])
    return Response(run_json(run, request, role))


@extend_schema(request=None, responses=responses({200: RunSerializer}, 403, 404))
@api_view(["POST"])
def run_cancel_view(request: Request, pk: int) -> Response:
    """Cancel (admins): pending chunks are revoked, running ones stop at their next batch."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.ADMIN, RUNS_ADMINS_ONLY)
    return Response(run_json(run_cancel(run=run), request, role))


@extend_schema(request=None, responses=responses({200: RunSerializer}, 403, 404, 409))
@api_view(["POST"])
def run_resume_view(request: Request, pk: int) -> Response:
    """Resume a cancelled or failed run (admins): only missing chunks are re-dispatched;
    409 when the run is neither cancelled nor failed."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.ADMIN, RUNS_ADMINS_ONLY)
    return Response(run_json(run_resume(run=run), request, role))


@extend_schema(responses=responses({200: CoverageSerializer}, 404))
@api_view(["GET"])
def run_coverage_view(request: Request, pk: int) -> Response:
    """Per threshold 0.0..1.0: items with top probability >= threshold, and their percent."""
    run, _ = get_run_for_user(request.user, pk)
    return Response(CoverageSerializer({"rows": run_coverage(run=run)}).data)


class LabelsQuery(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=400, help_text="how many labels (default 20)"
    )


@extend_schema(
    parameters=[LabelsQuery], responses=responses({200: LabelDistributionSerializer}, 400, 404)
)
@api_view(["GET"])
def run_labels_view(request: Request, pk: int) -> Response:
    """The most frequent predicted labels (?limit=20, at most 400)."""
    run, _ = get_run_for_user(request.user, pk)
    limit = query_params(LabelsQuery, request).get("limit", 20)
    rows = run_label_distribution(run=run, limit=limit)
    return Response(LabelDistributionSerializer({"rows": rows}).data)
