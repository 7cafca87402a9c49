"""Round trips on the real-world corpus: every message read through the API is
what its page shows, and its raw source comes back byte for byte."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse

from mailarchive.models import Message
from mailarchive.services import message_ingest
from tests.api.conftest import bearer, token_for
from tests.conftest import login_client

pytestmark = pytest.mark.django_db


def _corpus_messages() -> list[Path]:
    value = os.environ.get("MAILARCHIVE_TEST_CORPUS", "")
    root = Path(value) if value else Path(__file__).parents[3] / "shared" / "corpus"
    found = sorted((root / "mimekit" / "messages").glob("*"))
    # An empty list would make pytest skip the test; the corpus_dir fixture
    # below fails loudly instead.
    return found or [root / "mimekit" / "messages" / "missing"]


# Pictures in the HTML carry a signed pass with a timestamp: equal but for it.
PASS = re.compile(r"([?&]t=)[^\"'&\s)]+")


def _without_passes(html: str | None) -> str | None:
    return None if html is None else PASS.sub(r"\1…", html)


def _addresses(pairs: list) -> list[dict[str, str]]:
    return [{"name": p[0], "address": p[1]} for p in pairs]


@pytest.mark.parametrize("path", _corpus_messages(), ids=lambda p: p.name)
def test_a_corpus_message_reads_the_same_through_the_api(actors, corpus_dir, path):
    raw = path.read_bytes()
    result = message_ingest(space_id=actors.space.pk, raw=raw, source="import")
    key = actors.space.key
    page = login_client(actors.viewer).get(
        reverse(
            "mailarchive:message-detail",
            kwargs={"key": key, "message_pk": result.message_pk},
        )
    )
    assert page.status_code == 200
    shown: Message = page.context["message"]
    client = bearer(token_for(actors.viewer))
    body = client.get(
        reverse("api:message-detail", kwargs={"key": key, "id": result.message_pk})
    ).json()

    assert body["subject"] == shown.subject
    assert body["from"] == {"name": shown.from_name, "address": shown.from_address}
    assert body["to"] == _addresses(shown.to)
    assert body["cc"] == _addresses(shown.cc)
    assert body["message_id"] == shown.message_id
    assert body["date"] == shown.date.isoformat().replace("+00:00", "Z")
    assert body["text_body"] == shown.text_body
    assert body["parseable"] == shown.parseable
    assert body["index_state"] == shown.index_state == "indexed"
    assert body["problems"] == shown.problems
    assert body["thread"]["id"] == shown.thread_id
    html = page.context["html"]
    assert _without_passes(body["html"] and body["html"]["document"]) == (
        _without_passes(html and html.html)
    )
    if html is not None:
        assert body["html"]["has_remote_content"] == html.has_remote_content
    parts = page.context["attachments"]
    assert [
        (a["position"], a["filename"], a["content_type"], a["size"], a["sha256"])
        for a in body["attachments"]
    ] == [(p.position, p.filename, p.content_type, p.size, p.sha256) for p in parts]
    for part in body["attachments"]:
        download = client.get(part["download_url"])
        assert download.status_code == 200
        data = b"".join(download.streaming_content)
        assert len(data) == part["size"]

    response = client.get(body["raw_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "message/rfc822"
    assert b"".join(response.streaming_content) == raw
    assert body["size"] == len(raw)
