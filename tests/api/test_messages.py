"""Reading through the API: lists, a message, raw source, attachments, threads,
trash, exports — the same answers as the pages, in JSON."""

from __future__ import annotations

import gzip
import mailbox
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse

from mailarchive.models import Message, Thread
from mailarchive.selectors import thread_tree
from mailarchive.services import message_trash
from mailarchive.storage import blob_read
from spaces.models import AuditEvent
from tests.api.conftest import BASE, bearer, ingest, token_for
from tests.conftest import login_client
from tests.mailarchive.test_views import PNG, raw_message

pytestmark = pytest.mark.django_db


def api(name: str, **kwargs) -> str:
    return reverse(f"api:{name}", kwargs={"key": "SALES", **kwargs})


@pytest.fixture
def viewer(actors):
    return bearer(token_for(actors.viewer))


@pytest.fixture
def many(actors) -> list[Message]:
    """Twelve messages a minute apart, three senders, every other with a file."""
    return [
        ingest(
            actors.space,
            raw_message(
                subject=f"Message {n:02d}",
                msgid=f"m{n}@x",
                date=BASE + timedelta(minutes=n),
                sender=f"Sender {n % 3} <s{n % 3}@example.com>",
                attachments=(("a.txt", "text/plain", b"x"),) if n % 2 else (),
            ),
        )
        for n in range(12)
    ]


def walk(client, address: str, link: str = "next") -> list[str]:
    """Follow ``link`` from page to page; the subjects in order."""
    seen: list[str] = []
    for _ in range(50):
        body = client.get(address).json()
        seen += [row["subject"] for row in body["results"]]
        address = body[link]
        if address is None:
            return seen
    raise AssertionError("pages never end")


def test_messages_are_newest_first_and_pages_walk_both_ways(viewer, many):
    newest_first = [f"Message {n:02d}" for n in reversed(range(12))]
    assert walk(viewer, api("message-list") + "?limit=5") == newest_first
    first = viewer.get(api("message-list") + "?limit=5").json()
    assert first["previous"] is None
    second = viewer.get(first["next"]).json()
    back = viewer.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]
    oldest = walk(viewer, api("message-list") + "?limit=5&sort=oldest")
    assert oldest == list(reversed(newest_first))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sender=S1@example.com", [10, 7, 4, 1]),
        ("has_attachments=true", [11, 9, 7, 5, 3, 1]),
        ("has_attachments=true&sender=s1@example.com", [7, 1]),
        ("month=2024-03", list(reversed(range(12)))),
        ("month=2024-04", []),
        ("date_from=2024-03-01&date_to=2024-03-01", list(reversed(range(12)))),
        ("date_from=2024-03-02", []),
    ],
)
def test_list_filters(viewer, many, query, expected):
    body = viewer.get(api("message-list") + "?" + query).json()
    assert [r["subject"] for r in body["results"]] == [
        f"Message {n:02d}" for n in expected
    ]


def test_list_filter_by_thread_and_list_fields(viewer, mail):
    body = viewer.get(api("message-list") + f"?thread={mail.root.thread_id}").json()
    rows = body["results"]
    assert [r["id"] for r in rows] == [mail.reply.pk, mail.root.pk]
    assert rows[0] == {
        "id": mail.reply.pk,
        "url": "http://testserver" + api("message-detail", id=mail.reply.pk),
        "subject": "Re: Plans",
        "from": {"name": "Bob", "address": "bob@example.com"},
        "date": "2024-03-01T10:00:00Z",
        "has_attachments": False,
        "parseable": True,
        "index_state": "indexed",
        "thread_id": mail.root.thread_id,
        "thread_size": 2,
    }


def test_list_shows_what_waits_to_be_indexed(viewer, mail):
    rows = viewer.get(api("message-list")).json()["results"]
    pending = next(r for r in rows if r["id"] == mail.pending.pk)
    assert pending["index_state"] == "pending"
    detail = viewer.get(api("message-detail", id=mail.pending.pk)).json()
    assert detail["index_state"] == "pending"
    raw = viewer.get(api("message-raw", id=mail.pending.pk))
    assert b"".join(raw.streaming_content) == blob_read(mail.pending.raw_name)


