"""How a mail account signs in: its credential, and its OAuth2 grant over time.

A password account's credential is its decrypted password. An OAuth2
account's is an access token, kept (encrypted) until shortly before it
expires and then refreshed. A refresh happens with the account row locked,
in one transaction that also stores what the provider answered, so two polls
(or a poll and a connection test) never refresh at once, and a rotated
refresh token is either stored or, if the worker dies first, never half
stored: the previous one stays in place. (Providers keep the previous refresh
token valid at least until the new one is used; Microsoft and Google keep it
longer.)

When the provider no longer honours the grant (revoked, expired, the
mailbox's password changed) the account becomes "Sign-in needed": polls stop
asking the provider until someone signs in again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import providers
from accounts.clients import Credential, OAuth2Token, Password
from accounts.crypto import secret_decrypt, secret_encrypt
from accounts.models import MailAccount
from accounts.providers import (
    AuthorizationRequest,
    GrantRevokedError,
    Provider,
    ProviderError,
    TokenSet,
)
from accounts.sentences import SIGNIN_NEEDED
from spaces.services import audit_record

logger = logging.getLogger(__name__)

# An access token is refreshed when it has less than this left, so that it
# lasts through the session it is fetched for.
ACCESS_TOKEN_MARGIN = timedelta(minutes=5)


class SignInNeededError(GrantRevokedError):
    """The account has no usable grant; a person must sign in again."""


@dataclass(frozen=True)
class ProviderChoice:
    """A sign-in method the site offers, for forms and the site page."""

    key: str
    label: str


def provider_for(account: MailAccount) -> Provider:
    """The configured provider of an OAuth2 account; raises ProviderError."""
    return providers.provider_get(account.auth_method)


def scopes_for(account: MailAccount, provider: Provider) -> tuple[str, ...]:
    """The scopes to ask for: the account's own, else the provider's."""
    own = tuple(dict.fromkeys(account.oauth2_scopes.split()))
    return own or provider.scopes


def mail_account_credential(account: MailAccount) -> Credential:
    """What the client signs in with: the password, or a fresh access token.

    For OAuth2 accounts this may refresh the access token (see the module
    docstring); it changes nothing otherwise. Raises PasswordUnreadableError
    for a secret no key decrypts, SignInNeededError when the account needs a
    person to sign in, ProviderError when the provider cannot be used. Safe
    to re-run.
    """
    if not account.uses_oauth2:
        return Password(secret_decrypt(account.password_encrypted))
    if account.signin_needed:
        raise SignInNeededError("the account is waiting for someone to sign in")
    return OAuth2Token(oauth2_access_token_get(account_id=account.pk))


def _fresh(account: MailAccount) -> bool:
    expires = account.oauth2_access_token_expires_at
    return bool(
        account.oauth2_access_token_encrypted
        and expires is not None
        and expires - timezone.now() > ACCESS_TOKEN_MARGIN
    )


def oauth2_access_token_get(*, account_id: int) -> str:
    """A valid access token of the account, refreshed if it is about to expire.

    Reads the stored token without locking while it is fresh. Otherwise locks
    the row, and whoever gets the lock first refreshes; the others then find
    a fresh token. A rotated refresh token is committed with the new access
    token before this returns. On a revoked or expired grant the account is
    marked "Sign-in needed" (committed) and SignInNeededError raised. Safe to
    re-run.
    """
    account = MailAccount.objects.get(pk=account_id)
    if _fresh(account):
        return secret_decrypt(account.oauth2_access_token_encrypted)
    failure: ProviderError | None = None
    with transaction.atomic():
        account = MailAccount.objects.select_for_update().get(pk=account_id)
        if account.signin_needed:
            raise SignInNeededError("the account is waiting for someone to sign in")
        if _fresh(account):
            return secret_decrypt(account.oauth2_access_token_encrypted)
        if not account.oauth2_refresh_token_encrypted:
            failure = SignInNeededError("the account holds no grant")
        else:
            provider = provider_for(account)
            try:
                tokens = providers.token_refresh(
                    provider,
                    refresh_token=secret_decrypt(
                        account.oauth2_refresh_token_encrypted
                    ),
                    scopes=scopes_for(account, provider),
                )
            except GrantRevokedError as error:
                failure = error
            else:
                MailAccount.objects.filter(pk=account_id).update(
                    oauth2_access_token_encrypted=secret_encrypt(tokens.access_token),
                    oauth2_access_token_expires_at=tokens.expires_at,
                    oauth2_refresh_token_encrypted=secret_encrypt(tokens.refresh_token),
                )
                return tokens.access_token
        _mark_signin_needed(account_id)
    logger.info("mail account %s: the provider refused its grant", account_id)
    raise SignInNeededError(failure.detail) from None


def _mark_signin_needed(account_id: int) -> None:
    MailAccount.objects.filter(pk=account_id).update(
        auth_state=MailAccount.AuthState.SIGNIN_NEEDED,
        oauth2_access_token_encrypted="",
        oauth2_access_token_expires_at=None,
        oauth2_refresh_token_encrypted="",
    )


def oauth2_access_token_forget(*, account_id: int) -> None:
    """Drop the cached access token, so the next sign-in fetches a new one.

    For a token the mail server refused although it had not expired. Keeps
    the grant. Safe to re-run.
    """
    MailAccount.objects.filter(pk=account_id).update(
        oauth2_access_token_encrypted="", oauth2_access_token_expires_at=None
    )


def address_mismatch_error(account_username: str, address: str) -> ValidationError:
    return ValidationError(
        _(
            "You signed in as %(address)s, but this account reads the mailbox "
            "%(username)s. Nothing was stored. Sign in as %(username)s (sign "
            "out of %(address)s at the provider first, or use a private "
            "window), or change the account's user name."
        )
        % {"address": address, "username": account_username}
    )


def grant_check(*, username: str, tokens: TokenSet) -> None:
    """Raise ValidationError when the grant is for another mailbox."""
    if tokens.address and tokens.address.casefold() != username.strip().casefold():
        raise address_mismatch_error(username, tokens.address)


def grant_fields(tokens: TokenSet) -> dict[str, object]:
    """The account fields that hold ``tokens``, encrypted."""
    return {
        "auth_state": MailAccount.AuthState.OK,
        "oauth2_access_token_encrypted": secret_encrypt(tokens.access_token),
        "oauth2_access_token_expires_at": tokens.expires_at,
        "oauth2_refresh_token_encrypted": (
            secret_encrypt(tokens.refresh_token) if tokens.refresh_token else ""
        ),
        "oauth2_signed_in_as": tokens.address,
        "oauth2_signed_in_at": timezone.now(),
    }


def mail_account_signin_start(
    *, account: MailAccount, redirect_uri: str
) -> AuthorizationRequest:
    """Where to send the browser to sign the account in. Changes nothing.

    Raises ProviderError when the provider is not configured or unreachable.
    """
    provider = provider_for(account)
    return providers.authorization_request(
        provider,
        redirect_uri=redirect_uri,
        scopes=scopes_for(account, provider),
        login_hint=account.username,
    )


@transaction.atomic
def mail_account_grant_store(
    *, account: MailAccount, tokens: TokenSet, actor: AbstractBaseUser | None = None
) -> MailAccount:
    """Store a new grant for ``account``: it is signed in and polled again.

    Refuses (ValidationError, nothing stored) a grant for another mailbox
    than the account's user name. Clears the "Sign-in needed" error. Safe to
    re-run with the same tokens.
    """
    grant_check(username=account.username, tokens=tokens)
    if not tokens.refresh_token:
        raise ValidationError(
            _(
                "The provider granted no refresh token, so the archive could "
                "only read the mailbox for an hour. Sign in again and allow "
                "offline access."
            )
        )
    fields = grant_fields(tokens)
    if account.last_error_kind == SIGNIN_NEEDED:
        fields.update(last_error="", last_error_kind="", last_error_detail="")
    MailAccount.objects.filter(pk=account.pk).update(**fields)
    for name, value in fields.items():
        setattr(account, name, value)
    audit_record(
        actor=actor,
        action="mail_account.sign_in",
        space=account.space,
        target=account.name,
        detail={
            "id": account.pk,
            "provider": account.auth_method,
            "signed_in_as": tokens.address,
        },
    )
    return account


def mail_account_signin_finish(
    *,
    account: MailAccount,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    actor: AbstractBaseUser | None = None,
) -> MailAccount:
    """Trade the provider's authorization code for a grant and store it.

    Raises ProviderError when the provider refuses the code, ValidationError
    for a grant of another mailbox (then the new grant is revoked at the
    provider where it can be). Not safe to re-run: a code works once.
    """
    provider = provider_for(account)
    tokens = providers.code_exchange(
        provider, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
    )
    try:
        return mail_account_grant_store(account=account, tokens=tokens, actor=actor)
    except ValidationError:
        providers.token_revoke(
            provider, token=tokens.refresh_token or tokens.access_token
        )
        raise


def provider_choices() -> list[ProviderChoice]:
    """The sign-in methods offered: password, then each configured provider."""
    labels = dict(MailAccount.AuthMethod.choices)
    return [
        ProviderChoice(key=key, label=str(labels[key]))
        for key in [
            MailAccount.AuthMethod.PASSWORD,
            *providers.provider_keys_configured(),
        ]
    ]
