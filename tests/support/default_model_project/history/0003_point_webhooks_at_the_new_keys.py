"""docs/migrating.md, path A, "Foreign keys to the old model": the data migration."""

from django.db import migrations


def point_at_the_new_keys(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Point each webhook at the copy of its key: importapikeys keeps the prefix."""
    Webhook = apps.get_model("default_model_project", "Webhook")
    NewAPIKey = apps.get_model("async_api_key", "APIKey")
    db = schema_editor.connection.alias
    new_ids = dict(NewAPIKey.objects.using(db).values_list("prefix", "pk"))
    for webhook in Webhook.objects.using(db).select_related("api_key"):
        webhook.new_api_key_id = new_ids[webhook.api_key.prefix]
        webhook.save(update_fields=["new_api_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("default_model_project", "0002_webhook_new_api_key"),
    ]

    operations = [
        migrations.RunPython(point_at_the_new_keys, migrations.RunPython.noop, elidable=True),
    ]
