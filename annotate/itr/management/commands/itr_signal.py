from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.cli import CommandOutput
from annotate.datasets.models import Dataset
from annotate.datasets.selectors import find_by_name_or_id
from annotate.errors import ServiceError
from annotate.itr.signal import signal_compute
from classifier.models import ClassificationRun


class Command(BaseCommand):
    help = (
        "Compute the model signal of ITR dataset DATASET from the embeddings of run RUN_ID (a "
        "succeeded run of the same dataset): the CLIP image-caption similarity of every item, "
        "a logistic regression per task fitted on the train split, each test item's "
        "probability of its own labels; the review queue then serves the likeliest errors "
        "first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="ITR dataset name or id")
        parser.add_argument("run", type=int, help="classification run id")
        parser.add_argument(
            "--json", action="store_true", help="print only a JSON summary on stdout"
        )

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        datasets = Dataset.objects.filter(kind=Dataset.Kind.ITR)
        dataset = find_by_name_or_id(datasets, options["dataset"])
        if dataset is None:
            raise CommandError(f"No ITR dataset named {options['dataset']!r}.")
        run = ClassificationRun.objects.filter(pk=options["run"]).first()
        if run is None:
            raise CommandError(f"No classification run {options['run']}.")
        try:
            result = signal_compute(dataset=dataset, run=run)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        out.say(
            f"Signal of {dataset.name} from run {run.pk}: fitted on {result['train_items']:,} "
            f"train items, {result['test_items']:,} test items scored, "
            f"{result['without_embeddings']:,} items without embeddings."
        )
        for task, fit in result["tasks"].items():
            out.say(
                f"  {task}: P(1) = logistic({fit['intercept']:.3f} + {fit['coefficient']:.3f} · "
                f"similarity); AUC train {fit['auc_train']}, test {fit['auc_test']}"
            )
        out.say(
            f"  candidates: {result['candidates']:,} test items with model score < "
            f"{result['candidate_score']} ({result['candidates_text']:,} doubt the text label, "
            f"{result['candidates_image']:,} the image label)"
        )
        out.result(result)
