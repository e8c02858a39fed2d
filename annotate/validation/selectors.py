"""Permission-checked reads of samples and sample items (other datasets answer 404)."""

from annotate.datasets.access import fetch_for_user
from annotate.datasets.models import Dataset, Role
from annotate.validation.models import Sample, SampleItem, Verdict


def samples_for_user(user):
    """Samples of the datasets the user may see."""
    return Sample.objects.filter(run__dataset__in=Dataset.objects.for_user(user))


def get_sample_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> tuple[Sample, str]:
    """(sample, caller's role), or 404 (`fetch_for_user`)."""
    samples = Sample.objects.select_related("run__dataset", "run__taxonomy")
    return fetch_for_user(samples, pk, user, dataset_field="run__dataset", minimum=minimum)


def get_sample_item_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> tuple[SampleItem, str]:
    """(sample item, caller's role), or 404 (`fetch_for_user`)."""
    items = SampleItem.objects.select_related("sample__run__dataset", "sample__run__taxonomy")
    return fetch_for_user(items, pk, user, dataset_field="sample__run__dataset", minimum=minimum)


def get_own_verdict_for_user(user, pk) -> tuple[Verdict, str]:
    """(one of the caller's own verdicts, caller's role), or 404: everybody else's verdicts,
    and one's own on a dataset one has left, answer 404 (`fetch_for_user`)."""
    verdicts = Verdict.objects.filter(annotator=user.pk).select_related(
        "sample_item__sample__run", "annotator", "corrected_label"
    )
    dataset = "sample_item__sample__run__dataset"
    return fetch_for_user(verdicts, pk, user, dataset_field=dataset)
