from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.datasets.importers import DatasetImportError
from annotate.itr.importers import DEFAULT_SPLIT, ItrImportError, itr_import


class Command(BaseCommand):
    help = (
        "Import (or re-import) an image-text relation CSV as ITR dataset NAME: tweet id, user "
        "id, text and the two labels; images T{tweet_id}.jpg from --images; rows from --split "
        "on are the test split; --controversial marks a published list's items as candidates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="dataset name (a slug)")
        parser.add_argument("csv", help="the ITR CSV (backslash-escaped quotes)")
        parser.add_argument("--images", help="folder of T{tweet_id}.jpg, inside SIEVE_IMAGE_ROOTS")
        parser.add_argument(
            "--split", type=int, default=DEFAULT_SPLIT, help="first row of the test split"
        )
        parser.add_argument("--controversial", help="a list of relabelled rows (AB->CD: rows)")
        parser.add_argument("--quorum", type=int, default=3, help="reviews wanted per test item")
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout"
        )

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        try:
            with out.progress("images", unit="item") as bar:
                result = itr_import(
                    name=options["name"],
                    csv_path=options["csv"],
                    images=options["images"],
                    split=options["split"],
                    controversial=options["controversial"],
                    quorum=options["quorum"],
                    progress=bar,
                )
        except (ItrImportError, DatasetImportError) as exc:
            raise CommandError(str(exc)) from None
        out.say(result.summary())
        if result.controversial:
            c = result.controversial
            out.say(
                f"  controversial list: {c['listed']} items ({c['text']} text only, "
                f"{c['image']} image only, {c['both']} both)"
            )
        for example in result.unreadable_examples[:5]:
            out.warn(f"  unreadable image: {example}")
        out.result(result.as_dict())
