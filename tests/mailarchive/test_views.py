"""Reading pages: the mail list, messages, threads, files, permalinks.

Mail gets into the archive the way it does in production, through
``message_ingest`` with real RFC 5322 bytes built by the standard library.
"""

from __future__ import annotations

import base64
import email.policy
import html as html_lib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from mailarchive.models import Message
from mailarchive.parsing import parse_message
from mailarchive.services import message_ingest
from mailarchive.storage import blob_read
from spaces.models import Level
from tests.conftest import ROLES, client_for, expected_status, login_client
from tests.factories import SpaceFactory, SpacePermissionFactory, UserFactory

BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00"
    b"\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def raw_message(
    *,
    subject: str = "Hello",
    sender: str = "Alice Example <alice@example.com>",
    to: str = "team@example.com",
    date: datetime = BASE,
    msgid: str | None = None,
    refs: tuple[str, ...] = (),
    body: str = "Hello team.\n",
    html: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    inline_images: tuple[tuple[str, str, bytes], ...] = (),
    utf8_headers: bool = False,
) -> bytes:
    """RFC 5322 bytes of a message with the given parts (RFC 6532 headers if
    ``utf8_headers``)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    if msgid:
        message["Message-ID"] = f"<{msgid}>"
    if refs:
        message["References"] = " ".join(f"<{r}>" for r in refs)
        message["In-Reply-To"] = f"<{refs[-1]}>"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
        if inline_images:
            html_part = message.get_payload()[-1]
            for cid, ctype, data in inline_images:
                maintype, subtype = ctype.split("/")
                html_part.add_related(
                    data, maintype=maintype, subtype=subtype, cid=f"<{cid}>"
                )
    for name, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if utf8_headers:
        return message.as_bytes(policy=email.policy.SMTPUTF8)
    return bytes(message)


def ingest(space, raw: bytes) -> Message:
    result = message_ingest(space_id=space.pk, raw=raw, source="import")
    return Message.objects.get(pk=result.message_pk)


def url(name: str, **kwargs) -> str:
    return reverse(f"mailarchive:{name}", kwargs=kwargs)


@dataclass
class Mail:
    """A small space of mail: a three-message thread and one with files."""

    root: Message
    reply: Message
    reply2: Message
    files: Message


@pytest.fixture
def mail(actors) -> Mail:
    space = actors.space
    root = ingest(space, raw_message(subject="Plans", msgid="root@x", date=BASE))
    reply = ingest(
        space,
        raw_message(
            subject="Re: Plans",
            msgid="reply@x",
            refs=("root@x",),
            date=BASE + timedelta(hours=1),
            sender="Bob <bob@example.com>",
            body="> Hello team.\nAgreed, see https://example.org/plan\n",
        ),
    )
    reply2 = ingest(
        space,
        raw_message(
            subject="Re: Plans",
            msgid="reply2@x",
            refs=("root@x", "reply@x"),
            date=BASE + timedelta(hours=2),
        ),
    )
    files = ingest(
        space,
        raw_message(
            subject="Report 報告書",
            msgid="files@x",
            date=BASE + timedelta(days=40),
            body="The quarterly report is attached.\n",
            html='<p>See <img src="cid:chart@x" alt="chart"> and '
            '<img src="https://remote.invalid/pixel.png"></p>',
            inline_images=(("chart@x", "image/png", PNG),),
            attachments=(
                ("Bericht über Q1.pdf", "application/pdf", b"%PDF-1.4 fake"),
                ("page.html", "text/html", b"<script>alert(1)</script>"),
            ),
        ),
    )
    return Mail(root=root, reply=reply, reply2=reply2, files=files)


def message_urls(mail: Mail, key: str) -> list[tuple[str, int]]:
    """Every space-bound GET URL of the reading pages and the level it needs."""
    m = mail.files.pk
    return [
        (url("mail-list", key=key), Level.VIEW),
        (url("mail-months", key=key), Level.VIEW),
        (url("space-search", key=key) + "?q=report", Level.VIEW),
        (url("feed", key=key), Level.VIEW),
        (url("thread-detail", key=key, thread_id=mail.root.thread_id), Level.VIEW),
        (url("message-detail", key=key, message_pk=m), Level.VIEW),
        (url("message-raw", key=key, message_pk=m), Level.VIEW),
        (url("message-raw-download", key=key, message_pk=m), Level.VIEW),
        (url("attachment-download", key=key, message_pk=m, position=1), Level.VIEW),
        (url("attachment-inline", key=key, message_pk=m, position=0), Level.VIEW),
        (url("trash", key=key), Level.ADMIN),
        (url("delete-all", key=key), Level.ADMIN),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_reading_page_answers_by_permission(actors, mail, role):
    client = client_for(actors, role)
    for address, needed in message_urls(mail, actors.space.key):
        response = client.get(address)
        assert response.status_code == expected_status(role, needed), address
        if response.status_code == 302:
            assert response.url.startswith(reverse("login")), address


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_writes_answer_by_permission(actors, mail, role):
    """GIVEN every role WHEN it posts delete, restore, trash actions and delete-all
    THEN only the allowed ones change anything."""
    client = client_for(actors, role)
    key = actors.space.key
    delete = client.post(url("message-delete", key=key, message_pk=mail.reply2.pk))
    allowed = expected_status(role, Level.DELETE) == 200
    mail.reply2.refresh_from_db()
    assert (mail.reply2.deleted_at is not None) == allowed
    assert delete.status_code == (302 if allowed else expected_status(role, 20))
    restore = client.post(url("message-restore", key=key, message_pk=mail.reply2.pk))
    admin = expected_status(role, Level.ADMIN) == 200
    assert restore.status_code == (302 if admin else expected_status(role, 30))
    mail.reply2.refresh_from_db()
    assert (mail.reply2.deleted_at is None) == (admin or not allowed)
    action = client.post(url("trash-action", key=key), {"action": "empty"})
    assert action.status_code == (302 if admin else expected_status(role, 30))
    everything = client.post(url("delete-all", key=key), {"confirm_key": key})
    assert everything.status_code == (302 if admin else expected_status(role, 30))
    live = Message.objects.filter(space=actors.space, deleted_at__isnull=True)
    assert live.exists() == (not admin)


@pytest.mark.django_db
def test_unknown_space_and_foreign_message_are_404(actors, mail):
    client = client_for(actors, "viewer")
    other = SpaceFactory(key="OTHER")
    SpacePermissionFactory(space=other, user=actors.viewer, level=Level.VIEW)
    assert client.get(url("mail-list", key="NOSUCH")).status_code == 404
    foreign = url("message-detail", key="OTHER", message_pk=mail.root.pk)
    assert client.get(foreign).status_code == 404
    foreign_file = url(
        "attachment-download", key="OTHER", message_pk=mail.files.pk, position=1
    )
    assert client.get(foreign_file).status_code == 404


@pytest.mark.django_db
def test_mail_list_is_newest_first_grouped_by_month_with_every_message_linked(
    actors, mail
):
    response = client_for(actors, "viewer").get(url("mail-list", key="SALES"))
    body = response.content.decode()
    positions = [
        body.index(url("message-detail", key="SALES", message_pk=m.pk) + '"')
        for m in (mail.files, mail.reply2, mail.reply, mail.root)
    ]
    assert positions == sorted(positions)
    assert "April 2024" in body and "March 2024" in body
    assert body.index("April 2024") < body.index("March 2024")
    assert "📎" in body
    thread_link = url("thread-detail", key="SALES", thread_id=mail.root.thread_id)
    assert f'href="{thread_link}"' in body
    assert response["Content-Security-Policy"].startswith("default-src 'none'")


def _many(space, count: int) -> list[Message]:
    return [
        ingest(
            space,
            raw_message(
                subject=f"Message {n:03d}",
                msgid=f"m{n}@x",
                date=BASE + timedelta(minutes=n),
                sender=f"Sender {n % 3} <s{n % 3}@example.com>",
                attachments=(("a.txt", "text/plain", b"x"),) if n % 2 else (),
            ),
        )
        for n in range(count)
    ]


def _walk(client, first: str, link: str) -> list[str]:
    """Follow ``link`` (rel value) from page to page; the subjects in order."""
    seen: list[str] = []
    address = first
    for _ in range(50):
        response = client.get(address)
        assert response.status_code == 200
        page = response.context["page"]
        seen += [m.subject for m in page.rows]
        cursor = page.next_cursor if link == "next" else page.prev_cursor
        if cursor is None:
            return seen
        key = "after" if link == "next" else "before"
        address = first.split("?")[0] + f"?size=25&{key}={cursor}"
        if "sort=" in first:
            address += "&" + first.split("?")[1]
    raise AssertionError("paging did not end")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", lambda ms: sorted(ms, key=lambda m: (m.date, m.pk), reverse=True)),
        ("oldest", lambda ms: sorted(ms, key=lambda m: (m.date, m.pk))),
        (
            "sender",
            lambda ms: sorted(
                sorted(ms, key=lambda m: (m.date, m.pk), reverse=True),
                key=lambda m: m.from_address.lower(),
            ),
        ),
        ("subject", lambda ms: sorted(ms, key=lambda m: m.subject.lower())),
    ],
    ids=["newest", "oldest", "sender", "subject"],
)
def test_keyset_pages_visit_every_message_once_in_order(actors, sort, expected):
    messages = _many(actors.space, 40)
    client = client_for(actors, "viewer")
    first = url("mail-list", key="SALES") + f"?size=25&sort={sort}"
    forward = _walk(client, first, "next")
    assert forward == [m.subject for m in expected(messages)]
    last = client.get(first + "&last=1").context["page"]
    assert [m.subject for m in last.rows] == forward[-len(last.rows) :]
    prev = client.get(
        url("mail-list", key="SALES") + f"?size=25&sort={sort}&before="
        f"{last.prev_cursor}"
    ).context["page"]
    assert [m.subject for m in prev.rows] == forward[
        -len(last.rows) - 25 : -len(last.rows)
    ]


@pytest.mark.django_db
def test_month_and_sender_filters_and_month_index(actors, mail):
    client = client_for(actors, "viewer")
    march = client.get(url("mail-list", key="SALES") + "?month=2024-03")
    assert {m.pk for m in march.context["page"].rows} == {
        mail.root.pk,
        mail.reply.pk,
        mail.reply2.pk,
    }
    bob = client.get(url("mail-list", key="SALES") + "?sender=BOB@example.com")
    assert [m.pk for m in bob.context["page"].rows] == [mail.reply.pk]
    months = client.get(url("mail-months", key="SALES")).context["months"]
    assert [(m.month.isoformat(), m.count) for m in months] == [
        ("2024-04-01", 1),
        ("2024-03-01", 3),
    ]
    assert (
        client.get(url("mail-list", key="SALES") + "?month=2024-13").status_code == 400
    )
    assert client.get(url("mail-list", key="SALES") + "?after=%%%").status_code == 400
    assert (
        client.get(url("mail-list", key="SALES") + "?after=bm9wZQ").status_code == 400
    )


@pytest.mark.django_db
def test_dates_follow_the_chosen_time_zone(actors, mail):
    client = client_for(actors, "viewer")
    page = client.get(url("message-detail", key="SALES", message_pk=mail.root.pk))
    assert "2024-03-01 09:00:00 UTC" in page.content.decode()
    chosen = client.post(
        url("time-zone"), {"time_zone": "Asia/Tokyo", "next": "/spaces/SALES/mail/"}
    )
    assert chosen.status_code == 302 and chosen.url == "/spaces/SALES/mail/"
    page = client.get(url("message-detail", key="SALES", message_pk=mail.root.pk))
    assert "2024-03-01 18:00:00 JST" in page.content.decode()
    # A month in Tokyo starts nine hours before the UTC one.
    late = ingest(
        actors.space,
        raw_message(subject="Late", date=datetime(2024, 2, 29, 20, tzinfo=UTC)),
    )
    march = client.get(url("mail-list", key="SALES") + "?month=2024-03")
    assert late.pk in {m.pk for m in march.context["page"].rows}
    evil = client.post(url("time-zone"), {"time_zone": "Asia/Tokyo", "next": "//x.io"})
    assert evil.url == "/"


@pytest.mark.django_db
def test_message_page_shows_headers_text_thread_and_neighbours(actors, mail):
    client = client_for(actors, "viewer")
    response = client.get(url("message-detail", key="SALES", message_pk=mail.reply.pk))
    body = response.content.decode()
    assert "Re: Plans" in body
    assert "Bob &lt;bob@example.com&gt;" in body
    assert '<details class="quoted">' in body
    assert 'href="https://example.org/plan"' in body
    position = response.context["position"]
    assert [r.message.pk for r in position.rows] == [
        mail.root.pk,
        mail.reply.pk,
        mail.reply2.pk,
    ]
    assert [r.depth for r in position.rows] == [0, 1, 2]
    assert position.previous.pk == mail.root.pk
    assert position.next.pk == mail.reply2.pk
    neighbours = response.context["neighbours"]
    assert neighbours.newer.pk == mail.reply2.pk
    assert neighbours.older.pk == mail.root.pk
    assert 'href="/mail/reply@x/"' in body
    delete = url("message-delete", key="SALES", message_pk=mail.reply.pk)
    assert delete not in body
    deleter = client_for(actors, "deleter").get(
        url("message-detail", key="SALES", message_pk=mail.reply.pk)
    )
    assert delete in deleter.content.decode()


@pytest.mark.django_db
def test_html_mail_is_framed_sandboxed_and_remote_content_waits(actors, mail):
    client = client_for(actors, "viewer")
    address = url("message-detail", key="SALES", message_pk=mail.files.pk)
    response = client.get(address)
    body = response.content.decode()
    assert '<iframe class="mail-html"' in body
    frame = body.split('<iframe class="mail-html"', 1)[1].split(">", 1)[0]
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in frame and "allow-same-origin" not in frame
    assert "remote.invalid" not in body
    inline = "http://testserver" + url(
        "attachment-inline", key="SALES", message_pk=mail.files.pk, position=0
    )
    assert inline in body
    assert "Show remote content" in body
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "https:" not in policy
    crafted = client.get(address + "?remote=1")
    assert "remote.invalid" not in crafted.content.decode()
    assert "https:" not in crafted["Content-Security-Policy"]
    remote = client.get(address + _show_remote_link(body))
    assert "remote.invalid/pixel.png" in remote.content.decode()
    assert (
        "img-src 'self' http://testserver data: https: http:"
        in remote["Content-Security-Policy"]
    )


def _show_remote_link(body: str) -> str:
    """The query string of the page's "Show remote content" link."""
    match = re.search(r'<a href="(\?remote=[^"]+)" class="show-remote"', body)
    assert match is not None
    return html_lib.unescape(match.group(1))


