"""Metrics endpoints of a sample: thresholds, classes, agreement (+ scores, progress,
annotators).

Thin: fetch the sample through the lead-only helper (outsiders 404, annotators 403), then call
the one computation in metrics.py. Each answer carries an ETag built from the verdicts'
fingerprint; a client sending it back in If-None-Match gets 304 after one cheap query.
"""

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.rest import query_params, responses
from annotate.validation import metrics
from annotate.validation.serializers import (
    AgreementSerializer,
    AnnotatorsSerializer,
    ClassesSerializer,
    ProgressSerializer,
    ScoresSerializer,
    ThresholdsSerializer,
)


class StepQuery(serializers.Serializer):
    step = serializers.FloatField(
        required=False,
        min_value=metrics.MIN_STEP,
        max_value=1,
        help_text=f"threshold step, {metrics.MIN_STEP} to 1 (default {metrics.DEFAULT_STEP})",
    )


def _step(request: Request) -> float:
    return query_params(StepQuery, request).get("step", metrics.DEFAULT_STEP)


def _documented(serializer: type[serializers.Serializer], *codes: int) -> dict:
    """200 with `serializer`, 304 for a matching If-None-Match; 403 for annotators (live
    results would bias them), 404 for outsiders."""
    not_modified = OpenApiResponse(description="unchanged since the ETag sent in If-None-Match")
    return responses({200: serializer, 304: not_modified}, 403, 404, *codes)


def _conditional(
    request: Request,
    pk: int,
    name: str,
    compute: Callable[..., dict[str, Any]],
    serializer: type[serializers.Serializer],
    **kwargs,
) -> Response:
    sample = metrics.get_sample_for_lead(request.user, pk)
    params = "-".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    etag = f'"{name}-{metrics.sample_version(sample=sample)}-{params}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = Response(status=304)
    else:
        response = Response(serializer(compute(sample=sample, **kwargs)).data)
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


@extend_schema(parameters=[StepQuery], responses=_documented(ThresholdsSerializer, 400))
@api_view(["GET"])
def sample_thresholds(request: Request, pk: int) -> Response:
    """Threshold table: per θ classified, hits, errors, hit/error rate, ratio with a 95 %
    bootstrap interval, precision; best threshold, mean probability of hits and misses."""
    step = _step(request)
    return _conditional(
        request, pk, "thresholds", metrics.thresholds_table, ThresholdsSerializer, step=step
    )


@extend_schema(responses=_documented(ClassesSerializer))
@api_view(["GET"])
def sample_classes(request: Request, pk: int) -> Response:
    """Per sampled label: frequency in the run, sampled, hits, misses, accuracy (Wilson)."""
    return _conditional(request, pk, "classes", metrics.classes_table, ClassesSerializer)


@extend_schema(responses=_documented(AgreementSerializer))
@api_view(["GET"])
def sample_agreement(request: Request, pk: int) -> Response:
    """Krippendorff's alpha (nominal) and Cohen's kappa per annotator pair."""
    return _conditional(request, pk, "agreement", metrics.agreement_table, AgreementSerializer)


@extend_schema(responses=_documented(ScoresSerializer))
@api_view(["GET"])
def sample_scores(request: Request, pk: int) -> Response:
    """Accuracy of every run on the dataset (same taxonomy) against the verdicts and the lead's
    adjudications so far (hidden runs left out, but for the sample's own), and `pairs`: two
    runs on the items the facts decide for both, with an exact McNemar test on the items only
    one of them gets right."""
    return _conditional(request, pk, "scores", metrics.runs_score, ScoresSerializer)


@extend_schema(responses=_documented(ProgressSerializer))
@api_view(["GET"])
def sample_progress(request: Request, pk: int) -> Response:
    """Verdicts per annotator and progress per label."""
    return _conditional(request, pk, "progress", metrics.progress_table, ProgressSerializer)


@extend_schema(responses=_documented(AnnotatorsSerializer))
@api_view(["GET"])
def sample_annotators(request: Request, pk: int) -> Response:
    """Per annotator: verdicts, hits, misses, skips, corrected labels; median seconds per
    verdict with the quartiles; agreement with the majority of the OTHER annotators
    (leave-one-out) and with the lead's adjudications, each with a 95 % Wilson interval; the
    last verdict's time."""
    return _conditional(request, pk, "annotators", metrics.annotators_table, AnnotatorsSerializer)
