"""Which network destinations a mail account may reach.

Mail account hosts are typed by space admins, so the archive must not become
a tool for probing its own machine or network: loopback, link-local,
unspecified, multicast and reserved addresses are refused, and so is any port
other than the standard POP3/IMAP ones. An operator lifts the restriction for
named destinations through ``MAILARCHIVE_ALLOWED_MAIL_HOSTS``, whose entries
are a host name, an IP address or a CIDR network, each optionally followed by
``:port`` (IPv6 in brackets: ``[::1]:1143``, ``[fd00::/8]``).

The clients connect to the addresses ``check_destination`` returns, never to
the name again, so DNS answering differently a moment later cannot sneak past
the check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from accounts.clients.base import ErrorKind, MailClientError

STANDARD_PORTS = frozenset({110, 143, 993, 995})
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowedHost:
    """One parsed allow-list entry: a name or a network, maybe one port."""

    name: str | None
    network: IPNetwork | None
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> AllowedHost:
        """Parse ``host``, ``ip``, ``cidr``, each optionally ``:port``.

        Raises ``ValueError`` naming the entry when it cannot be understood.
        """
        text = entry.strip()
        host, port = text, None
        if text.startswith("["):
            inside, bracket, rest = text[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"malformed allowed mail host {entry!r}")
            host = inside
            port = _parse_port(rest[1:], entry) if rest else None
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = _parse_port(port_text, entry)
        if not host:
            raise ValueError(f"allowed mail host {entry!r} names no host")
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            if "/" in host or ":" in host:
                raise ValueError(f"malformed allowed mail host {entry!r}") from None
            return cls(name=_normalise_name(host), network=None, port=port)
        return cls(name=None, network=network, port=port)

    def permits(self, host: str, address: IPAddress, port: int) -> bool:
        """Whether this entry lets *host* (resolved to *address*) use *port*."""
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            return self.name == _normalise_name(host)
        if self.network is None:
            return False
        return address.version == self.network.version and address in self.network


def parse_allowed_hosts(entries: Iterable[str]) -> tuple[AllowedHost, ...]:
    """Parse allow-list entries (blank ones ignored); ``ValueError`` if bad."""
    return tuple(AllowedHost.parse(entry) for entry in entries if entry.strip())


def _parse_port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"allowed mail host {entry!r} has an invalid port")
    return int(text)


def _normalise_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _comparable(address: str) -> IPAddress:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def forbidden_reason(address: IPAddress) -> str | None:
    """Why connecting to *address* is refused by default, ``None`` if it isn't."""
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address in _THIS_NETWORK:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Return the distinct TCP addresses of *host*, in resolver order."""
    name = _normalise_name(host)
    try:
        infos = socket.getaddrinfo(
            name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise MailClientError(
            ErrorKind.UNKNOWN_HOST,
            f"The mail server name {name!r} cannot be resolved ({reason}).",
        ) from error
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_destination(host: str, port: int, allowed_hosts: Sequence[str]) -> list[str]:
    """Resolve *host* and return its addresses if all of them may be reached.

    Raises ``MailClientError`` (``blocked_destination``) if any address is
    loopback, link-local, unspecified, multicast or reserved, or the port is
    not a standard POP3/IMAP port, unless an allow-list entry covers the host
    or address (and port); ``unknown_host`` if the name does not resolve;
    ``ValueError`` for a malformed allow-list entry. Changes nothing.
    """
    allowed = parse_allowed_hosts(allowed_hosts)
    addresses = resolve(host, port)
    name = _normalise_name(host)
    for address in addresses:
        ip = _comparable(address)
        if any(entry.permits(name, ip, port) for entry in allowed):
            continue
        reason = forbidden_reason(ip)
        if reason is not None:
            shown = address if address == name else f"{name} ({address})"
            raise MailClientError(
                ErrorKind.BLOCKED_DESTINATION,
                f"Mail accounts may not connect to {shown}: it is a {reason} "
                "address. An operator can allow it by adding it to "
                "MAILARCHIVE_ALLOWED_MAIL_HOSTS.",
            )
        if port not in STANDARD_PORTS:
            raise MailClientError(
                ErrorKind.BLOCKED_DESTINATION,
                f"Mail accounts may only use the standard ports 110, 143, 993 and "
                f"995, not {port}. An operator can allow {name}:{port} by adding it "
                "to MAILARCHIVE_ALLOWED_MAIL_HOSTS.",
            )
    return addresses
