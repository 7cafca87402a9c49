"""Streaming mbox reading and mboxrd writing (pure Python, no database)."""

from __future__ import annotations

import email
import gzip
import io
import os
import random
import re
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import Message
from pathlib import Path
from typing import BinaryIO

import pytest

from mailarchive.mbox import (
    MboxEntry,
    MboxFormatError,
    count_messages,
    iter_eml,
    iter_mbox,
    iter_mboxrd_chunks,
    open_mbox_source,
    quote_mboxrd,
    sniff_source,
    unquote_mboxrd,
    write_mboxrd,
)

CHUNK_SIZES = [1, 5, 97, 4096]
MiB = 1 << 20


def corpus_root() -> Path:
    """The shared corpus folder; the run fails (never skips) without it."""
    root = Path(os.environ.get("MAILARCHIVE_TEST_CORPUS", "/work/shared/corpus"))
    if not (root / "mimekit" / "mbox").is_dir():
        pytest.fail(
            f"test corpus not found at {root}: set MAILARCHIVE_TEST_CORPUS to the "
            "shared/corpus folder"
        )
    return root


def corpus_mbox(name: str) -> bytes:
    return (corpus_root() / "mimekit" / "mbox" / f"{name}.mbox.txt").read_bytes()


def read_all(data: bytes, **options: object) -> list[MboxEntry]:
    return list(iter_mbox(io.BytesIO(data), **options))  # type: ignore[arg-type]


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=policy.compat32)


def mime_tree(part: Message, depth: int = 0) -> list[str]:
    """The MIME structure written the way the corpus summaries write it."""
    lines = ["   " * depth + "Content-Type: " + part.get_content_type()]
    # The stdlib parses delivery-status bodies into header blocks; the
    # summaries show that part as a leaf.
    if part.is_multipart() and part.get_content_type() != "message/delivery-status":
        for sub in part.get_payload():
            lines += mime_tree(sub, depth + 1)
    return lines


def summary(name: str) -> list[dict[str, object]]:
    """The expected messages of a corpus mbox, from its ``*-summary.txt``."""
    text = (corpus_root() / "mimekit" / "mbox" / f"{name}-summary.txt").read_text()
    messages = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        subject = next(line for line in lines if line.startswith("Subject: "))
        messages.append(
            {
                "from_line": lines[0],
                "subject": subject.removeprefix("Subject: "),
                "tree": [
                    line.lower() for line in lines if "Content-Type:" in line.lstrip()
                ],
            }
        )
    return messages


@pytest.mark.parametrize("name", ["content-length", "issue1189"])
def test_corpus_mbox_gives_the_messages_of_its_summary(name: str) -> None:
    """Every message of the summary comes out whole: envelope, subject, MIME tree."""
    data = corpus_mbox(name)
    expected = summary(name)

    entries = read_all(data)

    assert len(entries) == len(expected)
    assert count_messages(io.BytesIO(data)) == len(expected)
    for entry, want in zip(entries, expected, strict=True):
        message = parse(entry.raw)
        assert entry.from_line.decode() == want["from_line"], entry.index
        assert message["Subject"] == want["subject"], entry.index
        assert [line.lower() for line in mime_tree(message)] == want["tree"]
        assert data[entry.offset :].startswith(entry.from_line + b"\n")
    assert [entry.index for entry in entries] == list(range(len(expected)))


@pytest.mark.parametrize("name", ["content-length", "issue1189", "simple", "unmunged"])
@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_chunk_size_does_not_change_the_result(name: str, chunk_size: int) -> None:
    data = corpus_mbox(name)

    assert read_all(data, chunk_size=chunk_size) == read_all(data)
    assert count_messages(io.BytesIO(data), chunk_size=chunk_size) == len(
        read_all(data)
    )


