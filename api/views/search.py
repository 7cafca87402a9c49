"""Search, with the search page's syntax, filters, ranking and highlights, and
the export of a search as mbox."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailarchive.exports import (
    export_file_name,
    gzip_requested,
    mbox_export_response,
    search_export_messages,
)
from mailarchive.forms import SearchForm
from mailarchive.models import Message
from mailarchive.search import MailSearch, SearchResults, search_results
from mailarchive.selectors import BadCursor, messages_of_spaces
from spaces.selectors import spaces_visible_to

from ..renderers import FILE_RENDERERS
from ..serializers import SearchResultsSerializer
from .base import cursor_links, form_errors, number_links, problems, space_for
from .mail import GZIP, MBOX_RESPONSES

MAX_RESULTS_PER_PAGE = 100

SEARCH_PARAMETERS = [
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        description='Words, "quoted phrases", `or`, and -word to leave out; '
        "text without spaces (Japanese) is matched as written.",
    ),
    OpenApiParameter(
        "sender", OpenApiTypes.STR, description="Part of the sender's name or address."
    ),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="From this day on."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Up to this day."),
    OpenApiParameter("has_attachment", OpenApiTypes.BOOL),
    OpenApiParameter(
        "order",
        OpenApiTypes.STR,
        enum=["newest", "relevance"],
        description="newest (default) pages by cursor; relevance (best match) "
        "by page number, up to 200 results.",
    ),
]
PAGE_PARAMETERS = [
    OpenApiParameter("after", OpenApiTypes.STR, description="From a `next` link."),
    OpenApiParameter("before", OpenApiTypes.STR, description="From a `previous` link."),
    OpenApiParameter("page", OpenApiTypes.INT, description="With order=relevance."),
    OpenApiParameter(
        "limit", OpenApiTypes.INT, description="Results per page, 1 to 100 (25)."
    ),
]


def _search(form: SearchForm) -> MailSearch:
    """The search a request asks for, as the search page reads it; else a 400."""
    if not form.is_valid():
        raise form_errors(form)
    search = form.mail_search()
    if search.is_empty:
        raise exceptions.ValidationError(
            {"q": [_("Say what to search for: text, a sender, dates or attachments.")]}
        )
    return search


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", "")
    if not text:
        return 25
    if not text.isdigit() or not 1 <= int(text) <= MAX_RESULTS_PER_PAGE:
        raise exceptions.ValidationError(
            {
                "limit": [
                    _("Give a number from 1 to %(max)d.")
                    % {"max": MAX_RESULTS_PER_PAGE}
                ]
            }
        )
    return int(text)


def _answer(
    request: Request, form: SearchForm, base: QuerySet[Message], search: MailSearch
) -> Response:
    try:
        results: SearchResults = search_results(
            base,
            search,
            page_number=form.cleaned_data.get("page"),
            after=form.cleaned_data.get("after") or None,
            before=form.cleaned_data.get("before") or None,
            size=_limit(request),
        )
    except BadCursor:
        raise exceptions.ValidationError(
            {"after": [_("That page link is broken.")]}
        ) from None
    if results.page is not None:
        links = cursor_links(request, results.page)
    else:
        links = number_links(request, results.page_number or 1, results.has_next_number)
    data = SearchResultsSerializer(
        {
            "count": results.count,
            "count_is_lower_bound": results.count_is_lower_bound,
            "hits": results.hits,
            **links,
        },
        context={"request": request},
    ).data
    return Response(data)


class SpaceSearchView(APIView):
    @extend_schema(
        operation_id="space_search",
        summary="Search a space",
        parameters=[*SEARCH_PARAMETERS, *PAGE_PARAMETERS],
        responses={200: SearchResultsSerializer, **problems(400, 401, 404, 429)},
        tags=["search"],
    )
    def get(self, request: Request, key: str) -> Response:
        space = space_for(request, key)
        form = SearchForm(request.query_params)
        search = _search(form)
        return _answer(request, form, Message.objects.filter(space=space), search)


class SearchAllView(APIView):
    @extend_schema(
        operation_id="search",
        summary="Search every space the caller may see",
        parameters=[
            *SEARCH_PARAMETERS,
            OpenApiParameter(
                "space", OpenApiTypes.STR, description="Only this space (its key)."
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: SearchResultsSerializer, **problems(400, 401, 429)},
        tags=["search"],
    )
    def get(self, request: Request) -> Response:
        spaces = spaces_visible_to(request.user)
        if not request.user.is_authenticated and not spaces.exists():
            raise exceptions.NotAuthenticated
        choices = list(spaces.values_list("key", "name"))
        form = SearchForm(request.query_params, space_choices=choices)
        search = _search(form)
        base = messages_of_spaces(spaces, form.cleaned_data.get("space", ""))
        return _answer(request, form, base, search)


class SearchExportView(APIView):
    renderer_classes = FILE_RENDERERS

    @extend_schema(
        operation_id="search_export",
        summary="Export a search as mbox",
        description="What the search finds in the space, oldest first, as mboxrd.",
        parameters=[*SEARCH_PARAMETERS, GZIP],
        responses={**MBOX_RESPONSES, **problems(400, 401, 404, 429)},
        tags=["export"],
    )
    def get(self, request: Request, key: str):
        space = space_for(request, key)
        search = _search(SearchForm(request.query_params))
        gz = gzip_requested(request)
        return mbox_export_response(
            search_export_messages(space, search),
            file_name=export_file_name(space, "search", compressed=gz),
            compressed=gz,
        )
