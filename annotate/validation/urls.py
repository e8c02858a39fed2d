from django.urls import path

from annotate.validation import dashboard, views

urlpatterns: list = [
    # Annotation page and its fragments, sample form of the run page (helper C).
    path("samples/<int:pk>/annotate/", views.annotate_page, name="sample-annotate"),
    path("samples/<int:pk>/annotate/item/", views.annotate_item, name="sample-annotate-item"),
    path(
        "samples/<int:pk>/annotate/progress/",
        views.annotate_progress,
        name="sample-annotate-progress",
    ),
    path("samples/<int:pk>/annotate/labels/", views.label_search, name="sample-label-search"),
    path("runs/<int:pk>/samples/new/", views.run_sample_create, name="run-sample-create"),
    # Live dashboard (helper D): page, poller, CSV downloads.
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
]
