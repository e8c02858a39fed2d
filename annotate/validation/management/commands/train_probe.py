"""`train_probe RUN_ID [--folds 5] [--seed 0] [--wait | --sync] [--json]`: a probe run learned
from the verdicts on the run's dataset (docs/architecture.md#probe)."""

import time

from django.core.management.base import BaseCommand, CommandError

from annotate.cli import CommandOutput, ProgressBar
from annotate.datasets.models import Role
from annotate.errors import ServiceError
from annotate.validation.probing import ACTIVE, DEFAULT_FOLDS, probe_request, probe_train
from classifier.api import run_json
from classifier.models import ClassificationRun


def probe_summary(run: ClassificationRun) -> list[str]:
    """A finished probe run's figures in a few lines for people (the page says the same)."""
    figures = run.probe
    if run.status != ClassificationRun.Status.SUCCEEDED:
        return [f"Probe run {run.pk} {run.status}" + (f": {run.error}" if run.error else ".")]
    examples = figures.get("examples") or {}
    lines = [
        f"Probe run {run.pk} of run {figures.get('parent')} succeeded: learned from "
        f"{figures.get('verdict_items')} items with verdicts ({examples.get('positive', 0)} "
        f"right labels, {examples.get('not_label', 0)} wrong ones), {figures.get('folds')} "
        f"folds, alpha {_number(figures.get('alpha'), 2)}."
    ]
    judged = figures.get("judged_items") or 0
    if not judged:
        lines.append("No verdict item decides both the probe and the parent: no accuracy.")
        return lines
    lines += [
        f"On the {judged} judged items: cross-validated accuracy "
        f"{_interval(figures, 'cross_validated')} against the parent's zero-shot "
        f"{_interval(figures, 'zero_shot')} (95% intervals).",
        f"Only the probe right on {figures.get('probe_only')}, only zero-shot on "
        f"{figures.get('zero_shot_only')}: McNemar p = {_number(figures.get('mcnemar_p'), 3)}.",
    ]
    return lines


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(figures: dict, prefix: str) -> str:
    return (
        f"{_number(figures.get(f'{prefix}_accuracy'), 3)} "
        f"[{_number(figures.get(f'{prefix}_low'), 3)}, {_number(figures.get(f'{prefix}_high'), 3)}]"
    )


class Command(BaseCommand):
    help = (
        "Train a probe from the annotators' verdicts over a finished run's cached embeddings: "
        "a new run (source 'probe') learned by a worker on queue `default`, scored against "
        "the run's zero-shot predictions with cross-fitting."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("run", type=int, help="the run to learn from (its id)")
        parser.add_argument(
            "--folds", type=int, default=DEFAULT_FOLDS, help="cross-fitting folds (3 to 20)"
        )
        parser.add_argument("--seed", type=int, default=0, help="folds and basis sample")
        parser.add_argument("--wait", action="store_true", help="follow the run to its end")
        parser.add_argument(
            "--sync", action="store_true", help="do the work in this process (no worker needed)"
        )
        parser.add_argument(
            "--json", action="store_true", help="print only the run's JSON on stdout"
        )

    def handle(self, *args, **opts) -> None:
        out = CommandOutput(self, as_json=opts["json"])
        parent = ClassificationRun.objects.filter(pk=opts["run"]).first()
        if parent is None:
            raise CommandError(f"No run {opts['run']}.")
        pending = set(parent.probes.filter(status__in=ACTIVE).values_list("pk", flat=True))
        try:
            run = probe_request(
                run=parent, folds=opts["folds"], seed=opts["seed"], send=not opts["sync"]
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        if run.pk in pending:
            out.warn(f"Probe run {run.pk} of run {parent.pk} is already {run.status}.")
        else:
            out.warn(f"Probe run {run.pk} of run {parent.pk} queued ({opts['folds']} folds).")
        if opts["sync"] or opts["wait"]:
            with out.progress(f"probe run {run.pk}", unit="trainings") as bar:
                if opts["sync"] and run.status == ClassificationRun.Status.QUEUED:
                    bar.status("training")
                    probe_train(run_id=run.pk)
                self._follow(run, bar)
        run.refresh_from_db()
        if run.status in ClassificationRun.TERMINAL:
            for line in probe_summary(run):
                out.say(line)
        else:
            out.say(f"Probe run {run.pk} {run.status}; follow it at /runs/{run.pk}/")
        out.result(run_json(run, role=Role.ADMIN))
        if run.status == ClassificationRun.Status.FAILED:
            raise CommandError(run.error)

    @staticmethod
    def _follow(run: ClassificationRun, bar: ProgressBar) -> None:
        """Draw the training progress (k of the trainings) until the run ends."""
        while True:
            run.refresh_from_db()
            progress = (run.probe or {}).get("progress") or {}
            phase = progress.get("phase", "queued")
            if phase == "training":
                bar(progress.get("done", 0), progress.get("total") or None)
            elif phase == "done" and run.probe.get("trainings"):
                bar(run.probe["trainings"], run.probe["trainings"])
            bar.status(run.status if run.status in ClassificationRun.TERMINAL else phase)
            if run.status in ClassificationRun.TERMINAL:
                return
            time.sleep(0.5)
