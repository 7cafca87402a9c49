"""Hostile mail opened in Chromium: nothing runs, nothing is fetched from outside.

Every payload tries, if it ever runs, to raise a dialog, to mark the archive's
window (a global flag, its name and its title) and to call out to a remote
host; the recording proxy of ``conftest`` sees any request that leaves, even
from the sandboxed frame. The corpus of real-world messages gets the same
check.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest

from tests.browser.fixtures import log_in, page_requests
from tests.mailarchive.test_views import ingest, raw_message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JS = (
    "top.__pwned=1;parent.__pwned=1;top.name='pwned';"
    "top.document.title='pwned';alert(1);fetch('http://remote.invalid/xss')"
)
SVG_JS = base64.b64encode(
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}"/>'.encode()
).decode()
HTML_JS = base64.b64encode(f"<script>{JS}</script>".encode()).decode()

# (name, HTML body). Each is opened as the HTML part of its own message.
HTML_PAYLOADS = [
    ("script", f"<p>hi</p><script>{JS}</script>"),
    ("img-onerror", f'<img src="x" onerror="{JS}">'),
    ("body-onload", f'<body onload="{JS}"><p>body</p></body>'),
    ("svg-onload", f'<svg onload="{JS}"><circle r="5"/></svg>'),
    ("svg-script", f"<svg><script>{JS}</script></svg>"),
    ("svg-animate", f'<svg><animate onbegin="{JS}" attributeName="x" dur="1s"/></svg>'),
    ("svg-use", '<svg><use href="http://remote.invalid/sprite.svg#a"/></svg>'),
    ("javascript-link", f'<a href="javascript:{JS}">click me</a>'),
    ("data-link", f'<a href="data:text/html;base64,{HTML_JS}">click me</a>'),
    ("data-svg-image", f'<img src="data:image/svg+xml;base64,{SVG_JS}">'),
    ("iframe-js", f'<iframe src="javascript:{JS}"></iframe>'),
    ("iframe-srcdoc", f'<iframe srcdoc="<script>{JS}</script>"></iframe>'),
    ("iframe-remote", '<iframe src="http://remote.invalid/frame"></iframe>'),
    ("object", f'<object data="javascript:{JS}"></object>'),
    ("embed", f'<embed src="data:image/svg+xml;base64,{SVG_JS}">'),
    ("meta-refresh-js", f'<meta http-equiv="refresh" content="0;url=javascript:{JS}">'),
    (
        "meta-refresh-remote",
        '<meta http-equiv="refresh" content="0;url=http://remote.invalid/refresh">',
    ),
    (
        "form",
        '<form action="http://remote.invalid/steal" method="post">'
        '<input name="p" value="x"><button id="go">Go</button></form>'
        '<form><button formaction="http://remote.invalid/formaction">B</button></form>',
    ),
    ("input-autofocus", f'<input autofocus onfocus="{JS}">'),
    (
        "details-ontoggle",
        f'<details open ontoggle="{JS}"><summary>s</summary></details>',
    ),
    (
        "style-remote",
        "<style>@import 'http://remote.invalid/imp.css';"
        "body{background:url(http://remote.invalid/bg.png)}</style><p>styled</p>",
    ),
    ("link-stylesheet", '<link rel="stylesheet" href="http://remote.invalid/s.css">'),
    (
        "inline-style-url",
        '<div style="background-image:url(http://remote.invalid/i.png)'
        ';width:10px;height:10px">x</div>',
    ),
    ("css-expression", f'<div style="width: expression({JS})">x</div>'),
    (
        "css-escape",
        '<div style="background:u\\72l(http://remote.invalid/esc.png)">x</div>',
    ),
    (
        "base-href",
        '<base href="http://remote.invalid/"><img src="relative.png">'
        '<a href="relative.html">rel</a>',
    ),
    ("remote-img", '<img src="http://remote.invalid/pixel.gif">'),
    ("protocol-relative", '<img src="//remote.invalid/pr.png">'),
    ("srcset", '<img src="cid:none" srcset="http://remote.invalid/2x.png 2x">'),
    (
        "table-background",
        '<table background="http://remote.invalid/t.png"><tr><td>t</td></tr></table>',
    ),
    (
        "video-poster",
        '<video poster="http://remote.invalid/v.png"'
        ' src="http://remote.invalid/v.mp4" autoplay></video>',
    ),
    ("audio", '<audio src="http://remote.invalid/a.mp3" autoplay></audio>'),
    (
        "entity-javascript",
        '<a href="&#106;avascript:alert(1)">e</a>'
        '<a href="&#x6A;&#x61;vascript&#x3A;alert(1)">x</a>',
    ),
    (
        "tab-javascript",
        '<a href="jav&#x09;ascript:alert(1)">t</a>'
        '<a href=" javascript:alert(1)">s</a><IMG SRC=JaVaScRiPt:alert(1)>',
    ),
    ("nested-script", f"<scr<script>ipt>{JS}</scr</script>ipt>"),
    (
        "noscript-mxss",
        f'<noscript><p title="</noscript><img src=x onerror="{JS}">"></noscript>',
    ),
    (
        "math-mxss",
        f'<math><mtext><table><mglyph><style><img src=x onerror="{JS}">'
        "</style></mglyph></table></mtext></math>",
    ),
    ("template", f"<template><script>{JS}</script></template>"),
    ("comment-break", f"<!--><script>{JS}</script>-->"),
    ("xml-cdata", f"<![CDATA[<script>{JS}</script>]]>"),
]


def raw_html(html: str, *, charset: str, transfer: str) -> bytes:
    """A single-part HTML message in ``charset`` with ``transfer`` encoding."""
    data = html.encode(charset)
    if transfer == "base64":
        body = base64.encodebytes(data)
    else:
        import quopri

        body = quopri.encodestring(data)
    head = (
        "From: Mallory <mallory@example.com>\r\nTo: team@example.com\r\n"
        f"Subject: encoded {charset} {transfer}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: text/html; charset="{charset}"\r\n'
        f"Content-Transfer-Encoding: {transfer}\r\n\r\n"
    )
    return head.encode() + body


ENCODED_PAYLOADS = [
    (
        "utf-7",
        raw_html(
            f'<script>{JS}</script><img src=x onerror="{JS}">',
            charset="utf-7",
            transfer="quoted-printable",
        ),
    ),
    (
        "base64",
        raw_html(f'<img src=x onerror="{JS}">', charset="utf-8", transfer="base64"),
    ),
    (
        "quoted-printable",
        raw_html(
            f'<svg onload="{JS}"></svg>', charset="utf-8", transfer="quoted-printable"
        ),
    ),
]


@dataclass
class Watch:
    """What a page did that it must not: dialogs, console output."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


