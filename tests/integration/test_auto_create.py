"""Tables created on first use: only when the service answers that the table is missing,
for single calls, batches and queries, and never by a DescribeTable before each call."""

from __future__ import annotations

from typing import Annotated
from uuid import uuid4

import pytest

import dynamodm as dm
from tests.servers import ServerHandle

REG = dm.Registry("auto-create-tests")


class Page(dm.Model):
    class Meta:
        table = "pages"
        registry = REG
        indexes = (dm.GlobalIndex("BySpace", hash_key="space"),)

    id: Annotated[str, dm.HashKey]
    space: str = "main"


class Attachment(dm.Model):
    class Meta:
        table = "attachments"
        registry = REG

    id: Annotated[str, dm.HashKey]


def _connect(server: ServerHandle, *, auto: bool) -> dm.Session:
    return dm.connect(
        endpoint_url=server.endpoint_url,
        region="us-east-1",
        table_prefix=f"a{uuid4().hex[:10]}-",
        auto_create_tables=auto,
    )


async def test_a_put_creates_the_missing_table_once(server: ServerHandle) -> None:
    async with _connect(server, auto=True) as db:
        operations: list[str] = []
        db.add_listener(lambda event: operations.append(event.operation))
        await Page(id="p-1").save()
        assert (await Page.get("p-1")).space == "main"
        assert await db.list_tables() == [db.table_name(Page)]
        assert operations.count("CreateTable") == 1
        assert "DescribeTable" not in operations[: operations.index("CreateTable")]
        await Page(id="p-2").save()
        assert operations.count("CreateTable") == 1  # no table check before later calls
        # The index came with the table.
        assert [p.id for p in await Page.query("main", index="BySpace").all()] in (
            ["p-1", "p-2"],
            ["p-2", "p-1"],
        )
        await db.delete_tables(Page)


async def test_a_batch_and_a_query_create_their_tables(server: ServerHandle) -> None:
    async with _connect(server, auto=True) as db:
        assert await Attachment.query("a-1").all() == []
        async with dm.batch_write() as batch:
            batch.put(Attachment(id="a-2"))
        assert [a.id for a in await Attachment.batch_get(["a-2"])] == ["a-2"]
        await db.delete_tables(Attachment)


async def test_without_auto_create_a_missing_table_is_an_error(server: ServerHandle) -> None:
    async with _connect(server, auto=False) as db:
        with pytest.raises(dm.TableNotFound):
            await Page(id="p-1").save()
        assert await db.list_tables() == []
