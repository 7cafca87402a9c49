"""Search through the API: the search page's syntax, filters, ranking and
highlights, and the same results, page for page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from spaces.models import Level
from tests.api.conftest import bearer, token_for
from tests.conftest import login_client
from tests.factories import SpaceFactory, SpacePermissionFactory
from tests.mailarchive.test_search import corpus  # noqa: F401  (a fixture)
from tests.mailarchive.test_views import BASE, ingest, raw_message

pytestmark = pytest.mark.django_db

QUERIES = [
    {"q": "budget"},
    {"q": '"budget review"'},
    {"q": "budget -pizza"},
    {"q": "pizza or release"},
    {"q": "会議"},
    {"q": "budget", "order": "relevance"},
    {"sender": "carol"},
    {"has_attachment": "on"},
    {"q": "budget", "date_from": "2024-03-02"},
    {"q": "notes-2024"},
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: "&".join(q.values()))
def test_results_and_highlights_are_the_search_pages(actors, corpus, query):  # noqa: F811
    page = login_client(actors.viewer).get(
        reverse("mailarchive:space-search", kwargs={"key": "SALES"}), query
    )
    expected = [
        (h.message.pk, str(h.subject), str(h.excerpt))
        for h in page.context["results"].hits
    ]
    body = (
        bearer(token_for(actors.viewer))
        .get(reverse("api:space-search", kwargs={"key": "SALES"}), query)
        .json()
    )
    got = [
        (r["message"]["id"], r["subject_html"], r["excerpt_html"])
        for r in body["results"]
    ]
    assert got == expected
    assert body["count"] == page.context["results"].count


def test_highlights_are_escaped_markup(actors, corpus):  # noqa: F811
    body = (
        bearer(token_for(actors.viewer))
        .get(reverse("api:space-search", kwargs={"key": "SALES"}), {"q": "budget"})
        .json()
    )
    subjects = {r["subject_html"] for r in body["results"]}
    assert "Quarterly <mark>budget</mark> review" in subjects


def test_across_spaces_only_what_the_caller_may_see(actors, corpus):  # noqa: F811
    hidden = SpaceFactory(key="HIDDEN")
    ingest(hidden, raw_message(subject="Secret budget", msgid="secret@x"))
    other = SpaceFactory(key="OTHER", name="Other space")
    SpacePermissionFactory(space=other, user=actors.viewer, level=Level.VIEW)
    ingest(other, raw_message(subject="Other budget", msgid="other@x"))
    client = bearer(token_for(actors.viewer))
    url = reverse("api:search")
    body = client.get(url, {"q": "budget"}).json()
    assert sorted((r["space"], r["message"]["subject"]) for r in body["results"]) == [
        ("OTHER", "Other budget"),
        ("SALES", "Lunch on Friday"),
        ("SALES", "Quarterly budget review"),
    ]
    only = client.get(url, {"q": "budget", "space": "OTHER"}).json()
    assert [r["message"]["subject"] for r in only["results"]] == ["Other budget"]
    hidden_answer = client.get(url, {"q": "budget", "space": "HIDDEN"})
    assert hidden_answer.status_code == 400
    assert "space" in hidden_answer.json()["errors"]


def test_anonymous_search_needs_a_public_space(actors, corpus):  # noqa: F811
    assert Client().get(reverse("api:search"), {"q": "budget"}).status_code == 401
    public = SpaceFactory(key="OPEN", allow_anonymous=True)
    ingest(public, raw_message(subject="Public budget", msgid="pub@x"))
    body = Client().get(reverse("api:search"), {"q": "budget"}).json()
    assert [r["message"]["subject"] for r in body["results"]] == ["Public budget"]


@pytest.mark.postgres(
    reason="best-match ranking is full-text ts_rank; SQLite orders newest first"
)
def test_pages_by_cursor_newest_first_and_by_number_by_relevance(actors):
    for n in range(30):
        ingest(
            actors.space,
            raw_message(
                subject=f"Status {n:02d}",
                msgid=f"status{n}@x",
                date=BASE + timedelta(hours=n),
            ),
        )
    client = bearer(token_for(actors.viewer))
    url = reverse("api:space-search", kwargs={"key": "SALES"})
    first = client.get(url, {"q": "status"}).json()
    assert first["count"] == 30 and len(first["results"]) == 25
    second = client.get(first["next"]).json()
    assert second["next"] is None and len(second["results"]) == 5
    subjects = [r["message"]["subject"] for r in first["results"] + second["results"]]
    assert subjects == [f"Status {n:02d}" for n in reversed(range(30))]
    back = client.get(second["previous"]).json()
    assert back["results"] == first["results"]
    ranked = client.get(url, {"q": "status", "order": "relevance", "limit": 20}).json()
    assert len(ranked["results"]) == 20 and ranked["previous"] is None
    assert "page=2" in ranked["next"]
    page2 = client.get(ranked["next"]).json()
    assert len(page2["results"]) == 10 and page2["next"] is None
    assert client.get(url, {"q": "status", "limit": 101}).status_code == 400
    assert client.get(url, {"q": "status", "after": "not*a*cursor"}).status_code == 400


def test_trashed_mail_is_not_found(actors, mail):
    client = bearer(token_for(actors.deleter))
    client.post(
        reverse("api:message-trash", kwargs={"key": "SALES", "id": mail.reply.pk})
    )
    body = client.get(
        reverse("api:space-search", kwargs={"key": "SALES"}), {"q": "invoice"}
    ).json()
    assert body["results"] == [] and body["count"] == 0
