"""A space's mail: messages, their raw source and attachments, threads, trash,
and mbox exports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    messages_for_export,
)
from mailarchive.models import Message
from mailarchive.selectors import (
    BadCursor,
    KeysetPage,
    MailFilter,
    Sort,
    attachment_get,
    mail_list_page,
    message_attachments,
    message_get,
    thread_get,
    thread_tree,
    trash_page,
)
from mailarchive.services import message_trash, messages_restore
from mailarchive.views.mail import (
    attachment_response,
    message_raw_response,
    message_safe_html,
)
from spaces.models import Level, Space

from ..renderers import FILE_RENDERERS
from ..serializers import (
    MessageListItemSerializer,
    MessageListQuery,
    MessagePageSerializer,
    MessageSerializer,
    PageQuery,
    ThreadSerializer,
    TrashedMessageSerializer,
    TrashPageSerializer,
)
from .base import cursor_links, level_in, problems, space_for, validated


def _page_or_400(call: Callable[..., KeysetPage], *args: Any, **kwargs: Any):
    """``call``'s page, or a 400 problem for a cursor it did not write."""
    try:
        return call(*args, **kwargs)
    except BadCursor:
        raise exceptions.ValidationError(
            {"after": [_("That page link is broken.")]}
        ) from None


class MessageListView(APIView):
    @extend_schema(
        operation_id="messages_list",
        summary="A space's messages",
        description="Newest first unless sorted otherwise; one page at a time, "
        "by cursor: follow `next` and `previous`. Messages in the trash are "
        "left out.",
        parameters=[MessageListQuery],
        responses={200: MessagePageSerializer, **problems(400, 401, 404, 429)},
        tags=["messages"],
    )
    def get(self, request: Request, key: str) -> Response:
        space = space_for(request, key)
        query = validated(MessageListQuery, request.query_params)
        mail_filter = MailFilter(
            month=query.get("month"),
            sender=query.get("sender", "").strip(),
            date_from=query.get("date_from"),
            date_to=query.get("date_to"),
            has_attachments=query["has_attachments"],
            thread_id=query.get("thread"),
        )
        page = _page_or_400(
            mail_list_page,
            space,
            sort=Sort(query["sort"]),
            mail_filter=mail_filter,
            size=query["limit"],
            after=query.get("after") or None,
            before=query.get("before") or None,
        )
        context = {"request": request, "space_key": space.key}
        return Response(
            {
                "results": MessageListItemSerializer(
                    page.rows, many=True, context=context
                ).data,
                **cursor_links(request, page),
            }
        )


def _message_or_404(request: Request, space: Space, message_id: int) -> Message:
    """The message, trashed ones too for space admins (as on its page)."""
    message = message_get(
        space, message_id, include_trashed=level_in(request, space) >= Level.ADMIN
    )
    if message is None:
        raise exceptions.NotFound(_("No such message."))
    return message


REMOTE = OpenApiParameter(
    "remote",
    OpenApiTypes.BOOL,
    description="Keep remote pictures in the HTML (blocked by default).",
)


class MessageDetailView(APIView):
    @extend_schema(
        operation_id="message_retrieve",
        summary="A message",
        description="Headers, addresses, dates, the text body, the HTML body "
        "sanitized, attachments with download URLs, its thread and permalink. "
        "A message waiting to be indexed (index_state pending) has only its "
        "headers' identity and raw source so far.",
        parameters=[REMOTE],
        responses={200: MessageSerializer, **problems(401, 404, 429)},
        tags=["messages"],
    )
    def get(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key)
        message = _message_or_404(request, space, id)
        parts = message_attachments(message)
        remote = request.query_params.get("remote", "") in ("1", "true", "yes")
        html = message_safe_html(request, space, message, parts, allow_remote=remote)
        context = {
            "request": request,
            "space_key": space.key,
            "attachments": parts,
            "html": html,
        }
        return Response(MessageSerializer(message, context=context).data)


class MessageRawView(APIView):
    renderer_classes = FILE_RENDERERS

    @extend_schema(
        operation_id="message_raw",
        summary="A message's raw source",
        description="Byte for byte as archived, as an .eml download.",
        responses={
            (200, "message/rfc822"): OpenApiTypes.BINARY,
            **problems(401, 404, 429),
        },
        tags=["messages"],
    )
    def get(self, request: Request, key: str, id: int):
        space = space_for(request, key)
        return message_raw_response(_message_or_404(request, space, id))


