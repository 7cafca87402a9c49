"""Full-text search of archived mail, and highlighting of what was found.

On PostgreSQL, words are matched against ``search_vector`` (filled on ingest,
GIN-indexed) with ``websearch_to_tsquery('simple', …)``, which understands
quoted phrases, ``or`` and ``-word``. Text without spaces (Japanese, Chinese,
Korean, Thai) is not split into words by any PostgreSQL parser, so such terms
are matched as substrings of ``search_text``, which a trigram GIN index
serves. SQLite matches every term as a case-insensitive substring.

The text read from attachments is part of each message's search text. With
``in:attachments`` in the search box (or the form's filter) the search looks
inside attachments only: each attachment's own text, matched the same ways
through the indexes of ``AttachmentText``, and the results are attachments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

from django.contrib.postgres.search import SearchQuery as PgSearchQuery
from django.contrib.postgres.search import SearchRank
from django.db import connection
from django.db.models import F, Q, QuerySet, Subquery
from django.db.models.functions import Left
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from .models import Attachment, AttachmentText, Message
from .selectors import (
    ATTACHMENT_KEYS,
    LIST_FIELDS,
    SORT_KEYS,
    KeysetPage,
    Sort,
    attachment_texts,
    day_start,
    keyset_page,
    listed_attachments,
)
from .textrender import visible_text

# Scripts written without spaces between words, where a term must be matched
# as a substring: Hiragana, Katakana, CJK ideographs, Hangul, Thai, Lao, Khmer,
# Myanmar, and the full-width and half-width forms.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3000-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]"
)
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# Scopes the search box understands as words of their own.
_IN_ATTACHMENTS = frozenset({"in:attachments", "in:attachment"})
_WORD_CHARS = re.compile(r"\w", re.UNICODE)
EXCERPT_LENGTH = 240
# Relevance ordering cannot use a cursor; it shows this many results at most.
RELEVANCE_LIMIT = 200
# Ranking reads every matching row, so only the newest this many matches are
# ranked: a word found in every message still answers at once.
RELEVANCE_POOL = 2000
COUNT_LIMIT = 1000
# Searches with fewer matches than this are ordered from the matching ids
# rather than by walking the date index (see _narrow_rare).
RARE_LIMIT = 5000
# A query reads at most this many terms; the rest of the text is ignored.
MAX_QUERY_TERMS = 32
# Highlighting marks at most this many distinct terms, each cut to this
# length, within this much text: the scan is linear in the text.
MAX_HIGHLIGHT_TERMS = 16
MAX_HIGHLIGHT_TERM_LENGTH = 64
MAX_HIGHLIGHT_TEXT = 64 * 1024
RESULTS_PER_PAGE = 25
# Excerpts are cut from this much of the start of each text body, read in the
# database, so a page of huge messages costs what one of short ones does. A
# match further in is found all the same; its excerpt is then the beginning.
EXCERPT_SOURCE_CHARS = 10000


class Order(StrEnum):
    NEWEST = "newest"
    RELEVANCE = "relevance"


@dataclass(frozen=True)
class Term:
    """One thing the reader asked for: a word or a quoted phrase."""

    text: str
    negated: bool = False
    phrase: bool = False

    @property
    def unspaced(self) -> bool:
        return bool(_UNSPACED.search(self.text))


@dataclass(frozen=True)
class ParsedQuery:
    """A search box's text split for the two ways of matching."""

    terms: list[Term] = field(default_factory=list)
    # The terms matched as words, rewritten for websearch_to_tsquery.
    websearch: str = ""
    # ``in:attachments`` was among the words: look inside attachments only.
    in_attachments: bool = False
    # The terms as alternatives: ``a or b c`` is ((a, b), (c,)), each group
    # matching when one of its terms does. A negated term stands alone.
    groups: list[list[Term]] = field(default_factory=list)

    @property
    def highlight_terms(self) -> list[str]:
        return [t.text for t in self.terms if not t.negated and t.text]


