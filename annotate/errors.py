"""Errors the services raise, one class per outcome. The API answers each with its status code
(`annotate.rest.exception_handler`); pages and commands catch them and show the message. A
refused role is Django's PermissionDenied, raised by `annotate.datasets.access.require_role`
(403 on pages and in the API).

Services subclass these (`VerdictConflict(Conflict)`, `SampleError(Invalid)`, ...), so a caller
can catch either the precise error or the outcome.

The 403 and 404 pages (`permission_denied`, `page_not_found`, the project's handler403 and
handler404) show such a message when our code raised it; the API answers its own JSON errors
(`annotate.rest`, `annotate.api_fallback`)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class ServiceError(Exception):
    """A request the service refuses; the message is meant for the user."""

    status_code = 400


class Invalid(ServiceError, ValueError):
    """Bad input: HTTP 400."""

    status_code = 400


class FieldInvalid(Invalid):
    """Bad input in one named field or parameter: HTTP 400 with `{"field": ["why"]}`, as a
    serializer's field error (`annotate.rest.error_body`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(ServiceError):
    """No such object, or not one the caller may see: HTTP 404."""

    status_code = 404


class Conflict(ServiceError):
    """The object's state does not allow this (already judged, not resumable): HTTP 409."""

    status_code = 409


# ---------------------------------------------------------------- error pages

# Code whose exception messages are written for people: ours, not Django's (whose 404
# messages, e.g. a resolver's, are for developers).
OUR_PACKAGES = ("annotate.", "classifier.")


def user_message(exception: BaseException | None) -> str:
    """The message of a refusal or a miss when our code raised it with one ("Dashboards are
    for leads and admins of the dataset.", "No such sample"); "" otherwise."""
    if exception is None or not exception.args or not isinstance(exception.args[0], str):
        return ""
    tb = exception.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:  # the frame that raised it
        tb = tb.tb_next
    if not tb.tb_frame.f_globals.get("__name__", "").startswith(OUR_PACKAGES):
        return ""
    message = exception.args[0].strip()
    return message if not message or message.endswith((".", "!", "?")) else f"{message}."


def permission_denied(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    """handler403: the site's layout with the reason and a way home."""
    return render(request, "403.html", {"reason": user_message(exception)}, status=403)


def page_not_found(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    """handler404: the site's layout with the reason (when ours) and a way home."""
    return render(request, "404.html", {"reason": user_message(exception)}, status=404)
