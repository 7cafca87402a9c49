"""One pass over a parsed MIME tree: bodies, attachments, attached messages.

Which part becomes the text body, the HTML body or an attachment follows what
mail programs show: the plain and the HTML branch of multipart/alternative, the
root of multipart/related with its other parts inline, every inline text part
of multipart/mixed in order. Each payload is transfer-decoded at most once.
Parts named by Content-Location follow the rules of :mod:`.locations`.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO
from urllib.parse import unquote

from . import tnef
from .headers import (
    HeaderContext,
    decode_content_id,
    decode_content_type,
    decode_params,
    decode_unstructured,
    safe_filename,
)
from .locations import (
    LocationIndex,
    decode_location,
    related_base,
    resolve_location,
)
from .markup import Kind, attributes, tokens
from .results import ParsedAttachment
from .spool import Spooled, SpooledFile
from .text import html_to_text, normalise_newlines

MAX_DEPTH = 64
MAX_PARTS = 5000

_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global", "message/news"})
_CHARSET_ATTRIBUTE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:+-]+)", re.I)
# An HTML part without a charset parameter may name one in a <meta> tag here.
_META_CHARSET_WINDOW = 4096
# A cid: URL in an attribute or in CSS ends at a quote, space, bracket or ">".
_CID_URL = re.compile(r"cid:([^\s\"'<>()]+)", re.IGNORECASE)
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/news": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/feedback-report": ".txt",
    "text/rfc822-headers": ".txt",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
}
# The built-in table only: the answer must not depend on the machine's files.
_MIME_TYPES = mimetypes.MimeTypes()


@dataclass(slots=True)
class Body:
    """Text and HTML pieces collected for one message, in document order."""

    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Placement:
    """Where in the tree a part sits, which decides what it may become."""

    depth: int
    text_ok: bool  # may contribute to the text body
    html_ok: bool  # may contribute to the HTML body
    related: bool  # inside multipart/related, outside its root
    body: Body
    collect: bool  # False inside attached messages: those are kept whole
    base: str | None = None  # of the enclosing multipart/related, if any

    def child(self, **changes: object) -> Placement:
        """The placement of a child part: one level deeper, with ``changes``."""
        return replace(self, depth=self.depth + 1, **changes)


def _header_map(part: Message) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in part.raw_items():
        key = name.strip().lower()
        if key.startswith("content-") and key not in found:
            found[key] = value
    return found


def _extension(content_type: str) -> str:
    known = _EXTENSIONS.get(content_type)
    if known is not None:
        return known
    return _MIME_TYPES.guess_extension(content_type) or ""


def _type_from_filename(filename: str) -> str:
    guessed, encoding = _MIME_TYPES.guess_type(filename, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None:
        return "application/octet-stream"
    return guessed or "application/octet-stream"


class Walker:
    """One pass over the MIME tree, filling bodies, attachments and problems."""

    def __init__(
        self, context: HeaderContext, linesep: str, spooled: Spooled | None = None
    ) -> None:
        self.context = context
        self.linesep = linesep
        # Parts whose payloads are still in the raw bytes (see .spool).
        self.spooled = spooled
        self.body = Body()
        self.attachments: list[ParsedAttachment] = []
        self.embedded: list[str] = []
        self.parts_seen = 0

    def visit(self, part: Message, where: Placement) -> None:
        """Route ``part`` and its subtree into bodies, attachments and embedded
        text. Mutates the walker; visiting the same tree twice duplicates."""
        self.parts_seen += 1
        if self.parts_seen > MAX_PARTS:
            self.context.flag("too-many-parts")
            return
        if where.depth > MAX_DEPTH:
            self.context.flag("too-deep")
            return
        if part.defects:
            self.context.flag("defects")
        headers = _header_map(part)
        content_type, params, valid = decode_content_type(
            headers.get("content-type"), part.get_default_type(), self.context
        )
        disposition, disposition_params = decode_params(
            headers.get("content-disposition"), self.context
        )
        filename = disposition_params.get("filename") or params.get("name") or ""
        payload = part.get_payload()
        if isinstance(payload, list):
            if content_type.startswith("message/"):
                self._message(payload, content_type, filename, where)
            else:
                # The parser only builds a list for multipart and message
                # types; anything else here was mislabelled later on.
                self._multipart(payload, content_type, params, headers, where)
            return
        if not valid and filename:
            content_type = _type_from_filename(filename)
        if content_type.startswith("multipart/"):
            # A multipart whose boundary never came: its text is all there is.
            if not isinstance(payload, str) or not payload.strip():
                return
            content_type = "text/plain"
        self._leaf(part, content_type, params, disposition, filename, headers, where)

    def _multipart(
        self,
        children: list[Message],
        content_type: str,
        params: dict[str, str],
        headers: dict[str, str],
        where: Placement,
    ) -> None:
        subtype = content_type.partition("/")[2]
        if subtype == "alternative":
            leading = [self._leading_type(child) for child in children]
            plain = next(
                (
                    c
                    for c, t in zip(children, leading, strict=True)
                    if t == "text/plain"
                ),
                None,
            )
            html_children = [
                c for c, t in zip(children, leading, strict=True) if t == "text/html"
            ]
            html = html_children[-1] if html_children else None
            for child in children:
                self.visit(
                    child,
                    where.child(
                        text_ok=where.text_ok and child is plain,
                        html_ok=where.html_ok and child is html,
                    ),
                )
            return
        if subtype == "related":
            root = self._related_root(children, params)
            root_headers = _header_map(root) if root is not None else {}
            base = related_base(headers, root_headers, where.base, self.context)
            for child in children:
                if child is root:
                    self.visit(child, where.child(base=base))
                else:
                    self.visit(
                        child,
                        where.child(
                            text_ok=False, html_ok=False, related=True, base=base
                        ),
                    )
            return
        for child in children:
            self.visit(child, where.child())

    def _leading_type(self, part: Message) -> str:
        """The type a multipart/alternative branch shows first, cheaply."""
        for _ in range(MAX_DEPTH):
            raw = _header_map(part).get("content-type")
            content_type, params, _valid = decode_content_type(
                raw, part.get_default_type(), self.context.quiet()
            )
            payload = part.get_payload()
            if not content_type.startswith("multipart/") or not isinstance(
                payload, list
            ):
                return content_type
            if content_type == "multipart/related" and params.get("type"):
                return params["type"].lower()
            if not payload:
                return content_type
            part = payload[0]
        return ""

    def _related_root(
        self, children: list[Message], params: dict[str, str]
    ) -> Message | None:
        if not children:
            return None
        start = params.get("start", "").strip().strip("<>")
        if start:
            for child in children:
                if (
                    decode_content_id(
                        _header_map(child).get("content-id"), self.context.quiet()
                    )
                    == start
                ):
                    return child
        root_type = params.get("type", "").lower()
        if root_type:
            for child in children:
                if self._leading_type(child) == root_type:
                    return child
        return children[0]

    def _message(
        self,
        payload: list[Message],
        content_type: str,
        filename: str,
        where: Placement,
    ) -> None:
        # Only attachments need the bytes: inside an attached message nothing
        # is collected, and serializing every level again would cost the
        # depth times the size.
        if where.collect and self.spooled is not None:
            for message in payload:
                self.spooled.restore(message)
        content = (
            b"".join(self._flatten(message) for message in payload)
            if where.collect
            else b""
        )
        if content_type in _MESSAGE_TYPES and len(payload) == 1:
            inner = payload[0]
            raw_subject = next(
                (v for n, v in inner.raw_items() if n.strip().lower() == "subject"), ""
            )
            subject = decode_unstructured(raw_subject, self.context.quiet())
            if not filename and subject:
                filename = f"{subject}.eml"
            if where.collect:
                self._attach(content, content_type, filename, None, where, inline=False)
            nested = Body()
            # Reserve the slot first so attached messages read in document order.
            slot = len(self.embedded)
            self.embedded.append("")
            self.visit(
                inner,
                where.child(
                    text_ok=True,
                    html_ok=True,
                    related=False,
                    body=nested,
                    collect=False,
                    base=None,
                ),
            )
            self.embedded[slot] = self._embedded_text(inner, nested)
        elif where.collect:
            self._attach(content, content_type, filename, None, where, inline=False)

    def _embedded_text(self, inner: Message, nested: Body) -> str:
        lines = []
        for name, value in inner.raw_items():
            if name.strip().lower() in ("from", "date", "subject"):
                lines.append(
                    f"{name.strip().title()}: "
                    f"{decode_unstructured(value, self.context)}"
                )
        text = "\n".join(nested.text) or html_to_text("\n".join(nested.html))
        return "\n".join(lines) + "\n\n" + text if lines else text

    def _flatten(self, message: Message) -> bytes:
        """The bytes of an attached message, re-serialised without refolding."""
        buffer = BytesIO()
        try:
            if isinstance(message.policy, email_policy.EmailPolicy):
                policy = message.policy.clone(
                    linesep=self.linesep, refold_source="none"
                )
            else:
                policy = message.policy.clone(
                    linesep=self.linesep, max_line_length=None
                )
            BytesGenerator(buffer, mangle_from_=False, policy=policy).flatten(message)
        except Exception:  # a broken attached message is still kept
            self.context.flag("defects")
        return buffer.getvalue()

    def _leaf(
        self,
        part: Message,
        content_type: str,
        params: dict[str, str],
        disposition: str,
        filename: str,
        headers: dict[str, str],
        where: Placement,
    ) -> None:
        as_body = disposition != "attachment" and (
            not filename or disposition == "inline"
        )
        if content_type == "text/plain" and as_body and where.text_ok:
            where.body.text.append(
                self._decode_text(self._payload(part), params.get("charset"))
            )
            return
        if content_type == "text/html" and as_body and where.html_ok:
            data = self._payload(part)
            charset = params.get("charset")
            if not charset:
                charset = _meta_charset(data[:_META_CHARSET_WINDOW])
            where.body.html.append(self._decode_text(data, charset))
            return
        if not where.collect:
            return
        spooled = None
        if (
            self.spooled is not None
            and self.spooled.holds(part)
            and not tnef.is_tnef(content_type, filename)
        ):
            spooled = self.spooled.decode_to_file(part)
        if spooled is not None:
            data = b""
            if part.defects:
                self.context.flag("defects")
        else:
            data = self._payload(part)
        if tnef.is_tnef(content_type, filename) and self._expand_tnef(data, where):
            return
        content_id = decode_content_id(headers.get("content-id"), self.context)
        location = resolve_location(
            decode_location(headers.get("content-location"), self.context),
            where.base,
        )
        inline = where.related or (disposition == "inline" and content_id is not None)
        self._attach(
            data,
            content_type,
            filename,
            content_id,
            where,
            inline=inline,
            location=location,
            charset=params.get("charset"),
            spooled=spooled,
        )

    def _payload(self, part: Message) -> bytes:
        if self.spooled is not None and self.spooled.holds(part):
            buffer = BytesIO()
            if self.spooled.decode(part, buffer):
                if part.defects:
                    self.context.flag("defects")
                return buffer.getvalue()
        try:
            data = part.get_payload(decode=True)
        except Exception:  # undecodable transfer encoding
            self.context.flag("defects")
            raw = part.get_payload()
            data = (
                raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
            )
        if part.defects:
            self.context.flag("defects")
        return data if isinstance(data, bytes) else b""

    def _decode_text(self, data: bytes, charset: str | None) -> str:
        return normalise_newlines(self.context.bytes_to_text(data, charset))

    def _attach(
        self,
        content: bytes,
        content_type: str,
        filename: str,
        content_id: str | None,
        where: Placement,
        *,
        inline: bool,
        location: str | None = None,
        charset: str | None = None,
        spooled: SpooledFile | None = None,
    ) -> None:
        name = safe_filename(filename, _extension(content_type))
        if content_type in _MESSAGE_TYPES and not name.lower().endswith(".eml"):
            name = safe_filename(f"{name}.eml", ".eml")
        self.attachments.append(
            ParsedAttachment(
                filename=name,
                content_type=content_type,
                content=content,
                content_id=content_id,
                inline=inline,
                sha256=spooled.sha256
                if spooled is not None
                else hashlib.sha256(content).hexdigest(),
                content_location=location,
                content_base=where.base if location is not None else None,
                charset=charset or None,
                path=spooled.path if spooled is not None else None,
                spooled_size=spooled.size if spooled is not None else 0,
            )
        )

    def _expand_tnef(self, data: bytes, where: Placement) -> bool:
        if not tnef.within_budget(data):
            self.context.flag("tnef-too-complex")
            return False
        contents = tnef.expand(data)
        if contents is None:
            self.context.flag("tnef-unreadable")
            return False
        use_text = bool(contents.text_body) and where.text_ok and not where.body.text
        use_html = bool(contents.html_body) and where.html_ok and not where.body.html
        if not contents.files and not use_text and not use_html:
            # Nothing new to show (an RTF-only body, say): keep winmail.dat.
            return False
        for item in contents.files:
            content_type = (
                "application/ms-tnef"
                if item.is_embedded_message
                else _type_from_filename(item.name)
            )
            self._attach(
                item.content, content_type, item.name, None, where, inline=False
            )
        if use_text and contents.text_body:
            where.body.text.append(
                self._tnef_text(contents.text_body, contents.codepage)
            )
        if use_html and contents.html_body:
            where.body.html.append(
                self._tnef_text(contents.html_body, contents.codepage)
            )
        return True

    def _tnef_text(self, value: str | bytes, codepage: str | None) -> str:
        if isinstance(value, bytes):
            value = self.context.bytes_to_text(value.rstrip(b"\x00"), codepage)
        return normalise_newlines(value.rstrip("\x00"))

    def finish(self) -> tuple[str, str, list[ParsedAttachment], str]:
        """Text body, HTML body, attachments (referenced ones inline), embedded.

        A part is referenced by ``cid:`` and its Content-ID, or by its
        Content-Location as the source of a picture or background.
        """
        text = "\n".join(self.body.text)
        html = "\n".join(self.body.html)
        by_content_id = _content_id_references(html)
        by_location = _located_references(html, self.attachments)
        attachments = [
            replace(item, inline=True)
            if not item.inline
            and (
                (item.content_id and item.content_id.lower() in by_content_id)
                or index in by_location
            )
            else item
            for index, item in enumerate(self.attachments)
        ]
        return text, html, attachments, "\n\n".join(t for t in self.embedded if t)


def _meta_charset(data: bytes) -> str | None:
    """The charset a ``<meta>`` tag in ``data`` names (``charset=`` or inside
    ``content=``), read with the linear tokenizer."""
    for token in tokens(data.decode("latin-1")):
        if token.kind is Kind.START and token.name == "meta":
            found = _CHARSET_ATTRIBUTE.search(token.attributes_source)
            if found:
                return found.group(1)
    return None


def _content_id_references(html: str) -> set[str]:
    """The Content-IDs that ``cid:`` URLs in the HTML name, lower-cased.

    One pass over the HTML, however many parts there are; each URL counts as
    written and percent-decoded without its angle brackets.
    """
    found: set[str] = set()
    for match in _CID_URL.finditer(html):
        reference = match.group(1).lower()
        found.add(reference)
        found.add(unquote(reference).strip("<>"))
    return found


def _image_sources(html: str) -> Iterator[str]:
    """The values of ``src`` and ``background`` attributes, in document order."""
    for token in tokens(html):
        if (
            token.kind is Kind.START
            and token.complete
            and (
                "src" in token.attributes_source.lower()
                or "background" in token.attributes_source.lower()
            )
        ):
            for name, value in attributes(token.attributes_source):
                if name in ("src", "background") and value:
                    yield value


def _located_references(html: str, attachments: list[ParsedAttachment]) -> set[int]:
    """Indexes of the attachments whose Content-Location the HTML refers to."""
    index: LocationIndex[int] = LocationIndex()
    for position, item in enumerate(attachments):
        if item.content_location:
            index.add(item.content_location, item.content_base, position)
    if not index or not html:
        return set()
    # Distinct sources only, and no more than a message may have parts.
    sources: dict[str, None] = {}
    for source in _image_sources(html):
        sources.setdefault(source, None)
        if len(sources) >= MAX_PARTS:
            break
    found = (index.find(source) for source in sources)
    return {position for position in found if position is not None}
