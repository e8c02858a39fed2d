from django.apps import AppConfig


class ItrConfig(AppConfig):
    name = "annotate.itr"
    label = "itr"
