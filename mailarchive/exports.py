"""Taking mail out as mboxrd: a whole space, a thread, or a search result.

One path writes every export, the downloads here and ``manage.py exportmbox``:
``messages_for_export`` picks the messages (trashed ones never), and
``mbox_export_chunks`` streams them oldest first as mboxrd with the raw bytes
exactly as archived, only From-quoting added. Messages are read from the
database in keyset batches and from storage one at a time, so an export of any
size runs in bounded memory and without a long-lived database cursor.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from spaces.decorators import space_required
from spaces.models import Level, Space

from .forms import SearchForm
from .mbox import iter_mboxrd_chunks
from .models import Message, Thread
from .search import MailSearch, Order, messages_found
from .storage import blob_read

EXPORT_BATCH = 200
# Compressed output is handed out in pieces of about this size.
GZIP_PIECE = 256 * 1024


def messages_for_export(
    space: Space,
    *,
    thread: Thread | None = None,
    messages: QuerySet[Message] | None = None,
) -> QuerySet[Message]:
    """The messages of ``space`` an export holds: not trashed, oldest first.

    ``thread`` narrows to one thread, ``messages`` to a queryset (a search
    result). Builds a query only.
    """
    qs = messages if messages is not None else Message.objects.all()
    qs = qs.filter(space=space, deleted_at__isnull=True)
    if thread is not None:
        qs = qs.filter(thread=thread)
    return qs.order_by("date", "pk")


def search_export_messages(space: Space, search: MailSearch) -> QuerySet[Message]:
    """What an export of ``search`` in ``space`` holds, oldest first (inside
    attachments: the messages that hold what it finds).

    Builds a query only.
    """
    # Relevance ranks only order results; an export is oldest first anyway.
    newest = dataclasses.replace(search, order=Order.NEWEST)
    found = messages_found(Message.objects.filter(space=space), newest)
    return messages_for_export(space, messages=found)


def _export_rows(
    messages: QuerySet[Message], batch_size: int
) -> Iterator[tuple[int, str, str, datetime]]:
    """(pk, raw_name, from_address, date) in (date, pk) order, batch by batch."""
    base = messages.order_by().order_by("date", "pk")
    after: tuple[datetime, int] | None = None
    while True:
        qs = base
        if after is not None:
            date, pk = after
            qs = qs.filter(Q(date__gt=date) | Q(date=date, pk__gt=pk))
        rows = list(
            qs.values_list("pk", "raw_name", "from_address", "date")[:batch_size]
        )
        yield from rows
        if len(rows) < batch_size:
            return
        after = (rows[-1][3], rows[-1][0])


def mbox_export_chunks(
    messages: QuerySet[Message], *, batch_size: int = EXPORT_BATCH
) -> Iterator[bytes]:
    """Yield ``messages`` as an mboxrd file, one message per chunk, oldest first.

    The From_ line carries the sender address and the message's date in UTC;
    the message itself is its raw bytes as archived. Reads only; holds one
    message at a time. Safe to re-run.
    """

    def triples() -> Iterator[tuple[bytes, str, datetime]]:
        for _pk, raw_name, sender, date in _export_rows(messages, batch_size):
            yield blob_read(raw_name), sender, date

    return iter_mboxrd_chunks(triples())


def gzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Compress a stream of chunks into one gzip file, piece by piece."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    pending: list[bytes] = []
    pending_size = 0
    for chunk in chunks:
        piece = compressor.compress(chunk)
        if piece:
            pending.append(piece)
            pending_size += len(piece)
        if pending_size >= GZIP_PIECE:
            yield b"".join(pending)
            pending, pending_size = [], 0
    pending.append(compressor.flush())
    yield b"".join(pending)


def export_file_name(space: Space, what: str = "", *, compressed: bool) -> str:
    """``SALES-thread-12-20240301.mbox.gz``: space, what, today's date."""
    stamp = timezone.localdate().strftime("%Y%m%d")
    middle = f"-{what}" if what else ""
    return f"{space.key}{middle}-{stamp}.mbox" + (".gz" if compressed else "")


def mbox_export_response(
    messages: QuerySet[Message], *, file_name: str, compressed: bool
) -> StreamingHttpResponse:
    """A download streaming ``messages`` as mboxrd, gzip-compressed if asked."""
    chunks: Iterator[bytes] = mbox_export_chunks(messages)
    if compressed:
        chunks = gzip_chunks(chunks)
    response = StreamingHttpResponse(
        chunks,
        content_type="application/gzip" if compressed else "application/mbox",
    )
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def gzip_requested(request: HttpRequest) -> bool:
    """Whether an export's query string asks for gzip (``gzip=1``, on, true)."""
    return request.GET.get("gzip", "") in ("1", "on", "true", "yes")


@space_required(Level.VIEW)
def export_space_view(request: HttpRequest, space: Space) -> HttpResponse:
    """Every message of the space as one mbox download."""
    compressed = gzip_requested(request)
    return mbox_export_response(
        messages_for_export(space),
        file_name=export_file_name(space, compressed=compressed),
        compressed=compressed,
    )


@space_required(Level.VIEW)
def export_thread_view(
    request: HttpRequest, space: Space, thread_id: int
) -> HttpResponse:
    """The messages of one thread of the space as an mbox download."""
    thread = get_object_or_404(Thread, pk=thread_id, space=space)
    compressed = gzip_requested(request)
    return mbox_export_response(
        messages_for_export(space, thread=thread),
        file_name=export_file_name(space, f"thread-{thread.pk}", compressed=compressed),
        compressed=compressed,
    )


@space_required(Level.VIEW)
def export_search_view(request: HttpRequest, space: Space) -> HttpResponse:
    """The messages of a search in the space as an mbox download, oldest first.

    Takes the same query parameters as the space's search page; a search
    inside attachments exports the messages that hold what it finds.
    """
    form = SearchForm(request.GET)
    if not form.is_valid() or form.mail_search().is_empty:
        return HttpResponseBadRequest(
            _("Say what to search for: the parameters of the search page.")
        )
    compressed = gzip_requested(request)
    return mbox_export_response(
        search_export_messages(space, form.mail_search()),
        file_name=export_file_name(space, "search", compressed=compressed),
        compressed=compressed,
    )