def test_raw_is_the_file_between_separators_under_mboxo() -> None:
    """GIVEN an mboxo file WHEN read as mboxo THEN each raw is the file's bytes
    between its From_ line and the next one, minus the separator's blank line."""
    data = corpus_mbox("content-length")
    entries = read_all(data, variant="mboxo")

    for entry, following in zip(entries, [*entries[1:], None], strict=True):
        end = following.offset if following else len(data)
        stored = data[entry.offset + len(entry.from_line) + 1 : end]
        assert stored in (entry.raw, entry.raw + b"\n")


def test_auto_restores_quoted_from_lines_that_mboxo_keeps() -> None:
    """The corpus writer quoted the envelope line of forwarded messages."""
    data = corpus_mbox("content-length")
    envelope = b"From - Fri Dec 13 15:01:21 1996\n"

    auto = read_all(data)
    mboxo = read_all(data, variant="mboxo")

    assert [e.index for e in auto if b"\n" + envelope in e.raw] == [15, 16]
    assert not any(b"\n" + envelope in e.raw for e in mboxo)
    assert all(b"\n>" + envelope in mboxo[i].raw for i in (15, 16))


def _unquoted_forwards(data: bytes, *, with_lengths: bool) -> bytes:
    """The corpus file with the quoted forwarded envelopes unquoted.

    Each ``>From …`` line becomes ``From … `` (same length, so the messages'
    Content-Length headers stay right); without lengths, the header name is
    changed at equal length so that From_ lines alone decide.
    """
    quoted = b">From - Fri Dec 13 15:01:21 1996\n"
    assert data.count(quoted) == 2
    data = data.replace(quoted, b"From - Fri Dec 13 15:01:21 1996 \n")
    if not with_lengths:
        data = data.replace(b"\nContent-Length:", b"\nContent-Lengtx:")
    return data


def test_content_length_keeps_unquoted_from_lines_inside_messages() -> None:
    """GIVEN two messages whose bodies hold unquoted, separator-shaped From lines
    WHEN their Content-Length points at the next From_ line
    THEN the lines stay in the body and the file still has 29 messages."""
    data = _unquoted_forwards(corpus_mbox("content-length"), with_lengths=True)
    expected = summary("content-length")

    entries = read_all(data)

    assert len(entries) == 29
    assert count_messages(io.BytesIO(data)) == 29
    for entry, want in zip(entries, expected, strict=True):
        assert parse(entry.raw)["Subject"] == want["subject"]
    for index in (15, 16):
        assert b"\n\nFrom - Fri Dec 13 15:01:21 1996 \n" in entries[index].raw


def test_without_content_length_from_lines_split() -> None:
    data = _unquoted_forwards(corpus_mbox("content-length"), with_lengths=False)

    entries = read_all(data)

    assert len(entries) == 31
    assert [e.from_line for e in entries[16:19:2]] == [
        b"From - Fri Dec 13 15:01:21 1996 "
    ] * 2


def test_wrong_content_length_falls_back_to_from_lines() -> None:
    data = (
        b"From a@example.com Mon Jan  1 00:00:00 2024\n"
        b"Subject: one\nContent-Length: 3\n\nfirst body\n\n"
        b"From b@example.com Mon Jan  1 00:00:01 2024\n"
        b"Subject: two\n\nsecond body\n"
    )

    entries = read_all(data)

    assert [e.raw for e in entries] == [
        b"Subject: one\nContent-Length: 3\n\nfirst body\n",
        b"Subject: two\n\nsecond body\n",
    ]


@pytest.mark.parametrize("ending", [b"", b"\n"], ids=["eof", "blank-line-at-eof"])
def test_content_length_pointing_at_the_end_of_the_file(ending: bytes) -> None:
    body = b"From here on\n\nFrom there on\n"
    message = b"Subject: x\nContent-Length: %d\n\n" % len(body) + body
    data = b"From - \n" + message + ending

    entries = read_all(data)

    assert [e.raw for e in entries] == [message]


def test_content_length_beyond_the_limit_is_not_trusted() -> None:
    body = b"one\n\nFrom two\nSubject: y\n\nthree\n"
    message = b"Subject: x\nContent-Length: %d\n\n" % len(body) + body
    data = b"From - \n" + message

    assert len(read_all(data)) == 1
    assert len(read_all(data, max_message_bytes=len(message) - 1)) == 2


