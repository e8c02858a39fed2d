from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.datasets.demo import DEMO_DATASET, DEMO_TAXONOMY, DEMO_USERS, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo: users admin, lead, annotator1, annotator2 (passwords printed), a "
        "generated captioned image dataset 'demo', the Places365 taxonomy and a tiny offline "
        "model checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when there are users already"
        )
        parser.add_argument(
            "--force", action="store_true", help="run even with DEBUG off (demo passwords!)"
        )
        parser.add_argument("--images", type=int, default=500, help="how many images to draw")
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout"
        )

    def _logins(self, out: CommandOutput) -> None:
        out.say("Demo logins (http://127.0.0.1:8000/accounts/login/):")
        for username, password, role in DEMO_USERS:
            out.say(f"  {username:<11} {password:<24} {role}")

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        if options["if_empty"] and get_user_model().objects.exists():
            out.say("The database already has users; not seeding.")
            self._logins(out)
            out.result({"seeded": False})
            return
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users with published passwords; it refuses to run with "
                "DEBUG off (add --force if you really mean it)"
            )
        if options["images"] < 1:
            raise CommandError("--images must be at least 1")
        with out.progress("demo images", options["images"], unit="img") as bar:
            result = demo_seed(images=options["images"], progress=bar)
        out.say(result.dataset.summary())
        out.say(result.taxonomy.summary())
        out.say(
            f"ITR dataset 'itr': {result.itr.items:,} tweets, {result.itr.reviews} simulated "
            "reviews; review at /itr/{id}/review/".replace("{id}", str(result.itr.dataset_id))
        )
        self._logins(out)
        command = None
        if result.checkpoint:
            command = (
                f"python manage.py classify {DEMO_DATASET} --taxonomy {DEMO_TAXONOMY} "
                f"--model sieve-tiny --weights {result.checkpoint} --wait"
            )
            out.say(f"Tiny model checkpoint: {result.checkpoint}")
            out.say(f"  ({result.checkpoint_note})")
            out.say(f"Classify the demo with:\n  {command}")
        else:
            out.say(result.checkpoint_note)
        out.result(
            {
                "seeded": True,
                "dataset": result.dataset.as_dict(),
                "taxonomy": result.taxonomy.as_dict(),
                "users": [u for u, _p, _r in DEMO_USERS],
                "checkpoint": result.checkpoint,
                "itr_dataset": result.itr.dataset_id,
                "classify_command": command,
            }
        )
