"""The text of attachments: read once, searchable, shown, backfilled, safe.

Nothing here depends on the database: the suite runs this file on PostgreSQL
(the full-text and trigram path) and, from ``make test``, once more on SQLite
(``--ds=tests.settings_sqlite``: every term a substring), the database of a
one-machine install.
"""

from __future__ import annotations

import io
import mailbox
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from mailarchive.models import Attachment, AttachmentText, Message
from mailarchive.search import MailSearch, attachments_search, messages_search
from mailarchive.services import attachment_text as attachment_text_service
from mailarchive.services import (
    message_ingest,
    message_trash,
    messages_index,
    messages_purge,
    messages_secure,
)
from spaces.models import Level
from tests.conftest import client_for, login_client
from tests.factories import SpaceFactory, SpacePermissionFactory, UserFactory
from tests.mailarchive import documents
from tests.mailarchive.documents import Document, message_with

MISBEHAVING = "tests.misbehaving_extractor:extract"

# (maker, a word only the document's content holds)
DOCUMENTS = [
    (documents.pdf_english, "zebrafinch"),
    (documents.pdf_japanese, "瑠璃色"),
    (documents.docx, "marmoset"),
    (documents.xlsx, "pangolin"),
    (documents.pptx, "narwhal"),
    (documents.odt, "okapi"),
    (documents.rtf, "ocelot"),
    (documents.csv_shift_jis, "見積書用紙"),
    (documents.zip_with_pdf, "quokka"),
    (documents.message_with_docx, "wombat"),
]
IDS = ["pdf", "pdf-ja", "docx", "xlsx", "pptx", "odt", "rtf", "csv-sjis", "zip", "eml"]


def ingest(space, raw: bytes) -> Message:
    result = message_ingest(space_id=space.pk, raw=raw, source="import")
    return Message.objects.get(pk=result.message_pk)


def found(space, text: str, **filters) -> list[str]:
    qs, _parsed = messages_search(
        Message.objects.filter(space=space), MailSearch(text=text, **filters)
    )
    return sorted(qs.values_list("subject", flat=True))


def found_inside(space, text: str, **filters) -> list[str]:
    qs, _parsed = attachments_search(
        Message.objects.filter(space=space), MailSearch(text=text, **filters)
    )
    return sorted(qs.values_list("filename", flat=True))


def text_of(attachment: Attachment) -> AttachmentText:
    return AttachmentText.objects.get(sha256=attachment.sha256)


@pytest.mark.django_db
@pytest.mark.parametrize(("maker", "word"), DOCUMENTS, ids=IDS)
def test_each_document_is_found_by_a_word_only_its_content_holds(actors, maker, word):
    """GIVEN a message whose attachment alone holds ``word``
    WHEN it is archived THEN a search finds the message, a search inside
    attachments finds the attachment, and its text is recorded once."""
    document: Document = maker(word)
    subject = f"File {document.filename}"
    message = ingest(actors.space, message_with([document], subject=subject))
    ingest(actors.space, message_with([], subject="Unrelated", body="Nothing.\n"))
    (attachment,) = Attachment.objects.filter(message=message)
    assert word not in message.subject + message.text_body + attachment.filename

    assert found(actors.space, word) == [subject]
    assert found_inside(actors.space, word) == [attachment.filename]
    assert found_inside(actors.space, f"in:attachments {word}") == [attachment.filename]
    assert found(actors.space, "nothing-like-this-word") == []
    record = text_of(attachment)
    assert record.status == AttachmentText.Status.OK
    assert word in record.text
    assert attachment.text_read


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tnef", "word", "holder"),
    [
        ("MAPI_ATTACH_DATA_OBJ.tnef", "Flyspesialisten", "VIA_Nytt_1402.pdf"),
        ("rtf.tnef", "Compuware", "winmail.dat"),
    ],
    ids=["files-inside", "rtf-body"],
)
def test_tnef_from_the_corpus_is_found_by_its_content(
    actors, corpus_dir, tnef, word, holder
):
    """GIVEN Outlook's winmail.dat (files inside it, or only an RTF body)
    THEN the words of what it carries are found, in the file that holds them."""
    document = documents.tnef_from_corpus(corpus_dir, tnef)
    ingest(actors.space, message_with([document], subject=f"Outlook {tnef}"))
    assert found(actors.space, word) == [f"Outlook {tnef}"]
    assert holder in found_inside(actors.space, word)


