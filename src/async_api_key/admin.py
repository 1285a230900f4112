"""The admin for key models: list and filter keys, create one (its key shown once), rotate one
(its successor's key shown once), revoke in bulk.

A new key reaches the page that shows it through a one-time, server-side handoff
(:class:`KeyHandoff`): the form's answer is a redirect whose URL carries a token, never the
key, so reloading that page shows "already shown" instead of creating a second key.

``APIKeyModelAdmin`` is registered for :class:`~async_api_key.models.APIKey`; register a
subclass for a custom key model::

    @admin.register(OrganizationAPIKey)
    class OrganizationAPIKeyAdmin(APIKeyModelAdmin):
        list_display: tuple[str, ...] = (*APIKeyModelAdmin.list_display, "organization")
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.cache import caches
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from .exceptions import KeyNotRotatable
from .field_rules import (
    InvalidFieldValue,
    clean_policy_field,
    parse_grace_period,
    split_networks,
    split_scopes,
)
from .models import AbstractAPIKey, APIKey, BaseAPIKeyManager
from .status import KeyStatus, filter_by_status, key_status

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    _ModelAdminBase = admin.ModelAdmin[AbstractAPIKey]
    _ModelFormBase = forms.ModelForm[AbstractAPIKey]
else:
    _ModelAdminBase = admin.ModelAdmin
    _ModelFormBase = forms.ModelForm

__all__ = [
    "APIKeyForm",
    "APIKeyModelAdmin",
    "KeyHandoff",
    "RotateForm",
]

logger = logging.getLogger(__name__)


def _cleaned_policy_field(name: str, value: Any, code: str) -> Any:
    """The field rules' answer for ``value``, as a form field reports it."""
    try:
        return clean_policy_field(name, value)
    except InvalidFieldValue as exc:
        raise ValidationError(str(exc), code=code) from exc


