from django.urls import path

from classifier import views

urlpatterns: list = [
    path("runs/<int:pk>/cancel/", views.run_cancel_page, name="run-cancel"),
    path("runs/<int:pk>/resume/", views.run_resume_page, name="run-resume"),
]
