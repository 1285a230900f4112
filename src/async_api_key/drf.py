"""Django REST framework adapter: an authentication class and permissions backed by the verifier.

A DRF project protects a view with :class:`HasAPIKey` (the permission djangorestframework-api-key
users know) and, to get ``request.auth`` and proper 401 answers, :class:`APIKeyAuthentication`::

    class OrderList(APIView):
        authentication_classes = [APIKeyAuthentication]
        permission_classes = [HasScopes.require("orders:read")]

Each request is verified once per key model, however many of these classes a view uses. The
classes are synchronous; adrf runs a view's ``initial()`` (authentication and permissions) in a
worker thread, so on adrf async views the ORM still never runs on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from rest_framework import exceptions, permissions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .conf import api_key_settings
from .headers import KeySource
from .models import AbstractAPIKey, APIKey
from .ratelimit import KeyRateLimits, RateLimitUnavailable
from .refusals import REALM, RefusalKind, challenge
from .reporting import masks_key_locals
from .scopes import validate_scopes
from .verification import Reason, VerificationOutcome, get_verifier

if TYPE_CHECKING:
    # Not at run time: rest_framework.views reads DEFAULT_AUTHENTICATION_CLASSES while it is
    # being imported, and a project may name this module there.
    from rest_framework.views import APIView

__all__ = [
    "APIKeyAuthentication",
    "APIKeyNotAccepted",
    "APIKeyRateThrottle",
    "APIKeyRefused",
    "APIKeyStoreUnavailable",
    "BaseHasAPIKey",
    "HasAPIKey",
    "HasScopes",
    "InvalidAPIKey",
    "KeyParser",
    "RateLimitStoreUnavailable",
]

_HasScopesT = TypeVar("_HasScopesT", bound="HasScopes")

#: ``Reason.VALID``, read once for the permission's common case (see verification.py).
_VALID = Reason.VALID

#: Attribute of the underlying ``HttpRequest`` that holds this request's outcomes, by key model.
_OUTCOMES_ATTRIBUTE = "_async_api_key_outcomes"


class _KeywordFromSettings:
    """The ``keyword`` a :class:`KeyParser` uses unless a subclass or instance sets its own."""

    def __get__(self, instance: object | None, owner: type[Any]) -> str:
        return api_key_settings.keyword


class KeyParser:
    """Reads the raw key from a request, as djangorestframework-api-key's ``KeyParser`` did.

    ``keyword`` is the scheme of ``Authorization: <keyword> <key>``, compared case-insensitively;
    it follows ``ASYNC_API_KEY["KEYWORD"]`` (``"Api-Key"`` by default) unless set on a subclass
    or passed in. ``header`` overrides ``ASYNC_API_KEY["HEADER"]`` (``""``: the
    ``Authorization`` header only), as ``header=`` does on the Ninja side. The upstream
    ``API_KEY_CUSTOM_HEADER`` setting is honoured too: both adapters read keys through one
    :class:`~async_api_key.headers.KeySource`, fixed when the parser is created.
    """

    # A descriptor, so that the default follows the settings while a plain ``keyword = "Bearer"``
    # on a subclass still overrides it; typed as the ``str`` it reads as.
    keyword: str = _KeywordFromSettings()  # type: ignore[assignment]
    #: The header read besides ``Authorization``; ``None`` follows the settings.
    header: str | None = None

    def __init__(self, *, keyword: str | None = None, header: str | None = None) -> None:
        if keyword is not None:
            self.keyword = keyword
        if header is not None:
            self.header = header
        self.key_source = KeySource(keyword=self._chosen_keyword(), header=self.header)

    def get(self, request: HttpRequest | Request) -> str | None:
        """Return the raw key the request carries, or ``None`` if it carries none."""
        # ``META`` of the ``HttpRequest`` itself: on DRF's ``Request`` it is only reached
        # through ``__getattr__``, after a failed lookup that costs more than the parsing.
        meta = getattr(request, "_request", request).META
        return self.key_source.get_key(meta)

    def _chosen_keyword(self) -> str | None:
        """The keyword set on this parser or its class; ``None`` when it follows the settings."""
        for namespace in (vars(self), *(vars(cls) for cls in type(self).__mro__)):
            if "keyword" in namespace:
                keyword = namespace["keyword"]
                return None if isinstance(keyword, _KeywordFromSettings) else str(keyword)
        return None  # pragma: no cover - KeyParser itself defines it


class InvalidAPIKey(exceptions.APIException):
    """401: the request carried an API key that is not usable (malformed, unknown, revoked, ...).

    Not a subclass of ``AuthenticationFailed`` on purpose: DRF turns that into a 403 unless the
    view's *first* authentication class names a scheme, whereas this error carries its own
    ``WWW-Authenticate`` challenge and so stays a valid 401 whatever the order.
    """

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_api_key"

    def __init__(self, outcome: VerificationOutcome[Any], auth_header: str) -> None:
        super().__init__(detail=_error_detail(outcome), code=outcome.error_code)
        self.auth_header = auth_header


class APIKeyNotAccepted(exceptions.AuthenticationFailed):
    """A permission found the request's key not usable, and no authentication class accepted it.

    DRF would answer its generic "Authentication credentials were not provided." here. As an
    ``AuthenticationFailed``, it keeps DRF's status rule (401 with the first authentication
    class's challenge, 403 when that class names no scheme) with the body of an invalid key.
    """

    default_code = "invalid_api_key"

    def __init__(self, outcome: VerificationOutcome[Any]) -> None:
        super().__init__(detail=_error_detail(outcome), code=outcome.error_code)


class APIKeyRefused(exceptions.PermissionDenied):
    """403: a genuine key that policy refuses here (for example ``ip_not_allowed``)."""

    def __init__(self, outcome: VerificationOutcome[Any]) -> None:
        super().__init__(detail=_error_detail(outcome), code=outcome.error_code)


class APIKeyStoreUnavailable(exceptions.APIException):
    """503: the key store could not be reached, so nothing was decided about the key."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "api_key_verification_unavailable"

    def __init__(self, outcome: VerificationOutcome[Any]) -> None:
        super().__init__(detail=_error_detail(outcome), code=outcome.error_code)


