"""The protocol registry: one entry per way of reaching a mailbox.

Each protocol module (``imap``, ``pop3``) registers its protocols when it is
imported, with everything the rest of the archive needs to know about them:
the standard port, whether TLS starts at once, whether the account reads a
folder, whether deletions take effect only at logout, and the client class.
Adding a protocol is one module that calls ``register`` plus its tests.

Plain Python: nothing here knows about Django.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.clients.base import MailClient


@dataclass(frozen=True)
class Protocol:
    """What the archive knows about one protocol.

    ``family`` groups protocols that see the same mailbox the same way (an
    IMAP and an IMAPS account on one server read the same messages under the
    same ids). ``implicit_tls`` protocols are encrypted from the first byte;
    the others may use STARTTLS. ``reads_folders``: the account names the
    folder it reads. ``deletes_at_logout``: the server removes deleted
    messages only when the session ends cleanly (POP3 QUIT).
    """

    name: str
    label: str
    family: str
    default_port: int
    implicit_tls: bool
    reads_folders: bool
    deletes_at_logout: bool
    client_class: type[MailClient]

    @property
    def offers_starttls(self) -> bool:
        return not self.implicit_tls


_REGISTRY: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    """Add *protocol* to the registry (replacing one of the same name)."""
    _REGISTRY[protocol.name] = protocol
    return protocol


def protocol_get(name: str) -> Protocol:
    """The registered protocol *name*; ``KeyError`` if there is none."""
    _load()
    return _REGISTRY[name]


def protocols() -> Iterator[Protocol]:
    """Every registered protocol, in registration order."""
    _load()
    yield from _REGISTRY.values()


def protocol_names() -> tuple[str, ...]:
    return tuple(protocol.name for protocol in protocols())


def default_ports() -> dict[str, int]:
    """The standard port of each protocol, by name."""
    return {protocol.name: protocol.default_port for protocol in protocols()}


def _load() -> None:
    # The protocol modules register themselves on import.
    if not _REGISTRY:
        import accounts.clients.imap  # noqa: F401
        import accounts.clients.pop3  # noqa: F401
