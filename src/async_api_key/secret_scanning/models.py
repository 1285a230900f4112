"""The leak report: one row per key found in public, what was found where, and what was done.

It lives in the library's own app, so that recording leaks adds no column (and no
migration) to a project's key models. Rows name a key by its model and public lookup id only.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = [
    "KeyLeak",
    "LeakAction",
]


class LeakAction(models.TextChoices):
    """What the endpoint did about a leaked key."""

    REVOKED = "revoked", _("revoked")
    ALREADY_REVOKED = "already_revoked", _("already revoked")
    FLAGGED = "flagged", _("flagged, not revoked")


class KeyLeak(models.Model):
    """A genuine key of ours that a secret scanner reported as found in public."""

    id = models.BigAutoField(primary_key=True)
    #: ``app_label.modelname`` of the key model.
    key_model = models.CharField(_("key model"), max_length=200)
    prefix = models.CharField(
        _("prefix"), max_length=255, db_index=True, help_text=_("The leaked key's lookup id.")
    )
    publisher = models.CharField(
        _("publisher"), max_length=50, help_text=_("Who reported the leak, such as GitHub.")
    )
    token_type = models.CharField(_("token type"), max_length=100, blank=True)
    url = models.CharField(
        _("found at"), max_length=2000, blank=True, help_text=_("Where the key was found.")
    )
    source = models.CharField(
        _("source"),
        max_length=100,
        blank=True,
        help_text=_("What kind of place it was found in, such as a commit or a gist."),
    )
    reported_at = models.DateTimeField(_("reported at"), default=timezone.now, db_index=True)
    action = models.CharField(_("action taken"), max_length=20, choices=LeakAction.choices)
    #: SHA-256 of what identifies one report (publisher, key, URL, source): a replayed
    #: alert finds its row instead of adding one.
    fingerprint = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        app_label = "async_api_key"
        ordering = ("-reported_at",)
        verbose_name = _("leaked key")
        verbose_name_plural = _("leaked keys")

    def __str__(self) -> str:
        return f"{self.prefix} ({self.key_model}) found at {self.url or self.source or '?'}"
