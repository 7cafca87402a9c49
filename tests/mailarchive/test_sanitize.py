"""Tests for HTML mail sanitizing: an XSS suite, remote content and cid: images."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailarchive.sanitize import SanitizedHtml, sanitize_html

CID_PREFIX = "/spaces/KEY/mail/12/cid/"


def corpus_dir() -> Path:
    """The shared real-world corpus; missing it is a failure, never a skip."""
    path = Path(os.environ.get("MAILARCHIVE_TEST_CORPUS", "/work/shared/corpus"))
    if not (path / "mimekit").is_dir():
        pytest.fail(f"test corpus not found at {path}; set MAILARCHIVE_TEST_CORPUS")
    return path


def cid_url(content_id: str) -> str | None:
    return None if content_id == "unknown@x" else f"{CID_PREFIX}{content_id}/"


def sanitize(html: str, *, allow_remote: bool = False) -> SanitizedHtml:
    return sanitize_html(html, allow_remote=allow_remote, cid_url=cid_url)


class Collector(HTMLParser):
    """Records every element with its attributes, and the text of each element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.text_in: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        for tag in self.open:
            self.text_in[tag] = self.text_in.get(tag, "") + data


def parse(document: str) -> Collector:
    collector = Collector()
    collector.feed(document)
    collector.close()
    return collector


def body_elements(document: str) -> list[tuple[str, dict[str, str | None]]]:
    elements = parse(document).elements
    names = [name for name, _ in elements]
    return elements[names.index("body") + 1 :]


# Elements that can never run script, load a document or submit anything.
INERT_ELEMENTS = {
    "a", "abbr", "acronym", "address", "article", "b", "bdi", "bdo", "big",
    "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup",
    "dd", "del", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "section",
    "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var", "wbr",
}  # fmt: skip
URL_ATTRIBUTES = {
    "href", "src", "srcset", "background", "action", "formaction", "poster",
    "data", "cite", "longdesc", "lowsrc", "dynsrc", "ping", "xlink:href",
    "codebase", "manifest", "icon", "srcdoc", "profile", "usemap",
}  # fmt: skip
RASTER_DATA = re.compile(r"data:image/(png|gif|jpeg|webp)[;,]", re.I)
URL_TRIM = "".join(chr(code) for code in range(0x21))


def scheme_of(url: str) -> str | None:
    cleaned = re.sub(r"[\t\n\r]", "", url).strip(URL_TRIM)
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", cleaned)
    return match.group(1).lower() if match else None


def assert_safe(result: SanitizedHtml, *, allow_remote: bool) -> None:
    """No script-capable element, no handler, no URL outside the allowed set."""
    collector = parse(result.html)
    head = [
        name
        for name, _ in collector.elements[
            : collector.elements.index(
                next(e for e in collector.elements if e[0] == "body")
            )
        ]
    ]
    assert head == ["html", "head", "meta", "meta", "meta", "base", "style"]
    assert collector.elements[5] == ("base", {"target": "_blank"})
    for name, attributes in body_elements(result.html):
        assert name in INERT_ELEMENTS, name
        for attribute, value in attributes.items():
            assert not attribute.startswith("on"), (name, attribute)
            assert attribute not in {"id", "class", "name", "target"} or (
                name == "a" and attribute == "target" and value == "_blank"
            ), (name, attribute)
            value = value or ""
            if attribute in URL_ATTRIBUTES:
                scheme = scheme_of(value)
                if attribute == "href":
                    assert scheme in {"http", "https", "mailto"}, value
                elif attribute in {"src", "background"}:
                    assert (
                        value.startswith(CID_PREFIX)
                        or (attribute == "src" and RASTER_DATA.match(value))
                        or (allow_remote and scheme in {"http", "https"})
                    ), value
                else:
                    pytest.fail(f"URL attribute {attribute}={value!r} on <{name}>")
            if attribute == "style":
                lowered = value.lower()
                for token in ("url(", "expression", "\\", "@", "behavior",
                              "binding", "javascript", "position", "/*"):  # fmt: skip
                    assert token not in lowered, value
    css = collector.text_in.get("style", "")
    assert (
        css
        == "body{margin:8px;overflow-wrap:break-word}img{max-width:100%;height:auto}"
    )


XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://xss.example/xss.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>alert(1);//<</script>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)"//',
    '<img src="cid:part@x" onerror="alert(1)">',
    '<img src="javascript:alert(1)">',
    "<IMG SRC=&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114"
    "&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114"
    "&#0000116&#0000040&#0000049&#0000041>",
    '<img srcset="javascript:alert(1) 1x, http://x.example/a.png 2x">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    '<a href="jav&#x0D;ascript:alert(1)">x</a>',
    '<a href="jav\tascript:alert(1)">x</a>',
    '<a href="java\0script:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href=" &#14; javascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">'
    "x</a>",
    '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</a>',
    '<img src="data:text/html,<script>alert(1)</script>">',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<a href="https://ok.example/" onclick="alert(1)" target="_top">ok</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=https://phish.example/">',
    '<form action="javascript:alert(1)"><input type=submit value=go></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<input type="image" src="x" onerror="alert(1)">',
    '<isindex action="javascript:alert(1)" type=image>',
    '<div style="width: expression(alert(1))">x</div>',
    '<div style="background-image: url(javascript:alert(1))">x</div>',
    '<div style="background:url(&quot;javascript:alert(1)&quot;)">x</div>',
    '<div style="color: red; background: u\\72l(javascript:alert(1))">x</div>',
    '<div style="behavior: url(xss.htc)">x</div>',
    '<div style="-moz-binding: url(http://xss.example/xss.xml#xss)">x</div>',
    '<xss style="xss:expression(alert(1))">x</xss>',
    '<p style="color:red;/*x*/width:expression(alert(1))">x</p>',
    "<style>@import 'http://xss.example/x.css';</style>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<base href="javascript:alert(1)//">',
    '<base href="https://evil.example/">',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<link rel="import" href="http://xss.example/x.html">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<template><script>alert(1)</script></template>",
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "<![CDATA[<script>alert(1)</script>]]>",
    "<!--[if gte mso 9]><script>alert(1)</script><![endif]-->",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<video poster="javascript:alert(1)"><source src=x onerror=alert(1)></video>',
    "<select><style><img src=x onerror=alert(1)></style></select>",
    "<plaintext><script>alert(1)</script>",
    "<xmp><script>alert(1)</script></xmp>",
    '<a href="https://ok.example/" style="position:fixed;top:0;width:100%">x</a>',
    '<div id="x" class="y" name="z">dom clobbering</div>',
]


@pytest.mark.parametrize("allow_remote", [False, True], ids=["blocked", "remote"])
@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_is_neutralized(payload: str, allow_remote: bool) -> None:
    result = sanitize(payload, allow_remote=allow_remote)
    assert_safe(result, allow_remote=allow_remote)


def test_xss_suite_is_large_enough() -> None:
    assert len(XSS_PAYLOADS) >= 40


def test_all_payloads_at_once_in_one_document() -> None:
    """Payloads can interfere with each other's parsing; together they stay safe."""
    result = sanitize("<div>" + "".join(XSS_PAYLOADS) + "</div>")
    assert_safe(result, allow_remote=False)


def test_document_wrapper_and_policy() -> None:
    result = sanitize("<p>Hello</p>")

    assert result.html.startswith("<!DOCTYPE html>\n<html><head><meta charset=")
    collector = parse(result.html)
    metas = [attrs for name, attrs in collector.elements if name == "meta"]
    assert metas[0] == {"charset": "utf-8"}
    assert metas[1]["http-equiv"] == "Content-Security-Policy"
    assert metas[1]["content"] == (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'"
    )
    assert metas[2] == {"name": "referrer", "content": "no-referrer"}
    assert "<body><p>Hello</p></body></html>" in result.html
    assert result.has_remote_content is False


