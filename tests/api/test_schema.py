"""The OpenAPI schema: valid, served as JSON, committed, and current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from openapi_spec_validator import validate

COMMITTED = Path(settings.BASE_DIR) / "docs" / "openapi.json"


def test_the_committed_schema_is_what_the_api_generates(tmp_path: Path) -> None:
    """GIVEN the API as it is WHEN its schema is generated THEN it equals
    docs/openapi.json byte for byte (run `make openapi` after changing the API)."""
    fresh = tmp_path / "openapi.json"
    call_command(
        "spectacular",
        format="openapi-json",
        lang="en",
        validate=True,
        fail_on_warn=True,
        file=str(fresh),
    )
    assert fresh.read_bytes() == COMMITTED.read_bytes(), (
        "docs/openapi.json is out of date: run `make openapi`"
    )


def test_the_committed_schema_is_valid_openapi_3() -> None:
    schema = json.loads(COMMITTED.read_text())
    validate(schema)
    assert schema["openapi"].startswith("3.")


@pytest.mark.django_db
def test_schema_is_served_as_json_to_anyone() -> None:
    response = Client().get("/api/v1/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    schema = response.json()
    validate(schema)
    assert schema["paths"] == json.loads(COMMITTED.read_text())["paths"]


def test_path_parameters_are_key_and_id() -> None:
    """DESIGN.md: a space key is ``key``, an object's id is ``id``."""
    schema = json.loads(COMMITTED.read_text())
    names = set()
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    names.add(parameter["name"])
                    assert "{" + parameter["name"] + "}" in path
    assert names == {"key", "id", "position"}


def test_every_operation_documents_its_problems() -> None:
    schema = json.loads(COMMITTED.read_text())
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = [code for code in operation["responses"] if code >= "400"]
            assert "401" in errors and "429" in errors, (method, path)
            for code in errors:
                content = operation["responses"][code]["content"]
                assert list(content) == ["application/problem+json"], (path, code)


def test_secrets_are_write_only() -> None:
    schemas = json.loads(COMMITTED.read_text())["components"]["schemas"]
    for name, schema in schemas.items():
        fields = schema.get("properties", {})
        if name.endswith("Request"):
            continue
        assert "password" not in fields, name
    assert "password" in schemas["MailAccountRequest"]["properties"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_are_served_from_the_site_itself(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    text = response.content.decode()
    assert "https://" not in text and "//cdn" not in text
    assert "script-src 'self'" in response["Content-Security-Policy"]
    for source in text.split('src="')[1:]:
        assert source.startswith("/"), source[:80]
