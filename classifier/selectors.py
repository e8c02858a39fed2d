from django.http import Http404

from annotate.accounts.roles import has_role
from annotate.datasets.models import Dataset, Role
from classifier.models import ClassificationRun


def runs_for_user(user):
    """Runs of the datasets the user may see."""
    return ClassificationRun.objects.filter(dataset__in=Dataset.objects.for_user(user))


def get_run_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> ClassificationRun:
    """The run if the user has at least `minimum` role on its dataset; 404 otherwise."""
    try:
        run = ClassificationRun.objects.select_related("dataset", "taxonomy").get(pk=pk)
    except (ClassificationRun.DoesNotExist, ValueError, TypeError):
        raise Http404("No such run") from None
    if not has_role(user, run.dataset, minimum):
        raise Http404("No such run")
    return run
