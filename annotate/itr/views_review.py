"""The ITR review page (`/itr/{dataset}/review/`) and its fragments. Thin, like the hit/miss
annotate page (annotate/validation/views.py): the queue and its leases are
`services.review_next` (docs/architecture.md#annotation-leases); the page saves reviews through
the same REST endpoint as any script (`POST /api/itr/reviews/`), with idempotency keys
(docs/architecture.md#idempotent-verdicts).

Blind mode (`?blind=1`) renders the items without their original labels: they are left out of
the context, not hidden by the browser."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from annotate.datasets.api import item_image_url
from annotate.datasets.models import Item
from annotate.itr.consensus import TYPES, category_score
from annotate.itr.models import ItrItem
from annotate.itr.selectors import get_itr_dataset_for_user, review_progress, review_queue_rows
from annotate.itr.services import review_next
from annotate.rest import id_param

MAX_EXCLUDE = 50
CHOICES = [(0, "No"), (1, "Yes")]


def _blind(request: HttpRequest) -> bool:
    return request.GET.get("blind") == "1"


def _exclude_ids(request: HttpRequest) -> list[int]:
    """The items the page already holds (`?exclude=1,2`): the preload asks for another one."""
    ids = (id_param(x) for x in request.GET.get("exclude", "").split(","))
    return [pk for pk in ids if pk is not None][:MAX_EXCLUDE]


def review_item_view(item: ItrItem, *, blind: bool) -> dict:
    """What a reviewer sees of an item. Blind: no original labels at all."""
    tweet: Item = item.item
    has_image = tweet.status == Item.Status.OK and bool(tweet.image_path)
    view = {
        "id": item.pk,
        "row": item.row,
        "tweet_id": item.tweet_id,
        "text": tweet.caption,
        "image_url": item_image_url(tweet.pk) if has_image else None,
        "image_problem": "" if has_image else (tweet.status_reason or tweet.get_status_display()),
        "original": None,
    }
    if not blind:
        original = item.original
        view["original"] = {
            "text": original[0],
            "image": original[1],
            "type": category_score(original),
        }
    return view


def _item_context(item: ItrItem | None, *, blind: bool) -> dict:
    return {
        "item": review_item_view(item, blind=blind) if item else None,
        "blind": blind,
        "choices": CHOICES,
        "types": TYPES,
    }


@login_required
@require_GET
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    dataset, _ = get_itr_dataset_for_user(request.user, pk)
    blind = _blind(request)
    item = review_next(dataset=dataset, reviewer=request.user)
    context = {
        "dataset": dataset,
        "progress": review_progress(dataset=dataset, reviewer=request.user),
        **_item_context(item, blind=blind),
    }
    return render(request, "itr/review.html", context)


@login_required
@require_GET
def review_item(request: HttpRequest, pk: int) -> HttpResponse:
    """One item as an HTML fragment: the caller's next one (`?exclude=` the ones the page
    holds), or `?item=ID` after an undo. 204 when nothing is left for the caller."""
    dataset, _ = get_itr_dataset_for_user(request.user, pk)
    if request.GET.get("item"):
        item_id = id_param(request.GET["item"])
        rows = review_queue_rows(dataset).select_related("item", "dataset")
        item = rows.filter(pk=item_id).first() if item_id is not None else None
        if item is None:
            raise Http404("No such test item in this dataset")
    else:
        item = review_next(dataset=dataset, reviewer=request.user, exclude=_exclude_ids(request))
    if item is None:
        return HttpResponse(status=204)
    return render(request, "itr/_review_item.html", _item_context(item, blind=_blind(request)))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def review_progress_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    dataset, _ = get_itr_dataset_for_user(request.user, pk)
    context = {
        "dataset": dataset,
        "progress": review_progress(dataset=dataset, reviewer=request.user),
    }
    return render(request, "itr/_review_progress.html", context)


urlpatterns: list = [
    path("itr/<int:pk>/review/", review_page, name="itr-review"),
    path("itr/<int:pk>/review/item/", review_item, name="itr-review-item"),
    path("itr/<int:pk>/review/progress/", review_progress_fragment, name="itr-review-progress"),
]
