"""The REST API's conventions, shared by every app's `api.py` (docs/architecture.md#layout):

- errors: one exception handler turns the service errors (`annotate.errors`), Django's and
  DRF's into `{"detail": "..."}` (or `{"field": ["..."]}` for bad fields) with their status;
- pagination: limit/offset everywhere, `{"count", "next", "previous", "results"}`, at most
  `MAX_PAGE` rows a page;
- query parameters are validated by a small serializer per endpoint: a bad number or an
  unknown choice answers 400, never a default in silence;
- JSON bodies nested too deeply for the parser answer 400;
- the OpenAPI schema documents every status code an endpoint answers (`responses`).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.errors import FieldInvalid, ServiceError
from annotate.leasing import MAX_DURATION_MS

# DRF's settings import this module while `rest_framework.views` loads (the parser, the
# pagination and the handler are settings), and a process may read those settings before
# anything imported the views (a Celery worker's system checks): this module must not import
# DRF's views or decorators at load time.

MAX_PAGE = 1000
MAX_ID = 2**63 - 1  # the largest primary key PostgreSQL can store


def id_param(value: str) -> int | None:
    """An id from a query, form or body value: ASCII digits, a bigint at most; else None.
    (`str.isdigit` alone takes "²", which `int` refuses: a 500.) Pages and services use it
    wherever a value may be an id."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


# ---------------------------------------------------------------- errors


class ErrorSerializer(serializers.Serializer):
    """`detail` for an error as a whole; a bad input field answers `{"field": ["why"]}`."""

    detail = serializers.CharField(required=False)


@singledispatch
def error_body(exc: ServiceError) -> dict[str, Any]:
    """The JSON body of a service error; an app registers its own for errors that carry more
    (a 409 with the verdict that is already there)."""
    return {"detail": str(exc)}


@error_body.register
def _field_error_body(exc: FieldInvalid) -> dict[str, Any]:
    return {exc.field: [str(exc)]}


def _django_validation_detail(exc: DjangoValidationError) -> dict[str, Any]:
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"detail": " ".join(exc.messages)}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus the service errors and Django's ValidationError. Every error body
    is a JSON object: a bare list of messages becomes `{"detail": "..."}`, and an error of an
    export asked for as CSV is still JSON."""
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, ServiceError):
        response = Response(error_body(exc), status=exc.status_code)
    else:
        if isinstance(exc, DjangoValidationError):
            exc = ValidationError(_django_validation_detail(exc))
        response = drf_exception_handler(exc, context)
        if response is None:
            return None
    if isinstance(response.data, list):
        response.data = {"detail": " ".join(str(message) for message in response.data)}
    request = context.get("request")
    renderer = getattr(request, "accepted_renderer", None)
    if renderer is not None and renderer.format not in ("json", "api"):
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    return response


# Status code -> what the schema says it means (bodies are ErrorSerializer).
ERROR_MEANINGS = {
    400: "Bad input (query parameter or body).",
    401: "No or wrong credentials.",
    403: "Your role on the dataset does not allow this (or a session POST without CSRF).",
    404: "No such object, or not in a dataset you are a member of.",
    409: "The object's state does not allow this.",
}


def responses(ok: dict, *codes: int) -> dict:
    """`extend_schema(responses=...)`: the success answers `ok` plus the error `codes`; 401
    (not logged in) applies to every endpoint."""
    errors = dict.fromkeys(sorted({401, *codes}), ErrorSerializer)
    return {**ok, **errors}


# ---------------------------------------------------------------- parsing


class JSONParser(parsers.JSONParser):
    """JSON bodies; one nested deeper than Python's recursion limit is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


# ---------------------------------------------------------------- query parameters


def query_params(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request's query parameters checked by `serializer_class`: 400 for a bad value or a
    parameter given twice; absent parameters are left out (or take the field's default)."""
    data: dict[str, Any] = {}
    for name, field in serializer_class().fields.items():
        values = request.query_params.getlist(name)
        if not values:
            continue
        if isinstance(field, serializers.ListField | IdListField):
            data[name] = values
        elif len(values) > 1:
            raise ValidationError({name: ["Give this parameter once."]})
        else:
            data[name] = values[0]
    query = serializer_class(data=data)
    query.is_valid(raise_exception=True)
    return query.validated_data


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text=f"Rows per page (default 100); more than {MAX_PAGE} gives {MAX_PAGE}.",
    )
    offset = serializers.IntegerField(required=False, min_value=0, help_text="Rows to skip.")


class Pagination(LimitOffsetPagination):
    """Limit/offset pages of at most MAX_PAGE rows; a bad limit or offset answers 400."""

    max_limit = MAX_PAGE

    def get_limit(self, request: Request) -> int:
        limit = query_params(PageQuery, request).get("limit", self.default_limit)
        return min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return query_params(PageQuery, request).get("offset", 0)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        minimum = {self.limit_query_param: 1, self.offset_query_param: 0}
        for parameter in parameters:
            parameter["schema"]["minimum"] = minimum[parameter["name"]]
        return parameters


def paginate(request: Request, rows, serialize) -> Response:
    """A page of `rows` (a queryset or list) as `{"count", "next", "previous", "results"}`;
    `serialize(page)` turns the page's rows into JSON."""
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request)
    return paginator.get_paginated_response(serialize(page))