def watch(page) -> Watch:
    seen = Watch()

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: seen.console.append(message.text))
    return seen


def harm_done(page, seen: Watch, outside, title: str, address: str) -> list[str]:
    """Every sign that something ran or reached out, as readable strings."""
    page.wait_for_load_state("load")
    for frame in page.frames[1:]:
        frame.wait_for_load_state("load")
    signs = [f"dialog: {m}" for m in seen.dialogs]
    state = page.evaluate(
        "() => [window.__pwned === undefined, window.name, document.title]"
    )
    if not state[0]:
        signs.append("global flag set")
    if state[1]:
        signs.append(f"window.name = {state[1]!r}")
    if state[2] != title:
        signs.append(f"title = {state[2]!r}")
    if page.url != address:
        signs.append(f"navigated to {page.url}")
    for frame in page.frames[1:]:
        if frame.url != "about:srcdoc":
            signs.append(f"frame navigated to {frame.url}")
    signs += [f"request: {r}" for r in page_requests(outside.take())]
    return signs


def open_message(page, base_url: str, message) -> tuple[str, str]:
    address = f"{base_url}/spaces/SALES/mail/{message.pk}/"
    page.goto(address)
    return address, page.title()


def test_hostile_html_never_runs_and_never_reaches_out(
    actors, live_server, context, outside
):
    messages = [
        (name, ingest(actors.space, raw_message(subject=f"xss {name}", html=html)))
        for name, html in HTML_PAYLOADS
    ]
    messages += [(name, ingest(actors.space, raw)) for name, raw in ENCODED_PAYLOADS]
    page = context.new_page()
    seen = watch(page)
    log_in(page, live_server.url, "viewer")
    outside.take()
    failures: dict[str, list[str]] = {}
    for name, message in messages:
        seen.dialogs.clear()
        address, title = open_message(page, live_server.url, message)
        frames = page.frames[1:]
        assert frames, f"{name}: the HTML body is not framed"
        for frame in frames:
            for link in frame.locator("a, button").all():
                link.click(modifiers=[], no_wait_after=True, timeout=2_000)
        signs = harm_done(page, seen, outside, title, address)
        if signs:
            failures[name] = signs
    assert failures == {}


def test_hostile_headers_and_file_names_stay_text(
    actors, live_server, context, outside
):
    """Subject, sender and attachment name are shown on the archive's own pages
    (list, message, search with highlighting): they must stay text."""
    evil = f'<img src=x onerror="{JS}"><script>{JS}</script>'
    message = ingest(
        actors.space,
        raw_message(
            subject=f"Budget {evil}",
            sender=f'"<svg onload={JS}>" <mallory@example.com>',
            body=f"budget {evil}\n",
            attachments=((f'"><svg onload="{JS}">.txt', "text/plain", b"x"),),
        ),
    )
    page = context.new_page()
    seen = watch(page)
    log_in(page, live_server.url, "viewer")
    outside.take()
    address, title = open_message(page, live_server.url, message)
    assert evil in page.locator("h1.message-subject").inner_text()
    assert harm_done(page, seen, outside, title, address) == []
    for path in ("/spaces/SALES/mail/", "/search/?q=budget"):
        page.goto(live_server.url + path)
        assert harm_done(page, seen, outside, page.title(), page.url) == []
    assert page.locator("li.hit mark").count() >= 2
    assert evil in page.locator("li.hit a.hit-subject").inner_text()


def test_corpus_messages_run_nothing_in_chromium(
    actors, live_server, context, outside, corpus_dir
):
    messages = [
        (path.name, ingest(actors.space, path.read_bytes()))
        for path in sorted((corpus_dir / "mimekit" / "messages").iterdir())
    ]
    page = context.new_page()
    seen = watch(page)
    log_in(page, live_server.url, "viewer")
    outside.take()
    failures = {}
    for name, message in messages:
        seen.dialogs.clear()
        address, title = open_message(page, live_server.url, message)
        signs = harm_done(page, seen, outside, title, address)
        if signs:
            failures[name] = signs
    assert failures == {}
