"""The users pages: site admins create users, reset passwords and deactivate
users without the Django admin; everyone changes their own password."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from mailarchive.management.commands.runall import serving_message
from spaces.models import AuditEvent
from tests.api.conftest import bearer, token_for
from tests.conftest import ROLES, client_for, login_client
from tests.factories import PASSWORD, SuperUserFactory
from users.services import user_set_active

User = get_user_model()
NEW_PASSWORD = "a new and rather long passphrase"


def can_log_in(username: str, password: str) -> bool:
    """Whether the login page lets ``username`` in with ``password``."""
    response = Client().post(
        reverse("login"), {"username": username, "password": password}
    )
    return response.status_code == 302


def admin_urls(actors) -> list[tuple[str, str]]:
    target = actors.viewer.pk
    return [
        ("get", reverse("users:user-list")),
        ("get", reverse("users:user-create")),
        ("post", reverse("users:user-create")),
        ("get", reverse("users:user-password", args=[target])),
        ("post", reverse("users:user-password", args=[target])),
        ("post", reverse("users:user-active", args=[target])),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_only_site_admins_reach_the_users_pages(actors, role):
    """GIVEN any user but a site admin
    THEN every users page refuses them (403), or asks anonymous visitors to
    log in, and nothing changes."""
    client = client_for(actors, role)
    for method, address in admin_urls(actors):
        data = {"username": "intruder", "active": "0", "password": ""}
        response = getattr(client, method)(address, data if method == "post" else None)
        expected = {"anonymous": 302, "site_admin": None}.get(role, 403)
        if expected is None:
            assert response.status_code in (200, 302), (method, address)
        else:
            assert response.status_code == expected, (role, method, address)
    if role != "site_admin":
        assert not User.objects.filter(username="intruder").exists()
        actors.viewer.refresh_from_db()
        assert actors.viewer.is_active


@pytest.mark.django_db
def test_users_page_lists_users_and_is_linked_from_the_site_admin_menu(actors):
    client = client_for(actors, "site_admin")
    page = client.get(reverse("users:user-list")).content.decode()
    for name in ("viewer", "spaceadmin", "root"):
        assert f">{name}" in page
    dashboard = client.get(reverse("spaces:dashboard")).content.decode()
    assert f'href="{reverse("users:user-list")}"' in dashboard
    others = client_for(actors, "admin").get(reverse("spaces:dashboard"))
    assert reverse("users:user-list") not in others.content.decode()


@pytest.mark.django_db
def test_a_generated_password_is_shown_once_and_works(actors):
    """GIVEN a site admin who adds a user without choosing a password
    THEN the generated password is shown in the answer (not cached), the user
    can log in with it, and the creation is audit-logged."""
    client = client_for(actors, "site_admin")
    response = client.post(
        reverse("users:user-create"),
        {"username": "newbie", "email": "newbie@example.com", "password": ""},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    password = re.search(
        r'id="generated-password"[^>]*value="([^"]+)"', response.content.decode()
    ).group(1)
    user = User.objects.get(username="newbie")
    assert (user.email, user.is_superuser, user.is_active) == (
        "newbie@example.com",
        False,
        True,
    )
    assert can_log_in("newbie", password)
    event = AuditEvent.objects.get(action="user.create")
    assert (event.actor_name, event.target) == ("root", "newbie")
    assert password not in str(event.detail)
    listed = client.get(reverse("users:user-list")).content.decode()
    assert password not in listed


@pytest.mark.django_db
def test_a_site_admin_can_be_created_with_a_chosen_password(actors):
    client = client_for(actors, "site_admin")
    response = client.post(
        reverse("users:user-create"),
        {"username": "boss", "site_admin": "on", "password": NEW_PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(username="boss")
    assert user.is_superuser and user.is_staff
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"username": "viewer", "password": ""}, "already exists"),
        ({"username": "VIEWER", "password": ""}, "already exists"),
        ({"username": "bad name!", "password": ""}, "Enter a valid username"),
        ({"username": "weak", "password": "123"}, "too short"),
        ({"username": "weak", "password": "password1"}, "too common"),
    ],
    ids=["taken", "taken-other-case", "invalid-name", "short", "common"],
)
def test_bad_new_users_are_refused_with_a_reason(actors, data, complaint):
    client = client_for(actors, "site_admin")
    before = User.objects.count()
    response = client.post(reverse("users:user-create"), data)
    assert response.status_code == 200
    assert complaint in response.content.decode()
    assert User.objects.count() == before


@pytest.mark.django_db
def test_a_site_admin_resets_a_password(actors):
    client = client_for(actors, "site_admin")
    address = reverse("users:user-password", args=[actors.viewer.pk])
    response = client.post(address, {"password": NEW_PASSWORD})
    assert response.status_code == 302
    actors.viewer.refresh_from_db()
    assert actors.viewer.check_password(NEW_PASSWORD)
    generated = client.post(address, {"password": ""})
    assert generated["Cache-Control"] == "no-store"
    password = re.search(
        r'id="generated-password"[^>]*value="([^"]+)"', generated.content.decode()
    ).group(1)
    actors.viewer.refresh_from_db()
    assert actors.viewer.check_password(password)
    events = AuditEvent.objects.filter(action="user.password_reset")
    assert [e.target for e in events] == ["viewer", "viewer"]


@pytest.mark.django_db
def test_deactivating_a_user_stops_their_logins(actors):
    client = client_for(actors, "site_admin")
    api = bearer(token_for(actors.viewer))
    assert api.get(reverse("api:me")).status_code == 200
    address = reverse("users:user-active", args=[actors.viewer.pk])
    assert client.post(address, {"active": "0"}).status_code == 302
    actors.viewer.refresh_from_db()
    assert not actors.viewer.is_active
    assert not can_log_in("viewer", PASSWORD)
    assert api.get(reverse("api:me")).status_code == 401
    assert AuditEvent.objects.filter(action="user.deactivate", target="viewer")
    client.post(address, {"active": "1"})
    actors.viewer.refresh_from_db()
    assert actors.viewer.is_active
    assert AuditEvent.objects.filter(action="user.activate", target="viewer")


@pytest.mark.django_db
def test_the_last_site_admin_and_oneself_cannot_be_deactivated(actors):
    root = actors.site_admin
    response = client_for(actors, "site_admin").post(
        reverse("users:user-active", args=[root.pk]), {"active": "0"}, follow=True
    )
    assert "You cannot deactivate yourself." in response.content.decode()
    root.refresh_from_db()
    assert root.is_active
    with pytest.raises(ValidationError, match="last active site admin"):
        user_set_active(user=root, active=False, actor=None)
    other = SuperUserFactory(username="other-admin")
    user_set_active(user=root, active=False, actor=other)
    root.refresh_from_db()
    assert not root.is_active


@pytest.mark.django_db
def test_everyone_changes_their_own_password_and_stays_logged_in(actors):
    """GIVEN a logged-in user (no site admin)
    WHEN they change their password with the old one
    THEN the new one works, the old one does not, this session stays logged in,
    and the change is audit-logged."""
    client = login_client(actors.viewer)
    address = reverse("users:password-change")
    assert client.get(address).status_code == 200
    wrong = client.post(
        address,
        {
            "old_password": "not it",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 200
    response = client.post(
        address,
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    actors.viewer.refresh_from_db()
    assert actors.viewer.check_password(NEW_PASSWORD)
    assert client.get(address).status_code == 200  # still logged in
    assert AuditEvent.objects.filter(action="user.password_change", target="viewer")


@pytest.mark.django_db
def test_own_password_follows_the_password_validators(actors):
    client = login_client(actors.viewer)
    response = client.post(
        reverse("users:password-change"),
        {
            "old_password": PASSWORD,
            "new_password1": "12345678",
            "new_password2": "12345678",
        },
    )
    assert response.status_code == 200
    assert "entirely numeric" in response.content.decode()
    actors.viewer.refresh_from_db()
    assert actors.viewer.check_password(PASSWORD)


@pytest.mark.django_db
def test_password_page_needs_a_login():
    response = Client().get(reverse("users:password-change"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.django_db
def test_password_change_needs_the_csrf_token(actors):
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        actors.viewer, backend="django.contrib.auth.backends.ModelBackend"
    )
    response = client.post(
        reverse("users:password-change"),
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 403
    actors.viewer.refresh_from_db()
    assert actors.viewer.check_password(PASSWORD)


@pytest.mark.django_db
def test_users_pages_in_japanese(actors):
    client = client_for(actors, "site_admin")
    client.cookies["django_language"] = "ja"
    # The pages activate Japanese; the override puts the language back after.
    with translation.override("ja"):
        pages = [
            client.get(address, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
            for address in (
                reverse("users:user-list"),
                reverse("users:user-create"),
                reverse("users:password-change"),
            )
        ]
    for page in pages:
        assert "ユーザー" in page or "パスワード" in page
        assert "Reset password" not in page and "Add user" not in page


@pytest.mark.django_db
def test_start_up_messages_point_at_the_password_page(capsys):
    """GIVEN a new installation
    THEN ensuresiteadmin's generated password comes with the address of the
    page to change it, and so does runall's start-up message."""
    call_command("ensuresiteadmin", base_url="http://127.0.0.1:8000")
    out = capsys.readouterr().out
    page = "http://127.0.0.1:8000" + reverse("users:password-change")
    assert out.rstrip().endswith(page)
    password = re.search(r"with password '([^']+)'", out).group(1)
    assert can_log_in("admin", password)
    assert page in serving_message("127.0.0.1:8000")
