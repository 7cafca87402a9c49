"""What every API view shares: the space check, cursor links, error schemas."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.request import Request

from mailarchive.selectors import KeysetPage
from spaces.models import Level, Space
from spaces.selectors import space_get_for, space_level_for

from ..serializers import ProblemSerializer

__all__ = [
    "cursor_links",
    "form_errors",
    "level_in",
    "number_links",
    "problems",
    "space_for",
    "validated",
]

PROBLEM_DESCRIPTIONS = {
    400: "The request is not valid (see errors).",
    401: "No credentials, or a token that is unknown, revoked or expired.",
    403: "The space is visible but the action needs a higher level.",
    404: "No such space (or one the caller may not see), or no such object.",
    409: "The archive's state does not allow it now.",
    429: "Too many requests; see Retry-After.",
}


def space_for(request: Request, key: str, level: int = Level.VIEW) -> Space:
    """The space ``key`` if the caller may act at ``level`` in it.

    spaces.selectors decides, as for the pages: a space the caller may not see
    is 404, a missing level 403. Callers without credentials get 401 instead
    of 404, where the pages send them to log in.
    """
    try:
        return space_get_for(request.user, key, level)
    except Http404:
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated from None
        raise
    except PermissionDenied:
        raise exceptions.PermissionDenied(
            _("Your permission in this space does not allow this.")
        ) from None


def level_in(request: Request, space: Space) -> int:
    """The caller's level in a space ``space_for`` let them into."""
    return space_level_for(request.user, space) or Level.VIEW


def validated(serializer_class: type[serializers.Serializer], data: Any) -> Any:
    """``data`` checked by ``serializer_class``; raises a 400 problem if invalid."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def form_errors(form: forms.Form) -> exceptions.ValidationError:
    """A 400 problem with the messages of an invalid Django form."""
    return exceptions.ValidationError(
        {
            ("non_field_errors" if field == "__all__" else field): list(messages)
            for field, messages in form.errors.items()
        }
    )


def _link(request: Request, **changes: Any) -> str:
    query = request.query_params.copy()
    for name in ("after", "before", "page"):
        query.pop(name, None)
    for name, value in changes.items():
        query[name] = value
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def cursor_links(request: Request, page: KeysetPage) -> dict[str, str | None]:
    """``next`` and ``previous`` URLs of a page paged by cursor (None at the ends)."""
    return {
        "next": _link(request, after=page.next_cursor) if page.next_cursor else None,
        "previous": (
            _link(request, before=page.prev_cursor) if page.prev_cursor else None
        ),
    }


def number_links(
    request: Request, number: int, has_next: bool
) -> dict[str, str | None]:
    """``next`` and ``previous`` URLs of a page paged by number."""
    return {
        "next": _link(request, page=number + 1) if has_next else None,
        "previous": _link(request, page=number - 1) if number > 1 else None,
    }


def problems(*codes: int) -> dict[Any, Any]:
    """OpenAPI responses for the problems an operation may answer with."""
    return {
        (code, "application/problem+json"): OpenApiResponse(
            ProblemSerializer, description=PROBLEM_DESCRIPTIONS[code]
        )
        for code in codes
    }