def _error_detail(outcome: VerificationOutcome[Any]) -> dict[str, Any]:
    """The refusal body shared with the Ninja adapter, typed as DRF's exceptions accept it."""
    body: dict[str, Any] = outcome.error_body()
    return body


class _Memo(tuple[type["AbstractAPIKey"], str | None, "VerificationOutcome[Any]", "_Memo | None"]):
    """One verified key of one request, ``(model, raw_key, outcome, earlier)``, where
    ``earlier`` is the memo of another model or key of the same request, or ``None``; its
    ``repr`` leaves the key out.

    A tuple in a chain, not a dictionary: one is built on every verified request, and a
    request nearly always verifies one key of one model.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"_Memo(model={self[0].__name__}, outcome={self[2]!r}, earlier={self[3]!r})"


@masks_key_locals
def _verify_once(
    request: HttpRequest | Request, model: type[AbstractAPIKey], raw_key: str | None
) -> VerificationOutcome[Any]:
    """Verify ``raw_key`` against ``model``, at most once per request.

    The outcome is kept on the underlying ``HttpRequest``, which the authentication class and
    every permission of one request share (DRF's ``Request`` wraps it; adrf's operators call
    permissions in other threads, but with the same request: two that verify at once may
    each verify, and each gets the same answer).
    """
    http_request: HttpRequest = getattr(request, "_request", request)
    memo: _Memo | None = getattr(http_request, _OUTCOMES_ATTRIBUTE, None)
    earlier = memo
    while earlier is not None:
        if earlier[0] is model and earlier[1] == raw_key:
            return earlier[2]
        earlier = earlier[3]
    # _verify, not verify: this frame already masks the frames below it.
    outcome = get_verifier(model)._verify(raw_key, (), http_request.META)
    setattr(http_request, _OUTCOMES_ATTRIBUTE, _Memo((model, raw_key, outcome, memo)))
    return outcome


class BaseHasAPIKey(permissions.BasePermission):
    """Allows a request that carries a usable key of ``model``. Set ``model`` on a subclass."""

    model: ClassVar[type[AbstractAPIKey] | None] = None
    key_parser: ClassVar[KeyParser] = KeyParser()
    #: The refusal DRF's ``permission_denied`` sends when the request is authenticated (403).
    message: dict[str, Any] | None = None
    code: str | None = None

    def get_key(self, request: Request) -> str | None:
        """Return the raw key of the request, or ``None``."""
        return self.key_parser.get(request)

    def get_required_scopes(self, request: Request, view: APIView) -> Sequence[str]:
        """Return the scopes the key must grant; none for a plain key check."""
        return ()

    def has_permission(self, request: Request, view: APIView) -> bool:
        if self.model is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} must set `model` to the API key model to check against."
            )
        outcome = _verify_once(request, self.model, self.get_key(request))
        scopes = self.get_required_scopes(request, view)
        if scopes:  # requiring none leaves the outcome as it is: skip the call
            outcome = get_verifier(self.model).apply_policy(outcome, scopes=scopes)
        if outcome.reason is _VALID:
            return True
        if outcome.refusal_kind is RefusalKind.UNAVAILABLE:
            raise APIKeyStoreUnavailable(outcome)
        if (
            outcome.refusal_kind is RefusalKind.CHALLENGE
            and outcome.reason is not Reason.MISSING
            and request.authenticators
            and not request.successful_authenticator
        ):
            # DRF's permission_denied() would drop the message below for its generic "not
            # provided". A key was sent and is no good: no other operand of ``|`` could allow
            # it but one that allows anonymous requests.
            raise APIKeyNotAccepted(outcome)
        self.message = outcome.error_body()
        self.code = outcome.error_code
        return False


class HasAPIKey(BaseHasAPIKey):
    """Allows a request that carries a usable :class:`~async_api_key.models.APIKey`."""

    # Declared again so that subclasses may set a custom key model.
    model: ClassVar[type[AbstractAPIKey] | None] = APIKey


class HasScopes(HasAPIKey):
    """Allows a request whose key grants every required scope; 403 names the missing ones.

    The scopes come from ``HasScopes.require("orders:read", ...)`` or, for a plain
    ``HasScopes``, from the view's ``required_scopes`` attribute. For a custom key model,
    subclass it and set ``model``.
    """

    required_scopes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def require(cls: type[_HasScopesT], *scopes: str) -> type[_HasScopesT]:
        """Return a subclass that requires ``scopes`` (checked now: a typo fails at import)."""
        if not scopes:
            raise ValueError("require() needs at least one scope.")
        required = tuple(validate_scopes(scopes))
        return type(
            cls.__name__, (cls,), {"required_scopes": required, "__module__": cls.__module__}
        )

    def get_required_scopes(self, request: Request, view: APIView) -> Sequence[str]:
        scopes: Sequence[str] = self.required_scopes or getattr(view, "required_scopes", ())
        if not scopes:
            # Requiring nothing would silently mean "any key": refuse to guess.
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs scopes: use {type(self).__name__}.require(...) "
                f"or set `required_scopes` on {type(view).__name__}."
            )
        return scopes


class APIKeyAuthentication(BaseAuthentication):
    """Authenticates a request by its API key and sets ``request.auth`` to the key.

    No key: returns ``None``, so the next authentication class runs. A bad key: 401 with a
    ``WWW-Authenticate`` challenge. Key store down: 503. Set ``model`` on a subclass for a
    custom key model, and override :meth:`get_user` to give ``request.user`` a value.
    """

    model: ClassVar[type[AbstractAPIKey]] = APIKey
    key_parser: ClassVar[KeyParser] = KeyParser()
    www_authenticate_realm: ClassVar[str] = REALM

    def authenticate(self, request: Request) -> tuple[Any, AbstractAPIKey] | None:
        # The key goes straight into the memo's masked frame: no frame here holds it, so an
        # error report of this one (a failing get_user(), say) has nothing to mask.
        outcome = _verify_once(request, self.model, self.key_parser.get(request))
        api_key = outcome.api_key
        if outcome.reason is _VALID and api_key is not None:  # the usual case first
            return self.get_user(api_key), api_key
        if outcome.reason is Reason.MISSING:
            return None  # no key: the next authentication class may know the request
        # The refusal kinds, mapped to DRF once (see async_api_key.refusals).
        kind = outcome.refusal_kind
        if kind is RefusalKind.UNAVAILABLE:
            raise APIKeyStoreUnavailable(outcome)
        if kind is RefusalKind.FORBIDDEN:
            raise APIKeyRefused(outcome)  # genuine key, refused by policy: no other auth runs
        raise InvalidAPIKey(outcome, self.authenticate_header(request))

    def get_user(self, api_key: AbstractAPIKey) -> Any:
        """Return what ``request.user`` becomes: DRF's unauthenticated user by default.

        A key is not a user; override this to return, say, the key owner's user.
        """
        # A class (or None) once DRF has imported the setting; the stubs type it as its dotted path.
        unauthenticated_user: Any = api_settings.UNAUTHENTICATED_USER
        return unauthenticated_user() if unauthenticated_user is not None else None

    def authenticate_header(self, request: Request) -> str:
        return challenge(self.key_parser.keyword, self.www_authenticate_realm)


class APIKeyRateThrottle(BaseThrottle):
    """Limits requests per verified key: 429 with ``Retry-After`` once the rate is used up.

    The rate is the key's own ``rate_limit`` (``"100/min"``) or, when it has none, this
    class's ``rate`` (``None``: keys without a limit are not throttled). Requests are
    counted per key id in the cache ``ASYNC_API_KEY["RATE_LIMIT_CACHE_ALIAS"]``; requests
    without a verified key are left to other throttles. Set ``model`` for a custom key
    model when the view uses :class:`HasAPIKey` without :class:`APIKeyAuthentication`.
    """

    rate: ClassVar[str | None] = None
    model: ClassVar[type[AbstractAPIKey]] = APIKey
    key_parser: ClassVar[KeyParser] = KeyParser()

    def __init__(self) -> None:
        self._retry_after: int | None = None
        self.limits = KeyRateLimits(self.rate)

    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = self._verified_key(request)
        if api_key is None:
            return True
        try:
            decision = self.limits.count(request, api_key)
        except RateLimitUnavailable as exc:
            raise RateLimitStoreUnavailable() from exc
        if decision is None:
            return True
        self._retry_after = decision.retry_after
        return decision.allowed

    def wait(self) -> float | None:
        return self._retry_after

    def _verified_key(self, request: Request) -> AbstractAPIKey | None:
        if isinstance(request.auth, AbstractAPIKey):
            return request.auth
        # Memoised: no second query. The key goes straight into the memo's masked frame, so
        # that no frame here holds it for an error report.
        outcome = _verify_once(request, self.model, self.key_parser.get(request))
        return outcome.api_key if outcome.is_valid else None


class RateLimitStoreUnavailable(exceptions.APIException):
    """503: the cache that counts requests could not be reached; the request is refused."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "rate_limit_unavailable"
    default_detail = "Rate limiting is temporarily unavailable. Try again later."
