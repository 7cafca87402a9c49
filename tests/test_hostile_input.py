"""Hostile query parameters, cookies and form values never answer 500.

Every query parameter and cookie a view reads gets values a browser would
never send: out-of-range numbers and dates, broken and nested cursors,
control characters, time zones at the edge of the calendar. Each must answer
with a page or a 400, never with a server error. The archive also holds
messages dated at the very first and very last representable instants, so
that a far time zone has something to overflow on.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import MailAccount, PollRun
from mailarchive.middleware import TIME_ZONE_COOKIE
from mailarchive.models import ImportJob, Message
from mailarchive.services import message_trash
from tests.conftest import login_client
from tests.mailarchive.test_views import ingest, raw_message


def cursor(value: object) -> str:
    """A cursor as the selectors write one, around any JSON value."""
    data = json.dumps(value).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


EDGE_EARLY = datetime.min.replace(tzinfo=UTC) + timedelta(hours=1)
EDGE_LATE = datetime.max.replace(tzinfo=UTC) - timedelta(hours=1)

NUMBERS = [
    "0",
    "-1",
    "99999999999999",
    "9" * 40,
    "-" + "9" * 40,
    "1e309",
    "NaN",
    "inf",
    "٣",
    "１",
    "²",
    "0x10",
]
TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x1b\x7f",
    "\r\nX-Injected: 1",
    "<script>alert(1)</script>",
    "'; DROP TABLE x; --",
    "\ufffe\uffff",
    "\U0010ffff",
    "%",
    "%%%",
    "\\",
    "../../etc/passwd",
    "x" * 5000,
    # Bytes that are no UTF-8: a lone surrogate's encoding, a byte order mark.
    b"\xed\xb2\x80",
    b"\xff\xfe\x00",
]
MONTHS = [
    "9999-12",
    "9999-13",
    "0000-00",
    "0001-01",
    "0001-1",
    "10000-01",
    "2024-00",
    "2024-13",
    "2024-1-1",
    "-1-1",
    "٢٠٢٤-١",
    "２０２４-０１",
    "2024",
    "99999999999999999999-01",
]
DATES = [
    "9999-12-31",
    "9999-12-30",
    "0001-01-01",
    "0001-01-02",
    "0000-01-01",
    "10000-01-01",
    "2024-02-30",
    "31/12/9999",
    "12/31/9999",
    "2024-W01",
]
CURSORS = [
    "!!!!",
    "====",
    "A",
    "AAAA",
    "é",
    cursor(None),
    cursor({}),
    cursor([]),
    cursor([1]),
    cursor(["x", 1]),
    cursor([None, None]),
    cursor(["2024-01-01T00:00:00", 1]),
    cursor(["2024-01-01T00:00:00+00:00", "1"]),
    cursor(["2024-01-01T00:00:00+00:00", 10**30]),
    cursor(["2024-01-01T00:00:00+00:00", -(10**30)]),
    cursor(["2024-01-01T00:00:00+00:00", -1]),
    cursor(["2024-01-01T00:00:00+00:00", 2**63]),
    cursor(["2024-01-01T00:00:00+00:00", 1.5]),
    cursor(["9999-12-31T23:59:59-14:00", 1]),
    cursor(["0001-01-01T00:00:00+14:00", 1]),
    cursor(["9999-12-31T23:59:59.999999+00:00", 1]),
    cursor(["0001-01-01T00:00:00+00:00", 1]),
    cursor(["x\u0000y", "2024-01-01T00:00:00+00:00", 1]),
    cursor(["\udc80", "2024-01-01T00:00:00+00:00", 1]),
    cursor([["nested"], "2024-01-01T00:00:00+00:00", 1]),
    base64.urlsafe_b64encode(b"[1e999, 1]").decode().rstrip("="),
    base64.urlsafe_b64encode(b"[NaN, 1]").decode().rstrip("="),
    base64.urlsafe_b64encode(b"[" * 1400).decode().rstrip("="),
    base64.urlsafe_b64encode(b"[" * 1400 + b"]" * 1400).decode().rstrip("="),
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode().rstrip("="),
    "A" * 3000,
]
ZONES = [
    "Pacific/Kiritimati",
    "Etc/GMT-14",
    "Etc/GMT+12",
    "Pacific/Pago_Pago",
    "America/Adak",
    "Asia/Tokyo",
    "Factory",
    "localtime",
    "posixrules",
    "right/UTC",
    "Etc/../UTC",
    "/etc/localtime",
    "../../../../etc/passwd",
    "UTC\x00",
    "x" * 64,
    "x" * 65,
    "",
    "é",
]
BOOLEANS = ["1", "0", "true", "false", "on", "yes", "", "\x00", "x" * 500]


def hostile(kind: str) -> list[str | bytes]:
    return {
        "number": NUMBERS + TEXT,
        "text": TEXT + NUMBERS,
        "month": MONTHS + TEXT,
        "date": DATES + TEXT + NUMBERS,
        "cursor": CURSORS + TEXT,
        "bool": BOOLEANS,
        "choice": TEXT + NUMBERS,
    }[kind]


@pytest.fixture
def archive(actors):
    """The space with ordinary mail, mail at both ends of the calendar, a
    trashed message, an import and a poll, seen by its admin."""
    space = actors.space
    normal = ingest(space, raw_message(subject="Plans", msgid="plans@x"))
    early = ingest(space, raw_message(subject="Early", msgid="early@x"))
    late = ingest(space, raw_message(subject="Late", msgid="late@x"))
    Message.objects.filter(pk=early.pk).update(date=EDGE_EARLY)
    Message.objects.filter(pk=late.pk).update(date=EDGE_LATE)
    trashed = ingest(space, raw_message(subject="Gone", msgid="gone@x"))
    message_trash(space=space, message_pk=trashed.pk, actor=actors.admin)
    job = ImportJob.objects.create(
        space=space, origin="command", file_name="x.mbox", path="/nonexistent"
    )
    account = MailAccount.objects.create(
        space=space,
        name="Sales",
        protocol="imaps",
        host="mail.example.com",
        port=993,
        username="u",
    )
    run = PollRun.objects.create(account=account, trigger="manual")
    return {
        "space": space,
        "normal": normal,
        "early": early,
        "late": late,
        "job": job,
        "account": account,
        "run": run,
    }


def _pages(archive) -> dict[str, tuple[str, dict[str, str]]]:
    """GET pages by name: their address and the query parameters they read."""
    key = archive["space"].key
    m = archive["normal"].pk

    def mail(name: str, **kwargs: object) -> str:
        return reverse(f"mailarchive:{name}", kwargs={"key": key, **kwargs})

    search_params = {
        "q": "text",
        "sender": "text",
        "date_from": "date",
        "date_to": "date",
        "has_attachment": "bool",
        "order": "choice",
        "after": "cursor",
        "before": "cursor",
        "page": "number",
    }
    return {
        "mail-list": (
            mail("mail-list"),
            {
                "sort": "choice",
                "month": "month",
                "sender": "text",
                "size": "number",
                "after": "cursor",
                "before": "cursor",
                "last": "bool",
            },
        ),
        "mail-months": (mail("mail-months"), {}),
        "space-search": (mail("space-search"), search_params),
        "search": (
            reverse("mailarchive:search"),
            {**search_params, "space": "choice"},
        ),
        "export-search": (
            reverse("mbox:export-search", kwargs={"key": key}),
            {**search_params, "gzip": "bool"},
        ),
        "export-space": (
            reverse("mbox:export-space", kwargs={"key": key}),
            {"gzip": "bool"},
        ),
        "trash": (mail("trash"), {"after": "cursor", "before": "cursor"}),
        "thread": (
            mail("thread-detail", thread_id=archive["normal"].thread_id),
            {"message": "text"},
        ),
        "message": (mail("message-detail", message_pk=m), {"remote": "text"}),
        "message-early": (
            mail("message-detail", message_pk=archive["early"].pk),
            {},
        ),
        "message-late": (mail("message-detail", message_pk=archive["late"].pk), {}),
        "inline": (mail("attachment-inline", message_pk=m, position=0), {"t": "text"}),
        "feed": (mail("feed"), {}),
        "time-zone": (reverse("mailarchive:time-zone"), {"next": "text"}),
        "feed-token": (reverse("mailarchive:feed-token"), {}),
        "imports": (reverse("mbox:import-list", kwargs={"key": key}), {}),
        "import": (archive["job"].get_absolute_url(), {}),
        "import-status": (
            reverse(
                "mbox:import-status",
                kwargs={"key": key, "import_id": archive["job"].pk},
            ),
            {},
        ),
        "accounts": (reverse("accounts:account-list", kwargs={"key": key}), {}),
        "poll-run": (
            reverse(
                "accounts:poll-run",
                kwargs={"key": key, "poll_run_id": archive["run"].pk},
            ),
            {},
        ),
        "poll-status": (
            reverse(
                "accounts:poll-run-status",
                kwargs={"key": key, "poll_run_id": archive["run"].pk},
            ),
            {},
        ),
        "dashboard": (reverse("spaces:dashboard"), {}),
        "space-home": (reverse("spaces:space-home", kwargs={"key": key}), {}),
        "permissions": (reverse("spaces:space-permissions", kwargs={"key": key}), {}),
        "login": (reverse("login"), {"next": "text"}),
        "admin-messages": (
            reverse("admin:mailarchive_message_changelist"),
            {
                "q": "text",
                "date__year": "number",
                "date__month": "number",
                "date__day": "number",
                "p": "number",
                "o": "text",
                "space__id__exact": "number",
            },
        ),
        "admin-message": (
            reverse("admin:mailarchive_message_change", args=[archive["late"].pk]),
            {},
        ),
    }


PAGE_NAMES = [
    "mail-list",
    "mail-months",
    "space-search",
    "search",
    "export-search",
    "export-space",
    "trash",
    "thread",
    "message",
    "message-early",
    "message-late",
    "inline",
    "feed",
    "time-zone",
    "feed-token",
    "imports",
    "import",
    "import-status",
    "accounts",
    "poll-run",
    "poll-status",
    "dashboard",
    "space-home",
    "permissions",
    "login",
    "admin-messages",
    "admin-message",
]


def site_admin_client(actors) -> Client:
    client = login_client(actors.site_admin)
    client.raise_request_exception = False
    return client


def _status(client: Client, address: str, params: dict[str, str]) -> int:
    response = client.get(address, params)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    return response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGE_NAMES)
def test_every_query_parameter_survives_hostile_values(actors, archive, page):
    """GIVEN each query parameter a page reads WHEN it carries out-of-range,
    malformed or hostile values THEN the page answers below 500."""
    address, params = _pages(archive)[page]
    client = site_admin_client(actors)
    failures = []
    for name, kind in params.items():
        for value in hostile(kind):
            status = _status(client, address, {name: value})
            if status >= 500:
                failures.append((name, value[:80], status))
    assert failures == []


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGE_NAMES)
def test_every_page_survives_time_zones_at_the_edge_of_the_calendar(
    actors, archive, page
):
    """GIVEN messages dated at the first and last representable instants WHEN
    a page is drawn in a far time zone (or a broken zone cookie) THEN it
    answers below 500, also with date filters at the edges."""
    address, params = _pages(archive)[page]
    client = site_admin_client(actors)
    failures = []
    edge_values = {
        "month": ["9999-12", "0001-01"],
        "date": ["9999-12-31", "0001-01-01"],
    }
    for zone in ZONES:
        client.cookies[TIME_ZONE_COOKIE] = zone
        status = _status(client, address, {})
        if status >= 500:
            failures.append((zone, None, status))
        for name, kind in params.items():
            for value in edge_values.get(kind, []):
                status = _status(client, address, {name: value})
                if status >= 500:
                    failures.append((zone, f"{name}={value}", status))
    assert failures == []


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cookie", ["sessionid", "csrftoken", "django_language", TIME_ZONE_COOKIE]
)
def test_hostile_cookies_are_ignored(actors, archive, cookie):
    client = site_admin_client(actors)
    address = reverse("mailarchive:mail-list", kwargs={"key": archive["space"].key})
    failures = []
    # A server hands cookies over decoded as Latin-1: nothing else can arrive.
    values = [v for v in TEXT + ZONES if isinstance(v, str) and _latin1(v)]
    for value in values:
        client.cookies[cookie] = value
        status = _status(client, address, {})
        if status >= 500:
            failures.append((value[:80], status))
        if cookie == "sessionid":
            client = site_admin_client(actors)
    assert failures == []


@pytest.mark.django_db
def test_hostile_form_values_answer_below_500(actors, archive):
    """The forms of the reading and space pages, posted with hostile values."""
    key = archive["space"].key
    client = site_admin_client(actors)
    posts = [
        (reverse("mailarchive:trash-action", kwargs={"key": key}), "action", "choice"),
        (
            reverse("mailarchive:trash-action", kwargs={"key": key}),
            "messages",
            "number",
        ),
        (reverse("mailarchive:delete-all", kwargs={"key": key}), "confirm_key", "text"),
        (reverse("mailarchive:time-zone"), "time_zone", "text"),
        (reverse("mailarchive:time-zone"), "next", "text"),
        (reverse("mailarchive:feed-token"), "action", "text"),
        (reverse("spaces:space-permissions", kwargs={"key": key}), "principal", "text"),
        (reverse("spaces:space-permissions", kwargs={"key": key}), "level", "number"),
        (reverse("spaces:space-create"), "key", "text"),
        (reverse("spaces:space-create"), "name", "text"),
        (
            reverse(
                "accounts:account-enable",
                kwargs={"key": key, "account_id": archive["account"].pk},
            ),
            "enabled",
            "bool",
        ),
    ]
    failures = []
    for address, name, kind in posts:
        for value in hostile(kind):
            data = {name: value}
            if name == "messages":
                data["action"] = "restore"
            if name == "level":
                data["principal"] = "viewer"
            if name == "name":
                data["key"] = "NEWSPACE"
            status = client.post(address, data).status_code
            if status >= 500:
                failures.append((address, name, value[:80], status))
    assert failures == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "message_id",
    ["\x00", "a%00b", "%ED%B2%80", "<\x01>", "x" * 5000, "%", "<>", "../.."],
)
def test_permalinks_of_hostile_message_ids(actors, archive, message_id):
    client = site_admin_client(actors)
    response = client.get("/mail/" + message_id + "/")
    assert response.status_code < 500


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/spaces/%00/",
        "/spaces/SA%00LES/mail/",
        "/spaces/%ED%B2%80/mail/",
        "/spaces/" + "X" * 5000 + "/mail/",
        "/spaces/SALES/mail/feed/%00/",
        "/spaces/SALES/mail/feed/" + "x" * 5000 + "/",
        "/spaces/SALES/mail/99999999999999999999999/",
        "/spaces/SALES/mail/threads/99999999999999999999999/",
        "/spaces/SALES/mail/1/attachments/99999999999999999999/",
        "/spaces/SALES/imports/99999999999999999999999/status.json",
    ],
)
def test_hostile_path_segments(actors, archive, path):
    assert site_admin_client(actors).get(path).status_code < 500
    anonymous = Client(raise_request_exception=False)
    assert anonymous.get(path).status_code < 500


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["Etc/GMT-14", "Etc/GMT+12"])
def test_dates_at_the_ends_of_the_calendar_show_at_its_ends(actors, archive, zone):
    """GIVEN messages dated an hour from either end of the calendar WHEN shown
    in a zone that would move them past it THEN they show as its first or last
    day, count in its first or last month, and the month filter finds them."""
    client = site_admin_client(actors)
    client.cookies[TIME_ZONE_COOKIE] = zone
    key = archive["space"].key
    late = client.get(
        reverse(
            "mailarchive:message-detail",
            kwargs={"key": key, "message_pk": archive["late"].pk},
        )
    ).content.decode()
    early = client.get(
        reverse(
            "mailarchive:message-detail",
            kwargs={"key": key, "message_pk": archive["early"].pk},
        )
    ).content.decode()
    assert "9999-12-31" in late
    assert "0001-01-01" in early
    months = client.get(
        reverse("mailarchive:mail-months", kwargs={"key": key})
    ).content.decode()
    assert "9999" in months and "0001" in months
    listing = reverse("mailarchive:mail-list", kwargs={"key": key})
    last = client.get(listing, {"month": "9999-12"}).content.decode()
    first = client.get(listing, {"month": "0001-01"}).content.decode()
    assert "Late" in last and "Early" not in last
    assert "Early" in first and "Late" not in first
