from django.apps import AppConfig


class DefaultModelProjectConfig(AppConfig):
    """A project on djangorestframework-api-key's own APIKey, with a foreign key to it."""

    name = "tests.support.default_model_project"
    label = "default_model_project"
    default_auto_field = "django.db.models.AutoField"
