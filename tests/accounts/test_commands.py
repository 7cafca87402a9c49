"""addmailaccount, fetchmail, exportmbox and rotatemailpasswords."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.crypto import password_decrypt
from accounts.models import MailAccount, PollRun
from mailarchive.mbox import iter_mbox
from mailarchive.models import Message
from mailarchive.services import message_ingest
from tests.accounts.conftest import (
    BOOTSTRAP,
    PROJECT_DIR,
    child_env,
    make_message,
    source_messages,
)
from tests.factories import PersonalSpaceFactory, SpaceFactory


def add_account(monkeypatch, *args: str, password: str = "s3cret-pw") -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    out, err = io.StringIO(), io.StringIO()
    call_command("addmailaccount", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


@pytest.mark.django_db
def test_addmailaccount_prints_the_id_and_reads_the_password_from_stdin(
    monkeypatch,
):
    space = SpaceFactory(key="SALES")
    printed, warning = add_account(
        monkeypatch,
        "--space=SALES",
        "--name=Sales (clone)",
        "--protocol=imap",
        "--host=mail.example.org",
        "--username=conf-sales",
        "--password-stdin",
        "--starttls",
        "--folder=Archive",
        "--disabled",
    )
    account = MailAccount.objects.get(pk=int(printed))
    assert account.space == space
    assert (account.protocol, account.port, account.folder) == ("imap", 143, "Archive")
    assert account.starttls and not account.enabled
    assert password_decrypt(account.password_encrypted) == "s3cret-pw"
    assert "s3cret-pw" not in account.password_encrypted
    assert warning == ""


@pytest.mark.django_db
def test_addmailaccount_warns_about_clear_text_and_checks_input(monkeypatch):
    SpaceFactory(key="SALES")
    personal = PersonalSpaceFactory(key="MINE")
    base = ["--name=X", "--host=mail.example.org", "--username=u", "--password-stdin"]
    printed, warning = add_account(
        monkeypatch, "--space=SALES", "--protocol=pop", "--port=1110", *base
    )
    assert MailAccount.objects.get(pk=int(printed)).port == 1110
    assert "in clear" in warning
    with pytest.raises(CommandError, match="already exists"):
        add_account(monkeypatch, "--space=SALES", "--protocol=pop", *base)
    with pytest.raises(CommandError, match="No space"):
        add_account(monkeypatch, "--space=NOPE", "--protocol=pop", *base)
    with pytest.raises(CommandError, match="global spaces"):
        add_account(monkeypatch, f"--space={personal.key}", "--protocol=pop", *base)
    with pytest.raises(CommandError, match="No password"):
        add_account(
            monkeypatch, "--space=SALES", "--protocol=imaps", *base, password=""
        )
    with pytest.raises(CommandError, match="STARTTLS"):
        add_account(
            monkeypatch,
            "--space=SALES",
            "--protocol=imaps",
            "--starttls",
            "--name=Y",
            *base[1:],
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "password"),
    [
        ("--username=conf-sales\r\nDELE 1", "pw"),
        ("--host=mail.example.org\x7f", "pw"),
        ("--folder=INBOX\r\nA1 DELETE INBOX", "pw"),
        ("--username=conf-sales", "pw\x00QUIT"),
        ("--username=conf-sales", "pw\twith-tab"),
    ],
    ids=["username", "host", "folder", "password-nul", "password-tab"],
)
def test_addmailaccount_refuses_control_characters(monkeypatch, option, password):
    SpaceFactory(key="SALES")
    args = [
        "--space=SALES",
        "--name=X",
        "--protocol=imaps",
        "--host=mail.example.org",
        "--username=conf-sales",
        option,
        "--password-stdin",
    ]
    with pytest.raises(CommandError, match="control characters"):
        add_account(monkeypatch, *args, password=password)
    assert not MailAccount.objects.exists()


def fetchmail(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("fetchmail", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_fetchmail_polls_and_prints_one_line_per_account(
    dovecot, mail_user, make_account
):
    dovecot.deliver_many(mail_user.username, source_messages(4, tag="cmd"))
    account = make_account(mail_user, "pops", name="Sales (clone)")
    out, err = fetchmail("--account", str(account.pk))
    assert out.strip() == f"[{account.pk}] Sales (clone) retrieved 4 new messages"
    assert err == ""
    assert PollRun.objects.get(account=account).trigger == "command"
    out, _ = fetchmail("--space", account.space.key)
    assert out.strip() == f"[{account.pk}] Sales (clone): no new mail"


@pytest.mark.django_db
def test_fetchmail_fails_with_status_1_when_an_account_fails(
    dovecot, mail_user, make_account
):
    good = make_account(mail_user, "imaps", name="Good")
    bad = make_account(mail_user, "imaps", name="Bad", password="wrong")
    disabled = make_account(mail_user, "imaps", name="Off")
    MailAccount.objects.filter(pk=disabled.pk).update(enabled=False)
    with pytest.raises(CommandError) as failure:
        fetchmail()
    assert failure.value.returncode == 1
    runs = set(PollRun.objects.values_list("account_id", flat=True))
    assert runs == {good.pk, bad.pk}  # all enabled accounts, not the disabled one


@pytest.mark.django_db(transaction=True)
def test_fetchmail_exit_status_as_a_process(dovecot, mail_user, make_account):
    good = make_account(mail_user, "imaps", name="Good")
    bad = make_account(mail_user, "imaps", name="Bad", password="wrong")
    env = child_env(dovecot)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", BOOTSTRAP, "fetchmail", *args],
            cwd=PROJECT_DIR,
            env={**env, "MAILARCHIVE_TEST_POLL_BATCH": "100"},
            capture_output=True,
            text=True,
            timeout=300,
        )

    ok = run("--account", str(good.pk))
    assert ok.returncode == 0, ok.stderr
    assert "Good: no new mail" in ok.stdout
    failed = run("--account", str(good.pk), "--account", str(bad.pk))
    assert failed.returncode == 1
    assert "Bad failed: The mail server rejected the user name or password" in (
        failed.stderr
    )
    assert mail_user.password not in failed.stdout + failed.stderr


@pytest.mark.django_db
def test_fetchmail_refuses_when_fetching_is_disabled(settings):
    settings.MAILARCHIVE_FETCH_DISABLED = True
    with pytest.raises(CommandError, match="MAILARCHIVE_FETCH_DISABLED"):
        fetchmail()


@pytest.mark.django_db
def test_fetchmail_names_unknown_accounts_and_spaces():
    with pytest.raises(CommandError, match="No mail account with the id 999"):
        fetchmail("--account", "999")
    with pytest.raises(CommandError, match="No space"):
        fetchmail("--space", "NOPE")


@pytest.mark.django_db
def test_exportmbox_writes_the_space_oldest_first_byte_exact(tmp_path):
    space = SpaceFactory(key="EXP")
    raws = [make_message(n, tag="export") for n in range(5)]
    raws.append(
        b"From: x@example.org\r\nSubject: From lines\r\n\r\nFrom here on\r\n"
        b">From quoted\r\n"
    )
    pks = [
        message_ingest(space_id=space.pk, raw=raw, source="poll").message_pk
        for raw in raws
    ]
    base = datetime(2020, 1, 1, tzinfo=UTC)
    # Stored out of order, to see the export sort by date.
    for offset, pk in zip([3, 1, 5, 0, 4, 2], pks, strict=True):
        Message.objects.filter(pk=pk).update(date=base + timedelta(days=offset))
    Message.objects.filter(pk=pks[4]).update(deleted_at=timezone.now())
    message_ingest(space_id=SpaceFactory().pk, raw=make_message(99), source="poll")
    path = tmp_path / "out.mbox"

    out = io.StringIO()
    call_command("exportmbox", "--space", "EXP", str(path), stdout=out)

    assert "Exported 5 messages" in out.getvalue()
    with path.open("rb") as fp:
        exported = [entry.raw for entry in iter_mbox(fp, variant="mboxrd")]
    order = [3, 1, 5, 0, 2]  # by date; the trashed one (index 4) left out
    assert exported == [raws[i] for i in order]
    assert b"\n>>From quoted" in path.read_bytes()
    assert not list(Path(tmp_path).glob(".*partial"))


@pytest.mark.django_db
def test_exportmbox_unknown_space():
    with pytest.raises(CommandError, match="No space"):
        call_command("exportmbox", "--space", "NOPE", "/tmp/never-written.mbox")


@pytest.mark.django_db
def test_rotatemailpasswords_moves_every_password_to_the_new_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILARCHIVE_ENCRYPTION_KEY = [old]
    space = SpaceFactory()
    accounts = [
        MailAccount.objects.create(
            space=space,
            name=f"a{n}",
            protocol="imaps",
            host="mail.example.org",
            port=993,
            username="u",
            password_encrypted=Fernet(old.encode()).encrypt(f"pw{n}".encode()).decode(),
        )
        for n in range(3)
    ]
    settings.MAILARCHIVE_ENCRYPTION_KEY = [new, old]
    out = io.StringIO()
    call_command("rotatemailpasswords", stdout=out)
    assert "Re-encrypted 3" in out.getvalue()
    settings.MAILARCHIVE_ENCRYPTION_KEY = [new]
    for n, account in enumerate(accounts):
        account.refresh_from_db()
        assert password_decrypt(account.password_encrypted) == f"pw{n}"


@pytest.mark.django_db
def test_rotatemailpasswords_reports_unreadable_passwords(settings):
    settings.MAILARCHIVE_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    account = MailAccount.objects.create(
        space=SpaceFactory(),
        name="lost",
        protocol="imaps",
        host="mail.example.org",
        port=993,
        username="u",
        password_encrypted=Fernet(Fernet.generate_key()).encrypt(b"pw").decode(),
    )
    with pytest.raises(CommandError, match=f"mail account\\(s\\) {account.pk}"):
        call_command("rotatemailpasswords", stdout=io.StringIO())


@pytest.mark.django_db
def test_rotatemailsecrets_moves_oauth2_tokens_to_the_new_key_too(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAILARCHIVE_ENCRYPTION_KEY = [old]
    sealed = Fernet(old.encode())
    account = MailAccount.objects.create(
        space=SpaceFactory(),
        name="oauth2",
        protocol="imaps",
        host="outlook.office365.com",
        port=993,
        username="u",
        auth_method="microsoft",
        oauth2_refresh_token_encrypted=sealed.encrypt(b"refresh").decode(),
        oauth2_access_token_encrypted=sealed.encrypt(b"access").decode(),
    )
    settings.MAILARCHIVE_ENCRYPTION_KEY = [new, old]
    out = io.StringIO()
    call_command("rotatemailsecrets", stdout=out)
    assert "Re-encrypted 1 mail accounts' secrets" in out.getvalue()
    settings.MAILARCHIVE_ENCRYPTION_KEY = [new]
    account.refresh_from_db()
    assert password_decrypt(account.oauth2_refresh_token_encrypted) == "refresh"
    assert password_decrypt(account.oauth2_access_token_encrypted) == "access"
