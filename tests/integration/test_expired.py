"""Items past their TTL are hidden on every read (DynamoDB deletes them up to days late)
and treated as absent by writes; include_expired=True shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import pytest

import dynamodm as dm

REG = dm.Registry("expired-tests")
PAST = datetime(2020, 1, 1, tzinfo=UTC)


class Session_(dm.Model):
    class Meta:
        table = "logins"
        registry = REG

    user: Annotated[str, dm.HashKey]
    token: Annotated[str, dm.RangeKey]
    expires_at: Annotated[datetime | None, dm.TTL] = None
    hits: int = 0


@pytest.fixture
async def stored(db: dm.Session) -> dm.Session:
    await db.create_tables(Session_)
    future = datetime.now(UTC) + timedelta(days=1)
    await Session_(user="u", token="old", expires_at=PAST).save()
    await Session_(user="u", token="live", expires_at=future).save()
    await Session_(user="u", token="forever").save()
    return db


async def test_reads_hide_expired_items(stored: dm.Session) -> None:
    with pytest.raises(dm.NotFound):
        await Session_.get("u", "old")
    assert await Session_.get_or_none("u", "old") is None
    assert (await Session_.get("u", "old", include_expired=True)).token == "old"
    tokens = [s.token for s in await Session_.query("u").all()]
    assert tokens == ["forever", "live"]
    assert await Session_.query("u").count() == 2
    assert len(await Session_.scan().all()) == 2
    assert len(await Session_.query("u", include_expired=True).all()) == 3
    page = await Session_.query("u").page(size=5)
    assert [s.token for s in page.items] == ["forever", "live"]
    keys = [("u", "old"), ("u", "live")]
    assert [s.token for s in await Session_.batch_get(keys)] == ["live"]
    assert len(await Session_.batch_get(keys, include_expired=True)) == 2


async def test_writes_treat_an_expired_item_as_absent(stored: dm.Session) -> None:
    again = await Session_.create(user="u", token="old", hits=1)
    assert again.hits == 1 and again.expires_at is None
    await Session_(user="u", token="gone", expires_at=PAST).save()
    with pytest.raises(dm.NotFound):
        await Session_.update_key(("u", "gone"), hits=5)
    stale = await Session_.get("u", "gone", include_expired=True)
    with pytest.raises(dm.NotFound):
        await stale.update(hits=5)
    assert (await Session_.get("u", "gone", include_expired=True)).hits == 0


class Owner(dm.Model):
    class Meta:
        table = "shared"
        registry = REG
        entity = "OWNER"
        hash_key = dm.Template("PK", "OWNER#{owner_id}")
        range_key = dm.Template("SK", "OWNER#{owner_id}")

    owner_id: str


class Lease(dm.Model):
    class Meta:
        table = "shared"
        registry = REG
        entity = "LEASE"
        hash_key = dm.Template("PK", "OWNER#{owner_id}")
        range_key = dm.Template("SK", "LEASE#{lease_id}")

    owner_id: str
    lease_id: str
    ends: Annotated[datetime | None, dm.TTL] = None


async def test_collections_hide_expired_items(db: dm.Session) -> None:
    await db.create_tables(Owner, Lease)
    await Owner(owner_id="o").save()
    await Lease(owner_id="o", lease_id="old", ends=PAST).save()
    await Lease(owner_id="o", lease_id="new").save()
    collection = dm.Collection(Owner, Lease)
    shown = await collection.query(owner_id="o").all()
    assert sorted(type(x).__name__ + getattr(x, "lease_id", "") for x in shown) == [
        "Leasenew",
        "Owner",
    ]
    assert len(await collection.query(owner_id="o", include_expired=True).all()) == 3
