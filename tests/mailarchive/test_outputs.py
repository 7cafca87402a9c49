"""Every output the archive writes, against every character mail may hold.

Mail carries anything: C0 and C1 controls, bytes that decode to lone
surrogates, U+FFFE and U+FFFF, astral characters, markup. The feed (XML), the
JSON endpoints, the pages and the file headers must each stay well-formed and
must never turn mail text into markup.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import unquote
from xml.dom import minidom
from xml.etree import ElementTree

import pytest
from django.http import HttpResponse
from django.urls import reverse

from mailarchive import feeds
from mailarchive.feeds import xml_text
from mailarchive.imports import import_job_create
from mailarchive.models import Attachment, ImportJob, Message
from mailarchive.textrender import excerpt
from mailarchive.views.common import file_headers
from tests.conftest import client_for
from tests.mailarchive.test_views import BASE, ingest, raw_message, url

ATOM = "{http://www.w3.org/2005/Atom}"
SCRIPT = '<script>alert("feed")</script><b onmouseover="x()">bold</b>'
LATIN = "".join(map(chr, range(0x100)))
SURROGATES = "".join(chr(c) for c in range(0xD800, 0xE000))
SPECIALS = "\ufdd0\ufeff\ufffd\ufffe\uffff\U0001f4e7\U0001fffe\U000e0001\U0010ffff"
# What a database can hold: everything but NUL and lone surrogates.
STORABLE = LATIN.replace("\x00", "") + SPECIALS


def every_code_point(step: int = 0x10000) -> list[str]:
    """All of U+0000..U+10FFFF, in pieces of ``step`` code points."""
    return [
        "".join(chr(c) for c in range(start, min(start + step, 0x110000)))
        for start in range(0, 0x110000, step)
    ]


def as_parsed(text: str) -> str:
    """``text`` as an XML parser hands it back: CR and CRLF read as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_feed(content: bytes) -> ElementTree.Element:
    """The feed's root; fails the test unless both parsers accept it."""
    minidom.parseString(content)
    return ElementTree.fromstring(content)


def assert_no_markup_from_mail(root: ElementTree.Element) -> None:
    names = {element.tag.rsplit("}", 1)[-1] for element in root.iter()}
    assert names <= {
        "feed",
        "title",
        "subtitle",
        "link",
        "id",
        "updated",
        "entry",
        "published",
        "author",
        "name",
        "summary",
    }


@pytest.fixture
def in_memory_feed(actors, monkeypatch):
    """Serve the feed of ``actors.space`` from unsaved messages (any text at all,
    lone surrogates included, which no database would store)."""

    def serve(messages: list[Message]) -> HttpResponse:
        monkeypatch.setattr(feeds, "feed_items", lambda space: messages)
        return client_for(actors, "viewer").get(
            reverse("mailarchive:feed", kwargs={"key": "SALES"})
        )

    return serve


def unsaved(pk: int, *, subject: str, sender: str, body: str) -> Message:
    message = Message(
        pk=pk,
        subject=subject,
        from_name=sender,
        from_address="x@example.com",
        date=BASE + timedelta(minutes=pk),
    )
    message.body_start = body
    return message


@pytest.mark.django_db
def test_feed_carries_every_code_point_in_subject_and_sender(in_memory_feed):
    """GIVEN messages whose subjects and senders hold every code point from
    U+0000 to U+10FFFF WHEN the feed is drawn THEN it is well-formed XML and
    each title holds every character XML can carry, in order."""
    pieces = every_code_point()
    messages = [
        unsaved(n + 1, subject=piece, sender=piece[::-1], body=piece)
        for n, piece in enumerate(pieces)
    ]
    response = in_memory_feed(messages)
    assert response.status_code == 200
    root = parse_feed(response.content)
    titles = [e.findtext(f"{ATOM}title") for e in root.findall(f"{ATOM}entry")]
    expected = [as_parsed(xml_text(f"{piece} — {piece[::-1]}")) for piece in pieces]
    assert titles == expected
    assert sum(len(t) for t in titles) > 2 * (0x110000 - 0x800 - 0x100)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [LATIN, SURROGATES, SPECIALS, LATIN + SURROGATES + SPECIALS + SCRIPT],
    ids=["latin-1", "surrogates", "specials", "all"],
)
def test_feed_body_of_any_characters_is_plain_text(in_memory_feed, text):
    response = in_memory_feed([unsaved(1, subject=text, sender=text, body=text)])
    assert response.status_code == 200
    root = parse_feed(response.content)
    assert_no_markup_from_mail(root)
    summary = root.find(f"{ATOM}entry/{ATOM}summary")
    assert summary is not None
    assert summary.get("type") == "text"
    assert summary.text == as_parsed(xml_text(excerpt(text, feeds.SUMMARY_LENGTH)))
    author = root.findtext(f"{ATOM}entry/{ATOM}author/{ATOM}name")
    assert author == as_parsed(xml_text(text))


