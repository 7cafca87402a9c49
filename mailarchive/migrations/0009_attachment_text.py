"""Text read from attachments, once per content, and searchable on its own.

As in 0003, PostgreSQL's GIN indexes (full text on ``search_vector``, trigrams
on ``text`` for Japanese and other text without spaces) are created with SQL
of their own and left out elsewhere. Attachments archived before this have
``text_read`` false: ``reindex --attachments`` reads them.
"""

import django.contrib.postgres.search
from django.db import migrations, models

POSTGRESQL_CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS attachment_text_vector "
    "ON mailarchive_attachmenttext USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS attachment_text_trgm "
    "ON mailarchive_attachmenttext USING gin (text gin_trgm_ops)",
]
INDEX_NAMES = ["attachment_text_vector", "attachment_text_trgm"]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for sql in POSTGRESQL_CREATE:
        schema_editor.execute(sql)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEX_NAMES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("mailarchive", "0008_feedtoken_hash"),
    ]

    operations = [
        migrations.CreateModel(
            name="AttachmentText",
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
                ("sha256", models.CharField(max_length=64, unique=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("ok", "Text found"),
                            ("empty", "No text in it"),
                            ("failed", "Could not be read"),
                            ("unsupported", "Not a kind of file that is read"),
                        ],
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
                (
                    "reason",
                    models.CharField(blank=True, max_length=100, verbose_name="reason"),
                ),
                ("detail", models.TextField(blank=True, verbose_name="detail")),
                ("text", models.TextField(blank=True, verbose_name="text")),
                (
                    "truncated",
                    models.BooleanField(default=False, verbose_name="cut short"),
                ),
                ("extractor_version", models.PositiveSmallIntegerField(default=1)),
                ("extracted_at", models.DateTimeField(verbose_name="read at")),
                (
                    "search_vector",
                    django.contrib.postgres.search.SearchVectorField(
                        editable=False, null=True
                    ),
                ),
            ],
            options={
                "verbose_name": "attachment text",
                "verbose_name_plural": "attachment texts",
            },
        ),
        migrations.AddField(
            model_name="attachment",
            name="text_read",
            field=models.BooleanField(
                db_default=False, default=False, verbose_name="text read"
            ),
        ),
        migrations.AddIndex(
            model_name="attachment",
            index=models.Index(fields=["sha256"], name="attachment_sha256"),
        ),
        migrations.AddIndex(
            model_name="attachment",
            index=models.Index(
                condition=models.Q(("inline", False), ("text_read", False)),
                fields=["message"],
                name="attachment_text_waiting",
            ),
        ),
        migrations.RunPython(create_indexes, drop_indexes),
    ]
