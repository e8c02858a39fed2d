from django.http import Http404

from annotate.accounts.roles import has_role
from annotate.datasets.models import Dataset, Role
from annotate.validation.models import Sample


def samples_for_user(user):
    """Samples of the datasets the user may see."""
    return Sample.objects.filter(run__dataset__in=Dataset.objects.for_user(user))


def get_sample_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> Sample:
    """The sample if the user has at least `minimum` role on its dataset; 404 otherwise."""
    try:
        sample = Sample.objects.select_related("run__dataset", "run__taxonomy").get(pk=pk)
    except (Sample.DoesNotExist, ValueError, TypeError):
        raise Http404("No such sample") from None
    if not has_role(user, sample.run.dataset, minimum):
        raise Http404("No such sample")
    return sample
