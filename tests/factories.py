"""factory_boy factories for the test suite."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from spaces.models import Level, Space, SpacePermission

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class SuperUserFactory(UserFactory):
    is_superuser = True
    is_staff = True


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    name = factory.Sequence(lambda n: f"group{n}")


class SpaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Space

    key = factory.Sequence(lambda n: f"SPACE{n}")
    name = factory.Sequence(lambda n: f"Space {n}")
    kind = Space.Kind.GLOBAL


class PersonalSpaceFactory(SpaceFactory):
    kind = Space.Kind.PERSONAL
    owner = factory.SubFactory(UserFactory)


class SpacePermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SpacePermission

    space = factory.SubFactory(SpaceFactory)
    user = factory.SubFactory(UserFactory)
    level = Level.VIEW


class MailAccountFactory(factory.django.DjangoModelFactory):
    """An account row only: nothing is reachable at its host."""

    class Meta:
        model = "accounts.MailAccount"

    space = factory.SubFactory(SpaceFactory)
    name = factory.Sequence(lambda n: f"clone{n}")
    protocol = "imaps"
    host = "mail.example.com"
    port = 993
    username = factory.Sequence(lambda n: f"conf-{n}@example.com")


class PollRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "accounts.PollRun"

    account = factory.SubFactory(MailAccountFactory)
    trigger = "schedule"
    status = "ok"
