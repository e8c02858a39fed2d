from django.urls import path

from classifier import api

urlpatterns: list = [
    path("runs/", api.run_list, name="api-run-list"),
    path("runs/<int:pk>/", api.run_detail, name="api-run-detail"),
    path("runs/<int:pk>/cancel/", api.run_cancel_view, name="api-run-cancel"),
    path("runs/<int:pk>/resume/", api.run_resume_view, name="api-run-resume"),
    path("runs/<int:pk>/hide/", api.run_hide_view, name="api-run-hide"),
    path("runs/<int:pk>/coverage/", api.run_coverage_view, name="api-run-coverage"),
    path("runs/<int:pk>/labels/", api.run_labels_view, name="api-run-labels"),
]
