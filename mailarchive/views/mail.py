"""The space's mail: the list, months, a message, its files, its thread."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import unquote, urlencode

from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.signing import BadSignature, TimestampSigner
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
)
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from spaces.decorators import space_required
from spaces.models import Level, Space
from spaces.selectors import (
    AnyUser,
    space_get_for,
    space_level_for,
    spaces_visible_to,
)

from ..forms import MailListForm, ThreadPageForm
from ..framesize import frame_size
from ..models import Attachment, AttachmentText, Message, ReadingPreference
from ..parsing.locations import LocationIndex
from ..sanitize import SanitizedHtml, sanitize_html
from ..selectors import (
    THREAD_TREE_LIMIT,
    WAITING_COUNT_LIMIT,
    BadCursor,
    ConversationEntry,
    MailFilter,
    Sort,
    attachment_get,
    attachment_texts,
    attachments_waiting_count,
    mail_list_page,
    mail_view_for,
    message_attachments,
    message_by_message_id,
    message_get,
    message_neighbours,
    messages_pending_count,
    messages_threadless_count,
    month_index,
    thread_conversation,
    thread_get,
    thread_list_page,
    thread_neighbours,
    thread_page_of,
    thread_position,
)
from ..services import message_trash, message_trash_undo, messages_restore
from ..storage import blob_open, blob_read
from ..textrender import render_text
from .common import download_type, file_headers, request_origin, with_page_policy
from .preferences import MAIL_VIEW_SESSION_KEY

# Types a browser shows as a picture and nothing else; SVG is a document.
INLINE_IMAGE_TYPES = frozenset(
    {
        "image/png",
        "image/gif",
        "image/jpeg",
        "image/pjpeg",
        "image/webp",
        "image/bmp",
        "image/avif",
        "image/x-icon",
        "image/vnd.microsoft.icon",
    }
)
# Passes to pictures outlive a page left open for a working day.
INLINE_TOKEN_MAX_AGE = 12 * 3600
INLINE_SIGNER = TimestampSigner(salt="mailarchive.inline-image")
# "Show remote content" is the reader's choice, made on the message page: its
# link carries a pass for this reader and this message, so that a link
# crafted elsewhere cannot load a tracker in the reader's name.
REMOTE_SIGNER = TimestampSigner(salt="mailarchive.remote-content")
REMOTE_TOKEN_MAX_AGE = INLINE_TOKEN_MAX_AGE
# A raw source longer than this is cut on the page of an unparseable message
# (the whole source stays one click away).
RAW_SHOWN_LIMIT = 1_000_000
# Characters of an attachment's text shown on the message page; all of it is
# searched.
ATTACHMENT_TEXT_SHOWN = 50_000
# Why the text of an attachment could not be read, by the reason recorded.
UNREADABLE_REASONS = {
    "encrypted": gettext_lazy("it is encrypted"),
    "unreadable": gettext_lazy("it is damaged, or not what its type says"),
    "zip-bomb": gettext_lazy("it would unpack to far more than it holds"),
    "too-large": gettext_lazy("it is too large when unpacked"),
    "too-complex": gettext_lazy("it is built to be too slow to read"),
    "time": gettext_lazy("reading it took longer than allowed"),
    "memory": gettext_lazy("reading it needed more memory than allowed"),
    "too-many": gettext_lazy("the message has too many attachments to read all"),
}
UNREADABLE_OTHERWISE = gettext_lazy("the reader stopped")


@dataclass(frozen=True)
class AttachmentRow:
    """An attachment on the message page, with what was read from it."""

    part: Attachment
    read: AttachmentText | None
    shown_text: str
    text_cut: bool
    opened: bool

    @property
    def unreadable_reason(self) -> str:
        if self.read is None or self.read.status != AttachmentText.Status.FAILED:
            return ""
        return str(UNREADABLE_REASONS.get(self.read.reason, UNREADABLE_OTHERWISE))


def _attachment_rows(parts: list[Attachment], opened: str) -> list[AttachmentRow]:
    """Each attachment with its text, for the page (one query)."""
    texts = attachment_texts(part.sha256 for part in parts if not part.inline)
    rows = []
    for part in parts:
        read = None if part.inline else texts.get(part.sha256)
        text = read.text if read is not None else ""
        rows.append(
            AttachmentRow(
                part=part,
                read=read,
                shown_text=text[:ATTACHMENT_TEXT_SHOWN],
                text_cut=len(text) > ATTACHMENT_TEXT_SHOWN
                or bool(read and read.truncated),
                opened=opened == str(part.position),
            )
        )
    return rows


def reader_mail_view(request: HttpRequest) -> str:
    """The list the reader chose: stored for users, in the session otherwise."""
    if request.user.is_authenticated:
        return mail_view_for(request.user)
    return request.session.get(
        MAIL_VIEW_SESSION_KEY, ReadingPreference.MailView.MESSAGES
    )


@space_required(Level.VIEW)
def mail_list(request: HttpRequest, space: Space) -> HttpResponse:
    """The space's mail, newest first by default, as messages or as
    conversations (the reader's choice, or ``?view=``). Renders mail_list.html.

    Sorting by sender or subject and the sender filter are about messages:
    they always show the list of messages.
    """
    form = MailListForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Unknown list options."))
    options = form.cleaned_data
    mail_filter = MailFilter(month=options["month"], sender=options["sender"].strip())
    chosen = options["view"] or reader_mail_view(request)
    threads = (
        chosen == ReadingPreference.MailView.THREADS
        and options["sort"] in (Sort.NEWEST, Sort.OLDEST)
        and not mail_filter.sender
    )
    try:
        if threads:
            page = thread_list_page(
                space,
                oldest_first=options["sort"] == Sort.OLDEST,
                month=mail_filter.month,
                size=options["size"],
                after=options["after"] or None,
                before=options["before"] or None,
                last=options["last"],
            )
        else:
            page = mail_list_page(
                space,
                sort=options["sort"],
                mail_filter=mail_filter,
                size=options["size"],
                after=options["after"] or None,
                before=options["before"] or None,
                last=options["last"],
            )
    except BadCursor:
        return HttpResponseBadRequest(_("That page link is broken."))
    level = space_level_for(request.user, space)
    response = render(
        request,
        "mailarchive/mail_list.html",
        {
            "space": space,
            "page": page,
            "form": form,
            "sort": options["sort"],
            "mail_filter": mail_filter,
            "grouped_by_month": options["sort"] in ("newest", "oldest"),
            "pending_count": messages_pending_count(space),
            "attachments_waiting": attachments_waiting_count(space),
            "waiting_limit": WAITING_COUNT_LIMIT,
            "threadless_count": messages_threadless_count(space) if threads else 0,
            "show_threads": threads,
            "chosen_view": chosen,
            "may_admin": level is not None and level >= Level.ADMIN,
        },
    )
    return with_page_policy(request, response)


@space_required(Level.VIEW)
def mail_months(request: HttpRequest, space: Space) -> HttpResponse:
    """Messages per month, newest month first. Renders mail_months.html."""
    response = render(
        request,
        "mailarchive/mail_months.html",
        {"space": space, "months": month_index(space)},
    )
    return with_page_policy(request, response)


def inline_image_token(user: AnyUser, key: str, message_pk: int, position: int) -> str:
    """A signed, expiring pass to one picture part, for the user viewing it."""
    holder = user.pk if user.is_authenticated else None
    return INLINE_SIGNER.sign_object([holder, key, message_pk, position])


def _inline_token_holder(
    token: str, key: str, message_pk: int, position: int
) -> AnyUser | None:
    """The user a valid pass for this very picture was made for, else None."""
    try:
        holder, signed_key, signed_pk, signed_position = INLINE_SIGNER.unsign_object(
            token, max_age=INLINE_TOKEN_MAX_AGE
        )
    except (BadSignature, ValueError, TypeError):
        return None
    if (signed_key, signed_pk, signed_position) != (key, message_pk, position):
        return None
    if holder is None:
        return AnonymousUser()
    return get_user_model().objects.filter(pk=holder, is_active=True).first()


def _reader(request: HttpRequest) -> str:
    """Who is reading: the user, or an anonymous browser by its CSRF secret."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    get_token(request)
    secret = request.META.get("CSRF_COOKIE", "")
    return "browser:" + hashlib.sha256(secret.encode()).hexdigest()[:32]


def remote_content_token(request: HttpRequest, message_pk: int) -> str:
    """A signed, expiring pass to the remote content of one message, for the
    reader of ``request`` only."""
    return REMOTE_SIGNER.sign_object([_reader(request), message_pk])


def _remote_content_asked(request: HttpRequest, message_pk: int) -> bool:
    """Whether the query string holds this reader's pass for this message."""
    token = request.GET.get("remote", "")
    if not token:
        return False
    try:
        reader, signed_pk = REMOTE_SIGNER.unsign_object(
            token, max_age=REMOTE_TOKEN_MAX_AGE
        )
    except (BadSignature, ValueError, TypeError):
        return False
    return signed_pk == message_pk and reader == _reader(request)


@dataclass(frozen=True)
class InlineImages:
    """The archive URLs of a message's picture parts, by how its HTML names them."""

    by_content_id: dict[str, str]
    by_location: LocationIndex[str]


def _inline_image_urls(
    request: HttpRequest, space: Space, message: Message, parts: list[Attachment]
) -> InlineImages:
    """Absolute, signed URL of each picture part, by Content-ID (``cid:``
    targets) and by Content-Location (URLs that name a part).

    The HTML is shown in a sandboxed frame whose origin is opaque, and Chromium
    sends no SameSite cookie with requests from such a frame (whether the frame
    is a ``srcdoc`` or a same-origin ``src``): the session cannot vouch for the
    picture request, so the URL carries a pass for the viewing user instead.
    Every URL is on the archive: a mail's own URLs never come back from here.
    """
    by_content_id: dict[str, str] = {}
    by_location: LocationIndex[str] = LocationIndex()
    for part in parts:
        named = part.content_id or part.content_location
        if named and part.content_type.lower() in INLINE_IMAGE_TYPES:
            path = reverse(
                "mailarchive:attachment-inline",
                kwargs={
                    "key": space.key,
                    "message_pk": message.pk,
                    "position": part.position,
                },
            )
            token = inline_image_token(
                request.user, space.key, message.pk, part.position
            )
            address = request.build_absolute_uri(f"{path}?{urlencode({'t': token})}")
            if part.content_id:
                by_content_id.setdefault(part.content_id, address)
            if part.content_location:
                by_location.add(
                    part.content_location, part.content_base or None, address
                )
    return InlineImages(by_content_id=by_content_id, by_location=by_location)


def message_safe_html(
    request: HttpRequest,
    space: Space,
    message: Message,
    parts: list[Attachment],
    *,
    allow_remote: bool,
) -> SanitizedHtml | None:
    """The message's HTML body as a safe document for a sandboxed frame, or None.

    Its pictures point at the archive with passes for the requesting user;
    remote content stays out unless ``allow_remote``. Reads only.
    """
    if not message.html_body:
        return None
    images = _inline_image_urls(request, space, message, parts)
    return sanitize_html(
        message.html_body,
        allow_remote=allow_remote,
        cid_url=images.by_content_id.get,
        location_url=images.by_location.find,
        img_src_origin=request_origin(request),
    )


def message_raw_response(message: Message) -> FileResponse:
    """The raw source, byte for byte, as an ``.eml`` download."""
    response = FileResponse(blob_open(message.raw_name), content_type="message/rfc822")
    file_headers(
        response, filename=f"message-{message.pk}.eml", disposition="attachment"
    )
    return response


def attachment_response(part: Attachment) -> FileResponse:
    """An attachment as a download that no browser renders or runs."""
    response = FileResponse(
        blob_open(part.blob_name), content_type=download_type(part.content_type)
    )
    file_headers(response, filename=part.filename, disposition="attachment")
    return response


@space_required(Level.VIEW)
def message_detail(request: HttpRequest, space: Space, message_pk: int) -> HttpResponse:
    """One message, safe to read. Renders message_detail.html.

    The HTML body is sanitized and shown in a sandboxed ``srcdoc`` frame;
    remote content stays out unless the query string carries the reader's own
    pass for this message (``remote=…``, the page's "Show remote content"
    link). Each attachment whose text was read has it below, folded;
    ``attachment=N`` unfolds that of the attachment at position N (search
    results link there). Space admins also see messages in the trash, marked
    as such.
    """
    level = space_level_for(request.user, space) or Level.VIEW
    message = message_get(space, message_pk, include_trashed=level >= Level.ADMIN)
    if message is None:
        raise Http404(_("No such message."))
    parts = message_attachments(message)
    allow_remote = _remote_content_asked(request, message.pk)
    html = message_safe_html(request, space, message, parts, allow_remote=allow_remote)
    raw_text = None
    raw_cut = False
    if not message.parseable or message.pending:
        raw = blob_read(message.raw_name)
        raw_cut = len(raw) > RAW_SHOWN_LIMIT
        raw_text = raw[:RAW_SHOWN_LIMIT].decode("utf-8", "replace")
    response = render(
        request,
        "mailarchive/message_detail.html",
        {
            "space": space,
            "message": message,
            "attachments": parts,
            "attachment_rows": _attachment_rows(
                parts, request.GET.get("attachment", "")
            ),
            "text_html": render_text(message.text_body) if message.text_body else "",
            "html": html,
            "frame_fit": frame_size(html.html).tokens if html else "",
            "allow_remote": allow_remote,
            "remote_token": remote_content_token(request, message.pk)
            if html is not None and html.has_remote_content and not allow_remote
            else "",
            "raw_text": raw_text,
            "raw_cut": raw_cut,
            "neighbours": message_neighbours(message),
            "position": thread_position(message),
            "thread_page": thread_page_of(message),
            "may_delete": level >= Level.DELETE and message.deleted_at is None,
            "may_admin": level >= Level.ADMIN,
        },
    )
    return with_page_policy(request, response, allow_remote=allow_remote)


@dataclass(frozen=True)
class ShownEntry:
    """A message of a thread page with its body made safe to show."""

    depth: int
    message: Message
    attachments: list[Attachment]
    text_html: str
    html: SanitizedHtml | None
    frame_fit: str


def _shown_entry(
    request: HttpRequest, space: Space, entry: ConversationEntry
) -> ShownEntry:
    """``entry`` with its text rendered and its HTML sanitized, remote content
    blocked (the message's own page offers to load it)."""
    message = entry.message
    html = None
    if message.html_body and message.parseable and not message.pending:
        images = _inline_image_urls(request, space, message, entry.attachments)
        html = sanitize_html(
            message.html_body,
            allow_remote=False,
            cid_url=images.by_content_id.get,
            location_url=images.by_location.find,
            img_src_origin=request_origin(request),
        )
    text_html = render_text(message.text_body) if message.text_body else ""
    return ShownEntry(
        depth=entry.depth,
        message=message,
        attachments=entry.attachments,
        text_html=text_html,
        html=html,
        frame_fit=frame_size(html.html).tokens if html else "",
    )


@space_required(Level.VIEW)
def thread_detail(request: HttpRequest, space: Space, thread_id: int) -> HttpResponse:
    """A whole conversation: every message with its body, a page at a time, by
    date or as a tree (``?order=tree``). Renders thread_detail.html."""
    thread = thread_get(space, thread_id)
    if thread is None:
        raise Http404(_("No such thread."))
    form = ThreadPageForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Unknown thread options."))
    order = form.cleaned_data["order"]
    conversation = thread_conversation(
        thread, order=order, page=form.cleaned_data["page"] or 1
    )
    current = form.cleaned_data["message"]
    entries = [_shown_entry(request, space, e) for e in conversation.entries]
    response = render(
        request,
        "mailarchive/thread_detail.html",
        {
            "space": space,
            "thread": thread,
            "rows": conversation.outline,
            "conversation": conversation,
            "entries": entries,
            "order": order,
            "open_pks": {conversation.newest_pk, current},
            "neighbours": thread_neighbours(thread),
            "current": current,
            "show_outline": len(conversation.outline) <= THREAD_TREE_LIMIT,
        },
    )
    return with_page_policy(request, response)


def _message_or_404(request: HttpRequest, space: Space, message_pk: int) -> Message:
    level = space_level_for(request.user, space) or Level.VIEW
    message = message_get(space, message_pk, include_trashed=level >= Level.ADMIN)
    if message is None:
        raise Http404(_("No such message."))
    return message


@space_required(Level.VIEW)
def message_raw(request: HttpRequest, space: Space, message_pk: int) -> HttpResponse:
    """The raw source as text (UTF-8, undecodable bytes replaced)."""
    message = _message_or_404(request, space, message_pk)
    text = blob_read(message.raw_name).decode("utf-8", "replace")
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    file_headers(response, filename=f"message-{message.pk}.txt", disposition="inline")
    return response


@space_required(Level.VIEW)
def message_raw_download(
    request: HttpRequest, space: Space, message_pk: int
) -> HttpResponse:
    """The raw source, byte for byte, as an ``.eml`` download."""
    return message_raw_response(_message_or_404(request, space, message_pk))


def _attachment_or_404(
    request: HttpRequest, space: Space, message_pk: int, position: int
) -> Attachment:
    level = space_level_for(request.user, space) or Level.VIEW
    part = attachment_get(
        space, message_pk, position, include_trashed=level >= Level.ADMIN
    )
    if part is None:
        raise Http404(_("No such attachment."))
    return part


@space_required(Level.VIEW)
def attachment_download(
    request: HttpRequest, space: Space, message_pk: int, position: int
) -> HttpResponse:
    """An attachment, always as a download, never rendered by the browser."""
    return attachment_response(_attachment_or_404(request, space, message_pk, position))


def attachment_inline(
    request: HttpRequest, key: str, message_pk: int, position: int
) -> HttpResponse:
    """A picture part for a ``cid:`` or Content-Location reference in the
    message's HTML.

    The permission check is that of ``space_required``, made for the user of
    the signed pass in ``t`` when there is one (see ``_inline_image_urls``),
    else for the session's user. Only raster image types are served, under a
    policy that lets nothing load or run; anything else is a 404. No
    cross-origin resource policy is set: the frame asking has an opaque origin.
    """
    user = request.user
    token = request.GET.get("t", "")
    if token:
        user = _inline_token_holder(token, key, message_pk, position)
        if user is None:
            raise Http404(_("No such attachment."))
    try:
        space = space_get_for(user, key, Level.VIEW)
    except Http404:
        if not user.is_authenticated and not token:
            return redirect_to_login(request.get_full_path())
        raise
    level = space_level_for(user, space) or Level.VIEW
    part = attachment_get(
        space, message_pk, position, include_trashed=level >= Level.ADMIN
    )
    if part is None or part.content_type.lower() not in INLINE_IMAGE_TYPES:
        raise Http404(_("No such picture."))
    response = FileResponse(
        blob_open(part.blob_name), content_type=part.content_type.lower()
    )
    file_headers(response, filename=part.filename, disposition="inline")
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    del response["Cross-Origin-Resource-Policy"]
    response["Cache-Control"] = "private, max-age=3600"
    return response


def message_permalink(request: HttpRequest, message_id: str) -> HttpResponse:
    """Redirect a Message-ID to the first message with it the visitor may see.

    The path is percent-decoded by the server; an id that still looks encoded
    (a link that was encoded twice) is tried decoded when nothing matches.
    """
    spaces = spaces_visible_to(request.user)
    message = message_by_message_id(spaces, message_id)
    if message is None and "%" in message_id:
        message = message_by_message_id(spaces, unquote(message_id))
    if message is None:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404(_("No message with that Message-ID."))
    return redirect(
        "mailarchive:message-detail", key=message.space.key, message_pk=message.pk
    )


@require_POST
@space_required(Level.DELETE)
def message_delete(request: HttpRequest, space: Space, message_pk: int) -> HttpResponse:
    """Move a message to the trash, then show the next older one (or the list)."""
    message = message_get(space, message_pk)
    if message is None:
        raise Http404(_("No such message."))
    following = message_neighbours(message).older
    if message_trash(space=space, message_pk=message.pk, actor=request.user):
        flash.success(
            request,
            _("“%(subject)s” was moved to the trash.")
            % {"subject": message.subject or _("(no subject)")},
            extra_tags="undo",
        )
        request.session[UNDO_SESSION_KEY] = [space.key, message.pk]
    if following is not None:
        return redirect(
            "mailarchive:message-detail", key=space.key, message_pk=following.pk
        )
    return redirect("mailarchive:mail-list", key=space.key)


UNDO_SESSION_KEY = "mailarchive.undo_trash"


@require_POST
@space_required(Level.DELETE)
def message_undo_delete(request: HttpRequest, space: Space) -> HttpResponse:
    """Take back the reader's latest removal in this space (the Undo button
    shown right after it), then show the message again."""
    remembered = request.session.get(UNDO_SESSION_KEY) or [None, None]
    key, message_pk = remembered
    if key != space.key or not isinstance(message_pk, int):
        flash.error(request, _("There is nothing to undo."))
        return redirect("mailarchive:mail-list", key=space.key)
    del request.session[UNDO_SESSION_KEY]
    if not message_trash_undo(space=space, message_pk=message_pk, actor=request.user):
        flash.error(request, _("That removal can no longer be undone here."))
        return redirect("mailarchive:mail-list", key=space.key)
    flash.success(request, _("The message is back."))
    return redirect("mailarchive:message-detail", key=space.key, message_pk=message_pk)


@require_POST
@space_required(Level.ADMIN)
def message_restore(
    request: HttpRequest, space: Space, message_pk: int
) -> HttpResponse:
    """Bring one message back from the trash and show it."""
    if messages_restore(space=space, message_pks=[message_pk], actor=request.user):
        flash.success(request, _("The message was restored."))
    return redirect("mailarchive:message-detail", key=space.key, message_pk=message_pk)
