"""Account services: validation, audit, connection tests, unreadable passwords."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.utils import translation

from accounts.models import MailAccount
from accounts.services import (
    mail_account_create,
    mail_account_delete,
    mail_account_poll,
    mail_account_set_enabled,
    mail_account_test,
    mail_account_update,
)
from accounts.services.polling import mailbox_key
from accounts.templatetags.accounts_tags import account_last_error
from mailarchive.models import Message
from spaces.models import AuditEvent
from tests.accounts.conftest import source_messages
from tests.factories import PersonalSpaceFactory, SpaceFactory, UserFactory


def create(space, **fields) -> MailAccount:
    values = {
        "name": "Sales (clone)",
        "protocol": "pops",
        "host": "mail.example.org",
        "username": "conf-sales",
        "password": "pw",
    }
    values.update(fields)
    return mail_account_create(space=space, **values)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("protocol", "port"), [("pop", 110), ("pops", 995), ("imap", 143), ("imaps", 993)]
)
def test_blank_port_becomes_the_protocols_standard_port(protocol, port):
    assert create(SpaceFactory(), protocol=protocol).port == port


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": ""}, "password"),
        ({"protocol": "smtp"}, "protocol"),
        ({"protocol": "imaps", "starttls": True}, "STARTTLS"),
        ({"port": 0}, "port"),
        ({"host": "mail.example.org/x"}, "host"),
        ({"name": "  "}, "name"),
    ],
    ids=["no-password", "protocol", "starttls", "port", "host", "name"],
)
def test_invalid_accounts_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        create(SpaceFactory(), **fields)
    assert not MailAccount.objects.exists()


@pytest.mark.django_db
def test_personal_spaces_hold_no_accounts():
    with pytest.raises(ValidationError, match="global spaces"):
        create(PersonalSpaceFactory())


@pytest.mark.django_db
def test_writes_are_audited_without_the_password():
    actor = UserFactory()
    space = SpaceFactory()
    account = create(space, actor=actor, password="very-secret")
    mail_account_update(
        account=account,
        changes={"host": "mail2.example.org"},
        password="very-secret",
        actor=actor,
    )
    mail_account_set_enabled(account=account, enabled=False, actor=actor)
    mail_account_set_enabled(account=account, enabled=False, actor=actor)
    mail_account_delete(account=account, actor=actor)
    events = list(
        AuditEvent.objects.filter(space=space)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert events == [
        "mail_account.create",
        "mail_account.update",
        "mail_account.disable",
        "mail_account.delete",
    ]
    for event in AuditEvent.objects.all():
        assert "very-secret" not in str(event.detail)


@pytest.mark.django_db
def test_update_refuses_fields_that_are_not_editable():
    account = create(SpaceFactory())
    with pytest.raises(ValidationError, match="lease_owner"):
        mail_account_update(account=account, changes={"lease_owner": "me"})


@pytest.mark.django_db
def test_pointing_the_account_elsewhere_changes_its_ledger_scope():
    account = create(SpaceFactory(), protocol="imaps")
    before = mailbox_key(account)
    mail_account_update(account=account, changes={"port": 1993}, password="pw")
    assert mailbox_key(account) == before  # another port, the same mailbox
    mail_account_update(account=account, changes={"folder": "Archive"})
    assert mailbox_key(account) != before


@pytest.mark.django_db
def test_connection_test_counts_without_touching_the_mailbox(
    dovecot, mail_user, make_account
):
    dovecot.deliver_many(mail_user.username, source_messages(4, tag="test"))
    account = make_account(mail_user, "pops")
    result = mail_account_test(account)
    assert (result.ok, result.message_count) == (True, 4)
    assert "the mailbox holds 4 messages" in result.sentence(account)
    assert dovecot.message_count(mail_user.username) == 4
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_unreadable_password_is_reported_in_words(
    dovecot, mail_user, make_account, settings
):
    account = make_account(mail_user, "imaps")
    MailAccount.objects.filter(pk=account.pk).update(
        password_encrypted=Fernet(Fernet.generate_key()).encrypt(b"pw").decode()
    )
    account.refresh_from_db()
    result = mail_account_test(account)
    assert (result.ok, result.kind) == (False, "password_unreadable")
    assert "Enter the password again" in result.sentence(account)
    summary = mail_account_poll(account_id=account.pk, trigger="manual")
    assert summary.error_kind == "password_unreadable"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"protocol": "imaps"},
        {"host": "attacker.example.net"},
        {"port": 1995},
        {"username": "someone-else"},
        {"protocol": "pop", "port": 110, "starttls": False},
        {"protocol": "pop", "port": 110, "starttls": True},
    ],
    ids=["protocol", "host", "port", "username", "pop-plain", "pop-starttls"],
)
def test_pointing_the_account_elsewhere_needs_the_password_again(changes):
    """GIVEN an admin who points an account at another server or user
    WHEN they leave the password blank
    THEN nothing changes and they are told why the password is needed; with
    the password the change goes through."""
    account = create(SpaceFactory(), protocol="pops", password="stored-pw")
    stored = MailAccount.objects.get(pk=account.pk)
    with pytest.raises(ValidationError) as caught:
        mail_account_update(account=account, changes=changes)
    [message] = caught.value.message_dict["password"]
    assert "Enter the password again" in message
    assert "only ever sent to the server and user it was entered for" in message
    unchanged = MailAccount.objects.get(pk=account.pk)
    for name in ("protocol", "host", "port", "username", "starttls"):
        assert getattr(unchanged, name) == getattr(stored, name)
    assert unchanged.password_encrypted == stored.password_encrypted

    account = MailAccount.objects.get(pk=account.pk)
    mail_account_update(account=account, changes=changes, password="new-pw")
    account.refresh_from_db()
    for name, value in changes.items():
        assert getattr(account, name) == value
    from accounts.crypto import password_decrypt

    assert password_decrypt(account.password_encrypted) == "new-pw"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"name": "Renamed", "description": "x", "enabled": False},
        {"folder": "Archive"},
        {"host": "  mail.example.org  ", "port": 995},  # the same after cleaning
    ],
    ids=["labels", "folder", "unchanged-server"],
)
def test_other_changes_keep_the_stored_password(changes):
    account = create(SpaceFactory(), protocol="pops")
    stored = account.password_encrypted
    mail_account_update(account=account, changes=changes)
    account.refresh_from_db()
    assert account.password_encrypted == stored


@pytest.mark.django_db
def test_update_check_says_what_update_would_refuse_and_changes_nothing():
    from accounts.services import mail_account_update_check

    account = create(SpaceFactory())
    with pytest.raises(ValidationError, match="password again"):
        mail_account_update_check(account=account, changes={"host": "other.example"})
    with pytest.raises(ValidationError, match="control characters"):
        mail_account_update_check(account=account, changes={"folder": "IN\rBOX"})
    mail_account_update_check(account=account, changes={"folder": "Archive"})
    account.refresh_from_db()
    assert (account.host, account.folder) == ("mail.example.org", "INBOX")


CONTROL_CHARACTERS = ["\r\n", "\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\x85"]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["host", "username", "password", "folder"])
@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=repr)
def test_control_characters_are_refused_in_what_reaches_the_server(field, char):
    value = {
        "host": "mail.example.org",
        "username": "conf-sales",
        "password": "pw",
        "folder": "INBOX",
    }[field]
    with pytest.raises(ValidationError) as caught:
        create(SpaceFactory(), **{field: value[:2] + char + value[2:]})
    assert "control characters" in " ".join(caught.value.message_dict[field])
    assert not MailAccount.objects.exists()

    account = create(SpaceFactory())
    changes = {} if field == "password" else {field: value + char + "x"}
    password = "pw" + char if field == "password" else "pw"
    with pytest.raises(ValidationError) as caught:
        mail_account_update(account=account, changes=changes, password=password)
    assert field in caught.value.message_dict
    account.refresh_from_db()
    assert account.host == "mail.example.org"
    assert (account.username, account.folder) == ("conf-sales", "INBOX")


@pytest.mark.django_db
def test_non_ascii_is_not_a_control_character():
    account = create(
        SpaceFactory(), username="jürgen", password="pässwört", folder="Entwürfe"
    )
    assert account.username == "jürgen"


WRONG_PORTS = [
    ("imap", "imaps_port", "IMAPS", "IMAP"),
    ("imaps", "imap_port", "IMAP", "IMAPS"),
    ("pop", "pop3s_port", "POPS", "POP"),
    ("pops", "pop3_port", "POP", "POPS"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("protocol", "port_attribute", "spoken", "expected"),
    WRONG_PORTS,
    ids=[f"{p}-on-{a}" for p, a, _, _ in WRONG_PORTS],
)
def test_a_port_for_the_other_protocol_is_named_in_the_test_and_the_poll(
    dovecot,
    mail_user,
    make_account,
    mail_settings,
    protocol,
    port_attribute,
    spoken,
    expected,
):
    """GIVEN an account on the Dovecot port of its protocol's TLS (or plain) twin
    WHEN it is tested and polled
    THEN both say, once and in the reader's language, what the port speaks,
    before the mail timeout would have run out."""
    account = make_account(mail_user, protocol, port=getattr(dovecot, port_attribute))
    started = time.monotonic()
    result = mail_account_test(account)
    assert time.monotonic() - started < mail_settings.MAILARCHIVE_MAIL_TIMEOUT / 2
    sentence = result.sentence(account)
    assert f"speaks {spoken}, not {expected}" in sentence
    assert sentence.count("speaks") == sentence.count("Choose") == 1
    assert "firewall" not in sentence
    with translation.override("ja"):
        japanese = result.sentence(account)
    assert f"{spoken}" in japanese and "speaks" not in japanese
    started = time.monotonic()
    summary = mail_account_poll(account_id=account.pk, trigger="manual")
    assert time.monotonic() - started < mail_settings.MAILARCHIVE_MAIL_TIMEOUT / 2
    assert summary.failed
    account.refresh_from_db()
    assert account.last_error_kind == result.kind
    assert f"speaks {spoken}, not {expected}" in account_last_error(account)


@pytest.mark.django_db
def test_error_sentences_give_their_advice_once_and_details_in_japanese(
    dovecot, mail_user, make_account
):
    """GIVEN a wrong password
    THEN the sentence advises once and its details are only the server's words,
    which follow a translated "Details:" in the Japanese interface."""
    account = make_account(mail_user, "imaps", password="not-the-password")
    result = mail_account_test(account)
    assert result.kind == "login_rejected"
    sentence = result.sentence(account)
    assert sentence.count("Check") == 1, sentence
    assert "rejected the login of" not in sentence
    assert "Details: [AUTH" in sentence
    with translation.override("ja"):
        japanese = result.sentence(account)
    assert "詳細：[AUTH" in japanese
    english_part = japanese.split("詳細：")[0]
    assert english_part.isascii() is False
    assert "Details" not in japanese
    assert "Check" not in japanese
