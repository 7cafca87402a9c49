"""What happened to a mail account, in sentences an admin can act on.

Errors are recorded as a short kind plus the server's own words (the detail);
the sentence is built when it is shown, so it reads in the viewer's language.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.clients.base import counterpart
from accounts.clients.protocols import protocol_get

PASSWORD_UNREADABLE = "password_unreadable"
DATABASE = "database"
# The archive's own storage (disk full, permission denied, an object store
# that failed) could not keep what was fetched.
STORAGE = "storage"
LEASE_LOST = "lease_lost"
INTERNAL = "internal"
FETCH_DISABLED = "fetch_disabled"
NOT_GLOBAL = "not_global"
BUSY = "busy"
DISABLED = "disabled"
AUTOMATIC_OFF = "automatic_off"
# OAuth2: the grant is gone (revoked, expired) and a person must sign in again.
SIGNIN_NEEDED = "signin_needed"
PROVIDER_UNREACHABLE = "provider_unreachable"
PROVIDER_REFUSED = "provider_refused"
PROVIDER_NOT_CONFIGURED = "provider_not_configured"

# Kinds worth retrying soon: the network or the database may be back.
TRANSIENT_KINDS = frozenset(
    {
        "timeout",
        "connection_refused",
        "connection_failed",
        "unknown_host",
        DATABASE,
        PROVIDER_UNREACHABLE,
    }
)


def fetch_disabled_sentence() -> str:
    return _(
        "Fetching mail is switched off on this site (MAILARCHIVE_FETCH_DISABLED): "
        "no mail account is polled, neither on schedule nor on request."
    )


def error_sentence(
    kind: str,
    *,
    host: str = "",
    port: int | None = None,
    folder: str = "",
    protocol: str = "",
    detail: str = "",
) -> str:
    """The admin-facing sentence for an error ``kind`` on an account.

    ``protocol`` is the account's protocol name (``imap``, ``pops``…).
    ``detail`` is what the server or the protocol client said (for a
    certificate: its subject, issuer and names); it follows the sentence, and
    stands alone for kinds this module does not know.
    """
    params = {"host": host, "port": port or "", "folder": folder}
    params.update(_protocol_params(protocol))
    sentences = {
        "unknown_host": _(
            "The mail server name %(host)s could not be found. Check its spelling."
        ),
        "connection_refused": _(
            "%(host)s refused the connection on port %(port)s. Check the port and "
            "the protocol, and that the mail server is running."
        ),
        "connection_failed": _(
            "The connection to %(host)s on port %(port)s failed. Check the host "
            "name and port, and the network in between."
        ),
        "timeout": _(
            "%(host)s did not answer in time on port %(port)s. Check the host name "
            "and port, and that no firewall blocks the connection."
        ),
        "certificate_untrusted": _(
            "The certificate of %(host)s is not trusted. Ask the mail server's "
            "administrator for a certificate from a recognised authority, or have "
            "the site administrator add its authority to SSL_CERT_FILE."
        ),
        "hostname_mismatch": _(
            "The mail server's certificate is not issued for %(host)s. Enter the "
            "host name the certificate names."
        ),
        "login_rejected": _(
            "The mail server rejected the user name or password. Check both, and "
            "that the mailbox allows POP or IMAP access."
        ),
        "folder_missing": _(
            "The folder %(folder)s does not exist in this mailbox. Check the "
            "folder name (it is case-sensitive)."
        ),
        "blocked_destination": _(
            "This site does not connect to %(host)s on port %(port)s. If it really "
            "is your mail server, the site administrator can allow it in "
            "MAILARCHIVE_ALLOWED_MAIL_HOSTS."
        ),
        "tls_unavailable": _(
            "%(host)s does not offer STARTTLS. Choose POPS or IMAPS, or turn "
            "STARTTLS off."
        ),
        "port_speaks_tls": _(
            "Port %(port)s of %(host)s speaks %(other)s, not %(protocol)s: it "
            "expects TLS from the first byte. Choose %(other)s as the protocol, "
            "or enter the %(protocol)s port (usually %(protocol_port)s)."
        ),
        "port_speaks_plain": _(
            "Port %(port)s of %(host)s speaks %(other)s, not %(protocol)s: it "
            "greets in plain text instead of starting TLS. Choose %(other)s as "
            "the protocol, or enter the %(protocol)s port (usually "
            "%(protocol_port)s)."
        ),
        "protocol_error": _(
            "The mail server answered in a way that was not understood. Check "
            "that the protocol matches the port."
        ),
        "deadline_exceeded": _(
            "%(host)s answered too slowly on port %(port)s, so the archive hung "
            "up; nothing that was not archived was deleted. Check the mail "
            "server's load and the network in between. If the server is slow "
            "but healthy, the site administrator can raise "
            "MAILARCHIVE_MAIL_TIMEOUT or MAILARCHIVE_POLL_TIME_LIMIT."
        ),
        "invalid_setting": _(
            "The account's host name, user name, password or folder contains a "
            "control character such as a line break, which the mail server would "
            "read as another command, so nothing was sent. Edit the account and "
            "enter them again."
        ),
        "token_rejected": _(
            "The mail server refused the account's OAuth2 access token. Check "
            "that the mailbox allows IMAP or POP access and that the app was "
            "granted the mail permissions (an administrator may have to "
            "consent for the organisation); the next poll fetches a new token."
        ),
        "oauth2_unavailable": _(
            "%(host)s does not offer OAuth2 sign-in (SASL OAUTHBEARER or "
            "XOAUTH2). Check the host name, or sign in with a password."
        ),
        SIGNIN_NEEDED: _(
            "Sign-in needed: the provider no longer accepts this account's "
            "sign-in (it was revoked, expired, or the mailbox's password "
            "changed). The account is not polled until someone signs in again."
        ),
        PROVIDER_UNREACHABLE: _(
            "The sign-in provider could not be reached, so no access token "
            "could be fetched. Nothing was deleted; the next poll retries."
        ),
        PROVIDER_REFUSED: _(
            "The sign-in provider refused the archive's request. The site "
            "administrator should check the app registration (client id and "
            "secret) on the sign-in providers page."
        ),
        PROVIDER_NOT_CONFIGURED: _(
            "This account signs in with a provider the site is no longer "
            "registered with. The site administrator can configure it again "
            "(MAILARCHIVE_OAUTH2_* settings), or edit the account to use a "
            "password."
        ),
        PASSWORD_UNREADABLE: _(
            "The stored password can no longer be decrypted: the site's encryption "
            "key changed. Enter the password again."
        ),
        DATABASE: _(
            "The archive's database was unavailable. Nothing that was not archived "
            "was deleted from the mail server; the next poll retries."
        ),
        STORAGE: _(
            "The archive could not store the mail it fetched: its storage "
            "failed (the disk may be full, or not writable). The poll stopped "
            "and every message that was not archived is still on the mail "
            "server. The site administrator must free space or repair the "
            "storage; the next poll retries."
        ),
        LEASE_LOST: _(
            "This poll stalled and another poll took the account over. Nothing was "
            "lost; the other poll carries on."
        ),
        INTERNAL: _(
            "The poll stopped on an unexpected error. Nothing that was not "
            "archived was deleted from the mail server; the server log has the "
            "details."
        ),
        FETCH_DISABLED: fetch_disabled_sentence(),
        NOT_GLOBAL: _("Only global spaces hold mail; this account was not polled."),
        BUSY: _("Another poll of this account was running."),
        DISABLED: _("The account is disabled."),
        AUTOMATIC_OFF: _("Automatic polling is switched off for the site."),
    }
    template = sentences.get(kind)
    if template is None:
        return detail or kind
    sentence = template % params
    if detail:
        sentence += " " + _("Details: %(detail)s") % {"detail": detail}
    return sentence


def account_error_sentence(account, kind: str, detail: str = "") -> str:
    """:func:`error_sentence` for an error ``kind`` on the mail account ``account``."""
    return error_sentence(
        kind,
        host=account.host,
        port=account.port,
        folder=account.folder,
        protocol=account.protocol,
        detail=detail,
    )


def index_error_sentence(detail: str) -> str:
    """Why messages an account secured are still waiting to be indexed."""
    sentence = _(
        "Indexing stopped: the archived messages could not be read back from "
        "the storage. They are safe and wait to be indexed; the next poll "
        "indexes them once the site administrator has repaired the storage."
    )
    if detail:
        sentence += " " + _("Details: %(detail)s") % {"detail": detail}
    return sentence


def _protocol_params(name: str) -> dict[str, object]:
    """The labels a port mismatch is told with: the account's protocol, the
    one the port speaks instead, and the account protocol's usual port."""
    try:
        spec = protocol_get(name)
        other = counterpart(spec)
    except KeyError:
        return {"protocol": name, "other": "?", "protocol_port": "?"}
    return {
        "protocol": spec.label,
        "other": other.label,
        "protocol_port": spec.default_port,
    }


