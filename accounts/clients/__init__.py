"""POP3 and IMAP clients that fetch and delete mail on a server.

Plain Python (no Django): ``open_client(settings)`` returns a ``MailClient``
for the settings' protocol, to be used as a context manager. See
``accounts.clients.base`` for the interface and what "raw" means.
"""

from __future__ import annotations

from accounts.clients.base import (
    DEFAULT_PORTS,
    PROTOCOLS,
    ConnectionSettings,
    ErrorKind,
    MailClient,
    MailClientError,
    ServerListing,
    ServerMessage,
)
from accounts.clients.guard import check_destination
from accounts.clients.imap import IMAPMailClient
from accounts.clients.pop3 import POP3Client

__all__ = [
    "DEFAULT_PORTS",
    "PROTOCOLS",
    "ConnectionSettings",
    "ErrorKind",
    "IMAPMailClient",
    "MailClient",
    "MailClientError",
    "POP3Client",
    "ServerListing",
    "ServerMessage",
    "check_destination",
    "open_client",
]


def open_client(settings: ConnectionSettings) -> MailClient:
    """Return an unconnected client for ``settings.protocol``.

    Nothing happens on the network until the client's ``with`` block starts.
    """
    if settings.protocol in ("imap", "imaps"):
        return IMAPMailClient(settings)
    return POP3Client(settings)
