import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.datasets.progress import ProgressBar
from annotate.taxonomies.importers import TaxonomyImportError, taxonomy_import
from annotate.taxonomies.models import DEFAULT_TEMPLATE


class Command(BaseCommand):
    help = (
        "Import (or update) taxonomy NAME from FILE: Places format (/b/bakery/shop 31), a plain "
        "list (one label per line) or a CSV (name,prompt)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="taxonomy name (a slug)")
        parser.add_argument("file", help="taxonomy file")
        parser.add_argument("--template", default=DEFAULT_TEMPLATE, help="prompt template")
        parser.add_argument(
            "--indoor-outdoor", help="file of 'KEY 1|2' lines (1 indoor, 2 outdoor)"
        )
        parser.add_argument("--json", action="store_true", help="print a JSON summary last")

    def handle(self, *args, **options) -> None:
        io_file = options["indoor_outdoor"]
        bar = ProgressBar("labels", 0, stream=self.stderr._out)
        try:
            result = taxonomy_import(
                name=options["name"],
                path=options["file"],
                template=options["template"],
                indoor_outdoor=Path(io_file) if io_file else None,
                progress=bar,
            )
        except TaxonomyImportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(result.summary())
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