@pytest.mark.django_db
def test_feed_of_stored_mail_with_controls_and_markup_parses(actors):
    """GIVEN stored messages whose subject, sender and body hold every
    character a database keeps (controls, U+FFFE, U+FFFF, astral) and a body
    with script WHEN the feed is fetched THEN it parses and the script
    arrives as text, never as an element."""
    message = ingest(actors.space, raw_message(subject="x", msgid="ctl@x"))
    Message.objects.filter(pk=message.pk).update(
        subject="Subject " + STORABLE,
        from_name=("Sender " + STORABLE)[:300],
        text_body=f"{SCRIPT}\n{STORABLE}\n",
    )
    space = actors.space
    space.name = "Space " + STORABLE[:100]
    space.description = STORABLE
    space.save()
    response = client_for(actors, "viewer").get(
        reverse("mailarchive:feed", kwargs={"key": "SALES"})
    )
    assert response.status_code == 200
    root = parse_feed(response.content)
    assert_no_markup_from_mail(root)
    entry = root.find(f"{ATOM}entry")
    sender = ("Sender " + STORABLE)[:300]
    title = entry.findtext(f"{ATOM}title")
    assert title == as_parsed(xml_text(f"Subject {STORABLE} — {sender}"))
    assert all(c in title for c in "\x7f\x85\x9f\xa0\U0010ffff")
    summary = entry.find(f"{ATOM}summary")
    assert summary.get("type") == "text"
    assert summary.text.startswith(SCRIPT)


@pytest.mark.django_db
def test_pages_of_a_message_of_any_characters_answer(actors):
    """The message page, the list, a thread, a search and the raw source of a
    message holding every storable character are well-formed UTF-8 pages."""
    message = ingest(actors.space, raw_message(subject="x", msgid="pages@x"))
    Message.objects.filter(pk=message.pk).update(
        subject="Odd " + STORABLE,
        from_name=STORABLE[:300],
        text_body=f"Odd {SCRIPT}\n{STORABLE}\n",
    )
    client = client_for(actors, "viewer")
    addresses = [
        url("message-detail", key="SALES", message_pk=message.pk),
        url("mail-list", key="SALES"),
        url("thread-detail", key="SALES", thread_id=message.thread_id),
        url("space-search", key="SALES") + "?q=Odd",
        reverse("mailarchive:search") + "?q=Odd",
    ]
    for address in addresses:
        response = client.get(address)
        assert response.status_code == 200, address
        page = response.content.decode("utf-8")
        assert "<script>alert" not in page, address


@pytest.mark.django_db
def test_raw_source_of_every_byte_is_served(actors):
    raw = (
        b"From: a@example.com\r\nSubject: bytes\r\nMessage-ID: <bytes@x>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + bytes(range(256)) + b"\r\n"
    )
    message = ingest(actors.space, raw)
    client = client_for(actors, "viewer")
    shown = client.get(url("message-raw", key="SALES", message_pk=message.pk))
    assert shown.status_code == 200
    assert shown["Content-Type"] == "text/plain; charset=utf-8"
    shown.content.decode("utf-8")
    download = client.get(
        url("message-raw-download", key="SALES", message_pk=message.pk)
    )
    assert b"".join(download.streaming_content) == raw
    page = client.get(url("message-detail", key="SALES", message_pk=message.pk))
    assert page.status_code == 200


@pytest.mark.django_db
def test_import_progress_json_carries_any_text(actors, tmp_path):
    path = tmp_path / "odd.mbox"
    path.write_bytes(b"From a@b Mon Jan  1 00:00:00 2024\nSubject: a\n\nx\n")
    job = import_job_create(
        space=actors.space,
        path=path,
        file_name="odd " + STORABLE[:200],
        origin="command",
        requested_by=None,
    )
    ImportJob.objects.filter(pk=job.pk).update(error=STORABLE + SCRIPT)
    response = client_for(actors, "admin").get(
        reverse("mbox:import-status", kwargs={"key": "SALES", "import_id": job.pk})
    )
    assert response.status_code == 200
    assert json.loads(response.content)["error"] == STORABLE + SCRIPT
    page = client_for(actors, "admin").get(job.get_absolute_url())
    assert page.status_code == 200
    assert "<script>alert" not in page.content.decode()


NAMES = [
    "report.pdf",
    "evil\r\nSet-Cookie: a=b.pdf",
    'quote" ; filename="other.exe',
    "Bericht über Q1 — 報告書.pdf",
    "\U0001f4e7 mail.eml",
    LATIN,
    SURROGATES[:16] + ".bin",
    SPECIALS,
    "",
]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_file_names_become_one_safe_header(name):
    """GIVEN any file name WHEN it names a download THEN Content-Disposition is
    one line of printable ASCII whose filename* decodes back to the name."""
    response = HttpResponse()
    file_headers(response, filename=name, disposition="attachment")
    header = response["Content-Disposition"]
    assert header.isascii() and header.isprintable()
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert not set(fallback) & set('"\\;\r\n')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert ";" not in encoded and " " not in encoded
    expected = name.encode("utf-8", "replace").decode("utf-8")
    assert unquote(encoded, errors="strict") == expected


@pytest.mark.django_db
def test_attachment_named_with_line_breaks_downloads(actors):
    message = ingest(
        actors.space,
        raw_message(
            subject="files",
            msgid="names@x",
            attachments=(("plain.txt", "text/plain", b"hello"),),
        ),
    )
    part = Attachment.objects.get(message=message)
    part.filename = "a\r\nX-Injected: 1\x1b\u2028.txt"
    part.save()
    response = client_for(actors, "viewer").get(
        url(
            "attachment-download",
            key="SALES",
            message_pk=message.pk,
            position=part.position,
        )
    )
    assert response.status_code == 200
    assert "X-Injected" not in response.headers
    assert "\n" not in response["Content-Disposition"]
