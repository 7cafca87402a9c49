"""The API's documentation and token page in headless Chromium: they render
from the site itself, under their Content-Security-Policy, and Swagger UI
signs its requests in with the browser's session."""

from __future__ import annotations

import pytest

from tests.browser.fixtures import log_in, page_requests

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _watch(page) -> list[str]:
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_swagger_ui_renders_and_tries_an_operation(
    actors, live_server, context, outside
):
    page = context.new_page()
    log_in(page, live_server.url, "viewer")
    problems = _watch(page)
    page.goto(live_server.url + "/api/v1/docs/")
    page.wait_for_selector("text=mailarchive API")
    operation = page.locator("#operations-spaces-spaces_list")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table .microlight").first
    answer.wait_for()
    assert '"key": "SALES"' in answer.inner_text()
    assert problems == []
    assert page_requests(outside.take()) == []


def test_redoc_renders_from_the_site_itself(live_server, context, outside):
    page = context.new_page()
    problems = _watch(page)
    page.goto(live_server.url + "/api/v1/redoc/")
    page.get_by_role("heading", name="A space's messages").wait_for()
    # Redoc's "API docs by Redocly" badge names a picture elsewhere; the
    # policy stops it before any request is made.
    assert [p for p in problems if "cdn.redoc.ly" not in p] == []
    assert page_requests(outside.take()) == []


def test_making_a_token_on_the_token_page(actors, live_server, context):
    page = context.new_page()
    log_in(page, live_server.url, "viewer")
    page.click("a.whoami")
    page.fill("input[name=name]", "chat bot")
    page.select_option("select[name=expires_in_days]", "30")
    page.click("main form.form-stacked [type=submit]")
    secret = page.input_value("input.token-secret")
    assert secret.startswith("mat_")
    response = context.request.get(
        live_server.url + "/api/v1/me/",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.json()["username"] == "viewer"
    page.reload()
    assert page.locator("input.token-secret").count() == 0
    page.click("text=Revoke")
    assert "revoked" in page.locator("table.token-table").inner_text()