class _TextListField(forms.CharField):
    """A list column edited as text, one item per line; subclasses say how text splits."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return self.split(super().to_python(value) or "")

    def split(self, text: str) -> list[str]:
        raise NotImplementedError


class ScopesField(_TextListField):
    """Scopes edited as text, one per line or comma-separated; cleaned to a validated list."""

    def split(self, text: str) -> list[str]:
        return split_scopes(text)

    def clean(self, value: Any) -> list[str]:
        scopes: list[str] = _cleaned_policy_field("scopes", super().clean(value), "invalid_scope")
        return scopes


class NetworksField(_TextListField):
    """Allowed networks edited as text, one per line or comma-separated; cleaned to a
    validated, normalised list of CIDR strings."""

    def split(self, text: str) -> list[str]:
        return split_networks(text)

    def clean(self, value: Any) -> list[str]:
        networks: list[str] = _cleaned_policy_field(
            "allowed_networks", super().clean(value), "invalid_network"
        )
        return networks


class APIKeyForm(_ModelFormBase):
    """The admin form of a key: its scopes and allowed networks as text, its rate checked."""

    scopes = ScopesField(
        label=_("Scopes"),
        required=False,
        help_text=_(
            'One scope per line or comma-separated, such as "orders:read", "orders:*" or "*". '
            "A key with no scopes passes only endpoints that require none."
        ),
    )
    allowed_networks = NetworksField(
        label=_("Allowed networks"),
        required=False,
        help_text=_(
            "Client networks allowed to use the key, one per line or comma-separated, in CIDR "
            'notation such as "203.0.113.0/24" or "2001:db8::/32". Empty: any address.'
        ),
    )

    def clean_rate_limit(self) -> str:
        rate: str = _cleaned_policy_field(
            "rate_limit", self.cleaned_data.get("rate_limit") or "", "invalid_rate"
        )
        return rate


class RotateForm(forms.Form):
    """Asks how long the old key keeps working after a rotation."""

    grace_period = forms.CharField(
        label=_("Grace period"),
        initial="0",
        max_length=16,
        help_text=_(
            'How long the old key keeps working: "0" stops it at once (for a leaked key); '
            '"30m", "24h" or "7d" give its clients time to switch. Never beyond its own expiry.'
        ),
    )

    def clean_grace_period(self) -> timedelta:
        try:
            return parse_grace_period(self.cleaned_data["grace_period"])
        except InvalidFieldValue as exc:
            raise ValidationError(str(exc), code="invalid_grace_period") from exc


class StatusListFilter(admin.SimpleListFilter):
    """Filter keys by status: active, expired or revoked."""

    title = _("status")
    parameter_name = "status"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, _StrPromise]]:
        return [(status.value, status.label) for status in KeyStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value not in {status.value for status in KeyStatus}:
            return queryset
        return filter_by_status(queryset, KeyStatus(value))


class KeyHandoff:
    """Carries a new raw key from the request that made it to the one page that shows it.

    The key waits server-side, in the cache ``cache_alias``, for at most ``timeout`` seconds,
    under a hash of a random token that only the page's URL carries. The entry is bound to
    the user who made the key and to the key, and it is read once: the read deletes it. The
    cache holds the key sealed with the token, so the cache's contents alone (a Redis dump,
    the database cache's table) do not reveal it.

    The cache must be shared by the processes that serve the admin (Redis, Memcached, the
    database cache). With a per-process cache, such as Django's default local-memory one,
    the redirect may reach a process that does not hold the entry, and the page then says
    the key was already shown: rotate the key to get a new one.
    """

    def __init__(self, cache_alias: str = "default", timeout: int = 60) -> None:
        self.cache_alias = cache_alias
        self.timeout = timeout

    @method_decorator(sensitive_variables("raw_key"))
    def put(
        self, raw_key: str, *, user_pk: Any, key_pk: Any, predecessor_pk: Any = None
    ) -> str | None:
        """Keep ``raw_key`` for one read; return the token that reads it, or None if the
        cache did not keep it (a dummy cache, or one that is down)."""
        token = secrets.token_urlsafe(32)
        entry = {
            "user": str(user_pk),
            "key": str(key_pk),
            "predecessor": None if predecessor_pk is None else str(predecessor_pk),
            "sealed": _seal(raw_key.encode(), token),
        }
        cache = caches[self.cache_alias]
        try:
            cache.set(_handoff_cache_key(token), entry, self.timeout)
            # Read back: a cache that keeps nothing would lose the key.
            kept = cache.get(_handoff_cache_key(token)) is not None
        except Exception as exc:  # any backend's error: the key is shown another way
            logger.warning("The admin could not hand a new key over: %s", type(exc).__name__)
            return None
        return token if kept else None

    def take(self, token: str, *, user_pk: Any, key_pk: Any) -> tuple[str, str | None] | None:
        """The raw key kept under ``token`` for this user and this key, and its predecessor's
        primary key (for a rotation), once. None after that, once expired, for another
        user or key, or if the cache fails."""
        cache = caches[self.cache_alias]
        cache_key = _handoff_cache_key(token)
        try:
            entry = cache.get(cache_key)
            if (
                not isinstance(entry, dict)
                or entry.get("user") != str(user_pk)
                or entry.get("key") != str(key_pk)
            ):
                # Another user's token is left alone: they may still read their key.
                return None
            # delete() says whether this call removed the entry: of two concurrent reads
            # (a double click), only one shows the key.
            if not cache.delete(cache_key):
                return None
        except Exception as exc:  # any backend's error: answered as "already shown"
            logger.warning("The admin could not read a key handoff: %s", type(exc).__name__)
            return None
        return _seal(entry["sealed"], token).decode(), entry["predecessor"]


def _handoff_cache_key(token: str) -> str:
    return "async_api_key:admin-handoff:" + hashlib.sha256(token.encode()).hexdigest()


def _seal(data: bytes, token: str) -> bytes:
    """XOR ``data`` with a SHAKE-256 stream drawn from ``token`` (a one-time pad: each token
    seals one key); sealing twice unseals. The cache key is a SHA-256 of the token, from
    which the stream cannot be drawn."""
    stream = hashlib.shake_256(b"async_api_key.admin.handoff\x00" + token.encode())
    return bytes(a ^ b for a, b in zip(data, stream.digest(len(data)), strict=True))


class APIKeyModelAdmin(_ModelAdminBase):
    """Admin for a key model. The full key appears once, on the page answering its creation."""

    form = APIKeyForm
    list_display: tuple[str, ...] = (
        "name",
        "prefix",
        "status",
        "created",
        "expiry_date",
        "last_used_at",
        "scope_list",
        "rate",
    )
    list_filter: ClassVar[tuple[Any, ...]] = (StatusListFilter,)
    search_fields: ClassVar[tuple[str, ...]] = ("name", "prefix")
    actions = ("revoke_selected",)
    #: Shows a new key (created or rotated) once, reached by a redirect after the form.
    key_created_template = "async_api_key/admin/key_created.html"
    #: Answers any later visit to that page (a reload, the back button, another user).
    key_already_shown_template = "async_api_key/admin/key_already_shown.html"
    #: Carries a new key to ``key_created_template``; see :class:`KeyHandoff`.
    key_handoff = KeyHandoff()
    #: Asks to confirm the "Revoke selected keys" action.
    revoke_confirmation_template = "async_api_key/admin/revoke_selected_confirmation.html"
    #: Asks for the grace period of a rotation; the answer is ``key_created_template``.
    rotate_confirmation_template = "async_api_key/admin/rotate_confirmation.html"
    #: The change page, with a "Rotate" button among its object tools.
    change_form_template = "async_api_key/admin/change_form.html"
    #: The list, laid out to fit its columns in a 1300 px window.
    change_list_template = "async_api_key/admin/change_list.html"

    def __init__(self, model: type[AbstractAPIKey], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        # Raw keys between ``save_model`` and ``response_add`` of one request, in memory
        # only: never in the session, a cookie or a message.
        self._raw_keys: WeakKeyDictionary[HttpRequest, str] = WeakKeyDictionary()

    @admin.display(description=_("status"))
    def status(self, obj: AbstractAPIKey) -> str:
        return str(key_status(obj).label)

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: AbstractAPIKey) -> str:
        return ", ".join(obj.granted_scopes) or "-"

    @admin.display(description=_("rate limit"), ordering="rate_limit")
    def rate(self, obj: AbstractAPIKey) -> str:
        return obj.rate_limit or "-"

    @admin.display(description=_("rotated from"))
    def rotated_from_link(self, obj: AbstractAPIKey) -> SafeString | str:
        if obj.rotated_from_id is None:  # type: ignore[attr-defined]
            return "-"
        predecessor = type(obj)._base_manager.filter(pk=obj.rotated_from_id).first()  # type: ignore[attr-defined]
        return "-" if predecessor is None else self._key_link(predecessor)

    @admin.display(description=_("successors"))
    def successor_links(self, obj: AbstractAPIKey) -> SafeString | str:
        successors = type(obj)._base_manager.filter(rotated_from=obj).order_by("created")
        if not successors:
            return "-"
        return format_html_join(
            ", ", "{}", ((self._key_link(successor),) for successor in successors)
        )

    def _key_link(self, obj: AbstractAPIKey) -> SafeString:
        # A successor has its predecessor's name: the prefix tells them apart.
        return format_html(
            '<a href="{}">{} ({})</a>', self._admin_url(obj, "change"), obj, obj.prefix
        )

    def _admin_url(self, obj: AbstractAPIKey, view: str, *args: str) -> str:
        opts = obj._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_{view}",
            args=[quote(obj.pk), *args],
        )

    def get_readonly_fields(self, request: HttpRequest, obj: AbstractAPIKey | None = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is None:
            return readonly
        return (
            *readonly,
            "prefix",
            "status",
            "created",
            "last_used_at",
            "revoked_at",
            "rotated_from_link",
            "successor_links",
        )

    def get_exclude(self, request: HttpRequest, obj: AbstractAPIKey | None = None) -> Any:
        exclude = tuple(super().get_exclude(request, obj) or ())
        # A key is created active; revoking is a separate, deliberate step.
        return exclude if obj is not None else (*exclude, "revoked")

    def has_change_permission(
        self, request: HttpRequest, obj: AbstractAPIKey | None = None
    ) -> bool:
        # A revoked key is shown read-only: revocation cannot be undone.
        if obj is not None and obj.revoked:
            return False
        return super().has_change_permission(request, obj)

    @method_decorator(sensitive_variables("raw_key"))
    def save_model(
        self, request: HttpRequest, obj: AbstractAPIKey, form: Any, change: bool
    ) -> None:
        if change:
            if obj.revoked and not obj._initial_revoked:
                obj.revoke()
            super().save_model(request, obj, form, change)
            return
        # Not the manager's create_key: a custom manager may give it a signature of its own.
        manager: BaseAPIKeyManager[Any] = type(obj)._default_manager
        self._raw_keys[request] = manager._save_with_new_key(
            obj, router.db_for_write(type(obj), instance=obj)
        )

    @method_decorator(sensitive_variables("raw_key"))
    def response_add(
        self, request: HttpRequest, obj: AbstractAPIKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        raw_key = self._raw_keys.pop(request, None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        return self.key_created_response(request, obj, raw_key)

    @method_decorator(sensitive_variables("raw_key"))
    def key_created_response(
        self,
        request: HttpRequest,
        obj: AbstractAPIKey,
        raw_key: str,
        predecessor: AbstractAPIKey | None = None,
    ) -> HttpResponse:
        """Answer a creation (or, with ``predecessor``, a rotation): hand the raw key over
        and redirect to the page that shows it once (Post/Redirect/Get)."""
        token = self.key_handoff.put(
            raw_key,
            user_pk=request.user.pk,
            key_pk=obj.pk,
            predecessor_pk=None if predecessor is None else predecessor.pk,
        )
        if token is None:
            # Better a page that a reload would submit again than a key nobody sees.
            return self.key_page_response(request, obj, raw_key, predecessor)
        return HttpResponseRedirect(self._admin_url(obj, "key_created", token))

    def key_created_view(self, request: HttpRequest, object_id: str, token: str) -> HttpResponse:
        """Show a new key once: the first visit takes it from the handoff, any later one
        (a reload, the back button, another user with the URL) is told it was shown."""
        object_id = unquote(object_id)
        taken = self.key_handoff.take(token, user_pk=request.user.pk, key_pk=object_id)
        obj = self.get_object(request, object_id)
        if taken is None or obj is None:
            return self.key_already_shown_response(request, obj)
        raw_key, predecessor_pk = taken
        predecessor = None
        if predecessor_pk is not None:
            predecessor = self.model._base_manager.filter(pk=predecessor_pk).first()
        return self.key_page_response(request, obj, raw_key, predecessor)

    @method_decorator(sensitive_variables("raw_key"))
    def key_page_response(
        self,
        request: HttpRequest,
        obj: AbstractAPIKey,
        raw_key: str,
        predecessor: AbstractAPIKey | None = None,
    ) -> HttpResponse:
        """The one page that shows the raw key of ``obj``; never cached."""
        context = {
            **self._key_page_context(request, obj),
            "title": _("API key created") if predecessor is None else _("API key rotated"),
            "raw_key": raw_key,
            "status": key_status(obj).label,
            "predecessor": predecessor,
            "predecessor_active": predecessor is not None
            and key_status(predecessor) is KeyStatus.ACTIVE,
            "predecessor_url": None
            if predecessor is None
            else self._admin_url(predecessor, "change"),
            "change_url": self._admin_url(obj, "change"),
        }
        response = TemplateResponse(request, self.key_created_template, context)
        add_never_cache_headers(response)
        return response

    def key_already_shown_response(
        self, request: HttpRequest, obj: AbstractAPIKey | None
    ) -> HttpResponse:
        """Says the key is not shown again and how to get a new one; never cached."""
        visible = obj is not None and self.has_view_or_change_permission(request, obj)
        context = {
            **self._key_page_context(request, obj if visible else None),
            "title": _("API key already shown"),
            "change_url": self._admin_url(obj, "change") if visible and obj else None,
        }
        response = TemplateResponse(request, self.key_already_shown_template, context)
        add_never_cache_headers(response)
        return response

    def _key_page_context(self, request: HttpRequest, obj: AbstractAPIKey | None) -> dict[str, Any]:
        opts = self.model._meta
        url_name = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}"
        return {
            **self.admin_site.each_context(request),
            "subtitle": None,
            "opts": opts,
            "api_key": obj,
            "add_url": reverse(f"{url_name}_add"),
            "changelist_url": reverse(f"{url_name}_changelist"),
        }

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        rotate = path(
            "<path:object_id>/rotate/",
            self.admin_site.admin_view(self.rotate_view),
            name=f"{opts.app_label}_{opts.model_name}_rotate",
        )
        key_created = path(
            "<path:object_id>/created/<str:token>/",
            self.admin_site.admin_view(self.key_created_view),
            name=f"{opts.app_label}_{opts.model_name}_key_created",
        )
        # Before the default patterns: their catch-all "<path:object_id>/" would take them.
        return [rotate, key_created, *super().get_urls()]

    def has_rotate_permission(self, request: HttpRequest, obj: AbstractAPIKey) -> bool:
        """Rotating changes the old key and adds its successor: it needs both permissions."""
        return self.has_change_permission(request, obj) and self.has_add_permission(request)

    def rotation_refusal(self, obj: AbstractAPIKey) -> _StrPromise | None:
        """Why a rotation would refuse this key (revoked, expired, already rotated), or None.

        Only for what the pages show: the rotation itself decides, under a row lock."""
        status = key_status(obj)
        if status is KeyStatus.REVOKED:
            return _("it is revoked")
        if status is KeyStatus.EXPIRED:
            return _("it has expired")
        if type(obj)._base_manager.filter(rotated_from=obj).exists():
            return _("it has already been rotated")
        return None

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))
        if (
            obj is not None
            and self.has_rotate_permission(request, obj)
            and self.rotation_refusal(obj) is None
        ):
            extra_context.setdefault("rotate_url", self._admin_url(obj, "rotate"))
        return super().change_view(request, object_id, form_url, extra_context)

    @method_decorator(sensitive_variables("raw_key"))
    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask for the grace period, then rotate the key and show its successor's key once."""
        opts = self.model._meta
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(_("No such API key."))
        if not self.has_rotate_permission(request, obj):
            raise PermissionDenied
        form = RotateForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                successor, raw_key = obj.rotate(form.cleaned_data["grace_period"])
            except KeyNotRotatable as exc:
                form.add_error(None, ValidationError(str(exc), code="not_rotatable"))
            else:
                self.log_change(request, obj, f"Rotated; successor {successor.prefix}.")
                self.log_addition(request, successor, f"Created by rotating {obj.prefix}.")
                return self.key_created_response(request, successor, raw_key, predecessor=obj)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Rotate API key?"),
            "subtitle": None,
            "opts": opts,
            "api_key": obj,
            "status": key_status(obj).label,
            "refusal": self.rotation_refusal(obj),
            "form": form,
            "change_url": self._admin_url(obj, "change"),
            "media": self.media,
        }
        return TemplateResponse(request, self.rotate_confirmation_template, context)

    @admin.action(description=_("Revoke selected keys"), permissions=["change"])
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[AbstractAPIKey]
    ) -> HttpResponse | None:
        """Ask for confirmation, then revoke each key with its single-column ``revoke()``."""
        if request.POST.get("post") == "yes":
            revoked = 0
            for api_key in queryset.filter(revoked=False):
                api_key.revoke()
                self.log_change(request, api_key, "Revoked.")
                revoked += 1
            self.message_user(
                request,
                ngettext("Revoked %(count)d API key.", "Revoked %(count)d API keys.", revoked)
                % {"count": revoked},
                messages.SUCCESS,
            )
            return None
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": _("Revoke API keys?"),
            "subtitle": None,
            "opts": opts,
            "queryset": queryset,
            "active_keys": [key for key in queryset if not key.revoked],
            "revoked_keys": [key for key in queryset if key.revoked],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, self.revoke_confirmation_template, context)


admin.site.register(APIKey, APIKeyModelAdmin)