def query_parse(text: str) -> ParsedQuery:
    """Split the search box's text into terms (pure; safe to call anywhere).

    At most ``MAX_QUERY_TERMS`` terms; linear in ``len(text)``.
    """
    terms: list[Term] = []
    in_attachments = False
    groups: list[list[Term]] = []
    either = False
    for match in _TOKEN.finditer(text):
        negated_phrase, phrase, bare = match.groups()
        if bare is not None and bare.lower() in _IN_ATTACHMENTS:
            in_attachments = True
            continue
        if phrase is not None:
            term = Term(text=phrase.strip(), negated=bool(negated_phrase), phrase=True)
        else:
            if bare.lower() == "or":
                either = True
                continue
            negated = bare.startswith("-") and len(bare) > 1
            term = Term(text=bare[1:] if negated else bare, negated=negated)
        if not term.text or not _WORD_CHARS.search(term.text):
            continue
        if len(terms) >= MAX_QUERY_TERMS:
            break
        terms.append(term)
        if either and groups and not term.negated and not groups[-1][-1].negated:
            groups[-1].append(term)
        else:
            groups.append([term])
        either = False
    # Groups holding an unspaced term are matched as substrings as a whole.
    words = [
        " or ".join(
            ("-" if t.negated else "") + (f'"{t.text}"' if t.phrase else t.text)
            for t in group
        )
        for group in groups
        if not any(t.unspaced for t in group)
    ]
    return ParsedQuery(
        terms=terms,
        websearch=" ".join(words),
        in_attachments=in_attachments,
        groups=groups,
    )


@dataclass(frozen=True)
class MailSearch:
    """A search: its text and filters, as the search form cleans them."""

    text: str = ""
    sender: str = ""
    date_from: date | None = None
    date_to: date | None = None
    has_attachment: bool = False
    order: Order = Order.NEWEST
    # Look inside attachments only (also said by ``in:attachments``).
    in_attachments: bool = False

    @property
    def is_empty(self) -> bool:
        return not (
            self.text.strip()
            or self.sender
            or self.date_from
            or self.date_to
            or self.has_attachment
            or self.in_attachments
        )

    @property
    def of_attachments(self) -> bool:
        """Whether the results are attachments rather than messages."""
        return self.in_attachments or query_parse(self.text).in_attachments


def full_text_available() -> bool:
    """Whether the database matches words itself (PostgreSQL full-text search);
    otherwise every term is a substring match."""
    return connection.vendor == "postgresql"


def messages_search(
    queryset: QuerySet[Message], search: MailSearch
) -> tuple[QuerySet[Message], ParsedQuery]:
    """``queryset`` narrowed to what ``search`` asks for, and the parsed terms.

    With ``Order.RELEVANCE`` on PostgreSQL the newest RELEVANCE_POOL matches
    are annotated with ``rank`` and ordered by it; otherwise the caller orders
    the rows. Builds a query only.
    """
    parsed = query_parse(search.text)
    qs = queryset.filter(deleted_at__isnull=True)
    postgres = full_text_available()
    ts_query = None
    if postgres and parsed.websearch:
        ts_query = PgSearchQuery(
            parsed.websearch, search_type="websearch", config="simple"
        )
        qs = qs.filter(search_vector=ts_query)
    qs = _substring_terms(qs, parsed, "search_text", postgres=postgres)
    qs = _message_filters(qs, search)
    if postgres and parsed.terms:
        qs = _narrow_rare(qs)
    if search.order == Order.RELEVANCE and ts_query is not None:
        newest = qs.order_by("-date", "-pk").values("pk")[:RELEVANCE_POOL]
        qs = (
            qs.model.objects.filter(pk__in=Subquery(newest))
            .annotate(rank=SearchRank(F("search_vector"), ts_query))
            .order_by("-rank", "-date", "-pk")
        )
    return qs, parsed


def _substring_terms(
    qs: QuerySet, parsed: ParsedQuery, column: str, *, postgres: bool
) -> QuerySet:
    """``qs`` narrowed by the terms matched as substrings of ``column``: all of
    them on SQLite, the groups holding unspaced scripts on PostgreSQL. Each
    group of alternatives (``a or b``) matches when one of its terms does."""
    for group in parsed.groups:
        if postgres and not any(term.unspaced for term in group):
            continue
        # A substring match: LIKE is served by the trigram index on PostgreSQL;
        # unspaced scripts have no letter case, other text does. On PostgreSQL
        # a group that also holds words is matched here as a whole, so that
        # "会議 or budget" keeps its "or".
        condition = Q()
        for term in group:
            lookup = f"{column}__contains" if term.unspaced else f"{column}__icontains"
            condition |= Q(**{lookup: term.text})
        qs = qs.exclude(condition) if group[0].negated else qs.filter(condition)
    return qs


