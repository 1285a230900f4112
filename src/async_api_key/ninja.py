"""Django-Ninja adapter: a security class that protects async and sync operations with API keys.

::

    api = NinjaAPI(auth=APIKeyAuth())
    register_error_handler(api)  # optional: structured 403/503 bodies
    document_scopes(api)  # optional: each operation's scopes in the OpenAPI schema

    @api.get("/orders", auth=APIKeyAuth(scopes=["orders:read"]))
    async def orders(request): ...

``authenticate`` is ``async def``: on async operations Ninja awaits it on the event loop and
the verifier runs the ORM in at most one ``sync_to_async`` hop (none for a malformed key or a
cached one); on sync operations Ninja bridges it with ``async_to_sync``, and that hop comes
back to the request's own thread. The adapter only reads the request and translates the
verifier's outcome: the verifier decides (key, scopes, the key's IP allowlist).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, cast

import ninja
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.security.apikey import APIKeyBase
from ninja.throttling import BaseThrottle

from .headers import KeySource, describe_required_scopes
from .models import AbstractAPIKey, APIKey
from .ratelimit import KeyRateLimits, RateLimitUnavailable
from .refusals import RefusalKind, challenge
from .reporting import masks_key_locals
from .scopes import validate_scopes
from .verification import Reason, VerificationOutcome, get_verifier

__all__ = [
    "APIKeyAuth",
    "APIKeyRateThrottle",
    "APIKeyRefused",
    "document_scopes",
    "register_error_handler",
]

#: Request attribute holding the first key an APIKeyAuth refused: (outcome, key source).
_CHALLENGE_ATTRIBUTE: Final = "_async_api_key_challenge"


#: Scheme name -> the key source it documents, so two sources never share a name.
_scheme_configurations: dict[str, tuple[object, ...]] = {}
_scheme_classes: dict[tuple[type[APIKeyAuth], str], type[APIKeyAuth]] = {}

#: django-ninja 1.7 started sending ``Retry-After`` with its 429 answers.
_NINJA_SENDS_RETRY_AFTER: Final = tuple(
    int(part) for part in ninja.__version__.split(".")[:2] if part.isdigit()
) >= (1, 7)


class APIKeyRefused(HttpError):
    """A genuine key refused by policy (403) or a key store that cannot be reached (503).

    It is an ``HttpError`` so that every ``NinjaAPI`` answers it with the right status and no
    setup: Ninja hands exceptions raised by an auth callback to ``api.on_exception``, which
    walks the exception's MRO through the handlers registered *on that API*, and every API
    registers one for ``HttpError`` (``{"detail": str(exc)}``). The detail names the missing
    scopes, so even that bare body is useful.

    The full body (:meth:`VerificationOutcome.error_body`: ``detail``, ``code`` and
    ``missing_scopes``) needs a handler for this class on the API, because an auth callback
    never sees the API it protects and Ninja offers no other channel from an auth class to the
    response: :func:`register_error_handler` adds it in one line. A project that customises
    its ``HttpError`` handler gets these refusals in its own format, as it would expect.
    """

    def __init__(self, outcome: VerificationOutcome[Any]) -> None:
        super().__init__(outcome.status_code, outcome.error_detail)
        self.reason: Reason = outcome.reason
        self.missing_scopes: tuple[str, ...] = outcome.missing_scopes
        self.body: dict[str, object] = outcome.error_body()


def register_error_handler(api: NinjaAPI) -> None:
    """Answer ``api``'s key refusals as the DRF adapter does: same status, body and headers.

    - :class:`APIKeyRefused` (403, 503) gets the outcome's full JSON body.
    - Ninja's own 401, once no auth of the operation accepted the request, gets the body of
      the key an :class:`APIKeyAuth` refused (``invalid_api_key``; a missing key in DRF's
      words) and the ``WWW-Authenticate`` challenge, where Ninja alone answers
      ``{"detail": "Unauthorized"}`` with no challenge. When no ``APIKeyAuth`` ran, Ninja's
      answer stays as it is.

    Bodies are rendered by ``api.create_response``, so the API's renderer is honoured. On
    django-ninja < 1.7, which does not send ``Retry-After`` with a 429 itself, it also adds
    that header to throttled answers (whose body stays the API's ``HttpError`` format).
    """

    def answer_refusal(
        request: HttpRequest, exc: APIKeyRefused | type[APIKeyRefused]
    ) -> HttpResponse:
        # Ninja's handler type admits the class too, but it always passes the instance raised.
        refusal = cast(APIKeyRefused, exc)
        return api.create_response(request, refusal.body, status=refusal.status_code)

    def answer_unauthenticated(
        request: HttpRequest, exc: Exception | type[Exception]
    ) -> HttpResponse:
        # The instance's own attributes: a stand-in request (django-ninja < 1.5's test
        # client passes a Mock) must not offer a made-up refusal.
        refused: tuple[VerificationOutcome[Any], KeySource] | None = vars(request).get(
            _CHALLENGE_ATTRIBUTE
        )
        if refused is None:  # no APIKeyAuth on this operation: Ninja's own answer
            return api.create_response(request, {"detail": "Unauthorized"}, status=401)
        outcome, key_source = refused
        response = api.create_response(request, outcome.error_body(), status=outcome.status_code)
        response["WWW-Authenticate"] = challenge(key_source.effective_keyword)
        return response

    api.add_exception_handler(APIKeyRefused, answer_refusal)
    api.add_exception_handler(AuthenticationError, answer_unauthenticated)
    if not _NINJA_SENDS_RETRY_AFTER:
        api.add_exception_handler(Throttled, _retry_after_answer(api))


def _retry_after_answer(
    api: NinjaAPI,
) -> Callable[[HttpRequest, Throttled | type[Throttled]], HttpResponse]:
    def answer_throttled(request: HttpRequest, exc: Throttled | type[Throttled]) -> HttpResponse:
        throttled = cast(Throttled, exc)
        # Answered by the API's HttpError handler, so a project's own format is kept.
        response = api.on_exception(request, HttpError(throttled.status_code, str(throttled)))
        if throttled.wait is not None and not response.has_header("Retry-After"):
            response["Retry-After"] = str(math.ceil(throttled.wait))
        return response

    return answer_throttled


class APIKeyAuth(APIKeyBase):
    """Authenticate a Ninja operation with an API key; ``request.auth`` becomes the key object.

    - ``model``: the key model (``APIKey`` or a subclass of ``AbstractAPIKey``).
    - ``scopes``: scopes the key must grant (wildcards granted on the key count).
    - ``keyword`` / ``header``: override ``ASYNC_API_KEY["KEYWORD"]`` / ``["HEADER"]`` for
      this instance (``header=""`` reads the ``Authorization`` header only).
    - ``scheme_name``: the OpenAPI security scheme's name (derived from the key source and
      the model if omitted; the scopes are not part of it, see :func:`document_scopes`).
    - ``rate_limit``: count this request against the key's rate limit here, off the event
      loop, for an :class:`APIKeyRateThrottle` on the same operation to enforce: ``True``
      counts keys that carry their own ``rate_limit``; a rate such as ``"100/min"`` is also
      the default for keys without one (pass the throttle the same rate).

    A request without a usable key gets ``None``, so Ninja tries the next auth of
    ``auth=[...]`` and finally answers 401, the same for every kind of bad key. A genuine key
    refused by policy (a missing scope, an address outside the key's ``allowed_networks``)
    raises :class:`APIKeyRefused` (403, the chain stops); so does a key store that cannot be
    reached (503).
    """

    openapi_in: str = "header"

    def __init__(
        self,
        *,
        model: type[AbstractAPIKey] = APIKey,
        scopes: Sequence[str] = (),
        keyword: str | None = None,
        header: str | None = None,
        scheme_name: str | None = None,
        rate_limit: str | bool | None = None,
    ) -> None:
        self.rate_limit = rate_limit
        # A rate is checked now, so that a typo fails at start-up, not on a request.
        self._rate_limits = (
            KeyRateLimits(rate_limit if isinstance(rate_limit, str) else None)
            if rate_limit
            else None
        )
        self.model = model
        self.verifier = get_verifier(model)
        self.scopes: tuple[str, ...] = tuple(validate_scopes(scopes))
        self.keyword = keyword
        self.header = header
        self.key_source = KeySource(keyword=keyword, header=header)
        scheme = self.key_source.openapi_scheme(self._model_label())
        # Read by Ninja's AuthBase, which copies every ``openapi_*`` attribute into the scheme.
        self.param_name = scheme["name"]
        self.openapi_description = scheme["description"]
        super().__init__()
        self._take_scheme_name(scheme_name)

    def _get_key(self, request: HttpRequest) -> str | None:
        return self.key_source.get_key(_RequestMeta(request))

    @masks_key_locals
    async def authenticate(self, request: HttpRequest, key: str | None) -> AbstractAPIKey | None:
        verifier = self.verifier
        request_meta = _RequestMeta(request)
        # A key this process verified recently is answered without awaiting averify(), which
        # would add a coroutine (about 2,000 instructions of a hit's 36,600; callgrind).
        outcome = verifier._answer_local(key, self.scopes, request_meta)
        if outcome is None:
            outcome = await verifier.averify(key, scopes=self.scopes, request_meta=request_meta)
        elif verifier._reports(outcome):
            await verifier._areport(outcome)
        if outcome.is_valid and outcome.api_key is not None:
            if self._rate_limits is not None:
                await self._count(self._rate_limits, request, outcome.api_key)
            return outcome.api_key
        # The refusal kinds, mapped to Ninja once (see async_api_key.refusals).
        if outcome.refusal_kind is RefusalKind.CHALLENGE:
            # None lets the next auth of ``auth=[...]`` try; if none accepts, Ninja's 401 is
            # answered with this outcome (register_error_handler). The first refusal counts.
            vars(request).setdefault(_CHALLENGE_ATTRIBUTE, (outcome, self.key_source))
            return None
        raise APIKeyRefused(outcome)  # forbidden (403) or unavailable (503): the chain stops

    @staticmethod
    async def _count(limits: KeyRateLimits, request: HttpRequest, api_key: AbstractAPIKey) -> None:
        """Count the request now, off the event loop; the throttle reads the count later."""
        try:
            await limits.acount(request, api_key)
        except RateLimitUnavailable as exc:
            raise HttpError(
                503, "Rate limiting is temporarily unavailable. Try again later."
            ) from exc

    # OpenAPI

    def _take_scheme_name(self, scheme_name: str | None) -> None:
        """Give this instance a class named after its scheme.

        Ninja names a security scheme after the auth's class (``type(auth).__name__``), so
        instances that read keys from different headers, or keys of different models, would
        collapse into one scheme. Each key source and model gets a subclass of its own, named
        after it (``APIKeyAuth`` for the default one); isinstance checks still hold. Scopes
        do not count: Swagger asks for a key once per scheme, and the operation's
        requirement lists its scopes (:func:`document_scopes`).
        """
        base = type(self)
        name = scheme_name or self.key_source.scheme_name(base.__name__, self._model_label())
        # The model by its label, as Django's app registry identifies it.
        configuration = (base, self.model._meta.label_lower, self.key_source)
        known = _scheme_configurations.setdefault(name, configuration)
        if known != configuration:
            raise ValueError(
                f"The OpenAPI security scheme name {name!r} is already used by an "
                f"{base.__name__} reading keys of another model or from other headers; pass "
                "scheme_name= to tell them apart."
            )
        if name != base.__name__:
            scheme_class = _scheme_classes.get((base, name))
            if scheme_class is None:
                scheme_class = type(name, (base,), {"__module__": base.__module__})
                _scheme_classes[(base, name)] = scheme_class
            self.__class__ = scheme_class

    def _model_label(self) -> str | None:
        return None if self.model is APIKey else self.model._meta.label


def document_scopes(api: NinjaAPI) -> None:
    """List each operation's required scopes in ``api``'s OpenAPI schema.

    Operations protected by one key source share one security scheme, so Swagger's
    "Authorize" asks for the key once. The scopes an operation requires go into its security
    requirement (``[{"APIKeyAuth": ["orders:read"]}]``, which OpenAPI 3.1 allows for an
    ``apiKey`` scheme) and into its description. Ninja itself always writes ``[]`` there and
    gives an auth class no say, so this replaces ``api.get_openapi_schema`` with one that
    builds the schema through a subclass of Ninja's ``OpenAPISchema``.
    """

    def get_openapi_schema(
        *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = api.get_root_path(path_params or {})
        return _ScopedOpenAPISchema(api, path_prefix)

    api.get_openapi_schema = get_openapi_schema  # type: ignore[method-assign]


class _ScopedOpenAPISchema(OpenAPISchema):
    """Ninja's schema, with each :class:`APIKeyAuth`'s scopes in the operation's requirement."""

    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        security: list[dict[str, Any]] | None = super().operation_security(operation)
        if security:
            # Ninja writes one requirement, in order, for each auth that has a scheme.
            documented = [
                auth
                for auth in operation.auth_callbacks
                if hasattr(auth, "openapi_security_schema")
            ]
            for requirement, auth in zip(security, documented, strict=False):
                if isinstance(auth, APIKeyAuth):
                    for name in requirement:
                        requirement[name] = list(auth.scopes)
        return security

    def operation_details(self, operation: Operation) -> dict[str, Any]:
        details: dict[str, Any] = super().operation_details(operation)
        sentence = _scopes_sentence(operation.auth_callbacks)
        if sentence:
            description = details.get("description")
            details["description"] = f"{description}\n\n{sentence}" if description else sentence
        return details


def _scopes_sentence(auth_callbacks: Sequence[object]) -> str:
    """The scopes an operation requires, for its description (``""`` when none)."""
    alternatives = {
        (type(auth).__name__, auth.scopes): None
        for auth in auth_callbacks
        if isinstance(auth, APIKeyAuth) and auth.scopes
    }
    return describe_required_scopes(list(alternatives)) if alternatives else ""


#: What ``_RequestMeta.get`` answers for a name it cannot find, when asked for by ``[]``.
_ABSENT: Final = object()


class _RequestMeta(Mapping[str, Any]):
    """``request.META`` that also finds HTTP headers whose ``META`` name is not upper-case.

    Django's handlers upper-case header names in ``META``; Ninja's ``TestClient`` stores them
    as given (``HTTP_X_API_Key``). A name missing from ``META`` is looked up in
    ``request.headers``, which ignores case, so both spellings find the key.
    """

    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    def get(self, name: str, default: Any = None) -> Any:
        # Not Mapping.get, which calls __getitem__ and catches its KeyError: the key source
        # calls this on every request.
        meta = self._request.META
        if name in meta or not name.startswith("HTTP_"):
            return meta.get(name, default)
        return self._request.headers.get(name.removeprefix("HTTP_").replace("_", "-"), default)

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._request.META)

    def __len__(self) -> int:
        return len(self._request.META)


