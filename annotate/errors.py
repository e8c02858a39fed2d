"""Errors the services raise, one class per outcome. The API answers each with its status code
(`annotate.rest.exception_handler`); pages and commands catch them and show the message. A
refused role is Django's PermissionDenied, raised by `annotate.datasets.access.require_role`
(403 on pages and in the API).

Services subclass these (`VerdictConflict(Conflict)`, `SampleError(Invalid)`, ...), so a caller
can catch either the precise error or the outcome."""


class ServiceError(Exception):
    """A request the service refuses; the message is meant for the user."""

    status_code = 400


class Invalid(ServiceError, ValueError):
    """Bad input: HTTP 400."""

    status_code = 400


class NotFound(ServiceError):
    """No such object, or not one the caller may see: HTTP 404."""

    status_code = 404


class Conflict(ServiceError):
    """The object's state does not allow this (already judged, not resumable): HTTP 409."""

    status_code = 409