def _message_filters(qs: QuerySet[Message], search: MailSearch) -> QuerySet[Message]:
    """``qs`` narrowed by the form's filters: sender, dates, attachments."""
    if search.sender:
        qs = qs.filter(
            Q(from_address__icontains=search.sender)
            | Q(from_name__icontains=search.sender)
        )
    if search.date_from:
        qs = qs.filter(date__gte=day_start(search.date_from))
    if search.date_to and search.date_to < date.max:
        qs = qs.filter(date__lt=day_start(search.date_to + timedelta(days=1)))
    if search.has_attachment:
        qs = qs.filter(has_attachments=True)
    return qs


def attachments_search(
    messages: QuerySet[Message], search: MailSearch
) -> tuple[QuerySet[Attachment], ParsedQuery]:
    """The attachments of ``messages`` whose text ``search`` finds.

    Each attachment's own text (``AttachmentText``) is matched, by word on
    PostgreSQL and by substring otherwise, as :func:`messages_search` matches
    a message's; the form's filters apply to the messages. The rows carry
    ``message_date`` for ordering newest first; the caller orders them.
    Builds a query only.
    """
    parsed = query_parse(search.text)
    postgres = connection.vendor == "postgresql"
    texts = AttachmentText.objects.filter(status=AttachmentText.Status.OK)
    if postgres and parsed.websearch:
        texts = texts.filter(
            search_vector=PgSearchQuery(
                parsed.websearch, search_type="websearch", config="simple"
            )
        )
    texts = _substring_terms(texts, parsed, "text", postgres=postgres)
    found = _message_filters(messages.filter(deleted_at__isnull=True), search)
    qs = (
        Attachment.objects.filter(
            message__in=found.values("pk"),
            inline=False,
            sha256__in=texts.values("sha256"),
        )
        .select_related("message__space")
        .annotate(message_date=F("message__date"))
    )
    return qs, parsed


def messages_found(
    queryset: QuerySet[Message], search: MailSearch
) -> QuerySet[Message]:
    """The messages of ``queryset`` that ``search`` finds, in either scope:
    inside attachments, the messages that hold a found attachment. Unordered;
    builds a query only."""
    if not search.of_attachments:
        return messages_search(queryset, search)[0]
    found, _parsed = attachments_search(queryset, search)
    return queryset.filter(pk__in=found.values("message_id"))


def _narrow_rare(qs: QuerySet[Message]) -> QuerySet[Message]:
    """``qs`` restricted to its matching ids when they are few (PostgreSQL).

    Newest-first pages walk the date index and test each row against the
    search. That finds a common word at once, but for a rare or absent one
    PostgreSQL's estimate (it cannot know a word is absent) leads it to test
    every message of the space. So the matches are first collected through
    the search indexes alone, in a materialized CTE the planner must run as
    it is; when there are fewer than RARE_LIMIT, the page is ordered from
    those ids. Runs one query.
    """
    sql, params = qs.values_list("pk").order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH found AS MATERIALIZED ({sql}) SELECT * FROM found LIMIT %s",
            [*params, RARE_LIMIT],
        )
        pks = [row[0] for row in cursor.fetchall()]
    if len(pks) >= RARE_LIMIT:
        return qs
    return qs.filter(pk__in=pks)


def _highlight_terms(terms: list[str]) -> tuple[str, ...]:
    """The terms worth marking: distinct, non-empty, bounded in count and length."""
    chosen: dict[str, str] = {}
    for term in terms:
        term = term[:MAX_HIGHLIGHT_TERM_LENGTH]
        if term and term.casefold() not in chosen:
            chosen[term.casefold()] = term
            if len(chosen) >= MAX_HIGHLIGHT_TERMS:
                break
    return tuple(chosen.values())


