"""Mail account pages: permissions, forms, health, the site pages, secrecy."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import FetchSettings, MailAccount, PollRun
from accounts.services import mail_account_create, mail_account_poll
from spaces.models import AuditEvent, Level
from tests.accounts.conftest import source_messages
from tests.conftest import ROLES, client_for, expected_status, login_client
from tests.factories import (
    PersonalSpaceFactory,
    SpaceFactory,
    SuperUserFactory,
)

SECRET = "Pa55-unusual-Secret-7731"


def make(space, name: str = "Sales (clone)", **fields) -> MailAccount:
    values = {
        "protocol": "imaps",
        "host": "127.0.0.1",
        "username": "sales",
        "password": SECRET,
    }
    values.update(fields)
    return mail_account_create(space=space, name=name, **values)


def account_urls(key: str, account: MailAccount, run: PollRun) -> dict[str, str]:
    ids = {"key": key, "account_id": account.pk}
    return {
        "account-list": reverse("accounts:account-list", kwargs={"key": key}),
        "account-create": reverse("accounts:account-create", kwargs={"key": key}),
        "account-edit": reverse("accounts:account-edit", kwargs=ids),
        "account-delete": reverse("accounts:account-delete", kwargs=ids),
        "poll-run": reverse(
            "accounts:poll-run", kwargs={"key": key, "poll_run_id": run.pk}
        ),
        "poll-run-status": reverse(
            "accounts:poll-run-status", kwargs={"key": key, "poll_run_id": run.pk}
        ),
    }


GET_PAGES = [
    "account-list",
    "account-create",
    "account-edit",
    "account-delete",
    "poll-run",
    "poll-run-status",
]
POST_ACTIONS = ["account-enable", "account-test", "account-fetch", "account-delete"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", GET_PAGES)
def test_space_pages_need_space_admin(actors, role, page):
    account = make(actors.space)
    run = PollRun.objects.create(account=account, trigger="manual")
    url = account_urls(actors.space.key, account, run)[page]
    response = client_for(actors, role).get(url)
    assert response.status_code == expected_status(role, Level.ADMIN)
    if response.status_code == 302:
        assert response.url.startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", POST_ACTIONS)
def test_space_actions_need_space_admin(actors, role, action, settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    account = make(actors.space)
    url = reverse(
        f"accounts:{action}",
        kwargs={"key": actors.space.key, "account_id": account.pk},
    )
    response = client_for(actors, role).post(url, {"enabled": "0"})
    allowed = expected_status(role, Level.ADMIN) == 200
    assert response.status_code == (
        302 if allowed else expected_status(role, Level.ADMIN)
    )
    still_there = MailAccount.objects.filter(pk=account.pk).first()
    if action == "account-delete":
        assert (still_there is None) == allowed
    if action == "account-enable":
        assert still_there.enabled is not allowed
    if action == "account-fetch":
        assert PollRun.objects.filter(account=account).exists() == allowed


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", ["accounts:fetch-settings", "accounts:report"])
def test_site_pages_need_a_site_admin(actors, role, name):
    response = client_for(actors, role).get(reverse(name))
    expected = {"anonymous": 302, "site_admin": 200}.get(role, 403)
    assert response.status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_only_site_admins_switch_polling(actors, role):
    client_for(actors, role).post(reverse("accounts:fetch-settings"), {})
    row = FetchSettings.objects.filter(pk=1).first()
    switched_off = row is not None and not row.automatic_polling
    assert switched_off == (role == "site_admin")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_other_spaces_accounts_are_not_reachable(actors, role):
    other = make(SpaceFactory(key="OTHER"))
    url = reverse(
        "accounts:account-edit",
        kwargs={"key": actors.space.key, "account_id": other.pk},
    )
    response = client_for(actors, role).get(url)
    expected = expected_status(role, Level.ADMIN)
    assert response.status_code == (404 if expected == 200 else expected)


@pytest.mark.django_db
def test_personal_space_explains_instead_of_offering_accounts():
    space = PersonalSpaceFactory()
    client = login_client(space.owner)
    page = client.get(reverse("accounts:account-list", kwargs={"key": space.key}))
    assert page.status_code == 200
    assert "Personal spaces do not hold mail" in page.content.decode()
    client.post(
        reverse("accounts:account-create", kwargs={"key": space.key}),
        {
            "name": "x",
            "protocol": "imaps",
            "host": "h",
            "username": "u",
            "password": "p",
        },
    )
    assert not MailAccount.objects.exists()


@pytest.mark.django_db
def test_add_defaults_the_port_encrypts_and_warns_when_the_test_fails(settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    space = SpaceFactory()
    client = login_client(SuperUserFactory())
    response = client.post(
        reverse("accounts:account-create", kwargs={"key": space.key}),
        {
            "name": "Sales (clone)",
            "protocol": "imaps",
            "host": "127.0.0.1",
            "port": "",
            "username": "sales",
            "password": SECRET,
            "folder": "",
            "enabled": "on",
        },
        follow=True,
    )
    account = MailAccount.objects.get(space=space)
    assert (account.port, account.folder, account.enabled) == (993, "INBOX", True)
    assert SECRET not in account.password_encrypted
    body = response.content.decode()
    assert "Sales (clone) added." in body
    assert "connection test failed" in body
    assert "MAILARCHIVE_ALLOWED_MAIL_HOSTS" in body
    assert AuditEvent.objects.filter(action="mail_account.create").exists()


@pytest.mark.django_db
def test_add_a_working_account_reports_the_message_count(
    dovecot, mail_user, mail_settings
):
    dovecot.deliver_many(mail_user.username, source_messages(3, tag="count"))
    space = SpaceFactory()
    client = login_client(SuperUserFactory())
    response = client.post(
        reverse("accounts:account-create", kwargs={"key": space.key}),
        {
            "name": "Support",
            "protocol": "imap",
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "username": mail_user.username,
            "password": mail_user.password,
            "starttls": "on",
            "folder": "INBOX",
            "enabled": "on",
        },
        follow=True,
    )
    body = response.content.decode()
    assert "folder INBOX holds 3 messages" in body
    assert "in clear" not in body
    account = MailAccount.objects.get(space=space)
    test = client.post(
        reverse(
            "accounts:account-test",
            kwargs={"key": space.key, "account_id": account.pk},
        ),
        follow=True,
    )
    assert "holds 3 messages" in test.content.decode()
    assert dovecot.message_count(mail_user.username) == 3  # a test deletes nothing


@pytest.mark.django_db
def test_plain_imap_without_starttls_is_saved_with_a_warning(settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    space = SpaceFactory()
    client = login_client(SuperUserFactory())
    response = client.post(
        reverse("accounts:account-create", kwargs={"key": space.key}),
        {
            "name": "Plain",
            "protocol": "imap",
            "host": "127.0.0.1",
            "username": "u",
            "password": "p",
            "enabled": "on",
        },
        follow=True,
    )
    assert MailAccount.objects.get(space=space).port == 143
    assert "password crosses the network in clear" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"protocol": "imaps", "starttls": "on"}, "starttls", "STARTTLS applies"),
        ({"name": "Taken"}, "__all__", "already exists"),
        ({"port": "70000"}, "port", ""),
        ({"host": "mail example org"}, "host", "mail server's name"),
    ],
    ids=["starttls-with-imaps", "taken-name", "port-range", "host-with-space"],
)
def test_form_rejects_bad_input(changes, field, message):
    space = SpaceFactory()
    make(space, name="Taken")
    data = {
        "name": "New",
        "protocol": "imap",
        "host": "mail.example.org",
        "username": "u",
        "password": "p",
    }
    data.update(changes)
    response = login_client(SuperUserFactory()).post(
        reverse("accounts:account-create", kwargs={"key": space.key}), data
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(str(m) for ms in errors.values() for m in ms)
    assert MailAccount.objects.filter(space=space).count() == 1


@pytest.mark.django_db
def test_edit_with_blank_password_keeps_it(settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    space = SpaceFactory()
    account = make(space)
    stored = account.password_encrypted
    client = login_client(SuperUserFactory())
    url = reverse(
        "accounts:account-edit", kwargs={"key": space.key, "account_id": account.pk}
    )
    page = client.get(url).content.decode()
    assert SECRET not in page
    assert stored not in page
    data = {
        "name": "Renamed",
        "protocol": "imaps",
        "host": "127.0.0.1",
        "port": "993",
        "username": "sales",
        "password": "",
        "folder": "INBOX",
        "enabled": "on",
    }
    assert client.post(url, data).status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert account.password_encrypted == stored
    event = AuditEvent.objects.get(action="mail_account.update")
    assert "name" in event.detail["changed"]
    assert "password" not in event.detail["changed"]

    client.post(url, {**data, "password": "new-password"})
    account.refresh_from_db()
    from accounts.crypto import password_decrypt

    assert password_decrypt(account.password_encrypted) == "new-password"


@pytest.mark.django_db
def test_remove_asks_then_keeps_the_archived_mail():
    space = SpaceFactory()
    account = make(space)
    client = login_client(SuperUserFactory())
    url = reverse(
        "accounts:account-delete", kwargs={"key": space.key, "account_id": account.pk}
    )
    confirm = client.get(url).content.decode()
    assert "stays in this space" in confirm
    assert MailAccount.objects.filter(pk=account.pk).exists()
    client.post(url)
    assert not MailAccount.objects.filter(pk=account.pk).exists()


@pytest.mark.django_db
def test_account_list_shows_health_without_extra_queries_per_account():
    space = SpaceFactory()
    client = login_client(SuperUserFactory())
    url = reverse("accounts:account-list", kwargs={"key": space.key})

    def add(n: int) -> None:
        account = make(space, name=f"Account {n}")
        PollRun.objects.create(
            account=account, trigger="schedule", status="ok", fetched=n
        )
        MailAccount.objects.filter(pk=account.pk).update(
            last_poll_at=timezone.now(),
            consecutive_failures=n % 2,
            last_error="It broke.",
            last_error_kind="login_rejected",
            left_on_server=[{"server_id": "1:5", "size": 10, "reason": "too_large"}],
        )

    add(1)
    client.get(url)  # warm caches (session, content types)
    with CaptureQueriesContext(connection) as one:
        first = client.get(url)
    for n in range(2, 7):
        add(n)
    with CaptureQueriesContext(connection) as six:
        page = client.get(url)
    assert len(six) == len(one)
    body = page.content.decode()
    assert first.status_code == page.status_code == 200
    assert "Account 6 retrieved 6 new messages" in body
    assert "The mail server rejected the user name or password" in body
    assert "1 message stays on the server" in body
    assert "Failing: the last poll failed." in body


@pytest.mark.django_db
def test_report_lists_failing_accounts_newest_failure_first():
    now = timezone.now()
    healthy = make(SpaceFactory(name="Alpha"), name="Fine")
    older = make(SpaceFactory(name="Beta"), name="Old failure")
    newer = make(SpaceFactory(name="Gamma"), name="New failure")
    MailAccount.objects.filter(pk=older.pk).update(
        consecutive_failures=3,
        last_error_at=now - timezone.timedelta(hours=2),
        last_error_kind="timeout",
    )
    MailAccount.objects.filter(pk=newer.pk).update(
        consecutive_failures=1, last_error_at=now, last_error_kind="login_rejected"
    )
    body = (
        login_client(SuperUserFactory()).get(reverse("accounts:report")).content
    ).decode()
    positions = [body.index(a.name) for a in (newer, older, healthy)]
    assert positions == sorted(positions)
    assert "3 spaces have mail accounts" in body
    assert "2 accounts are failing" in body


@pytest.mark.django_db
def test_switching_polling_off_is_audited_and_shown():
    admin = SuperUserFactory(username="root")
    client = login_client(admin)
    url = reverse("accounts:fetch-settings")
    response = client.post(url, {}, follow=True)
    assert "Automatic polling is off" in response.content.decode()
    row = FetchSettings.objects.get(pk=1)
    assert (row.automatic_polling, row.changed_by) == (False, admin)
    event = AuditEvent.objects.get(action="fetch.automatic_polling")
    assert (event.actor, event.target) == (admin, "off")
    assert "Last changed by root" in client.get(url).content.decode()


@pytest.mark.django_db
def test_fetch_disabled_is_said_wherever_fetching_is_offered(settings):
    settings.MAILARCHIVE_FETCH_DISABLED = True
    space = SpaceFactory()
    make(space)
    client = login_client(SuperUserFactory())
    for url in (
        reverse("accounts:account-list", kwargs={"key": space.key}),
        reverse("accounts:fetch-settings"),
        reverse("accounts:report"),
    ):
        body = client.get(url).content.decode()
        assert "MAILARCHIVE_FETCH_DISABLED" in body, url
    listing = client.get(reverse("accounts:account-list", kwargs={"key": space.key}))
    assert "Fetch new mail" not in listing.content.decode()


@pytest.mark.django_db
def test_links_to_the_pages(actors):
    home = reverse("spaces:space-home", kwargs={"key": actors.space.key})
    accounts_url = reverse("accounts:account-list", kwargs={"key": actors.space.key})
    assert accounts_url in client_for(actors, "admin").get(home).content.decode()
    assert accounts_url not in client_for(actors, "viewer").get(home).content.decode()
    top = client_for(actors, "site_admin").get(home).content.decode()
    assert reverse("accounts:report") in top
    assert reverse("accounts:fetch-settings") in top
    assert reverse("accounts:report") not in (
        client_for(actors, "admin").get(home).content.decode()
    )


@pytest.mark.django_db
def test_passwords_never_appear_in_pages_or_logs(
    dovecot, mail_user, mail_settings, caplog
):
    caplog.set_level(logging.DEBUG)
    dovecot.deliver_many(mail_user.username, source_messages(2, tag="secret"))
    space = SpaceFactory()
    admin = SuperUserFactory()
    client = login_client(admin)
    create = reverse("accounts:account-create", kwargs={"key": space.key})
    pages = []
    for password in (mail_user.password, SECRET):  # one works, one is rejected
        pages.append(
            client.post(
                create,
                {
                    "name": f"Acct {len(pages)}",
                    "protocol": "imaps",
                    "host": "127.0.0.1",
                    "port": dovecot.imaps_port,
                    "username": mail_user.username,
                    "password": password,
                    "folder": "INBOX",
                    "enabled": "on",
                },
                follow=True,
            )
        )
    accounts = list(MailAccount.objects.filter(space=space).order_by("name"))
    for account in accounts:
        mail_account_poll(account_id=account.pk, trigger="manual")
    for account in accounts:
        ids = {"key": space.key, "account_id": account.pk}
        run = PollRun.objects.filter(account=account).first()
        for url in (
            reverse("accounts:account-list", kwargs={"key": space.key}),
            reverse("accounts:account-edit", kwargs=ids),
            reverse("accounts:account-delete", kwargs=ids),
            reverse(
                "accounts:poll-run", kwargs={"key": space.key, "poll_run_id": run.pk}
            ),
            reverse("accounts:report"),
            reverse("admin:accounts_mailaccount_change", args=[account.pk]),
            reverse("admin:accounts_mailaccount_changelist"),
            reverse("admin:accounts_pollrun_changelist"),
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            pages.append(response)
    texts = [p.content.decode() for p in pages] + [caplog.text]
    for secret in (mail_user.password, SECRET):
        for text in texts:
            assert secret not in text
        for account in accounts:
            assert secret not in account.password_encrypted


@pytest.mark.django_db
def test_admin_switch_goes_through_the_audited_service():
    admin = SuperUserFactory(username="root")
    client = login_client(admin)
    add = client.post(
        reverse("admin:accounts_fetchsettings_add"), {"automatic_polling": ""}
    )
    assert add.status_code == 302
    row = FetchSettings.objects.get(pk=1)
    assert (row.automatic_polling, row.changed_by) == (False, admin)
    assert AuditEvent.objects.filter(
        action="fetch.automatic_polling", actor=admin
    ).exists()
    assert client.get(reverse("admin:accounts_fetchsettings_add")).status_code == 403


@pytest.mark.django_db
def test_admin_edits_accounts_through_the_service_without_a_password_field():
    space = SpaceFactory()
    account = make(space)
    client = login_client(SuperUserFactory())
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    form = client.get(url).content.decode()
    assert 'name="password' not in form
    response = client.post(
        url,
        {
            "name": "Renamed",
            "description": "",
            "protocol": "imaps",
            "host": "127.0.0.1",
            "port": "993",
            "username": "sales",
            "folder": "INBOX",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert AuditEvent.objects.filter(action="mail_account.update").exists()
    assert client.get(reverse("admin:accounts_mailaccount_add")).status_code == 403


def edit_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Sales (clone)",
        "protocol": "imaps",
        "host": "127.0.0.1",
        "port": "993",
        "username": "sales",
        "password": "",
        "folder": "INBOX",
        "enabled": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"host": "attacker.example.net"},
        {"port": "1993"},
        {"username": "someone-else"},
        {"protocol": "imap", "port": "143", "starttls": "on"},
    ],
    ids=["host", "port", "username", "protocol-and-starttls"],
)
def test_edit_pointing_elsewhere_asks_for_the_password_again(settings, changes):
    """GIVEN a space admin editing an account
    WHEN they point it at another server or user and leave the password blank
    THEN the form says why the password is needed, and nothing is saved."""
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    space = SpaceFactory()
    account = make(space)
    stored = MailAccount.objects.get(pk=account.pk)
    client = login_client(SuperUserFactory())
    url = reverse(
        "accounts:account-edit", kwargs={"key": space.key, "account_id": account.pk}
    )
    assert "needs it again" in client.get(url).content.decode()

    response = client.post(url, edit_data(**changes))

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "Enter the password again" in " ".join(errors["password"])
    account.refresh_from_db()
    for name in ("protocol", "host", "port", "username", "starttls"):
        assert getattr(account, name) == getattr(stored, name)
    assert not AuditEvent.objects.filter(action="mail_account.update").exists()

    assert client.post(url, edit_data(**changes, password="its-password")).status_code
    account.refresh_from_db()
    from accounts.crypto import password_decrypt

    assert password_decrypt(account.password_encrypted) == "its-password"
    assert account.username == changes.get("username", "sales")
    assert account.host == changes.get("host", "127.0.0.1")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "sales\r\nDELE 1"),
        ("password", "pw\nQUIT"),
        ("folder", "INBOX\r\nA1 DELETE INBOX"),
        ("host", "mail.\x00example.org"),
    ],
    ids=["username", "password", "folder", "host"],
)
def test_form_refuses_control_characters(settings, field, value):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    space = SpaceFactory()
    response = login_client(SuperUserFactory()).post(
        reverse("accounts:account-create", kwargs={"key": space.key}),
        edit_data(**{"password": "pw", field: value}),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert not MailAccount.objects.filter(space=space).exists()


@pytest.mark.django_db
def test_admin_shows_where_the_password_goes_read_only():
    """The admin takes no password, so it cannot point an account elsewhere:
    the connection fields are read-only there, and a posted change to them is
    ignored."""
    space = SpaceFactory()
    account = make(space)
    client = login_client(SuperUserFactory())
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    page = client.get(url).content.decode()
    for name in ("protocol", "host", "port", "username", "starttls"):
        assert f'name="{name}"' not in page
    assert "password again, so they are changed on the space" in page
    response = client.post(
        url,
        {
            "name": "Sales (clone)",
            "description": "",
            "host": "attacker.example.net",
            "username": "someone-else",
            "port": "1993",
            "folder": "INBOX",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.host, account.username, account.port) == ("127.0.0.1", "sales", 993)


@pytest.mark.django_db
def test_admin_refuses_control_characters_through_the_service():
    space = SpaceFactory()
    account = make(space)
    client = login_client(SuperUserFactory())
    url = reverse("admin:accounts_mailaccount_change", args=[account.pk])
    response = client.post(
        url,
        {
            "name": "Sales (clone)",
            "description": "",
            "folder": "INBOX\r\nA1 DELETE INBOX",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "control characters" in response.content.decode()
    account.refresh_from_db()
    assert account.folder == "INBOX"


@pytest.mark.django_db
def test_connection_test_in_japanese_says_its_details_in_japanese(
    dovecot, mail_user, make_account
):
    """GIVEN the Japanese interface and an account with a wrong password, and
    one pointed at the IMAPS port as IMAP
    WHEN the admin tests the connection
    THEN the flash reads in Japanese, "Details" included: only the server's own
    words stay as they were sent, and no advice is given twice."""
    space = SpaceFactory()
    wrong = make_account(mail_user, "imaps", space=space, password="not-it")
    port = make_account(
        mail_user, "imap", space=space, name="port", port=dovecot.imaps_port
    )
    client = login_client(SuperUserFactory())
    client.cookies["django_language"] = "ja"
    pages = {}
    # The pages activate Japanese; the override puts the language back after.
    with translation.override("ja"):
        for account in (wrong, port):
            pages[account.pk] = client.post(
                reverse(
                    "accounts:account-test",
                    kwargs={"key": space.key, "account_id": account.pk},
                ),
                follow=True,
                HTTP_ACCEPT_LANGUAGE="ja",
            ).content.decode()
    assert "詳細：[AUTH" in pages[wrong.pk]
    assert "Details" not in pages[wrong.pk]
    assert "Check the user name" not in pages[wrong.pk]
    assert "IMAP ではなく IMAPS を話します" in pages[port.pk]
    assert "firewall" not in pages[port.pk] and "Details" not in pages[port.pk]
