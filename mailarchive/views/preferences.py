"""The reader's own settings: the time zone of dates, and the feed token."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from spaces.selectors import spaces_visible_to

from ..forms import MailViewForm, TimeZoneForm
from ..middleware import TIME_ZONE_COOKIE
from ..models import FeedToken, ReadingPreference
from ..services import (
    feed_token_regenerate,
    feed_token_revoke,
    reading_preference_set,
)
from .common import with_page_policy

TIME_ZONE_COOKIE_AGE = 365 * 24 * 3600
MAIL_VIEW_SESSION_KEY = "mailarchive.mail_view"


def _safe_next(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def time_zone(request: HttpRequest) -> HttpResponse:
    """Choose the time zone dates are shown in (a cookie; works logged out too).

    Renders time_zone.html; a valid POST sets the cookie and goes back.
    """
    if request.method == "POST":
        form = TimeZoneForm(request.POST)
        if form.is_valid():
            response = redirect(_safe_next(request, form.cleaned_data["next"]))
            response.set_cookie(
                TIME_ZONE_COOKIE,
                form.cleaned_data["time_zone"],
                max_age=TIME_ZONE_COOKIE_AGE,
                samesite="Lax",
                secure=request.is_secure(),
                httponly=True,
            )
            return response
    else:
        form = TimeZoneForm(
            initial={
                "time_zone": timezone.get_current_timezone_name(),
                "next": request.GET.get("next", ""),
            }
        )
    response = render(request, "mailarchive/time_zone.html", {"form": form})
    return with_page_policy(request, response)


@login_required
def feed_token(request: HttpRequest) -> HttpResponse:
    """Make, replace or revoke the token behind the user's feed URLs.

    Renders feed_token.html. Only the token's digest is stored, so its feed
    URLs are shown once: in the answer to the POST that made it, which no
    cache keeps.
    """
    new_token = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            feed_token_revoke(user=request.user)
            flash.success(request, _("Your feed token was revoked."))
            return redirect("mailarchive:feed-token")
        new_token = feed_token_regenerate(user=request.user).token
        flash.success(request, _("You have a new feed token."))
    record = FeedToken.objects.filter(user=request.user).first()
    response = render(
        request,
        "mailarchive/feed_token.html",
        {
            "record": record,
            "new_token": new_token,
            "spaces": spaces_visible_to(request.user).only("key", "name"),
        },
    )
    response["Cache-Control"] = "no-store"
    return with_page_policy(request, response)


@require_POST
def mail_view(request: HttpRequest) -> HttpResponse:
    """Choose whether mail lists show messages or conversations, then go back.

    Stored for a user (every browser they use), in the session otherwise.
    """
    form = MailViewForm(request.POST)
    if not form.is_valid():
        return redirect(_safe_next(request, request.POST.get("next", "")))
    chosen = ReadingPreference.MailView(form.cleaned_data["view"])
    if request.user.is_authenticated:
        reading_preference_set(user=request.user, mail_view=chosen)
    else:
        request.session[MAIL_VIEW_SESSION_KEY] = chosen.value
    return redirect(_safe_next(request, form.cleaned_data["next"]))
