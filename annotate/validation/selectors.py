"""Permission-checked reads of samples and sample items (other datasets answer 404)."""

from django.db.models import QuerySet

from annotate.datasets.access import fetch_for_user, require_role
from annotate.datasets.models import Dataset, Role
from annotate.validation.models import Adjudication, Sample, SampleItem, Verdict

ADJUDICATION_LEADS_ONLY = "Only leads and admins of this dataset may adjudicate."


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


def get_adjudication_for_lead(user, pk) -> Adjudication:
    """An adjudication of a dataset the caller leads: 404 for outsiders, 403 for annotators."""
    adjudications = Adjudication.objects.select_related(
        "sample_item", "corrected_label", "decided_by"
    )
    dataset = "sample_item__sample__run__dataset"
    adjudication, role = fetch_for_user(adjudications, pk, user, dataset_field=dataset)
    require_role(role, Role.LEAD, ADJUDICATION_LEADS_ONLY)
    return adjudication


def history_for_user(user) -> QuerySet[Verdict]:
    """The user's own verdicts, newest first, on the datasets they may still see (the others
    answer 404 to `get_own_verdict_for_user`, so they are not offered for a change)."""
    return (
        Verdict.objects.filter(
            annotator=user.pk,
            sample_item__sample__run__dataset__in=Dataset.objects.for_user(user).values("pk"),
        )
        .select_related(
            "sample_item__sample__run__dataset",
            "sample_item__prediction__item",
            "sample_item__prediction__label",
            "corrected_label",
        )
        .order_by("-created", "-id")
    )