def test_a_message_with_html_files_and_a_thread(actors, viewer):
    root = ingest(actors.space, raw_message(subject="Q1", msgid="q1@x", date=BASE))
    message = ingest(
        actors.space,
        raw_message(
            subject="Re: Q1 報告書",
            msgid="q1r@x",
            refs=("q1@x",),
            to="Team <team@example.com>, boss@example.com",
            date=BASE + timedelta(hours=1),
            body="The report is attached.\n",
            html='<p onclick="x()">See <img src="cid:chart@x"> and '
            '<img src="https://remote.invalid/p.png"><script>alert(1)</script></p>',
            inline_images=(("chart@x", "image/png", PNG),),
            attachments=(("Bericht über Q1.pdf", "application/pdf", b"%PDF-1.4"),),
        ),
    )
    body = viewer.get(api("message-detail", id=message.pk)).json()
    assert body["subject"] == "Re: Q1 報告書"
    assert body["to"] == [
        {"name": "Team", "address": "team@example.com"},
        {"name": "", "address": "boss@example.com"},
    ]
    assert body["message_id"] == "q1r@x"
    assert body["references"] == ["q1@x"] and body["in_reply_to"] == "q1@x"
    assert body["text_body"] == "The report is attached.\n"
    html = body["html"]
    assert html["has_remote_content"] is True
    assert "<script" not in html["document"] and "onclick" not in html["document"]
    assert "remote.invalid" not in html["document"]
    assert "/inline/0/?t=" in html["document"]  # the cid: picture, from the archive
    remote = viewer.get(api("message-detail", id=message.pk) + "?remote=1").json()
    assert "remote.invalid" in remote["html"]["document"]
    names = [(a["position"], a["filename"], a["inline"]) for a in body["attachments"]]
    assert names == [(0, "attachment.png", True), (1, "Bericht über Q1.pdf", False)]
    assert body["attachments"][1]["download_url"] == "http://testserver" + api(
        "attachment-download", id=message.pk, position=1
    )
    assert body["thread"] == {
        "id": root.thread_id,
        "url": "http://testserver" + api("thread-detail", id=root.thread_id),
        "subject": "Q1",
        "message_count": 2,
    }
    assert body["permalink"] == "http://testserver" + reverse(
        "mailarchive:message-detail", kwargs={"key": "SALES", "message_pk": message.pk}
    )
    assert body["message_id_url"] == "http://testserver/mail/q1r@x/"
    assert body["raw_url"].endswith(api("message-raw", id=message.pk))


def test_raw_and_attachments_download_with_the_pages_headers(actors, viewer, mail):
    page = login_client(actors.viewer)
    pairs = [
        (
            api("message-raw", id=mail.files.pk),
            reverse(
                "mailarchive:message-raw-download",
                kwargs={"key": "SALES", "message_pk": mail.files.pk},
            ),
        ),
        *[
            (
                api("attachment-download", id=mail.files.pk, position=position),
                reverse(
                    "mailarchive:attachment-download",
                    kwargs={
                        "key": "SALES",
                        "message_pk": mail.files.pk,
                        "position": position,
                    },
                ),
            )
            for position in (0, 1)
        ],
    ]
    names = (
        "Content-Type",
        "Content-Disposition",
        "X-Content-Type-Options",
        "Content-Security-Policy",
        "Cross-Origin-Resource-Policy",
        "Content-Length",
    )
    for api_url, page_url in pairs:
        ours, theirs = viewer.get(api_url), page.get(page_url)
        assert ours.status_code == theirs.status_code == 200
        assert {n: ours.get(n) for n in names} == {n: theirs.get(n) for n in names}
        assert b"".join(ours.streaming_content) == b"".join(theirs.streaming_content)
    assert viewer.get(api("message-raw", id=mail.files.pk))["Content-Disposition"]
    headers = viewer.get(api("attachment-download", id=mail.files.pk, position=0))
    assert headers["Content-Disposition"].startswith("attachment;")


