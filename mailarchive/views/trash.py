"""The space trash and "Delete all mail" (space admins)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from spaces.decorators import space_required
from spaces.forms import SpaceKeyConfirmForm
from spaces.models import Level, Space

from ..forms import TrashActionForm
from ..selectors import BadCursor, live_count, trash_count, trash_page
from ..services import messages_purge, messages_restore, space_mail_trash_all
from .common import with_page_policy


@space_required(Level.ADMIN)
def trash(request: HttpRequest, space: Space) -> HttpResponse:
    """What was deleted, most recently first. Renders trash.html."""
    try:
        page = trash_page(
            space,
            after=request.GET.get("after") or None,
            before=request.GET.get("before") or None,
        )
    except BadCursor:
        return HttpResponseBadRequest(_("That page link is broken."))
    response = render(
        request,
        "mailarchive/trash.html",
        {"space": space, "page": page, "count": trash_count(space)},
    )
    return with_page_policy(request, response)


@require_POST
@space_required(Level.ADMIN)
def trash_action(request: HttpRequest, space: Space) -> HttpResponse:
    """Restore or purge the ticked messages, or the whole trash."""
    form = TrashActionForm(request.POST)
    if not form.is_valid():
        for error in form.non_field_errors():
            flash.error(request, error)
        return redirect("mailarchive:trash", key=space.key)
    action = form.cleaned_data["action"]
    pks = None if action in ("restore_all", "empty") else form.cleaned_data["messages"]
    if action in ("restore", "restore_all"):
        count = messages_restore(space=space, message_pks=pks, actor=request.user)
        text = ngettext(
            "%(count)d message restored.", "%(count)d messages restored.", count
        )
    else:
        count = messages_purge(space=space, message_pks=pks, actor=request.user)
        text = ngettext(
            "%(count)d message deleted for good.",
            "%(count)d messages deleted for good.",
            count,
        )
    flash.success(request, text % {"count": count})
    return redirect("mailarchive:trash", key=space.key)


@space_required(Level.ADMIN)
def delete_all(request: HttpRequest, space: Space) -> HttpResponse:
    """Move all of the space's mail to the trash, once the admin confirmed it.

    Renders delete_all.html, which names the space and the number of messages.
    """
    form = SpaceKeyConfirmForm(request.POST or None, space_key=space.key)
    if request.method == "POST" and form.is_valid():
        count = space_mail_trash_all(space=space, actor=request.user)
        flash.success(
            request,
            ngettext(
                "%(count)d message of %(space)s moved to the trash.",
                "%(count)d messages of %(space)s moved to the trash.",
                count,
            )
            % {"count": count, "space": space.name},
        )
        return redirect("mailarchive:trash", key=space.key)
    response = render(
        request,
        "mailarchive/delete_all.html",
        {"space": space, "form": form, "count": live_count(space)},
    )
    return with_page_policy(request, response)
