"""Inheritance: subclasses of a polymorphic model live in its table, told apart by the
entity attribute; reads through the base return subclass instances."""

from __future__ import annotations

from typing import Annotated

import pytest

import dynamodm as dm

REG = dm.Registry("inheritance-tests")


class Vehicle(dm.Model):
    class Meta:
        table = "vehicles"
        registry = REG
        polymorphic = True
        indexes = (dm.GlobalIndex("ByOwner", hash_key="owner", range_key="id"),)

    owner: Annotated[str, dm.HashKey]
    id: Annotated[str, dm.RangeKey]
    wheels: int = 4


class Car(Vehicle):
    seats: int = 5


class Bike(Vehicle):
    class Meta:
        entity = "bicycle"

    wheels: int = 2
    gears: int = 1


class EBike(Bike):
    battery_wh: int = 500


@pytest.fixture
async def garage(db: dm.Session) -> dm.Session:
    await db.create_tables(*REG.models)
    for i in range(4):
        await Car(owner="ada", id=f"c{i}", seats=2 + i).save()
        await Bike(owner="ada", id=f"b{i}", gears=i).save()
    await EBike(owner="ada", id="e0").save()
    await Vehicle(owner="ada", id="v0").save()
    return db


def test_subclasses_share_the_table_keys_and_indexes() -> None:
    assert Car.__dm_schema__.table == Bike.__dm_schema__.table == "vehicles"
    assert Car.__dm_schema__.entity == "Car" and Bike.__dm_schema__.entity == "bicycle"
    assert Vehicle.__dm_schema__.entity == "Vehicle"
    assert set(Car.__dm_schema__.indexes) == {"ByOwner"}


async def test_reads_through_the_base_return_subclass_instances_across_pages(
    garage: dm.Session,
) -> None:
    kinds: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        page = await Vehicle.query("ada").page(cursor=cursor, size=3)
        kinds += [type(v).__name__ for v in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert sorted(kinds) == sorted(["Car"] * 4 + ["Bike"] * 4 + ["EBike", "Vehicle"])
    mixed = await Vehicle.batch_get([("ada", "c1"), ("ada", "b2"), ("ada", "e0")])
    assert [type(v) for v in mixed] == [Car, Bike, EBike]
    assert isinstance(await Vehicle.get("ada", "b3"), Bike)
    by_index = await Vehicle.query("ada", index="ByOwner").all()
    assert len(by_index) == 10


async def test_reads_through_a_subclass_see_only_its_kind(garage: dm.Session) -> None:
    cars = await Car.query("ada").all()
    assert [c.id for c in cars] == ["c0", "c1", "c2", "c3"] and all(type(c) is Car for c in cars)
    bikes = await Bike.scan().all()
    assert sorted(type(b).__name__ for b in bikes) == ["Bike"] * 4 + ["EBike"]
    assert await Car.query("ada").count() == 4
    with pytest.raises(dm.NotFound):
        await Car.get("ada", "b1")
    assert await Car.get_or_none("ada", "e0") is None
    assert [c.id for c in await Car.batch_get([("ada", "b1"), ("ada", "c2")])] == ["c2"]
    with pytest.raises(dm.NotFound):
        await Car.update_key(("ada", "b1"), seats=9)
    assert (await Bike.get("ada", "b1")).gears == 1


async def test_writes_keep_the_subclass(garage: dm.Session) -> None:
    car = await Car.get("ada", "c0")
    car.seats = 7
    await car.save()
    again = await Vehicle.get("ada", "c0", consistent=True)
    assert type(again) is Car and again.seats == 7
    updated = await Vehicle.update_key(("ada", "e0"), wheels=3)
    assert type(updated) is EBike and updated.wheels == 3


async def test_a_stored_entity_without_a_class_is_item_invalid(garage: dm.Session) -> None:
    await garage.client.put_item(
        TableName=garage.table_name(Vehicle),
        Item={"owner": {"S": "ada"}, "id": {"S": "x0"}, "_type": {"S": "Boat"}},
    )
    with pytest.raises(dm.ItemInvalid, match="'Boat'") as caught:
        await Vehicle.get("ada", "x0")
    assert caught.value.key == {"owner": {"S": "ada"}, "id": {"S": "x0"}}
    assert len(await Vehicle.query("ada", on_invalid="skip").all()) == 10


def test_a_subclass_may_not_redeclare_keys_or_the_table() -> None:
    with pytest.raises(dm.InvalidModel, match="may only set entity"):

        class Truck(Vehicle):
            class Meta:
                table = "trucks"

    with pytest.raises(dm.InvalidModel, match="key field of its own"):

        class Van(Vehicle):
            plate: Annotated[str, dm.HashKey]

    with pytest.raises(dm.InvalidModel, match="taken by Bike"):

        class Tricycle(Vehicle):
            class Meta:
                entity = "bicycle"


@pytest.mark.moto_only(reason="dynalite has no transactions")
async def test_subclasses_in_a_transaction(garage: dm.Session) -> None:
    async with dm.transaction() as tx:
        tx.create(Car(owner="bob", id="c9"))
        tx.create(Bike(owner="bob", id="b9"))
    assert [type(v) for v in await Vehicle.query("bob").all()] == [Bike, Car]


def test_stream_records_come_back_as_their_subclass() -> None:
    def record(entity: str, sequence: str) -> dict[str, object]:
        image = {"owner": {"S": "a"}, "id": {"S": sequence}, "_type": {"S": entity}}
        return {
            "eventID": sequence,
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/vehicles/stream/x",
            "dynamodb": {
                "Keys": {"owner": image["owner"], "id": image["id"]},
                "NewImage": image,
                "SequenceNumber": sequence,
                "StreamViewType": "NEW_IMAGE",
            },
        }

    event = {"Records": [record("Car", "1"), record("bicycle", "2"), record("Vehicle", "3")]}
    changes = dm.parse_stream(event, registry=REG)
    assert [type(c.new) for c in changes] == [Car, Bike, Vehicle]