@pytest.mark.django_db
def test_remote_content_needs_the_readers_own_pass_for_that_message(actors, mail):
    """GIVEN the "Show remote content" link one reader got for one message WHEN
    another reader, another anonymous browser, or another message uses it,
    or it is forged THEN remote content stays blocked; only that reader on
    that message sees it."""
    space = actors.space
    space.allow_anonymous = True
    space.save()
    other = ingest(
        space,
        raw_message(
            subject="Other",
            msgid="other-remote@x",
            html='<img src="https://remote.invalid/other.png">',
        ),
    )
    address = url("message-detail", key="SALES", message_pk=mail.files.pk)
    viewer = client_for(actors, "viewer")
    link = _show_remote_link(viewer.get(address).content.decode())

    def shows_remote(client, target: str) -> bool:
        return "remote.invalid" in client.get(target).content.decode()

    assert shows_remote(viewer, address + link)
    assert not shows_remote(client_for(actors, "deleter"), address + link)
    assert not shows_remote(login_client(None), address + link)
    other_address = url("message-detail", key="SALES", message_pk=other.pk)
    assert not shows_remote(viewer, other_address + link)
    assert not shows_remote(viewer, address + link[:-3] + "abc")
    assert not shows_remote(viewer, address + "?remote=1")
    browser = login_client(None)
    anonymous_link = _show_remote_link(browser.get(address).content.decode())
    assert shows_remote(browser, address + anonymous_link)
    assert not shows_remote(login_client(None), address + anonymous_link)
    assert not shows_remote(viewer, address + anonymous_link)