@pytest.mark.django_db
def test_identical_attachments_are_read_and_stored_once(actors):
    """GIVEN the same contract attached to two messages
    THEN it is read once and both messages are found by its words."""
    contract = documents.docx("marmoset")
    raws = [
        message_with([contract], subject="First copy"),
        message_with([contract], subject="Second copy"),
    ]
    with transaction.atomic():
        secured = messages_secure(space_id=actors.space.pk, raws=raws, source="import")
    first = messages_index(message_pks=[secured[0].message_pk])
    second = messages_index(message_pks=[secured[1].message_pk])
    assert (first.attachments_read, second.attachments_read) == (1, 0)
    assert AttachmentText.objects.count() == 1
    assert found(actors.space, "marmoset") == ["First copy", "Second copy"]


@pytest.mark.django_db
def test_search_inside_attachments_respects_filters_and_leaves_bodies_out(actors):
    ingest(
        actors.space,
        message_with(
            [documents.docx("marmoset")],
            subject="With the file",
            body="The marmoset is also named in this body.\n",
        ),
    )
    ingest(actors.space, message_with([], subject="Only body", body="A marmoset.\n"))
    assert found(actors.space, "marmoset") == ["Only body", "With the file"]
    assert found_inside(actors.space, "marmoset") == ["contract.docx"]
    assert found_inside(actors.space, "marmoset", sender="nobody@") == []
    assert found_inside(actors.space, "-marmoset", in_attachments=True) == []
    assert found_inside(actors.space, "marmoset", in_attachments=True) == [
        "contract.docx"
    ]


@pytest.mark.django_db
def test_the_search_page_lists_attachments_with_name_excerpt_and_anchor(actors):
    message = ingest(
        actors.space,
        message_with([documents.pdf_english("zebrafinch")], subject="Quote"),
    )
    part = Attachment.objects.get(message=message)
    client = client_for(actors, "viewer")
    url = reverse("mailarchive:space-search", kwargs={"key": actors.space.key})
    queries = [
        {"q": "in:attachments zebrafinch"},
        {"q": "zebrafinch", "in_attachments": "on"},
    ]
    for query in queries:
        page = client.get(url, query).content.decode()
        assert "quotation.pdf" in page
        assert "<mark>zebrafinch</mark>" in page
        anchor = (
            f"{message.get_absolute_url()}?attachment={part.position}#{part.anchor}"
        )
        assert f'href="{anchor}"' in page
    everywhere = client.get(url, {"q": "zebrafinch"}).content.decode()
    assert "Quote" in everywhere and f'href="{anchor}"' in everywhere
    assert "<mark>zebrafinch</mark>" in everywhere


@pytest.mark.django_db
def test_searching_inside_attachments_never_shows_other_spaces(actors):
    other = SpaceFactory(key="HIDDEN", name="Hidden")
    ingest(other, message_with([documents.docx("marmoset")], subject="Secret"))
    ingest(actors.space, message_with([documents.docx("marmoset")], subject="Ours"))
    stranger = UserFactory(username="stranger")
    SpacePermissionFactory(space=actors.space, user=stranger, level=Level.VIEW)
    page = login_client(stranger).get(
        reverse("mailarchive:search"), {"q": "in:attachments marmoset"}
    )
    text = page.content.decode()
    assert "Ours" in text and "Secret" not in text
    assert found_inside(other, "marmoset") == ["contract.docx"]


@pytest.mark.django_db
def test_the_message_page_shows_the_text_found_in_each_attachment(actors):
    message = ingest(
        actors.space,
        message_with(
            [documents.docx("marmoset"), documents.encrypted_pdf("secret")],
            subject="Two files",
        ),
    )
    client = client_for(actors, "viewer")
    page = client.get(message.get_absolute_url()).content.decode()
    assert "Text found in this attachment" in page
    assert "The marmoset clause applies" in page
    assert 'id="attachment-' in page
    assert '<details class="attachment-text">' in page
    assert "could not be read: it is encrypted" in page
    docx_part = Attachment.objects.get(message=message, filename="contract.docx")
    opened = client.get(
        f"{message.get_absolute_url()}?attachment={docx_part.position}"
    ).content.decode()
    assert '<details class="attachment-text" open>' in opened


