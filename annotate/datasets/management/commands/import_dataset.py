import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.datasets.importers import DatasetImportError, dataset_import
from annotate.datasets.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Import (or re-import) the images under FOLDER as dataset NAME, with captions from a "
        "CSV (filename,caption), a JSONL ({filename, caption}) or sidecar .txt files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="dataset name (a slug)")
        parser.add_argument("folder", help="folder inside SIEVE_IMAGE_ROOTS")
        parser.add_argument("--captions", help="CSV or JSONL captions file")
        parser.add_argument("--json", action="store_true", help="print a JSON summary last")

    def handle(self, *args, **options) -> None:
        bar = ProgressBar("headers", 0, stream=self.stderr._out)
        try:
            result = dataset_import(
                name=options["name"],
                folder=options["folder"],
                captions=options["captions"],
                progress=bar,
            )
        except DatasetImportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(result.summary())
        report = result.captions
        for title, examples in (
            ("unreadable", result.unreadable_examples),
            ("caption rows without an image", report.missing_examples),
            ("duplicate caption rows", report.duplicate_examples),
            ("unparseable caption rows", report.bad_examples),
            ("caption rows with non-UTF-8 bytes (replaced)", report.undecodable_examples),
        ):
            if examples:
                self.stdout.write(f"  {title}: " + "; ".join(examples[:5]))
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
