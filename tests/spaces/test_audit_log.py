"""The audit log is append-only: the model, the admin and the database refuse
to change or delete an event, for everyone. Run on PostgreSQL and, with
``--ds=tests.settings_sqlite``, on SQLite: each has its own trigger."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from spaces.models import AuditEvent, AuditLogAppendOnlyError, Space
from spaces.services import audit_record
from tests.factories import SpaceFactory, UserFactory


@pytest.fixture
def event(db):
    space = SpaceFactory(key="AUD")
    actor = UserFactory(username="auditor")
    return audit_record(actor=actor, action="space.test", space=space, target="AUD")


def _refused_by_the_database(sql: str, params: list) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def test_the_model_refuses_change_and_delete(event):
    event.target = "changed"
    with pytest.raises(AuditLogAppendOnlyError):
        event.save()
    with pytest.raises(AuditLogAppendOnlyError):
        event.delete()
    with pytest.raises(AuditLogAppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(target="changed")
    with pytest.raises(AuditLogAppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).target == "AUD"


def test_the_database_refuses_update_and_delete_from_any_code(event):
    """GIVEN an audit event WHEN code that goes around the model (the base
    manager, raw SQL) changes or deletes it THEN the database refuses."""
    table = AuditEvent._meta.db_table
    _refused_by_the_database(
        f"UPDATE {table} SET target = %s WHERE id = %s", ["changed", event.pk]
    )
    _refused_by_the_database(f"DELETE FROM {table} WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent._base_manager.filter(pk=event.pk).update(target="changed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent._base_manager.filter(pk=event.pk)._raw_delete(connection.alias)
    assert AuditEvent.objects.get(pk=event.pk).target == "AUD"


def test_removing_the_actor_or_the_space_leaves_the_event_as_it_was(event):
    """The event names its actor and space by id without a constraint, so
    removing them needs no change to the event (which would be refused)."""
    actor_id, space_id = event.actor_id, event.space_id
    event.actor.delete()
    Space.objects.filter(pk=space_id).delete()
    kept = AuditEvent.objects.get(pk=event.pk)
    assert (kept.actor_id, kept.space_id) == (actor_id, space_id)
    assert kept.actor_name == "auditor"


def test_appending_still_works(event):
    audit_record(actor=None, action="space.test", target="again")
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_with_events_is_flushed_after_it():
    """The test database is emptied after a transactional test even though
    the log refuses deletes (PostgreSQL truncates; on SQLite the suite
    empties the log past its trigger first)."""
    audit_record(actor=None, action="space.test", target="flushed")
    assert AuditEvent.objects.count() == 1
