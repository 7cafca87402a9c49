"""No N+1: every list endpoint runs the same number of queries for one row as
for many (the page budget of bench/scale.py holds at a million messages)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import PollRun
from accounts.services import mail_account_create
from mailarchive.models import ImportJob
from mailarchive.services import message_trash
from spaces.models import Level
from tests.api.conftest import BASE, bearer, ingest, token_for
from tests.factories import SpaceFactory, SpacePermissionFactory, UserFactory
from tests.mailarchive.test_views import raw_message

pytestmark = pytest.mark.django_db


def count_queries(call: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, response.content[:300]
    return len(captured)


def add_messages(space, start: int, count: int, *, files: bool = True) -> list:
    return [
        ingest(
            space,
            raw_message(
                subject=f"Budget {n}",
                msgid=f"q{n}@x",
                refs=("root@x",),
                date=BASE + timedelta(minutes=n),
                attachments=(("a.txt", "text/plain", b"x"),) if files else (),
            ),
        )
        for n in range(start, start + count)
    ]


def test_message_list_runs_four_queries_whatever_the_page_size(
    actors, django_assert_num_queries
):
    """The token with its user, the space, the caller's grants, the page."""
    add_messages(actors.space, 0, 30)
    client = bearer(token_for(actors.viewer))
    url = reverse("api:message-list", kwargs={"key": "SALES"})
    client.get(url)  # the token's first use is written once
    for limit in (1, 30):
        with django_assert_num_queries(4):
            assert len(client.get(f"{url}?limit={limit}").json()["results"]) == limit


LISTS = {
    "messages": ("message-list", Level.VIEW),
    "search": ("space-search", Level.VIEW),
    "trash": ("trash-list", Level.ADMIN),
    "mail-accounts": ("mail-account-list", Level.ADMIN),
    "imports": ("import-list", Level.ADMIN),
    "permissions": ("permission-list", Level.ADMIN),
    "thread": ("thread-detail", Level.VIEW),
}


def grow(actors, start: int, count: int) -> None:
    """``count`` more rows of every list."""
    messages = add_messages(actors.space, start, count)
    message_trash(space=actors.space, message_pk=messages[-1].pk, actor=actors.admin)
    for n in range(start, start + count):
        account = mail_account_create(
            space=actors.space,
            name=f"Account {n}",
            protocol="imaps",
            host="mail.example.org",
            username=f"u{n}",
            password="p",
        )
        PollRun.objects.create(account=account, trigger="manual")
        ImportJob.objects.create(
            space=actors.space, origin="upload", file_name=f"{n}.mbox", path="/x"
        )
        SpacePermissionFactory(
            space=actors.space, user=UserFactory(username=f"reader{n}"), level=10
        )


@pytest.mark.parametrize("name", LISTS)
def test_lists_cost_the_same_for_one_row_and_for_many(actors, name):
    endpoint, _needed = LISTS[name]
    client = bearer(token_for(actors.admin))
    first = ingest(actors.space, raw_message(subject="Budget root", msgid="root@x"))
    grow(actors, 0, 1)

    def url() -> str:
        kwargs = {"key": "SALES"}
        if endpoint == "thread-detail":
            kwargs["id"] = first.thread_id
        query = "?q=budget" if endpoint == "space-search" else "?limit=200"
        return reverse(f"api:{endpoint}", kwargs=kwargs) + query

    client.get(url())
    few = count_queries(lambda: client.get(url()))
    grow(actors, 1, 12)
    many = count_queries(lambda: client.get(url()))
    assert few == many


def test_spaces_list_costs_the_same_for_one_space_and_for_many(actors):
    client = bearer(token_for(actors.viewer))
    client.get("/api/v1/spaces/")
    few = count_queries(lambda: client.get("/api/v1/spaces/"))
    for n in range(8):
        space = SpaceFactory(key=f"MORE{n}")
        SpacePermissionFactory(space=space, user=actors.viewer, level=Level.DELETE)
    many = count_queries(lambda: client.get("/api/v1/spaces/"))
    assert few == many
    levels = {
        s["key"]: s["level"] for s in client.get("/api/v1/spaces/").json()["results"]
    }
    assert levels == {"SALES": "view", **{f"MORE{n}": "delete" for n in range(8)}}
