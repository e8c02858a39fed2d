"""The prompts a run's model sees for each label: the worker encodes them and annotators are
shown them, from this one place. No torch: the web tier imports it."""

from annotate.taxonomies.models import Label
from classifier.models import ClassificationRun


def label_prompts(run: ClassificationRun, label: Label) -> list[str]:
    """The label's prompts in `run` (averaged in embedding space): its own prompt, the outdoor
    form for a key ending in `/outdoor`, else the label in each of the run's `--template`s
    (none given: the taxonomy's template)."""
    # The run's taxonomy is the label's: its template needs no query per label.
    return label.prompts(run.templates or [run.taxonomy.prompt_template])


def run_label_prompts(run: ClassificationRun) -> tuple[list[int], list[list[str]]]:
    """Label ids in taxonomy order, and each label's prompts."""
    labels = run.taxonomy.labels.order_by("position", "key")
    ids, prompts = [], []
    for label in labels:
        ids.append(label.pk)
        prompts.append(label_prompts(run, label))
    return ids, prompts
