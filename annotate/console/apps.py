from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "annotate.console"
    label = "console"