def test_policy_allows_remote_images_only_when_asked() -> None:
    result = sanitize_html(
        "<p>x</p>",
        allow_remote=True,
        cid_url=cid_url,
        img_src_origin="https://archive.example.com:8443",
    )
    policy = [
        attrs["content"]
        for name, attrs in parse(result.html).elements
        if name == "meta" and attrs.get("http-equiv")
    ]
    assert policy == [
        "default-src 'none'; img-src https://archive.example.com:8443 data: https: "
        "http:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    ]


@pytest.mark.parametrize(
    "origin",
    ["'self'; script-src *", "https://a.example https:", "*", "'unsafe-inline'"],
)
def test_bad_image_origin_is_rejected(origin: str) -> None:
    with pytest.raises(ValueError, match="CSP source"):
        sanitize_html("x", allow_remote=False, cid_url=cid_url, img_src_origin=origin)


REMOTE_CASES = {
    "img": '<img src="http://tracker.example/p.gif" alt="logo">',
    "img-https-upper": '<IMG SRC="HTTPS://tracker.example/p.gif">',
    "protocol-relative": '<img src="//tracker.example/p.gif">',
    "table-background": '<table background="https://x.example/bg.png"><tr><td>t</td>'
    "</tr></table>",
    "cell-background": '<table><tr><td background="http://x.example/bg.png">t</td>'
    "</tr></table>",
}


@pytest.mark.parametrize("html", REMOTE_CASES.values(), ids=REMOTE_CASES.keys())
def test_remote_images_blocked_and_flagged(html: str) -> None:
    result = sanitize(html)

    assert result.has_remote_content is True
    assert "example" not in result.html
    assert_safe(result, allow_remote=False)


@pytest.mark.parametrize("html", REMOTE_CASES.values(), ids=REMOTE_CASES.keys())
def test_remote_images_shown_when_allowed(html: str) -> None:
    result = sanitize(html, allow_remote=True)

    assert result.has_remote_content is True
    assert re.search(r'(src|background)="https?://\w+\.example/', result.html, re.I)
    assert_safe(result, allow_remote=True)


@pytest.mark.parametrize(
    "html",
    [
        '<div style="background: url(http://x.example/bg.png); color: red">t</div>',
        "<div style=\"background-image:url('https://x.example/bg.png')\">t</div>",
        '<img srcset="https://x.example/a.png 1x, https://x.example/b.png 2x">',
    ],
    ids=["style-url", "style-url-quoted", "srcset"],
)
@pytest.mark.parametrize("allow_remote", [False, True], ids=["blocked", "remote"])
def test_remote_css_and_srcset_always_removed_but_flagged(
    html: str, allow_remote: bool
) -> None:
    result = sanitize(html, allow_remote=allow_remote)

    assert result.has_remote_content is True
    assert "x.example" not in result.html
    assert_safe(result, allow_remote=allow_remote)


def test_no_remote_content_flag_for_links_and_local_images() -> None:
    result = sanitize(
        '<a href="https://example.com/">site</a><img src="cid:logo@x">'
        '<img src="data:image/png;base64,iVBORw0KGgo=">'
    )
    assert result.has_remote_content is False


def test_cid_images_rewritten_through_callback() -> None:
    result = sanitize(
        '<img src="cid:part1.abc@example.com" alt="one">'
        '<img src="CID:%3Cpart2%40example.com%3E" alt="two">'
        '<img src="cid:unknown@x" alt="three">'
        '<table><tr><td background="cid:bg@x">t</td></tr></table>'
    )

    images = [attrs for name, attrs in body_elements(result.html) if name == "img"]
    assert images == [
        {"src": f"{CID_PREFIX}part1.abc@example.com/", "alt": "one"},
        {"src": f"{CID_PREFIX}part2@example.com/", "alt": "two"},
        {"alt": "three"},
    ]
    assert f'background="{CID_PREFIX}bg@x/"' in result.html
    assert_safe(result, allow_remote=False)


@pytest.mark.parametrize(
    ("src", "kept"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", True),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", True),
        ("DATA:IMAGE/JPEG;base64,/9j/4AAQ", True),
        ("data:image/webp;base64,UklGRg==", True),
        ("data:image/svg+xml;base64,PHN2Zz4=", False),
        ("data:text/html;base64,PHNjcmlwdD4=", False),
        ("data:;base64,iVBORw0KGgo=", False),
        ("data:application/octet-stream;base64,AAAA", False),
    ],
)
def test_data_urls_only_for_raster_images(src: str, kept: bool) -> None:
    result = sanitize(f'<img src="{src}">')
    images = [attrs for name, attrs in body_elements(result.html) if name == "img"]
    assert ("src" in images[0]) is kept
    assert result.has_remote_content is False


