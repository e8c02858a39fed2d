from django.urls import path

from annotate.console import views

urlpatterns = [
    path("", views.console, name="console"),
    path("datasets/import/", views.import_dataset, name="console-import-dataset"),
    path("datasets/imports/", views.import_job_list, name="console-import-jobs"),
    path("taxonomies/import/", views.import_taxonomy, name="console-import-taxonomy"),
    path("members/", views.member_set, name="console-member-set"),
    path("members/<int:pk>/remove/", views.member_remove, name="console-member-remove"),
    path("runs/", views.console_runs, name="console-runs"),
    path("runs/list/", views.console_run_list, name="console-run-list"),
    path("runs/start/", views.console_run_start, name="console-run-start"),
    path("runs/<int:pk>/cancel/", views.console_run_cancel, name="console-run-cancel"),
]
