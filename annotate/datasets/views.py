from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotate.accounts.roles import get_dataset_for_user, role_on
from annotate.datasets.models import Dataset


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    datasets = Dataset.objects.for_user(request.user).annotate(item_count=Count("items"))
    return render(request, "datasets/dataset_list.html", {"datasets": datasets})


@login_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_dataset_for_user(request.user, pk)
    return render(
        request,
        "datasets/dataset_detail.html",
        {
            "dataset": dataset,
            "role": role_on(request.user, dataset),
            "item_count": dataset.items.count(),
            "runs": dataset.runs.select_related("taxonomy")[:50],
        },
    )