@lru_cache(maxsize=256)
def _compiled(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = []
    for term in sorted(terms, key=len, reverse=True):
        escaped = re.escape(term)
        if _UNSPACED.search(term):
            parts.append(escaped)
        else:
            parts.append(rf"(?<!\w){escaped}(?!\w)")
    if not parts:
        return None
    return re.compile("|".join(parts), re.IGNORECASE)


def _pattern(terms: list[str]) -> re.Pattern[str] | None:
    """One regex finding any of ``terms``; words only at word boundaries.

    At most ``MAX_HIGHLIGHT_TERMS`` terms of at most
    ``MAX_HIGHLIGHT_TERM_LENGTH`` characters: a scan costs each position of
    the text at most that many comparisons.
    """
    return _compiled(_highlight_terms(terms))


def mentions(text: str, terms: list[str]) -> bool:
    """Whether ``text`` holds any of ``terms`` as :func:`highlight` marks them."""
    pattern = _pattern(terms)
    return bool(pattern and pattern.search(text[:MAX_HIGHLIGHT_TEXT]))


def highlight(text: str, terms: list[str]) -> SafeString:
    """``text`` escaped for HTML with every occurrence of ``terms`` in ``<mark>``.

    Each piece is escaped before the marks are added, so nothing in ``text``
    can become markup. Only the first ``MAX_HIGHLIGHT_TEXT`` characters are
    marked; the rest is escaped as it is. Characters no page may carry are
    made visible first.
    """
    text = visible_text(text)
    pattern = _pattern(terms)
    if pattern is None:
        return escape(text)
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(text, 0, MAX_HIGHLIGHT_TEXT):
        pieces.append(escape(text[position : match.start()]))
        pieces.append(f"<mark>{escape(match.group(0))}</mark>")
        position = match.end()
    pieces.append(escape(text[position:]))
    return mark_safe("".join(pieces))


def excerpt_around(
    text: str, terms: list[str], length: int = EXCERPT_LENGTH
) -> SafeString:
    """About ``length`` characters of ``text`` around its first match, marked.

    Whitespace runs are folded to one space; without a match, the beginning.
    Only the first ``MAX_HIGHLIGHT_TEXT`` characters are searched.
    """
    flat = " ".join(text[:MAX_HIGHLIGHT_TEXT].split())
    pattern = _pattern(terms)
    found = pattern.search(flat) if pattern else None
    start = 0
    if found and found.start() > length // 3:
        start = found.start() - length // 3
        space = flat.rfind(" ", 0, start)
        start = space + 1 if space > start - 20 else start
    piece = flat[start : start + length]
    prefix = "… " if start > 0 else ""
    more = start + length < len(flat) or len(text) > MAX_HIGHLIGHT_TEXT
    suffix = " …" if more else ""
    return mark_safe(escape(prefix) + highlight(piece, terms) + escape(suffix))


@dataclass
class FoundIn:
    """The attachment a match was found in, and an excerpt of its text."""

    attachment: Attachment
    name: SafeString
    excerpt: SafeString


@dataclass
class Hit:
    """One search result, its subject and an excerpt with the matches marked.

    ``found_in`` is set when the words are in an attachment's text rather than
    in the message itself; a search inside attachments has it on every hit.
    """

    message: Message
    subject: SafeString
    excerpt: SafeString
    found_in: FoundIn | None = None


@dataclass
class SearchResults:
    """A page of results: by cursor (newest first) or by number (best match)."""

    hits: list[Hit]
    count: int
    count_is_lower_bound: bool
    page: KeysetPage | None  # newest first: pages by cursor
    page_number: int | None  # best match: pages by number, bounded
    has_next_number: bool
    of_attachments: bool = False


def search_results(
    base: QuerySet[Message],
    search: MailSearch,
    *,
    page_number: int | None = None,
    after: str | None = None,
    before: str | None = None,
    size: int = RESULTS_PER_PAGE,
) -> SearchResults:
    """One page of what ``search`` finds in ``base``, with the matches marked.

    Newest first pages by cursor (``after``/``before``); best match by
    ``page_number`` up to RELEVANCE_LIMIT results; inside attachments one hit
    per attachment, newest first. A fixed number of queries whatever the page
    size; reads only. Raises BadCursor for a broken cursor.
    """
    if search.of_attachments:
        return _attachment_results(base, search, after, before, size)
    qs, parsed = messages_search(base, search)
    count = qs.order_by()[: COUNT_LIMIT + 1].count()
    qs = (
        qs.select_related("space")
        .only(*LIST_FIELDS, "to", "cc", "space__key", "space__name")
        .annotate(body_start=Left("text_body", EXCERPT_SOURCE_CHARS))
    )
    terms = parsed.highlight_terms
    page = None
    number = None
    has_next_number = False
    if search.order == Order.RELEVANCE and "rank" in qs.query.annotations:
        number = page_number or 1
        start = (number - 1) * size
        rows = list(qs[start : min(start + size, RELEVANCE_LIMIT)])
        has_next_number = start + size < min(count, RELEVANCE_LIMIT)
    else:
        page = keyset_page(
            qs, SORT_KEYS[Sort.NEWEST], size=size, after=after, before=before
        )
        rows = page.rows
    hits = [
        Hit(
            message=m,
            subject=highlight(m.subject or _("(no subject)"), terms),
            excerpt=_excerpt(m, terms),
        )
        for m in rows
    ]
    _show_attachment_matches(hits, terms)
    return SearchResults(
        hits=hits,
        count=min(count, COUNT_LIMIT),
        count_is_lower_bound=count > COUNT_LIMIT,
        page=page,
        page_number=number,
        has_next_number=has_next_number,
    )


def _excerpt(message: Message, terms: list[str]) -> SafeString:
    """The body around the first match, or the recipients when they matched and
    the body did not (a search for a colleague's address)."""
    body = excerpt_around(message.body_start, terms)
    if "<mark>" in body:
        return body
    people = "; ".join(
        f"{name} <{address}>" if name else address
        for name, address in [*(message.to or []), *(message.cc or [])]
    )
    around = excerpt_around(people, terms)
    if "<mark>" not in around:
        return body
    return format_html("{} {}", _("To/Cc:"), around)


def _show_attachment_matches(hits: list[Hit], terms: list[str]) -> None:
    """Point each hit whose words are not in its subject or the start of its
    body at the first attachment whose text holds them (two queries)."""
    unexplained = {
        hit.message.pk: hit
        for hit in hits
        if terms
        and hit.message.has_attachments
        and not mentions(hit.message.subject, terms)
        and not mentions(hit.message.body_start or "", terms)
    }
    if not unexplained:
        return
    parts = listed_attachments(unexplained)
    texts = attachment_texts(part.sha256 for part in parts)
    for part in parts:
        hit = unexplained.get(part.message_id)
        read = texts.get(part.sha256)
        if hit is None or hit.found_in is not None or read is None:
            continue
        if mentions(read.text, terms) or mentions(part.filename, terms):
            hit.found_in = FoundIn(
                attachment=part,
                name=highlight(part.filename, terms),
                excerpt=excerpt_around(read.text, terms),
            )


def _attachment_results(
    base: QuerySet[Message],
    search: MailSearch,
    after: str | None,
    before: str | None,
    size: int,
) -> SearchResults:
    """Search inside attachments: one hit per attachment, newest message first."""
    qs, parsed = attachments_search(base, search)
    qs = qs.only(
        "pk",
        "message_id",
        "position",
        "filename",
        "sha256",
        "size",
        "message__id",
        "message__space_id",
        "message__subject",
        "message__from_name",
        "message__from_address",
        "message__date",
        "message__has_attachments",
        "message__space__key",
        "message__space__name",
    )
    count = qs.order_by()[: COUNT_LIMIT + 1].count()
    terms = parsed.highlight_terms
    page = keyset_page(qs, ATTACHMENT_KEYS, size=size, after=after, before=before)
    texts = attachment_texts(part.sha256 for part in page.rows)
    hits = []
    for part in page.rows:
        read = texts.get(part.sha256)
        hits.append(
            Hit(
                message=part.message,
                subject=highlight(part.message.subject or _("(no subject)"), terms),
                excerpt=SafeString(""),
                found_in=FoundIn(
                    attachment=part,
                    name=highlight(part.filename, terms),
                    excerpt=excerpt_around(read.text if read else "", terms),
                ),
            )
        )
    return SearchResults(
        hits=hits,
        count=min(count, COUNT_LIMIT),
        count_is_lower_bound=count > COUNT_LIMIT,
        page=page,
        page_number=None,
        has_next_number=False,
        of_attachments=True,
    )
