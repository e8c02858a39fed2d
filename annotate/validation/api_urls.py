from django.urls import path

from annotate.validation import (
    api,
    api_curation,
    api_duplicates,
    api_explorer,
    api_lead,
    api_metrics,
    api_probe,
    api_search,
    api_suspects,
)

urlpatterns: list = [
    # The run explorer.
    path("runs/<int:pk>/items/", api_explorer.run_items, name="api-run-items"),
    # Search, near-duplicates and likely label errors.
    path("runs/<int:pk>/search/", api_search.run_search, name="api-run-search"),
    path("runs/<int:pk>/duplicates/", api_duplicates.run_duplicates, name="api-run-duplicates"),
    path("runs/<int:pk>/suspects/", api_suspects.run_suspects, name="api-run-suspects"),
    # A probe learned from the verdicts.
    path("runs/<int:pk>/probe/", api_probe.run_probe, name="api-run-probe"),
    # Samples, assignment and verdicts.
    path("runs/<int:pk>/samples/", api.run_samples, name="api-run-samples"),
    path("samples/", api.sample_list, name="api-sample-list"),
    path("samples/<int:pk>/", api.sample_detail, name="api-sample-detail"),
    path("samples/<int:pk>/items/", api.sample_items, name="api-sample-items"),
    path("samples/<int:pk>/next/", api.sample_next, name="api-sample-next"),
    path("samples/<int:pk>/verdicts/", api.sample_verdicts, name="api-sample-verdicts"),
    path("samples/<int:pk>/close/", api.sample_status, {"action": "close"}, name="api-close"),
    path("samples/<int:pk>/reopen/", api.sample_status, {"action": "reopen"}, name="api-reopen"),
    path("verdicts/", api.verdict_create, name="api-verdict-create"),
    path("verdicts/<int:pk>/", api.verdict_detail, name="api-verdict-detail"),
    path("verdicts/<int:pk>/undo/", api.verdict_undo_view, name="api-verdict-undo"),
    # Metrics of a sample.
    path("samples/<int:pk>/thresholds/", api_metrics.sample_thresholds, name="api-thresholds"),
    path("samples/<int:pk>/classes/", api_metrics.sample_classes, name="api-classes"),
    path("samples/<int:pk>/agreement/", api_metrics.sample_agreement, name="api-agreement"),
    path("samples/<int:pk>/scores/", api_metrics.sample_scores, name="api-scores"),
    path("samples/<int:pk>/progress/", api_metrics.sample_progress, name="api-progress"),
    # The lead's work on a sample: disagreements, adjudications, per-annotator figures.
    path("samples/<int:pk>/annotators/", api_metrics.sample_annotators, name="api-annotators"),
    path(
        "samples/<int:pk>/disagreements/",
        api_lead.sample_disagreements,
        name="api-sample-disagreements",
    ),
    path("adjudications/", api_lead.adjudication_create, name="api-adjudication-create"),
    path("adjudications/<int:pk>/", api_lead.adjudication_detail, name="api-adjudication-detail"),
    path(
        "adjudications/<int:pk>/withdraw/",
        api_lead.adjudication_withdraw_view,
        name="api-adjudication-withdraw",
    ),
    # The curated selection of a balanced sample and its queued exports.
    path("samples/<int:pk>/selection/", api_curation.sample_selection, name="api-selection"),
    path("samples/<int:pk>/exports/", api_curation.sample_exports, name="api-sample-exports"),
    path("exports/<int:pk>/", api_curation.export_detail, name="api-export-detail"),
    path("exports/<int:pk>/file/", api_curation.export_file, name="api-export-file"),
    path("exports/<int:pk>/manifest/", api_curation.export_manifest, name="api-export-manifest"),
]
