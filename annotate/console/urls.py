from django.urls import path

from annotate.console import views

urlpatterns = [
    path("", views.console, name="console"),
]
