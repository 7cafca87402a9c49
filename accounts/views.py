"""Mail account pages: the space's accounts, their polls, the site's switch."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from spaces.decorators import site_admin_required, space_required
from spaces.models import Level, Space
from spaces.selectors import space_get_for

from . import providers
from .forms import AlertPreferenceForm, FetchSettingsForm, MailAccountForm
from .health import health_of, polling_expected
from .models import MailAccount, PollRun
from .selectors import (
    alert_preference_get,
    fetch_settings_get,
    mail_account_get,
    mail_accounts_of_space,
    mail_accounts_report,
    poll_run_get,
    poll_runs_recent,
)
from .sentences import error_sentence, fetch_disabled_sentence
from .services import (
    fetch_settings_set,
    mail_account_create,
    mail_account_delete,
    mail_account_fetch_request,
    mail_account_set_enabled,
    mail_account_test,
    mail_account_update,
)
from .services.alerts import alert_preference_set
from .services.fetching import FetchDisabledError
from .services.mail_accounts import plain_text_password
from .services.signin import (
    mail_account_signin_finish,
    mail_account_signin_start,
)
from .templatetags.accounts_tags import poll_run_sentence

View = Callable[..., HttpResponse]


def global_space_only(view: View) -> View:
    """Personal spaces hold no mail: answer with the explanation page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, space: Space, **kwargs: Any):
        if not space.is_global:
            return render(request, "accounts/personal_space.html", {"space": space})
        return view(request, *args, space=space, **kwargs)

    return wrapped


# Sign-ins under way, in the session by state; older ones are dropped.
SIGNIN_SESSION_KEY = "accounts.oauth2_signins"
SIGNIN_MAX_AGE = 15 * 60
SIGNIN_MAX_PENDING = 5


def _after_save(request: HttpRequest, account: MailAccount, verb: str) -> None:
    """Test the saved account and tell the admin how it went."""
    if account.uses_oauth2 and account.signin_needed:
        messages.success(request, verb)
        return
    result = mail_account_test(account)
    health = health_of(account, now=timezone.now(), expected=polling_expected())
    if result.ok and health.bad:
        messages.warning(
            request, f"{verb} {result.sentence(account)} {health.sentence}"
        )
    elif result.ok:
        messages.success(request, f"{verb} {result.sentence(account)}")
    else:
        messages.warning(
            request,
            _("%(saved)s But the connection test failed: %(reason)s")
            % {"saved": verb, "reason": result.sentence(account)},
        )
    if plain_text_password(account):
        messages.warning(
            request,
            _(
                "%(name)s uses %(protocol)s without STARTTLS: its password crosses "
                "the network in clear. Prefer STARTTLS, POPS or IMAPS."
            )
            % {"name": account.name, "protocol": account.get_protocol_display()},
        )


@require_GET
@space_required(Level.ADMIN)
@global_space_only
def account_list(request: HttpRequest, space: Space) -> HttpResponse:
    """Renders accounts/account_list.html: every account with its health."""
    return render(
        request,
        "accounts/account_list.html",
        {
            "space": space,
            "accounts": mail_accounts_of_space(space),
            "fetch_disabled": settings.MAILARCHIVE_FETCH_DISABLED,
            "fetch_disabled_sentence": fetch_disabled_sentence(),
            "automatic_polling": fetch_settings_get().automatic_polling,
        },
    )


