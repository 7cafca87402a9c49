"""Plain-text mail bodies rendered as safe HTML, and short excerpts of them.

Markup produced by :func:`render_text`::

    <div class="mail-text">
      <pre>text…</pre>
      <details class="quoted"><summary>Show quoted text (3 lines)</summary>
        <blockquote><pre>quoted…</pre><blockquote><pre>deeper…</pre></blockquote>
        </blockquote></details>
      <div class="signature"><pre>"-- " line and signature…</pre></div>
    </div>

Whitespace is kept by the ``<pre>`` elements; the stylesheet is expected to
give ``.mail-text pre`` ``white-space: pre-wrap`` so long lines wrap. Every
character of the mail is escaped; the only markup is the structure above and
links to ``http``, ``https`` and ``mailto`` URLs (and bare ``www.`` hosts),
opened in a new tab without opener or referrer.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import ngettext

__all__ = ["excerpt", "render_text", "visible_text"]

# Characters HTML forbids in a page (C0 controls but tab, line feed, form feed
# and carriage return; DEL; the noncharacters U+FFFE and U+FFFF) are shown as
# the Unicode control pictures (U+2400…) and U+FFFD instead.
_VISIBLE = {code: 0x2400 + code for code in range(0x20) if code not in (9, 10, 12, 13)}
_VISIBLE |= {0x7F: 0x2421, 0xFFFE: 0xFFFD, 0xFFFF: 0xFFFD}


def visible_text(text: str) -> str:
    """``text`` with the characters a page may not carry made visible."""
    return text.translate(_VISIBLE)


_LINK_REL = "noopener noreferrer nofollow"

# Only ASCII URL characters: text in scripts without spaces (Japanese,
# Chinese) often runs straight on after a URL and must not become part of it.
_URL_RE = re.compile(
    r"(?<![A-Za-z0-9@/.+\-])"
    r"(?:"
    r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
    r"|mailto:[A-Za-z0-9\-._~!$&'*+,;=:@%?/]+"
    r")",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = ".,:;!?'\"*"
# Quotes nested deeper than this are shown at this depth: a line of a
# thousand ">" must not become a thousand nested blockquotes.
MAX_QUOTE_DEPTH = 32
# An excerpt is read from at most this much of the start of a body.
MAX_EXCERPT_SOURCE = 256 * 1024
_CLOSING_BRACKETS = {")": "(", "]": "["}
_QUOTE_PREFIX_RE = re.compile(r"(?:>[ \t]?)+")
_SIGNATURE_SEPARATOR = "-- "
# Top-posting clients introduce the quoted original with a line like these.
_ORIGINAL_MESSAGE_RE = re.compile(
    r"\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine"
    r"|mensaje original|messaggio originale|oorspronkelijk bericht"
    r"|original meddelelse|ursprungligt meddelande)\s*-{2,}\s*",
    re.IGNORECASE,
)


def _quoted_text_label(count: int) -> str:
    return ngettext(
        "Show quoted text (%(count)d line)",
        "Show quoted text (%(count)d lines)",
        count,
    ) % {"count": count}


def _split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _parse_quote(line: str) -> tuple[int, str]:
    """Return the quote depth of ``line`` (at most ``MAX_QUOTE_DEPTH``) and the
    line without its markers."""
    match = _QUOTE_PREFIX_RE.match(line)
    if match is None:
        return 0, line
    return min(match.group().count(">"), MAX_QUOTE_DEPTH), line[match.end() :]


def _quote_structure(lines: list[str]) -> list[tuple[int, str]]:
    """Depth and content of each line; blank lines inside a quote join it."""
    parsed = [_parse_quote(line) for line in lines]
    index = 0
    while index < len(parsed):
        depth, content = parsed[index]
        if depth or content.strip():
            index += 1
            continue
        end = index
        while end < len(parsed) and not parsed[end][0] and not parsed[end][1].strip():
            end += 1
        before = parsed[index - 1][0] if index > 0 else 0
        after = parsed[end][0] if end < len(parsed) else 0
        if before and after:
            for blank in range(index, end):
                parsed[blank] = (min(before, after), "")
        index = end
    return parsed


def _signature_start(parsed: list[tuple[int, str]]) -> int | None:
    for index, (depth, content) in enumerate(parsed):
        if depth == 0 and content == _SIGNATURE_SEPARATOR:
            return index
    return None


def _trim_url(url: str) -> str:
    """Drop punctuation that ends the sentence rather than the URL.

    A closing bracket goes when the URL has more of it than of its opening
    bracket. One pass from the end, with the counts kept as it goes.
    """
    unmatched = {
        closing: url.count(closing) - url.count(opening)
        for closing, opening in _CLOSING_BRACKETS.items()
    }
    end = len(url)
    while end:
        last = url[end - 1]
        if last in unmatched:
            if unmatched[last] <= 0:
                break
            unmatched[last] -= 1
        elif last not in _TRAILING_PUNCTUATION:
            break
        end -= 1
    return url[:end]


def _linkify(text: str) -> str:
    """Escape ``text`` and turn the URLs in it into links."""
    text = visible_text(text)
    parts: list[str] = []
    position = 0
    for match in _URL_RE.finditer(text):
        url = _trim_url(match.group())
        lowered = url.lower()
        if lowered.startswith("www."):
            if "." not in url[4:].strip("."):
                continue
            href = "http://" + url
        elif lowered.startswith("mailto:"):
            if len(url) <= len("mailto:"):
                continue
            href = url
        else:
            if len(url) <= len(lowered.split("//", 1)[0]) + 2:
                continue
            href = url
        start = match.start()
        parts.append(html.escape(text[position:start]))
        parts.append(
            f'<a href="{html.escape(href)}" rel="{_LINK_REL}" target="_blank">'
            f"{html.escape(url)}</a>"
        )
        position = start + len(url)
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def _pre(lines: list[str]) -> str:
    body = "\n".join(_linkify(line) for line in lines)
    # The HTML parser drops one newline right after <pre>; keep a leading blank.
    if body.startswith("\n"):
        body = "\n" + body
    return f"<pre>{body}</pre>"


def _render_quoted(parsed: list[tuple[int, str]], label: Callable[[int], str]) -> str:
    """Render lines with their quote depths, folding each top-level quote."""
    out: list[str] = []
    depth = 0
    pending: list[str] = []
    index = 0
    while index < len(parsed):
        line_depth, content = parsed[index]
        if line_depth != depth:
            if pending:
                out.append(_pre(pending))
                pending = []
            if depth == 0:
                run = index
                while run < len(parsed) and parsed[run][0] > 0:
                    run += 1
                out.append(
                    '<details class="quoted"><summary>'
                    f"{html.escape(label(run - index))}</summary>"
                )
            if line_depth > depth:
                out.append("<blockquote>" * (line_depth - depth))
            else:
                out.append("</blockquote>" * (depth - line_depth))
            if line_depth == 0:
                out.append("</details>")
            depth = line_depth
        pending.append(content)
        index += 1
    if pending:
        out.append(_pre(pending))
    if depth:
        out.append("</blockquote>" * depth + "</details>")
    return "".join(out)


def render_text(text: str, *, label: Callable[[int], str] | None = None) -> SafeString:
    """Return a plain-text mail body as safe HTML.

    Every character is escaped; URLs become links with
    ``rel="noopener noreferrer nofollow"``; runs of ``>``-quoted lines fold
    into ``<details class="quoted">`` whose summary is ``label(line_count)``
    (by default a translated "Show quoted text (N lines)"), nested at most
    ``MAX_QUOTE_DEPTH`` deep; a signature after a ``-- `` line goes into
    ``<div class="signature">``. Pure function, linear in ``len(text)``.
    """
    label = label or _quoted_text_label
    parsed = _quote_structure(_split_lines(text))
    signature_at = _signature_start(parsed)
    body = parsed if signature_at is None else parsed[:signature_at]
    parts = ['<div class="mail-text">', _render_quoted(body, label)]
    if signature_at is not None:
        signature = _split_lines(text)[signature_at:]
        parts.append(f'<div class="signature">{_pre(signature)}</div>')
    parts.append("</div>")
    # Safe: every piece of mail text went through html.escape above.
    return mark_safe("".join(parts))


def excerpt(text: str, length: int = 200) -> str:
    """Return a one-line summary of a plain-text body, at most ``length`` long.

    Quoted lines, the line introducing a quote ("… wrote:"), everything from
    a top-posting "Original Message" marker on and the signature are left
    out; whitespace is collapsed; a longer text is cut on a word boundary
    (or mid-word for text without spaces) and ends in "…". Only the first
    ``MAX_EXCERPT_SOURCE`` characters are read. The result is plain text, not
    HTML: templates escape it as usual. Pure function, linear in what it reads.
    """
    if length < 1:
        raise ValueError("excerpt length must be at least 1")
    parsed = _quote_structure(_split_lines(text[:MAX_EXCERPT_SOURCE]))
    signature_at = _signature_start(parsed)
    if signature_at is not None:
        parsed = parsed[:signature_at]
    kept: list[str] = []
    for index, (depth, content) in enumerate(parsed):
        if depth:
            continue
        if _ORIGINAL_MESSAGE_RE.fullmatch(content):
            break
        if content.rstrip().endswith(":") and _quote_follows(parsed, index + 1):
            continue
        kept.append(content)
    collapsed = visible_text(" ".join(" ".join(kept).split()))
    if len(collapsed) <= length:
        return collapsed
    cut = collapsed[: length - 1]
    space = cut.rfind(" ")
    # One long run of text without spaces (CJK, URLs) is cut where it stands.
    if space > 0 and space >= length // 3:
        cut = cut[:space]
    return cut.rstrip(" ,.;:!?-") + "…"


def _quote_follows(parsed: list[tuple[int, str]], index: int) -> bool:
    """True when the next non-blank line from ``index`` on is quoted."""
    for position in range(index, len(parsed)):
        depth, content = parsed[position]
        if depth:
            return True
        if content.strip():
            return False
    return False
