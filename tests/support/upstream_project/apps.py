from django.apps import AppConfig


class UpstreamProjectConfig(AppConfig):
    """A project that used djangorestframework-api-key's custom key model, migrated in place."""

    name = "tests.support.upstream_project"
    label = "upstream_project"
    default_auto_field = "django.db.models.AutoField"