def test_file_endpoints_accept_any_accept_header(viewer, mail):
    for accept in ("message/rfc822", "*/*", "application/json"):
        response = viewer.get(
            api("message-raw", id=mail.files.pk), headers={"accept": accept}
        )
        assert response.status_code == 200, accept
    missing = viewer.get(
        api("message-raw", id=999999), headers={"accept": "message/rfc822"}
    )
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No such message."


def test_thread_is_the_tree_the_thread_page_draws(actors, viewer):
    """GIVEN replies to a message the archive lacks THEN the thread holds the
    thread selector's rows, in its order and depths."""
    a = ingest(actors.space, raw_message(subject="T", msgid="t1@x", date=BASE))
    for n in (3, 4):
        ingest(
            actors.space,
            raw_message(
                subject="Re: T",
                msgid=f"t{n}@x",
                refs=("t1@x", "t2@x"),
                date=BASE + timedelta(hours=n),
            ),
        )
    body = viewer.get(api("thread-detail", id=a.thread_id)).json()
    shape = [
        (row["depth"], row["message"]["id"] if row["message"] else None)
        for row in body["messages"]
    ]
    rows = thread_tree(Thread.objects.get(pk=a.thread_id))
    assert shape == [(r.depth, r.message.pk if r.message else None) for r in rows]
    assert body["message_count"] == 3
    assert viewer.get(api("thread-detail", id=999999)).status_code == 404


def test_trash_and_restore_are_audited_and_hide_the_message(actors, mail):
    deleter = bearer(token_for(actors.deleter))
    admin = bearer(token_for(actors.admin))
    viewer = bearer(token_for(actors.viewer))
    target = mail.root.pk
    assert deleter.post(api("message-trash", id=target)).status_code == 204
    assert AuditEvent.objects.filter(action="mail.trash", actor=actors.deleter).exists()
    ids = [r["id"] for r in viewer.get(api("message-list")).json()["results"]]
    assert target not in ids
    assert viewer.get(api("message-detail", id=target)).status_code == 404
    assert deleter.post(api("message-trash", id=target)).status_code == 404
    trashed = admin.get(api("message-detail", id=target)).json()
    assert trashed["deleted_at"] is not None and trashed["deleted_by"] == "deleter"
    trash = admin.get(api("trash-list")).json()["results"]
    assert [(r["id"], r["deleted_by"]) for r in trash] == [(target, "deleter")]
    assert admin.post(api("message-restore", id=target)).status_code == 204
    assert admin.post(api("message-restore", id=target)).status_code == 204
    assert AuditEvent.objects.filter(action="mail.restore").count() == 1
    assert viewer.get(api("message-detail", id=target)).status_code == 200


def _mbox_messages(data: bytes, tmp_path: Path) -> list[bytes]:
    path = tmp_path / "out.mbox"
    path.write_bytes(data)
    return [bytes(m.as_bytes()) for m in mailbox.mbox(str(path))]


def test_exports_stream_mbox_of_space_thread_and_search(actors, viewer, mail, tmp_path):
    message_trash(space=actors.space, message_pk=mail.files.pk, actor=actors.admin)
    response = viewer.get(api("space-export"))
    assert response["Content-Type"] == "application/mbox"
    assert response["Content-Disposition"].startswith('attachment; filename="SALES-')
    assert response.streaming
    space_mbox = b"".join(response.streaming_content)
    assert len(_mbox_messages(space_mbox, tmp_path)) == 3  # the trashed one left out
    thread = viewer.get(api("thread-export", id=mail.root.thread_id) + "?gzip=1")
    assert thread["Content-Type"] == "application/gzip"
    thread_mbox = gzip.decompress(b"".join(thread.streaming_content))
    assert len(_mbox_messages(thread_mbox, tmp_path)) == 2
    found = viewer.get(api("search-export") + "?q=invoice")
    found_mbox = b"".join(found.streaming_content)
    assert found_mbox.count(b"\nFrom ") + found_mbox.startswith(b"From ") == 1
    assert b"Agreed, the invoice follows." in found_mbox
    assert viewer.get(api("search-export")).status_code == 400
