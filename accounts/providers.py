"""OAuth2 providers that mail accounts sign in with, and the flows against them.

Microsoft 365 / Outlook.com, Google Workspace / Gmail and one other provider
(discovered from its issuer) are offered when the operator registered the
archive with them (``MAILARCHIVE_OAUTH2_*`` settings). The flows run through
Authlib's OAuth2 client:

* the authorization-code flow with PKCE (S256) and ``state``, in the browser;
* the device authorization grant (RFC 8628), on the command line;
* refreshing the access token (a provider may rotate the refresh token);
* revoking a grant (RFC 7009) where the provider offers it.

Which mailbox signed in is read from the ID token that came with the tokens
(straight from the token endpoint over verified TLS, which OpenID Connect
accepts in place of checking its signature), else from the userinfo endpoint.

No Django models here, and no secret in any error or log line: errors carry
the provider's error code and description only.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.conf import settings
from requests.adapters import HTTPAdapter

logger = logging.getLogger(__name__)

HTTP_TIMEOUT = 20.0
DISCOVERY_SECONDS = 3600.0
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Claims of an ID token (or userinfo answer) naming the mailbox, best first.
ADDRESS_CLAIMS = ("email", "preferred_username", "upn")

MICROSOFT = "microsoft"
GOOGLE = "google"
CUSTOM = "custom"


class ProviderError(Exception):
    """The provider could not be used. ``kind`` says what to do about it.

    ``str()`` holds the provider's own words (its error code and
    description), never a token or secret.
    """

    kind = "provider_refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class GrantRevokedError(ProviderError):
    """The provider no longer honours the grant: someone must sign in again."""

    kind = "signin_needed"


class ProviderUnreachableError(ProviderError):
    """The provider did not answer, or answered nonsense; may pass."""

    kind = "provider_unreachable"


class ProviderNotConfiguredError(ProviderError):
    """The site has no registration with this provider (any more)."""

    kind = "provider_not_configured"


class AuthorizationPendingError(ProviderError):
    """Device flow: the person has not approved the code yet."""


class SlowDownError(AuthorizationPendingError):
    """Device flow: poll less often (RFC 8628 §3.5)."""


@dataclass(frozen=True)
class MailServer:
    """Where a provider's mailboxes are reached, to prefill the account form."""

    protocol: str
    host: str
    port: int