def test_links_open_safely() -> None:
    result = sanitize(
        '<a href="https://example.com/a?b=1&amp;c=2">web</a>'
        '<a href="mailto:list@example.com">mail</a>'
        '<a href="/spaces/KEY/admin/">relative</a>'
        '<a href="#section">anchor</a>'
    )

    links = [attrs for name, attrs in body_elements(result.html) if name == "a"]
    rel = "noopener noreferrer nofollow"
    assert links == [
        {"href": "https://example.com/a?b=1&c=2", "target": "_blank", "rel": rel},
        {"href": "mailto:list@example.com", "target": "_blank", "rel": rel},
        {"target": "_blank", "rel": rel},
        {"target": "_blank", "rel": rel},
    ]


def test_relative_images_are_dropped() -> None:
    """A relative URL in the frame would resolve against the archive itself."""
    result = sanitize('<img src="/spaces/KEY/mail/12/delete/"><img src="image1">')
    assert [attrs for _, attrs in body_elements(result.html)] == [{}, {}]


PART_LOCATIONS = {
    "image1": f"{CID_PREFIX}loc-1/",
    "http://example.com/logo.png": f"{CID_PREFIX}loc-2/",
    "file:///C:/Users/Ann/page_files/image001.png": f"{CID_PREFIX}loc-3/",
    "bg.png": f"{CID_PREFIX}loc-4/",
}


def images_of(result: SanitizedHtml) -> list[dict[str, str | None]]:
    return [attrs for name, attrs in body_elements(result.html) if name == "img"]


def test_content_locations_become_archive_urls() -> None:
    """GIVEN pictures named by the Content-Location of parts, relative,
    absolute http: and file: WHEN sanitized THEN each points at the archive,
    and a picture named by nothing is still dropped."""
    result = sanitize_html(
        '<img src="image1" alt="one"><img src=" http://example.com/logo.png"'
        ' alt="two"><img src="file:///C:/Users/Ann/page_files/image001.png"'
        ' alt="three"><img src="image2" alt="four">'
        '<img src="file:///C:/Users/Ann/secret.png" alt="five">'
        '<table><tr><td background="bg.png">t</td></tr></table>',
        allow_remote=False,
        cid_url=cid_url,
        location_url=PART_LOCATIONS.get,
    )

    assert images_of(result) == [
        {"src": f"{CID_PREFIX}loc-1/", "alt": "one"},
        {"src": f"{CID_PREFIX}loc-2/", "alt": "two"},
        {"src": f"{CID_PREFIX}loc-3/", "alt": "three"},
        {"alt": "four"},
        {"alt": "five"},
    ]
    assert f'background="{CID_PREFIX}loc-4/"' in result.html
    assert_safe(result, allow_remote=False)


