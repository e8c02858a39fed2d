from django.urls import path

from classifier import views

urlpatterns: list = [
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel_page, name="run-cancel"),
    path("runs/<int:pk>/resume/", views.run_resume_page, name="run-resume"),
    path("console/runs/", views.console_runs, name="console-runs"),
    path("console/runs/list/", views.console_run_list, name="console-run-list"),
    path("console/runs/start/", views.console_run_start, name="console-run-start"),
    path("console/runs/<int:pk>/cancel/", views.console_run_cancel, name="console-run-cancel"),
]