def poll_outcome_sentence(
    *,
    account_name: str,
    status: str,
    fetched: int = 0,
    duplicates: int = 0,
    left_on_server: int = 0,
    error: str = "",
) -> str:
    """One line about one poll, e.g. "Sales (clone) retrieved 12 new messages"."""
    name = {"name": account_name}
    if status == "queued":
        return _("%(name)s: waiting for a worker to fetch new mail…") % name
    if status == "running":
        return _("%(name)s: fetching new mail…") % name
    if status == "failed":
        return _("%(name)s failed: %(error)s") % {**name, "error": error}
    if status == "skipped":
        return _("%(name)s was not polled: %(error)s") % {**name, "error": error}
    if fetched:
        parts = [
            ngettext(
                "%(name)s retrieved %(count)d new message",
                "%(name)s retrieved %(count)d new messages",
                fetched,
            )
            % {**name, "count": fetched}
        ]
    else:
        parts = [_("%(name)s: no new mail") % name]
    if duplicates:
        parts.append(
            ngettext(
                "%(count)d was already archived",
                "%(count)d were already archived",
                duplicates,
            )
            % {"count": duplicates}
        )
    if left_on_server:
        parts.append(
            ngettext(
                "%(count)d stays on the server (see the account)",
                "%(count)d stay on the server (see the account)",
                left_on_server,
            )
            % {"count": left_on_server}
        )
    return "; ".join(parts)
