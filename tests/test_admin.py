"""The Django admin writes only through the services (an audit row for each
change), or is read-only where it cannot; every registered model is one of the
two, so a new admin has to say which."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.models import FetchedMessage, MailAccount, PollRun
from mailarchive.beat import SettingsScheduler
from mailarchive.celery import POLL_ENTRY, app
from mailarchive.models import FeedToken
from mailarchive.services import feed_token_regenerate
from spaces.models import AuditEvent, Space, SpacePermission
from spaces.services import audit_record
from tests.conftest import login_client
from tests.factories import SuperUserFactory
from tests.mailarchive.test_views import ingest, raw_message

pytestmark = pytest.mark.django_db

# Changes go through a service, which writes an audit row (tests below).
THROUGH_SERVICES = {
    "spaces.Space",
    "accounts.MailAccount",
    "accounts.FetchSettings",
    "mailarchive.FeedToken",
    "api.ApiToken",
}
# Looked at, never changed, added or deleted here.
READ_ONLY = {
    "spaces.AuditEvent",
    "mailarchive.Message",
    "mailarchive.Thread",
    "mailarchive.AttachmentText",
    "accounts.PollRun",
    "accounts.FetchedMessage",
}
# The beat's own tasks and schedules: those the settings define are read-only
# (tests below); tasks added by hand stay the operator's.
SETTINGS_READ_ONLY = {
    "django_celery_beat.PeriodicTask",
    "django_celery_beat.IntervalSchedule",
    "django_celery_beat.CrontabSchedule",
    "django_celery_beat.SolarSchedule",
    "django_celery_beat.ClockedSchedule",
}
# Users and groups are Django's own (the user pages are their product side);
# login lockouts are django-axes' records, which site admins clear.
NOT_ARCHIVE_DATA = {
    "auth.User",
    "auth.Group",
    "axes.AccessAttempt",
    "axes.AccessLog",
    "axes.AccessFailureLog",
}


@pytest.fixture
def root(db):
    return SuperUserFactory(username="root")


@pytest.fixture
def request_of(root):
    request = RequestFactory().get("/admin/")
    request.user = root
    return request


def test_every_admin_is_classified():
    registered = {model._meta.label for model in admin.site._registry}
    classified = THROUGH_SERVICES | READ_ONLY | SETTINGS_READ_ONLY | NOT_ARCHIVE_DATA
    assert registered == classified


@pytest.mark.parametrize("label", sorted(READ_ONLY))
def test_read_only_admins_refuse_every_write_even_to_superusers(label, request_of):
    model = next(m for m in admin.site._registry if m._meta.label == label)
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request_of)
    assert not model_admin.has_change_permission(request_of)
    assert not model_admin.has_delete_permission(request_of)
    for inline in model_admin.get_inline_instances(request_of):
        assert not inline.has_add_permission(request_of, None)
        assert not inline.has_change_permission(request_of)
        assert not inline.has_delete_permission(request_of)


def test_audit_event_pages_refuse_change_and_delete(root, actors):
    event = audit_record(actor=root, action="space.test", space=actors.space)
    client = login_client(root)
    change = reverse("admin:spaces_auditevent_change", args=[event.pk])
    assert client.get(change).status_code == 200  # looked at
    assert client.post(change, {"target": "changed"}).status_code == 403
    delete = reverse("admin:spaces_auditevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:spaces_auditevent_changelist")
    response = client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert AuditEvent.objects.filter(pk=event.pk, target="").exists()
    assert response.status_code in (200, 302)
    # A deleted space's events still list.
    assert client.get(changelist).status_code == 200


def test_space_admin_saves_through_space_update(root, actors):
    client = login_client(root)
    space = actors.space
    url = reverse("admin:spaces_space_change", args=[space.pk])
    page = client.get(url).content.decode()
    assert reverse("spaces:space-delete", kwargs={"key": "SALES"}) in page
    grants = SpacePermission.objects.filter(space=space).count()
    response = client.post(
        url,
        {
            "name": "Sales team",
            "description": "",
            "allow_anonymous": "on",
            "permissions-TOTAL_FORMS": str(grants),
            "permissions-INITIAL_FORMS": str(grants),
            "permissions-MIN_NUM_FORMS": "0",
            "permissions-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    space.refresh_from_db()
    assert (space.name, space.allow_anonymous) == ("Sales team", True)
    event = AuditEvent.objects.get(action="space.update")
    assert event.actor == root
    assert SpacePermission.objects.filter(space=space).count() == grants


def test_space_admin_neither_adds_nor_deletes(root, actors):
    ingest(actors.space, raw_message(subject="kept", msgid="k@x"))
    client = login_client(root)
    assert client.get(reverse("admin:spaces_space_add")).status_code == 403
    delete = reverse("admin:spaces_space_delete", args=[actors.space.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    client.post(
        reverse("admin:spaces_space_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [actors.space.pk],
            "post": "yes",
        },
    )
    assert Space.objects.filter(pk=actors.space.pk).exists()
    model_admin = admin.site._registry[Space]
    request = RequestFactory().get("/admin/")
    request.user = root
    (inline,) = model_admin.get_inline_instances(request, actors.space)
    assert not inline.has_add_permission(request, actors.space)
    assert not inline.has_change_permission(request, actors.space)
    assert not inline.has_delete_permission(request, actors.space)


def test_feed_token_deleted_in_the_admin_is_revoked_through_the_service(root):
    token = feed_token_regenerate(user=root).record
    owner = token.user
    client = login_client(SuperUserFactory(username="other-admin"))
    delete = reverse("admin:mailarchive_feedtoken_delete", args=[token.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not FeedToken.objects.exists()
    event = AuditEvent.objects.get(action="feed.token.revoke")
    assert (event.actor_name, event.target) == ("other-admin", str(owner.pk))


def test_mail_account_deleted_in_the_admin_is_audited(root, actors):
    account = MailAccount.objects.create(
        space=actors.space,
        name="conf-sales",
        protocol="imaps",
        host="mail.example.com",
        port=993,
        username="conf-sales",
    )
    run = PollRun.objects.create(account=account, trigger="schedule")
    ledger = FetchedMessage.objects.create(
        account=account, server_id="1", raw_sha256=""
    )
    client = login_client(root)
    for name, pk in (("pollrun", run.pk), ("fetchedmessage", ledger.pk)):
        url = reverse(f"admin:accounts_{name}_delete", args=[pk])
        assert client.post(url, {"post": "yes"}).status_code == 403
    delete = reverse("admin:accounts_mailaccount_delete", args=[account.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not MailAccount.objects.exists()
    assert AuditEvent.objects.filter(action="mail_account.delete", actor=root).exists()


@pytest.fixture
def beat_tasks(transactional_db):
    """The settings' periodic tasks, as beat writes them when it starts.

    Outside a test transaction: beat closes a connection that is not in
    autocommit mode, as it would after a database outage.
    """
    scheduler = SettingsScheduler(app=app, lazy=True)
    scheduler._finalize.cancel()
    scheduler.setup_schedule()
    return scheduler


def test_the_poll_task_cannot_be_switched_off_in_the_admin(root, beat_tasks):
    """GIVEN the polling task beat wrote WHEN a site admin tries to disable,
    change or delete it (or its schedule) in the admin THEN nothing changes:
    the automatic polling switch is the one place that turns polling off."""
    task = PeriodicTask.objects.get(name=POLL_ENTRY)
    assert task.enabled
    client = login_client(root)
    change = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    assert client.get(change).status_code == 200  # looked at, read-only
    assert client.post(change, {"name": task.name, "task": task.task}).status_code == (
        403
    )
    changelist = reverse("admin:django_celery_beat_periodictask_changelist")
    for action in ("disable_tasks", "toggle_tasks"):
        client.post(changelist, {"action": action, "_selected_action": [task.pk]})
    client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [task.pk], "post": "yes"},
    )
    delete = reverse("admin:django_celery_beat_periodictask_delete", args=[task.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    task.refresh_from_db()
    assert task.enabled
    interval = task.interval
    url = reverse(
        "admin:django_celery_beat_intervalschedule_change", args=[interval.pk]
    )
    assert client.post(url, {"every": "1", "period": "days"}).status_code == 403
    url = reverse(
        "admin:django_celery_beat_intervalschedule_delete", args=[interval.pk]
    )
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert IntervalSchedule.objects.filter(pk=interval.pk).exists()


def test_a_task_added_by_hand_stays_editable(root, beat_tasks):
    every_day = IntervalSchedule.objects.create(every=1, period="days")
    mine = PeriodicTask.objects.create(
        name="my report", task="mailarchive.tasks.x", interval=every_day
    )
    client = login_client(root)
    changelist = reverse("admin:django_celery_beat_periodictask_changelist")
    client.post(changelist, {"action": "disable_tasks", "_selected_action": [mine.pk]})
    mine.refresh_from_db()
    assert not mine.enabled


def test_beat_turns_a_settings_task_switched_off_by_hand_on_again(beat_tasks):
    PeriodicTask.objects.filter(name=POLL_ENTRY).update(enabled=False)
    restarted = SettingsScheduler(app=app, lazy=True)
    restarted._finalize.cancel()
    restarted.setup_schedule()
    assert PeriodicTask.objects.get(name=POLL_ENTRY).enabled
    assert POLL_ENTRY in restarted.schedule
