"""Parts named by URL: Content-Location and Content-Base (RFC 2557, RFC 2110).

HTML mail may refer to the other parts of its multipart/related by the URL in
their Content-Location instead of by ``cid:``. The rules kept here are a
deliberately small subset of RFC 2557, the same for the parser and the pages:

- A value is the header decoded (RFC 2047 words) with every whitespace removed
  (long URLs are folded, RFC 2557 §4.4.1) and one pair of enclosing quotes or
  angle brackets taken off; longer than ``MAX_LOCATION`` characters it is
  ignored, since a cut URL names nothing.
- The base of a multipart/related is the first absolute URL among the root
  part's Content-Base and Content-Location, then the multipart's own
  Content-Base and Content-Location, then the base of an enclosing
  multipart/related; a relative candidate is resolved against the rest.
- A part's relative Content-Location is resolved against its group's base; with
  no base it stays as written.
- A reference in the HTML names a part when it equals the part's location, or
  when it does once resolved against that part's base. ``<base href>`` inside
  the HTML is not consulted.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar
from urllib.parse import urljoin, urlsplit, uses_relative

from .headers import HeaderContext, decode_unstructured

__all__ = [
    "MAX_BASES",
    "MAX_LOCATION",
    "LocationIndex",
    "clean_reference",
    "decode_location",
    "related_base",
    "resolve_location",
]

MAX_LOCATION = 500
# Each lookup resolves the reference against every base: a message made of
# many groups with different bases must not make lookups expensive. Parts of
# groups past this many bases are still found by their location as written.
MAX_BASES = 4

# Schemes whose URLs resolve relative references; ``file:`` is what saved web
# pages (MHTML) use.
_BASE_SCHEMES = frozenset(scheme for scheme in uses_relative if scheme)
_WHITESPACE = re.compile(r"\s+")
# The URL standard drops tabs and newlines anywhere and trims C0 controls and
# spaces at both ends; a reference is compared the way a browser would read it.
_URL_NOISE = re.compile(r"[\t\n\r]")
_URL_TRIM = "".join(chr(code) for code in range(0x21))

T = TypeVar("T")


def decode_location(raw: str | None, context: HeaderContext) -> str | None:
    """A Content-Location or Content-Base value, unfolded; None if empty or long."""
    if raw is None:
        return None
    value = _WHITESPACE.sub("", decode_unstructured(raw, context))
    # RFC 2110 wrote its examples quoted; some mailers bracket URLs.
    if len(value) >= 2 and value[0] + value[-1] in ('""', "<>"):
        value = value[1:-1]
    if not value or len(value) > MAX_LOCATION:
        return None
    return value


def _is_base(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in _BASE_SCHEMES and bool(parts.netloc or parts.path)


def _join(base: str, reference: str) -> str | None:
    try:
        joined = urljoin(base, reference)
    except ValueError:  # a malformed authority, such as an unclosed IPv6 bracket
        return None
    return joined if len(joined) <= MAX_LOCATION else None


def _base_from(
    headers: dict[str, str], inherited: str | None, context: HeaderContext
) -> str | None:
    for key in ("content-base", "content-location"):
        value = decode_location(headers.get(key), context)
        if value is None:
            continue
        candidate = _join(inherited, value) if inherited else value
        if candidate is not None and _is_base(candidate):
            return candidate
    return inherited


def related_base(
    related_headers: dict[str, str],
    root_headers: dict[str, str],
    inherited: str | None,
    context: HeaderContext,
) -> str | None:
    """The base URL of a multipart/related group (see the module docstring).

    Headers are the parts' Content-* headers keyed in lower case. Pure function.
    """
    outer = _base_from(related_headers, inherited, context)
    return _base_from(root_headers, outer, context)


def resolve_location(location: str | None, base: str | None) -> str | None:
    """``location`` resolved against ``base``; as written when there is no base.

    None when the result would be longer than ``MAX_LOCATION``. Pure function.
    """
    if location is None or base is None:
        return location
    return _join(base, location)


def clean_reference(reference: str) -> str:
    """A URL from an HTML attribute as a browser reads it: noise and ends trimmed."""
    return _URL_NOISE.sub("", reference).strip(_URL_TRIM)


class LocationIndex(Generic[T]):
    """Parts by location, to look up the references of an HTML body.

    Holds one value per location (the first added wins), e.g. a part's position
    or the URL that serves it. Filling it mutates it; lookups do not.
    """

    def __init__(self) -> None:
        self._exact: dict[str, T] = {}
        self._by_base: dict[str, dict[str, T]] = {}

    def __bool__(self) -> bool:
        return bool(self._exact)

    def add(self, location: str, base: str | None, value: T) -> None:
        """Record the part stored at ``location`` (already resolved) under ``base``."""
        self._exact.setdefault(location, value)
        if base and (base in self._by_base or len(self._by_base) < MAX_BASES):
            self._by_base.setdefault(base, {}).setdefault(location, value)

    def find(self, reference: str) -> T | None:
        """The value of the part ``reference`` names, or None."""
        cleaned = clean_reference(reference)
        if not cleaned:
            return None
        found = self._exact.get(cleaned)
        if found is not None:
            return found
        for base, locations in self._by_base.items():
            joined = _join(base, cleaned)
            if joined is not None and joined in locations:
                return locations[joined]
        return None
