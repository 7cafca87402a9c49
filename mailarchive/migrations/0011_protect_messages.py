"""Messages and their attachments are deleted only through the services.

They release the stored objects; a cascade from a space or a message would
leave them in storage for good.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailarchive", "0010_readingpreference"),
    ]

    operations = [
        migrations.AlterField(
            model_name="attachment",
            name="message",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="attachments",
                to="mailarchive.message",
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="space",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="messages",
                to="spaces.space",
            ),
        ),
    ]
