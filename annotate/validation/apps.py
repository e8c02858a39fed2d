from django.apps import AppConfig
from django.db.models.signals import post_delete


class ValidationConfig(AppConfig):
    name = "annotate.validation"
    label = "validation"

    def ready(self) -> None:
        # A deleted export (or its sample's, its run's) takes its files with it.
        from annotate.validation.curated_jobs import export_files_remove
        from annotate.validation.models import CuratedExport

        post_delete.connect(export_files_remove, sender=CuratedExport, dispatch_uid="export-files")
