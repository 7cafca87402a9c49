"""Feed tokens, and the indexes that keep reading and searching fast at any size.

The indexes are created with SQL of their own rather than in model ``Meta``:
PostgreSQL's GIN indexes (full text on ``search_vector``, trigrams on
``search_text`` so that Japanese and other text without spaces is found) have
no SQLite equivalent, and the sort indexes use expressions that each database
spells its own way. On SQLite the GIN indexes are simply left out; other
databases get none of these indexes.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Purging from the trash deletes a stored object only when no other row still
# refers to it; these make that check an index lookup.
BOTH_CREATE = [
    "CREATE INDEX IF NOT EXISTS message_raw_name ON mailarchive_message (raw_name)",
    "CREATE INDEX IF NOT EXISTS attachment_blob_name "
    "ON mailarchive_attachment (blob_name)",
]
POSTGRESQL_CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS message_search_vector "
    "ON mailarchive_message USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS message_search_trgm "
    "ON mailarchive_message USING gin (search_text gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS message_space_sender ON mailarchive_message "
    "(space_id, lower(from_address), date DESC, id DESC) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS message_space_subject ON mailarchive_message "
    "(space_id, lower(substring(subject, 1, 200)), date DESC, id DESC) "
    "WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS message_space_trash ON mailarchive_message "
    "(space_id, deleted_at DESC, id DESC) WHERE deleted_at IS NOT NULL",
]
SQLITE_CREATE = [
    "CREATE INDEX IF NOT EXISTS message_space_sender ON mailarchive_message "
    "(space_id, lower(from_address), date DESC, id DESC) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS message_space_subject ON mailarchive_message "
    "(space_id, lower(substr(subject, 1, 200)), date DESC, id DESC) "
    "WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS message_space_trash ON mailarchive_message "
    "(space_id, deleted_at DESC, id DESC) WHERE deleted_at IS NOT NULL",
]
INDEX_NAMES = [
    "message_search_vector",
    "message_search_trgm",
    "message_space_sender",
    "message_space_subject",
    "message_space_trash",
    "message_raw_name",
    "attachment_blob_name",
]


def create_indexes(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE}
    if vendor not in statements:
        return
    for sql in statements[vendor] + BOTH_CREATE:
        schema_editor.execute(sql)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor not in ("postgresql", "sqlite"):
        return
    for name in INDEX_NAMES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("mailarchive", "0002_message_reference"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FeedToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "token",
                    models.CharField(max_length=64, unique=True, verbose_name="token"),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, verbose_name="created"),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="feed_token",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "feed token",
                "verbose_name_plural": "feed tokens",
            },
        ),
        migrations.RunPython(create_indexes, drop_indexes),
    ]
