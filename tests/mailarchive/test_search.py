"""Search: words and phrases, Japanese without spaces, filters, highlighting."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from types import SimpleNamespace

import pytest
from django.contrib.postgres.search import SearchQuery as PgSearchQuery
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailarchive import search as search_module
from mailarchive.models import AttachmentText, Message
from mailarchive.search import (
    MailSearch,
    Order,
    excerpt_around,
    highlight,
    messages_search,
    query_parse,
)
from mailarchive.services import message_trash
from spaces.models import Level
from tests.conftest import client_for, login_client
from tests.factories import SpaceFactory, SpacePermissionFactory
from tests.mailarchive.test_feeds import assert_bodies_not_selected
from tests.mailarchive.test_views import BASE, PNG, ingest, raw_message


def found(space, **kwargs) -> list[str]:
    qs, _parsed = messages_search(
        Message.objects.filter(space=space), MailSearch(**kwargs)
    )
    if "rank" not in qs.query.annotations:
        qs = qs.order_by("-date", "-pk")
    return [m.subject for m in qs]


@pytest.fixture
def corpus(actors):
    space = actors.space
    ingest(
        space,
        raw_message(
            subject="Quarterly budget review",
            msgid="budget@x",
            body="Please find the numbers for the budget below.\n",
            date=BASE,
        ),
    )
    ingest(
        space,
        raw_message(
            subject="Lunch on Friday",
            msgid="lunch@x",
            sender="Carol Cook <carol@example.org>",
            body="Shall we meet at noon? The budget allows pizza.\n",
            date=BASE + timedelta(days=1),
            attachments=(("menu.png", "image/png", PNG),),
        ),
    )
    ingest(
        space,
        raw_message(
            subject="会議の予定について",
            msgid="kaigi@x",
            sender="山田 太郎 <yamada@example.jp>",
            body="明日の定例会議は十時から第二会議室で行います。資料を準備してください。\n",
            date=BASE + timedelta(days=2),
        ),
    )
    ingest(
        space,
        raw_message(
            subject="Release notes",
            msgid="release@x",
            body="The new release fixes the login bug.\n",
            date=BASE + timedelta(days=3),
            attachments=(("notes-2024.txt", "text/plain", b"details"),),
        ),
    )
    return space


@pytest.mark.django_db
def test_words_phrases_negation_and_or(corpus):
    assert found(corpus, text="budget") == [
        "Lunch on Friday",
        "Quarterly budget review",
    ]
    assert found(corpus, text='"budget review"') == ["Quarterly budget review"]
    assert found(corpus, text="budget -pizza") == ["Quarterly budget review"]
    assert found(corpus, text="pizza or login") == ["Release notes", "Lunch on Friday"]
    assert found(corpus, text="nothing-like-this") == []


@pytest.mark.django_db
def test_senders_recipients_and_attachment_names_are_searched(corpus):
    assert found(corpus, text="carol@example.org") == ["Lunch on Friday"]
    assert found(corpus, text="notes-2024.txt") == ["Release notes"]
    assert found(corpus, text="team@example.com")[0] == "Release notes"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("term", "subject"),
    [
        ("会議", "会議の予定について"),
        ("定例会議", "会議の予定について"),
        ("資料を準備", "会議の予定について"),
        ("山田", "会議の予定について"),
        ("予定 budget", None),
    ],
)
def test_japanese_is_found_inside_text_without_spaces(corpus, term, subject):
    assert found(corpus, text=term) == ([subject] if subject else [])


@pytest.mark.django_db
def test_the_japanese_corpus_message_is_found_by_a_word_of_its_body(actors, corpus_dir):
    raw = (corpus_dir / "mimekit" / "messages" / "japanese.txt").read_bytes()
    message = ingest(actors.space, raw)
    words = [w for w in message.text_body.split() if len(w) >= 2]
    assert words, "the Japanese corpus message has body text"
    japanese = next(
        (w for w in words if search_module._UNSPACED.search(w)),
        None,
    )
    assert japanese is not None
    piece = "".join(c for c in japanese if search_module._UNSPACED.match(c))[:3]
    assert message.subject in found(actors.space, text=piece)


@pytest.mark.django_db
def test_filters_sender_dates_and_attachments(corpus):
    assert found(corpus, sender="carol") == ["Lunch on Friday"]
    assert found(corpus, sender="山田") == ["会議の予定について"]
    day = (BASE + timedelta(days=1)).date()
    assert found(corpus, date_from=day, date_to=day) == ["Lunch on Friday"]
    assert found(corpus, date_from=day + timedelta(days=2)) == ["Release notes"]
    assert found(corpus, has_attachment=True) == ["Release notes", "Lunch on Friday"]
    assert found(corpus, text="budget", has_attachment=True) == ["Lunch on Friday"]


@pytest.mark.postgres(
    reason="best-match ranking is full-text ts_rank; SQLite orders newest first"
)
@pytest.mark.django_db
def test_relevance_puts_subject_matches_first(corpus):
    newest = found(corpus, text="budget")
    best = found(corpus, text="budget", order=Order.RELEVANCE)
    assert newest[0] == "Lunch on Friday"
    assert best[0] == "Quarterly budget review"


@pytest.mark.postgres(
    reason="best-match ranking is full-text ts_rank; SQLite orders newest first"
)
@pytest.mark.django_db
def test_relevance_ranks_only_the_newest_matches(corpus, monkeypatch):
    monkeypatch.setattr(search_module, "RELEVANCE_POOL", 1)
    assert found(corpus, text="budget", order=Order.RELEVANCE) == ["Lunch on Friday"]


@pytest.mark.django_db
def test_trashed_messages_are_not_found(actors, corpus):
    lunch = Message.objects.get(message_id="lunch@x")
    message_trash(space=corpus, message_pk=lunch.pk, actor=actors.deleter)
    assert found(corpus, text="budget") == ["Quarterly budget review"]


@pytest.mark.django_db
def test_sqlite_fallback_matches_every_term_as_a_substring(corpus, monkeypatch):
    monkeypatch.setattr(search_module, "connection", SimpleNamespace(vendor="sqlite"))
    assert found(corpus, text="BUDGET -pizza") == ["Quarterly budget review"]
    assert found(corpus, text="会議") == ["会議の予定について"]
    assert found(corpus, text="budget", order=Order.RELEVANCE) == [
        "Lunch on Friday",
        "Quarterly budget review",
    ]


@pytest.mark.django_db
@pytest.mark.postgres(reason="GIN indexes and their query plans are PostgreSQL's")
@pytest.mark.parametrize(
    ("lookup", "index"),
    [
        (
            {
                "search_vector": PgSearchQuery(
                    "budget", search_type="websearch", config="simple"
                )
            },
            "message_search_vector",
        ),
        ({"search_text__contains": "定例会議"}, "message_search_trgm"),
    ],
    ids=["words", "unspaced"],
)
def test_search_conditions_are_served_by_their_gin_indexes(corpus, lookup, index):
    """The lookups ``messages_search`` uses can be answered from the GIN indexes
    of migration 0003 (sequential scans are switched off so that the tiny test
    table does not hide the plan)."""
    sql, params = Message.objects.filter(**lookup).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Bitmap Index Scan on {index}" in plan, plan


def test_query_parse_splits_words_phrases_and_unspaced_terms():
    parsed = query_parse('invoice "due date" -draft 請求書 or  -"見積 書"')
    assert [(t.text, t.negated, t.phrase, t.unspaced) for t in parsed.terms] == [
        ("invoice", False, False, False),
        ("due date", False, True, False),
        ("draft", True, False, False),
        ("請求書", False, False, True),
        ("見積 書", True, True, True),
    ]
    assert parsed.websearch == 'invoice "due date" -draft'
    assert parsed.highlight_terms == ["invoice", "due date", "請求書"]
    assert query_parse("or or").websearch == ""


def test_highlight_escapes_first_then_marks():
    text = '<script>alert("budget")</script> Budget & budgets <b>'
    marked = str(highlight(text, ["budget", "<b>"]))
    assert "<script>" not in marked
    assert marked.count("<mark>") == 3
    assert "<mark>&lt;b&gt;</mark>" in marked
    assert "<mark>Budget</mark> &amp; budgets" in marked
    assert str(highlight("会議室で会議", ["会議"])) == (
        "<mark>会議</mark>室で<mark>会議</mark>"
    )


def test_excerpt_is_centred_on_the_first_match():
    text = "word " * 200 + "needle <here> " + "tail " * 200
    shown = str(excerpt_around(text, ["needle"], length=80))
    assert shown.startswith("… ") and shown.endswith(" …")
    assert "<mark>needle</mark> &lt;here&gt;" in shown
    assert len(excerpt_around("short", ["x"])) == 5


@pytest.mark.django_db
def test_search_pages_highlight_and_respect_visibility(actors, corpus):
    hidden = SpaceFactory(key="HIDDEN")
    ingest(hidden, raw_message(subject="Secret budget", msgid="secret@x"))
    other = SpaceFactory(key="OTHER", name="Other space")
    SpacePermissionFactory(space=other, user=actors.viewer, level=Level.VIEW)
    ingest(other, raw_message(subject="Other budget", msgid="other@x"))
    client = client_for(actors, "viewer")
    everywhere = client.get(reverse("mailarchive:search"), {"q": "budget"})
    subjects = [h.message.subject for h in everywhere.context["results"].hits]
    assert sorted(subjects) == [
        "Lunch on Friday",
        "Other budget",
        "Quarterly budget review",
    ]
    body = everywhere.content.decode()
    assert "Quarterly <mark>budget</mark> review" in body
    assert "Other space" in body
    only_other = client.get(
        reverse("mailarchive:search"), {"q": "budget", "space": "OTHER"}
    )
    assert [h.message.subject for h in only_other.context["results"].hits] == [
        "Other budget"
    ]
    forbidden = client.get(
        reverse("mailarchive:search"), {"q": "budget", "space": "HIDDEN"}
    )
    assert forbidden.context["results"] is None
    in_space = client.get(
        reverse("mailarchive:space-search", kwargs={"key": "SALES"}), {"q": "会議"}
    )
    assert [h.message.subject for h in in_space.context["results"].hits] == [
        "会議の予定について"
    ]
    assert "<mark>会議</mark>" in in_space.content.decode()


@pytest.mark.django_db
def test_anonymous_search_needs_a_public_space(actors, corpus):
    assert login_client(None).get(reverse("mailarchive:search")).status_code == 302
    public = SpaceFactory(key="OPEN", allow_anonymous=True)
    ingest(public, raw_message(subject="Public budget", msgid="pub@x"))
    response = login_client(None).get(reverse("mailarchive:search"), {"q": "budget"})
    assert [h.message.subject for h in response.context["results"].hits] == [
        "Public budget"
    ]


@pytest.mark.postgres(
    reason="best-match ranking is full-text ts_rank; SQLite orders newest first"
)
@pytest.mark.django_db
def test_newest_first_results_page_by_cursor_and_relevance_is_bounded(actors):
    for n in range(30):
        ingest(
            actors.space,
            raw_message(
                subject=f"Status {n:02d}",
                msgid=f"status{n}@x",
                date=BASE + timedelta(hours=n),
            ),
        )
    client = client_for(actors, "viewer")
    address = reverse("mailarchive:space-search", kwargs={"key": "SALES"})
    first = client.get(address, {"q": "status"}).context["results"]
    assert first.count == 30 and len(first.hits) == 25
    second = client.get(
        address, {"q": "status", "after": first.page.next_cursor}
    ).context["results"]
    subjects = [h.message.subject for h in first.hits + second.hits]
    assert subjects == [f"Status {n:02d}" for n in reversed(range(30))]
    assert second.page.next_cursor is None
    ranked = client.get(address, {"q": "status", "order": "relevance"})
    results = ranked.context["results"]
    assert results.page_number == 1 and results.has_next_number
    page2 = client.get(address, {"q": "status", "order": "relevance", "page": 2})
    assert len(page2.context["results"].hits) == 5
    bad = client.get(address, {"q": "status", "after": "not*a*cursor"})
    assert bad.context["form"].errors


@pytest.mark.django_db
@pytest.mark.parametrize("rare_limit", [2, 5000], ids=["common", "rare"])
def test_rare_and_common_terms_find_the_same_messages(monkeypatch, rare_limit):
    """GIVEN matches below or above the limit for collecting ids first WHEN
    searching newest first THEN the same messages come back either way (the
    rare path only changes how PostgreSQL is led to them)."""
    monkeypatch.setattr(search_module, "RARE_LIMIT", rare_limit)
    space = SpaceFactory()
    for n in range(4):
        body = "quarterly kilimanjaro report\n" if n % 2 else "nothing here\n"
        ingest(
            space,
            raw_message(msgid=f"rare{n}@x", body=body, date=BASE + timedelta(hours=n)),
        )
    for text in ["kilimanjaro", "absentword", "請求書"]:
        qs, _parsed = messages_search(
            Message.objects.filter(space=space), MailSearch(text=text)
        )
        found = list(qs.order_by("-date", "-pk").values_list("message_id", flat=True))
        expected = ["rare3@x", "rare1@x"] if text == "kilimanjaro" else []
        assert found == expected


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["newest", "relevance"])
def test_search_pages_read_only_the_start_of_each_body(actors, monkeypatch, order):
    """GIVEN matching messages with bodies of several megabytes WHEN a search
    page is drawn THEN no query selects a body column whole, and no more than
    EXCERPT_SOURCE_CHARS of any body reaches Python."""
    huge = "The needle is here. " + "hay " * 1_500_000
    for n in range(3):
        message = ingest(
            actors.space,
            raw_message(subject=f"needle {n}", msgid=f"n{n}@x", body="needle\n"),
        )
        Message.objects.filter(pk=message.pk).update(
            text_body=huge, html_body=huge, search_text=huge
        )
    seen: list[int] = []
    real = search_module.excerpt_around

    def measured(text: str, terms: list[str], length: int = 240):
        seen.append(len(text))
        return real(text, terms, length)

    monkeypatch.setattr(search_module, "excerpt_around", measured)
    client = client_for(actors, "viewer")
    address = reverse("mailarchive:space-search", kwargs={"key": "SALES"})
    with CaptureQueriesContext(connection) as queries:
        response = client.get(address, {"q": "needle", "order": order})
    assert response.status_code == 200
    assert "The <mark>needle</mark> is here." in response.content.decode()
    assert len(seen) == 3 and max(seen) <= search_module.EXCERPT_SOURCE_CHARS
    for query in queries:
        if "mailarchive_message" in query["sql"]:
            assert_bodies_not_selected(query["sql"])


@pytest.mark.django_db
@pytest.mark.postgres(reason="GIN indexes and their query plans are PostgreSQL's")
@pytest.mark.parametrize(
    ("lookup", "index"),
    [
        (
            {
                "search_vector": PgSearchQuery(
                    "marmoset", search_type="websearch", config="simple"
                )
            },
            "attachment_text_vector",
        ),
        ({"text__contains": "見積書"}, "attachment_text_trgm"),
    ],
    ids=["words", "unspaced"],
)
def test_attachment_text_conditions_are_served_by_their_gin_indexes(lookup, index):
    """What ``attachments_search`` asks of AttachmentText is answered from the
    GIN indexes of migration 0009."""
    sql, params = (
        AttachmentText.objects.filter(**lookup).values("sha256").query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Bitmap Index Scan on {index}" in plan, plan


def test_or_holds_in_substring_matching_as_sqlite_runs_it(corpus, monkeypatch):
    """GIVEN the matching a database without full-text search gets (SQLite,
    the default install) WHEN a search says ``or`` THEN either term matches."""
    monkeypatch.setattr(search_module, "full_text_available", lambda: False)
    assert found(corpus, text="pizza or login") == ["Release notes", "Lunch on Friday"]
    assert found(corpus, text="budget -pizza") == ["Quarterly budget review"]
    assert found(corpus, text="pizza or login -bug") == ["Lunch on Friday"]


@pytest.mark.django_db
def test_or_between_unspaced_text_and_words(corpus):
    assert found(corpus, text="会議 or pizza") == [
        "会議の予定について",
        "Lunch on Friday",
    ]


@pytest.mark.django_db
def test_inline_attachment_names_and_recipients_are_found_and_shown(actors):
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "Procurement Desk <procurement-desk@example.com>"
    message["Subject"] = "Figures"
    message["Message-ID"] = "<figures@x>"
    message.set_content("See below.\n")
    message.add_alternative('<p>See <img src="cid:q3@x"></p>', subtype="html")
    message.get_payload()[-1].add_related(
        PNG, maintype="image", subtype="png", cid="<q3@x>", filename="diagram-q3.png"
    )
    ingest(actors.space, bytes(message))
    assert "diagram-q3.png" in Message.objects.get(message_id="figures@x").search_text
    assert found(actors.space, text="diagram-q3.png") == ["Figures"]
    client = client_for(actors, "viewer")
    response = client.get(
        reverse("mailarchive:space-search", kwargs={"key": "SALES"}) + "?q=procurement"
    )
    [hit] = response.context["results"].hits
    assert "<mark>Procurement</mark>" in str(hit.excerpt)