class CountingReader(io.BytesIO):
    """A stream that remembers how far it has been read."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data


def test_a_lying_content_length_does_not_make_the_reader_hold_the_file() -> None:
    first = b"From - \nSubject: x\nContent-Length: 999999999999\n\nshort\n\n"
    other = b"From - \nSubject: y\n\n" + b"text\n" * 200 + b"\n"
    stream = CountingReader(first + other * 1000)

    entries = iter_mbox(stream, chunk_size=4096)

    assert next(entries).raw == b"Subject: x\nContent-Length: 999999999999\n\nshort\n"
    assert stream.furthest < 64 * 1024
    assert len(list(entries)) == 1000


def test_unmunged_from_lines_after_a_blank_line_separate() -> None:
    """Without Content-Length an unquoted ``From`` line after a blank line is a
    separator: the file gives four messages, as other mbox readers do."""
    data = corpus_mbox("unmunged")

    entries = read_all(data)

    assert [e.from_line for e in entries] == [
        b"From -",
        b"From Russia with love",
    ] * 2
    assert entries[0].offset == 3  # after the byte order mark
    assert parse(entries[2].raw)["Subject"] == (
        "Another test message with an unmunged From line"
    )
    assert entries[3].raw == b"Year: 1963\n\nWhat did Thunderbird do this time?\n"


def test_unmunged_messages_with_content_length_stay_whole() -> None:
    data = corpus_mbox("unmunged").removeprefix(b"\xef\xbb\xbf")
    pieces = data.split(b"From -\n")
    assert pieces[0] == b"" and len(pieces) == 3
    messages = [pieces[1].removesuffix(b"\n"), pieces[2]]
    rewritten = []
    for message in messages:
        headers, body = message.split(b"\n\n", 1)
        length = b"\nContent-Length: %d" % len(body)
        rewritten.append(headers + length + b"\n\n" + body)
    mbox = b"".join(b"From -\n" + message + b"\n" for message in rewritten)

    entries = read_all(mbox)

    assert [e.raw for e in entries] == rewritten
    assert all(b"\n\nFrom Russia with love\n" in e.raw for e in entries)


def test_separators_without_blank_lines_before_a_header_block() -> None:
    data = corpus_mbox("simple")

    entries = read_all(data)

    assert [parse(e.raw)["Subject"] for e in entries] == [
        "this'll probably break a lot of mime parsers",
        "this'll probably break even more mime parsers",
        "if a mime parser can correctly handle this, I'm impressed",
    ]
    assert all(e.from_line == b"From - " for e in entries)
    assert all(e.raw.endswith(b"<-- You are here.\n") for e in entries)


def test_strict_from_line_without_blank_line_separates() -> None:
    data = (
        b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n"
        b"From b@example.com Tue Feb 13 09:08:07 PST 2024\nbody only\n"
    )

    entries = read_all(data)

    assert [e.raw for e in entries] == [b"Subject: one\n\nbody\n", b"body only\n"]


def test_from_line_inside_a_paragraph_does_not_separate() -> None:
    """GIVEN a writer that quoted nothing WHEN a paragraph line starts with From
    THEN it stays in the message, and auto keeps that message's ``>From`` lines."""
    raw = (
        b"Subject: one\n\nHello,\nFrom what I hear it works.\n"
        b">From the quoted part.\nFrom my side:\nNote: all done.\nThanks\n"
    )
    data = b"From a@example.com Mon Jan  1 00:00:00 2024\n" + raw

    assert [e.raw for e in read_all(data)] == [raw]
    assert read_all(data, variant="mboxrd")[0].raw == raw.replace(
        b">From the", b"From the"
    )


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("auto", b"From a\n>From b\n>>From c\n> From d\n"),
        ("mboxrd", b"From a\n>From b\n>>From c\n> From d\n"),
        ("mboxo", b">From a\n>>From b\n>>>From c\n> From d\n"),
        ("mboxcl", b">From a\n>>From b\n>>>From c\n> From d\n"),
        ("mboxcl2", b">From a\n>>From b\n>>>From c\n> From d\n"),
    ],
)
def test_from_quoting_levels_per_variant(variant: str, expected: bytes) -> None:
    data = b"From x\n>From a\n>>From b\n>>>From c\n> From d\n"

    assert read_all(data, variant=variant)[0].raw == expected


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        (b"From a\n", b">From a\n"),
        (b">From a\r\n>>From b\r\n", b">>From a\r\n>>>From b\r\n"),
        (b"x\nFrom \nFrom\n From x\nxFrom y\n", b"x\n>From \nFrom\n From x\nxFrom y\n"),
        (b">>>>From deep", b">>>>>From deep"),
        (
            b"x\n" + b">" * 40 + b"From deeper\n>From x",
            b"x\n" + b">" * 41 + b"From deeper\n>>From x",
        ),
        (b"", b""),
    ],
    ids=["first-line", "crlf", "not-quoted", "deep", "deeper-than-passes", "empty"],
)
def test_quote_and_unquote_are_inverse(raw: bytes, quoted: bytes) -> None:
    assert quote_mboxrd(raw) == quoted
    assert unquote_mboxrd(quoted) == raw


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("name", ["simple", "content-length", "issue1189"])
def test_crlf_files_keep_crlf(name: str) -> None:
    lf = read_all(corpus_mbox(name))

    crlf = read_all(_crlf(corpus_mbox(name)))

    assert [e.from_line for e in crlf] == [e.from_line for e in lf]
    assert [e.raw for e in crlf] == [_crlf(e.raw) for e in lf]


