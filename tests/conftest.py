"""Shared fixtures: one server per kind per session, and a fresh session per test.

DYNAMODM_TEST_SERVERS (comma list, default "moto,dynalite") picks the servers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from uuid import uuid4

import pytest
from servers import ServerHandle, start_dynalite, start_moto

import dynamodm as dm

pytest_plugins = ["pytester"]

STARTERS: dict[str, Callable[[], ServerHandle]] = {
    "moto": start_moto,
    "dynalite": start_dynalite,
}


def _selected_servers() -> list[str]:
    raw = os.environ.get("DYNAMODM_TEST_SERVERS", "moto,dynalite")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - set(STARTERS))
    if unknown or not names:
        raise pytest.UsageError(
            f"DYNAMODM_TEST_SERVERS={raw!r}: expected a comma list of {', '.join(STARTERS)}"
        )
    return list(dict.fromkeys(names))


@pytest.fixture(scope="session", params=_selected_servers())
def server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    handle = STARTERS[request.param]()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(autouse=True)
def _moto_only(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("moto_only")
    callspec = getattr(request.node, "callspec", None)
    if marker is None or callspec is None:
        return
    if callspec.params.get("server") == "dynalite":
        reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
        pytest.skip(reason or "moto only")


@pytest.fixture
async def db(server: ServerHandle) -> AsyncIterator[dm.Session]:
    async with dm.connect(
        endpoint_url=server.endpoint_url,
        region="us-east-1",
        table_prefix=f"t{uuid4().hex[:10]}-",
    ) as session:
        yield session


@pytest.fixture
async def standin() -> AsyncIterator[object]:
    """The stand-in for the real DynamoDB service (tests/standin.py), plain HTTP."""
    from standin import StandIn

    async with StandIn() as service:
        yield service


@pytest.fixture(scope="session")
def standin_ca(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A throw-away CA and a server certificate for the stand-in, made once per run."""
    from standin import ThrowawayCA

    return ThrowawayCA(tmp_path_factory.mktemp("standin-ca"), hosts=("dynamodb.standin.test",))


@pytest.fixture
async def standin_tls(standin_ca: object) -> AsyncIterator[object]:
    """The stand-in serving TLS under ``standin_ca``."""
    from standin import StandIn

    async with StandIn(tls=standin_ca) as service:
        yield service