def test_absolute_url_of_a_part_is_not_remote_content() -> None:
    """GIVEN a picture whose http: URL is a part's Content-Location, next to a
    remote one WHEN sanitized without remote content THEN the part is shown
    from the archive, its URL is nowhere in the document, and only the remote
    picture counts as remote content."""
    own = sanitize_html(
        '<img src="http://example.com/logo.png">',
        allow_remote=False,
        cid_url=cid_url,
        location_url=PART_LOCATIONS.get,
    )
    assert own.has_remote_content is False
    assert "example.com" not in own.html
    assert images_of(own) == [{"src": f"{CID_PREFIX}loc-2/"}]

    mixed = sanitize_html(
        '<img src="http://example.com/logo.png"><img src="http://example.com/x.png">',
        allow_remote=False,
        cid_url=cid_url,
        location_url=PART_LOCATIONS.get,
    )
    assert mixed.has_remote_content is True
    assert images_of(mixed) == [{"src": f"{CID_PREFIX}loc-2/"}, {}]

    shown = sanitize_html(
        '<img src="http://example.com/logo.png"><img src="http://example.com/x.png">',
        allow_remote=True,
        cid_url=cid_url,
        location_url=PART_LOCATIONS.get,
    )
    assert images_of(shown) == [
        {"src": f"{CID_PREFIX}loc-2/"},
        {"src": "http://example.com/x.png"},
    ]


def test_unmatched_relative_images_are_still_dropped() -> None:
    result = sanitize_html(
        '<img src="/spaces/KEY/mail/12/delete/"><img src="image9">',
        allow_remote=False,
        cid_url=cid_url,
        location_url=PART_LOCATIONS.get,
    )
    assert [attrs for _, attrs in body_elements(result.html)] == [{}, {}]
    assert result.has_remote_content is False


@pytest.mark.parametrize(
    "answer",
    [
        "https://evil.example/p.png",
        "//evil.example/p.png",
        "/\\evil.example/p.png",
        "/\t/evil.example/p.png",
        "\n//evil.example/p.png",
        "javascript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "relative/path.png",
        "https://archive.example.com.evil.example/p.png",
        "https://archive.example.com@evil.example/p.png",
    ],
)
def test_location_answers_off_the_archive_are_refused(answer: str) -> None:
    """GIVEN a location callback that answers with something other than an
    archive URL WHEN sanitized THEN the answer is not used: the reference is
    handled as if no part had that location."""
    result = sanitize_html(
        '<img src="image1"><img src="http://example.com/logo.png">',
        allow_remote=False,
        cid_url=cid_url,
        img_src_origin="https://archive.example.com",
        location_url=lambda _reference: answer,
    )
    assert images_of(result) == [{}, {}]
    assert result.has_remote_content is True
    assert "evil" not in result.html


def test_location_answer_on_the_image_origin_is_used() -> None:
    result = sanitize_html(
        '<img src="image1">',
        allow_remote=False,
        cid_url=cid_url,
        img_src_origin="https://archive.example.com",
        location_url=lambda _reference: "https://archive.example.com/p/1/?t=a",
    )
    assert images_of(result) == [{"src": "https://archive.example.com/p/1/?t=a"}]


def test_mail_layout_survives() -> None:
    html = (
        '<table width="600" cellpadding="4" cellspacing="0" border="1" '
        'bgcolor="#eeeeee" align="center" style="border-collapse: collapse">'
        '<tr><td valign="top" colspan="2" style="padding: 4px 8px; '
        "font-family: 'Segoe UI', Arial, sans-serif; color: rgb(20, 30, 40); "
        'text-align: right">'
        '<font face="Verdana" color="#ff0000" size="2"><b>Bold</b> <i>it</i> '
        "<u>u</u></font></td></tr></table>"
        '<p style="margin: 0 0 12px; font: 14px/1.5 Georgia, serif">Para</p>'
        '<ul><li>one</li></ul><ol start="3"><li>three</li></ol><hr>'
        '<blockquote style="border-left: 2px solid #ccc">quoted</blockquote>'
    )

    result = sanitize(html)

    elements = body_elements(result.html)
    names = [name for name, _ in elements]
    assert names == [
        "table", "tbody", "tr", "td", "font", "b", "i", "u", "p", "ul", "li",
        "ol", "li", "hr", "blockquote",
    ]  # fmt: skip
    table = elements[0][1]
    assert {k: table[k] for k in ("width", "cellpadding", "bgcolor", "align")} == {
        "width": "600",
        "cellpadding": "4",
        "bgcolor": "#eeeeee",
        "align": "center",
    }
    cell_style = elements[3][1]["style"] or ""
    for fragment in ("padding:4px 8px", "Segoe UI", "rgb(20, 30, 40)", "right"):
        assert fragment in cell_style
    assert elements[4][1] == {"face": "Verdana", "color": "#ff0000", "size": "2"}
    assert "Georgia" in (elements[8][1]["style"] or "")
    assert elements[11][1] == {"start": "3"}
    assert result.has_remote_content is False