@dataclass(frozen=True)
class Provider:
    """One OAuth2 provider the site is registered with."""

    key: str
    label: str
    client_id: str
    client_secret: str = field(repr=False)
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    device_authorization_endpoint: str = ""
    revocation_endpoint: str = ""
    userinfo_endpoint: str = ""
    scopes: tuple[str, ...] = ()
    authorize_params: tuple[tuple[str, str], ...] = ()
    mail_servers: tuple[MailServer, ...] = ()
    # Not every provider grants every scope in the device flow; said here so
    # the command can tell an operator before they try.
    device_note: str = ""


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint granted."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    address: str = ""


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback must match."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class DeviceAuthorization:
    """A device code waiting to be approved (RFC 8628 §3.2)."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_at: float
    interval: float


def _scopes(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text.split()))


def _microsoft() -> Provider | None:
    client_id = settings.MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_ID
    if not client_id:
        return None
    tenant = settings.MAILARCHIVE_OAUTH2_MICROSOFT_TENANT or "common"
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return Provider(
        key=MICROSOFT,
        label="Microsoft 365 / Outlook.com",
        client_id=client_id,
        client_secret=settings.MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_SECRET,
        issuer=f"https://login.microsoftonline.com/{tenant}/v2.0",
        authorization_endpoint=f"{base}/authorize",
        token_endpoint=f"{base}/token",
        device_authorization_endpoint=f"{base}/devicecode",
        scopes=(
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/POP.AccessAsUser.All",
            "offline_access",
            "openid",
            "email",
        ),
        authorize_params=(("prompt", "select_account"),),
        mail_servers=(
            MailServer("imaps", "outlook.office365.com", 993),
            MailServer("pops", "outlook.office365.com", 995),
        ),
    )


def _google() -> Provider | None:
    client_id = settings.MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_ID
    if not client_id:
        return None
    return Provider(
        key=GOOGLE,
        label="Google Workspace / Gmail",
        client_id=client_id,
        client_secret=settings.MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_SECRET,
        issuer="https://accounts.google.com",
        authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
        token_endpoint="https://oauth2.googleapis.com/token",
        device_authorization_endpoint="https://oauth2.googleapis.com/device/code",
        revocation_endpoint="https://oauth2.googleapis.com/revoke",
        userinfo_endpoint="https://openidconnect.googleapis.com/v1/userinfo",
        scopes=("https://mail.google.com/", "openid", "email"),
        # Without these Google grants a refresh token only on the first consent.
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        mail_servers=(
            MailServer("imaps", "imap.gmail.com", 993),
            MailServer("pops", "pop.gmail.com", 995),
        ),
        device_note=(
            "Google does not grant the mail scope (https://mail.google.com/) in "
            "the device flow; sign Google accounts in from the account page."
        ),
    )


_discovered: dict[str, tuple[float, dict[str, Any]]] = {}
_discovery_lock = threading.Lock()


def _custom() -> Provider | None:
    issuer = settings.MAILARCHIVE_OAUTH2_CUSTOM_ISSUER.rstrip("/")
    client_id = settings.MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_ID
    if not issuer or not client_id:
        return None
    metadata = discover(issuer)
    return Provider(
        key=CUSTOM,
        label=str(metadata.get("service_name") or urlsplit(issuer).hostname),
        client_id=client_id,
        client_secret=settings.MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_SECRET,
        issuer=issuer,
        authorization_endpoint=_endpoint(metadata, "authorization_endpoint"),
        token_endpoint=_endpoint(metadata, "token_endpoint"),
        device_authorization_endpoint=_endpoint(
            metadata, "device_authorization_endpoint", required=False
        ),
        revocation_endpoint=_endpoint(metadata, "revocation_endpoint", required=False),
        userinfo_endpoint=_endpoint(metadata, "userinfo_endpoint", required=False),
        scopes=("openid", "email", "offline_access"),
    )


_BUILDERS = {MICROSOFT: _microsoft, GOOGLE: _google, CUSTOM: _custom}


def provider_keys_configured() -> list[str]:
    """The providers the site is registered with, without any network call."""
    configured = []
    if settings.MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_ID:
        configured.append(MICROSOFT)
    if settings.MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_ID:
        configured.append(GOOGLE)
    if (
        settings.MAILARCHIVE_OAUTH2_CUSTOM_ISSUER
        and settings.MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_ID
    ):
        configured.append(CUSTOM)
    return configured


def provider_get(key: str) -> Provider:
    """The provider ``key`` as configured; raises ``ProviderError``.

    ``ProviderNotConfiguredError`` when the site has no registration for it;
    for the custom provider, ``ProviderUnreachableError`` when its discovery
    document cannot be read.
    """
    builder = _BUILDERS.get(key)
    provider = builder() if builder is not None else None
    if provider is None:
        raise ProviderNotConfiguredError(
            f"the site is not registered with the OAuth2 provider {key!r}"
        )
    return provider


# -- HTTP ----------------------------------------------------------------------


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str) -> str:
    """``url`` if it is HTTPS (plain HTTP only on this machine's loopback)."""
    scheme = urlsplit(url).scheme
    if scheme == "https" or (scheme == "http" and is_loopback(url)):
        return url
    raise ProviderError(f"{url} is not an HTTPS address")


def _endpoint(metadata: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = metadata.get(name)
    if not value:
        if required:
            raise ProviderError(f"the provider's metadata names no {name}")
        return ""
    return _check_url(str(value))


class _TLSAdapter(HTTPAdapter):
    """Verifies against the system store plus the site's ``SSL_CERT_FILE``."""

    def __init__(self, ca_file: str) -> None:
        self._context = ssl.create_default_context()
        self._context.load_verify_locations(cafile=ca_file)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def _mount_tls(session: requests.Session) -> None:
    if settings.SSL_CERT_FILE:
        session.mount("https://", _TLSAdapter(settings.SSL_CERT_FILE))


def _session(provider: Provider, **kwargs: Any) -> OAuth2Session:
    session = OAuth2Session(
        client_id=provider.client_id,
        client_secret=provider.client_secret or None,
        token_endpoint_auth_method=(
            "client_secret_post" if provider.client_secret else "none"
        ),
        **kwargs,
    )
    _mount_tls(session)
    return session


def discover(issuer: str) -> dict[str, Any]:
    """The provider metadata of ``issuer``, cached for an hour.

    Tries OpenID Connect discovery (``<issuer>/.well-known/openid-configuration``),
    then RFC 8414 (``/.well-known/oauth-authorization-server``). Raises
    ``ProviderUnreachableError`` when neither answers with JSON.
    """
    issuer = _check_url(issuer.rstrip("/"))
    with _discovery_lock:
        cached = _discovered.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < DISCOVERY_SECONDS:
            return cached[1]
    parts = urlsplit(issuer)
    candidates = [
        f"{issuer}/.well-known/openid-configuration",
        f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server"
        f"{parts.path}",
    ]
    problems = []
    with requests.Session() as session:
        _mount_tls(session)
        for url in candidates:
            try:
                response = session.get(url, timeout=HTTP_TIMEOUT)
                response.raise_for_status()
                metadata = response.json()
            except (requests.RequestException, ValueError) as error:
                problems.append(f"{url}: {type(error).__name__}")
                continue
            if isinstance(metadata, dict):
                with _discovery_lock:
                    _discovered[issuer] = (time.monotonic(), metadata)
                return metadata
    raise ProviderUnreachableError(
        "the provider's metadata could not be read (" + "; ".join(problems) + ")"
    )


def discovery_forget() -> None:
    """Drop cached provider metadata (after the configuration changed)."""
    with _discovery_lock:
        _discovered.clear()


def _oauth_error(error: OAuthError) -> ProviderError:
    code = error.error or "error"
    words = f"{code}: {error.description}" if error.description else code
    if code == "invalid_grant":
        return GrantRevokedError(words)
    if code in ("temporarily_unavailable", "server_error"):
        return ProviderUnreachableError(words)
    return ProviderError(words)


def _call(action: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run an Authlib call, its failures as ``ProviderError``."""
    try:
        return action(*args, timeout=HTTP_TIMEOUT, **kwargs)
    except OAuthError as error:
        raise _oauth_error(error) from None
    except requests.RequestException as error:
        raise ProviderUnreachableError(
            f"the provider did not answer ({type(error).__name__})"
        ) from None
    except ValueError:
        # An answer that is not JSON: an error page, a proxy in between.
        raise ProviderUnreachableError(
            "the provider answered with something other than JSON"
        ) from None


def _claims(id_token: str) -> dict[str, Any]:
    try:
        payload = id_token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _address(claims: dict[str, Any]) -> str:
    for name in ADDRESS_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _token_set(
    provider: Provider, token: dict[str, Any], *, refresh_token: str = ""
) -> TokenSet:
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderError("the provider's answer holds no access token")
    expires_in = token.get("expires_in")
    try:
        lifetime = float(expires_in) if expires_in is not None else 3600.0
    except (TypeError, ValueError):
        lifetime = 3600.0
    address = _address(_claims(str(token.get("id_token") or "")))
    if not address and provider.userinfo_endpoint:
        address = _userinfo_address(provider, access)
    return TokenSet(
        access_token=access,
        # A provider that does not rotate answers without a refresh token.
        refresh_token=str(token.get("refresh_token") or refresh_token),
        expires_at=datetime.now(UTC) + timedelta(seconds=max(lifetime, 0)),
        address=address,
    )


def _userinfo_address(provider: Provider, access_token: str) -> str:
    with requests.Session() as session:
        _mount_tls(session)
        try:
            response = session.get(
                provider.userinfo_endpoint,
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=HTTP_TIMEOUT,
            )
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as error:
            logger.warning("userinfo of %s failed: %s", provider.key, type(error))
            return ""
    return _address(data) if isinstance(data, dict) else ""


# -- the flows -----------------------------------------------------------------


def authorization_request(
    provider: Provider,
    *,
    redirect_uri: str,
    scopes: tuple[str, ...],
    login_hint: str = "",
) -> AuthorizationRequest:
    """Where to send the browser to sign in (PKCE S256 and a fresh state)."""
    verifier = generate_token(64)
    params = dict(provider.authorize_params)
    if login_hint:
        params["login_hint"] = login_hint
    session = _session(provider, scope=" ".join(scopes), redirect_uri=redirect_uri)
    url, state = session.create_authorization_url(
        provider.authorization_endpoint,
        state=secrets.token_urlsafe(32),
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        **params,
    )
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier)


def code_exchange(
    provider: Provider, *, code: str, code_verifier: str, redirect_uri: str
) -> TokenSet:
    """Trade an authorization code for tokens. Not safe to re-run (codes are
    single-use)."""
    session = _session(provider, redirect_uri=redirect_uri)
    token = _call(
        session.fetch_token,
        provider.token_endpoint,
        grant_type="authorization_code",
        code=code,
        code_verifier=code_verifier,
    )
    return _token_set(provider, token)


def token_refresh(
    provider: Provider, *, refresh_token: str, scopes: tuple[str, ...]
) -> TokenSet:
    """A new access token (and, when the provider rotates, refresh token).

    ``GrantRevokedError`` when the provider no longer honours the grant. The
    caller must store a rotated refresh token before anything else happens:
    the provider may have retired the old one.
    """
    session = _session(provider, scope=" ".join(scopes))
    token = _call(
        session.refresh_token, provider.token_endpoint, refresh_token=refresh_token
    )
    return _token_set(provider, token, refresh_token=refresh_token)


def token_revoke(provider: Provider, *, token: str) -> bool:
    """Ask the provider to revoke the grant; False where it cannot be asked.

    Best effort: a provider without a revocation endpoint (Microsoft) keeps
    the grant until the person removes the app from their account.
    """
    if not provider.revocation_endpoint:
        return False
    session = _session(provider)
    try:
        response = session.revoke_token(
            provider.revocation_endpoint,
            token=token,
            token_type_hint="refresh_token",
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException:
        return False
    return response.ok


def device_authorization_start(
    provider: Provider, *, scopes: tuple[str, ...]
) -> DeviceAuthorization:
    """Ask for a device code and the address where a person approves it."""
    if not provider.device_authorization_endpoint:
        raise ProviderError(f"{provider.label} offers no device authorization")
    session = _session(provider)
    data = {"client_id": provider.client_id, "scope": " ".join(scopes)}
    if provider.client_secret:
        data["client_secret"] = provider.client_secret
    try:
        response = session.post(
            provider.device_authorization_endpoint,
            data=data,
            timeout=HTTP_TIMEOUT,
            withhold_token=True,
        )
        answer = response.json()
    except requests.RequestException as error:
        raise ProviderUnreachableError(
            f"the provider did not answer ({type(error).__name__})"
        ) from None
    except ValueError:
        raise ProviderUnreachableError(
            "the provider answered with something other than JSON"
        ) from None
    if not isinstance(answer, dict) or "error" in answer or not response.ok:
        answer = answer if isinstance(answer, dict) else {}
        raise _oauth_error(
            OAuthError(
                error=str(answer.get("error") or response.status_code),
                description=answer.get("error_description"),
            )
        )
    # Google says verification_url, the RFC verification_uri.
    uri = str(answer.get("verification_uri") or answer.get("verification_url") or "")
    return DeviceAuthorization(
        device_code=str(answer["device_code"]),
        user_code=str(answer["user_code"]),
        verification_uri=uri,
        verification_uri_complete=str(answer.get("verification_uri_complete") or ""),
        expires_at=time.monotonic() + float(answer.get("expires_in") or 600),
        interval=float(answer.get("interval") or 5),
    )


def device_authorization_poll(
    provider: Provider, device: DeviceAuthorization
) -> TokenSet:
    """Ask once whether the device code was approved.

    Raises ``AuthorizationPendingError`` (``SlowDownError``) while it was not,
    ``ProviderError`` when it was refused or expired.
    """
    session = _session(provider)
    try:
        token = _call(
            session.fetch_token,
            provider.token_endpoint,
            grant_type=DEVICE_CODE_GRANT,
            device_code=device.device_code,
        )
    except ProviderError as error:
        code = str(error).split(":", 1)[0]
        if code == "authorization_pending":
            raise AuthorizationPendingError(str(error)) from None
        if code == "slow_down":
            raise SlowDownError(str(error)) from None
        raise
    return _token_set(provider, token)
