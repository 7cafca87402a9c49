"""Atom feeds of a space's recent mail.

Two doors, one feed: the session (a logged-in browser, or anyone for a space
open to anonymous visitors) and a per-user token in the URL for feed readers,
which cannot log in. Either way the space permission is checked on every
request, for the user the token stands for.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import IO, Any

from django.contrib.syndication.views import Feed
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Left
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _
from django.utils.xmlutils import SimplerXMLGenerator

from spaces.decorators import space_required
from spaces.models import Level, Space
from spaces.selectors import space_get_for

from .models import Message
from .selectors import feed_token_owner
from .textrender import excerpt

FEED_ITEMS = 50
SUMMARY_LENGTH = 300
# The summary is drawn from this much of the start of the text body, read in
# the database: a feed of fifty 20 MB messages costs what one of short ones does.
SUMMARY_SOURCE_CHARS = 8000
# What XML 1.0 cannot carry (its Char production): C0 controls other than tab,
# LF and CR, lone surrogates, U+FFFE and U+FFFF. Mail holds all of them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry. Pure function."""
    return _NOT_XML.sub("", value)


class _XmlSafeGenerator(SimplerXMLGenerator):
    """Writes any text and attribute value, leaving out what XML cannot carry.

    Django's generator refuses control characters with an exception, which
    made one odd byte in one message break the whole feed.
    """

    def characters(self, content: str) -> None:
        super().characters(xml_text(content) if content else content)

    def startElement(self, name: str, attrs: dict[str, Any]) -> None:
        clean = {
            key: xml_text(value) if isinstance(value, str) else value
            for key, value in (attrs or {}).items()
        }
        super().startElement(name, clean)


class PlainTextAtomFeed(Atom1Feed):
    """Atom whose summaries are plain text, written whatever the mail holds.

    Django labels summaries ``type="html"``, so a feed reader would turn the
    markup of a mail body into live HTML; an excerpt of the text body is text.
    """

    def write(self, outfile: IO[str], encoding: str) -> None:
        # Atom1Feed.write with the safe generator.
        handler = _XmlSafeGenerator(outfile, encoding, short_empty_elements=True)
        handler.startDocument()
        handler.startElement("feed", self.root_attributes())
        self.add_root_elements(handler)
        self.write_items(handler)
        handler.endElement("feed")

    def add_item_elements(
        self, handler: SimplerXMLGenerator, item: dict[str, Any]
    ) -> None:
        super().add_item_elements(handler, {**item, "description": None})
        if item["description"] is not None:
            handler.addQuickElement("summary", item["description"], {"type": "text"})


def feed_items(space: Space) -> list[Message]:
    """The space's most recent live messages, newest first. One query.

    Bodies are not loaded: each row carries ``body_start``, the first
    SUMMARY_SOURCE_CHARS characters of its text body.
    """
    return list(
        Message.objects.filter(space=space, deleted_at__isnull=True)
        .only("pk", "subject", "from_name", "from_address", "date")
        .annotate(body_start=Left("text_body", SUMMARY_SOURCE_CHARS))
        .order_by("-date", "-pk")[:FEED_ITEMS]
    )


def sender_label(message: Message) -> str:
    return message.from_name or message.from_address or _("unknown sender")


class SpaceMailFeed(Feed):
    """The newest mail of one space as Atom; the space is resolved by the caller.

    One instance serves one request: it remembers the space it is drawing.
    """

    feed_type = PlainTextAtomFeed

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
        return excerpt(item.body_start, SUMMARY_LENGTH)

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
    owner = feed_token_owner(token)
    if owner is None:
        raise Http404(_("No such feed."))
    try:
        space = space_get_for(owner.user, key, Level.VIEW)
    except (Http404, PermissionDenied) as exc:
        raise Http404(_("No such feed.")) from exc
    return SpaceMailFeed(space)(request, space=space)
