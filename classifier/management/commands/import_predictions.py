"""`import_predictions DATASET TAXONOMY FILE [--name NAME]`: a run from external predictions."""

import csv

from django.core.management.base import BaseCommand, CommandError

from annotate.cli import CommandOutput
from annotate.datasets.models import Dataset
from annotate.datasets.selectors import find_by_name_or_id
from annotate.taxonomies.models import Taxonomy
from classifier.services import run_import_predictions

COLUMNS = ["external_id", "label", "probability"]


def read_rows(path: str):
    """CSV `external_id,label,probability` (header optional)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for n, row in enumerate(reader):
                if not row or (n == 0 and [c.strip().lower() for c in row] == COLUMNS):
                    continue
                if len(row) != 3:
                    raise CommandError(
                        f"{path}:{n + 1}: expected 3 columns (external_id,label,probability)"
                    )
                yield row[0], row[1], row[2]
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"Cannot read {path}: {exc}") from None


class Command(BaseCommand):
    help = "Create a run from another model's predictions (CSV external_id,label,probability)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset")
        parser.add_argument("taxonomy")
        parser.add_argument("file")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout"
        )

    def handle(self, *args, **opts) -> None:
        out = CommandOutput(self, as_json=opts["json"])
        dataset = find_by_name_or_id(Dataset.objects.all(), opts["dataset"])
        if dataset is None:
            raise CommandError(f"No dataset named {opts['dataset']!r}.")
        taxonomy = find_by_name_or_id(Taxonomy.objects.all(), opts["taxonomy"])
        if taxonomy is None:
            raise CommandError(f"No taxonomy named {opts['taxonomy']!r}.")
        run, skipped = run_import_predictions(
            dataset=dataset, taxonomy=taxonomy, rows=read_rows(opts["file"]),
            name=opts["name"] or f"import {opts['file'].rsplit('/', 1)[-1]}",
        )  # fmt: skip
        out.say(
            f"Run {run.pk}: {run.item_count} predictions imported"
            + (f", skipped {skipped}" if skipped else "")
        )
        out.result({"run": run.pk, "predictions": run.item_count, "skipped": skipped})
