"""The content digest: one identity for one content, read in pieces."""

from __future__ import annotations

import hashlib
import os
import re
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailarchive.parsing import content_digest
from mailarchive.parsing import digest as digest_module

# Digests of archived messages are stored: they must never change.
KNOWN = [
    (
        b"From a@b Mon\r\nSubject: Hi\r\nReceived: x\r\n\r\nbody\r\n>From here\r\n"
        b"\r\n\r\n",
        "0032e953a38eebddccd8a48dde83e2cdf33ffbcb6b7165ce69df11ba1b9ff280",
    ),
    (
        b"Subject: Hi\n  folded\n\tmore\nX-Spam-Flag: yes\n\nline\r\n>>From x\r"
        b">From \n",
        "adbb8c44108a3ebbc7ffb821f7e71a3349ddcdc98178e027f7a68b142156a345",
    ),
    (
        b"no header line at all",
        "14df698fdddc651c6260eed52e4232870dc3edb43ed4bf0e0d6be9b5434344b8",
    ),
    (
        b"Subject: only headers\r\n",
        "05ebe1c801205da86853d467d57f111c23f1cd623b867023066ba7112cdd83d5",
    ),
    (
        b"x\r\r\ny: z\r\n\r\n>From end \t\r\n",
        "914af5609a3ad0961b177c6232602c889eb76ae85984d60d8da439002fbf8894",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), KNOWN, ids=range(len(KNOWN)))
def test_digest_of_known_contents_stays_the_same(raw: bytes, expected: str) -> None:
    assert content_digest(raw) == expected
    assert content_digest(memoryview(raw)) == expected


def _corpus() -> list[bytes]:
    root = Path(os.environ["MAILARCHIVE_TEST_CORPUS"])
    return [path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()]


def test_pieces_do_not_change_the_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN the test corpus and line ends of every kind at piece boundaries
    WHEN the body is hashed in pieces of a few bytes
    THEN every digest is the one of the whole body."""
    raws = [
        *_corpus(),
        *(raw for raw, _digest in KNOWN),
        b"A: b\r\n\r\n" + b"line\r\n>From x\r\n\r\r\n>>From y\r" * 50 + b"\r\n \t\r\n",
    ]
    whole = [content_digest(raw) for raw in raws]
    monkeypatch.setattr(digest_module, "BODY_PIECE", 5)
    assert [content_digest(raw) for raw in raws] == whole


def test_digest_of_a_large_message_holds_no_copy_of_it() -> None:
    line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"
    raw = b"Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    tracemalloc.start()
    try:
        content_digest(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(raw) // 4


# The rule the digest applies to mbox From-quoting, as it is defined.
_FROM_QUOTING_DEFINED = re.compile(rb"^>+(?=From )", re.MULTILINE)


@given(
    lines=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),
            st.sampled_from(
                [b"From x", b"Fromage", b"From ", b"text", b"", b" From y"]
            ),
            st.sampled_from([b"\n", b"\r\n", b"\r"]),
        ),
        max_size=30,
    )
)
def test_from_quoting_is_dropped_as_defined(
    lines: list[tuple[int, bytes, bytes]],
) -> None:
    """GIVEN body lines with any number of ">" before "From " or other text,
    and line ends of every kind
    WHEN the digest is taken
    THEN it hashes the body with every ">" run before "From " at a line's
    start removed, and nothing else."""
    body = b"".join(b">" * depth + text + end for depth, text, end in lines)
    normalized = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    expected = hashlib.sha256(
        b"subject:s\n\n" + _FROM_QUOTING_DEFINED.sub(b"", normalized.rstrip(b"\r\n \t"))
    )
    assert content_digest(b"Subject: s\n\n" + body) == expected.hexdigest()
