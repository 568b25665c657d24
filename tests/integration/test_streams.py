"""parse_stream on records captured from the local server's DynamoDB Streams API.

The records are read with GetRecords (the dynamodbstreams service of the same endpoint)
and given the stream's ARN as ``eventSourceARN``, as Lambda does before it calls a
handler.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import aioboto3
import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm import Template

pytestmark = pytest.mark.moto_only(reason="dynalite has no streams")

REG = dm.Registry("streams-tests")


class Order(dm.Model):
    class Meta:
        table = "orders"
        registry = REG
        stream = "NEW_AND_OLD_IMAGES"

    customer: Annotated[str, dm.HashKey]
    placed_at: Annotated[datetime, dm.RangeKey] = Field(alias="placedAt")
    total: Decimal = Decimal(0)
    quantity: int = 0
    tags: set[str] = set()
    sizes: set[int] = set()
    payload: bytes = b""
    chunks: set[bytes] = set()
    status: str = "new"
    version: Annotated[int, dm.Version] = 0


class Receipt(dm.Model):
    class Meta:
        table = "receipts"
        registry = REG
        stream = "KEYS_ONLY"

    id: Annotated[str, dm.HashKey]
    amount: int = 0


class Athlete(dm.Model):
    class Meta:
        table = "tracker"
        registry = REG
        stream = "NEW_IMAGE"
        entity = "ATHLETE"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "ATHLETE#{athlete_id}")

    athlete_id: str
    name: str


class Workout(dm.Model):
    class Meta:
        table = "tracker"
        registry = REG
        stream = "NEW_IMAGE"
        entity = "WORKOUT"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "WORKOUT#{workout_id}")

    athlete_id: str
    workout_id: str
    minutes: int


WHEN = datetime(2025, 12, 1, 9, tzinfo=UTC)


async def captured_event(db: dm.Session, model: type[dm.Model]) -> dict[str, Any]:
    """Every record of the model's table stream so far, as a Lambda event."""
    arn = (await db.describe_table(model)).raw["LatestStreamArn"]
    session = aioboto3.Session(
        aws_access_key_id="dynamodm-local",
        aws_secret_access_key="dynamodm-local",
        region_name=db.region,
    )
    records: list[dict[str, Any]] = []
    async with session.client("dynamodbstreams", endpoint_url=db.endpoint_url) as streams:
        shards = (await streams.describe_stream(StreamArn=arn))["StreamDescription"]["Shards"]
        for shard in shards:
            iterator = (
                await streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )
            )["ShardIterator"]
            while iterator:
                page = await streams.get_records(ShardIterator=iterator)
                if not page["Records"]:
                    break
                records.extend(page["Records"])
                iterator = page.get("NextShardIterator")
    return {"Records": [{**record, "eventSourceARN": arn} for record in records]}


async def test_writes_come_back_as_typed_changes(db: dm.Session) -> None:
    await db.create_tables(Order)
    order = await Order.create(
        customer="c-1",
        placed_at=WHEN,
        total=Decimal("19.99"),
        quantity=2,
        tags={"gift", "express"},
        sizes={38, 40},
        payload=b"\x00\x01\xff",
        chunks={b"a", b"\x00b"},
    )
    created = order.model_copy(deep=True)
    await order.update(dm.attr(Order.quantity).add(1), status="paid")
    paid = order.model_copy(deep=True)
    await order.delete()

    event = await captured_event(db, Order)
    changes = dm.parse_stream(event, table_prefix=db.table_prefix, registry=REG)

    assert [c.operation for c in changes] == ["INSERT", "MODIFY", "REMOVE"]
    assert all(c.model is Order and c.table == db.table_name(Order) for c in changes)
    insert, modify, remove = changes
    assert insert.new == created and insert.old is None
    assert modify.old == created and modify.new == paid
    assert remove.old == paid and remove.new is None
    assert all(c.keys == {"customer": "c-1", "placed_at": WHEN} for c in changes)
    sequence = [int(c.sequence_number) for c in changes]
    assert sequence == sorted(sequence)
    assert isinstance(insert.new, Order)
    assert (insert.new.payload, insert.new.chunks) == (b"\x00\x01\xff", {b"a", b"\x00b"})


async def test_records_of_other_prefixes_are_unknown(db: dm.Session) -> None:
    await db.create_tables(Order)
    await Order.create(customer="c-2", placed_at=WHEN)
    event = await captured_event(db, Order)
    assert dm.parse_stream(event, registry=REG) == []
    assert dm.parse_stream(event, table_prefix="other-", registry=REG) == []
    with pytest.raises(dm.UsageError, match=db.table_name(Order)):
        dm.parse_stream(event, registry=REG, unknown="raise")
    assert len(dm.parse_stream(event, table_prefix=db.table_prefix, registry=REG)) == 1


async def test_keys_only_stream_gives_keys_without_images(db: dm.Session) -> None:
    await db.create_tables(Receipt)
    receipt = await Receipt.create(id="r-1", amount=5)
    await receipt.update(amount=6)
    await receipt.delete()
    event = await captured_event(db, Receipt)
    changes = dm.parse_stream(event, table_prefix=db.table_prefix, registry=REG)
    assert [c.operation for c in changes] == ["INSERT", "MODIFY", "REMOVE"]
    assert all(c.new is None and c.old is None for c in changes)
    assert all(c.keys == {"id": "r-1"} and c.model is Receipt for c in changes)


async def test_shared_table_records_come_back_as_their_own_models(db: dm.Session) -> None:
    await db.create_tables(Athlete, Workout)
    ada = await Athlete.create(athlete_id="a-1", name="Ada")
    run = await Workout.create(athlete_id="a-1", workout_id="w-1", minutes=30)
    event = await captured_event(db, Athlete)
    changes = dm.parse_stream(event, table_prefix=db.table_prefix, registry=REG)
    assert [(c.model, c.new) for c in changes] == [(Athlete, ada), (Workout, run)]
    assert changes[1].keys == {"PK": "ATHLETE#a-1", "SK": "WORKOUT#w-1"}
