from django.urls import path

from annotate.validation import api_metrics

urlpatterns: list = [
    # Metrics of a sample (helper D).
    path("samples/<int:pk>/thresholds/", api_metrics.sample_thresholds, name="api-thresholds"),
    path("samples/<int:pk>/classes/", api_metrics.sample_classes, name="api-classes"),
    path("samples/<int:pk>/agreement/", api_metrics.sample_agreement, name="api-agreement"),
    path("samples/<int:pk>/scores/", api_metrics.sample_scores, name="api-scores"),
    path("samples/<int:pk>/progress/", api_metrics.sample_progress, name="api-progress"),
]
