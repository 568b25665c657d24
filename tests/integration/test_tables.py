"""Tables through a real local server: create, describe, list, delete, prefix, billing, TTL."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm

REG = dm.Registry("tables-tests")


class Content(dm.Model):
    class Meta:
        table = "content"
        registry = REG
        indexes = (
            dm.GlobalIndex("OwnerIndex", hash_key="owner", range_key="created_at"),
            dm.GlobalIndex("StatusIndex", hash_key="status", projection="KEYS_ONLY"),
            dm.GlobalIndex("RankIndex", hash_key="rank", projection=("title", "owner")),
            dm.GlobalIndex("FeaturedIndex", hash_key="featured"),
        )

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    owner: str
    status: str = "draft"
    title: str = Field(default="", alias="Title")
    rank: int | None = None
    featured: bool | None = None
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")


class Message(dm.Model):
    class Meta:
        table = "messages"
        registry = REG
        indexes = (
            dm.LocalIndex("ByScore", range_key="score"),
            dm.LocalIndex("BySender", range_key="sender", projection="KEYS_ONLY"),
        )

    room: Annotated[str, dm.HashKey]
    sent_at: Annotated[datetime, dm.RangeKey] = Field(alias="sentAt")
    score: int = 0
    sender: str = "anonymous"
    body: str = ""


class Counter(dm.Model):
    class Meta:
        table = "counters"
        registry = REG
        billing = dm.Provisioned(read=3, write=2)
        indexes = (dm.GlobalIndex("ByKind", hash_key="kind", read=5, write=4),)

    name: Annotated[str, dm.HashKey]
    kind: str = "plain"
    value: int = 0


class Session(dm.Model):
    class Meta:
        table = "sessions"
        registry = REG

    token: Annotated[str, dm.HashKey]
    expires_at: Annotated[datetime | None, dm.TTL] = Field(default=None, alias="expiresAt")


class Event(dm.Model):
    class Meta:
        table = "events"
        registry = REG
        stream = "NEW_AND_OLD_IMAGES"

    id: Annotated[str, dm.HashKey]


class Athlete(dm.Model):
    class Meta:
        table = "shared"
        registry = REG
        indexes = (dm.GlobalIndex("ByName", hash_key="name"),)

    pk: Annotated[str, dm.HashKey] = Field(alias="PK")
    name: str = ""


class Workout(dm.Model):
    class Meta:
        table = "shared"
        registry = REG
        indexes = (dm.GlobalIndex("ByDay", hash_key="day"),)

    pk: Annotated[str, dm.HashKey] = Field(alias="PK")
    day: str = ""


async def describe(db: dm.Session, model: type[dm.Model]) -> dict[str, Any]:
    response = await db.client.describe_table(TableName=db.table_name(model))
    table: dict[str, Any] = response["Table"]
    return table


def by_name(indexes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {index["IndexName"]: index for index in indexes}


async def test_create_tables_is_idempotent(db: dm.Session) -> None:
    first = await db.create_tables(Content, Message)
    second = await db.create_tables(Content, Message)

    expected = {db.table_prefix + "content", db.table_prefix + "messages"}
    assert set(first) == expected
    assert set(second) == expected
    assert sorted(await db.list_tables()) == sorted(expected)
    assert (await db.describe_table(Content)).status == "ACTIVE"


async def test_create_tables_creates_global_indexes_with_their_projections(
    db: dm.Session,
) -> None:
    await db.create_tables(Content)

    table = await describe(db, Content)
    gsis = by_name(table["GlobalSecondaryIndexes"])
    assert set(gsis) == {"OwnerIndex", "StatusIndex", "RankIndex", "FeaturedIndex"}
    assert gsis["OwnerIndex"]["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "createdAt", "KeyType": "RANGE"},
    ]
    assert gsis["OwnerIndex"]["Projection"] == {"ProjectionType": "ALL"}
    assert gsis["StatusIndex"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert gsis["RankIndex"]["Projection"]["ProjectionType"] == "INCLUDE"
    assert sorted(gsis["RankIndex"]["Projection"]["NonKeyAttributes"]) == ["Title", "owner"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


async def test_key_attributes_are_defined_with_their_scalar_types(db: dm.Session) -> None:
    await db.create_tables(Content, Message)

    content = await describe(db, Content)
    message = await describe(db, Message)

    assert {d["AttributeName"]: d["AttributeType"] for d in content["AttributeDefinitions"]} == {
        "id": "S",
        "owner": "S",
        "createdAt": "S",
        "status": "S",
        "rank": "N",
        "featured": "N",
    }
    assert {d["AttributeName"]: d["AttributeType"] for d in message["AttributeDefinitions"]} == {
        "room": "S",
        "sentAt": "S",
        "score": "N",
        "sender": "S",
    }


async def test_create_tables_creates_local_indexes_with_their_projections(
    db: dm.Session,
) -> None:
    await db.create_tables(Message)

    table = await describe(db, Message)
    lsis = by_name(table["LocalSecondaryIndexes"])
    assert set(lsis) == {"ByScore", "BySender"}
    assert lsis["ByScore"]["KeySchema"] == [
        {"AttributeName": "room", "KeyType": "HASH"},
        {"AttributeName": "score", "KeyType": "RANGE"},
    ]
    assert lsis["ByScore"]["Projection"] == {"ProjectionType": "ALL"}
    assert lsis["BySender"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert table["KeySchema"] == [
        {"AttributeName": "room", "KeyType": "HASH"},
        {"AttributeName": "sentAt", "KeyType": "RANGE"},
    ]


async def test_describe_table_reports_status_count_and_indexes(db: dm.Session) -> None:
    await db.create_tables(Content, Message)
    await Content.create(owner="ada")

    content = await db.describe_table(Content)
    message = await db.describe_table(Message)

    assert content.name == db.table_prefix + "content"
    assert content.status == "ACTIVE"
    assert content.indexes == {
        "OwnerIndex": "ACTIVE",
        "StatusIndex": "ACTIVE",
        "RankIndex": "ACTIVE",
        "FeaturedIndex": "ACTIVE",
    }
    assert message.indexes == {"ByScore": "ACTIVE", "BySender": "ACTIVE"}
    assert content.raw["TableName"] == content.name
    assert content.item_count >= 0
    assert content.size_bytes >= 0


async def test_a_bool_index_key_is_stored_as_a_number(db: dm.Session) -> None:
    await db.create_tables(Content)
    created = await Content.create(id="c-1", owner="ada", featured=True, rank=3)

    stored = await db.client.get_item(
        TableName=db.table_name(Content), Key={"id": {"S": "c-1"}}, ConsistentRead=True
    )

    assert stored["Item"]["featured"] == {"N": "1"}
    assert stored["Item"]["rank"] == {"N": "3"}
    got = await Content.get("c-1", consistent=True)
    assert got.featured is True
    assert got == created


async def test_models_sharing_a_table_get_every_declared_index(db: dm.Session) -> None:
    names = await db.create_tables(Athlete, Workout)

    assert names == [db.table_prefix + "shared"]
    table = await describe(db, Athlete)
    assert set(by_name(table["GlobalSecondaryIndexes"])) == {"ByName", "ByDay"}


async def test_list_tables_returns_only_this_prefix(db: dm.Session, server: Any) -> None:
    await db.create_tables(Content, Counter)
    async with dm.connect(
        endpoint_url=server.endpoint_url, region="us-east-1", table_prefix=db.table_prefix + "x-"
    ) as other:
        await other.create_tables(Message)
        assert await other.list_tables() == [other.table_name(Message)]

    assert sorted(await db.list_tables()) == sorted(
        [db.table_name(Content), db.table_name(Counter), db.table_prefix + "x-messages"]
    )
    assert db.table_prefix + "x-messages" == db.table_prefix + "x-" + "messages"


async def test_list_tables_follows_pages(db: dm.Session) -> None:
    names = [f"{db.table_prefix}page-{i:03d}" for i in range(105)]  # ListTables pages at 100
    for name in names:
        await db.client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    try:
        assert sorted(await db.list_tables()) == names
    finally:
        for name in names:  # keep the shared server's table list short for later tests
            await db.client.delete_table(TableName=name)


async def test_table_prefix_is_prepended_verbatim(db: dm.Session) -> None:
    await db.create_tables(Content)

    assert db.table_prefix.startswith("t")
    assert db.table_name(Content) == db.table_prefix + "content"
    raw = await db.client.describe_table(TableName=db.table_prefix + "content")
    assert raw["Table"]["TableStatus"] == "ACTIVE"
    assert db.table_name(Content) in await db.list_tables()


async def test_delete_tables_removes_them_and_is_idempotent(db: dm.Session) -> None:
    await db.create_tables(Content, Message)

    deleted = await db.delete_tables(Content, Message)
    again = await db.delete_tables(Content, Message)

    assert set(deleted) == {db.table_name(Content), db.table_name(Message)}
    assert set(again) == set(deleted)
    assert await db.list_tables() == []
    with pytest.raises(dm.TableNotFound):
        await Content.get("c-1")


@pytest.mark.parametrize(
    "operation",
    ["get", "create", "save", "update", "delete", "delete_key", "upsert", "describe"],
)
async def test_missing_table_raises_table_not_found_that_says_how_to_create_it(
    db: dm.Session, operation: str
) -> None:
    content = Content(id="c-1", owner="ada")
    calls = {
        "get": lambda: Content.get("c-1"),
        "create": lambda: Content.create(owner="ada"),
        "save": lambda: content.save(),
        "update": lambda: content.update(status="ready"),
        "delete": lambda: content.delete(),
        "delete_key": lambda: Content.delete_key("c-1"),
        "upsert": lambda: Content.upsert("c-1", owner="ada"),
        "describe": lambda: db.describe_table(Content),
    }

    with pytest.raises(dm.TableNotFound) as caught:
        await calls[operation]()

    assert caught.value.code == "ResourceNotFoundException"
    message = str(caught.value)
    assert "create_tables" in message
    assert db.table_name(Content) in message
    assert "prefix" in message


async def test_provisioned_billing_sets_table_and_index_capacity(db: dm.Session) -> None:
    await db.create_tables(Counter)

    table = await describe(db, Counter)

    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 2
    assert table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"
    index = by_name(table["GlobalSecondaryIndexes"])["ByKind"]
    assert index["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert index["ProvisionedThroughput"]["WriteCapacityUnits"] == 4
    await Counter.create(name="hits")
    assert (await Counter.get("hits", consistent=True)).value == 0


async def test_on_demand_is_the_default_billing(db: dm.Session) -> None:
    await db.create_tables(Content)

    table = await describe(db, Content)

    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.moto_only(reason="dynalite cannot turn TTL on (no UpdateTimeToLive)")
async def test_create_tables_turns_on_ttl_once(db: dm.Session) -> None:
    await db.create_tables(Session)
    await db.create_tables(Session)

    description = await db.describe_table(Session)
    raw = await db.client.describe_time_to_live(TableName=db.table_name(Session))

    assert description.ttl_attribute == "expiresAt"
    assert raw["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    assert raw["TimeToLiveDescription"]["AttributeName"] == "expiresAt"


async def test_create_tables_with_a_ttl_model_works_where_ttl_is_unsupported(
    db: dm.Session,
) -> None:
    await db.create_tables(Session)

    assert (await db.describe_table(Session)).status == "ACTIVE"
    await Session.create(token="t-1", expires_at=datetime(2030, 1, 1))
    stored = await db.client.get_item(
        TableName=db.table_name(Session), Key={"token": {"S": "t-1"}}, ConsistentRead=True
    )
    assert stored["Item"]["expiresAt"] == {"N": "1893456000"}


@pytest.mark.moto_only(reason="dynalite has no DynamoDB Streams")
async def test_create_tables_turns_on_the_declared_stream(db: dm.Session) -> None:
    await db.create_tables(Event)

    description = await db.describe_table(Event)
    raw = await describe(db, Event)

    assert description.stream == "NEW_AND_OLD_IMAGES"
    assert raw["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
