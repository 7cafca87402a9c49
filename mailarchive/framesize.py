"""How tall the frame of a mail's HTML should be, estimated on the server.

The HTML of a mail is shown in a sandboxed ``srcdoc`` frame without
``allow-same-origin`` and without scripts: its origin is opaque, so the page
cannot measure what is inside, and nothing inside may run to report its
size. The height is therefore estimated here from the sanitized document —
lines of text at the narrowest width of each layout, breaks, blocks, tables
and pictures with their declared sizes — and given to the frame as tokens of
its ``data-fit`` attribute (one per layout width, matched by
``static/css/frames.css``), never as a style attribute. The estimate errs
on the tall side, so that a long mail does not scroll inside the page; the
reader can still drag the frame's corner.

Linear in the size of the document and pure: safe to call repeatedly.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser

# Narrowest width of the frame's content (px) in each layout of the reading
# pages: phone (< 40rem), tablet (40–64rem), desktop (>= 64rem).
LAYOUT_WIDTHS = {"s": 290, "m": 540, "l": 900}
LINE_HEIGHT = 20.0
CHAR_WIDTH = 8.0  # a generous average for 16px text; wide characters count twice
BLOCK_MARGIN = 16.0
UNKNOWN_PICTURE_HEIGHT = 200.0
FRAME_EXTRA = 32.0  # the body's margins and a little room
# Height steps grow geometrically from 4rem by a quarter: at most a quarter
# too tall, and a few dozen rules cover everything up to the last step.
BASE_REM = 4.0
STEP = 1.25
STEPS = 24

_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_SPACED = frozenset(
    [
        "blockquote",
        "dl",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ol",
        "p",
        "pre",
        "ul",
        "hr",
    ]
)
_HIDDEN = frozenset({"head", "style", "title", "script", "template"})


def _units(text: str) -> int:
    """Width of ``text`` in narrow characters (East Asian wide count two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _dimension(value: str | None) -> float | None:
    if not value:
        return None
    digits = value.strip().removesuffix("px")
    try:
        number = float(digits)
    except ValueError:
        return None
    return number if 0 < number < 100_000 else None


class _Estimator(HTMLParser):
    def __init__(self, widths: dict[str, int]) -> None:
        super().__init__(convert_charrefs=True)
        self.widths = widths
        self.heights = dict.fromkeys(widths, 0.0)
        self.line_units = 0
        self.hidden = 0
        self.pre = 0

    def _add(self, height: float) -> None:
        for name in self.heights:
            self.heights[name] += height

    def _flush(self, *, empty_line: bool = False) -> None:
        for name, width in self.widths.items():
            if self.line_units:
                lines = math.ceil(self.line_units * CHAR_WIDTH / width)
            else:
                lines = 1 if empty_line else 0
            self.heights[name] += lines * LINE_HEIGHT
        self.line_units = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
            return
        if tag == "br":
            self._flush(empty_line=True)
        elif tag == "img":
            self._picture(dict(attrs))
        elif tag in _BLOCKS:
            self._flush()
            if tag in _SPACED:
                self._add(BLOCK_MARGIN)
            if tag == "pre":
                self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self._flush()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def _picture(self, attrs: dict[str, str | None]) -> None:
        # Declared heights are taken as they are: a picture narrower than its
        # declared width may shrink, but not one inside a table of fixed width,
        # and too tall is the safe side.
        height = _dimension(attrs.get("height"))
        self._add(UNKNOWN_PICTURE_HEIGHT if height is None else height)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            lines = data.split("\n")
            for line in lines[:-1]:
                self.line_units += _units(line)
                self._flush(empty_line=True)
            self.line_units += _units(lines[-1])
            return
        words = data.split()
        if words:
            self.line_units += _units(" ".join(words)) + 1


@dataclass(frozen=True)
class FrameSize:
    """The estimated height of a frame per layout, in px and as ``data-fit``."""

    heights: dict[str, float]

    @property
    def tokens(self) -> str:
        """The value of the frame's ``data-fit`` attribute."""
        return " ".join(
            f"{name}-{height_step(height)}" for name, height in self.heights.items()
        )


def height_step(height_px: float) -> int:
    """The smallest height step at least ``height_px`` tall (16px to the rem)."""
    rem = height_px / 16
    if rem <= BASE_REM:
        return 0
    return min(STEPS, math.ceil(math.log(rem / BASE_REM, STEP) - 1e-9))


def step_rem(step: int) -> float:
    """The height of step ``step`` in rem."""
    return round(BASE_REM * STEP**step, 2)


def frame_size(document: str) -> FrameSize:
    """Estimate how tall ``document`` (a sanitized mail) is in each layout."""
    estimator = _Estimator(LAYOUT_WIDTHS)
    estimator.feed(document)
    estimator.close()
    estimator._flush()
    return FrameSize(heights={k: v + FRAME_EXTRA for k, v in estimator.heights.items()})


def frame_css() -> str:
    """The stylesheet rules of the height steps (``static/css/frames.css``)."""
    lines = [
        "/* Heights of mail frames, estimated on the server: generated by",
        "   mailarchive.framesize.frame_css(); the test suite checks it is current. */",
    ]
    media = {
        "s": None,
        "m": "(min-width: 40rem)",
        "l": "(min-width: 64rem)",
    }
    for name, query in media.items():
        rules = [
            f'.mail-html[data-fit~="{name}-{step}"] {{ height: {step_rem(step)}rem; }}'
            for step in range(STEPS + 1)
        ]
        if query is None:
            lines += rules
        else:
            lines.append(f"@media {query} {{")
            lines += ["  " + rule for rule in rules]
            lines.append("}")
    return "\n".join(lines) + "\n"
