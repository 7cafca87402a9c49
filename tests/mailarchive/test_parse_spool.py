"""Large parts decoded into files: the same parse as the parser's own.

The reference is the email package's parse of the whole message: every
message of the corpus and every crafted one below is parsed with large bodies
spooled (the size limit lowered so that every stretch of body lines is
spooled) and without, and everything the parse gives must be the same, the
attachments' bytes and digests included.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import quopri
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailarchive.mbox import iter_mbox
from mailarchive.parsing import parse_message, spool
from mailarchive.parsing.walk import MAX_PARTS
from tests.mailarchive.test_complexity import assert_linear
from tests.mailarchive.test_corpus_outputs import adversarial_messages


def corpus_messages() -> list[bytes]:
    root = Path(os.environ.get("MAILARCHIVE_TEST_CORPUS", "/work/shared/corpus"))
    if not root.is_dir():
        pytest.fail(f"test corpus not found at {root}; set MAILARCHIVE_TEST_CORPUS")
    raws = [p.read_bytes() for p in sorted((root / "mimekit/messages").glob("*"))]
    for path in sorted((root / "mimekit/mbox").glob("*.mbox.txt")):
        with path.open("rb") as fp:
            raws += [entry.raw for entry in iter_mbox(fp)]
    assert len(raws) > 50
    return raws


def multipart(*parts: bytes, boundary: bytes = b"b1", nl: bytes = b"\n") -> bytes:
    body = b"".join(b"--" + boundary + nl + part + nl for part in parts)
    return body + b"--" + boundary + b"--" + nl


def mail(body: bytes, content_type: bytes, nl: bytes = b"\n", extra: bytes = b""):
    head = [
        b"From: a@example.com",
        b"Subject: spooled",
        b"Message-ID: <s@example.com>",
        b"MIME-Version: 1.0",
        b"Content-Type: " + content_type,
    ]
    return b"".join(line + nl for line in head) + extra + nl + body


def part(content: bytes, headers: bytes, nl: bytes = b"\n") -> bytes:
    return headers.replace(b"\n", nl) + nl + nl + content


def b64_lines(data: bytes, nl: bytes = b"\n") -> bytes:
    return base64.encodebytes(data).replace(b"\n", nl)


def crafted_messages() -> list[bytes]:
    rng = random.Random(7)
    blob = bytes(rng.randrange(256) for _ in range(6000))
    text = b"Line of text\n" * 300
    found: list[bytes] = []
    for nl in (b"\n", b"\r\n", b"\r"):
        pdf = part(
            b64_lines(blob, nl),
            b'Content-Type: application/pdf; name="a.pdf"\n'
            b"Content-Transfer-Encoding: base64",
            nl,
        )
        found.append(
            mail(
                multipart(part(b"hello", b"Content-Type: text/plain", nl), pdf, nl=nl),
                b'multipart/mixed; boundary="b1"',
                nl,
            )
        )
    attachment = b'Content-Type: application/octet-stream; name="x.bin"\n'
    cases = {
        # Damaged base64: characters outside the alphabet, a missing or a
        # misplaced padding, data after the padding, a length one too long.
        "bad-char": b64_lines(blob[:3000]) + b"!!**\n" + b64_lines(blob[:300]),
        "no-padding": base64.b64encode(blob[:3001]).rstrip(b"=") + b"\n",
        "one-too-long": base64.b64encode(blob[:3000]) + b"Q\n",
        "after-padding": base64.b64encode(blob[:3001]) + b"QUFB\n",
        "inner-padding": base64.b64encode(b"ab") + base64.b64encode(blob[:900]),
        "empty-lines": b64_lines(blob[:2000]) + b"\n\n" + b64_lines(blob[:2000]),
        "boundary-like": b64_lines(blob[:2000]) + b"--b1x\n--b2\n" + b64_lines(blob),
        "blank": b" \n\t\n" * 500,
    }
    for name, body in cases.items():
        found.append(
            mail(
                multipart(
                    part(body, attachment + b"Content-Transfer-Encoding: base64"),
                    part(b"after " + name.encode(), b"Content-Type: text/plain"),
                ),
                b'multipart/mixed; boundary="b1"',
            )
        )
    qp = quopri.encodestring(blob + text + b"tail=\r\n" + blob)
    for encoding, body in (
        (b"quoted-printable", qp),
        (b"quoted-printable", qp.replace(b"\n", b"\r\n")),
        (b"quoted-printable", b"soft=\rbreak=\r\nnext=\nline=3D=\n" * 400),
        (b"8bit", blob.replace(b"\n", b"x") + b"\n" + blob),
        (b"binary", blob),
        (b"7bit", text),
        (b"x-uuencode", b"begin 644 f\n" + b"M" + b"A" * 60 + b"\n" * 200),
        (b"x-unknown", text),
    ):
        found.append(
            mail(
                multipart(
                    part(body, attachment + b"Content-Transfer-Encoding: " + encoding),
                    part(text, b"Content-Type: text/plain; charset=latin-1"),
                    part(
                        quopri.encodestring(b"<p>" + text + b"</p>"),
                        b"Content-Type: text/html\n"
                        b"Content-Transfer-Encoding: quoted-printable",
                    ),
                ),
                b'multipart/mixed; boundary="b1"',
            )
        )
    inner = mail(
        multipart(
            part(b64_lines(blob), attachment + b"Content-Transfer-Encoding: base64"),
            boundary=b"in",
        ),
        b'multipart/mixed; boundary="in"',
    )
    found += [
        # An attached message whose part is large, and one that is all body.
        mail(
            multipart(part(inner, b"Content-Type: message/rfc822")),
            b'multipart/mixed; boundary="b1"',
        ),
        mail(
            multipart(part(b"Subject: x\n\n" + text, b"Content-Type: message/rfc822")),
            b'multipart/mixed; boundary="b1"',
        ),
        # A delivery report: blocks of fields separated by empty lines.
        mail(
            multipart(
                part(b"text", b"Content-Type: text/plain"),
                part(
                    b"Reporting-MTA: dns; x\n\n" + b"Final-Recipient: x\n" * 300,
                    b"Content-Type: message/delivery-status",
                ),
                boundary=b"r",
            ),
            b'multipart/report; boundary="r"',
        ),
        # Large preamble and epilogue, a multipart without a boundary, one
        # whose end never comes, one whose first boundary never comes.
        mail(
            b"\n"
            + text
            + multipart(part(text, b"Content-Type: text/plain"))
            + b"\n\n"
            + text,
            b'multipart/mixed; boundary="b1"',
        ),
        mail(b"\n" + text, b"multipart/mixed"),
        mail(
            b"--b1\n"
            + part(b64_lines(blob), attachment + b"Content-Transfer-Encoding: base64"),
            b'multipart/mixed; boundary="b1"',
        ),
        mail(text + b"\n\n" + text, b'multipart/mixed; boundary="b1"'),
        # Nested multiparts whose inner part ends at the outer boundary.
        mail(
            multipart(
                b'Content-Type: multipart/alternative; boundary="b2"\n\n--b2\n'
                + part(text, b"Content-Type: text/plain")
                + b"\n--b2\n"
                + part(
                    b64_lines(blob), attachment + b"Content-Transfer-Encoding: base64"
                ),
                part(b"x", b"Content-Type: text/plain"),
            ),
            b'multipart/mixed; boundary="b1"',
        ),
        # A single-part message, text and base64, with 8-bit bytes.
        mail(b"caf\xe9 " * 3000 + b"\n" + text, b"text/plain; charset=latin-1"),
        mail(
            b64_lines(blob),
            b"application/pdf",
            extra=b"Content-Transfer-Encoding: base64\n",
        ),
        # Past the part limit: the parts read before it stay the same.
        mail(
            multipart(
                *[part(b64_lines(blob[:200]), attachment) for _ in range(MAX_PARTS)]
            ),
            b'multipart/mixed; boundary="b1"',
        ),
    ]
    return found


def comparable(parsed) -> dict:
    """Everything a parse gives, with each attachment's bytes in place of the
    file that holds them."""
    fields = {
        f.name: getattr(parsed, f.name)
        for f in dataclasses.fields(parsed)
        if f.name != "attachments"
    }
    fields["attachments"] = [
        (
            dataclasses.replace(item, content=item.read(), path=None, spooled_size=0),
            item.size,
        )
        for item in parsed.attachments
    ]
    return fields


def spooled_parse(raw: bytes, directory: Path):
    with spool.spooling(str(directory)):
        return parse_message(raw)


def test_every_message_parses_the_same_with_its_bodies_spooled(tmp_path, monkeypatch):
    """GIVEN the corpus, the adversarial mail and crafted large parts
    WHEN each is parsed with every stretch of body lines spooled, and whole
    THEN both parses give the same bodies, headers, problems and attachments."""
    messages = corpus_messages() + adversarial_messages() + crafted_messages()
    spooled_any = 0
    for raw in messages:
        expected = comparable(parse_message(raw))
        monkeypatch.setattr(spool, "SPOOL_BYTES", 1)
        parsed = spooled_parse(raw, tmp_path)
        monkeypatch.undo()
        spooled_any += any(a.path for a in parsed.attachments)
        assert comparable(parsed) == expected, raw[:300]
    assert spooled_any > len(crafted_messages()) // 2


def test_a_large_attachment_is_decoded_into_a_file(tmp_path):
    """GIVEN a message with a 3 MB attachment
    WHEN it is parsed in a spool directory
    THEN the attachment is a file there with the parser's bytes and digest,
    and nothing is left in the directory but that file."""
    data = os.urandom(3 * 1024 * 1024)
    raw = mail(
        multipart(
            part(b"see attached", b"Content-Type: text/plain"),
            part(
                b64_lines(data, b"\r\n"),
                b'Content-Type: application/pdf; name="big.pdf"\n'
                b"Content-Transfer-Encoding: base64",
                b"\r\n",
            ),
            nl=b"\r\n",
        ),
        b'multipart/mixed; boundary="b1"',
        b"\r\n",
    )
    parsed = spooled_parse(raw, tmp_path)
    [attachment] = parsed.attachments
    assert attachment.path is not None and attachment.content == b""
    assert Path(attachment.path).parent == tmp_path
    assert attachment.read() == data and attachment.size == len(data)
    assert comparable(parsed) == comparable(parse_message(raw))
    assert parsed.text_body == "see attached"
    assert list(tmp_path.iterdir()) == [Path(attachment.path)]


def test_spooling_is_linear(tmp_path):
    """The search for stretches and their decoding grow linearly."""

    def build(n: int) -> bytes:
        lines = b"".join(
            b"--b1\n"
            + part(
                b64_lines(b"x" * 5000),
                b"Content-Type: image/png\nContent-Transfer-Encoding: base64",
            )
            + b"\n"
            for _ in range(n // 5000)
        )
        return mail(lines + b"--b1--\n", b'multipart/mixed; boundary="b1"')

    def run(raw: bytes) -> None:
        for attachment in spooled_parse(raw, tmp_path).attachments:
            Path(attachment.path or os.devnull).unlink(missing_ok=True)

    original = spool.SPOOL_BYTES
    spool.SPOOL_BYTES = 1024
    try:
        assert_linear(build, run, n=400_000)
    finally:
        spool.SPOOL_BYTES = original


def test_outside_a_spool_directory_nothing_is_spooled():
    raw = crafted_messages()[0]
    parsed = parse_message(raw)
    assert all(a.path is None for a in parsed.attachments)
    assert spool.spool_directory() is None


# The plain statement of a break: a line ending, CRLF taken whole, followed by
# "--" or another line ending.
_BREAK_AS_DEFINED = re.compile(rb"(?>\r\n|\r|\n)(?=--|[\r\n])")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", b"a", b" "])))
def test_breaks_are_found_as_defined(pieces):
    source = b"".join(pieces)
    expected = [(m.start(), m.end()) for m in _BREAK_AS_DEFINED.finditer(source)]
    assert list(spool._breaks(source)) == expected
