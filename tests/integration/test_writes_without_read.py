"""Writes without a read: update_key, insert, and delete returning the old item."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import pytest

import dynamodm as dm

REG = dm.Registry("writes-without-read-tests")


class Post(dm.Model):
    class Meta:
        table = "posts"
        registry = REG

    id: Annotated[str, dm.HashKey]
    title: str = ""
    views: int = 0
    version: Annotated[int, dm.Version] = 0
    updated_at: Annotated[datetime, dm.UpdatedAt]


class Note(dm.Model):
    class Meta:
        table = "notes"
        registry = REG

    id: Annotated[str, dm.HashKey]
    text: str = ""


@pytest.fixture
async def tables(db: dm.Session) -> dm.Session:
    await db.create_tables(*REG.models)
    return db


async def test_update_key_changes_an_existing_item_and_returns_it(tables: dm.Session) -> None:
    post = await Post.create(id="p-1", title="draft")
    updated = await Post.update_key("p-1", title="final")
    assert updated.title == "final" and updated.version == 2
    assert updated.updated_at >= post.updated_at
    assert (await Post.get("p-1")).title == "final"


async def test_update_key_of_a_missing_item_is_not_found(tables: dm.Session) -> None:
    with pytest.raises(dm.NotFound):
        await Post.update_key("nope", title="x")
    assert await Post.get_or_none("nope") is None


async def test_update_key_if_version_conflicts_when_the_version_moved(tables: dm.Session) -> None:
    await Post.create(id="p-2")
    await Post.update_key("p-2", if_version=1, title="second")
    with pytest.raises(dm.VersionConflict):
        await Post.update_key("p-2", if_version=1, title="stale")
    assert (await Post.get("p-2")).title == "second"


async def test_counters_with_touch_false_never_conflict_under_concurrency(
    tables: dm.Session,
) -> None:
    post = await Post.create(id="p-3")
    await asyncio.gather(
        *(Post.update_key("p-3", dm.attr(Post.views).add(1), touch=False) for _ in range(50))
    )
    stored = await Post.get("p-3", consistent=True)
    assert stored.views == 50
    assert stored.version == post.version == 1  # the version and the stamp did not move
    assert stored.updated_at == post.updated_at


async def test_insert_stores_a_built_instance_once(tables: dm.Session) -> None:
    note = Note(id="n-1", text="hello")
    await note.insert()
    assert (await Note.get("n-1")).text == "hello"
    with pytest.raises(dm.AlreadyExists):
        await Note(id="n-1", text="again").insert()
    assert (await Note.get("n-1")).text == "hello"


async def test_delete_returning_gives_the_old_item(tables: dm.Session) -> None:
    await Note(id="n-2", text="bye").save()
    old = await Note.delete_key("n-2", returning=True)
    assert old is not None and old.text == "bye"
    assert await Note.get_or_none("n-2") is None
    assert await Note.delete_key("n-2", returning=True) is None
    post = await Post.create(id="p-4", title="t")
    gone = await post.delete(returning=True)
    assert gone is not None and gone.title == "t"
    versioned = await Post.create(id="p-5", title="v")
    assert (await Post.delete_key("p-5", returning=True)) == versioned
    assert await Note(id="n-3").delete() is None


async def test_update_key_refuses_what_it_cannot_do_without_a_read(tables: dm.Session) -> None:
    with pytest.raises(dm.UsageError, match="if_version needs"):
        await Note.update_key("n-1", if_version=1, text="x")
    with pytest.raises(dm.UsageError, match="at least one"):
        await Note.update_key("n-1")