@pytest.mark.django_db
def test_files_are_downloads_that_never_render(actors, mail):
    client = client_for(actors, "viewer")
    pk = mail.files.pk
    pdf = client.get(url("attachment-download", key="SALES", message_pk=pk, position=1))
    assert b"".join(pdf.streaming_content) == b"%PDF-1.4 fake"
    assert pdf["Content-Disposition"] == (
        'attachment; filename="Bericht _ber Q1.pdf"; '
        "filename*=UTF-8''Bericht%20%C3%BCber%20Q1.pdf"
    )
    assert pdf["X-Content-Type-Options"] == "nosniff"
    assert pdf["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert pdf["Content-Type"] == "application/pdf"
    page = client.get(
        url("attachment-download", key="SALES", message_pk=pk, position=2)
    )
    assert page["Content-Disposition"].startswith("attachment;")
    image = client.get(url("attachment-inline", key="SALES", message_pk=pk, position=0))
    assert image["Content-Type"] == "image/png"
    assert image["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert image["X-Content-Type-Options"] == "nosniff"
    assert b"".join(image.streaming_content) == PNG
    not_image = url("attachment-inline", key="SALES", message_pk=pk, position=2)
    assert client.get(not_image).status_code == 404
    raw = client.get(url("message-raw", key="SALES", message_pk=pk))
    assert raw["Content-Type"] == "text/plain; charset=utf-8"
    assert raw["X-Content-Type-Options"] == "nosniff"
    assert "Subject: Report" in raw.content.decode()
    eml = client.get(url("message-raw-download", key="SALES", message_pk=pk))
    assert eml["Content-Type"] == "message/rfc822"
    assert eml["Content-Disposition"].startswith("attachment;")
    stored = Message.objects.get(pk=pk)
    assert b"".join(eml.streaming_content) == blob_read(stored.raw_name)


@pytest.mark.django_db
def test_unparseable_message_is_shown_as_such_with_its_source(actors):
    raw = b"\x00\x01 this is not mail at all \xff\xfe\r\n\r\n\x00"
    message = ingest(actors.space, raw)
    if message.parseable:
        Message.objects.filter(pk=message.pk).update(parseable=False)
    response = client_for(actors, "viewer").get(
        url("message-detail", key="SALES", message_pk=message.pk)
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "could not be read as e-mail" in body
    assert "this is not mail at all" in body


@pytest.mark.django_db
def test_thread_page_lists_the_whole_conversation(actors, mail):
    response = client_for(actors, "viewer").get(
        url("thread-detail", key="SALES", thread_id=mail.root.thread_id)
    )
    rows = response.context["rows"]
    assert [(r.depth, r.message.pk) for r in rows] == [
        (0, mail.root.pk),
        (1, mail.reply.pk),
        (2, mail.reply2.pk),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "message_id",
    ["plain@x", "a/b@c", "100%real@x", "a+b@c", "odd?id#x@y", "x%20y@z", "日本@x"],
)
def test_permalink_resolves_message_ids_with_any_character(actors, message_id):
    raw = raw_message(subject="Id", msgid=message_id, utf8_headers=True)
    message = ingest(actors.space, raw)
    assert message.message_id == message_id
    client = client_for(actors, "viewer")
    link = reverse("mailarchive:permalink", kwargs={"message_id": message_id})
    # The test client percent-decodes the path, as a web server does.
    response = client.get(link)
    assert response.status_code == 302
    assert response.url == url("message-detail", key="SALES", message_pk=message.pk)
    angle = client.get(
        reverse("mailarchive:permalink", kwargs={"message_id": f"<{message_id}>"})
    )
    assert angle.status_code == 302


@pytest.mark.django_db
def test_permalink_respects_permissions_and_prefers_the_first_visible(actors):
    hidden = SpaceFactory(key="HIDDEN")
    ingest(hidden, raw_message(subject="Secret", msgid="same@x"))
    visible = ingest(actors.space, raw_message(subject="Open", msgid="same@x"))
    viewer = client_for(actors, "viewer").get("/mail/same@x/")
    assert viewer.url == url("message-detail", key="SALES", message_pk=visible.pk)
    outsider = client_for(actors, "outsider").get("/mail/same@x/")
    assert outsider.status_code == 404
    anonymous = client_for(actors, "anonymous").get("/mail/same@x/")
    assert anonymous.status_code == 302 and anonymous.url.startswith("/login/")
    assert client_for(actors, "viewer").get("/mail/none@x/").status_code == 404


@pytest.mark.django_db
def test_trashed_message_is_hidden_from_readers_but_shown_to_admins(actors, mail):
    client_for(actors, "deleter").post(
        url("message-delete", key="SALES", message_pk=mail.reply.pk)
    )
    address = url("message-detail", key="SALES", message_pk=mail.reply.pk)
    assert client_for(actors, "viewer").get(address).status_code == 404
    admin_view = client_for(actors, "admin").get(address)
    assert admin_view.status_code == 200
    assert "in the trash" in admin_view.content.decode()
    listing = client_for(actors, "viewer").get(url("mail-list", key="SALES"))
    assert mail.reply.pk not in {m.pk for m in listing.context["page"].rows}
    thread = client_for(actors, "viewer").get(
        url("thread-detail", key="SALES", thread_id=mail.root.thread_id)
    )
    assert mail.reply.pk not in {
        r.message.pk for r in thread.context["rows"] if r.message
    }
    file_url = url("message-raw", key="SALES", message_pk=mail.reply.pk)
    assert client_for(actors, "viewer").get(file_url).status_code == 404


def _queries(client, address: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(address)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_pages_run_a_fixed_number_of_queries_whatever_their_size(actors):
    """GIVEN a space with a long thread WHEN the list, thread and message pages
    are shown with few and with many rows THEN the query count is the same."""
    client = client_for(actors, "viewer")
    root = ingest(actors.space, raw_message(subject="Long", msgid="long0@x"))
    parents = ["long0@x"]
    for n in range(1, 40):
        ingest(
            actors.space,
            raw_message(
                subject="Re: Long",
                msgid=f"long{n}@x",
                refs=tuple(parents[-3:]),
                date=BASE + timedelta(minutes=n),
                attachments=(("f.txt", "text/plain", b"x"),) if n % 2 else (),
            ),
        )
        parents.append(f"long{n}@x")
    small_thread = ingest(actors.space, raw_message(subject="Solo", msgid="solo@x"))
    base = url("mail-list", key="SALES")
    assert _queries(client, base + "?size=25") == _queries(client, base + "?size=200")
    assert _queries(client, base + "?size=25&sort=sender") == _queries(
        client, base + "?size=200&sort=sender"
    )
    thread_small = url("thread-detail", key="SALES", thread_id=small_thread.thread_id)
    thread_big = url("thread-detail", key="SALES", thread_id=root.thread_id)
    assert _queries(client, thread_small) == _queries(client, thread_big)
    message_small = url("message-detail", key="SALES", message_pk=small_thread.pk)
    message_big = url("message-detail", key="SALES", message_pk=root.pk)
    assert _queries(client, message_small) == _queries(client, message_big)


@pytest.mark.django_db
def test_space_home_links_mail_and_trash_by_level(actors):
    home = reverse("spaces:space-home", kwargs={"key": "SALES"})
    mail_link = url("mail-list", key="SALES")
    trash_link = url("trash", key="SALES")
    viewer = client_for(actors, "viewer").get(home).content.decode()
    admin = client_for(actors, "admin").get(home).content.decode()
    assert mail_link in viewer and trash_link not in viewer
    assert mail_link in admin and trash_link in admin


@pytest.mark.django_db
def test_top_bar_search_box_for_members_and_public_spaces_only(actors):
    dashboard = reverse("spaces:dashboard")
    search = reverse("mailarchive:search")
    member = client_for(actors, "viewer").get(dashboard).content.decode()
    assert f'action="{search}"' in member
    public = SpaceFactory(key="OPEN", allow_anonymous=True)
    anonymous = login_client(None).get(dashboard).content.decode()
    assert f'action="{search}"' in anonymous
    public.delete()
    assert login_client(None).get(dashboard).status_code == 302


@pytest.mark.django_db
def test_every_corpus_message_page_shows_its_subject_and_body(actors, corpus_dir):
    """Acceptance: each real-world message of the corpus, archived, has a page
    that answers 200 and shows its decoded subject and body text."""
    client = client_for(actors, "viewer")
    files = sorted((corpus_dir / "mimekit" / "messages").iterdir())
    assert files
    for path in files:
        raw = path.read_bytes()
        parsed = parse_message(raw)
        message = ingest(actors.space, raw)
        response = client.get(url("message-detail", key="SALES", message_pk=message.pk))
        assert response.status_code == 200, path.name
        body = response.content.decode()
        rendered = response.context
        if parsed.subject:
            assert _escaped(parsed.subject) in body, path.name
        if not message.parseable:
            continue
        if parsed.text_body.strip():
            assert rendered["text_html"], path.name
            first_words = " ".join(re.findall(r"\w+", parsed.text_body)[:5])
            shown = " ".join(re.findall(r"\w+", _unescape(str(rendered["text_html"]))))
            assert first_words in shown, path.name
        elif parsed.html_body.strip():
            assert rendered["html"] is not None, path.name


def _escaped(text: str) -> str:
    return escape(text)


def _unescape(html: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


@pytest.mark.django_db
def test_message_pages_of_another_users_private_space_never_leak(actors, mail):
    stranger = UserFactory(username="stranger")
    client = login_client(stranger)
    for address, _needed in message_urls(mail, "SALES"):
        assert client.get(address).status_code == 404, address


def _inline_link(response) -> str:
    """The signed picture URL the sanitized HTML of a message page points at."""
    found = re.search(
        r"(/spaces/SALES/mail/\d+/inline/0/\?t=[^&\"]+)",
        html_lib.unescape(html_lib.unescape(response.content.decode())),
    )
    assert found, "no inline picture URL on the page"
    return found.group(1)


@pytest.mark.django_db
def test_inline_picture_pass_stands_for_the_viewer_and_nothing_else(
    actors, mail, monkeypatch
):
    """GIVEN the signed picture URL a viewer's message page carries WHEN it is
    fetched without any session (as the sandboxed frame does) THEN the picture
    comes for as long as the viewer may see the space, and the pass opens no
    other part, message or space."""
    page = client_for(actors, "viewer").get(
        url("message-detail", key="SALES", message_pk=mail.files.pk)
    )
    link = _inline_link(page)
    stranger = login_client(None)
    picture = stranger.get(link)
    assert picture.status_code == 200
    assert b"".join(picture.streaming_content) == PNG
    token = link.split("?t=", 1)[1]
    other_part = url(
        "attachment-inline", key="SALES", message_pk=mail.files.pk, position=1
    )
    assert stranger.get(f"{other_part}?t={token}").status_code == 404
    other_message = url(
        "attachment-inline", key="SALES", message_pk=mail.root.pk, position=0
    )
    assert stranger.get(f"{other_message}?t={token}").status_code == 404
    assert stranger.get(link[:-3] + "AAA").status_code == 404
    monkeypatch.setattr("mailarchive.views.mail.INLINE_TOKEN_MAX_AGE", -1)
    assert stranger.get(link).status_code == 404
    monkeypatch.undo()
    actors.space.permissions.filter(user=actors.viewer).delete()
    assert stranger.get(link).status_code == 404


@pytest.mark.django_db
def test_admin_pages_of_the_archive_open_for_site_admins(actors, mail):
    client = client_for(actors, "site_admin")
    for name in ("message", "thread", "feedtoken"):
        response = client.get(reverse(f"admin:mailarchive_{name}_changelist"))
        assert response.status_code == 200, name
    detail = reverse("admin:mailarchive_message_change", args=[mail.files.pk])
    assert client.get(detail).status_code == 200


def _srcdoc_images(response) -> list[str]:
    """The ``src`` of every picture in the sanitized HTML frame of a page."""
    page = response.content.decode()
    srcdoc = html_lib.unescape(page.split('srcdoc="', 1)[1].split('"', 1)[0])
    return [
        html_lib.unescape(src) for src in re.findall(r'<img[^>]* src="([^"]*)"', srcdoc)
    ]


@pytest.mark.django_db
def test_mhtml_picture_named_by_content_location_is_shown(actors, corpus_dir):
    """GIVEN the corpus MHTML message, whose HTML shows ``<img src="image1">``
    and whose PNG part has only ``Content-Location: image1`` WHEN a viewer
    opens it THEN the frame's picture is the signed archive URL of that part,
    and that URL serves the PNG."""
    raw = (corpus_dir / "mimekit/messages/multipart-related-mhtml.txt").read_bytes()
    message = ingest(actors.space, raw)
    [part] = message.attachments.all()
    assert (part.content_location, part.content_base, part.inline) == (
        "image1",
        "",
        True,
    )

    response = client_for(actors, "viewer").get(
        url("message-detail", key="SALES", message_pk=message.pk)
    )
    inline = "http://testserver" + url(
        "attachment-inline", key="SALES", message_pk=message.pk, position=0
    )
    [src] = _srcdoc_images(response)
    assert src.startswith(inline + "?t=")
    assert "Show remote content" not in response.content.decode()
    picture = login_client(None).get(_inline_link(response))
    assert picture.status_code == 200
    assert b"".join(picture.streaming_content) == blob_read(part.blob_name)


def located_parts_message() -> bytes:
    png = base64.b64encode(PNG).decode("ascii")

    def part(content_type: str, location: str) -> list[str]:
        return [
            "--rel",
            f"Content-Type: {content_type}",
            "Content-Transfer-Encoding: base64",
            f"Content-Location: {location}",
            "",
            png,
        ]

    lines = [
        "From: Ann <ann@example.com>",
        "To: team@example.com",
        "Subject: Saved page",
        "Date: Fri, 01 Mar 2024 09:00:00 +0000",
        "Message-ID: <saved-page@x>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/related; boundary="rel"; type="text/html"',
        "",
        "--rel",
        "Content-Type: text/html; charset=utf-8",
        "Content-Location: file:///C:/Users/Ann/page.htm",
        "",
        '<p><img src="page_files/image001.png" alt="relative">'
        '<img src="http://example.com/logo.png" alt="absolute">'
        '<img src="https://evil.example/x.svg" alt="svg">'
        '<img src="javascript:alert(1)" alt="script"></p>',
        *part("image/png", "file:///C:/Users/Ann/page_files/image001.png"),
        *part("image/png", "http://example.com/logo.png"),
        *part("image/svg+xml", "https://evil.example/x.svg"),
        *part("image/png", "javascript:alert(1)"),
        "--rel--",
    ]
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


@pytest.mark.django_db
def test_part_locations_only_ever_become_archive_urls(actors):
    """GIVEN a saved web page mailed as MHTML: a picture named relatively to
    the root's location, one named by an absolute http: URL, an SVG named by
    an https: URL and a part named ``javascript:`` WHEN a viewer opens it THEN
    the two pictures come from the archive, the SVG is not shown (it is a
    document, not a picture) and counts as remote, and no URL of the mail's
    own is left in the frame."""
    message = ingest(actors.space, located_parts_message())
    response = client_for(actors, "viewer").get(
        url("message-detail", key="SALES", message_pk=message.pk)
    )

    inline = "http://testserver/spaces/SALES/mail/{pk}/inline/{position}/?t="
    srcs = _srcdoc_images(response)
    assert len(srcs) == 2
    for src, position in zip(srcs, (0, 1), strict=True):
        assert src.startswith(inline.format(pk=message.pk, position=position))
    page = response.content.decode()
    for own in ("page_files", "example.com/logo", "evil.example", "javascript"):
        assert own not in page.split('srcdoc="', 1)[1].split('"', 1)[0], own
    assert "Show remote content" in page


@pytest.mark.django_db
def test_thread_page_shows_every_message_with_its_body(actors, mail):
    """GIVEN a three-message thread WHEN its page is shown THEN every message is
    there with sender, date, body and permalink, the newest open and the
    others folded, and the participants and export link are at the top."""
    response = client_for(actors, "viewer").get(
        url("thread-detail", key="SALES", thread_id=mail.root.thread_id)
    )
    body = response.content.decode()
    entries = response.context["entries"]
    assert [e.message.pk for e in entries] == [
        mail.root.pk,
        mail.reply.pk,
        mail.reply2.pk,
    ]
    assert "Agreed, see" in body
    assert "Show quoted text" in body
    for message in (mail.root, mail.reply, mail.reply2):
        assert f'id="m{message.pk}"' in body
        assert url("message-detail", key="SALES", message_pk=message.pk) in body
    assert re.search(rf'id="m{mail.reply2.pk}">\s*<details class="entry" open>', body)
    assert re.search(rf'id="m{mail.root.pk}">\s*<details class="entry">', body)
    assert "Bob" in body and "Alice Example" in body
    export = reverse(
        "mbox:export-thread",
        kwargs={"key": "SALES", "thread_id": mail.root.thread_id},
    )
    assert export in body


@pytest.mark.django_db
def test_thread_page_by_tree_and_message_page_link_its_place(actors):
    """GIVEN a thread whose replies arrive out of tree order WHEN it is shown as a
    tree THEN replies follow their parents with their depth; the message page's
    thread link goes to the page and anchor of that message."""
    space = actors.space
    root = ingest(space, raw_message(subject="T", msgid="t0@x", date=BASE))
    a = ingest(
        space,
        raw_message(
            subject="Re: T", msgid="ta@x", refs=("t0@x",), date=BASE + timedelta(1)
        ),
    )
    b = ingest(
        space,
        raw_message(
            subject="Re: T", msgid="tb@x", refs=("t0@x",), date=BASE + timedelta(2)
        ),
    )
    a1 = ingest(
        space,
        raw_message(
            subject="Re: T",
            msgid="ta1@x",
            refs=("t0@x", "ta@x"),
            date=BASE + timedelta(3),
        ),
    )
    client = client_for(actors, "viewer")
    address = url("thread-detail", key="SALES", thread_id=root.thread_id)
    by_date = client.get(address).context["entries"]
    assert [e.message.pk for e in by_date] == [root.pk, a.pk, b.pk, a1.pk]
    tree = client.get(address + "?order=tree").context["entries"]
    assert [(e.depth, e.message.pk) for e in tree] == [
        (0, root.pk),
        (1, a.pk),
        (2, a1.pk),
        (1, b.pk),
    ]
    assert client.get(address + "?order=sideways").status_code == 400
    page = client.get(url("message-detail", key="SALES", message_pk=a1.pk))
    assert f"?page=1&amp;message={a1.pk}#m{a1.pk}" in page.content.decode()


@pytest.mark.django_db
def test_long_thread_is_paged_with_the_same_queries_per_page(actors, settings):
    """GIVEN a 45-message thread with HTML and attachments WHEN its pages are
    shown THEN each holds at most THREAD_PAGE_SIZE messages, together every
    message once, and the first, middle and last page (and a one-message thread)
    run the same number of queries."""
    from mailarchive.selectors import THREAD_PAGE_SIZE

    space = actors.space
    root = ingest(space, raw_message(subject="Big", msgid="big0@x"))
    for n in range(1, 45):
        ingest(
            space,
            raw_message(
                subject="Re: Big",
                msgid=f"big{n}@x",
                refs=("big0@x", f"big{n - 1}@x"),
                date=BASE + timedelta(minutes=n),
                html=f"<p>part {n}</p>" if n % 3 == 0 else None,
                attachments=(("f.txt", "text/plain", b"x"),) if n % 2 else (),
            ),
        )
    solo = ingest(space, raw_message(subject="Alone", msgid="alone@x"))
    client = client_for(actors, "viewer")
    address = url("thread-detail", key="SALES", thread_id=root.thread_id)
    seen = []
    for number in (1, 2, 3):
        entries = client.get(f"{address}?page={number}").context["entries"]
        assert len(entries) <= THREAD_PAGE_SIZE
        seen += [e.message.pk for e in entries]
    assert len(seen) == len(set(seen)) == 45
    assert client.get(f"{address}?page=99").context["conversation"].number == 3
    counts = {
        _queries(client, f"{address}?page=1"),
        _queries(client, f"{address}?page=2&order=tree"),
        _queries(client, f"{address}?page=3"),
        _queries(client, url("thread-detail", key="SALES", thread_id=solo.thread_id)),
    }
    assert len(counts) == 1, counts
    last = client.get(f"{address}?page=3").content.decode()
    assert 'rel="prev"' in last and "Later messages" not in last


@pytest.mark.django_db
def test_conversation_view_is_one_row_per_thread_and_remembered(actors, mail):
    """GIVEN a viewer WHEN they choose conversations THEN the list has one row
    per thread (participants, count, last date), and stays so on their next
    visit from another browser; sorting by sender lists messages again."""
    client = client_for(actors, "viewer")
    listing = url("mail-list", key="SALES")
    assert client.get(listing).context["show_threads"] is False
    chosen = client.post(
        url("mail-view"), {"view": "threads", "next": listing + "?size=25"}
    )
    assert chosen.status_code == 302 and chosen.url == listing + "?size=25"
    again = client_for(actors, "viewer").get(listing)
    assert again.context["show_threads"] is True
    rows = again.context["page"].rows
    assert [r.thread.pk for r in rows] == [mail.files.thread_id, mail.root.thread_id]
    plans = rows[1]
    assert plans.thread.message_count == 3
    assert [p.address for p in plans.participants] == [
        "alice@example.com",
        "bob@example.com",
    ]
    body = again.content.decode()
    assert url("thread-detail", key="SALES", thread_id=mail.root.thread_id) in body
    assert client.get(listing + "?sort=sender").context["show_threads"] is False
    assert client.get(listing + "?view=messages").context["show_threads"] is False
    assert client.post(url("mail-view"), {"view": "sideways"}).status_code == 302
    assert client.get(listing).context["show_threads"] is True
    anonymous = client_for(actors, "anonymous")
    anonymous.post(url("mail-view"), {"view": "threads", "next": "https://evil/"})
    actors.viewer.refresh_from_db()
    assert actors.viewer.reading_preference.mail_view == "threads"


@pytest.mark.django_db
def test_conversation_view_pages_with_a_fixed_number_of_queries(actors):
    """GIVEN 30 threads WHEN the conversation view shows 25 and then 200 per
    page THEN every thread is listed once and both pages cost the same."""
    client = client_for(actors, "viewer")
    for n in range(30):
        ingest(
            actors.space,
            raw_message(
                subject=f"Topic {n}", msgid=f"t{n}@x", date=BASE + timedelta(n)
            ),
        )
        ingest(
            actors.space,
            raw_message(
                subject=f"Re: Topic {n}",
                msgid=f"t{n}r@x",
                refs=(f"t{n}@x",),
                date=BASE + timedelta(n, hours=1),
                sender=f"Person {n} <p{n}@example.com>",
            ),
        )
    base = url("mail-list", key="SALES") + "?view=threads"
    first = client.get(base + "&size=25").context["page"]
    second = client.get(base + f"&size=25&after={first.next_cursor}").context["page"]
    subjects = [r.thread.subject for r in first.rows + second.rows]
    assert len(subjects) == len(set(subjects)) == 30
    assert subjects[0] == "Topic 29"
    assert _queries(client, base + "&size=25") == _queries(client, base + "&size=200")


def test_frame_height_classes_are_current_and_grow_with_the_mail():
    from pathlib import Path

    from mailarchive.framesize import frame_css, frame_size

    stylesheet = Path(__file__).parents[2] / "static" / "css" / "frames.css"
    assert stylesheet.read_text() == frame_css()
    short = frame_size("<p>One line.</p>").heights
    long = frame_size("<p>" + "word " * 2000 + "</p>").heights
    assert short == {"s": short["s"], "m": short["m"], "l": short["l"]}
    assert all(short[k] < 100 for k in short)
    assert long["s"] > long["m"] > long["l"] > 1000
    hidden = frame_size("<style>" + "p{}" * 5000 + "</style><p>x</p>").heights
    assert hidden == short


@pytest.mark.django_db
def test_per_page_shows_the_size_the_list_has(actors):
    """GIVEN no size in the address WHEN the list is shown THEN the "Per page"
    choice says the size used (pressing Show keeps it)."""
    response = client_for(actors, "viewer").get(url("mail-list", key="SALES"))
    body = response.content.decode()
    chosen = re.search(r'<select name="size"[^>]*>.*?</select>', body, re.S)
    assert chosen is not None
    assert re.search(r'<option value="50" selected>', chosen.group(0))
    assert 'value="25" selected' not in chosen.group(0)


@pytest.mark.django_db
def test_month_headings_follow_the_language(actors, mail):
    client = client_for(actors, "viewer")
    english = client.get(url("mail-list", key="SALES")).content.decode()
    assert "March 2024" in english
    client.cookies["django_language"] = "ja"
    japanese = client.get(
        url("mail-list", key="SALES"), HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode()
    assert "2024年3月" in japanese
    assert "3月 2024" not in japanese


@pytest.mark.django_db
def test_search_page_links_its_mbox_export(actors, mail):
    body = (
        client_for(actors, "viewer")
        .get(url("space-search", key="SALES") + "?q=plans")
        .content.decode()
    )
    export = reverse("mbox:export-search", kwargs={"key": "SALES"})
    assert f"{export}?q=plans" in body


@pytest.mark.django_db
def test_mail_without_date_is_dated_by_its_earliest_trustworthy_received(actors):
    """GIVEN mail from 2001 with no Date: header WHEN it is archived THEN it is
    filed under its earliest zoned, plausible Received: date (not the fetch
    time, not a 1970 stamp), and its page says which date that is."""
    raw = (
        b"Received: from b.example by c.example; Tue, 3 Apr 2001 10:05:00 +0000\r\n"
        b"Received: from a.example by b.example; Tue, 3 Apr 2001 12:01:00 +0200\r\n"
        b"Received: from x by a.example; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        b"Received: from y by a.example; Tue, 3 Apr 2001 09:00:00\r\n"
        b"Received: from z by a.example (no date at all)\r\n"
        b"From: old@example.com\r\nSubject: Old mail\r\n"
        b"Message-ID: <old@x>\r\n\r\nFrom the archives.\r\n"
    )
    message = ingest(actors.space, raw)
    assert message.date == datetime(2001, 4, 3, 10, 1, tzinfo=UTC)
    assert message.date_offset_minutes == 120
    assert "date-from-received" in message.problems
    page = client_for(actors, "viewer").get(
        url("message-detail", key="SALES", message_pk=message.pk)
    )
    assert "when the first mail server received it" in page.content.decode()
    bare = ingest(
        actors.space,
        b"From: a@example.com\r\nSubject: Undated\r\nMessage-ID: <u@x>\r\n\r\nx\r\n",
    )
    assert "date-from-received" not in bare.problems
    assert abs(bare.date - bare.received_at) < timedelta(minutes=5)
    undated = client_for(actors, "viewer").get(
        url("message-detail", key="SALES", message_pk=bare.pk)
    )
    assert "when the archive received it" in undated.content.decode()


@pytest.mark.django_db
def test_a_remover_can_undo_a_removal_right_after_it(actors, mail):
    """GIVEN someone who may remove mail but not open the trash WHEN they
    remove a message THEN the next page offers Undo, which brings it back
    once; nobody else's removal and no stale one can be undone that way."""
    deleter = client_for(actors, "deleter")
    address = url("message-detail", key="SALES", message_pk=mail.reply.pk)
    removed = deleter.post(
        url("message-delete", key="SALES", message_pk=mail.reply.pk), follow=True
    )
    page = removed.content.decode()
    assert url("undo-delete", key="SALES") in page and "Undo" in page
    assert deleter.get(address).status_code == 404
    undone = deleter.post(url("undo-delete", key="SALES"))
    assert undone.status_code == 302 and undone.url == address
    assert deleter.get(address).status_code == 200
    again = deleter.post(url("undo-delete", key="SALES"), follow=True)
    assert "nothing to undo" in again.content.decode()

    client_for(actors, "admin").post(
        url("message-delete", key="SALES", message_pk=mail.reply.pk)
    )
    session = deleter.session
    session["mailarchive.undo_trash"] = ["SALES", mail.reply.pk]
    session.save()
    deleter.post(url("undo-delete", key="SALES"))
    assert Message.objects.get(pk=mail.reply.pk).deleted_at is not None

    Message.objects.filter(pk=mail.root.pk).update(
        deleted_at=datetime.now(UTC) - timedelta(hours=1),
        deleted_by=actors.deleter,
    )
    session = deleter.session
    session["mailarchive.undo_trash"] = ["SALES", mail.root.pk]
    session.save()
    deleter.post(url("undo-delete", key="SALES"))
    assert Message.objects.get(pk=mail.root.pk).deleted_at is not None
    assert client_for(actors, "viewer").post(
        url("undo-delete", key="SALES")
    ).status_code in (403, 404)


@pytest.mark.django_db
def test_mail_headings_name_the_space(actors):
    client = client_for(actors, "admin")
    name = actors.space.name
    for address in (
        url("mail-list", key="SALES"),
        url("mail-months", key="SALES"),
        url("trash", key="SALES"),
        reverse("mbox:import-list", kwargs={"key": "SALES"}),
    ):
        heading = re.search(r"<h1>(.*?)</h1>", client.get(address).content.decode())
        assert heading is not None and escape(name) in heading.group(1), address
