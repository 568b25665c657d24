"""A pytest plugin for applications' own tests: one embedded server per test run and a
fresh session (its own table prefix, tables created) for every test.

Installed with dynamodm and loaded by pytest automatically. Fixtures:

- ``dynamodm_endpoint``: the endpoint URL, session-wide: ``DYNAMODB_ENDPOINT_URL`` when
  set (dynalite, DynamoDB Local), else the embedded moto server on a free loopback port
  (needs the ``local`` extra).
- ``dynamodm_models``: the models whose tables each test gets; all of ``dm.registry`` by
  default. Override it in your conftest to choose.
- ``dynamodm_session`` (async, needs pytest-asyncio): an open ``dm.Session`` with a fresh
  prefix and the tables of ``dynamodm_models``, deleted after the test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

if TYPE_CHECKING:
    from .model import Model
    from .session import Session


@pytest.fixture(scope="session")
def dynamodm_endpoint() -> Iterator[str]:
    """The endpoint the tests talk to: DYNAMODB_ENDPOINT_URL, or the embedded server."""
    configured = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if configured:
        yield configured
        return
    from .local import LocalServer

    with LocalServer() as server:
        yield server.endpoint_url


@pytest.fixture
def dynamodm_models() -> list[type[Model]]:
    """The models whose tables every test gets (override to choose)."""
    from .registry import registry

    return registry.models


async def _session(endpoint: str, models: list[type[Model]]) -> AsyncIterator[Session]:
    from .session import connect

    async with connect(endpoint_url=endpoint, table_prefix=f"t{uuid4().hex[:10]}-") as db:
        if models:
            await db.create_tables(*models)
        try:
            yield db
        finally:
            if models:
                await db.delete_tables(*models)


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the session fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def dynamodm_session(
        dynamodm_endpoint: str, dynamodm_models: list[type[Model]]
    ) -> AsyncIterator[Session]:
        """An open session with a fresh table prefix and the tables of dynamodm_models."""
        async for db in _session(dynamodm_endpoint, dynamodm_models):
            yield db
