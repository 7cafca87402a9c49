"""Search pages: within one space, and across every space the visitor may view."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _

from spaces.decorators import space_required
from spaces.models import Level, Space
from spaces.selectors import spaces_visible_to

from ..forms import SearchForm
from ..models import Message
from ..search import MailSearch, SearchResults, search_results
from ..selectors import BadCursor, messages_of_spaces
from .common import with_page_policy


def _results(
    form: SearchForm, base: QuerySet[Message], search: MailSearch
) -> SearchResults:
    """Run ``search`` over ``base``; raises BadCursor for a broken page link."""
    return search_results(
        base,
        search,
        page_number=form.cleaned_data.get("page"),
        after=form.cleaned_data.get("after") or None,
        before=form.cleaned_data.get("before") or None,
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
    key = form.cleaned_data.get("space", "") if form.is_valid() else ""
    base = messages_of_spaces(spaces, key)
    return _render(request, form, base, space=None)


@space_required(Level.VIEW)
def search_space(request: HttpRequest, space: Space) -> HttpResponse:
    """Search the mail of one space."""
    form = SearchForm(request.GET or None)
    return _render(request, form, Message.objects.filter(space=space), space=space)
