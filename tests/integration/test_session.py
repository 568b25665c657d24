"""Sessions against a real local server: connect() defaults, which session a model call uses,
event loops, unreachable endpoints and the error codes the library keeps."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from typing import Annotated, Any
from uuid import uuid4

import pytest
from servers import ServerHandle, free_port

import dynamodm as dm
from dynamodm.errors import ServiceError

REG = dm.Registry("session-tests")
FAST_FAIL = dm.RetryPolicy(max_attempts=2, base_delay=0.001)


class Item(dm.Model):
    class Meta:
        table = "things"
        registry = REG

    id: Annotated[str, dm.HashKey]
    text: str = ""


def prefix() -> str:
    return f"s{uuid4().hex[:10]}-"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[pytest.MonkeyPatch]:
    """No AWS or dynamodm settings from the machine: no keys, profile, config or region."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "DYNAMODB_ENDPOINT_URL",
        "DYNAMODB_ENDPOINT",
        "DYNAMODB_TABLE_PREFIX",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield monkeypatch


async def stored_text(session: dm.Session, item_id: str) -> str | None:
    """The text of an item as stored in this session's table, read around the model."""
    response = await session.client.get_item(
        TableName=session.table_name(Item), Key={"id": {"S": item_id}}, ConsistentRead=True
    )
    item = response.get("Item")
    return None if item is None else str(item["text"]["S"])


async def in_fresh_context(coro: Any) -> Any:
    """Run a coroutine in a task that sees no session in its context (like a request handler
    started by a server outside the lifespan's context)."""
    return await asyncio.create_task(coro, context=contextvars.Context())


# ---------------------------------------------------------------- connect() defaults


async def test_connect_reads_endpoint_prefix_and_region_from_the_environment(
    db: dm.Session, server: ServerHandle, clean_env: pytest.MonkeyPatch
) -> None:
    table_prefix = prefix()
    clean_env.setenv("DYNAMODB_ENDPOINT_URL", server.endpoint_url)
    clean_env.setenv("DYNAMODB_TABLE_PREFIX", table_prefix)
    clean_env.setenv("AWS_REGION", "eu-west-1")

    async with dm.connect() as session:
        assert isinstance(session, dm.Session)
        assert session.endpoint_url == server.endpoint_url
        assert session.table_prefix == table_prefix
        assert session.region == "eu-west-1"
        assert session.client.meta.region_name == "eu-west-1"
        await session.create_tables(Item)
        await Item.create(id="i-1", text="env")
        assert await session.list_tables() == [table_prefix + "things"]
        assert await stored_text(session, "i-1") == "env"


