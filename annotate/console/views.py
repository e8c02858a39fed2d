from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotate.accounts.roles import is_global_admin


def admin_required(view):
    """Console pages are for global admins only (403 for everybody else)."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_global_admin(request.user):
            raise PermissionDenied("Admins only")
        return view(request, *args, **kwargs)

    return wrapped


@admin_required
def console(request: HttpRequest) -> HttpResponse:
    return render(request, "console/console.html")
