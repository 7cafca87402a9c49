"""The pages that edit and delete a space: who may, and what they do."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailarchive.models import Message
from spaces.models import AuditEvent, Level, Space
from tests.conftest import ROLES, client_for, expected_status
from tests.mailarchive.test_views import ingest, raw_message

pytestmark = pytest.mark.django_db


def edit_url(key: str = "SALES") -> str:
    return reverse("spaces:space-update", kwargs={"key": key})


def delete_url(key: str = "SALES") -> str:
    return reverse("spaces:space-delete", kwargs={"key": key})


EDIT = {"name": "Sales team", "description": "All of sales@", "allow_anonymous": "on"}


@pytest.mark.parametrize("role", ROLES)
def test_edit_page_answers_space_admins_and_site_admins(actors, role):
    client = client_for(actors, role)
    assert client.get(edit_url()).status_code == expected_status(role, Level.ADMIN)
    response = client.post(edit_url(), EDIT)
    space = Space.objects.get(key="SALES")
    if expected_status(role, Level.ADMIN) == 200:
        assert response.status_code == 302
        assert response["Location"] == space.get_absolute_url()
        assert (space.name, space.description, space.allow_anonymous) == (
            "Sales team",
            "All of sales@",
            True,
        )
        event = AuditEvent.objects.get(action="space.update")
        assert event.actor_name == getattr(actors, role).username
    else:
        assert response.status_code == expected_status(role, Level.ADMIN)
        assert space.name == "Sales"
        assert not AuditEvent.objects.filter(action="space.update").exists()


@pytest.mark.parametrize("role", ROLES)
def test_delete_page_is_for_site_admins_only(actors, role):
    """Site admins create spaces and only they delete them: a space admin
    can empty the space's trash, but not remove the space and its accounts."""
    client = client_for(actors, role)
    expected = {"anonymous": 302, "site_admin": 200}.get(role, 403)
    assert client.get(delete_url()).status_code == expected
    response = client.post(delete_url(), {"confirm_key": "SALES"})
    if role == "site_admin":
        assert response.status_code == 302
        assert response["Location"] == reverse("spaces:dashboard")
        assert not Space.objects.filter(key="SALES").exists()
    else:
        assert response.status_code == expected
        assert Space.objects.filter(key="SALES").exists()


def test_delete_page_says_how_much_goes_and_wants_the_key(actors):
    ingest(actors.space, raw_message(subject="One", msgid="1@x"))
    ingest(actors.space, raw_message(subject="Two", msgid="2@x"))
    client = client_for(actors, "site_admin")
    page = client.get(delete_url()).content.decode()
    assert "2 messages" in page
    assert "0 mail accounts" in page
    response = client.post(delete_url(), {"confirm_key": "sales"})
    assert response.status_code == 200
    assert "That is not the key of this space" in response.content.decode()
    assert Message.objects.filter(space=actors.space).count() == 2
    response = client.post(delete_url(), {"confirm_key": "SALES"}, follow=True)
    assert "Space Sales (SALES) deleted." in response.content.decode()
    assert not Message.objects.filter(space_id=actors.space.pk).exists()


def test_unknown_space_is_404_for_site_admins(actors):
    client = client_for(actors, "site_admin")
    assert client.get(delete_url("NOPE")).status_code == 404
    assert client.get(edit_url("NOPE")).status_code == 404
    assert client.get("/spaces/SA%00LES/delete/").status_code == 404


def test_space_page_and_list_link_to_edit_and_delete(actors):
    edit, delete = edit_url(), delete_url()
    home = actors.space.get_absolute_url()
    admin_page = client_for(actors, "admin").get(home).content.decode()
    assert edit in admin_page and delete not in admin_page
    root_page = client_for(actors, "site_admin").get(home).content.decode()
    assert edit in root_page and delete in root_page
    viewer_page = client_for(actors, "viewer").get(home).content.decode()
    assert edit not in viewer_page and delete not in viewer_page
    dashboard = reverse("spaces:dashboard")
    root_list = client_for(actors, "site_admin").get(dashboard).content.decode()
    assert edit in root_list and delete in root_list
    admin_list = client_for(actors, "admin").get(dashboard).content.decode()
    assert delete not in admin_list
