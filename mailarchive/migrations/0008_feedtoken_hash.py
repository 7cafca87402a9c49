"""Feed tokens stored as their SHA-256 digest; existing feed URLs keep working.

The data step hashes every stored token, so a feed address handed out before
this migration still finds its user. Going back cannot recover the tokens:
the digests are kept in their place, and every user makes a new token.
"""

import hashlib

from django.db import migrations, models


def hash_tokens(apps, schema_editor):
    FeedToken = apps.get_model("mailarchive", "FeedToken")
    for row in FeedToken.objects.only("pk", "token").iterator():
        digest = hashlib.sha256(row.token.encode("utf-8")).hexdigest()
        FeedToken.objects.filter(pk=row.pk).update(token_hash=digest)


def keep_digests(apps, schema_editor):
    FeedToken = apps.get_model("mailarchive", "FeedToken")
    FeedToken.objects.update(token=models.F("token_hash"))


class Migration(migrations.Migration):
    dependencies = [
        ("mailarchive", "0007_message_index_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="feedtoken",
            name="token_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        # Nullable first, so that going back can add the column before the
        # digests are copied into it.
        migrations.AlterField(
            model_name="feedtoken",
            name="token",
            field=models.CharField(max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(hash_tokens, keep_digests, elidable=False),
        migrations.RemoveField(model_name="feedtoken", name="token"),
        migrations.AlterField(
            model_name="feedtoken",
            name="token_hash",
            field=models.CharField(editable=False, max_length=64, unique=True),
        ),
    ]
