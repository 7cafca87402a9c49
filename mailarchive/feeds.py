"""Atom feeds of a space's recent mail.

Two doors, one feed: the session (a logged-in browser, or anyone for a space
open to anonymous visitors) and a per-user token in the URL for feed readers,
which cannot log in. Either way the space permission is checked on every
request, for the user the token stands for.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.syndication.views import Feed
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from spaces.decorators import space_required
from spaces.models import Level, Space
from spaces.selectors import space_get_for

from .models import FeedToken, Message
from .textrender import excerpt

FEED_ITEMS = 50
SUMMARY_LENGTH = 300


def feed_items(space: Space) -> list[Message]:
    """The space's most recent live messages, newest first. One query."""
    return list(
        Message.objects.filter(space=space, deleted_at__isnull=True)
        .only("pk", "subject", "from_name", "from_address", "date", "text_body")
        .order_by("-date", "-pk")[:FEED_ITEMS]
    )


def sender_label(message: Message) -> str:
    return message.from_name or message.from_address or _("unknown sender")


class SpaceMailFeed(Feed):
    """The newest mail of one space as Atom; the space is resolved by the caller.

    One instance serves one request: it remembers the space it is drawing.
    """

    feed_type = Atom1Feed

    def __init__(self, space: Space) -> None:
        super().__init__()
        self.space = space

    def get_object(self, request: HttpRequest, space: Space) -> Space:
        return space

    def title(self, space: Space) -> str:
        return _("%(space)s — mail") % {"space": space.name}

    def subtitle(self, space: Space) -> str:
        return space.description

    def link(self, space: Space) -> str:
        return reverse("mailarchive:mail-list", kwargs={"key": space.key})

    def items(self, space: Space) -> list[Message]:
        return feed_items(space)

    def item_title(self, item: Message) -> str:
        subject = item.subject or _("(no subject)")
        return f"{subject} — {sender_label(item)}"

    def item_description(self, item: Message) -> str:
        return excerpt(item.text_body, SUMMARY_LENGTH)

    def item_link(self, item: Message) -> str:
        return reverse(
            "mailarchive:message-detail",
            kwargs={"key": self.space.key, "message_pk": item.pk},
        )

    def item_author_name(self, item: Message) -> str:
        return sender_label(item)

    def item_pubdate(self, item: Message) -> datetime:
        return item.date

    def item_updateddate(self, item: Message) -> datetime:
        return item.date


@space_required(Level.VIEW)
def feed_for_session(request: HttpRequest, space: Space) -> HttpResponse:
    """The feed for a logged-in browser or a space anonymous visitors may view."""
    return SpaceMailFeed(space)(request, space=space)


def feed_for_token(request: HttpRequest, key: str, token: str) -> HttpResponse:
    """The feed for the user whose token is in the URL; 404 for any refusal.

    A revoked token, an inactive user or a space the user may no longer view
    all look the same, so a leaked URL tells nothing.
    """
    owner = (
        FeedToken.objects.filter(token=token, user__is_active=True)
        .select_related("user")
        .first()
    )
    if owner is None:
        raise Http404(_("No such feed."))
    try:
        space = space_get_for(owner.user, key, Level.VIEW)
    except (Http404, PermissionDenied) as exc:
        raise Http404(_("No such feed.")) from exc
    return SpaceMailFeed(space)(request, space=space)
