"""The pages work in Chromium under their Content-Security-Policy.

Chromium reports every script, style or picture a policy blocks; no page of
the site, the Django admin included, may cause one. The language menu, which
used to submit itself with an inline handler, still switches at once.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.fixtures import log_in
from tests.mailarchive.test_views import ingest, raw_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_no_page_breaks_its_policy(actors, live_server, context):
    """GIVEN a site admin WHEN they open every kind of page, the admin's
    included THEN Chromium reports no Content-Security-Policy violation."""
    message = ingest(
        actors.space,
        raw_message(subject="Plans", msgid="plans@x", html="<p>Hi</p>"),
    )
    key = actors.space.key
    addresses = [
        reverse("spaces:dashboard"),
        reverse("spaces:space-home", kwargs={"key": key}),
        reverse("spaces:space-permissions", kwargs={"key": key}),
        reverse("mailarchive:mail-list", kwargs={"key": key}),
        reverse(
            "mailarchive:message-detail", kwargs={"key": key, "message_pk": message.pk}
        ),
        reverse("mailarchive:feed-token"),
        reverse("mbox:import-list", kwargs={"key": key}),
        reverse("accounts:account-create", kwargs={"key": key}),
        reverse("admin:index"),
        reverse("admin:mailarchive_message_changelist"),
        reverse("admin:mailarchive_message_change", args=[message.pk]),
        reverse("admin:spaces_space_change", args=[actors.space.pk]),
        reverse("admin:auth_user_change", args=[actors.viewer.pk]),
        reverse("admin:auth_user_add"),
    ]
    page = context.new_page()
    reports: list[str] = []
    page.on(
        "console",
        lambda m: (
            reports.append(f"{page.url}: {m.text}")
            if "Content Security Policy" in m.text
            else None
        ),
    )
    log_in(page, live_server.url, "root")
    for address in addresses:
        page.goto(live_server.url + address)
        page.wait_for_load_state("load")
    assert reports == []


def test_language_menu_switches_at_once(actors, live_server, context):
    page = context.new_page()
    log_in(page, live_server.url, "viewer")
    page.goto(live_server.url + reverse("spaces:dashboard"))
    with page.expect_navigation():
        page.select_option("#lang-select", "ja")
    assert page.locator("html").get_attribute("lang") == "ja"
