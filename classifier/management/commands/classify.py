"""`classify DATASET --taxonomy NAME [--model] [--weights] [--ensemble] [--wait]`."""

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate.cli import CommandOutput, ProgressBar
from annotate.datasets.models import Dataset
from annotate.datasets.selectors import find_by_name_or_id
from annotate.taxonomies.models import Taxonomy
from classifier.models import ClassificationRun
from classifier.selectors import run_progress
from classifier.services import ENSEMBLES, run_create, run_sweep


class Command(BaseCommand):
    help = (
        "Classify a dataset with an open_clip model: the run is split into chunks processed by "
        "Celery workers on queue `gpu` (or re-scored from the embedding cache on `default` "
        "when the same model already embedded the dataset)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="dataset name (or id)")
        parser.add_argument("--taxonomy", required=True, help="taxonomy name (or id)")
        parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture")
        parser.add_argument(
            "--weights", default="", help="pretrained tag (needs the hub) or a checkpoint path"
        )
        parser.add_argument("--ensemble", choices=ENSEMBLES, default="image")
        parser.add_argument("--w-img", type=float, default=0.8, help="weighted: image weight")
        parser.add_argument("--w-txt", type=float, default=0.2, help="weighted: caption weight")
        parser.add_argument("--tau", type=float, default=0.6, help="conditional: threshold")
        parser.add_argument(
            "--template", action="append", default=[],
            help="prompt template with {} (repeat to average several)",
        )  # fmt: skip
        parser.add_argument("--name", default="")
        parser.add_argument("--no-cache", action="store_true", help="ignore cached embeddings")
        parser.add_argument("--wait", action="store_true", help="follow the run to its end")
        parser.add_argument(
            "--sync", action="store_true", help="do the work in this process (no worker needed)"
        )
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
        self._check_model(opts["model"], opts["weights"])
        try:
            run = run_create(
                dataset=dataset, taxonomy=taxonomy, model=opts["model"],
                weights=opts["weights"], ensemble=opts["ensemble"], w_img=opts["w_img"],
                w_txt=opts["w_txt"], condition_threshold=opts["tau"],
                templates=opts["template"], name=opts["name"],
                use_cache=not opts["no_cache"], send=not opts["sync"],
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        out.warn(f"Run {run.pk} queued ({run.item_count} items, source {run.source}).")
        if opts["sync"] or opts["wait"]:
            with out.progress(f"run {run.pk}", run.item_count, unit="items") as bar:
                if opts["sync"]:
                    self._run_here(run, bar)
                else:
                    self._follow(run, bar)
        run.refresh_from_db()
        progress = run_progress(run=run)
        if run.status in ClassificationRun.TERMINAL:
            out.say(
                f"Run {run.pk} {run.status}: {progress['predicted']} predictions, "
                f"{progress['unreadable']} unreadable {progress['unreadable_by_reason'] or ''}"
            )
        else:
            out.say(f"Run {run.pk} {run.status}; follow it at /runs/{run.pk}/")
        out.result({"run": run.pk, "status": run.status, "error": run.error, **progress})
        if run.status == ClassificationRun.Status.FAILED:
            raise CommandError(run.error)

    def _check_model(self, model: str, weights: str) -> None:
        """Fail before creating a run when the architecture or checkpoint is wrong."""
        try:
            from classifier import engine
        except ImportError:  # the web-only install: the worker will check
            return
        try:
            engine.check_model_spec(model, weights)
        except engine.EngineError as exc:
            raise CommandError(str(exc)) from None

    @staticmethod
    def _draw(run: ClassificationRun, bar: ProgressBar) -> None:
        progress = run_progress(run=run)
        bar.status(run.status)
        bar(progress["processed"], progress["total"])

    def _follow(self, run: ClassificationRun, bar: ProgressBar) -> None:
        last_sweep = time.monotonic()
        while True:
            run.refresh_from_db()
            self._draw(run, bar)
            if run.status in ClassificationRun.TERMINAL:
                return
            if time.monotonic() - last_sweep > 30:
                run_sweep(run=run)  # re-dispatch chunks whose worker died
                last_sweep = time.monotonic()
            time.sleep(0.5)

    def _run_here(self, run: ClassificationRun, bar: ProgressBar) -> None:
        from classifier.tasks import run_process_here

        run_process_here(
            run=run, worker="classify --sync", after_chunk=lambda: self._draw(run, bar)
        )
        self._draw(run, bar)
