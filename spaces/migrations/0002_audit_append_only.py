"""The audit log becomes append-only, in the database as well as in the model.

A trigger refuses every UPDATE and DELETE of an audit event, whatever code
sends it (a shell, another program, a cascade). The actor and the space lose
their foreign key constraints first: removing a user or a space must not have
to change (SET NULL) or delete (CASCADE) the events that name them.

On SQLite the triggers live with the table: an operation that rebuilds the
table (most field changes on SQLite) drops them, so such a migration has to
create them again (``create_append_only_triggers``).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLE = "spaces_auditevent"
MESSAGE = "the audit log is append-only: its events are never changed or deleted"

POSTGRESQL_CREATE = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$
    """,
    f"""
    CREATE TRIGGER {TABLE}_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()
    """,
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
]
SQLITE_CREATE = [
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
    """,
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]
STATEMENTS = {
    "postgresql": (POSTGRESQL_CREATE, POSTGRESQL_DROP),
    "sqlite": (SQLITE_CREATE, SQLITE_DROP),
}


def _run(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def create_append_only_triggers(connection) -> None:
    """Install the triggers on ``connection``'s database. Safe to re-run."""
    create, drop = STATEMENTS.get(connection.vendor, ([], []))
    _run(connection, drop + create)


def drop_append_only_triggers(connection) -> None:
    """Remove the triggers. Safe to re-run."""
    _create, drop = STATEMENTS.get(connection.vendor, ([], []))
    _run(connection, drop)


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor not in STATEMENTS:
        raise RuntimeError(
            f"no append-only trigger for the {schema_editor.connection.vendor} "
            "database; the audit log would not be protected"
        )
    create_append_only_triggers(schema_editor.connection)


def backwards(apps, schema_editor) -> None:
    drop_append_only_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("spaces", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="space",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="audit_events",
                to="spaces.space",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
