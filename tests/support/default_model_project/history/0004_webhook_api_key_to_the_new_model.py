"""docs/migrating.md, path A: the old foreign key goes, the new one takes its name."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("async_api_key", "0002_change_log"),
        ("default_model_project", "0003_point_webhooks_at_the_new_keys"),
    ]

    operations = [
        migrations.RemoveField(model_name="webhook", name="api_key"),
        migrations.RenameField(model_name="webhook", old_name="new_api_key", new_name="api_key"),
        migrations.AlterField(
            model_name="webhook",
            name="api_key",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="webhooks",
                to="async_api_key.apikey",
            ),
        ),
    ]
