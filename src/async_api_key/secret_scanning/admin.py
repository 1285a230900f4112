"""The admin of the leak report: which keys were found where, by whom, and what was done.

Rows are written by the endpoint only: the admin shows them (filter by publisher, action, key
model and date; search by prefix or URL), links each to its key, and revokes flagged keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from django.apps import apps
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from async_api_key.models import AbstractAPIKey

from .models import KeyLeak, LeakAction

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[KeyLeak]
else:
    _ModelAdminBase = admin.ModelAdmin

__all__ = [
    "KeyLeakAdmin",
]

#: How much of a URL the list shows (the link and its tooltip carry all of it).
_URL_SHOWN_LENGTH = 60


@admin.register(KeyLeak)
class KeyLeakAdmin(_ModelAdminBase):
    """Leaked keys, newest first. Read-only: the secret scanning endpoint writes them."""

    # Where the key was found right after which key, and the rest on each leak's page: the
    # list fits a 1300 px window beside the navigation and the filters.
    list_display = ("reported_at", "key_link", "action", "found_at", "source")
    list_filter = ("action", "publisher", "reported_at", "key_model", "source")
    date_hierarchy = "reported_at"
    search_fields = ("=prefix", "url")
    readonly_fields = ("key_link", "found_at")
    fields = (
        "reported_at",
        "key_model",
        "key_link",
        "action",
        "publisher",
        "token_type",
        "source",
        "found_at",
    )
    actions = ("revoke_flagged_keys",)

    @admin.display(description=_("key"), ordering="prefix")
    def key_link(self, obj: KeyLeak) -> SafeString | str:
        """The key's prefix, linked to the key list filtered to that key (no query per row)."""
        try:
            model = apps.get_model(obj.key_model)
            url = reverse(
                f"{self.admin_site.name}:{model._meta.app_label}_{model._meta.model_name}"
                "_changelist"
            )
        except (LookupError, ValueError, NoReverseMatch):
            return obj.prefix
        return format_html(
            '<a href="{}?{}">{}</a>', url, urlencode({"prefix": obj.prefix}), obj.prefix
        )

    @admin.display(description=_("found at"), ordering="url")
    def found_at(self, obj: KeyLeak) -> SafeString | str:
        """The URL where the key was found, as a link if it is a web address."""
        if urlsplit(obj.url).scheme not in ("https", "http"):
            return obj.url or "-"
        shown = obj.url.split("://", 1)[1]
        if len(shown) > _URL_SHOWN_LENGTH:
            shown = shown[: _URL_SHOWN_LENGTH - 1] + "\u2026"
        # A URL has no spaces: <wbr> after each "/" lets the column wrap like the dates.
        wrappable = format_html_join(
            mark_safe("/<wbr>"), "{}", ((part,) for part in shown.split("/"))
        )
        return format_html(
            '<a href="{}" title="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>',
            obj.url,
            obj.url,
            wrappable,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: KeyLeak | None = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Who may revoke flagged keys: whoever may view leaks; each key's own change
        permission is checked too."""
        return self.has_view_permission(request)

    @admin.action(description=_("Revoke the keys of the selected leaks"), permissions=["revoke"])
    def revoke_flagged_keys(self, request: HttpRequest, queryset: QuerySet[KeyLeak]) -> None:
        revoked = 0
        for leak in queryset.filter(action=LeakAction.FLAGGED):
            api_key = _leaked_key(leak)
            if api_key is None:
                continue
            opts = api_key._meta
            if not request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"):
                continue
            api_key.revoke()
            KeyLeak.objects.filter(pk=leak.pk).update(action=LeakAction.REVOKED)
            revoked += 1
        message = ngettext("%(count)d key revoked.", "%(count)d keys revoked.", revoked)
        level = messages.SUCCESS if revoked else messages.WARNING
        self.message_user(request, message % {"count": revoked}, level)


def _leaked_key(leak: KeyLeak) -> AbstractAPIKey | None:
    try:
        model = apps.get_model(leak.key_model)
    except (LookupError, ValueError):
        return None
    if not issubclass(model, AbstractAPIKey):
        return None
    found: AbstractAPIKey | None = model._base_manager.filter(prefix=leak.prefix).first()
    return found
