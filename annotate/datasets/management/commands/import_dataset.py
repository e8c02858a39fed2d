from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.datasets.importers import DatasetImportError, dataset_import


class Command(BaseCommand):
    help = (
        "Import (or re-import) the images under FOLDER as dataset NAME, with captions from a "
        "CSV (filename,caption), a JSONL ({filename, caption}) or sidecar .txt files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="dataset name (a slug)")
        parser.add_argument("folder", help="folder inside SIEVE_IMAGE_ROOTS")
        parser.add_argument("--captions", help="CSV or JSONL captions file")
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout"
        )

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        try:
            with out.progress("headers", unit="img") as bar:
                result = dataset_import(
                    name=options["name"],
                    folder=options["folder"],
                    captions=options["captions"],
                    progress=bar,
                )
        except DatasetImportError as exc:
            raise CommandError(str(exc)) from None
        out.say(result.summary())
        report = result.captions
        for title, examples in (
            ("unreadable", result.unreadable_examples),
            ("caption rows without an image", report.missing_examples),
            ("duplicate caption rows", report.duplicate_examples),
            ("unparseable caption rows", report.bad_examples),
            ("caption rows with non-UTF-8 bytes (replaced)", report.undecodable_examples),
        ):
            if examples:
                out.say(f"  {title}: " + "; ".join(examples[:5]))
        out.result(result.as_dict())
