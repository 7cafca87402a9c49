"""The permission matrix: every role against every space page so far."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from spaces.models import Level, Space
from spaces.selectors import space_level_for, spaces_visible_to
from tests.conftest import ROLES, client_for, expected_status, login_client
from tests.factories import (
    GroupFactory,
    PersonalSpaceFactory,
    SpaceFactory,
    SpacePermissionFactory,
    UserFactory,
)

SPACE_PAGES = [
    ("spaces:space-home", Level.VIEW),
    ("spaces:space-permissions", Level.ADMIN),
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("url_name", "needed"), SPACE_PAGES, ids=lambda v: str(v))
def test_space_pages_answer_by_permission(actors, role, url_name, needed):
    client = client_for(actors, role)
    response = client.get(reverse(url_name, kwargs={"key": actors.space.key}))
    assert response.status_code == expected_status(role, needed)
    if response.status_code == 302:
        assert response.url.startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_unknown_space_looks_like_an_invisible_one(actors, role):
    response = client_for(actors, role).get(
        reverse("spaces:space-home", kwargs={"key": "NOSUCH"})
    )
    assert response.status_code == (302 if role == "anonymous" else 404)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_dashboard_lists_exactly_the_visible_spaces(actors, role):
    SpaceFactory(key="HIDDEN", name="Hidden space")
    response = client_for(actors, role).get(reverse("spaces:dashboard"))
    if role == "anonymous":
        assert response.status_code == 302
        return
    assert response.status_code == 200
    body = response.content.decode()
    assert ("SALES" in body) == (expected_status(role, Level.VIEW) == 200)
    assert ("HIDDEN" in body) == (role == "site_admin")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_grant_and_revoke_need_space_admin(actors, role):
    target = UserFactory(username="newcomer")
    client = client_for(actors, role)
    url = reverse("spaces:space-permissions", kwargs={"key": "SALES"})
    response = client.post(url, {"principal": "newcomer", "level": Level.VIEW})
    allowed = expected_status(role, Level.ADMIN) == 200
    if allowed:
        assert response.status_code == 302
        assert space_level_for(target, actors.space) == Level.VIEW
    else:
        assert response.status_code == expected_status(role, Level.ADMIN)
        assert space_level_for(target, actors.space) is None
    grant = actors.space.permissions.get(user=actors.viewer)
    revoke = reverse(
        "spaces:space-permission-revoke", kwargs={"key": "SALES", "grant_id": grant.pk}
    )
    response = client.post(revoke)
    still_there = actors.space.permissions.filter(pk=grant.pk).exists()
    assert still_there is not allowed


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_only_site_admins_create_spaces(actors, role):
    client = client_for(actors, role)
    response = client.post(
        reverse("spaces:space-create"), {"key": "NEW1", "name": "New"}
    )
    created = Space.objects.filter(key="NEW1").exists()
    assert created == (role == "site_admin")
    page = client.get(reverse("spaces:space-create"))
    if role == "anonymous":
        for answer in (response, page):
            assert answer.status_code == 302  # to the login page
            assert reverse("login") in answer.url
    elif role != "site_admin":
        # Logged in already: the login page would only ask again.
        assert response.status_code == 403
        assert page.status_code == 403
    else:
        assert page.status_code == 200


@pytest.mark.django_db
def test_admin_grants_view_and_other_user_gets_404(actors):
    """The foundation's acceptance story, end to end through the pages."""
    client = client_for(actors, "site_admin")
    response = client.post(
        reverse("spaces:space-create"), {"key": "MKT", "name": "Marketing"}
    )
    assert response.status_code == 302
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    url = reverse("spaces:space-permissions", kwargs={"key": "MKT"})
    client.post(url, {"principal": "alice", "level": Level.VIEW})
    space_url = reverse("spaces:space-home", kwargs={"key": "MKT"})
    alice_client = login_client(alice)
    assert alice_client.get(space_url).status_code == 200
    assert "Marketing" in alice_client.get(reverse("spaces:dashboard")).content.decode()
    assert login_client(bob).get(space_url).status_code == 404


@pytest.mark.django_db
def test_group_grant_and_highest_level_wins():
    space = SpaceFactory()
    user = UserFactory()
    group = GroupFactory()
    user.groups.add(group)
    SpacePermissionFactory(space=space, user=user, level=Level.VIEW)
    SpacePermissionFactory(space=space, user=None, group=group, level=Level.ADMIN)
    assert space_level_for(user, space) == Level.ADMIN


@pytest.mark.django_db
def test_anonymous_viewing_when_allowed():
    public = SpaceFactory(allow_anonymous=True)
    private = SpaceFactory()
    anon = AnonymousUser()
    assert space_level_for(anon, public) == Level.VIEW
    assert space_level_for(anon, private) is None
    assert list(spaces_visible_to(anon)) == [public]
    client = Client()
    assert client.get(public.get_absolute_url()).status_code == 200
    assert client.get(private.get_absolute_url()).status_code == 302


@pytest.mark.django_db
def test_personal_space_owner_administers_it():
    space = PersonalSpaceFactory()
    assert space_level_for(space.owner, space) == Level.ADMIN
    assert space_level_for(UserFactory(), space) is None


@pytest.mark.django_db
def test_inactive_user_has_no_access(actors):
    actors.viewer.is_active = False
    actors.viewer.save()
    assert space_level_for(actors.viewer, actors.space) is None


@pytest.mark.django_db
def test_level_is_read_once_per_user_for_one_space_instance(
    actors, django_assert_num_queries
):
    """The decorator and the view ask for the same level; the grants are read
    once, and another user's level is still read for that user."""
    space = Space.objects.get(pk=actors.space.pk)
    with django_assert_num_queries(1):
        assert space_level_for(actors.viewer, space) == Level.VIEW
        assert space_level_for(actors.viewer, space) == Level.VIEW
    with django_assert_num_queries(1):
        assert space_level_for(actors.deleter, space) == Level.DELETE