class AttachmentDownloadView(APIView):
    renderer_classes = FILE_RENDERERS

    @extend_schema(
        operation_id="attachment_download",
        summary="An attachment",
        description="Always a download (Content-Disposition: attachment, "
        "nosniff, a sandboxing Content-Security-Policy), never rendered.",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            **problems(401, 404, 429),
        },
        tags=["messages"],
    )
    def get(self, request: Request, key: str, id: int, position: int):
        space = space_for(request, key)
        part = attachment_get(
            space, id, position, include_trashed=level_in(request, space) >= Level.ADMIN
        )
        if part is None:
            raise exceptions.NotFound(_("No such attachment."))
        return attachment_response(part)


class MessageTrashView(APIView):
    @extend_schema(
        operation_id="message_trash",
        summary="Move a message to the trash",
        description="Needs the delete level. Audit-logged; space admins can "
        "restore it.",
        request=None,
        responses={204: None, **problems(401, 403, 404, 429)},
        tags=["trash"],
    )
    def post(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.DELETE)
        if message_get(space, id) is None:
            raise exceptions.NotFound(_("No such message."))
        message_trash(space=space, message_pk=id, actor=request.user)
        return Response(status=204)


class MessageRestoreView(APIView):
    @extend_schema(
        operation_id="message_restore",
        summary="Bring a message back from the trash",
        description="Space admins only. Audit-logged; a message not in the "
        "trash stays as it is.",
        request=None,
        responses={204: None, **problems(401, 403, 404, 429)},
        tags=["trash"],
    )
    def post(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        if message_get(space, id, include_trashed=True) is None:
            raise exceptions.NotFound(_("No such message."))
        messages_restore(space=space, message_pks=[id], actor=request.user)
        return Response(status=204)


class TrashListView(APIView):
    @extend_schema(
        operation_id="trash_list",
        summary="A space's trash",
        description="Space admins only; most recently deleted first.",
        parameters=[PageQuery],
        responses={200: TrashPageSerializer, **problems(400, 401, 403, 404, 429)},
        tags=["trash"],
    )
    def get(self, request: Request, key: str) -> Response:
        space = space_for(request, key, Level.ADMIN)
        query = validated(PageQuery, request.query_params)
        page = _page_or_400(
            trash_page,
            space,
            size=query["limit"],
            after=query.get("after") or None,
            before=query.get("before") or None,
        )
        context = {"request": request, "space_key": space.key}
        return Response(
            {
                "results": TrashedMessageSerializer(
                    page.rows, many=True, context=context
                ).data,
                **cursor_links(request, page),
            }
        )


def _thread_or_404(space: Space, thread_id: int):
    thread = thread_get(space, thread_id)
    if thread is None:
        raise exceptions.NotFound(_("No such thread."))
    return thread


class ThreadDetailView(APIView):
    @extend_schema(
        operation_id="thread_retrieve",
        summary="A thread with its messages",
        responses={200: ThreadSerializer, **problems(401, 404, 429)},
        tags=["messages"],
    )
    def get(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key)
        thread = _thread_or_404(space, id)
        context = {
            "request": request,
            "space_key": space.key,
            "rows": thread_tree(thread),
        }
        return Response(ThreadSerializer(thread, context=context).data)


GZIP = OpenApiParameter(
    "gzip", OpenApiTypes.BOOL, description="Compress the mbox with gzip."
)
MBOX_RESPONSES = {
    (200, "application/mbox"): OpenApiTypes.BINARY,
    (200, "application/gzip"): OpenApiTypes.BINARY,
}


class SpaceExportView(APIView):
    renderer_classes = FILE_RENDERERS

    @extend_schema(
        operation_id="space_export",
        summary="Export a space as mbox",
        description="Every message not in the trash, oldest first, as mboxrd: "
        "the raw bytes as archived, only From-quoting added. Streamed.",
        parameters=[GZIP],
        responses={**MBOX_RESPONSES, **problems(401, 404, 429)},
        tags=["export"],
    )
    def get(self, request: Request, key: str):
        space = space_for(request, key)
        gz = gzip_requested(request)
        return mbox_export_response(
            messages_for_export(space),
            file_name=export_file_name(space, compressed=gz),
            compressed=gz,
        )


class ThreadExportView(APIView):
    renderer_classes = FILE_RENDERERS

    @extend_schema(
        operation_id="thread_export",
        summary="Export a thread as mbox",
        parameters=[GZIP],
        responses={**MBOX_RESPONSES, **problems(401, 404, 429)},
        tags=["export"],
    )
    def get(self, request: Request, key: str, id: int):
        space = space_for(request, key)
        thread = _thread_or_404(space, id)
        gz = gzip_requested(request)
        return mbox_export_response(
            messages_for_export(space, thread=thread),
            file_name=export_file_name(space, f"thread-{thread.pk}", compressed=gz),
            compressed=gz,
        )