async def test_connect_falls_back_to_the_secondary_environment_names(
    db: dm.Session, server: ServerHandle, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("DYNAMODB_ENDPOINT", server.endpoint_url)
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-central-1")

    async with dm.connect() as session:
        assert session.endpoint_url == server.endpoint_url
        assert session.region == "eu-central-1"
        assert session.table_prefix == ""
        assert isinstance(await session.list_tables(), list)


async def test_connect_arguments_win_over_the_environment(
    db: dm.Session, server: ServerHandle, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:1")
    clean_env.setenv("DYNAMODB_TABLE_PREFIX", "from-env-")
    clean_env.setenv("AWS_REGION", "eu-west-1")

    async with dm.connect(
        endpoint_url=server.endpoint_url, region="us-west-2", table_prefix=""
    ) as session:
        assert session.endpoint_url == server.endpoint_url
        assert session.region == "us-west-2"
        assert session.table_prefix == ""
        assert session.table_name(Item) == "things"
        assert isinstance(await session.list_tables(), list)


@pytest.mark.parametrize("transport", ["http", "botocore"])
async def test_loopback_endpoint_without_credentials_uses_dummy_ones(
    db: dm.Session, server: ServerHandle, clean_env: pytest.MonkeyPatch, transport: Any
) -> None:
    authorizations: list[str] = []

    def record(request: Any, **_: Any) -> None:
        authorizations.append(request.headers["Authorization"].decode())

    async with dm.connect(
        endpoint_url=server.endpoint_url, table_prefix=prefix(), transport=transport
    ) as session:
        assert session.region == "us-east-1"
        # db.client signs with the session's credentials, whichever transport sends model calls
        session.client.meta.events.register("before-send.dynamodb.*", record)
        await session.create_tables(Item)
        await Item.create(id="i-1")
        assert (await Item.get("i-1", consistent=True)).id == "i-1"
        await session.client.describe_table(TableName=session.table_name(Item))

    assert authorizations
    assert all("Credential=dynamodm-local/" in a for a in authorizations)
    assert all("/us-east-1/dynamodb/" in a for a in authorizations)
    if transport == "botocore":
        assert len(authorizations) > 1  # the model calls went through the same client


async def test_localhost_by_name_counts_as_loopback(
    db: dm.Session, server: ServerHandle, clean_env: pytest.MonkeyPatch
) -> None:
    endpoint = server.endpoint_url.replace("127.0.0.1", "localhost")

    async with dm.connect(endpoint_url=endpoint) as session:
        assert session.region == "us-east-1"
        assert isinstance(await session.list_tables(), list)


async def test_remote_endpoint_without_a_region_is_a_configuration_error(
    db: dm.Session, clean_env: pytest.MonkeyPatch
) -> None:
    session = dm.connect(endpoint_url="https://dynamodb.example.com")

    with pytest.raises(dm.ConfigurationError, match="region"):
        await session.open()
    assert not session.is_open


async def test_opening_an_open_session_again_is_a_usage_error(db: dm.Session) -> None:
    with pytest.raises(dm.UsageError):
        await db.open()
    assert db.is_open


# ---------------------------------------------------------------- which session


async def test_model_calls_inside_the_block_need_no_session_argument(db: dm.Session) -> None:
    await db.create_tables(Item)

    await Item.create(id="i-1", text="implicit")

    assert await stored_text(db, "i-1") == "implicit"
    assert (await Item.get("i-1", consistent=True)).text == "implicit"


async def test_the_innermost_open_session_is_used_then_the_outer_one_again(
    db: dm.Session, server: ServerHandle
) -> None:
    await db.create_tables(Item)
    async with dm.connect(
        endpoint_url=server.endpoint_url, region="us-east-1", table_prefix=prefix()
    ) as inner:
        await inner.create_tables(Item)
        await Item.create(id="i-1", text="inner")
        assert await stored_text(inner, "i-1") == "inner"
        assert await stored_text(db, "i-1") is None

    await Item.create(id="i-1", text="outer")
    assert await stored_text(db, "i-1") == "outer"


async def test_an_explicit_session_wins_over_the_current_one(
    db: dm.Session, server: ServerHandle
) -> None:
    await db.create_tables(Item)
    async with dm.connect(
        endpoint_url=server.endpoint_url, region="us-east-1", table_prefix=prefix()
    ) as inner:
        await inner.create_tables(Item)

        created = await Item.create(id="i-1", text="outer", session=db)
        await created.update(text="outer, updated", session=db)
        got = await Item.get("i-1", consistent=True, session=db)

        assert got.text == "outer, updated"
        assert await Item.get_or_none("i-1", consistent=True) is None
        assert await stored_text(inner, "i-1") is None
        assert await stored_text(db, "i-1") == "outer, updated"


async def test_another_task_uses_the_session_a_lifespan_opened(server: ServerHandle) -> None:
    """A FastAPI-style lifespan opens the session in one task; handlers run in others."""
    opened = asyncio.Event()
    done = asyncio.Event()
    table_prefix = prefix()

    async def lifespan() -> None:
        async with dm.connect(
            endpoint_url=server.endpoint_url, region="us-east-1", table_prefix=table_prefix
        ) as session:
            await session.create_tables(Item)
            opened.set()
            await done.wait()

    async def handler(item_id: str) -> str:
        await Item.create(id=item_id, text="from a handler")
        return (await Item.get(item_id, consistent=True)).text

    app = asyncio.create_task(lifespan(), context=contextvars.Context())
    await opened.wait()
    try:
        texts = await asyncio.gather(
            in_fresh_context(handler("i-1")), in_fresh_context(handler("i-2"))
        )
    finally:
        done.set()
        await app

    assert texts == ["from a handler", "from a handler"]
    with pytest.raises(dm.ConfigurationError, match=r"dm\.connect"):
        await in_fresh_context(Item.get("i-1"))


async def test_the_most_recently_opened_session_still_open_is_the_default(
    db: dm.Session, server: ServerHandle
) -> None:
    await db.create_tables(Item)
    older = await dm.connect(
        endpoint_url=server.endpoint_url, region="us-east-1", table_prefix=prefix()
    ).open()
    newer = await dm.connect(
        endpoint_url=server.endpoint_url, region="us-east-1", table_prefix=prefix()
    ).open()
    try:
        await older.create_tables(Item)
        await newer.create_tables(Item)

        await in_fresh_context(Item.create(id="i-1", text="to the newest"))
        assert await stored_text(newer, "i-1") == "to the newest"
        assert await stored_text(older, "i-1") is None

        await newer.close()
        await in_fresh_context(Item.create(id="i-1", text="to the older"))
        assert await stored_text(older, "i-1") == "to the older"
        assert await stored_text(db, "i-1") is None
    finally:
        await newer.close()
        await older.close()


async def test_model_calls_after_every_session_closed_raise_configuration_error(
    db: dm.Session,
) -> None:
    await db.create_tables(Item)
    await db.close()

    with pytest.raises(dm.ConfigurationError, match=r"dm\.connect") as caught:
        await Item.get("i-1")
    assert "session=" in str(caught.value)
    with pytest.raises(dm.ConfigurationError, match="closed"):
        await Item.get("i-1", session=db)
    with pytest.raises(dm.ConfigurationError):
        _ = db.client


async def test_a_session_used_from_another_event_loop_is_a_configuration_error(
    db: dm.Session,
) -> None:
    await db.create_tables(Item)
    await Item.create(id="i-1")

    def elsewhere() -> list[str]:
        async def calls() -> list[str]:
            messages = []
            for call in (
                lambda: Item.get("i-1", session=db),
                lambda: Item.get("i-1"),
                lambda: db.list_tables(),
            ):
                try:
                    await call()
                except dm.ConfigurationError as error:
                    messages.append(str(error))
            return messages

        return asyncio.run(calls())

    messages = await asyncio.to_thread(elsewhere)

    assert len(messages) == 3
    assert all("event loop" in m for m in messages)
    assert (await Item.get("i-1", consistent=True)).id == "i-1"  # still fine in its own loop


# ---------------------------------------------------------------- failures and codes


@pytest.mark.parametrize("transport", ["http", "botocore"])
async def test_a_closed_port_raises_connection_failed(db: dm.Session, transport: Any) -> None:
    await db.create_tables(Item)
    endpoint = f"http://127.0.0.1:{free_port()}"

    async with dm.connect(
        endpoint_url=endpoint, region="us-east-1", retry=FAST_FAIL, transport=transport
    ) as broken:
        with pytest.raises(dm.ConnectionFailed) as caught:
            await Item.get("i-1")
        assert "attempts" in str(caught.value)
        with pytest.raises(dm.ConnectionFailed):
            await broken.list_tables()
        # the request never left, so even a non-idempotent write is a plain failure
        with pytest.raises(dm.ConnectionFailed):
            await Item.create(id="i-1")
        with pytest.raises(dm.ConnectionFailed):
            await Item.create(id="i-1", session=broken)

    await Item.create(id="i-1", text="the other session still works")
    assert await stored_text(db, "i-1") == "the other session still works"


async def test_errors_keep_the_service_code_and_message(db: dm.Session) -> None:
    await db.create_tables(Item)
    await Item.create(id="i-1")

    with pytest.raises(dm.AlreadyExists) as exists:
        await Item.create(id="i-1")
    with pytest.raises(dm.TableNotFound) as missing:
        await db.call(
            "GetItem",
            {"TableName": db.table_prefix + "nope", "Key": {"id": {"S": "x"}}},
            idempotent=True,
        )
    with pytest.raises(ServiceError) as invalid:
        await db.call("GetItem", {"TableName": db.table_name(Item), "Key": {}}, idempotent=True)

    assert exists.value.code == "ConditionalCheckFailedException"
    assert missing.value.code == "ResourceNotFoundException"
    assert missing.value.service_message
    assert isinstance(invalid.value, dm.DynamoDMError)
    assert invalid.value.code == "ValidationException"
    assert invalid.value.service_message
    assert "ValidationException" in str(invalid.value)
