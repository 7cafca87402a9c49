"""The destination guard: which addresses and ports mail accounts may reach."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from accounts.clients import ErrorKind, MailClientError, check_destination, open_client
from accounts.clients.guard import AllowedHost, parse_allowed_hosts
from tests.accounts.clients.conftest import MakeSettings

PUBLIC = "93.184.215.14"


def blocked(host: str, port: int, allowed: tuple[str, ...] = ()) -> MailClientError:
    with pytest.raises(MailClientError) as caught:
        check_destination(host, port, allowed)
    assert caught.value.kind == ErrorKind.BLOCKED_DESTINATION
    return caught.value


@pytest.mark.parametrize("port", [110, 143, 993, 995])
def test_public_address_on_a_standard_port_is_allowed(port: int) -> None:
    assert check_destination(PUBLIC, port, ()) == [PUBLIC]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_internal_addresses_are_refused(address: str, reason: str) -> None:
    error = blocked(address, 993)
    assert f"a {reason} address" in str(error)
    assert "MAILARCHIVE_ALLOWED_MAIL_HOSTS" in str(error)


def test_private_network_addresses_are_allowed() -> None:
    assert check_destination("10.1.2.3", 993, ()) == ["10.1.2.3"]


@pytest.mark.parametrize("port", [25, 80, 1143, 8993])
def test_non_standard_port_is_refused(port: int) -> None:
    error = blocked(PUBLIC, port)
    assert str(port) in str(error)


def test_any_bad_address_of_a_name_refuses_the_name(
    static_dns: Callable[[str, str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a name with one public and one loopback address
    THEN the name is refused, whichever address a connection would pick."""
    real_getaddrinfo = socket.getaddrinfo

    def two_addresses(host: str, port: int, *args: object, **kwargs: object) -> list:
        if host == "mixed.example.test":
            return [
                *real_getaddrinfo(PUBLIC, port, *args, **kwargs),  # type: ignore[arg-type]
                *real_getaddrinfo("127.0.0.1", port, *args, **kwargs),  # type: ignore[arg-type]
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    error = blocked("mixed.example.test", 993)
    assert "mixed.example.test (127.0.0.1)" in str(error)


@pytest.mark.parametrize(
    ("host", "entry"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.0.0.1", "127.0.0.1:1143"),
        ("localhost", "localhost"),
        ("localhost", "LOCALHOST."),
        ("localhost", "localhost:1143"),
    ],
)
def test_allow_list_entry_lifts_the_restrictions(host: str, entry: str) -> None:
    assert "127.0.0.1" in check_destination(host, 1143, (entry,))


@pytest.mark.parametrize(
    ("entry", "port"),
    [("127.0.0.1:1143", 143), ("10.0.0.0/8", 1143), ("otherhost", 1143)],
)
def test_allow_list_entry_that_does_not_match_changes_nothing(
    entry: str, port: int
) -> None:
    blocked("127.0.0.1", port, (entry,))


def test_allow_list_port_applies_to_ipv6_in_brackets() -> None:
    assert check_destination("::1", 1143, ("[::1]:1143",)) == ["::1"]
    blocked("::1", 143, ("[::1]:1143",))


def test_allow_list_cidr_with_port() -> None:
    assert check_destination("127.0.0.5", 2143, ("127.0.0.0/8:2143",)) == ["127.0.0.5"]
    blocked("127.0.0.5", 2144, ("127.0.0.0/8:2143",))


def test_public_host_on_an_allowed_non_standard_port() -> None:
    assert check_destination(PUBLIC, 2993, (f"{PUBLIC}:2993",)) == [PUBLIC]


@pytest.mark.parametrize(
    "entry", ["host:notaport", "host:0", "[::1", "[::1]x", "1.2.3.4/99", ":993"]
)
def test_malformed_allow_list_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed mail host"):
        check_destination(PUBLIC, 993, (entry,))


def test_parse_allowed_hosts_ignores_blank_entries() -> None:
    assert parse_allowed_hosts(["", " ", "mail.example.com:1143"]) == (
        AllowedHost(name="mail.example.com", network=None, port=1143),
    )


def test_unresolvable_name() -> None:
    with pytest.raises(MailClientError) as caught:
        check_destination("no-such-host.invalid", 993, ())
    assert caught.value.kind == ErrorKind.UNKNOWN_HOST


def test_client_connects_with_ip_allowed(make_settings: MakeSettings) -> None:
    with open_client(make_settings("imaps", allowed_hosts=("127.0.0.1",))) as client:
        assert client.message_count() == 0


def test_client_connects_with_cidr_allowed(make_settings: MakeSettings) -> None:
    settings = make_settings("pops", allowed_hosts=("127.0.0.0/8",))
    with open_client(settings) as client:
        assert client.message_count() == 0


def test_client_connects_with_host_and_port_allowed(
    make_settings: MakeSettings,
) -> None:
    port = make_settings("imap").port
    settings = make_settings("imap", allowed_hosts=(f"127.0.0.1:{port}",))
    with open_client(settings) as client:
        assert client.message_count() == 0


def test_client_refuses_when_only_another_port_is_allowed(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings("imap", allowed_hosts=("127.0.0.1:993",))
    with pytest.raises(MailClientError) as caught, open_client(settings):
        pass
    assert caught.value.kind == ErrorKind.BLOCKED_DESTINATION


def test_client_connects_to_the_checked_address(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN DNS that answers with a loopback address only for the check
    THEN the client still connects to the checked address, not to whatever the
    name resolves to a moment later (no DNS rebinding)."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host: str, port: int, *args: object, **kwargs: object) -> list:
        if host == "rebind.example.test":
            host = next(answers, "192.0.2.1")
        return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings = make_settings(
        "imap", host="rebind.example.test", allowed_hosts=("127.0.0.1",)
    )
    with open_client(settings) as client:
        assert client.message_count() == 0
