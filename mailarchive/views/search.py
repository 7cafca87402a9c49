"""Search pages: within one space, and across every space the visitor may view."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from spaces.decorators import space_required
from spaces.models import Level, Space
from spaces.selectors import spaces_visible_to

from ..forms import SearchForm
from ..models import Attachment, Message
from ..search import (
    COUNT_LIMIT,
    RELEVANCE_LIMIT,
    MailSearch,
    Order,
    attachments_search,
    excerpt_around,
    highlight,
    mentions,
    messages_search,
)
from ..selectors import (
    ATTACHMENT_KEYS,
    LIST_FIELDS,
    SORT_KEYS,
    BadCursor,
    KeysetPage,
    Sort,
    attachment_texts,
    keyset_page,
    listed_attachments,
)
from .common import with_page_policy

RESULTS_PER_PAGE = 25


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
class Results:
    hits: list[Hit]
    count: int
    count_is_lower_bound: bool
    page: KeysetPage | None  # newest first: pages by cursor
    page_number: int | None  # best match: pages by number, bounded
    has_next_number: bool
    of_attachments: bool = False


def _results(form: SearchForm, base: QuerySet[Message], search: MailSearch) -> Results:
    """Run ``search`` over ``base``; raises BadCursor for a broken page link."""
    if search.of_attachments:
        return _attachment_results(form, base, search)
    qs, parsed = messages_search(base, search)
    qs = qs.select_related("space").only(
        *LIST_FIELDS, "text_body", "space__key", "space__name"
    )
    count = qs.order_by()[: COUNT_LIMIT + 1].count()
    terms = parsed.highlight_terms
    page = None
    number = None
    has_next_number = False
    if search.order == Order.RELEVANCE and "rank" in qs.query.annotations:
        number = form.cleaned_data.get("page") or 1
        start = (number - 1) * RESULTS_PER_PAGE
        rows = list(qs[start : min(start + RESULTS_PER_PAGE, RELEVANCE_LIMIT)])
        has_next_number = start + RESULTS_PER_PAGE < min(count, RELEVANCE_LIMIT)
    else:
        page = keyset_page(
            qs,
            SORT_KEYS[Sort.NEWEST],
            size=RESULTS_PER_PAGE,
            after=form.cleaned_data.get("after") or None,
            before=form.cleaned_data.get("before") or None,
        )
        rows = page.rows
    hits = [
        Hit(
            message=m,
            subject=highlight(m.subject or _("(no subject)"), terms),
            excerpt=excerpt_around(m.text_body, terms),
        )
        for m in rows
    ]
    _show_attachment_matches(hits, terms)
    return Results(
        hits=hits,
        count=min(count, COUNT_LIMIT),
        count_is_lower_bound=count > COUNT_LIMIT,
        page=page,
        page_number=number,
        has_next_number=has_next_number,
    )


def _show_attachment_matches(hits: list[Hit], terms: list[str]) -> None:
    """Point each hit whose words are not in its subject or body at the first
    attachment whose text holds them (two queries for the page)."""
    unexplained = {
        hit.message.pk: hit
        for hit in hits
        if terms
        and hit.message.has_attachments
        and not mentions(hit.message.subject, terms)
        and not mentions(hit.message.text_body, terms)
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
    form: SearchForm, base: QuerySet[Message], search: MailSearch
) -> Results:
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
    page = keyset_page(
        qs,
        ATTACHMENT_KEYS,
        size=RESULTS_PER_PAGE,
        after=form.cleaned_data.get("after") or None,
        before=form.cleaned_data.get("before") or None,
    )
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
    return Results(
        hits=hits,
        count=min(count, COUNT_LIMIT),
        count_is_lower_bound=count > COUNT_LIMIT,
        page=page,
        page_number=None,
        has_next_number=False,
        of_attachments=True,
    )


def _render(
    request: HttpRequest,
    form: SearchForm,
    base: QuerySet[Message],
    *,
    space: Space | None,
) -> HttpResponse:
    results = None
    if form.is_valid():
        search = form.mail_search()
        if not search.is_empty:
            try:
                results = _results(form, base, search)
            except BadCursor:
                return HttpResponseBadRequest(_("That page link is broken."))
    response = render(
        request,
        "mailarchive/search.html",
        {"form": form, "results": results, "space": space},
    )
    return with_page_policy(request, response)


def search_all(request: HttpRequest) -> HttpResponse:
    """Search every space the visitor may view (or the one chosen in the form)."""
    spaces = spaces_visible_to(request.user)
    if not request.user.is_authenticated and not spaces.exists():
        return redirect_to_login(request.get_full_path())
    choices = list(spaces.values_list("key", "name"))
    form = SearchForm(request.GET or None, space_choices=choices)
    base = Message.objects.filter(space__in=spaces)
    if form.is_valid() and form.cleaned_data.get("space"):
        base = base.filter(space__key=form.cleaned_data["space"])
    return _render(request, form, base, space=None)


@space_required(Level.VIEW)
def search_space(request: HttpRequest, space: Space) -> HttpResponse:
    """Search the mail of one space."""
    form = SearchForm(request.GET or None)
    return _render(request, form, Message.objects.filter(space=space), space=space)
