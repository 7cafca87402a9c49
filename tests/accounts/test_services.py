"""Account services: validation, audit, connection tests, unreadable passwords."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError

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
        account=account, changes={"host": "mail2.example.org"}, actor=actor
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
    mail_account_update(account=account, changes={"port": 1993})
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
