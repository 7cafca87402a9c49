"""Reads about spaces: the one place that answers who may do what."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from .contents import space_contents
from .models import Level, Space, SpacePermission

AnyUser = AbstractBaseUser | AnonymousUser


def space_level_for(user: AnyUser, space: Space) -> int | None:
    """The highest level ``user`` holds in ``space``, or None for no access.

    Site admins hold ADMIN everywhere; a personal space's owner administers it;
    anonymous users may only view spaces that allow anonymous viewing.
    """
    if user.is_authenticated and user.is_active and user.is_superuser:
        return Level.ADMIN
    if not user.is_authenticated or not user.is_active:
        return Level.VIEW if space.allow_anonymous else None
    if space.owner_id is not None and space.owner_id == user.pk:
        return Level.ADMIN
    # A page checks the level in its permission decorator and again for the
    # buttons it shows; the grants are read once per user for this instance
    # (a Space instance lives for one request).
    granted: dict[int, int | None] = space.__dict__.setdefault("_granted_levels", {})
    if user.pk not in granted:
        granted[user.pk] = (
            SpacePermission.objects.filter(space=space)
            .filter(Q(user=user) | Q(group__in=user.groups.all()))
            .aggregate(level=Max("level"))["level"]
        )
    best = granted[user.pk]
    if best is None and space.allow_anonymous:
        return Level.VIEW
    if best is not None and space.allow_anonymous:
        return max(best, Level.VIEW)
    return best


def space_levels_for(user: AnyUser, spaces: list[Space]) -> dict[int, int | None]:
    """``space_level_for`` of every space in ``spaces``, by space id.

    The user's grants in all of them are read in one query (none for site
    admins and anonymous users) and remembered on each instance, so that
    ``space_level_for`` decides from them without asking again.
    """
    if user.is_authenticated and user.is_active and not user.is_superuser:
        asking = [
            s for s in spaces if user.pk not in s.__dict__.get("_granted_levels", {})
        ]
        if asking:
            best = dict(
                SpacePermission.objects.filter(space__in=asking)
                .filter(Q(user=user) | Q(group__in=user.groups.all()))
                .values("space_id")
                .annotate(level=Max("level"))
                .values_list("space_id", "level")
                .order_by()
            )
            for space in asking:
                granted = space.__dict__.setdefault("_granted_levels", {})
                granted[user.pk] = best.get(space.pk)
    return {space.pk: space_level_for(user, space) for space in spaces}


def spaces_visible_to(user: AnyUser) -> QuerySet[Space]:
    """Every space ``user`` may view, ordered by name."""
    qs = Space.objects.all()
    if user.is_authenticated and user.is_active and user.is_superuser:
        return qs
    if not user.is_authenticated or not user.is_active:
        return qs.filter(allow_anonymous=True)
    granted = SpacePermission.objects.filter(
        Q(user=user) | Q(group__in=user.groups.all())
    ).values("space_id")
    return qs.filter(
        Q(allow_anonymous=True) | Q(owner=user) | Q(pk__in=granted)
    ).distinct()


def space_get_for(user: AnyUser, key: str, level: int = Level.VIEW) -> Space:
    """The space ``key`` if ``user`` may act at ``level`` in it.

    Raises Http404 when the space does not exist or the user may not see it (so
    that its existence does not leak), PermissionDenied when the user may see it
    but not act at ``level``.
    """
    # No key holds NUL, which the database would refuse to compare.
    space = None if "\x00" in key else Space.objects.filter(key=key).first()
    if space is None:
        raise Http404(_("No such space."))
    held = space_level_for(user, space)
    if held is None:
        raise Http404(_("No such space."))
    if held < level:
        raise PermissionDenied
    return space


def space_permissions_list(space: Space) -> QuerySet[SpacePermission]:
    """The grants of ``space``, users first then groups, by name."""
    return (
        SpacePermission.objects.filter(space=space)
        .select_related("user", "group")
        .order_by("group__name", "user__username")
    )


def user_by_name(username: str) -> AbstractBaseUser | None:
    """The user called ``username`` (exactly), or None."""
    return get_user_model().objects.filter(username=username).first()


def group_by_name(name: str) -> Group | None:
    """The group called ``name`` (exactly), or None."""
    return Group.objects.filter(name=name).first()


def space_contents_count(space: Space) -> dict[str, int]:
    """What ``space`` holds, by kind (``messages``, ``mail_accounts``, …)."""
    counts: dict[str, int] = {}
    for contents in space_contents():
        counts.update(contents.count(space))
    return counts