logger = logging.getLogger("async_api_key")


class APIKeyRateThrottle(BaseThrottle):
    """A Ninja throttle that limits requests per verified key: 429 with ``Retry-After``.

    The rate is the key's own ``rate_limit`` or, when it has none, ``rate`` (``None``:
    keys without a limit are not throttled). Requests without a verified key
    (``request.auth`` is not a key) are left to other throttles.

    Ninja calls throttles synchronously, on the event loop for async operations. With a
    cache in this process (local memory) counting is a dictionary operation. With a
    network cache (Redis), give the operation's ``APIKeyAuth`` the same ``rate_limit``:
    it counts the request in its async ``authenticate``, off the loop, and this throttle
    only reads the result. Without that, counting here is one blocking cache round trip.
    If the cache cannot be reached the request is refused, never let through: 503 when
    ``APIKeyAuth`` counted it, 429 when this throttle did (a Ninja throttle cannot answer
    anything else).
    """

    def __init__(self, rate: str | None = None) -> None:
        self.rate = rate
        self.limits = KeyRateLimits(rate)  # checks the rate now: a typo fails at start-up
        self._last = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        self._last.wait = None
        api_key = getattr(request, "auth", None)
        if not isinstance(api_key, AbstractAPIKey):
            return True
        try:
            # Read back when APIKeyAuth(rate_limit=...) counted it off the loop: never twice.
            decision = self.limits.count(request, api_key)
        except RateLimitUnavailable:
            return False  # refused, never let through: a Ninja throttle can only say 429
        if decision is None:
            return True
        self._last.wait = decision.retry_after
        return decision.allowed

    def wait(self) -> float | None:
        wait: float | None = getattr(self._last, "wait", None)
        return wait
