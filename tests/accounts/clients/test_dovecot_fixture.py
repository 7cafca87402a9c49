"""The Dovecot test fixture itself: seeding, reading back, rebuilding folders."""

from __future__ import annotations

import poplib
import ssl

import pytest

from accounts.clients import open_client
from tests.accounts.clients.conftest import MakeSettings
from tests.dovecot import DovecotServer, MailUser


def test_deliver_stores_the_bytes_unchanged(
    dovecot: DovecotServer, mail_user: MailUser, corpus_messages: list[bytes]
) -> None:
    dovecot.deliver_many(mail_user.username, corpus_messages)
    dovecot.deliver(mail_user.username, b"Subject: crlf\r\n\r\nkept\r\n")
    assert dovecot.message_count(mail_user.username) == len(corpus_messages) + 1
    assert dovecot.mailbox_raws(mail_user.username) == [
        *corpus_messages,
        b"Subject: crlf\r\n\r\nkept\r\n",
    ]


def test_deliver_into_a_missing_folder_fails(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    with pytest.raises(ValueError, match="create_folder"):
        dovecot.deliver(mail_user.username, b"Subject: x\n\n", folder="Missing")


def test_users_are_separate(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.add_user("other-" + mail_user.username, "password")
    dovecot.deliver(mail_user.username, b"Subject: mine\n\n")
    assert dovecot.message_count("other-" + mail_user.username) == 0
    with pytest.raises(ValueError, match="exists"):
        dovecot.add_user(mail_user.username, "again")


def test_pop3_uidls_are_uid_and_uidvalidity_in_hex(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    # Dovecot 2.3's %08Xu%08Xv (lower-case digits), whichever Dovecot runs.
    dovecot.deliver_many(mail_user.username, [b"Subject: a\n\n", b"Subject: b\n\n"])
    uidvalidity = dovecot.uidvalidity(mail_user.username)
    context = ssl.create_default_context(cafile=dovecot.ca_file)
    client = poplib.POP3_SSL(dovecot.host, dovecot.pop3s_port, context=context)
    try:
        client.user(mail_user.username)
        client.pass_(mail_user.password)
        listing = client.uidl()[1]
    finally:
        client.quit()
    assert listing == [
        f"{number} {number:08x}{uidvalidity:08x}".encode() for number in (1, 2)
    ]


def test_recreate_mailbox_keeps_messages_under_a_new_uidvalidity(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    raws = [b"Subject: a\n\na\n", b"Subject: b\n\nb\n"]
    dovecot.deliver_many(mail_user.username, raws)
    before = dovecot.uidvalidity(mail_user.username)
    with open_client(make_settings("imaps")) as client:
        client.list_messages()

    dovecot.recreate_mailbox(mail_user.username)

    assert dovecot.uidvalidity(mail_user.username) != before
    assert dovecot.mailbox_raws(mail_user.username) == raws


def test_recreate_other_folder(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.create_folder(mail_user.username, "Lists")
    dovecot.deliver(mail_user.username, b"Subject: list\n\n", folder="Lists")
    dovecot.deliver(mail_user.username, b"Subject: inbox\n\n")
    inbox_before = dovecot.uidvalidity(mail_user.username)
    before = dovecot.uidvalidity(mail_user.username, "Lists")

    dovecot.recreate_mailbox(mail_user.username, "Lists")

    assert dovecot.uidvalidity(mail_user.username, "Lists") != before
    assert dovecot.uidvalidity(mail_user.username) == inbox_before
    assert dovecot.mailbox_raws(mail_user.username, "Lists") == [b"Subject: list\n\n"]
    assert dovecot.mailbox_raws(mail_user.username) == [b"Subject: inbox\n\n"]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_ten_thousand_messages(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    protocol: str,
) -> None:
    count = 10_000
    dovecot.deliver_many(
        mail_user.username,
        (
            f"Subject: {n}\nMessage-ID: <{n}@test>\n\nbody {n}\n".encode()
            for n in range(count)
        ),
    )
    assert dovecot.message_count(mail_user.username) == count
    with open_client(make_settings(protocol)) as client:
        listing = client.list_messages()
        assert client.message_count() == count
        sample = [listing[0].server_id, listing[-1].server_id]
        assert len(list(client.fetch(sample))) == 2
    assert len({item.server_id for item in listing}) == count
