from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate.accounts.roles import is_global_admin, membership_set
from annotate.console.forms import DatasetImportForm, MembershipForm, TaxonomyImportForm
from annotate.datasets.importers import DatasetImportError, dataset_import
from annotate.datasets.models import Dataset, Membership
from annotate.taxonomies.importers import TaxonomyImportError, taxonomy_import
from annotate.taxonomies.models import Taxonomy

# The console imports inside the request (~10,000 images/s): bigger folders would outlive
# proxy timeouts, so they are refused with the equivalent command instead.
CONSOLE_MAX_IMAGES = 200_000


def admin_required(view):
    """Console pages are for global admins only (403 for everybody else)."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_global_admin(request.user):
            raise PermissionDenied("Admins only")
        return view(request, *args, **kwargs)

    return wrapped


def _render_console(request: HttpRequest, status: int = 200, **forms) -> HttpResponse:
    context = {
        "dataset_form": forms.get("dataset_form") or DatasetImportForm(),
        "taxonomy_form": forms.get("taxonomy_form") or TaxonomyImportForm(),
        "membership_form": forms.get("membership_form") or MembershipForm(),
        "datasets": Dataset.objects.annotate(item_count=Count("items")).prefetch_related(
            "memberships__user"
        ),
        "taxonomies": Taxonomy.objects.annotate(label_count=Count("labels")),
    }
    return render(request, "console/console.html", context, status=status)


@admin_required
def console(request: HttpRequest) -> HttpResponse:
    return _render_console(request)


@require_POST
@admin_required
def import_dataset(request: HttpRequest) -> HttpResponse:
    form = DatasetImportForm(request.POST)
    if form.is_valid():
        try:
            result = dataset_import(
                name=form.cleaned_data["name"],
                folder=form.cleaned_data["folder"],
                captions=form.cleaned_data["captions"],
                max_images=CONSOLE_MAX_IMAGES,
            )
        except DatasetImportError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Imported {result.summary()}")
            return redirect("console")
    return _render_console(request, status=400, dataset_form=form)


@require_POST
@admin_required
def import_taxonomy(request: HttpRequest) -> HttpResponse:
    form = TaxonomyImportForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = taxonomy_import(
                name=data["name"],
                path=data["file"],
                text=data["upload"].read() if data["upload"] else None,
                template=data["template"],
                indoor_outdoor=data["indoor_outdoor"],
            )
        except TaxonomyImportError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Imported {result.summary()}")
            for warning in result.warnings:
                messages.warning(request, warning)
            return redirect("console")
    return _render_console(request, status=400, taxonomy_form=form)


@require_POST
@admin_required
def member_set(request: HttpRequest) -> HttpResponse:
    form = MembershipForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        membership = membership_set(
            dataset=data["dataset"], user=data["username"], role=data["role"]
        )
        messages.success(
            request, f"{membership.user} is now {membership.role} on {membership.dataset}"
        )
        return redirect("console")
    return _render_console(request, status=400, membership_form=form)


@require_POST
@admin_required
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user", "dataset"), pk=pk)
    membership.delete()
    messages.success(request, f"Removed {membership.user} from {membership.dataset}")
    return redirect("console")
