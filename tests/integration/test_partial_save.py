"""save() of a read instance sends only what changed, so it never undoes another
writer's change to a field it did not touch (the race a whole-item PutItem loses)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pytest
from pydantic import BaseModel

import dynamodm as dm

REG = dm.Registry("partial-save-tests")


class Address(BaseModel):
    city: str
    street: str = ""


class Profile(dm.Model):
    class Meta:
        table = "profiles"
        registry = REG

    id: Annotated[str, dm.HashKey]
    email: str
    name: str = ""
    visits: int = 0
    nickname: str | None = None
    address: Address | None = None
    version: Annotated[int, dm.Version] = 0
    updated_at: Annotated[datetime, dm.UpdatedAt]


class Account(dm.Model):
    class Meta:
        table = "accounts"
        registry = REG
        unique = ("email",)

    id: Annotated[str, dm.HashKey]
    email: str
    name: str = ""
    version: Annotated[int, dm.Version] = 0


class Plain(dm.Model):
    class Meta:
        table = "plain"
        registry = REG

    id: Annotated[str, dm.HashKey]
    name: str = ""
    visits: int = 0
    tags: set[str] = set()


@pytest.fixture
async def tables(db: dm.Session) -> dm.Session:
    await db.create_tables(*REG.models)
    return db


def _operations(db: dm.Session) -> list[str]:
    seen: list[str] = []
    db.add_listener(lambda event: seen.append(event.operation))
    return seen


async def test_a_save_leaves_another_writers_field_alone(tables: dm.Session) -> None:
    await Plain(id="p", name="ada").save()
    mine = await Plain.get("p")
    await Plain.update_key("p", dm.attr(Plain.visits).add(5))  # another writer
    mine.name = "ada lovelace"
    await mine.save()
    stored = await Plain.get("p", consistent=True)
    assert (stored.name, stored.visits) == ("ada lovelace", 5)


async def test_an_unchanged_instance_sends_nothing(tables: dm.Session) -> None:
    await Plain(id="q", name="x", tags={"a"}).save()
    loaded = await Plain.get("q")
    sent = _operations(tables)
    await loaded.save()
    assert sent == []
    loaded.tags = {"a", "b"}
    await loaded.save()
    assert sent == ["UpdateItem"]
    await loaded.save()  # what was just written is what is stored
    assert sent == ["UpdateItem"]
    assert (await Plain.get("q")).tags == {"a", "b"}


async def test_replace_and_built_instances_send_the_whole_item(tables: dm.Session) -> None:
    await Plain(id="r", name="one").save()
    loaded = await Plain.get("r")
    await Plain.update_key("r", visits=9)
    sent = _operations(tables)
    loaded.name = "two"
    await loaded.save(replace=True)
    assert sent == ["PutItem"]
    assert (await Plain.get("r")).visits == 0  # the whole item, as asked
    await Plain(id="r", name="three").save()
    assert sent == ["PutItem", "GetItem", "PutItem"]


async def test_removing_a_field_and_nested_changes(tables: dm.Session) -> None:
    profile = await Profile.create(
        id="a", email="a@x.org", nickname="al", address=Address(city="Paris")
    )
    version = profile.version
    stamped = profile.updated_at
    sent = _operations(tables)
    await profile.save()
    assert sent == [] and profile.version == version and profile.updated_at == stamped
    profile.nickname = None
    assert profile.address is not None
    profile.address.street = "rue de Rivoli"
    await profile.save()
    assert sent == ["UpdateItem"]
    stored = await Profile.get("a", consistent=True)
    assert stored.nickname is None and stored.address == Address(
        city="Paris", street="rue de Rivoli"
    )
    assert stored.version == version + 1 and stored.updated_at > stamped


@pytest.mark.moto_only(reason="dynalite has no transactions (unique guards)")
async def test_a_changed_unique_value_moves_its_guard_and_a_stale_version_conflicts(
    tables: dm.Session,
) -> None:
    profile = await Account.create(id="b", email="b@x.org")
    profile.email = "b2@x.org"
    await profile.save()
    assert (await Account.get_by(email="b2@x.org")).id == "b"
    await Account.create(id="c", email="b@x.org")  # the old value was released
    stale = await Account.get("b")
    await Account.update_key("b", name="moved on")
    stale.name = "stale"
    with pytest.raises(dm.VersionConflict):
        await stale.save()
    assert (await Account.get("b", consistent=True)).name == "moved on"