def test_crlf_mboxrd_with_blank_separator_lines() -> None:
    data = b"From a\r\nSubject: 1\r\n\r\n>From x\r\n\r\nFrom b\r\nSubject: 2\r\n\r\n"

    entries = read_all(data)

    assert [e.raw for e in entries] == [
        b"Subject: 1\r\n\r\nFrom x\r\n",
        b"Subject: 2\r\n",
    ]


def _random_message(rng: random.Random) -> bytes:
    """A message made to provoke the reader: From lines, quoting, CRLF, binary."""
    fragments = [
        b"From ",
        b"From x@example.com Mon Jan  1 00:00:00 2024",
        b">From ",
        b">>From quoted",
        b"From: a@example.com",
        b"Subject: random",
        # Lengths that cannot point at a later message: absent from the
        # message, zero, or past any end.
        b"Content-Length: 0",
        b"Content-Length: 999999999",
        b"",
        b" From indented",
        b"\r",
        b"\xef\xbb\xbf",
    ]
    lines = []
    for _ in range(rng.randrange(0, 12)):
        if rng.random() < 0.6:
            line = rng.choice(fragments)
        else:
            line = rng.randbytes(rng.randrange(0, 40))
        lines.append(line + rng.choice([b"\n", b"\r\n"]))
    raw = b"".join(lines)
    if rng.random() < 0.2:
        raw += rng.randbytes(rng.randrange(1, 5)).replace(b"\n", b"x")
    return raw


