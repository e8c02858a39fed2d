from django.apps import AppConfig


class TaxonomiesConfig(AppConfig):
    name = "annotate.taxonomies"
    label = "taxonomies"
