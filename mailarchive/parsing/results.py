"""What the parser hands to the rest of the archive: plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """One mailbox: decoded display name and address (domain lower-cased)."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """A part of the message that is not its text or HTML body."""

    filename: str  # decoded and made safe; never empty
    content_type: str  # lower-case "type/subtype"
    content: bytes  # transfer-decoded payload; empty when it is in ``path``
    content_id: str | None  # without <>, for cid: references
    inline: bool  # shown within the HTML body rather than listed
    sha256: str  # hex digest of content
    # The URL in Content-Location, resolved against content_base (see
    # .locations); HTML may refer to the part by it instead of by cid:.
    content_location: str | None = None
    # The base URL of the multipart/related the part belongs to: relative
    # references in that group's HTML resolve against it.
    content_base: str | None = None
    # The charset its Content-Type declared, for reading a text attachment.
    charset: str | None = None
    # A file that holds the content instead, for a part too large to carry
    # (see .spool); whoever receives the answer stores and removes it.
    path: str | None = None
    spooled_size: int = 0

    @property
    def size(self) -> int:
        return self.spooled_size if self.path is not None else len(self.content)

    def read(self) -> bytes:
        """The content, from memory or from its file."""
        if self.path is None:
            return self.content
        return Path(self.path).read_bytes()


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the archive stores or indexes about one message."""

    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    subject: str
    from_: ParsedAddress | None
    sender: ParsedAddress | None
    to: list[ParsedAddress]
    cc: list[ParsedAddress]
    reply_to: list[ParsedAddress]
    date: datetime | None  # aware, UTC
    date_offset_minutes: int | None  # the sender's UTC offset, when it gave one
    text_body: str
    html_body: str
    attachments: list[ParsedAttachment]
    headers: list[tuple[str, str]]
    problems: list[str]
    parseable: bool
    # Text of attached messages (message/rfc822 parts), each introduced by its
    # From, Date and Subject lines; the messages themselves are .eml attachments.
    embedded_text: str = ""
