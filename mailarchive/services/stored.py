"""What the index stage stores of a parse: text the database takes, the
search text, the problems.

One definition of each: the parse and the attachments' texts are cleaned the
same way, and the search text of a message is built here alone. Pure
functions.
"""

from __future__ import annotations

from ..parsing import ParsedAddress, ParsedMessage, body_text_for_search
from ..parsing.text import html_to_text

SEARCH_TEXT_LIMIT = 200_000
# Characters of the attachments' text that go into the message's own search
# text, after its body; ``in:attachments`` searches each attachment's whole
# text.
ATTACHMENT_SEARCH_LIMIT = 100_000
# Characters of each body kept in the database, for the page and the feed;
# the whole text is always in the raw message, one click away.
BODY_STORED_LIMIT = 1_000_000
BODY_TRUNCATED = "body-truncated"
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global", "message/news"})


def clean_text(value: str, limit: int | None = None) -> str:
    """Text the database accepts: no NUL, no lone surrogates, bounded length."""
    if limit:
        # Cut first: cleaning keeps lengths, and a body may be enormous.
        value = value[:limit]
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:limit] if limit else value


def addresses_stored(items: list[ParsedAddress]) -> list[list[str]]:
    return [[clean_text(a.name, 300), clean_text(a.address, 320)] for a in items[:200]]


def search_text_of(parsed: ParsedMessage, texts: dict[str, str]) -> str:
    """Subject, people, attachment names, body, then the attachments' text.

    An attached message whose text was read as an attachment is not indexed
    twice: the body then leaves out the parser's copy of it.
    """
    people = [parsed.from_] if parsed.from_ else []
    people += parsed.to + parsed.cc
    parts = [parsed.subject]
    parts += [f"{p.name} {p.address}" for p in people]
    listed = [a for a in parsed.attachments if not a.inline]
    # Inline parts (pictures of the HTML body) are found by name too.
    parts += [a.filename for a in parsed.attachments]
    attached = [a for a in listed if a.content_type in _MESSAGE_TYPES]
    if attached and all(a.sha256 in texts for a in attached):
        own = parsed.text_body
        parts.append(own if own.strip() else html_to_text(parsed.html_body))
    else:
        parts.append(body_text_for_search(parsed))
    head = clean_text("\n".join(parts), SEARCH_TEXT_LIMIT)
    found = [
        texts[sha] for sha in dict.fromkeys(a.sha256 for a in listed) if sha in texts
    ]
    if not found:
        return head
    return head + "\n" + clean_text("\n".join(found), ATTACHMENT_SEARCH_LIMIT)


def problems_stored(parsed: ParsedMessage) -> list[str]:
    problems = list(parsed.problems)
    if (
        len(parsed.text_body) > BODY_STORED_LIMIT
        or len(parsed.html_body) > BODY_STORED_LIMIT
    ):
        problems.append(BODY_TRUNCATED)
    return problems