_page_serializers: dict[type, type[serializers.Serializer]] = {}


def page_of(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a page of `serializer_class` rows (what `paginate` answers)."""
    if serializer_class not in _page_serializers:
        name = serializer_class.__name__.removesuffix("Serializer")
        _page_serializers[serializer_class] = type(
            f"Paginated{name}List",
            (serializers.Serializer,),
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": serializer_class(many=True),
            },
        )
    return _page_serializers[serializer_class]


def id_list_parameter(name: str, description: str, max_items: int = 50) -> OpenApiParameter:
    """A comma-separated list of ids in the query string (`?exclude=1,2`)."""
    schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "minItems": 1,
        "maxItems": max_items,
    }
    return OpenApiParameter(name, schema, explode=False, description=description)


class IdListField(serializers.Field):
    """`?name=1,2,3` (or the name repeated): positive ids, at least one, at most `max_items`."""

    def __init__(self, max_items: int = 50, **kwargs) -> None:
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> list[int]:
        parts = ",".join(data if isinstance(data, list) else [data]).split(",")
        if not all(part.isascii() and part.isdigit() and 0 < int(part) <= MAX_ID for part in parts):
            raise ValidationError("Give ids (positive integers), separated by commas.")
        if len(parts) > self.max_items:
            raise ValidationError(f"Give at most {self.max_items} ids.")
        return [int(part) for part in parts]


class ExcludeQuery(serializers.Serializer):
    """`?exclude=1,2` of a work queue's `next` endpoint: items the caller already holds (the
    page preloads one ahead)."""

    exclude = IdListField(required=False)


def exclude_parameter() -> OpenApiParameter:
    return id_list_parameter("exclude", "item ids the caller already holds, comma separated")


# ---------------------------------------------------------------- fields
# Request bodies are JSON: a field takes only the JSON type the schema gives it (DRF's own
# fields also take "12" for a number, 0 for false and 5 for a text), so that a body the schema
# calls invalid is refused.


class StrictCharField(serializers.CharField):
    """A JSON string, taken as given (not trimmed: the schema cannot say that " " is blank)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def duration_field() -> StrictIntegerField:
    """`duration_ms` of an answer in a work queue (annotate/leasing.py)."""
    return StrictIntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_DURATION_MS
    )


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


# Text in the database cannot hold NUL characters, so no request text may (DRF refuses them):
# every string of a request body says so in the schema (`schema_postprocess`).
NO_NUL = "^[^\\x00]*$"
MAX_NAME = 200


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": NO_NUL},
        ]
    }
)
class IdOrNameField(serializers.Field):
    """An object named by its id (a number) or its name or key (a text)."""

    default_error_messages = {"invalid": "Give an id (a number) or a name (a text)."}

    def to_internal_value(self, data) -> str:
        valid_id = isinstance(data, int) and not isinstance(data, bool) and data >= 1
        valid_name = isinstance(data, str) and 0 < len(data) <= MAX_NAME and "\x00" not in data
        if not (valid_id or valid_name):
            self.fail("invalid")
        return str(data)

    def to_representation(self, value) -> str:
        return str(value)


class OptionalCharField(serializers.CharField):
    """Text that may be absent: the API answers null rather than ""."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value) -> str | None:
        return super().to_representation(value) or None


def _no_nul(node) -> None:
    if isinstance(node, dict):
        if node.get("type") == "string" and "enum" not in node and "format" not in node:
            node.setdefault("pattern", NO_NUL)
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul(value)


def _alternatives_required(body: dict, schemas: dict) -> bool:
    """Whether a request body is a oneOf whose every form has required properties."""
    for content in body.get("content", {}).values():
        ref = content.get("schema", {}).get("$ref", "")
        forms = schemas.get(ref.rsplit("/", 1)[-1], {}).get("oneOf", [])
        required = [
            schemas.get(f.get("$ref", "").rsplit("/", 1)[-1], {}).get("required") for f in forms
        ]
        if forms and all(required):
            return True
    return False


def schema_postprocess(result: dict, generator, request, public) -> dict:
    """drf-spectacular hook: every text of a request body matches NO_NUL, and a body offered in
    several forms (oneOf), each with required properties, is itself required."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, component in schemas.items():
        if name.endswith("Request"):
            _no_nul(component)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body and _alternatives_required(body, schemas):
                body["required"] = True
    return result


# ---------------------------------------------------------------- URLs


def absolute_url(request: HttpRequest | None, path: str) -> str:
    """`path` as an absolute URL for API answers; kept relative without a request (pages,
    commands)."""
    return request.build_absolute_uri(path) if request is not None else path
