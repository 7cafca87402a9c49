"""Template helpers of the reading pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict
from django.urls import reverse

from spaces.selectors import spaces_visible_to

from ..models import Message

register = template.Library()


@register.simple_tag
def query_with(query: QueryDict, **changes: Any) -> str:
    """``?…`` with ``changes`` applied to ``query``; an empty value drops the key."""
    updated = query.copy()
    for name, value in changes.items():
        if value in (None, "", False):
            updated.pop(name, None)
        else:
            updated[name] = value
    encoded = updated.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def sender(message: Message) -> str:
    """The sender's name, or address when there is no name."""
    return message.from_name or message.from_address or ""


@register.filter
def address_list(pairs: list[list[str]]) -> str:
    """``[[name, address], …]`` as one line: ``Name <address>, …``."""
    shown = []
    for pair in pairs or []:
        name, address = (list(pair) + ["", ""])[:2]
        if name and address:
            shown.append(f"{name} <{address}>")
        else:
            shown.append(name or address)
    return ", ".join(shown)


@register.filter
def permalink(message_id: str) -> str:
    """The site path that resolves a Message-ID to its message.

    ``reverse`` percent-encodes what a path cannot hold as is ("%", "?", "#",
    spaces); the server decodes it again before the view sees it.
    """
    if not message_id:
        return ""
    return reverse("mailarchive:permalink", kwargs={"message_id": message_id})


@register.filter
def depth_capped(depth: int, limit: int = 12) -> int:
    """Indentation level of a thread row; deep threads stop moving right."""
    return min(int(depth), int(limit))


@register.inclusion_tag("mailarchive/_top_search.html", takes_context=True)
def archive_search_box(context: template.Context) -> dict[str, Any]:
    """The top-bar search box, for logged-in users or when public spaces exist."""
    request = context.get("request")
    user = getattr(request, "user", None)
    show = False
    if user is not None:
        show = user.is_authenticated or spaces_visible_to(user).exists()
    return {
        "show": show,
        "query": request.GET.get("q", "") if request is not None else "",
    }
