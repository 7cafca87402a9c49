"""The API token page: a user's own tokens, made and revoked by that user."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mailarchive.views.common import with_page_policy

from .forms import ApiTokenCreateForm
from .selectors import api_tokens_of
from .services import api_token_create, api_token_revoke

# A new token's secret waits here, in the user's own session, between the
# POST that made it and the page that shows it; showing it removes it.
NEW_SECRET_KEY = "api_token_new"


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    """Renders api/token_list.html: the user's tokens and the form for a new one.

    A valid POST makes a token and redirects; the page after it shows the
    secret once (no cache keeps that page), and never again.
    """
    form = ApiTokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            request.session[NEW_SECRET_KEY] = [created.token.pk, created.secret]
            return redirect("api-tokens:token-list")
    tokens = list(api_tokens_of(request.user))
    new = None
    if request.method == "GET" and NEW_SECRET_KEY in request.session:
        token_id, secret = request.session.pop(NEW_SECRET_KEY)
        token = next((t for t in tokens if t.pk == token_id), None)
        new = {"token": token, "secret": secret} if token else None
    response = render(
        request,
        "api/token_list.html",
        {
            "form": form,
            "created": new,
            "tokens": tokens,
            "api_root": request.build_absolute_uri(reverse("api:root")),
            "docs_url": reverse("api:docs"),
        },
    )
    response["Cache-Control"] = "no-store"
    return with_page_policy(request, response)


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the user's tokens and go back to the list."""
    if api_token_revoke(user=request.user, token_id=token_id):
        messages.success(request, _("The token was revoked."))
    return redirect("api-tokens:token-list")
