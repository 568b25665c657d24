"""Lifecycle hooks in plain calls, batches and transactions: before-hooks can change or stop
a write (nothing sent), after-hooks run once the write is acknowledged."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm

REG = dm.Registry("hook-tests")
LOG: list[tuple[str, str]] = []


class Profile(dm.Model):
    class Meta:
        table = "profiles"
        registry = REG

    id: Annotated[str, dm.HashKey]
    email: str
    visits: int = 0

    @dm.before("create", "save")
    def normalise(self) -> None:
        LOG.append(("before-write", self.id))
        self.email = self.email.strip().lower()

    @dm.before("update", "delete")
    async def refuse_locked(self) -> None:
        LOG.append(("before-change", self.id))
        if self.id.startswith("locked"):
            raise PermissionError(f"{self.id} is locked")

    @dm.after("create", "save", "update", "delete")
    async def acknowledged(self) -> None:
        LOG.append(("after", self.id))

    @dm.after("load")
    def loaded(self) -> None:
        LOG.append(("load", self.id))


class SyncOnly(dm.Model):
    class Meta:
        table = "synconly"
        registry = REG

    id: Annotated[str, dm.HashKey]
    name: str

    @dm.before("save", "delete")
    def upper(self) -> None:
        if self.name == "stop":
            raise ValueError("stopped by hook")
        self.name = self.name.upper()

    @dm.after("save", "delete")
    def done(self) -> None:
        LOG.append(("sync-after", self.id))


@pytest.fixture(autouse=True)
async def tables(db: dm.Session) -> Any:
    LOG.clear()
    await db.create_tables(Profile, SyncOnly)
    yield


async def raw(db: dm.Session, model: type[dm.Model], key: str) -> dict[str, Any] | None:
    answer = await db.client.get_item(
        TableName=db.table_name(model), Key={"id": {"S": key}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = answer.get("Item")
    return item


async def test_create_runs_before_and_after_hooks_in_order(db: dm.Session) -> None:
    profile = await Profile.create(id="p1", email="  Ada@Example.COM ")
    assert profile.email == "ada@example.com"
    assert (await raw(db, Profile, "p1") or {})["email"] == {"S": "ada@example.com"}
    assert LOG == [("before-write", "p1"), ("after", "p1")]


async def test_load_hook_runs_for_every_read(db: dm.Session) -> None:
    await Profile.create(id="p1", email="a@x")
    await Profile.create(id="p2", email="b@x")
    LOG.clear()
    await Profile.get("p1")
    await Profile.scan().all()
    await Profile.batch_get(["p1", "p2"])
    assert sorted(LOG) == sorted([("load", "p1")] * 3 + [("load", "p2")] * 2)


async def test_a_raising_before_hook_sends_nothing(db: dm.Session) -> None:
    locked = await Profile.create(id="locked-1", email="l@x")
    LOG.clear()
    with pytest.raises(PermissionError):
        await locked.update(visits=5)
    with pytest.raises(PermissionError):
        await locked.delete()
    with pytest.raises(PermissionError):
        await Profile.delete_key("locked-1")
    stored = await raw(db, Profile, "locked-1")
    assert stored is not None and stored["visits"] == {"N": "0"}
    assert ("after", "locked-1") not in LOG


async def test_update_and_delete_hooks(db: dm.Session) -> None:
    profile = await Profile.create(id="p1", email="a@x")
    LOG.clear()
    await profile.update(visits=3)
    await profile.delete()
    assert [entry for entry in LOG if entry[0] != "load"] == [
        ("before-change", "p1"),
        ("after", "p1"),
        ("before-change", "p1"),
        ("after", "p1"),
    ]
    assert await raw(db, Profile, "p1") is None


async def test_hooks_in_a_batch(db: dm.Session) -> None:
    async with dm.batch_write() as batch:
        batch.put(SyncOnly(id="s1", name="ann"))
        batch.put(Profile(id="b1", email="  MiXed@X "))
    assert (await raw(db, SyncOnly, "s1") or {})["name"] == {"S": "ANN"}
    assert (await raw(db, Profile, "b1") or {})["email"] == {"S": "mixed@x"}
    assert ("sync-after", "s1") in LOG and ("after", "b1") in LOG
    with pytest.raises(ValueError, match="stopped by hook"):
        async with dm.batch_write() as batch:
            batch.put(SyncOnly(id="s2", name="stop"))
    assert await raw(db, SyncOnly, "s2") is None
    with pytest.raises(dm.UsageError, match="delete hooks"):
        async with dm.batch_write() as batch:
            batch.delete_key(Profile, "b1")


async def test_an_async_before_hook_that_raises_in_a_batch_writes_nothing_of_its_request(
    db: dm.Session,
) -> None:
    locked = await Profile.create(id="locked-2", email="l@x")
    with pytest.raises(dm.BatchWriteError) as failure:
        async with dm.batch_write() as batch:
            batch.delete(locked)
    assert failure.value.items == [("delete", locked)]
    assert isinstance(failure.value.__cause__, PermissionError)
    assert await raw(db, Profile, "locked-2") is not None


@pytest.mark.moto_only(reason="dynalite has no transactions")
async def test_hooks_in_a_transaction(db: dm.Session) -> None:
    keep = await Profile.create(id="p1", email="a@x")
    LOG.clear()
    async with dm.transaction() as tx:
        tx.create(Profile(id="t1", email=" T@X "))
        tx.update(keep, visits=7)
    assert (await raw(db, Profile, "t1") or {})["email"] == {"S": "t@x"}
    assert LOG.index(("after", "t1")) > LOG.index(("before-change", "p1"))
    assert ("after", "p1") in LOG

    locked = await Profile.create(id="locked-3", email="l@x")
    with pytest.raises(PermissionError):
        async with dm.transaction() as tx:
            tx.create(Profile(id="t2", email="x@x"))
            tx.delete(locked)  # its async before-hook raises at commit: nothing is sent
    assert await raw(db, Profile, "t2") is None
    assert await raw(db, Profile, "locked-3") is not None


def test_unknown_events_and_async_load_hooks_are_declaration_errors() -> None:
    with pytest.raises(dm.InvalidModel, match="hooks run on"):
        dm.before("insert")  # type: ignore[arg-type]
    with pytest.raises(dm.InvalidModel, match="after-load hook must be a plain"):

        class Bad(dm.Model):
            class Meta:
                table = "bad-hooks"
                registry = dm.Registry("bad")

            id: Annotated[str, dm.HashKey] = Field(default="x")

            @dm.after("load")
            async def slow(self) -> None:
                return None