@space_required(Level.ADMIN)
@global_space_only
def account_create(request: HttpRequest, space: Space) -> HttpResponse:
    """Renders accounts/account_form.html; saving tests the connection."""
    form = MailAccountForm(
        request.POST if request.method == "POST" else None,
        instance=MailAccount(space=space),
    )
    if request.method == "POST" and form.is_valid():
        try:
            account = mail_account_create(
                space=space,
                password=form.cleaned_data["password"],
                actor=request.user,
                **form.changes(),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            _after_save(request, account, _("%(name)s added.") % {"name": account.name})
            if account.signin_needed:
                return redirect(
                    "accounts:account-signin", key=space.key, account_id=account.pk
                )
            return redirect("accounts:account-list", key=space.key)
    return render(
        request,
        "accounts/account_form.html",
        {"space": space, "form": form, "account": None},
    )


@space_required(Level.ADMIN)
@global_space_only
def account_edit(request: HttpRequest, space: Space, account_id: int) -> HttpResponse:
    """Renders accounts/account_form.html; a blank password keeps the old one."""
    account = mail_account_get(space, account_id)
    form = MailAccountForm(
        request.POST if request.method == "POST" else None,
        instance=account,
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        try:
            account = mail_account_update(
                account=mail_account_get(space, account_id),
                changes=form.changes(),
                password=form.cleaned_data.get("password") or "",
                actor=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            _after_save(request, account, _("%(name)s saved.") % {"name": account.name})
            if account.signin_needed:
                return redirect(
                    "accounts:account-signin", key=space.key, account_id=account.pk
                )
            return redirect("accounts:account-list", key=space.key)
    return render(
        request,
        "accounts/account_form.html",
        {
            "space": space,
            "form": form,
            "account": account,
            "recent_runs": poll_runs_recent(account),
        },
    )


def _redirect_uri(request: HttpRequest) -> str:
    """The one address providers send the browser back to (to be registered)."""
    return request.build_absolute_uri(reverse("accounts:oauth2-callback"))


@space_required(Level.ADMIN)
@global_space_only
def account_signin(request: HttpRequest, space: Space, account_id: int) -> HttpResponse:
    """Send the browser to the account's provider to sign in (PKCE and state).

    Renders accounts/signin_redirect.html, which goes on to the provider; the
    provider sends the browser back to ``oauth2_callback``.
    """
    account = mail_account_get(space, account_id)
    if not account.uses_oauth2:
        return redirect("accounts:account-edit", key=space.key, account_id=account.pk)
    try:
        started = mail_account_signin_start(
            account=account, redirect_uri=_redirect_uri(request)
        )
    except providers.ProviderError as error:
        messages.error(
            request,
            _("%(name)s: the sign-in could not start. %(reason)s")
            % {
                "name": account.name,
                "reason": error_sentence(error.kind, detail=error.detail),
            },
        )
        return redirect("accounts:account-edit", key=space.key, account_id=account.pk)
    now = timezone.now().timestamp()
    pending = {
        state: entry
        for state, entry in request.session.get(SIGNIN_SESSION_KEY, {}).items()
        if now - entry["at"] < SIGNIN_MAX_AGE
    }
    pending[started.state] = {
        "account_id": account.pk,
        "space": space.key,
        # The verifier never leaves the server; the session is server-side.
        "code_verifier": started.code_verifier,
        "at": now,
    }
    newest = sorted(pending.items(), key=lambda item: item[1]["at"])
    request.session[SIGNIN_SESSION_KEY] = dict(newest[-SIGNIN_MAX_PENDING:])
    # Not a redirect: the page policy lets forms lead only to this site, and
    # this step follows the form that saved the account or asked to sign in.
    return render(
        request,
        "accounts/signin_redirect.html",
        {
            "space": space,
            "account": account,
            "url": started.url,
            "provider": account.get_auth_method_display(),
        },
    )


@require_GET
def oauth2_callback(request: HttpRequest) -> HttpResponse:
    """Where providers send the browser back; renders accounts/signin_failed.html
    for a sign-in this session did not start, else returns to the account."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    pending = request.session.get(SIGNIN_SESSION_KEY, {})
    entry = pending.pop(request.GET.get("state", ""), None)
    request.session[SIGNIN_SESSION_KEY] = pending
    if entry is None or timezone.now().timestamp() - entry["at"] > SIGNIN_MAX_AGE:
        return render(request, "accounts/signin_failed.html", status=400)
    space = space_get_for(request.user, entry["space"], Level.ADMIN)
    account = mail_account_get(space, entry["account_id"])
    back = redirect("accounts:account-edit", key=space.key, account_id=account.pk)
    error = request.GET.get("error")
    if error or not request.GET.get("code"):
        messages.error(request, _signin_refused_sentence(account, request))
        return back
    try:
        account = mail_account_signin_finish(
            account=account,
            code=request.GET["code"],
            code_verifier=entry["code_verifier"],
            redirect_uri=_redirect_uri(request),
            actor=request.user,
        )
    except providers.ProviderError as error:
        messages.error(
            request,
            _("%(name)s was not signed in: %(reason)s")
            % {
                "name": account.name,
                "reason": error_sentence(error.kind, detail=error.detail),
            },
        )
        return back
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return back
    messages.success(
        request,
        _("%(name)s is signed in as %(address)s.")
        % {
            "name": account.name,
            "address": account.oauth2_signed_in_as or account.username,
        },
    )
    _after_save(request, account, "")
    return back


def _signin_refused_sentence(account: MailAccount, request: HttpRequest) -> str:
    error = request.GET.get("error", "")
    description = request.GET.get("error_description", "")
    said = f"{error}: {description}" if description else error
    if error in ("consent_required", "access_denied", "unauthorized_client"):
        return _(
            "%(name)s was not signed in: the provider did not grant access "
            "(%(said)s). If the provider asks for an administrator's approval, "
            "an administrator of the organisation must consent to the app "
            "first (see the README), then sign in again."
        ) % {"name": account.name, "said": said}
    return _("%(name)s was not signed in: the provider answered %(said)s.") % {
        "name": account.name,
        "said": said or _("nothing"),
    }


@space_required(Level.ADMIN)
@global_space_only
def account_delete(request: HttpRequest, space: Space, account_id: int) -> HttpResponse:
    """Renders accounts/account_confirm_delete.html; POST removes the account."""
    account = mail_account_get(space, account_id)
    if request.method == "POST":
        name = account.name
        mail_account_delete(account=account, actor=request.user)
        messages.success(
            request,
            _("%(name)s removed. The mail it archived stays in the space.")
            % {"name": name},
        )
        return redirect("accounts:account-list", key=space.key)
    return render(
        request,
        "accounts/account_confirm_delete.html",
        {"space": space, "account": account},
    )


@require_POST
@space_required(Level.ADMIN)
@global_space_only
def account_enable(request: HttpRequest, space: Space, account_id: int) -> HttpResponse:
    """Switch scheduled polling of one account on (enabled=1) or off."""
    account = mail_account_get(space, account_id)
    enabled = request.POST.get("enabled") == "1"
    mail_account_set_enabled(account=account, enabled=enabled, actor=request.user)
    if enabled:
        messages.success(request, _("%(name)s enabled.") % {"name": account.name})
    else:
        messages.success(
            request,
            _("%(name)s disabled: it is no longer polled.") % {"name": account.name},
        )
    return redirect("accounts:account-list", key=space.key)


@require_POST
@space_required(Level.ADMIN)
@global_space_only
def account_test(request: HttpRequest, space: Space, account_id: int) -> HttpResponse:
    """Test the connection now; the result shows on the accounts page."""
    account = mail_account_get(space, account_id)
    result = mail_account_test(account)
    text = f"{account.name}: {result.sentence(account)}"
    health = health_of(account, now=timezone.now(), expected=polling_expected())
    if not result.ok:
        messages.error(request, text)
    elif health.bad:
        # The connection works, but the account's polls have not said so yet.
        messages.warning(request, f"{text} {health.sentence}")
    else:
        messages.success(request, text)
    return redirect("accounts:account-list", key=space.key)


@require_POST
@space_required(Level.ADMIN)
@global_space_only
def account_fetch(request: HttpRequest, space: Space, account_id: int) -> HttpResponse:
    """Queue "Fetch new mail" and show the poll's progress page."""
    account = mail_account_get(space, account_id)
    try:
        run = mail_account_fetch_request(account=account, actor=request.user)
    except FetchDisabledError as error:
        messages.error(request, str(error))
        return redirect("accounts:account-list", key=space.key)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("accounts:account-list", key=space.key)
    return redirect("accounts:poll-run", key=space.key, poll_run_id=run.pk)


@require_GET
@space_required(Level.ADMIN)
@global_space_only
def poll_run_detail(
    request: HttpRequest, space: Space, poll_run_id: int
) -> HttpResponse:
    """Renders accounts/poll_run.html: queued, running, then the result."""
    run = poll_run_get(space, poll_run_id)
    return render(
        request,
        "accounts/poll_run.html",
        {
            "space": space,
            "run": run,
            "done": run.status not in (PollRun.Status.QUEUED, PollRun.Status.RUNNING),
        },
    )


@require_GET
@space_required(Level.ADMIN)
@global_space_only
def poll_run_status(
    request: HttpRequest, space: Space, poll_run_id: int
) -> HttpResponse:
    """The poll's state as JSON, for the progress page's script."""
    run = poll_run_get(space, poll_run_id)
    return JsonResponse(
        {
            "status": run.status,
            "status_label": run.get_status_display(),
            "done": run.status not in (PollRun.Status.QUEUED, PollRun.Status.RUNNING),
            "sentence": poll_run_sentence(run),
            "fetched": run.fetched,
            "duplicates": run.duplicates,
            "left_on_server": run.left_on_server,
        }
    )


@site_admin_required
def fetch_settings_view(request: HttpRequest) -> HttpResponse:
    """Renders accounts/fetch_settings.html: the automatic polling switch."""
    row = fetch_settings_get()
    form = FetchSettingsForm(
        request.POST if request.method == "POST" else None,
        initial={"automatic_polling": row.automatic_polling},
    )
    if request.method == "POST" and form.is_valid():
        row = fetch_settings_set(
            automatic_polling=form.cleaned_data["automatic_polling"],
            actor=request.user,
        )
        if row.automatic_polling:
            messages.success(request, _("Automatic polling is on."))
        else:
            messages.success(
                request,
                _("Automatic polling is off: no mail account is polled on schedule."),
            )
        return redirect("accounts:fetch-settings")
    return render(
        request,
        "accounts/fetch_settings.html",
        {
            "form": form,
            "row": row,
            "fetch_disabled": settings.MAILARCHIVE_FETCH_DISABLED,
            "fetch_disabled_sentence": fetch_disabled_sentence(),
            "poll_interval_minutes": settings.MAILARCHIVE_POLL_INTERVAL // 60,
        },
    )


@require_GET
@site_admin_required
def report(request: HttpRequest) -> HttpResponse:
    """Renders accounts/report.html: spaces with accounts, failures first."""
    accounts = mail_accounts_report()
    return render(
        request,
        "accounts/report.html",
        {
            "accounts": accounts,
            "space_count": len({a.space_id for a in accounts}),
            "failing_count": sum(1 for a in accounts if a.health.bad),
            "fetch_disabled": settings.MAILARCHIVE_FETCH_DISABLED,
            "fetch_disabled_sentence": fetch_disabled_sentence(),
            "automatic_polling": fetch_settings_get().automatic_polling,
        },
    )


@require_GET
@site_admin_required
def providers_view(request: HttpRequest) -> HttpResponse:
    """Renders accounts/providers.html: the sign-in providers and what to
    register with them."""
    rows = []
    for key, label in MailAccount.AuthMethod.choices:
        if key == MailAccount.AuthMethod.PASSWORD:
            continue
        row: dict[str, Any] = {"key": key, "label": label, "configured": False}
        if key in providers.provider_keys_configured():
            row["configured"] = True
            try:
                provider = providers.provider_get(key)
            except providers.ProviderError as error:
                row["problem"] = error_sentence(error.kind, detail=error.detail)
            else:
                row["provider"] = provider
                row["scopes"] = " ".join(provider.scopes)
        rows.append(row)
    return render(
        request,
        "accounts/providers.html",
        {
            "rows": rows,
            "redirect_uri": _redirect_uri(request),
            "insecure": not request.is_secure()
            and not providers.is_loopback(_redirect_uri(request)),
        },
    )


@login_required
def alert_preferences(request: HttpRequest) -> HttpResponse:
    """Renders accounts/alert_preferences.html: whether the user gets alert
    e-mails about the mail accounts they administer."""
    form = AlertPreferenceForm(
        request.POST if request.method == "POST" else None,
        initial={"email_alerts": alert_preference_get(request.user)},
    )
    if request.method == "POST" and form.is_valid():
        wanted = form.cleaned_data["email_alerts"]
        alert_preference_set(user=request.user, email_alerts=wanted)
        if wanted:
            messages.success(request, _("You get alert e-mails again."))
        else:
            messages.success(request, _("You no longer get alert e-mails."))
        return redirect("accounts:alert-preferences")
    return render(
        request,
        "accounts/alert_preferences.html",
        {
            "form": form,
            "email": request.user.email,
            "failures": settings.MAILARCHIVE_ALERT_FAILURES,
            "stale_hours": settings.MAILARCHIVE_ALERT_STALE_HOURS,
        },
    )
