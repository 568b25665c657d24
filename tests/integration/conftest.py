"""Fixtures for batches, transactions and faults: the fault proxy and a request spy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import ServerHandle

import dynamodm as dm

Sent = list[tuple[str, dict[str, Any]]]

FAST_RETRY = dm.RetryPolicy(base_delay=0.001, max_delay=0.05, max_attempts=25)


@pytest.fixture
async def fault_proxy(server: ServerHandle) -> AsyncIterator[FaultProxy]:
    """A fault-injecting proxy in front of the test's server (no rules yet)."""
    async with FaultProxy(server.endpoint_url, seed=20251201) as proxy:
        yield proxy


@pytest.fixture
async def proxied(db: dm.Session, fault_proxy: FaultProxy) -> AsyncIterator[dm.Session]:
    """A session through the fault proxy, on the same tables as ``db``, with fast retries.

    Model calls inside the test use it (it is the innermost open session)."""
    async with dm.connect(
        endpoint_url=fault_proxy.endpoint_url,
        region="us-east-1",
        table_prefix=db.table_prefix,
        retry=FAST_RETRY,
    ) as session:
        yield session


def _spy(session: dm.Session, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every (operation, request) the session's transport sends from now on, retries
    included (raw ``session.client`` calls are not)."""
    sent: Sent = []
    transport = session.transport
    send: Callable[..., Awaitable[dict[str, Any]]] = transport.send

    async def recording(operation: str, request: dict[str, Any], **options: Any) -> dict[str, Any]:
        sent.append((operation, request))
        return await send(operation, request, **options)

    monkeypatch.setattr(transport, "send", recording)
    return sent


@pytest.fixture
async def sent(db: dm.Session, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """What ``db`` sends from now on."""
    return _spy(db, monkeypatch)


@pytest.fixture
async def proxied_sent(proxied: dm.Session, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """What the proxied session sends from now on."""
    return _spy(proxied, monkeypatch)
