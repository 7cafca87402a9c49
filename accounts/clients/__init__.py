"""POP3 and IMAP clients that fetch and delete mail on a server.

Plain Python (no Django): ``open_client(settings)`` returns a ``MailClient``
for the settings' protocol, to be used as a context manager. See
``accounts.clients.base`` for the interface and what "raw" means,
``accounts.clients.protocols`` for the protocol registry and
``accounts.clients.credentials`` for how a client signs in.
"""

from __future__ import annotations

from accounts.clients.base import (
    ConnectionSettings,
    ErrorKind,
    MailClient,
    MailClientError,
    ServerListing,
    ServerMessage,
)
from accounts.clients.credentials import Credential, OAuth2Token, Password
from accounts.clients.guard import check_destination
from accounts.clients.imap import IMAPMailClient
from accounts.clients.pop3 import POP3Client
from accounts.clients.protocols import (
    Protocol,
    default_ports,
    protocol_get,
    protocol_names,
    protocols,
)

__all__ = [
    "ConnectionSettings",
    "Credential",
    "ErrorKind",
    "IMAPMailClient",
    "MailClient",
    "MailClientError",
    "OAuth2Token",
    "POP3Client",
    "Password",
    "Protocol",
    "ServerListing",
    "ServerMessage",
    "check_destination",
    "default_ports",
    "open_client",
    "protocol_get",
    "protocol_names",
    "protocols",
]


def open_client(settings: ConnectionSettings) -> MailClient:
    """Return an unconnected client for ``settings.protocol``.

    Nothing happens on the network until the client's ``with`` block starts.
    """
    return settings.spec.client_class(settings)
