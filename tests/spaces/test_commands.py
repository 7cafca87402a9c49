from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from spaces.models import Level, Space
from spaces.selectors import space_level_for
from tests.factories import SpaceFactory, UserFactory


@pytest.mark.django_db
def test_createspace_global_with_admins():
    alice = UserFactory(username="alice")
    out = StringIO()
    call_command(
        "createspace", "SALES", "--name", "Sales", "--admin", "alice", stdout=out
    )
    space = Space.objects.get(key="SALES")
    assert space.kind == Space.Kind.GLOBAL
    assert space_level_for(alice, space) == Level.ADMIN
    assert "SALES" in out.getvalue()


@pytest.mark.django_db
def test_createspace_personal_needs_owner():
    with pytest.raises(CommandError, match="--owner"):
        call_command("createspace", "ME", "--name", "Me", "--personal")
    UserFactory(username="bob")
    call_command("createspace", "BOB", "--name", "Bob", "--personal", "--owner", "bob")
    assert Space.objects.get(key="BOB").owner.username == "bob"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sales", "--name", "x"], "upper-case"),
        (["SA-LES", "--name", "x"], "upper-case"),
        (["OK", "--name", "x", "--admin", "ghost"], "Unknown user: 'ghost'"),
    ],
    ids=["lower-case", "punctuation", "unknown-admin"],
)
def test_createspace_clear_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("createspace", *args)
    assert not Space.objects.exists()


@pytest.mark.django_db
def test_createspace_duplicate_key():
    SpaceFactory(key="DUP")
    with pytest.raises(CommandError, match="exists already"):
        call_command("createspace", "DUP", "--name", "Again")
