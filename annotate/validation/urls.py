from django.urls import path

from annotate.validation import (
    dashboard,
    views,
    views_annotator,
    views_curation,
    views_duplicates,
    views_explorer,
    views_lead,
    views_probe,
    views_search,
    views_suspects,
)

urlpatterns: list = [
    # Home: the annotator's inbox and the datasets; one's own verdicts.
    path("", views_annotator.home, name="home"),
    path("history/", views_annotator.verdict_history, name="verdict-history"),
    # The run explorer and the item page.
    path("runs/<int:pk>/items/", views_explorer.run_items, name="run-items"),
    path("items/<int:pk>/", views_explorer.item_detail, name="item-detail"),
    # Search, near-duplicates and likely label errors over the run's embeddings.
    path("runs/<int:pk>/search/", views_search.run_search, name="run-search"),
    path("runs/<int:pk>/duplicates/", views_duplicates.run_duplicates, name="run-duplicates"),
    path("runs/<int:pk>/suspects/", views_suspects.run_suspects, name="run-suspects"),
    # The run page's probe card: its poll and the "Train a probe" form.
    path("runs/<int:pk>/probe/", views_probe.run_probe, name="run-probe"),
    # The lead's pages of a sample.
    path(
        "samples/<int:pk>/disagreements/",
        views_lead.sample_disagreements,
        name="sample-disagreements",
    ),
    path("samples/<int:pk>/annotators/", views_lead.sample_annotators, name="sample-annotators"),
    # The run page with its samples; the annotation page and its fragments.
    path("samples/<int:pk>/annotate/", views.annotate_page, name="sample-annotate"),
    path("samples/<int:pk>/annotate/item/", views.annotate_item, name="sample-annotate-item"),
    path(
        "samples/<int:pk>/annotate/progress/",
        views.annotate_progress,
        name="sample-annotate-progress",
    ),
    path("samples/<int:pk>/annotate/labels/", views.label_search, name="sample-label-search"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/samples/new/", views.run_sample_create, name="run-sample-create"),
    path(
        "samples/<int:pk>/close/",
        views.sample_status_page,
        {"action": "close"},
        name="sample-close-page",
    ),
    path(
        "samples/<int:pk>/reopen/",
        views.sample_status_page,
        {"action": "reopen"},
        name="sample-reopen-page",
    ),
    # Live dashboard: page, poller, CSV downloads.
    path("samples/<int:pk>/", dashboard.sample_dashboard, name="sample-dashboard"),
    path(
        "samples/<int:pk>/dashboard/poll/",
        dashboard.sample_dashboard_poll,
        name="sample-dashboard-poll",
    ),
    path(
        "samples/<int:pk>/dashboard/<slug:table>.csv",
        dashboard.sample_dashboard_csv,
        name="sample-dashboard-csv",
    ),
    # The dashboard's "What you get" panel and its curated exports.
    path("samples/<int:pk>/selection/", views_curation.sample_selection, name="sample-selection"),
    path(
        "samples/<int:pk>/exports/",
        views_curation.sample_export_create,
        name="sample-export-create",
    ),
    path("exports/<int:pk>/", views_curation.export_status, name="curated-export"),
]
