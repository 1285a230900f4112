"""A project that used djangorestframework-api-key's own ``APIKey`` and had a foreign key to it,
after following docs/migrating.md: the key now points at ``async_api_key.APIKey``."""

from django.db import models


class Webhook(models.Model):
    api_key = models.ForeignKey(
        "async_api_key.APIKey", on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.URLField()

    def __str__(self) -> str:
        return self.url
