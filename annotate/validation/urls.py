from django.urls import path

from annotate.validation import dashboard

urlpatterns: list = [
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
