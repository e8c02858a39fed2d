from django.urls import path

from annotate.console import views

urlpatterns = [
    path("", views.console, name="console"),
    path("datasets/import/", views.import_dataset, name="console-import-dataset"),
    path("taxonomies/import/", views.import_taxonomy, name="console-import-taxonomy"),
    path("members/", views.member_set, name="console-member-set"),
    path("members/<int:pk>/remove/", views.member_remove, name="console-member-remove"),
]
