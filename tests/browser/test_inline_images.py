"""Pictures that HTML mail names by Content-Location, in headless Chromium."""

from __future__ import annotations

import pytest

from tests.browser.fixtures import log_in, page_requests
from tests.mailarchive.test_views import ingest, located_parts_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NATURAL_WIDTHS = (
    "() => Promise.all([...document.querySelectorAll('img')].map("
    " i => new Promise(done => {"
    " if (i.complete) done([i.alt, i.naturalWidth]);"
    " else i.onload = i.onerror = () => done([i.alt, i.naturalWidth]); })))"
)


def open_message(page, base_url: str, message_pk: int):
    """Open a message page as the viewer; return the frame showing its HTML."""
    log_in(page, base_url, "viewer")
    page.goto(f"{base_url}/spaces/SALES/mail/{message_pk}/")
    page.wait_for_load_state("load")
    page.frame_locator("iframe.mail-html").locator("img").first.wait_for(
        state="attached"
    )
    [frame] = [f for f in page.frames if f is not page.main_frame]
    return frame


def test_mhtml_picture_named_by_content_location_loads(
    actors, corpus_dir, live_server, context, outside
):
    """GIVEN the corpus MHTML message, whose HTML shows ``<img src="image1">``
    and whose PNG part has only ``Content-Location: image1`` WHEN a member
    opens it THEN the picture loads from the archive inside the sandboxed
    frame and nothing is requested from any other host."""
    raw = (corpus_dir / "mimekit/messages/multipart-related-mhtml.txt").read_bytes()
    message = ingest(actors.space, raw)
    frame = open_message(context.new_page(), live_server.url, message.pk)

    assert frame.evaluate(NATURAL_WIDTHS) == [["", 400]]
    src = frame.evaluate("() => document.querySelector('img').src")
    assert src.startswith(
        f"{live_server.url}/spaces/SALES/mail/{message.pk}/inline/0/?t="
    )
    assert page_requests(outside.take()) == []


def test_absolute_location_is_served_by_the_archive_not_fetched(
    actors, live_server, context, outside
):
    """GIVEN a saved web page mailed as MHTML whose pictures are named by a
    path relative to the root's file: location and by an absolute http: URL
    WHEN a member opens it THEN both pictures load from the archive, and the
    browser asks no other host for anything (not even the http: URL)."""
    message = ingest(actors.space, located_parts_message())
    frame = open_message(context.new_page(), live_server.url, message.pk)

    assert frame.evaluate(NATURAL_WIDTHS) == [
        ["relative", 1],
        ["absolute", 1],
        ["svg", 0],
        ["script", 0],
    ]
    assert page_requests(outside.take()) == []
