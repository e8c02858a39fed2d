from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "annotate.datasets"
    label = "datasets"
