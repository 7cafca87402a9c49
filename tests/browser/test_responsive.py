"""Every page at a phone's, a tablet's and a desktop's width: nothing makes the
page scroll sideways, the navigation folds away on a phone, and the rows of
the mail list and the accounts page (health and actions included) stay in
view. Screenshots at 375 px go to ``MAILARCHIVE_SCREENSHOTS`` (default: the
test's temporary directory) for a person to look at."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from accounts.models import MailAccount
from tests.browser.fixtures import log_in
from tests.mailarchive.test_views import BASE, ingest, raw_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [375, 768, 1280]
LONG_WORD = "Quarterly" * 30


@pytest.fixture
def archive(actors):
    space = actors.space
    root = ingest(
        space,
        raw_message(
            subject=f"Plans for the offsite {LONG_WORD}",
            msgid="root@x",
            sender=f"Someone With A Very Long Name <{'x' * 60}@example.com>",
            body=f"Hello team, see https://example.org/{'path/' * 40}\n",
        ),
    )
    for n in range(1, 6):
        ingest(
            space,
            raw_message(
                subject="Re: Plans for the offsite",
                msgid=f"r{n}@x",
                refs=("root@x",),
                date=BASE + timedelta(hours=n),
                sender=f"Member {n} <member{n}@example.com>",
                html='<table width="700"><tr><td>wide newsletter</td></tr></table>'
                if n == 3
                else None,
            ),
        )
    MailAccount.objects.create(
        space=space,
        name="Sales clone account with a long name",
        protocol="imaps",
        host="mail.some-long-host-name.example.com",
        port=993,
        username="conf-sales@some-long-host-name.example.com",
        password_encrypted="",
        last_error="The server did not answer in time.",
        last_error_kind="storage",
        last_error_detail="storing raw/ab/cd/" + "ab" * 32 + ".eml failed: "
        "No space left on device",
        consecutive_failures=2,
        on_server_count=1234,
        on_server_at=BASE,
        left_on_server=[
            {"server_id": f"1700000000:{n}", "size": 60_000_000, "reason": "too_large"}
            for n in range(3)
        ],
        last_test_at=BASE + timedelta(days=400),
        last_test_ok=True,
        last_test_count=1234,
        index_error="reading raw/ab/cd/" + "ab" * 32 + ".eml failed: I/O error",
    )
    return root


def pages(root) -> list[tuple[str, str]]:
    key = "SALES"
    return [
        ("spaces", "/"),
        ("space-home", f"/spaces/{key}/"),
        ("mail-list", f"/spaces/{key}/mail/"),
        ("conversations", f"/spaces/{key}/mail/?view=threads"),
        ("months", f"/spaces/{key}/mail/months/"),
        ("message", f"/spaces/{key}/mail/{root.pk}/"),
        ("thread", f"/spaces/{key}/mail/threads/{root.thread_id}/"),
        ("search", f"/spaces/{key}/mail/search/?q=plans"),
        ("trash", f"/spaces/{key}/mail/trash/"),
        ("accounts", f"/spaces/{key}/accounts/"),
        ("account-new", f"/spaces/{key}/accounts/new/"),
        ("imports", f"/spaces/{key}/imports/"),
        ("permissions", f"/spaces/{key}/permissions/"),
        ("space-edit", f"/spaces/{key}/edit/"),
        ("time-zone", "/preferences/time-zone/"),
        ("alerts", "/preferences/alerts/"),
        ("password", "/preferences/password/"),
    ]


def sideways(page) -> int:
    """How many px the page scrolls sideways (0: none)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )


def culprits(page) -> list[str]:
    """The innermost elements that reach past the window's right edge."""
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
            && ![...e.children].some(
                c => c.getBoundingClientRect().right > window.innerWidth + 1))
        .slice(0, 5)
        .map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.'))"""
    )


def visit_every_page(context, live_server, username, visited, width, tmp_path):
    """Log in as ``username`` and assert that none of ``visited`` scrolls
    sideways at ``width`` (screenshots at 375 px); returns the page."""
    shots = Path(os.environ.get("MAILARCHIVE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, live_server.url, username)
    wide = {}
    for name, path in visited:
        response = page.goto(live_server.url + path)
        assert response.status == 200, (name, response.status)
        overflow = sideways(page)
        if overflow > 0:
            wide[name] = (overflow, culprits(page))
        if width == 375:
            page.screenshot(path=str(shots / f"{name}-375.png"), full_page=True)
    assert wide == {}
    return page


@pytest.mark.parametrize("width", WIDTHS, ids=["phone", "tablet", "desktop"])
def test_no_page_scrolls_sideways(
    archive, actors, live_server, context, width, tmp_path: Path
):
    page = visit_every_page(
        context, live_server, "spaceadmin", pages(archive), width, tmp_path
    )
    page.goto(live_server.url + "/login/")
    assert sideways(page) <= 0


def site_admin_pages(actors) -> list[tuple[str, str]]:
    """The pages only site admins see, or see with more on them."""
    return [
        ("spaces-site-admin", "/"),
        ("space-home-site-admin", "/spaces/SALES/"),
        ("space-delete", "/spaces/SALES/delete/"),
        ("users", "/site/users/"),
        ("user-new", "/site/users/new/"),
        ("user-password", f"/site/users/{actors.viewer.pk}/password/"),
    ]


@pytest.mark.parametrize("width", WIDTHS, ids=["phone", "tablet", "desktop"])
def test_site_admin_pages_do_not_scroll_sideways(
    archive, actors, live_server, context, width, tmp_path: Path
):
    visit_every_page(
        context, live_server, "root", site_admin_pages(actors), width, tmp_path
    )


def test_phone_folds_navigation_and_keeps_rows_readable(archive, live_server, context):
    page = context.new_page()
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server.url, "spaceadmin")
    page.goto(live_server.url + "/spaces/SALES/mail/")
    nav = page.locator("nav.topnav")
    assert not nav.is_visible()
    page.locator("label.nav-toggle-label").click()
    assert nav.is_visible()
    row = page.locator("tr.mail-row").first
    for cell in ("td.subject", "td.sender", "td.date"):
        box = row.locator(cell).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 376
    page.goto(live_server.url + "/spaces/SALES/accounts/")
    health = page.get_by_text("The archive could not store the mail it fetched")
    assert health.is_visible()
    completeness = page.locator("dl.completeness").first
    box = completeness.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 376
    actions = page.locator("table.table tbody tr").first.locator("a, button")
    assert actions.count() > 1
    for n in range(actions.count()):
        box = actions.nth(n).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 376, n


@pytest.mark.parametrize("width", WIDTHS, ids=["phone", "tablet", "desktop"])
def test_site_report_fits(archive, live_server, context, width):
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, live_server.url, "root")
    response = page.goto(live_server.url + "/site/mail-accounts/")
    assert response.status == 200
    assert page.locator("dl.completeness").count() == 1
    assert sideways(page) <= 0, culprits(page)
