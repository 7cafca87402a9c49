"""POP3 specifics: UIDL ids, deletion at QUIT, framing, servers without UIDL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from accounts.clients import POP3Client, open_client
from tests.accounts.clients.conftest import (
    MakeSettings,
    ScriptedServer,
    as_transmitted,
    pop3_without_uidl,
)
from tests.dovecot import DovecotServer, MailUser


def test_ids_are_the_server_uidls(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    dovecot.deliver_many(
        mail_user.username, [b"Subject: a\n\na\n", b"Subject: b\n\nb\n"]
    )
    with open_client(make_settings("pops")) as client:
        assert isinstance(client, POP3Client)
        ids = [item.server_id for item in client.list_messages()]
        assert client.has_uidl is True
    # The fixture's pop3_uidl_format is %08Xu%08Xv: UID, then UIDVALIDITY.
    validity = f"{dovecot.uidvalidity(mail_user.username):08x}"
    assert ids == [f"00000001{validity}", f"00000002{validity}"]


def test_deletion_takes_effect_when_the_session_ends(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    """GIVEN a message marked for deletion
    THEN it stays on the server until the session ends with QUIT."""
    dovecot.deliver_many(
        mail_user.username, [b"Subject: a\n\na\n", b"Subject: b\n\nb\n"]
    )
    with open_client(make_settings("pops")) as client:
        client.delete([client.list_messages()[0].server_id])
        assert client.message_count() == 1
        assert dovecot.message_count(mail_user.username) == 2
    assert dovecot.message_count(mail_user.username) == 1


def test_framing_is_undone_exactly(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    """Dot-stuffed lines, a lone dot, very long lines and 8-bit bytes arrive as
    stored (with CRLF line endings)."""
    raw = (
        b"Subject: framing\n"
        b"Content-Type: text/plain; charset=iso-8859-1\n\n"
        b".leading dot\n"
        b"..two dots\n"
        b".\n"
        b"not the end\n" + b"x" * 100_000 + b"\n" + bytes(range(0x80, 0x100)) + b"\n"
    )
    dovecot.deliver(mail_user.username, raw)
    with open_client(make_settings("pop")) as client:
        (message,) = client.fetch([client.list_messages()[0].server_id])
    assert message.raw == as_transmitted(raw, "pop")


def test_message_without_final_newline_gains_one(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    """POP3 must end a message with a line break before its terminating dot,
    so the transmitted bytes end with CRLF even if the stored ones do not."""
    dovecot.deliver(mail_user.username, b"Subject: open end\n\nno newline")
    with open_client(make_settings("pops")) as client:
        (message,) = client.fetch([client.list_messages()[0].server_id])
    assert message.raw == b"Subject: open end\r\n\r\nno newline\r\n"


def test_server_without_uidl_gets_content_ids(
    make_settings: MakeSettings, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """GIVEN a server that does not support UIDL
    THEN ids are sha256 digests of the raw messages, identical messages share
    one id, and deleting it removes every copy."""
    first = b"Subject: one\r\n\r\n.dot-stuffed line\r\n"
    second = b"Subject: two\r\n\r\nbody\r\n"
    messages = [first, second, first]
    server = scripted_server(pop3_without_uidl(messages))
    settings = make_settings("pop", port=server.port)

    with open_client(settings) as client:
        assert isinstance(client, POP3Client)
        listing = client.list_messages()
        assert client.has_uidl is False
        fetched = {
            m.server_id: m.raw for m in client.fetch([i.server_id for i in listing])
        }

    digest = {
        raw: "sha256:" + hashlib.sha256(raw).hexdigest() for raw in (first, second)
    }
    assert [item.server_id for item in listing] == [digest[first], digest[second]]
    assert fetched == {digest[first]: first, digest[second]: second}

    with open_client(settings) as client:
        client.delete([digest[first]])
    assert messages == [second]
    assert any(re.fullmatch(r"UIDL( \d+)?", line) for line in server.received)
