from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.datasets.models import Dataset
from annotate.datasets.selectors import find_by_name_or_id
from annotate.itr.exports import FORMATS, SETS, ItrExportError, itr_export


class Command(BaseCommand):
    help = (
        "Export an ITR dataset's test split: `corrected` (final labels, with the published "
        "ones, reasons and decisions beside them), `removed` (without the changed items) or "
        "`changes` (the published list's format, which import_itr --controversial reads back; "
        "per item with --format csv). To standard output unless --out is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="ITR dataset name or id")
        parser.add_argument("--set", required=True, choices=SETS, dest="which")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="list (changes only; its default) or csv (the default of the other sets)",
        )
        parser.add_argument("--out", help="write the export to this file")
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout (needs --out)"
        )

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        if options["json"] and not options["out"]:
            raise CommandError("--json prints a summary: give --out for the export itself")
        datasets = Dataset.objects.filter(kind=Dataset.Kind.ITR)
        dataset = find_by_name_or_id(datasets, options["dataset"])
        if dataset is None:
            raise CommandError(f"no ITR dataset named (or with id) {options['dataset']!r}")
        try:
            result = itr_export(dataset, options["which"], options["format"])
        except ItrExportError as exc:
            raise CommandError(str(exc)) from None
        fmt = "list" if result.media_type == "text/plain" else "csv"
        if options["out"]:
            path = Path(options["out"]).expanduser()
            try:
                path.write_text(result.text, encoding="utf-8", newline="")
            except OSError as exc:
                raise CommandError(f"cannot write {path}: {exc.strerror}") from None
            out.say(f"{result.rows:,} items of {dataset.name} ({options['which']}) -> {path}")
        else:
            self.stdout.write(result.text, ending="")
        out.result(
            {
                "dataset": dataset.name,
                "dataset_id": dataset.pk,
                "set": options["which"],
                "format": fmt,
                "items": result.rows,
                "out": options["out"] and str(Path(options["out"]).expanduser()),
            }
        )
