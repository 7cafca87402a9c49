"""What other apps keep in a space, so that deleting a space removes it all.

Imports point from the archive and the mail accounts to spaces, never back:
each app that keeps rows in a space registers, as it starts, how to count
them and how to remove them, and :func:`spaces.services.space_delete` calls
them in ``order`` (mail accounts first, so no new mail arrives).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .models import Space


@dataclass(frozen=True)
class SpaceContents:
    """How one app counts and removes what it keeps in a space.

    ``count`` returns how many things of each kind the space holds, by kind
    (``{"messages": 12}``). ``delete_batch`` removes one batch in its own
    transaction, releasing what the rows held, and returns how many it
    removed; 0 means nothing is left. Each batch is complete on its own, so a
    deletion that stops half-way is finished by calling it again.
    """

    order: int
    count: Callable[[Space], dict[str, int]]
    delete_batch: Callable[[Space, AbstractBaseUser | None], int]


_registry: dict[str, SpaceContents] = {}


def space_contents_register(name: str, contents: SpaceContents) -> None:
    """Register (or replace) what app ``name`` keeps in spaces."""
    _registry[name] = contents


def space_contents() -> list[SpaceContents]:
    """The registered contents, in the order a space deletion removes them."""
    return sorted(_registry.values(), key=lambda c: c.order)
