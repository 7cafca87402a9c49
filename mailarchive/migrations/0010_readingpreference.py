"""A user's reading preference: the mail list as messages or as conversations."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailarchive", "0009_attachment_text"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ReadingPreference",
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
                    "mail_view",
                    models.CharField(
                        choices=[
                            ("messages", "Messages"),
                            ("threads", "Conversations"),
                        ],
                        default="messages",
                        max_length=16,
                        verbose_name="mail list shows",
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reading_preference",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "reading preference",
                "verbose_name_plural": "reading preferences",
            },
        ),
    ]
