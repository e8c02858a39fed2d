"""Login lockout (django-axes): after SIEVE_LOGIN_FAILURE_LIMIT wrong passwords for a username,
every login for it is refused, the right password included, for SIEVE_LOGIN_COOLOFF_MINUTES.

The login form, the admin login and the API token endpoint all authenticate through
`django.contrib.auth.authenticate(request=...)`, so one backend guards all three."""

import math

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class LoginLockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check for every login that comes with a request.

    A call without a request is not a web login (Django's test client `login()`, a shell);
    it goes straight to the next backend, where axes would raise instead."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def cooloff_minutes(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else 0


def lockout_message(request: HttpRequest | None = None) -> str:
    minutes = cooloff_minutes(request)
    return (
        "Too many failed logins for this username. Logging in is blocked for "
        f"{minutes} minute{'s' if minutes != 1 else ''}, even with the right password; "
        "try again later or ask an admin to unlock the account."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """The login page again, with the reason, as 429 (axes' AXES_LOCKOUT_CALLABLE)."""
    context = {"lockout_message": lockout_message(request), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
