"""Every error of the API as RFC 9457 problem details, in the caller's language.

``{"type", "title", "status", "detail", "instance"}`` with the media type
``application/problem+json``; a 400 adds ``errors`` (field name to messages,
``non_field_errors`` for the rest), a 429 adds ``retry_after`` (seconds, also in
the Retry-After header).
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

PROBLEM_TYPE = "urn:mailarchive:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: _("The request is not valid"),
    401: _("Authentication needed"),
    403: _("Not allowed"),
    404: _("Not found"),
    405: _("Method not allowed"),
    406: _("Not acceptable"),
    409: _("Conflict"),
    413: _("Request too large"),
    415: _("Unsupported media type"),
    429: _("Too many requests"),
}


class Conflict(exceptions.APIException):
    """The request is fine but the archive's state does not allow it now."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = _("This cannot be done now.")
    default_code = "conflict"


def validation_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ValidationError as ``{field: [messages]}``."""
    if hasattr(error, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): list(messages)
            for field, messages in error.message_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(validation_errors(exc))
    return None


def problem(
    request: HttpRequest,
    *,
    status_code: int,
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem details response; ``extra`` adds members to the object."""
    title = TITLES.get(status_code) or HTTPStatus(status_code).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": str(title),
        "status": status_code,
        "detail": str(detail),
        "instance": request.path,
        **(extra or {}),
    }
    return Response(
        body, status=status_code, headers=headers, content_type=PROBLEM_MEDIA_TYPE
    )


def _first_message(errors: Any) -> str:
    if isinstance(errors, dict):
        for value in errors.values():
            return _first_message(value)
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def problem_exception_handler(
    exc: Exception, context: dict[str, Any]
) -> Response | None:
    """DRF's exception handler, answering in problem details.

    Exceptions that are not the client's doing return None, which Django turns
    into a 500 (and logs).
    """
    api_exc = _as_api_exception(exc)
    if api_exc is None:
        return None
    request = context["request"]
    set_rollback()
    headers: dict[str, str] = {}
    if getattr(api_exc, "auth_header", None):
        headers["WWW-Authenticate"] = api_exc.auth_header
    extra: dict[str, Any] = {}
    if isinstance(api_exc, exceptions.ValidationError):
        errors = api_exc.detail
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors}
        extra["errors"] = errors
        code = "invalid"
        detail = _first_message(errors)
    else:
        codes = api_exc.get_codes()
        code = codes if isinstance(codes, str) else api_exc.default_code
        detail = (
            api_exc.detail
            if isinstance(api_exc.detail, str)
            else _first_message(api_exc.detail)
        )
    if isinstance(api_exc, exceptions.Throttled) and api_exc.wait is not None:
        seconds = max(1, math.ceil(api_exc.wait))
        headers["Retry-After"] = str(seconds)
        extra["retry_after"] = seconds
    return problem(
        request,
        status_code=api_exc.status_code,
        code=code,
        detail=detail,
        extra=extra,
        headers=headers,
    )
