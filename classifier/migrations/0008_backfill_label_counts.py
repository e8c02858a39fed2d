"""Runs that succeeded before `label_counts` existed get their counts once, here, so that no
request has to count (or cache) a finished run's labels (docs/architecture.md#explorer)."""

from django.db import migrations
from django.db.models import Count


def backfill(apps, schema_editor):
    ClassificationRun = apps.get_model("classifier", "ClassificationRun")
    Prediction = apps.get_model("classifier", "Prediction")
    for run in ClassificationRun.objects.filter(status="succeeded", label_counts={}).only("pk"):
        counts = (
            Prediction.objects.filter(run_id=run.pk)
            .order_by()
            .values("label_id")
            .annotate(n=Count("*"))
            .values_list("label_id", "n")
        )
        run.label_counts = {str(label_id): n for label_id, n in counts}
        run.save(update_fields=["label_counts"])


class Migration(migrations.Migration):
    dependencies = [("classifier", "0007_prediction_one_shuffle_index")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
