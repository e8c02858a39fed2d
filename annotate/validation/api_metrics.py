"""Metrics endpoints of a sample: thresholds, classes, agreement (+ scores, progress).

Thin: fetch the sample through the lead-only helper (outsiders 404, annotators 403), then call
the one computation in metrics.py. Each answer carries an ETag built from the verdicts'
fingerprint; a client sending it back in If-None-Match gets 304 after one cheap query.
"""

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.validation import metrics


def _step(request: Request) -> float:
    try:
        return metrics.parse_step(request.query_params.get("step"))
    except ValueError as exc:
        raise ValidationError({"step": str(exc)}) from None


def _conditional(
    request: Request, pk: int, name: str, compute: Callable[..., dict[str, Any]], **kwargs
) -> Response:
    sample = metrics.get_sample_for_lead(request.user, pk)
    params = "-".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    etag = f'"{name}-{metrics.sample_version(sample=sample)}-{params}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = Response(status=304)
    else:
        response = Response(compute(sample=sample, **kwargs))
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


STEP = OpenApiParameter("step", float, description="threshold step, 0.01 to 1 (default 0.1)")


@extend_schema(parameters=[STEP], responses=dict)
@api_view(["GET"])
def sample_thresholds(request: Request, pk: int) -> Response:
    """Threshold table: per θ classified, hits, errors, hit/error rate, ratio with a 95 %
    bootstrap interval, precision; best threshold, mean probability of hits and misses."""
    return _conditional(request, pk, "thresholds", metrics.thresholds_table, step=_step(request))


@extend_schema(responses=dict)
@api_view(["GET"])
def sample_classes(request: Request, pk: int) -> Response:
    """Per sampled label: frequency in the run, sampled, hits, misses, accuracy (Wilson)."""
    return _conditional(request, pk, "classes", metrics.classes_table)


@extend_schema(responses=dict)
@api_view(["GET"])
def sample_agreement(request: Request, pk: int) -> Response:
    """Krippendorff's alpha (nominal) and Cohen's kappa per annotator pair."""
    return _conditional(request, pk, "agreement", metrics.agreement_table)


@extend_schema(responses=dict)
@api_view(["GET"])
def sample_scores(request: Request, pk: int) -> Response:
    """Accuracy of every run on the dataset (same taxonomy) against the verdicts so far."""
    return _conditional(request, pk, "scores", metrics.runs_score)


@extend_schema(responses=dict)
@api_view(["GET"])
def sample_progress(request: Request, pk: int) -> Response:
    """Verdicts per annotator and progress per label."""
    return _conditional(request, pk, "progress", metrics.progress_table)
