"""Schema versions and migrations: older items upgraded on every read path, the current
version stored on write, and a migrator that rewrites a table while writers race it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from migrate_models import Person, split_name

import dynamodm as dm
from dynamodm.migrate import Migrator
from dynamodm.query import Query


async def _put_raw(db: dm.Session, item: dict[str, Any]) -> None:
    await db.client.put_item(TableName=db.table_name(Person), Item=item)


@pytest.fixture
async def people(db: dm.Session) -> dm.Session:
    await db.create_tables(Person)
    # version 1: one name, no _sv; version 2: first/last and a role, _sv = 2
    await _put_raw(db, {"id": {"S": "p1"}, "name": {"S": "Ada Lovelace"}})
    await _put_raw(
        db,
        {
            "id": {"S": "p2"},
            "first": {"S": "Alan"},
            "last": {"S": "Turing"},
            "role": {"S": "admin"},
            "_sv": {"N": "2"},
        },
    )
    await Person(id="p3", first="Grace", last="Hopper", tags=["navy"]).save()
    return db


async def _raw(db: dm.Session, key: str) -> dict[str, Any]:
    answer = await db.client.get_item(
        TableName=db.table_name(Person), Key={"id": {"S": key}}, ConsistentRead=True
    )
    item: dict[str, Any] = answer["Item"]
    return item


async def test_older_items_are_upgraded_on_every_read(people: dm.Session) -> None:
    ada = await Person.get("p1")
    assert (ada.first, ada.last, ada.tags) == ("Ada", "Lovelace", [])
    alan = await Person.get("p2")
    assert (alan.first, alan.last, alan.tags) == ("Alan", "Turing", ["admin"])
    scanned = {p.id: p.first for p in await Person.scan().all()}
    assert scanned == {"p1": "Ada", "p2": "Alan", "p3": "Grace"}
    got = await Person.batch_get(["p1", "p2"])
    assert [p.last for p in got] == ["Lovelace", "Turing"]
    # Reading changes nothing stored.
    assert "name" in await _raw(people, "p1")


async def test_writes_store_the_current_version(people: dm.Session) -> None:
    assert (await _raw(people, "p3"))["_sv"] == {"N": "3"}
    ada = await Person.get("p1")
    ada.tags = ["math"]
    await ada.save()  # a migrated instance: the whole item, in the new shape
    stored = await _raw(people, "p1")
    assert stored["_sv"] == {"N": "3"} and "name" not in stored
    assert stored["first"] == {"S": "Ada"} and stored["tags"] == {"L": [{"S": "math"}]}


async def test_a_migrated_save_loses_to_a_newer_write(people: dm.Session) -> None:
    stale = await Person.get("p1")
    fresh = await Person.get("p1")
    fresh.first = "Augusta"
    await fresh.save()
    stale.last = "King"
    with pytest.raises(dm.ConditionFailed):
        await stale.save()
    assert (await Person.get("p1")).first == "Augusta"


async def test_the_migrator_rewrites_older_items_and_a_racing_writer_wins(
    people: dm.Session,
) -> None:
    for i in range(40):
        await _put_raw(people, {"id": {"S": f"old{i:02d}"}, "name": {"S": f"N{i} Old"}})
    migrator = Migrator(Person, segments=3)

    async def racer() -> None:
        for i in range(0, 40, 4):
            for _ in range(3):  # a writer that lost to the migrator reads again
                person = await Person.get(f"old{i:02d}")
                person.first = "Racer"
                try:
                    await person.save()
                    break
                except dm.ConditionFailed:
                    continue

    report, _ = await asyncio.gather(migrator.run(), racer())
    assert report.scanned == 43 and report.failed == []
    assert report.migrated + report.lost_race + report.skipped == 43
    for i in range(40):
        stored = await _raw(people, f"old{i:02d}")
        assert stored["_sv"] == {"N": "3"} and "name" not in stored
        if i % 4 == 0:
            assert stored["first"] == {"S": "Racer"}  # never overwritten by the migrator
    again = await Migrator(Person).run()
    assert again.migrated == 0 and again.skipped == 43


async def test_an_interrupted_migration_resumes_from_its_checkpoint(
    people: dm.Session, tmp_path: Path
) -> None:
    for i in range(60):
        await _put_raw(people, {"id": {"S": f"x{i:02d}"}, "name": {"S": "A B"}})
    checkpoint = tmp_path / "people.ckpt"
    first = Migrator(Person, checkpoint=checkpoint)
    pages = 0

    class Stopped(Exception):
        """As if the process were stopped after its first page."""

    def stop_after_one_page(_: object) -> None:
        nonlocal pages
        pages += 1
        if pages == 1:
            raise Stopped

    first.on_progress = stop_after_one_page
    # One page is the whole table on these servers; force small pages through Limit.
    original = Query._base

    def small_pages(self: Query[Any], session: Any) -> dict[str, Any]:
        return {**original(self, session), "Limit": 10}

    Query._base = small_pages  # type: ignore[method-assign]
    try:
        with pytest.raises(Stopped):
            await first.run()
        assert checkpoint.exists() and 0 < first.report.migrated < 63
        second = Migrator(Person, checkpoint=checkpoint)
        report = await second.run()
    finally:
        Query._base = original  # type: ignore[method-assign]
    assert first.report.migrated + report.migrated == 62  # 60 + p1 + p2
    for i in range(60):
        assert (await _raw(people, f"x{i:02d}"))["_sv"] == {"N": "3"}


def test_migrations_are_checked_when_declared() -> None:
    with pytest.raises(dm.InvalidModel, match="outside 1 to 2"):
        dm.migration(Person, from_version=3)
    with pytest.raises(dm.InvalidModel, match="two migrations"):
        dm.migration(Person, from_version=1)(split_name)