def test_mboxrd_round_trip_of_random_messages() -> None:
    """GIVEN random messages WHEN written as mboxrd and read back THEN each comes
    back byte for byte (with one newline added when it had none at its end)."""
    rng = random.Random(4155)
    messages = [_random_message(rng) for _ in range(400)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    records = [
        (raw, rng.choice(["a@example.com", "", "<b@example.com>"]), start)
        for raw in messages
    ]
    out = io.BytesIO()
    for raw, sender, date in records:
        single = io.BytesIO()
        write_mboxrd(single, raw, envelope_sender=sender, date=date)
        expected = raw if raw.endswith(b"\n") else raw + b"\n"
        assert [e.raw for e in read_all(single.getvalue())] == [expected]
        out.write(single.getvalue())
    data = out.getvalue()

    assert b"".join(iter_mboxrd_chunks(records)) == data
    for chunk_size in [*CHUNK_SIZES, 1 << 20]:
        entries = read_all(data, chunk_size=chunk_size)
        assert [e.raw for e in entries] == [
            raw if raw.endswith(b"\n") else raw + b"\n" for raw in messages
        ]
    assert count_messages(io.BytesIO(data)) == len(messages)


def test_write_mboxrd_envelope_and_endings() -> None:
    out = io.BytesIO()
    east = timezone(timedelta(hours=2))

    write_mboxrd(
        out,
        b"Subject: x\r\n\r\nFrom me\r\n",
        envelope_sender="<bob@example.com>",
        date=datetime(2024, 3, 1, 1, 2, 3, tzinfo=east),
    )
    write_mboxrd(out, b"no newline", envelope_sender="two words", date=None)

    first, second = out.getvalue().split(b"\nFrom MAILER-DAEMON ", 1)
    assert first == (
        b"From bob@example.com Thu Feb 29 23:02:03 2024\nSubject: x\r\n\r\n>From me\r\n"
    )
    date, rest = second.split(b"\n", 1)
    assert re.fullmatch(rb"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", date)
    assert rest == b"no newline\n\n"


def test_write_mboxrd_refuses_naive_dates() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        write_mboxrd(io.BytesIO(), b"x\n", date=datetime(2024, 1, 1))


def test_oversized_messages_are_flagged_not_kept() -> None:
    big = b"Subject: big\n\n" + b"line of text\n" * 8000
    small = b"Subject: small\n\nhello\n"
    out = io.BytesIO()
    for raw in (small, big, small):
        write_mboxrd(out, raw, date=datetime(2024, 1, 1, tzinfo=UTC))
    data = out.getvalue()

    for chunk_size in (64, 1 << 20):
        entries = read_all(data, max_message_bytes=1000, chunk_size=chunk_size)
        assert [(e.oversized, e.raw, e.size) for e in entries] == [
            (False, small, len(small)),
            (True, b"", len(big)),
            (False, small, len(small)),
        ]
        assert entries[2].offset == data.rindex(b"From MAILER-DAEMON")
    assert count_messages(io.BytesIO(data), max_message_bytes=1000) == 3
    assert read_all(data, max_message_bytes=len(big))[1].raw == big


def test_iter_eml_gives_one_exact_entry() -> None:
    path = corpus_root() / "mimekit" / "messages" / "simple-multipart.eml"
    raw = path.read_bytes()

    with path.open("rb") as fp:
        assert sniff_source(fp) == "eml"
        assert list(iter_eml(fp)) == [MboxEntry(raw, b"", 0, 0)]
    assert list(iter_eml(io.BytesIO(raw), max_message_bytes=10)) == [
        MboxEntry(b"", b"", 0, 0, oversized=True, size=len(raw))
    ]
    assert next(iter_eml(io.BytesIO(b"\xef\xbb\xbf" + raw))).raw == raw


def test_a_message_file_is_not_an_mbox() -> None:
    path = corpus_root() / "mimekit" / "messages" / "simple-multipart.eml"

    with pytest.raises(
        MboxFormatError,
        match=re.escape("not an mbox file (first line is 'From: mimekit@example.com')"),
    ):
        read_all(path.read_bytes())


@pytest.mark.parametrize(
    "data", [b"", b"\xef\xbb\xbf", b"\n\r\n\n"], ids=["empty", "bom", "blank-lines"]
)
def test_empty_input_is_refused(data: bytes) -> None:
    with pytest.raises(MboxFormatError, match="^empty file$"):
        read_all(data)
    with pytest.raises(MboxFormatError, match="^empty file$"):
        count_messages(io.BytesIO(data))
    with pytest.raises(MboxFormatError, match="^empty file$"):
        sniff_source(io.BytesIO(data))


def test_sniff_source_tells_mbox_eml_and_garbage() -> None:
    mbox = io.BytesIO(b"\n" + corpus_mbox("simple"))
    eml = io.BytesIO(b"Return-Path: <a@example.com>\n\nbody\n")

    assert sniff_source(mbox) == "mbox"
    assert mbox.tell() == 0
    assert sniff_source(eml) == "eml"
    with pytest.raises(MboxFormatError, match="first line is 'PK"):
        sniff_source(io.BytesIO(b"PK\x03\x04 zip archive\n"))


def test_open_mbox_source_reads_gzip_by_magic_bytes(tmp_path: Path) -> None:
    data = corpus_mbox("content-length")
    path = tmp_path / "upload.bin"
    path.write_bytes(gzip.compress(data))

    with open_mbox_source(path) as fp:
        assert sniff_source(fp) == "mbox"
        entries = list(iter_mbox(fp))
    with open_mbox_source(path) as fp:
        count = count_messages(fp)

    assert entries == read_all(data)
    assert count == 29


def test_open_mbox_source_plain_file(tmp_path: Path) -> None:
    path = tmp_path / "archive.mbox.gz"
    path.write_bytes(corpus_mbox("simple"))

    with open_mbox_source(path) as fp:
        assert len(list(iter_mbox(fp))) == 3


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    packed = gzip.compress(corpus_mbox("content-length"))
    path = tmp_path / "cut.mbox"
    path.write_bytes(packed[: len(packed) // 2])

    with (
        open_mbox_source(path) as fp,
        pytest.raises(MboxFormatError, match="^truncated gzip file$"),
    ):
        list(iter_mbox(fp))


def test_corrupt_gzip_is_reported(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(corpus_mbox("simple")))
    packed[-8] ^= 0xFF  # the stored CRC no longer matches
    path = tmp_path / "bad.mbox"
    path.write_bytes(bytes(packed))

    with (
        open_mbox_source(path) as fp,
        pytest.raises(MboxFormatError, match="^corrupt gzip file"),
    ):
        list(iter_mbox(fp))


def test_open_mbox_source_refuses_empty_files_and_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")

    with pytest.raises(MboxFormatError, match="^empty file$"):
        open_mbox_source(empty)
    with pytest.raises(MboxFormatError, match="is a directory"):
        open_mbox_source(tmp_path)


def test_open_mbox_source_reports_permission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN the operating system refuses the file (faked: tests may run as root,
    for whom file modes do not refuse anything) THEN the error names it."""
    path = tmp_path / "secret.mbox"
    path.write_bytes(corpus_mbox("simple"))

    def refuse(self: Path, *args: object, **kwargs: object) -> BinaryIO:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(PermissionError, match="cannot read the mail file") as caught:
        open_mbox_source(path)
    assert caught.value.filename == str(path)


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mbox variant"):
        read_all(b"From x\n", variant="maildir")


def _big_message(size: int, number: int) -> bytes:
    head = b"Subject: big %d\r\n\r\n" % number
    line = b">From a quoted line in a big message.\r\nSome text of the body.\r\n"
    return head + (line * (size // len(line) + 1))[: size - len(head) - 2] + b"\r\n"


@pytest.mark.slow
def test_a_200_mib_mbox_streams_in_bounded_memory(tmp_path: Path) -> None:
    """GIVEN a 200 MiB mbox whose largest message is 24 MiB WHEN it is read
    THEN traced memory peaks near twice that message (plus the read buffer)."""
    path = tmp_path / "big.mbox"
    largest = 24 * MiB
    small = b"Subject: small\n\n" + b"From the body, quoted on export.\n" * 2000
    sizes = []
    date = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("wb") as out:
        while out.tell() < 200 * MiB:
            number = len(sizes)
            raw = _big_message(largest, number) if number % 700 == 350 else small
            write_mboxrd(out, raw, date=date)
            sizes.append(len(raw))
        del raw
    assert max(sizes) == largest and sizes.count(largest) >= 3

    tracemalloc.start()
    try:
        seen = []
        with path.open("rb") as fp:
            for entry in iter_mbox(fp):
                seen.append(len(entry.raw))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert seen == sizes
    assert peak < 2 * largest + 6 * MiB, f"peak {peak / MiB:.1f} MiB"
