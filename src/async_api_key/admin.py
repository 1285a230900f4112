"""The admin for key models: list and filter keys, create one (its key shown once), rotate one
(its successor's key shown once), revoke in bulk.

``APIKeyModelAdmin`` is registered for :class:`~async_api_key.models.APIKey`; register a
subclass for a custom key model::

    @admin.register(OrganizationAPIKey)
    class OrganizationAPIKeyAdmin(APIKeyModelAdmin):
        list_display: tuple[str, ...] = (*APIKeyModelAdmin.list_display, "organization")
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from .commands import parse_grace_period, split_networks, split_scopes
from .exceptions import KeyNotRotatable
from .models import AbstractAPIKey, APIKey
from .networks import validate_networks
from .ratelimit import validate_rate
from .scopes import validate_scopes
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
    "RotateForm",
]

#: Fields a key gets from ``create_key`` itself; the admin never copies them into it.
_GENERATED_FIELDS = frozenset({"prefix", "hashed_key"})


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

    def validate(self, value: Any) -> None:
        super().validate(value)
        try:
            validate_scopes(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_scope") from exc


class NetworksField(_TextListField):
    """Allowed networks edited as text, one per line or comma-separated; cleaned to a
    validated, normalised list of CIDR strings."""

    def split(self, text: str) -> list[str]:
        return split_networks(text)

    def clean(self, value: Any) -> list[str]:
        networks = super().clean(value)
        try:
            return validate_networks(networks)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_network") from exc


class APIKeyForm(_ModelFormBase):
    """The admin form of a key: its scopes and allowed networks as text, its rate checked."""

    scopes = ScopesField(
        label=_("scopes"),
        required=False,
        help_text=_(
            'One scope per line or comma-separated, such as "orders:read", "orders:*" or "*". '
            "A key with no scopes passes only endpoints that require none."
        ),
    )
    allowed_networks = NetworksField(
        label=_("allowed networks"),
        required=False,
        help_text=_(
            "Client networks allowed to use the key, one per line or comma-separated, in CIDR "
            'notation such as "203.0.113.0/24" or "2001:db8::/32". Empty: any address.'
        ),
    )

    def clean_rate_limit(self) -> str:
        try:
            return validate_rate(self.cleaned_data.get("rate_limit") or "")
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_rate") from exc


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
        except CommandError as exc:
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
    #: Shown in answer to a successful creation, with the raw key.
    key_created_template = "async_api_key/admin/key_created.html"
    #: Asks to confirm the "Revoke selected keys" action.
    revoke_confirmation_template = "async_api_key/admin/revoke_selected_confirmation.html"
    #: Asks for the grace period of a rotation; the answer is ``key_created_template``.
    rotate_confirmation_template = "async_api_key/admin/rotate_confirmation.html"
    #: The change page, with a "Rotate" button among its object tools.
    change_form_template = "async_api_key/admin/change_form.html"

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
        return format_html('<a href="{}">{}</a>', self._admin_url(obj, "change"), obj)

    def _admin_url(self, obj: AbstractAPIKey, view: str) -> str:
        opts = obj._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk]
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
        self,
        request: HttpRequest,
        obj: AbstractAPIKey,
        raw_key: str,
        predecessor: AbstractAPIKey | None = None,
    ) -> HttpResponse:
        """Answer a creation (or, with ``predecessor``, a rotation) with the one page that
        shows the raw key; never cached."""
        opts = self.model._meta
        url_name = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}"
        context = {
            **self.admin_site.each_context(request),
            "title": _("API key created") if predecessor is None else _("API key rotated"),
            "subtitle": None,
            "opts": opts,
            "api_key": obj,
            "raw_key": raw_key,
            "status": key_status(obj).label,
            "predecessor": predecessor,
            "predecessor_active": predecessor is not None
            and key_status(predecessor) is KeyStatus.ACTIVE,
            "predecessor_url": None
            if predecessor is None
            else reverse(f"{url_name}_change", args=[predecessor.pk]),
            "change_url": reverse(f"{url_name}_change", args=[obj.pk]),
            "add_url": reverse(f"{url_name}_add"),
            "changelist_url": reverse(f"{url_name}_changelist"),
        }
        response = TemplateResponse(request, self.key_created_template, context)
        add_never_cache_headers(response)
        return response

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        rotate = path(
            "<path:object_id>/rotate/",
            self.admin_site.admin_view(self.rotate_view),
            name=f"{opts.app_label}_{opts.model_name}_rotate",
        )
        # Before the default patterns: their catch-all "<path:object_id>/" would take it.
        return [rotate, *super().get_urls()]

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


def _adopt(obj: AbstractAPIKey, created: AbstractAPIKey) -> None:
    """Make the admin's unsaved ``obj`` the row ``create_key`` saved (logging and
    related objects use it after ``save_model``)."""
    for field in created._meta.concrete_fields:
        setattr(obj, field.attname, getattr(created, field.attname))
    obj._state.adding = False
    obj._state.db = created._state.db
    obj._initial_revoked = created.revoked


admin.site.register(APIKey, APIKeyModelAdmin)
