"""A reader's journey through the archive in headless Chromium."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from mailarchive.models import Message
from tests.browser.fixtures import log_in, page_requests
from tests.mailarchive.test_views import BASE, PNG, ingest, raw_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def archive(actors):
    space = actors.space
    for n in range(30):
        ingest(
            space,
            raw_message(
                subject=f"Weekly status {n:02d}",
                msgid=f"status{n}@x",
                date=BASE + timedelta(hours=n),
                sender=f"Member {n % 4} <member{n % 4}@example.com>",
            ),
        )
    ingest(space, raw_message(subject="Plans", msgid="root@x", date=BASE))
    ingest(
        space,
        raw_message(
            subject="Re: Plans",
            msgid="reply@x",
            refs=("root@x",),
            date=BASE + timedelta(minutes=5),
            body="> Hello team.\nThe budget is approved.\n",
        ),
    )
    ingest(
        space,
        raw_message(
            subject="Re: Plans",
            msgid="reply2@x",
            refs=("root@x", "reply@x"),
            date=BASE + timedelta(minutes=9),
        ),
    )
    ingest(
        space,
        raw_message(
            subject="会議の予定",
            msgid="kaigi@x",
            body="明日の定例会議は十時からです。\n",
            date=BASE + timedelta(days=3),
        ),
    )
    ingest(
        space,
        raw_message(
            subject="Quarterly report",
            msgid="report@x",
            date=BASE + timedelta(days=4),
            attachments=(("Bericht über Q1.pdf", "application/pdf", b"%PDF-1.4 q1"),),
        ),
    )
    return space


def list_subjects(page) -> list[str]:
    return page.locator("table.mail-table td.subject a").all_inner_texts()


def test_browse_page_read_thread_search_download_delete_restore(
    actors, archive, live_server, context, outside, tmp_path: Path
):
    page = context.new_page()
    log_in(page, live_server.url, "spaceadmin")

    page.get_by_role("link", name="Sales").first.click()
    page.locator("ul.action-list").get_by_role("link", name="Mail", exact=True).click()
    page.wait_for_url(re.compile(r"/spaces/SALES/mail/$"))

    page.select_option("#id_size", "25")
    page.get_by_role("button", name="Show").click()
    first = list_subjects(page)
    assert len(first) == 25 and first[0] == "Quarterly report"
    page.locator("nav.pager a[rel=next]").click()
    second = list_subjects(page)
    assert len(second) == 35 - 25
    everything = first + second
    assert len(set(everything)) == 35 - 1  # two replies share a subject
    page.locator("nav.pager a[rel=prev]").click()
    assert list_subjects(page) == first

    page.goto(live_server.url + "/spaces/SALES/mail/?month=2024-03&size=200")
    page.get_by_role("link", name="Re: Plans").first.click()
    assert page.locator(".body-text").inner_text().strip() == "Hello team."
    page.get_by_role("link", name="Whole thread").click()
    tree = page.locator("ol.thread-tree li")
    assert tree.count() == 3
    tree.nth(0).get_by_role("link").click()
    assert page.locator("h1.message-subject").inner_text() == "Plans"
    page.locator("a.thread-next").click()
    assert "The budget is approved." in page.locator(".body-text").inner_text()

    page.fill("#top-search-q", "budget")
    page.press("#top-search-q", "Enter")
    hits = page.locator("li.hit")
    assert hits.count() == 1
    assert hits.first.locator("mark").first.inner_text().lower() == "budget"
    page.fill("#top-search-q", "会議")
    page.press("#top-search-q", "Enter")
    assert page.locator("li.hit a.hit-subject").inner_text() == "会議の予定"
    assert page.locator("li.hit mark").first.inner_text() == "会議"
    page.locator("li.hit a.hit-subject").click()
    assert page.locator("h1.message-subject").inner_text() == "会議の予定"

    page.goto(live_server.url + "/spaces/SALES/mail/")
    page.get_by_role("link", name="Quarterly report").click()
    with page.expect_download() as caught:
        page.locator("a.attachment-link").click()
    download = caught.value
    assert download.suggested_filename == "Bericht über Q1.pdf"
    saved = tmp_path / "download.pdf"
    download.save_as(saved)
    assert saved.read_bytes() == b"%PDF-1.4 q1"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".message-actions button.danger").click()
    assert "was moved to the trash" in page.locator("ul.flash").inner_text()
    page.goto(live_server.url + "/spaces/SALES/mail/")
    assert "Quarterly report" not in list_subjects(page)
    page.goto(live_server.url + "/spaces/SALES/mail/trash/")
    page.locator("input[name=messages]").first.check()
    page.get_by_role("button", name="Restore selected").click()
    assert "1 message restored." in page.locator("ul.flash").inner_text()
    page.goto(live_server.url + "/spaces/SALES/mail/")
    assert list_subjects(page)[0] == "Quarterly report"
    assert Message.objects.filter(deleted_at__isnull=False).count() == 0
    assert page_requests(outside.take()) == []


def test_inline_pictures_load_and_remote_content_waits_for_the_reader(
    actors, live_server, context, outside
):
    """GIVEN an HTML message with a cid: picture and remote pictures WHEN a
    member opens it THEN the cid: picture loads from the archive in the
    sandboxed frame and nothing is requested from outside; WHEN the member
    clicks "Show remote content" THEN (and only then) the remote pictures are
    requested."""
    message = ingest(
        actors.space,
        raw_message(
            subject="Pictures",
            msgid="pics@x",
            html='<p><img src="cid:chart@x" alt="chart">'
            '<img src="http://remote.invalid/tracker.png">'
            '<img src="https://remote.invalid/secure.png"></p>',
            inline_images=(("chart@x", "image/png", PNG),),
        ),
    )
    page = context.new_page()
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/spaces/SALES/mail/{message.pk}/")
    page.wait_for_load_state("load")
    frame = page.frame_locator("iframe.mail-html")
    frame.locator("img[alt=chart]").wait_for(state="attached")
    width = page.frames[1].evaluate(
        "() => new Promise(done => {"
        " const i = document.querySelector('img[alt=chart]');"
        " if (i.complete) done(i.naturalWidth);"
        " else i.onload = i.onerror = () => done(i.naturalWidth); })"
    )
    assert width == 1
    assert page_requests(outside.take()) == []
    page.get_by_role("link", name="Show remote content").click()
    page.wait_for_load_state("load")
    page.frames[1].wait_for_load_state("load")
    requested = page_requests(outside.take())
    assert "GET http://remote.invalid/tracker.png" in requested
    assert "CONNECT remote.invalid:443" in requested
