"""Every output of the archive, on the whole shared corpus plus adversarial mail.

The corpus (``MAILARCHIVE_TEST_CORPUS``: its single messages and its mbox
files) and messages whose subject, sender and attachment names hold C0
controls, U+FFFE, bytes that decode to lone surrogates, ``\\x16``, right-to-left
marks and thousands of characters go in through ingest and the import. Then
the feed, the pages (list, message, thread, search), the API's JSON, the
import's JSON, every mbox export (space, thread, search; page and API) and
every download's ``Content-Disposition`` must stay well-formed, and the
exports must give back the archived bytes exactly.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from mailarchive.mbox import iter_mbox
from mailarchive.models import Attachment, ImportJob, Message, Thread
from mailarchive.services import message_ingest
from tests.api.conftest import bearer, token_for
from tests.conftest import client_for
from tests.mailarchive.test_outputs import assert_no_markup_from_mail, parse_feed

pytestmark = pytest.mark.django_db

C0 = "".join(map(chr, range(0x20)))
RTL = "\u200f\u202e\u2067\u061c"
# Characters no HTML page may carry as such (parse errors, or worse in XML).
FORBIDDEN_IN_PAGES = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def _word(text: str) -> bytes:
    return b"=?utf-8?b?" + base64.b64encode(text.encode("utf-8")) + b"?="


def adversarial_messages() -> list[bytes]:
    """Messages whose headers hold what broken or hostile mailers send."""
    header_values = [
        # Raw controls in the header itself (no CR or LF: those end it).
        b"controls " + bytes(c for c in range(0x20) if c not in (10, 13)),
        # The same controls, and NUL, from an encoded word.
        b"encoded controls " + _word(C0),
        b"specials " + _word("\ufffe\uffff\ufeff x"),
        # UTF-8 of a lone surrogate, raw and in an encoded word.
        b"surrogate raw \xed\xa0\x80 \xed\xbf\xbf end",
        b"surrogate word =?utf-8?b?" + base64.b64encode(b"\xed\xa0\x80") + b"?=",
        b"handshake \x16\x03\x01 bytes",
        b"rtl " + RTL.encode("utf-8") + b" evil.exe",
        b"long " + b"Quarterly " * 2000,
        b"latin1 bytes \xff\xfe\xe9",
    ]
    raws = []
    for n, value in enumerate(header_values):
        raws.append(
            b"From: =?utf-8?b?"
            + base64.b64encode(f"Sender {n} {C0}{RTL}".encode())
            + b"?= <odd"
            + str(n).encode()
            + b"@example.com>\r\nTo: team@example.com\r\nSubject: "
            + value
            + b"\r\nMessage-ID: <odd"
            + str(n).encode()
            + b"@example.com>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n'
            b"\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"searchable adversarial body " + value + b"\r\n--b\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename*=utf-8''"
            + (b"%00%16%0D%0Aname%E2%80%AE%ED%A0%80" + str(n).encode() + b".txt")
            + b"\r\n\r\nfile\r\n--b--\r\n"
        )
    return raws


@pytest.fixture
def archive(actors, corpus_dir: Path) -> dict[int, bytes]:
    """The corpus and the adversarial mail archived in SALES: raw by id."""
    raws = [p.read_bytes() for p in sorted((corpus_dir / "mimekit/messages").glob("*"))]
    raws += adversarial_messages()
    archived: dict[int, bytes] = {}
    for raw in raws:
        result = message_ingest(space_id=actors.space.pk, raw=raw, source="import")
        archived[result.message_pk] = raw
    for path in sorted((corpus_dir / "mimekit/mbox").glob("*.mbox.txt")):
        call_command("importmbox", "--space", "SALES", str(path), stdout=io.StringIO())
    for message in Message.objects.filter(space=actors.space).exclude(pk__in=archived):
        archived[message.pk] = message_raw(message)
    assert len(archived) > len(raws)
    return archived


def message_raw(message: Message) -> bytes:
    from mailarchive.storage import blob_read

    return blob_read(message.raw_name)


def assert_page(response, address: str) -> str:
    assert response.status_code == 200, address
    page = response.content.decode("utf-8")
    assert "<script>alert" not in page
    found = FORBIDDEN_IN_PAGES.search(page)
    assert found is None, (address, repr(page[found.start() - 60 : found.end() + 20]))
    return page


def assert_one_safe_header(value: str) -> None:
    assert value.isascii() and value.isprintable(), repr(value)


def test_feed_of_the_whole_corpus_parses(actors, archive):
    client = client_for(actors, "viewer")
    response = client.get(reverse("mailarchive:feed", kwargs={"key": "SALES"}))
    assert response.status_code == 200
    root = parse_feed(response.content)
    assert_no_markup_from_mail(root)


def test_every_page_of_the_whole_corpus_is_clean(actors, archive):
    """Every message page, every thread page, every page of the list and of a
    search that finds everything: UTF-8, no characters HTML forbids."""
    client = client_for(actors, "viewer")
    for pk in archive:
        address = reverse(
            "mailarchive:message-detail", kwargs={"key": "SALES", "message_pk": pk}
        )
        assert_page(client.get(address), address)
    for thread_id in Thread.objects.filter(space=actors.space).values_list(
        "pk", flat=True
    ):
        address = reverse(
            "mailarchive:thread-detail", kwargs={"key": "SALES", "thread_id": thread_id}
        )
        assert_page(client.get(address), address)
    for name, query in [
        ("mailarchive:mail-list", ""),
        ("mailarchive:mail-list", "view=threads"),
        ("mailarchive:space-search", "q=adversarial"),
    ]:
        address = reverse(name, kwargs={"key": "SALES"}) + "?" + query
        for page_number in range(1, 20):
            response = client.get(f"{address}&page={page_number}")
            if response.status_code == 404:
                break
            assert_page(response, address)
    assert_page(
        client.get(reverse("mailarchive:search") + "?q=adversarial"), "search-all"
    )


def test_json_of_the_whole_corpus_is_strict_utf8(actors, archive):
    """The API's lists, messages, threads and searches, and the import's JSON."""
    client = bearer(token_for(actors.viewer))
    addresses = [
        reverse("api:message-list", kwargs={"key": "SALES"}) + "?page_size=100",
        reverse("api:space-search", kwargs={"key": "SALES"}) + "?q=adversarial",
        reverse("api:search") + "?q=adversarial",
    ]
    addresses += [
        reverse("api:message-detail", kwargs={"key": "SALES", "id": pk})
        for pk in archive
    ]
    addresses += [
        reverse("api:thread-detail", kwargs={"key": "SALES", "id": pk})
        for pk in Thread.objects.filter(space=actors.space).values_list("pk", flat=True)
    ]
    for address in addresses:
        response = client.get(address)
        assert response.status_code == 200, (address, response.content[:300])
        text = response.content.decode("utf-8")
        json.loads(text)
        assert not re.search(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}", text), address
    admin = client_for(actors, "admin")
    for job in ImportJob.objects.filter(space=actors.space):
        response = admin.get(
            reverse("mbox:import-status", kwargs={"key": "SALES", "import_id": job.pk})
        )
        json.loads(response.content.decode("utf-8"))


def _exported(response) -> list[bytes]:
    data = b"".join(response.streaming_content)
    return [entry.raw for entry in iter_mbox(io.BytesIO(data), variant="mboxrd")]


def as_in_mbox(raw: bytes) -> bytes:
    """What an mbox gives back for ``raw``: a message without a final line
    break gains one (mbox.py documents it)."""
    return raw if raw.endswith(b"\n") else raw + b"\n"


def test_every_mbox_export_gives_the_archived_bytes_back(actors, archive):
    """Space, thread and search exports, on the pages and in the API, hold
    exactly the archived bytes, and name their files in one safe header."""
    client = client_for(actors, "viewer")
    api = bearer(token_for(actors.viewer))
    space = [
        client.get(reverse("mbox:export-space", kwargs={"key": "SALES"})),
        api.get(reverse("api:space-export", kwargs={"key": "SALES"})),
    ]
    for response in space:
        assert response.status_code == 200
        assert_one_safe_header(response["Content-Disposition"])
        assert sorted(_exported(response)) == sorted(map(as_in_mbox, archive.values()))
    for thread in Thread.objects.filter(space=actors.space):
        expected = sorted(
            as_in_mbox(archive[pk])
            for pk in Message.objects.filter(thread=thread).values_list("pk", flat=True)
        )
        for response in (
            client.get(
                reverse(
                    "mbox:export-thread",
                    kwargs={"key": "SALES", "thread_id": thread.pk},
                )
            ),
            api.get(
                reverse("api:thread-export", kwargs={"key": "SALES", "id": thread.pk})
            ),
        ):
            assert response.status_code == 200
            assert_one_safe_header(response["Content-Disposition"])
            assert sorted(_exported(response)) == expected
    found = sorted(
        as_in_mbox(raw)
        for raw in archive.values()
        if b"searchable adversarial body" in raw
    )
    for response in (
        client.get(
            reverse("mbox:export-search", kwargs={"key": "SALES"}) + "?q=adversarial"
        ),
        api.get(
            reverse("api:search-export", kwargs={"key": "SALES"}) + "?q=adversarial"
        ),
    ):
        assert response.status_code == 200
        assert_one_safe_header(response["Content-Disposition"])
        assert sorted(_exported(response)) == found


def test_every_download_is_named_in_one_safe_header(actors, archive):
    client = client_for(actors, "viewer")
    parts = Attachment.objects.filter(message__space=actors.space)
    # The disguising right-to-left override is dropped from names.
    assert parts.filter(filename__startswith="name").exists()
    assert not parts.filter(filename__contains="\u202e").exists()
    for part in parts:
        response = client.get(
            reverse(
                "mailarchive:attachment-download",
                kwargs={
                    "key": "SALES",
                    "message_pk": part.message_id,
                    "position": part.position,
                },
            )
        )
        assert response.status_code == 200, part.filename
        assert_one_safe_header(response["Content-Disposition"])
    for pk in archive:
        response = client.get(
            reverse(
                "mailarchive:message-raw-download",
                kwargs={"key": "SALES", "message_pk": pk},
            )
        )
        assert_one_safe_header(response["Content-Disposition"])
