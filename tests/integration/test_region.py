"""The region a session signs for, on both transports, against the stand-in service
(tests/standin.py) in eu-west-1: it verifies every signature and refuses a request
scoped to another region, as DynamoDB does.

Precedence: ``region=``, the region of a ``boto_session`` passed in, ``AWS_REGION``,
``AWS_DEFAULT_REGION``, the profile."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from standin import ACCESS_KEY, SECRET_KEY, StandIn

import dynamodm as dm

TRANSPORTS = ["http", "botocore"]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("AWS_") or name.startswith("DYNAMODB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield monkeypatch


@pytest.fixture
async def service() -> AsyncIterator[StandIn]:
    async with StandIn(region="eu-west-1") as running:
        yield running


def scopes(service: StandIn) -> set[str]:
    """The regions the requests received were signed for (their credential scope)."""
    found = set()
    for request in service.requests:
        credential = (request.header("Authorization") or "").split("Credential=")[1]
        found.add(credential.split("/")[2])
    return found


async def list_tables(service: StandIn, transport: Any, **connect: Any) -> dm.Session:
    async with dm.connect(
        endpoint_url=service.endpoint_url, transport=transport, table_prefix="", **connect
    ) as db:
        assert await db.list_tables() == []
        await db.client.list_tables()  # db.client signs for the same region
    return db


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_boto_session_region_wins_over_aws_region(
    aws_env: pytest.MonkeyPatch, service: StandIn, transport: str
) -> None:
    aws_env.setenv("AWS_REGION", "us-east-1")
    boto_session = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="eu-west-1"
    )
    db = await list_tables(service, transport, boto_session=boto_session)
    assert db.region == "eu-west-1"
    assert {r.status for r in service.requests} == {200}
    assert scopes(service) == {"eu-west-1"}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_region_argument_wins_over_the_boto_session(
    aws_env: pytest.MonkeyPatch, service: StandIn, transport: str
) -> None:
    boto_session = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
    )
    db = await list_tables(service, transport, boto_session=boto_session, region="eu-west-1")
    assert db.region == "eu-west-1"
    assert scopes(service) == {"eu-west-1"}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "environment",
    [
        {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"},
        {"AWS_DEFAULT_REGION": "eu-west-1"},
        {},  # the profile's region
        {"AWS_PROFILE": "other"},  # the named profile's region; the key still from the env
    ],
)
async def test_the_environment_and_the_profile_give_the_region(
    aws_env: pytest.MonkeyPatch,
    service: StandIn,
    tmp_path: Path,
    transport: str,
    environment: dict[str, str],
) -> None:
    (tmp_path / "config").write_text(
        "[default]\nregion = eu-west-1\n\n[profile other]\nregion = eu-west-1\n"
    )
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    for name, value in environment.items():
        aws_env.setenv(name, value)
    db = await list_tables(service, transport)
    assert db.region == "eu-west-1"
    assert {r.status for r in service.requests} == {200}
    assert scopes(service) == {"eu-west-1"}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_request_signed_for_another_region_is_refused(
    aws_env: pytest.MonkeyPatch, service: StandIn, transport: str
) -> None:
    """The stand-in's check is real: a session in us-east-1 is refused in eu-west-1."""
    aws_env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    async with dm.connect(
        endpoint_url=service.endpoint_url, transport=transport, region="us-east-1"
    ) as db:
        with pytest.raises(dm.ConfigurationError, match="refused the credentials"):
            await db.list_tables()
    assert {r.code for r in service.requests} == {"InvalidSignatureException"}
    assert scopes(service) == {"us-east-1"}
