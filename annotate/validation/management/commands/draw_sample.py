import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.utils.encoders import JSONEncoder

from annotate.cli import CommandOutput
from annotate.validation.api import sample_json
from annotate.validation.models import Sample
from annotate.validation.sampling import SampleError, sample_draw
from classifier.models import ClassificationRun


class Command(BaseCommand):
    help = (
        "Draw a sample of a run: the N most frequently predicted labels x K items each; "
        "balanced (default): uniformly without replacement, reproducible from --seed, the only "
        "sample whose rates estimate the run's accuracy; suspects: each label's K likeliest "
        "errors (targeted, for fixing labels); uncertain (probe runs only): each label's K "
        "items without a verdict whose top two probe probabilities are closest (targeted)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int)
        parser.add_argument("--classes", type=int, default=10, help="top-N labels (10)")
        parser.add_argument("--per-class", type=int, default=100, help="K items per label (100)")
        parser.add_argument("--seed", type=int, default=None, help="random when omitted")
        parser.add_argument("--redundancy", type=int, default=1, help="verdicts per item (1)")
        parser.add_argument(
            "--overlap", type=float, default=0.1, help="share of items with >= 2 verdicts (0.1)"
        )
        parser.add_argument("--min-probability", type=float, default=0.0)
        parser.add_argument(
            "--exclude-previous", action="store_true", help="skip items of earlier samples"
        )
        parser.add_argument("--blind", action="store_true", help="hide probabilities")
        parser.add_argument(
            "--strategy",
            choices=[choice for choice, _ in Sample.Strategy.choices],
            default=Sample.Strategy.BALANCED,
            help="balanced (random, default), suspects (likeliest errors), uncertain (a probe "
            "run's least certain items; see train_probe)",
        )
        parser.add_argument("--user", help="username recorded as the creator")
        parser.add_argument(
            "--json", action="store_true", help="print only the sample as JSON on stdout"
        )

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        run = ClassificationRun.objects.filter(pk=options["run_id"]).first()
        if run is None:
            raise CommandError(f"no run with id {options['run_id']}")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
        started = time.perf_counter()
        try:
            sample = sample_draw(
                run=run,
                classes=options["classes"],
                per_class=options["per_class"],
                seed=options["seed"],
                redundancy=options["redundancy"],
                overlap=options["overlap"],
                min_probability=options["min_probability"],
                exclude_previous=options["exclude_previous"],
                blind=options["blind"],
                strategy=options["strategy"],
                created_by=user,
            )
        except SampleError as exc:
            raise CommandError(str(exc)) from None
        elapsed = time.perf_counter() - started
        data = sample_json(sample)
        progress = data["progress"]
        out.warn(f"drew sample {sample.pk} from run {run.pk} in {elapsed:.2f} s")
        out.say(
            f"sample {sample.pk}: {progress['items']} items, {progress['wanted']} verdicts "
            f"wanted, seed {sample.seed}, strategy {sample.strategy}; annotate at "
            f"/samples/{sample.pk}/annotate/"
        )
        out.result(data, encoder=JSONEncoder)
