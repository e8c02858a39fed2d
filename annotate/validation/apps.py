from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "annotate.validation"
    label = "validation"
