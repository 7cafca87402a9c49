"""Mail frames sized to their content by the server's estimate, in Chromium.

The frame stays sandboxed without scripts or its own origin; nothing inside
reports its size. A one-line mail gets a short frame, a long one a frame tall
enough that it does not scroll inside the page, at phone and desktop widths.
"""

from __future__ import annotations

import pytest

from tests.browser.fixtures import log_in
from tests.browser.test_xss import JS, harm_done, watch
from tests.mailarchive.test_views import ingest, raw_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = "".join(
    f"<p>Paragraph {n}: the quarterly numbers are in, and they look good. "
    "Every region grew, some more than expected, and the forecast holds.</p>"
    for n in range(120)
)
TABLE = (
    '<table width="600"><tr><td><img src="cid:none" width="600" height="300"></td>'
    "</tr><tr><td>Newsletter of the month with a wide layout.</td></tr></table>"
)


def frame_box(page) -> dict[str, float]:
    """The frame's height on the page and its document's own scroll height."""
    frame_element = page.locator("iframe.mail-html")
    outer = frame_element.evaluate("f => f.getBoundingClientRect().height")
    frame = page.frames[1]
    frame.wait_for_load_state("load")
    inner = frame.evaluate(
        "() => [document.documentElement.scrollHeight,"
        " document.documentElement.clientHeight]"
    )
    return {"outer": outer, "scroll": inner[0], "client": inner[1]}


@pytest.mark.parametrize("width", [375, 768, 1280], ids=["phone", "tablet", "desktop"])
def test_frames_fit_short_and_long_mail(actors, live_server, context, outside, width):
    short = ingest(
        actors.space, raw_message(subject="Short", html="<p>Thanks, see you.</p>")
    )
    long = ingest(actors.space, raw_message(subject="Long", html=LONG))
    table = ingest(actors.space, raw_message(subject="Table", html=TABLE))
    hostile = ingest(
        actors.space,
        raw_message(subject="Hostile", html=f"<p>x</p><script>{JS}</script>"),
    )
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 800})
    seen = watch(page)
    log_in(page, live_server.url, "viewer")
    outside.take()

    page.goto(f"{live_server.url}/spaces/SALES/mail/{short.pk}/")
    box = frame_box(page)
    assert box["outer"] < 120, box
    assert box["scroll"] <= box["client"] + 1, box
    page.screenshot(path=f"/tmp/read_shots/frame-short-{width}.png", full_page=True)

    for message in (long, table):
        page.goto(f"{live_server.url}/spaces/SALES/mail/{message.pk}/")
        box = frame_box(page)
        assert box["scroll"] <= box["client"] + 1, (message.subject, box)
        assert box["outer"] <= box["scroll"] * 1.6 + 80, (message.subject, box)
    page.screenshot(path=f"/tmp/read_shots/frame-long-{width}.png")

    address = f"{live_server.url}/spaces/SALES/mail/{hostile.pk}/"
    page.goto(address)
    sandbox = page.locator("iframe.mail-html").get_attribute("sandbox")
    assert sandbox == "allow-popups allow-popups-to-escape-sandbox"
    assert harm_done(page, seen, outside, page.title(), address) == []
