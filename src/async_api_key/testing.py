"""pytest fixtures that give a project's sync and async tests API keys that work in both.

List the module as a plugin in the project's root ``conftest.py``::

    pytest_plugins = ["async_api_key.testing"]

The rule they follow (docs/testing.md explains it): a key that async code verifies must be
committed. An async test runs the ORM's sync work in ``sync_to_async``'s own thread, with a
database connection of its own, which cannot see the rolled-back transaction that
pytest-django's default ``db`` fixture wraps a test in. So these fixtures ask for
``transactional_db``: the key is committed, and the tables are emptied after the test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .commands import CreatedKey
    from .models import AbstractAPIKey

__all__ = ["APIKeyFactory", "api_key", "api_key_factory"]


class APIKeyFactory:
    """Creates committed keys through the key model's manager: ``create()`` in sync code,
    ``await acreate()`` in async code (the ORM refuses sync calls on the event loop).

    ``model`` is a key model class (default: ``APIKey``); other keyword arguments are the
    key's fields, as ``create_key`` takes them (``scopes``, ``expiry_date``, an owner...).
    """

    def create(
        self, name: str = "test", *, model: type[AbstractAPIKey] | None = None, **fields: Any
    ) -> CreatedKey:
        api_key, raw_key = _key_model(model)._default_manager.create_key(name=name, **fields)
        return _created_key(api_key, raw_key)

    async def acreate(
        self, name: str = "test", *, model: type[AbstractAPIKey] | None = None, **fields: Any
    ) -> CreatedKey:
        manager = _key_model(model)._default_manager
        api_key, raw_key = await manager.acreate_key(name=name, **fields)
        return _created_key(api_key, raw_key)


def _key_model(model: type[AbstractAPIKey] | None) -> type[AbstractAPIKey]:
    # Imported here, not at the top: pytest may import a plugin (``-p async_api_key.testing``)
    # before pytest-django has set Django up, and the models need the app registry.
    from .models import APIKey

    return APIKey if model is None else model


def _created_key(api_key: AbstractAPIKey, raw_key: str) -> CreatedKey:
    from .commands import CreatedKey  # after Django's setup, as in _key_model()

    return CreatedKey(api_key=api_key, raw_key=raw_key)


@pytest.fixture
def api_key_factory(transactional_db: None) -> APIKeyFactory:
    """Create committed keys, usable from sync and async tests alike."""
    return APIKeyFactory()


@pytest.fixture
def api_key(api_key_factory: APIKeyFactory) -> CreatedKey:
    """A committed key named ``test``, with no scope, limit or expiry."""
    return api_key_factory.create()
