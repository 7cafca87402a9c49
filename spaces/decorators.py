"""The permission checks: every space page's, and the site admin pages'."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from .models import Level
from .selectors import space_get_for


def space_required(
    level: int = Level.VIEW,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Resolve the ``key`` URL argument to a space the user may act on at ``level``.

    The view receives ``space`` instead of ``key``. An invisible space is a 404
    (anonymous users are sent to log in instead, since they may gain access by
    logging in); a visible space where the level is missing is a 403.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, key: str, *args: Any, **kwargs: Any):
            try:
                space = space_get_for(request.user, key, level)
            except Http404:
                if not request.user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                raise
            return view(request, *args, space=space, **kwargs)

        return wrapped

    return decorator


def site_admin_required(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """Superusers only: anonymous visitors are sent to log in, others refused (403).

    A logged-in user sent to the login page would only be asked to log in
    again as who they already are.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_superuser):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped
