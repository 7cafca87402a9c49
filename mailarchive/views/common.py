"""Response headers shared by the reading pages."""

from __future__ import annotations

import re
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse

# Downloads and raw sources: nothing in them may run or load, even when a
# browser is talked into rendering them.
FILE_POLICY = "sandbox; default-src 'none'"
_SAFE_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*\Z")


def request_origin(request: HttpRequest) -> str:
    """``scheme://host[:port]`` of the request, as a CSP source."""
    return request.build_absolute_uri("/").rstrip("/")


def page_policy(request: HttpRequest, *, allow_remote: bool = False) -> str:
    """The Content-Security-Policy of a reading page (stricter than the site's
    default of ``ContentSecurityPolicyMiddleware``).

    A mail's HTML is shown in a ``srcdoc`` frame, which inherits this policy:
    its images may come from the archive (``cid:`` parts) and ``data:`` URLs,
    from anywhere only once the reader asked for remote content; its inline
    styles are allowed because mail layout depends on them.
    """
    origin = request_origin(request)
    images = ["'self'", origin, "data:"]
    if allow_remote:
        images += ["https:", "http:"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src " + " ".join(images),
            "font-src 'self'",
            "connect-src 'self'",
            "frame-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def with_page_policy(
    request: HttpRequest, response: HttpResponse, *, allow_remote: bool = False
) -> HttpResponse:
    response["Content-Security-Policy"] = page_policy(
        request, allow_remote=allow_remote
    )
    return response


def file_headers(response: HttpResponse, *, filename: str, disposition: str) -> None:
    """Mark ``response`` as a file: never sniffed, never scripted, named.

    The name is given twice: plain ASCII for old clients and RFC 5987
    ``filename*`` in UTF-8 for everyone else. Whatever the name holds (line
    breaks, quotes, controls, lone surrogates), the header stays one line of
    printable ASCII.
    """
    fallback = (
        "".join(
            c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename
        ).strip()
        or "download"
    )
    response["Content-Disposition"] = (
        f'{disposition}; filename="{fallback}"; '
        f"filename*=UTF-8''{quote(filename, safe='', errors='replace')}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_POLICY
    response["Cross-Origin-Resource-Policy"] = "same-site"


def download_type(declared: str) -> str:
    """The declared type when it is a plain ``type/subtype``, else a byte stream."""
    value = declared.strip().lower()
    return value if _SAFE_TYPE.match(value) else "application/octet-stream"
