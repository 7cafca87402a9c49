"""Search pages: within one space, and across every space the visitor may view."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from spaces.decorators import space_required
from spaces.models import Level, Space
from spaces.selectors import spaces_visible_to

from ..forms import SearchForm
from ..models import Message
from ..search import (
    COUNT_LIMIT,
    RELEVANCE_LIMIT,
    MailSearch,
    Order,
    excerpt_around,
    highlight,
    messages_search,
)
from ..selectors import LIST_FIELDS, SORT_KEYS, BadCursor, KeysetPage, Sort, keyset_page
from .common import with_page_policy

RESULTS_PER_PAGE = 25
# Excerpts are cut from this much of the start of each text body, read in the
# database, so a page of huge messages costs what one of short ones does. A
# match further in is found all the same; its excerpt is then the beginning.
EXCERPT_SOURCE_CHARS = 10000


@dataclass
class Hit:
    """One search result, its subject and an excerpt with the matches marked."""

    message: Message
    subject: SafeString
    excerpt: SafeString


@dataclass
class Results:
    hits: list[Hit]
    count: int
    count_is_lower_bound: bool
    page: KeysetPage | None  # newest first: pages by cursor
    page_number: int | None  # best match: pages by number, bounded
    has_next_number: bool


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


def _results(form: SearchForm, base: QuerySet[Message], search: MailSearch) -> Results:
    """Run ``search`` over ``base``; raises BadCursor for a broken page link."""
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
            excerpt=_excerpt(m, terms),
        )
        for m in rows
    ]
    return Results(
        hits=hits,
        count=min(count, COUNT_LIMIT),
        count_is_lower_bound=count > COUNT_LIMIT,
        page=page,
        page_number=number,
        has_next_number=has_next_number,
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
