"""The admin for key models: list and filter keys, create one (its key shown once), revoke in bulk.

``APIKeyModelAdmin`` is registered for :class:`~async_api_key.models.APIKey`; register a
subclass for a custom key model::

    @admin.register(OrganizationAPIKey)
    class OrganizationAPIKeyAdmin(APIKeyModelAdmin):
        list_display: tuple[str, ...] = (*APIKeyModelAdmin.list_display, "organization")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from .commands import split_scopes
from .models import AbstractAPIKey, APIKey
from .scopes import validate_scopes
from .status import KeyStatus, filter_by_status, key_status

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    _ModelAdminBase = admin.ModelAdmin[AbstractAPIKey]
    _ModelFormBase = forms.ModelForm[AbstractAPIKey]
else:
    _ModelAdminBase = admin.ModelAdmin
    _ModelFormBase = forms.ModelForm

#: Fields a key gets from ``create_key`` itself; the admin never copies them into it.
_GENERATED_FIELDS = frozenset({"prefix", "hashed_key"})


class ScopesField(forms.CharField):
    """Scopes edited as text, one per line or comma-separated; cleaned to a validated list."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(scope) for scope in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return split_scopes(super().to_python(value) or "")

    def validate(self, value: Any) -> None:
        super().validate(value)
        try:
            validate_scopes(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_scope") from exc


class APIKeyForm(_ModelFormBase):
    """The admin form of a key: its scopes as text."""

    scopes = ScopesField(
        label=_("scopes"),
        required=False,
        help_text=_(
            'One scope per line or comma-separated, such as "orders:read", "orders:*" or "*". '
            "A key with no scopes passes only endpoints that require none."
        ),
    )


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
    )
    list_filter: ClassVar[tuple[Any, ...]] = (StatusListFilter,)
    search_fields: ClassVar[tuple[str, ...]] = ("name", "prefix")
    actions = ("revoke_selected",)
    #: Shown in answer to a successful creation, with the raw key.
    key_created_template = "async_api_key/admin/key_created.html"
    #: Asks to confirm the "Revoke selected keys" action.
    revoke_confirmation_template = "async_api_key/admin/revoke_selected_confirmation.html"

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

    def get_readonly_fields(self, request: HttpRequest, obj: AbstractAPIKey | None = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is None:
            return readonly
        return (*readonly, "prefix", "status", "created", "last_used_at", "revoked_at")

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
        fields = {
            field.attname: getattr(obj, field.attname)
            for field in obj._meta.concrete_fields
            if not field.primary_key and field.name not in _GENERATED_FIELDS
        }
        created, raw_key = type(obj)._default_manager.create_key(**fields)
        _adopt(obj, created)
        self._raw_keys[request] = raw_key

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
        self, request: HttpRequest, obj: AbstractAPIKey, raw_key: str
    ) -> HttpResponse:
        """Answer a creation with the one page that shows the raw key; never cached."""
        opts = self.model._meta
        url_name = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}"
        context = {
            **self.admin_site.each_context(request),
            "title": _("API key created"),
            "subtitle": None,
            "opts": opts,
            "api_key": obj,
            "raw_key": raw_key,
            "status": key_status(obj).label,
            "change_url": reverse(f"{url_name}_change", args=[obj.pk]),
            "add_url": reverse(f"{url_name}_add"),
            "changelist_url": reverse(f"{url_name}_changelist"),
        }
        response = TemplateResponse(request, self.key_created_template, context)
        add_never_cache_headers(response)
        return response

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


def _adopt(obj: AbstractAPIKey, created: AbstractAPIKey) -> None:
    """Make the admin's unsaved ``obj`` the row ``create_key`` saved (logging and
    related objects use it after ``save_model``)."""
    for field in created._meta.concrete_fields:
        setattr(obj, field.attname, getattr(created, field.attname))
    obj._state.adding = False
    obj._state.db = created._state.db
    obj._initial_revoked = created.revoked


admin.site.register(APIKey, APIKeyModelAdmin)
