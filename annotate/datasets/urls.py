from django.urls import path

from annotate.datasets import views

urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
]
