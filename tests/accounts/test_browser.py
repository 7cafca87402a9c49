"""A space admin sets up a mail account in headless Chromium; a site admin
switches automatic polling off.

The poll task is handed to a thread instead of a broker, so the page really
shows the poll queued and then, through its status script, the result.
"""

from __future__ import annotations

import re

import pytest

from accounts import tasks
from accounts.models import FetchSettings, MailAccount
from tests.accounts.conftest import source_messages
from tests.browser.fixtures import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_space_admin_adds_tests_and_fetches_an_imaps_account(
    actors, dovecot, mail_user, mail_settings, live_server, context, worker
):
    dovecot.deliver_many(mail_user.username, source_messages(12, tag="browser"))
    page = context.new_page()
    log_in(page, live_server.url, "spaceadmin")
    page.goto(f"{live_server.url}/spaces/SALES/")
    page.click("text=Mail accounts")
    page.click("text=Add mail account")

    page.fill("input[name=name]", "Sales (clone)")
    page.select_option("select[name=protocol]", "pop")
    assert page.input_value("input[name=port]") == "110"
    assert page.is_visible("#plain-text-warning")
    page.select_option("select[name=protocol]", "imaps")
    assert page.input_value("input[name=port]") == "993"
    assert not page.is_visible("#plain-text-warning")
    page.fill("input[name=port]", str(dovecot.imaps_port))
    page.fill("input[name=host]", "127.0.0.1")
    page.fill("input[name=username]", mail_user.username)
    page.fill("input[name=password]", mail_user.password)
    page.click("text=Save and test")

    page.wait_for_url(re.compile(r"/spaces/SALES/accounts/$"))
    assert "folder INBOX holds 12 messages" in page.inner_text(".flash")
    page.click("text=Test connection")
    assert "holds 12 messages" in page.inner_text(".flash")

    page.click("text=Fetch new mail")
    page.wait_for_url(re.compile(r"/accounts/polls/\d+/$"))
    assert "waiting for a worker" in page.inner_text("#poll-run-sentence")
    worker.set()
    # A function, not a bare expression: Playwright evaluates a bare one with
    # eval(), which the page's Content-Security-Policy refuses.
    page.wait_for_function(
        "() => document.getElementById('poll-run').dataset.done === '1'",
        timeout=60_000,
    )
    assert (
        page.inner_text("#poll-run-sentence")
        == "Sales (clone) retrieved 12 new messages"
    )
    assert page.inner_text("#poll-run-status") == "Succeeded"

    page.click("text=Back to the mail accounts")
    health = page.inner_text("table.table tbody tr")
    assert "Working: the last poll completed at" in health
    assert "Archived in total\n12" in health or "Archived in total\t12" in health
    assert "Sales (clone) retrieved 12 new messages" in health
    assert mail_user.password not in page.content()
    assert dovecot.message_count(mail_user.username) == 0
    assert MailAccount.objects.get().last_success_at is not None


def test_site_admin_switches_automatic_polling_off(
    actors, live_server, context, monkeypatch
):
    queued: list[tuple] = []
    monkeypatch.setattr(
        tasks.mail_account_poll_task,
        "apply_async",
        lambda args=None, **options: queued.append(args),
    )
    from accounts.services import mail_account_create

    mail_account_create(
        space=actors.space,
        name="Sales (clone)",
        protocol="imaps",
        host="mail.example.org",
        username="u",
        password="p",
    )
    page = context.new_page()
    log_in(page, live_server.url, "root")
    page.click("text=Mail fetching")
    checkbox = page.locator("input[name=automatic_polling]")
    assert checkbox.is_checked()
    checkbox.uncheck()
    page.click("main form [type=submit]")
    assert "Automatic polling is off" in page.inner_text(".flash")
    assert FetchSettings.objects.get(pk=1).automatic_polling is False

    tasks.mail_accounts_poll_due()
    assert queued == []

    page.click("text=Mail accounts")
    assert "Automatic polling: off" in page.inner_text("main")
