from django.urls import path

from classifier import views

urlpatterns: list = [
    path("runs/<int:pk>/cancel/", views.run_cancel_page, name="run-cancel"),
    path("runs/<int:pk>/resume/", views.run_resume_page, name="run-resume"),
    path("runs/<int:pk>/hide/", views.run_hide_page, name="run-hide"),
    path("runs/<int:pk>/delete/", views.run_delete_page, name="run-delete"),
]
