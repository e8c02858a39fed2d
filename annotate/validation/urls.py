from django.urls import path

from annotate.validation import dashboard, views

urlpatterns: list = [
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
]
