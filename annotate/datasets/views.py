from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from annotate.datasets.images import (
    DEFAULT_THUMBNAIL_SIZE,
    IMAGE_ERRORS,
    THUMBNAIL_SIZES,
    WEB_TYPES,
    image_reencoded_png,
    item_image_path,
    thumbnail_file,
)
from annotate.datasets.models import Item
from annotate.datasets.selectors import (
    datasets_for_user,
    get_dataset_for_user,
    get_item_for_user,
    item_counts_by_status,
    items_of_dataset,
)

GALLERY_PAGE_SIZE = 48


def session_or_token(view):
    """Like login_required, but API clients may also send `Authorization: Token <key>`
    (the image URLs appear in API responses). GET only, so CSRF does not apply."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated and request.META.get("HTTP_AUTHORIZATION"):
            try:
                found = TokenAuthentication().authenticate(request)
            except AuthenticationFailed:
                found = None
            if found is None:
                return HttpResponse("invalid token", status=401, content_type="text/plain")
            request.user = found[0]
        return login_required(view)(request, *args, **kwargs)

    return wrapped


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    datasets = datasets_for_user(request.user)
    return render(request, "datasets/dataset_list.html", {"datasets": datasets})


@login_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset, role = get_dataset_for_user(request.user, pk)
    status = request.GET.get("status") or None
    paginator = Paginator(items_of_dataset(dataset, status=status), GALLERY_PAGE_SIZE)
    counts = item_counts_by_status(dataset)
    return render(
        request,
        "datasets/dataset_detail.html",
        {
            "dataset": dataset,
            "role": role,
            "item_count": sum(counts.values()),
            "status_counts": [(s, Item.Status(s).label, n) for s, n in counts.items()],
            "status": status if status in counts else None,
            "page": paginator.get_page(request.GET.get("page")),
            # Hidden runs leave the list (docs/architecture.md#hidden-and-deleted-runs).
            "runs": dataset.runs.select_related("taxonomy").filter(hidden=False)[:50],
            "hidden_runs": dataset.runs.filter(hidden=True).select_related("taxonomy")[:50],
        },
    )


def _image_headers(response: HttpResponse) -> HttpResponse:
    # Never let a browser guess a type (an HTML file named .jpg stays an image) and never run
    # anything from an image response.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_safe
@session_or_token
def item_image(request: HttpRequest, pk: int) -> HttpResponse:
    """The item's original image (re-encoded as PNG when browsers cannot show its format)."""
    item, _ = get_item_for_user(request.user, pk)
    if item.status != Item.Status.OK:
        raise Http404("No image for this item")
    try:
        path = item_image_path(item)
        if item.image_format in WEB_TYPES:
            # FileResponse closes the file once it has been sent.
            handle = open(path, "rb")  # noqa: SIM115
            # The name from the stored path: text even when the name on disk is not UTF-8.
            name = item.image_path.rsplit("/", 1)[-1]
            content_type = WEB_TYPES[item.image_format]
            response = FileResponse(handle, content_type=content_type, filename=name)
        else:
            response = HttpResponse(image_reencoded_png(path), content_type="image/png")
    except IMAGE_ERRORS:
        raise Http404("No image for this item") from None
    return _image_headers(response)


@require_safe
@session_or_token
def item_thumbnail(request: HttpRequest, pk: int) -> HttpResponse:
    """A cached JPEG thumbnail; `?size=` is one of THUMBNAIL_SIZES."""
    item, _ = get_item_for_user(request.user, pk)
    try:
        size = int(request.GET.get("size", DEFAULT_THUMBNAIL_SIZE))
    except ValueError:
        size = -1
    if size not in THUMBNAIL_SIZES:
        return HttpResponse(
            f"size must be one of {', '.join(map(str, THUMBNAIL_SIZES))}",
            status=400,
            content_type="text/plain",
        )
    if item.status != Item.Status.OK:
        raise Http404("No image for this item")
    try:
        path = thumbnail_file(item, size)
    except IMAGE_ERRORS:
        raise Http404("No image for this item") from None
    handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
    return _image_headers(FileResponse(handle, content_type="image/jpeg"))