def test_style_elements_and_head_are_dropped_with_content() -> None:
    result = sanitize(
        "<html><head><title>Secret title</title><style>.x{color:red}</style>"
        '<meta name="x" content="y"></head><body><p class="x">Body</p></body></html>'
    )
    assert "Secret title" not in result.html
    assert ".x{color:red}" not in result.html
    assert "<body><p>Body</p></body>" in result.html


def test_japanese_html_text_is_preserved() -> None:
    result = sanitize("<p>日本語のテキスト &amp; 記号</p>")
    assert "<p>日本語のテキスト &amp; 記号</p>" in result.html


def test_result_is_stable_when_sanitized_twice() -> None:
    """Sanitizing is idempotent on its own output body (no mutation-based XSS)."""
    html = "<div>" + "".join(XSS_PAYLOADS) + "</div>"
    first = sanitize(html)
    body = first.html.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    second = sanitize(body)
    # Attribute order may differ; elements, attributes and text may not.
    assert body_elements(second.html) == body_elements(first.html)
    assert parse(second.html).text_in == parse(first.html).text_in


def html_part(message: EmailMessage) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_real_cid_linked_message() -> None:
    """GIVEN a real multipart/related message whose HTML embeds four cid: images
    WHEN its HTML is sanitized
    THEN the images point at the archive, links are safe and metadata is gone."""
    path = corpus_dir() / "mimekit" / "mbox" / "content-length.mbox.txt"
    factory = lambda f: email.message_from_binary_file(  # noqa: E731
        f, policy=email.policy.default
    )
    message = next(
        m
        for m in mailbox.mbox(path, factory=factory, create=False)
        if m["Message-ID"] == "<19960209013311.izzy@scr.atm.com>"
    )

    result = sanitize(html_part(message))

    elements = body_elements(result.html)
    sources = [attrs.get("src") for name, attrs in elements if name == "img"]
    assert sources == [
        f"{CID_PREFIX}{n}.19960209013310.izzy@scr.atm.com/" for n in (2, 3, 5, 0)
    ]
    hrefs = [attrs.get("href") for name, attrs in elements if name == "a"]
    assert "http://www.twg.com/emissary/wmall.html" in hrefs
    assert "mailto:johnn@twg.com" in hrefs
    assert "Example of CID linking" not in result.html.split("<body>")[1]
    assert "Wollongong" in result.html
    assert result.has_remote_content is False
    assert_safe(result, allow_remote=False)


def test_real_mhtml_message_with_stylesheet_and_location_reference() -> None:
    path = corpus_dir() / "mimekit" / "messages" / "multipart-related-mhtml.txt"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)

    result = sanitize(html_part(message))

    assert ".cs2654AE3A" not in result.html
    elements = body_elements(result.html)
    images = [attrs for name, attrs in elements if name == "img"]
    assert images == [
        {"style": "border-width:0px", "width": "267", "height": "52", "alt": ""}
    ]
    assert ">def<" in result.html
    assert_safe(result, allow_remote=False)
