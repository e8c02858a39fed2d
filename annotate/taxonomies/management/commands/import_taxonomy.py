from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
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
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout"
        )

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        io_file = options["indoor_outdoor"]
        try:
            with out.progress("labels", unit="label") as bar:
                result = taxonomy_import(
                    name=options["name"],
                    path=options["file"],
                    template=options["template"],
                    indoor_outdoor=Path(io_file) if io_file else None,
                    progress=bar,
                )
        except TaxonomyImportError as exc:
            raise CommandError(str(exc)) from None
        out.say(result.summary())
        for warning in result.warnings:
            out.warn(f"warning: {warning}")
        out.result(result.as_dict())
