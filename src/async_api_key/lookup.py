"""Loading a stored key by its lookup id: the one query of a cold verification, compiled once.

Building and compiling ``manager.filter(prefix=...)[:1]`` costs more than running it: in a
cold verification on SQLite, the ORM spent about two thirds of its time turning the queryset
into SQL. A :class:`KeyLoader` compiles that SELECT once per database alias and then runs it
with each new lookup id as its parameter, turning the row into a model instance the way the
ORM does (the backend's and the fields' converters, then ``Model.from_db``).

Only a plain manager gets the compiled query: one whose ``get_queryset()`` or
``get_usable_keys()`` is overridden may filter by request-time state (a tenant, say), so its
queryset is built on every call, as is any query whose shape the compiled form cannot
reproduce. An overridden ``get_usable_keys()`` is asked in the same query, as an ``EXISTS``
subquery whose answer :meth:`KeyLoader.is_usable` reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import connections
from django.db.models import Exists, OuterRef
from django.db.models.expressions import Col

if TYPE_CHECKING:
    from .models import AbstractAPIKey, BaseAPIKeyManager

__all__ = [
    "KeyFilters",
    "KeyLoader",
]

_KeyT = TypeVar("_KeyT", bound="AbstractAPIKey")

#: Stands in for the lookup id while the query is compiled; found again among the parameters.
_MARKER = "async-api-key:lookup-id-placeholder"
#: The annotation that carries an overridden ``get_usable_keys()``'s answer on a loaded key.
_USABLE_ANNOTATION = "async_api_key_is_usable"

_Converter = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class KeyFilters:
    """Which of the methods that decide usable keys a manager overrides."""

    #: ``get_queryset()``: the manager may see only some rows of the table.
    custom_queryset: bool
    #: ``get_usable_keys()``: the manager narrows usable keys beyond "not revoked, not expired".
    custom_usability: bool

    @property
    def customised(self) -> bool:
        return self.custom_queryset or self.custom_usability


@dataclass(frozen=True)
class _CompiledLookup:
    sql: str
    params: tuple[Any, ...]
    #: Where the lookup id goes in ``params``.
    marker_index: int
    #: The model attribute of each selected column, in order.
    attnames: tuple[str, ...]
    #: (column index, converters, expression) for the columns the ORM converts.
    converters: tuple[tuple[int, tuple[_Converter, ...], Any], ...]


class KeyLoader(Generic[_KeyT]):
    """Load the key whose ``prefix`` is a lookup id, through ``manager``; sync, one query."""

    def __init__(self, manager: BaseAPIKeyManager[_KeyT], filters: KeyFilters) -> None:
        self.manager = manager
        self.model: type[_KeyT] = manager.model
        # The base get_usable_keys() means "not revoked, not expired", which the verifier
        # tests on the row itself; only an override needs asking.
        self.asks_usability = filters.custom_usability
        self._compile_query = not filters.customised
        #: Whether "not found" from this manager means "not in the table at all".
        self.sees_whole_table = not filters.custom_queryset
        #: Compiled queries by database alias; ``None`` where the ORM must build each query.
        self._compiled: dict[str, _CompiledLookup | None] = {}
        self._lock = threading.Lock()

    def load(self, lookup: str) -> _KeyT | None:
        """The stored key with this lookup id, or ``None``. Raises ``DatabaseError`` on outage."""
        if not self._compile_query:
            return self._load_with_orm(lookup)
        db = self.manager.db
        try:
            compiled = self._compiled[db]
        except KeyError:
            compiled = self._compile(db)
        if compiled is None:
            return self._load_with_orm(lookup)
        params = list(compiled.params)
        params[compiled.marker_index] = lookup
        connection = connections[db]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        # The backend's converters were bound in the thread that compiled the query; they
        # read only what the settings decide (the connection's time zone), the same in
        # every thread, and are handed this thread's connection as the ORM would.
        for index, converters, expression in compiled.converters:
            value = values[index]
            for converter in converters:
                value = converter(value, expression, connection)
            values[index] = value
        return self.model.from_db(db, compiled.attnames, values)

    def exists_anywhere(self, lookup: str) -> bool:
        """Whether any row of the table (whatever the manager sees) has this lookup id."""
        if self.sees_whole_table:
            return False  # load() looked at the whole table and found nothing
        return bool(self.model._base_manager.using(self.manager.db).filter(prefix=lookup).exists())

    def is_usable(self, api_key: _KeyT) -> bool:
        """Whether an overridden ``get_usable_keys()`` includes a key :meth:`load` returned."""
        return not self.asks_usability or bool(getattr(api_key, _USABLE_ANNOTATION))

    def _load_with_orm(self, lookup: str) -> _KeyT | None:
        # No ordering: prefix is unique, and the model's default ORDER BY only costs time.
        candidates = self.manager.filter(prefix=lookup).order_by()
        if self.asks_usability:
            usable = self.manager.get_usable_keys().filter(pk=OuterRef("pk"))
            candidates = candidates.annotate(**{_USABLE_ANNOTATION: Exists(usable)})
        return next(iter(candidates[:1]), None)

    def _compile(self, db: str) -> _CompiledLookup | None:
        with self._lock:
            if db not in self._compiled:
                self._compiled[db] = _compile_lookup(self.manager, db)
            return self._compiled[db]


def _compile_lookup(manager: BaseAPIKeyManager[Any], db: str) -> _CompiledLookup | None:
    """Compile the lookup query for ``db``, or ``None`` if its shape is not the expected one."""
    queryset = manager.using(db).filter(prefix=_MARKER).order_by()[:1]
    compiler = queryset.query.get_compiler(using=db)
    sql, params = compiler.as_sql()
    select: Sequence[Any] = compiler.select or ()
    columns = [item[0] for item in select]
    if params.count(_MARKER) != 1 or not all(isinstance(column, Col) for column in columns):
        return None
    if getattr(compiler, "annotation_col_map", None) or compiler.query.extra_select:
        return None
    converters = compiler.get_converters(columns)
    return _CompiledLookup(
        sql=sql,
        params=tuple(params),
        marker_index=list(params).index(_MARKER),
        attnames=tuple(column.target.attname for column in columns),
        converters=tuple(
            (index, tuple(functions), expression)
            for index, (functions, expression) in sorted(converters.items())
        ),
    )
