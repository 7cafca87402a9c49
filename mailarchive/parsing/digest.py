"""Content identity of a raw message, independent of how it was delivered."""

from __future__ import annotations

import hashlib
import re

# Headers that servers and mail programs add or rewrite per delivery or per
# mailbox: two copies of one message differ only in these. DKIM-Signature is
# kept on purpose: it is set by the sender and belongs to the content.
IGNORED_HEADERS = frozenset(
    {
        "received",
        "x-received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "x-delivered-to",
        "envelope-to",
        "x-envelope-from",
        "x-envelope-to",
        "received-spf",
        "authentication-results",
        "x-original-authentication-results",
        "status",
        "x-status",
        "x-uid",
        "x-keywords",
        "content-length",
        "lines",
        "x-uidl",
        "x-antivirus",
        "x-antivirus-status",
    }
)
IGNORED_HEADER_PREFIXES = (
    "arc-",
    "x-spam-",
    "x-virus-",
    "x-mozilla-",
    "x-imap",
    "x-ms-exchange-organization-",
)

# mboxo and mboxrd quote body lines starting with "From " differently (">From "
# vs ">>From " round trips); dropping all leading ">" from such lines makes the
# copies agree.
_FROM_QUOTING = re.compile(rb"^>+(?=From )", re.MULTILINE)


def _keep(line: bytes) -> bool:
    name, colon, _value = line.partition(b":")
    if not colon:
        return True
    key = name.strip().lower().decode("latin-1")
    return key not in IGNORED_HEADERS and not key.startswith(IGNORED_HEADER_PREFIXES)


def content_digest(raw: bytes) -> str:
    """SHA-256 hex of a message's content for duplicate detection.

    Ignores per-delivery trace headers (see ``IGNORED_HEADERS``), line endings,
    header name case, whitespace folding in header values, trailing blank lines,
    a leading mbox "From " line and mbox From-quoting. Pure; never raises.
    """
    try:
        return _digest(bytes(raw))
    except Exception:  # identity must exist even for garbage
        return hashlib.sha256(bytes(raw)).hexdigest()


def _digest(raw: bytes) -> str:
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if text.startswith(b"From "):
        text = text.partition(b"\n")[2]
    head, separator, body = text.partition(b"\n\n")
    if (
        not separator
        and not head.endswith(b"\n")
        and b":" not in head.split(b"\n", 1)[0]
    ):
        head, body = b"", head
    # Each field as its lines, joined once: adding to bytes copies them, and
    # a field may be folded over thousands of lines.
    folded: list[list[bytes]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and folded:
            folded[-1].append(line.strip())
        elif line:
            folded.append([line])
    digest = hashlib.sha256()
    for lines in folded:
        field = b" ".join(lines)
        if not _keep(field):
            continue
        name, colon, value = field.partition(b":")
        digest.update(name.strip().lower() + colon + b" ".join(value.split()) + b"\n")
    digest.update(b"\n")
    digest.update(_FROM_QUOTING.sub(b"", body.rstrip(b"\n \t")))
    return digest.hexdigest()