@pytest.mark.django_db
def test_attachments_archived_before_reading_are_counted_and_backfilled(
    actors, settings
):
    """GIVEN attachments archived while their text was not read
    THEN the mail page says how many wait, a search does not find their words;
    WHEN ``reindex --attachments`` runs THEN they are read and found, and
    nothing waits any more."""
    settings.MAILARCHIVE_ATTACHMENT_TEXT = False
    ingest(actors.space, message_with([documents.docx("marmoset")], subject="Old"))
    ingest(actors.space, message_with([documents.xlsx("pangolin")], subject="Older"))
    ingest(actors.space, message_with([], subject="No files"))
    settings.MAILARCHIVE_ATTACHMENT_TEXT = True
    client = client_for(actors, "admin")
    listing = reverse("mailarchive:mail-list", kwargs={"key": actors.space.key})
    page = client.get(listing).content.decode()
    assert "2 attachments are waiting to be read" in page
    assert "reindex --attachments" in page
    assert found(actors.space, "marmoset") == []

    out = io.StringIO()
    call_command("reindex", "--attachments", "--space", actors.space.key, stdout=out)

    assert "2 messages to index again" in out.getvalue()
    assert "read 2 attachments, 0 could not be read" in out.getvalue()
    assert found(actors.space, "marmoset") == ["Old"]
    assert found(actors.space, "pangolin") == ["Older"]
    assert "waiting to be read" not in client.get(listing).content.decode()


@pytest.mark.django_db
def test_a_full_reindex_reads_again_what_failed(actors, settings, monkeypatch):
    """GIVEN an attachment whose reading ran out of time
    WHEN the limits are raised and the space is reindexed THEN it is read."""
    monkeypatch.setattr(attachment_text_service, "EXTRACT_TARGET_IN_USE", MISBEHAVING)
    settings.MAILARCHIVE_EXTRACT_TIME_LIMIT = 1.0
    message = ingest(
        actors.space,
        message_with(
            [Document("loop.pdf", "application/pdf", documents.pdf_english("x").data)],
            subject="Slow",
        ),
    )
    part = Attachment.objects.get(message=message)
    assert (text_of(part).status, text_of(part).reason) == ("failed", "time")
    monkeypatch.setattr(
        attachment_text_service,
        "EXTRACT_TARGET_IN_USE",
        attachment_text_service.EXTRACT_TARGET,
    )
    call_command("reindex", "--space", actors.space.key, stdout=io.StringIO())
    assert text_of(part).status == AttachmentText.Status.OK


@pytest.mark.django_db
def test_purging_the_last_copy_deletes_the_text(actors):
    contract = documents.docx("marmoset")
    first = ingest(actors.space, message_with([contract], subject="One"))
    second = ingest(actors.space, message_with([contract], subject="Two"))
    for message in (first, second):
        message_trash(space=actors.space, message_pk=message.pk, actor=actors.admin)
    messages_purge(space=actors.space, message_pks=[first.pk], actor=actors.admin)
    assert AttachmentText.objects.count() == 1
    messages_purge(space=actors.space, message_pks=[second.pk], actor=actors.admin)
    assert AttachmentText.objects.count() == 0


# A spreadsheet read up to a limit: which one it meets first depends on the
# machine's speed.
CUT_SHORT = ("text-limit", "time-limit", "work-limit")


def hostile_documents() -> list[tuple[Document, str, tuple[str, ...]]]:
    """(document, status, the reasons it may be recorded with) of every
    hostile case."""

    def misbehaving(name: str) -> Document:
        # Distinct contents: identical ones would share one record.
        data = documents.pdf_english(name).data
        return Document(name, "application/pdf", data)

    return [
        (documents.slow_pdf(), "failed", ("time",)),
        (misbehaving("loop.pdf"), "failed", ("time",)),
        (misbehaving("grow.pdf"), "failed", ("memory",)),
        (misbehaving("crash.pdf"), "failed", ("crash",)),
        (documents.zip_bomb(), "failed", ("zip-bomb",)),
        (documents.huge_xlsx("platypus"), "ok", CUT_SHORT),
        (documents.encrypted_pdf("secret"), "failed", ("encrypted",)),
        (documents.broken_docx("broken"), "failed", ("unreadable",)),
    ]


