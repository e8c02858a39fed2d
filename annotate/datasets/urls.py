from django.urls import path

from annotate.datasets import views

urlpatterns = [
    path("datasets/", views.dataset_list, name="dataset-list"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("items/<int:pk>/image/", views.item_image, name="item-image"),
    path("items/<int:pk>/thumbnail/", views.item_thumbnail, name="item-thumbnail"),
]
