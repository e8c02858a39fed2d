from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.datasets.demo import (
    DEFAULT_IMAGES,
    DEMO_DATASET,
    DEMO_TAXONOMY,
    DEMO_USERS,
    DemoResult,
    demo_seed,
)

# The settings refuse to start with DEBUG off and no SECRET_KEY: the local commands say DEBUG=1.
PYTHON = "DEBUG=1 .venv/bin/python manage.py"
# The command for real CLIP weights, when the model hub is reachable.
REAL_WEIGHTS = "--model ViT-B-32 --weights laion2b_s34b_b79k"


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


class Command(BaseCommand):
    help = (
        "Create the demo: users admin, lead, annotator1, annotator2 (passwords printed), a "
        "generated captioned image dataset 'demo' (ground truth in metadata['scene']), the "
        "Places365 taxonomy, the offline demo model sieve-demo.pt (the tiny architecture "
        "trained for about a minute on the demo's drawings), its classification run and a "
        "validation study under way."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when there are users already"
        )
        parser.add_argument(
            "--force", action="store_true", help="run even with DEBUG off (demo passwords!)"
        )
        parser.add_argument(
            "--images", type=int, default=DEFAULT_IMAGES, help="how many images to draw"
        )
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="where the app is served (printed)"
        )
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout"
        )

    def _logins(self, out: CommandOutput, url: str) -> None:
        out.say(f"Demo logins ({_url(url, '/accounts/login/')}):")
        for username, password, role in DEMO_USERS:
            out.say(f"  {username:<11} {password:<24} {role}")

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        url = options["url"]
        if options["if_empty"] and get_user_model().objects.exists():
            out.say("The database already has users; not seeding.")
            self._logins(out, url)
            out.result({"seeded": False})
            return
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users with published passwords; it refuses to run with "
                "DEBUG off (add --force if you really mean it)"
            )
        if options["images"] < 1:
            raise CommandError("--images must be at least 1")
        result = demo_seed(images=options["images"], bars=out.progress)
        commands = self._summary(out, result, url)
        study = result.study
        out.result(
            {
                "seeded": True,
                "url": url,
                "dataset": result.dataset.as_dict(),
                "taxonomy": result.taxonomy.as_dict(),
                "users": [u for u, _p, _r in DEMO_USERS],
                "checkpoint": result.checkpoint,
                "model": {
                    "trained": result.model.trained,
                    "seconds": result.model.seconds,
                    "steps": result.model.steps,
                    "training_accuracy": result.model.training_accuracy,
                },
                "demo_run": None
                if study is None
                else {
                    "id": study.run_id,
                    "items": study.items,
                    "accuracy": study.accuracy,
                    "share_at_0_5": study.share_at_0_5,
                    "sample": study.sample_id,
                    "sample_items": study.sample_items,
                    "verdicts": study.verdicts,
                    "left_for_annotator1": study.left_for_annotator1,
                },
                "itr_dataset": result.itr.dataset_id,
                "classify_command": commands.get("demo"),
                "classify_real_command": commands.get("real"),
            }
        )

    def _summary(self, out: CommandOutput, result: DemoResult, url: str) -> dict[str, str]:
        out.say(result.dataset.summary())
        out.say(result.taxonomy.summary())
        out.say(
            f"ITR dataset 'itr': {result.itr.items:,} tweets, {result.itr.reviews} simulated "
            f"reviews; review at {_url(url, f'/itr/{result.itr.dataset_id}/review/')}"
        )
        model = result.model
        commands = {
            "real": (
                f"{PYTHON} classify {DEMO_DATASET} --taxonomy {DEMO_TAXONOMY} {REAL_WEIGHTS} --wait"
            )
        }
        if model.path is None:
            out.say(model.note)
        else:
            commands["demo"] = (
                f"{PYTHON} classify {DEMO_DATASET} --taxonomy {DEMO_TAXONOMY} "
                f"--model sieve-tiny --weights {model.path} --wait"
            )
            how = (
                f"trained now in {model.seconds:.0f} s"
                if model.trained and model.seconds is not None
                else "up to date, kept"
            )
            out.say(f"Demo model: {model.path} ({how})")
            out.say(f"  ({model.note})")
        study = result.study
        if study is not None:
            out.say(
                f"Demo run {study.run_id}: {study.items} items, top-1 accuracy against "
                f"metadata['scene'] {_percent(study.accuracy)}, "
                f"{_percent(study.share_at_0_5)} of items at p >= 0.5"
            )
            out.say(f"  {_url(url, f'/runs/{study.run_id}/')}")
            out.say(
                f"Sample {study.sample_id}: {study.sample_items} items, {study.verdicts} "
                f"simulated verdicts; {study.left_for_annotator1} left for annotator1 at "
                f"{_url(url, f'/samples/{study.sample_id}/annotate/')}; dashboard (lead) at "
                f"{_url(url, f'/samples/{study.sample_id}/')}"
            )
        self._logins(out, url)
        out.say(f"Serving at {url}")
        if "demo" in commands:
            out.say(f"Classify the demo again with the demo model (no worker: add --sync):\n"
                    f"  {commands['demo']}")  # fmt: skip
        out.say(
            "With real CLIP weights (needs the model hub, or the weights in the local cache):"
            f"\n  {commands['real']}"
        )
        return commands