@pytest.mark.django_db
def test_an_import_of_hostile_attachments_archives_everything_and_records_why(
    actors, settings, monkeypatch, tmp_path: Path
):
    """GIVEN an mbox where messages carrying hostile files (a PDF that takes
    forever, readers that loop, eat memory or die, a ZIP bomb, a 500 MB
    spreadsheet, an encrypted PDF, a damaged Word file) sit between good ones
    WHEN it is imported THEN the import finishes, every message is archived
    and indexed, each failure is recorded with its reason, the good files are
    found, and no file cost more than its time limit."""
    monkeypatch.setattr(attachment_text_service, "EXTRACT_TARGET_IN_USE", MISBEHAVING)
    settings.MAILARCHIVE_EXTRACT_TIME_LIMIT = 3.0
    settings.MAILARCHIVE_EXTRACT_MEMORY_LIMIT = 768 * 1024 * 1024
    settings.MAILARCHIVE_EXTRACT_MAX_CHARS = 50_000
    hostile = hostile_documents()
    raws = [message_with([documents.docx("marmoset")], subject="Good before")]
    raws += [
        message_with([document], subject=f"Hostile {number}")
        for number, (document, _status, _reason) in enumerate(hostile)
    ]
    raws.append(message_with([documents.pptx("narwhal")], subject="Good after"))
    path = tmp_path / "hostile.mbox"
    box = mailbox.mbox(path)
    for raw in raws:
        box.add(raw)
    box.close()

    out = io.StringIO()
    started = time.monotonic()
    call_command("importmbox", "--space", actors.space.key, str(path), stdout=out)
    took = time.monotonic() - started

    assert f"imported {len(raws)}" in out.getvalue()
    # Each file costs at most its 3 s, the kill and a new process (slow to
    # start on a busy machine); all of them one after the other fit in this.
    assert took < len(hostile) * 15 + 60
    messages = Message.objects.filter(space=actors.space)
    assert messages.count() == len(raws)
    assert not messages.exclude(index_state=Message.IndexState.INDEXED).exists()
    for number, (document, status, reasons) in enumerate(hostile):
        part = Attachment.objects.get(message__subject=f"Hostile {number}")
        record = text_of(part)
        assert record.status == status, document.filename
        assert record.reason in reasons, document.filename
        assert part.text_read
    assert len(text_of(Attachment.objects.get(filename="everything.xlsx")).text) <= (
        50_000
    )
    assert found(actors.space, "marmoset") == ["Good before"]
    assert found(actors.space, "narwhal") == ["Good after"]
    assert found(actors.space, "platypus") == ["Hostile 5"]


@pytest.mark.django_db
def test_site_admins_see_what_could_not_be_read_and_why(actors):
    ingest(actors.space, message_with([documents.encrypted_pdf("x")], subject="Lock"))
    record = AttachmentText.objects.get()
    client = client_for(actors, "site_admin")
    listing = client.get(reverse("admin:mailarchive_attachmenttext_changelist"))
    assert listing.status_code == 200 and "encrypted" in listing.content.decode()
    detail = client.get(
        reverse("admin:mailarchive_attachmenttext_change", args=[record.pk])
    )
    assert "locked.pdf" in detail.content.decode()


@pytest.mark.django_db
def test_exporting_a_search_inside_attachments_gives_their_messages(actors):
    ingest(actors.space, message_with([documents.docx("marmoset")], subject="File"))
    ingest(actors.space, message_with([], subject="Body", body="A marmoset.\n"))
    client = client_for(actors, "viewer")
    url = reverse("mbox:export-search", kwargs={"key": actors.space.key})
    inside = b"".join(client.get(url, {"q": "in:attachments marmoset"}))
    everywhere = b"".join(client.get(url, {"q": "marmoset"}))
    assert inside.count(b"\nSubject: ") == 1 and b"Subject: File" in inside
    assert everywhere.count(b"\nSubject: ") == 2


@pytest.mark.django_db
def test_a_message_of_too_many_attachments_has_only_some_read(actors, monkeypatch):
    """GIVEN a message with more files than one message may have read
    THEN the first are read and the rest recorded as not read, and such a
    file is read when it comes again in a message of its own."""
    monkeypatch.setattr(attachment_text_service, "MAX_READ_PER_MESSAGE", 2)
    files = [documents.docx(word) for word in ("alpaca", "bison", "coyote")]
    message = ingest(actors.space, message_with(files, subject="Three files"))
    third = Attachment.objects.get(message=message, position=2)
    assert (text_of(third).status, text_of(third).reason) == ("failed", "too-many")
    assert found(actors.space, "bison") == ["Three files"]
    assert found(actors.space, "coyote") == []
    ingest(actors.space, message_with(files[2:], subject="One file"))
    assert text_of(third).status == AttachmentText.Status.OK
    assert found(actors.space, "coyote") == ["One file"]
