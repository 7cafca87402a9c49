"""HTML mail made safe to show, with nh3 (the ammonia sanitizer).

The result is meant for the ``srcdoc`` of an ``<iframe sandbox>`` without
``allow-scripts`` and ``allow-same-origin``, and it carries its own Content
Security Policy; both are defence in depth. The sanitizer alone keeps script
out: only an allow-list of layout and formatting elements survives, no event
handler attribute, no ``<style>`` element (dropped with its content, the
simplest safe choice), and inline ``style`` attributes are rebuilt from an
allow-list of properties whose values may not contain ``url(``, escapes,
comments or functions other than colours.

URLs: links may point to ``http:``, ``https:`` and ``mailto:`` and open in a
new browsing context without opener or referrer. Images may come from the
message's own parts (``cid:``, rewritten through the caller's ``cid_url``;
any other URL that names a part by its Content-Location, rewritten through
``location_url``), from ``data:`` URLs of raster types, and from ``http(s):``
only when the reader asked for remote content. Other relative URLs are
dropped: in a ``srcdoc`` document they would resolve against the archive
itself.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import nh3

from .parsing.balance import balanced_html

__all__ = ["SanitizedHtml", "sanitize_html"]


@dataclass(frozen=True)
class SanitizedHtml:
    """A complete, safe HTML document for a sandboxed frame.

    ``has_remote_content`` is True when the mail refers to remote resources
    (images, backgrounds, ``srcset``, ``url()`` in styles). With
    ``allow_remote=False`` all of them were removed; with ``allow_remote=True``
    remote image sources and backgrounds were kept.
    """

    html: str
    has_remote_content: bool


_TAGS = frozenset(
    {
        "a",
        "abbr",
        "acronym",
        "address",
        "article",
        "b",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "font",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "section",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
    }
)

# Elements dropped together with everything inside them: their content is
# code, styling, metadata or fallback that would show up as stray text.
_DROP_WITH_CONTENT = frozenset(
    {
        "script",
        "style",
        "title",
        "noscript",
        "template",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "select",
        "textarea",
    }
)

_COMMON_ATTRIBUTES = frozenset(
    {"align", "valign", "dir", "lang", "title", "style", "width", "height", "bgcolor"}
)

_ATTRIBUTES: dict[str, set[str]] = {
    "*": set(_COMMON_ATTRIBUTES),
    "a": {"href"},
    "img": {"src", "srcset", "alt", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "frame", "rules", "background"},
    "tr": {"background"},
    "td": {"colspan", "rowspan", "nowrap", "background", "headers", "scope"},
    "th": {"colspan", "rowspan", "nowrap", "background", "headers", "scope", "abbr"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "hr": {"size", "noshade", "color"},
    "abbr": {"title"},
}

# Schemes nh3 lets through to the attribute filter in href and src; the
# filter then decides per element and attribute. ``file:`` only ever becomes
# a part of the message: saved web pages (MHTML) name their parts by it.
_URL_SCHEMES = frozenset({"http", "https", "mailto", "cid", "data", "file"})

_LINK_REL = "noopener noreferrer nofollow"

_CSS_PROPERTIES = frozenset(
    {
        "background",
        "background-color",
        "border",
        "border-bottom",
        "border-bottom-color",
        "border-bottom-left-radius",
        "border-bottom-right-radius",
        "border-bottom-style",
        "border-bottom-width",
        "border-collapse",
        "border-color",
        "border-left",
        "border-left-color",
        "border-left-style",
        "border-left-width",
        "border-radius",
        "border-right",
        "border-right-color",
        "border-right-style",
        "border-right-width",
        "border-spacing",
        "border-style",
        "border-top",
        "border-top-color",
        "border-top-left-radius",
        "border-top-right-radius",
        "border-top-style",
        "border-top-width",
        "border-width",
        "caption-side",
        "clear",
        "color",
        "direction",
        "display",
        "empty-cells",
        "float",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-variant",
        "font-weight",
        "height",
        "letter-spacing",
        "line-height",
        "list-style-position",
        "list-style-type",
        "margin",
        "margin-bottom",
        "margin-left",
        "margin-right",
        "margin-top",
        "max-height",
        "max-width",
        "min-height",
        "min-width",
        "opacity",
        "overflow-wrap",
        "padding",
        "padding-bottom",
        "padding-left",
        "padding-right",
        "padding-top",
        "table-layout",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "vertical-align",
        "visibility",
        "white-space",
        "width",
        "word-break",
        "word-spacing",
        "word-wrap",
    }
)

# Colour functions are the only CSS functions kept; everything else that
# could fetch or compute (url, expression, image-set, var, attr...) goes.
# Runs are matched possessively here and below: a run of spaces that two
# parts of a pattern could share would be retried against itself, in time
# quadratic in its length.
_CSS_COLOUR_FUNCTION_RE = re.compile(r"\b(?:rgba?|hsla?)\([\d\s.,%/+-]*+\)", re.I)
# No parentheses, backslash escapes, comments, colons, braces, at-rules or
# angle brackets: nothing left can call, import or break out of the value.
_CSS_SAFE_VALUE_RE = re.compile(r"[\w\s#%.,'\"!/+-]*")
_CSS_REMOTE_URL_RE = re.compile(r"url\(\s*+['\"]?\s*+(?:https?:|//)", re.I)

_RASTER_DATA_TYPES = frozenset(
    {"image/png", "image/gif", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp"}
)
_URL_NOISE_RE = re.compile(r"[\t\n\r]")
# The URL standard trims C0 controls and spaces from both ends before parsing.
_URL_TRIM = "".join(chr(code) for code in range(0x21))
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_REMOTE_SCHEMES = frozenset({"http", "https"})
_SRCSET_REMOTE_RE = re.compile(r"https?:|(?:^|,)\s*//", re.I)

_DOCUMENT = (
    "<!DOCTYPE html>\n"
    '<html><head><meta charset="utf-8">'
    '<meta http-equiv="Content-Security-Policy" content="{csp}">'
    '<meta name="referrer" content="no-referrer">'
    '<base target="_blank">'
    "<style>"
    "body{{margin:8px;overflow-wrap:break-word}}"
    "img{{max-width:100%;height:auto}}"
    "</style>"
    "</head><body>{body}</body></html>"
)


def _split_url(value: str) -> tuple[str | None, str]:
    """Return the lower-cased scheme (None if relative) and the URL as parsed."""
    cleaned = _URL_NOISE_RE.sub("", value).strip(_URL_TRIM)
    match = _SCHEME_RE.match(cleaned)
    return (match.group(1).lower() if match else None, cleaned)


def _is_raster_data_url(url: str) -> bool:
    media_type = url[len("data:") :].split(",", 1)[0].split(";", 1)[0]
    return media_type.strip().lower() in _RASTER_DATA_TYPES


class _MailFilter:
    """nh3 attribute filter for one message; records whether remote content is used.

    nh3 has already removed href and src values with schemes outside
    ``_URL_SCHEMES``; everything returned here is either such a value, a
    value rebuilt from an allow-list, a URL produced by ``cid_url``, or a
    same-origin URL produced by ``location_url``.
    """

    def __init__(
        self,
        *,
        allow_remote: bool,
        cid_url: Callable[[str], str | None],
        location_url: Callable[[str], str | None] | None,
        img_src_origin: str,
    ) -> None:
        self.allow_remote = allow_remote
        self.cid_url = cid_url
        self.location_url = location_url
        self.img_src_origin = img_src_origin
        self.has_remote_content = False

    def __call__(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute == "href":
            return self._link(value)
        if attribute == "src":
            return self._image(value, allow_data=tag == "img")
        if attribute == "background":
            return self._image(value, allow_data=False)
        if attribute == "srcset":
            # Candidates would need their own parsing; the src fallback suffices.
            if _SRCSET_REMOTE_RE.search(value):
                self.has_remote_content = True
            return None
        if attribute == "style":
            return self._style(value)
        return value

    def _link(self, value: str) -> str | None:
        scheme, url = _split_url(value)
        if scheme in {"http", "https", "mailto"}:
            return url
        if scheme is None and url.startswith("//"):
            return "https:" + url
        return None

    def _image(self, value: str, *, allow_data: bool) -> str | None:
        scheme, url = _split_url(value)
        if scheme == "cid":
            content_id = unquote(url[len("cid:") :]).strip().strip("<>")
            return self.cid_url(content_id) if content_id else None
        if scheme == "data":
            return url if allow_data and _is_raster_data_url(url) else None
        part_url = self._part_url(url)
        if part_url is not None:
            return part_url
        if scheme is None and url.startswith("//"):
            scheme, url = "https", "https:" + url
        if scheme in _REMOTE_SCHEMES:
            self.has_remote_content = True
            return url if self.allow_remote else None
        return None

    def _part_url(self, url: str) -> str | None:
        """The archive URL of the part ``url`` names by its Content-Location.

        Only a path on the archive, or a URL on ``img_src_origin``, is taken:
        whatever the callback returns, the picture comes from the archive.
        """
        if self.location_url is None or not url:
            return None
        found = self.location_url(url)
        if found is None:
            return None
        _scheme, found = _split_url(found)
        if found.startswith("/") and not found.startswith(("//", "/\\")):
            return found
        if self.img_src_origin != "'self'" and found.startswith(
            self.img_src_origin + "/"
        ):
            return found
        return None

    def _style(self, value: str) -> str | None:
        kept: list[str] = []
        for declaration in value.split(";"):
            name, colon, raw = declaration.partition(":")
            name = name.strip().lower()
            raw = raw.strip()
            if not colon or not raw:
                continue
            if _CSS_REMOTE_URL_RE.search(raw):
                self.has_remote_content = True
            if name not in _CSS_PROPERTIES:
                continue
            plain = _CSS_COLOUR_FUNCTION_RE.sub("0", raw)
            if not _CSS_SAFE_VALUE_RE.fullmatch(plain):
                continue
            if plain.count('"') % 2 or plain.count("'") % 2:
                continue
            kept.append(f"{name}: {raw}")
        return "; ".join(kept) or None


def _content_security_policy(*, allow_remote: bool, img_src_origin: str) -> str:
    sources = [img_src_origin, "data:"]
    if allow_remote:
        sources += ["https:", "http:"]
    return "; ".join(
        [
            "default-src 'none'",
            "img-src " + " ".join(sources),
            "style-src 'unsafe-inline'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def sanitize_html(
    html: str,
    *,
    allow_remote: bool,
    cid_url: Callable[[str], str | None],
    img_src_origin: str = "'self'",
    location_url: Callable[[str], str | None] | None = None,
) -> SanitizedHtml:
    """Return ``html`` (a mail body, fragment or document) as a safe document.

    ``cid_url`` maps a Content-ID (without angle brackets) to the archive URL
    of that part, or None to drop the image. ``location_url`` is asked first
    about every other picture or background URL, as written in the mail
    (relative or absolute): it returns the archive URL of the part whose
    Content-Location that is, or None. A URL it answers for is not remote
    content; an answer that is neither a path nor on ``img_src_origin`` is
    ignored. ``img_src_origin`` is the CSP source for those URLs: ``'self'``
    or an origin such as ``https://archive.example.com``. Pure function; safe
    to call repeatedly. Raises ValueError for an ``img_src_origin`` that is
    not a single source.
    """
    if not re.fullmatch(r"'self'|https?://[A-Za-z0-9.:\[\]-]+", img_src_origin):
        raise ValueError(f"not a single CSP source: {img_src_origin!r}")
    mail_filter = _MailFilter(
        allow_remote=allow_remote,
        cid_url=cid_url,
        location_url=location_url,
        img_src_origin=img_src_origin,
    )
    body = nh3.clean(
        balanced_html(html),
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes=_ATTRIBUTES,
        attribute_filter=mail_filter,
        strip_comments=True,
        link_rel=_LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(_URL_SCHEMES),
        filter_style_properties=set(_CSS_PROPERTIES),
    )
    csp = _content_security_policy(
        allow_remote=allow_remote, img_src_origin=img_src_origin
    )
    document = _DOCUMENT.format(csp=html_lib.escape(csp), body=body)
    return SanitizedHtml(
        html=document, has_remote_content=mail_filter.has_remote_content
    )
