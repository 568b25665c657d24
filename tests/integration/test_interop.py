"""Data no one here wrote: items written by boto3's TypeSerializer, by PynamoDB models and
as AWS CLI-style DynamoDB JSON are read correctly by the matching dynamodm model; items
written by dynamodm are read back identically by boto3's TypeDeserializer, by PynamoDB
and as the CLI prints them.

PynamoDB is synchronous (botocore): it runs in a thread against the same endpoint, with
dummy credentials. It is a benchmark and dev dependency; without it those tests skip."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import BaseModel, Field
from servers import ServerHandle

import dynamodm as dm

REG = dm.Registry("interop-tests")
JOINED = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
NAME = "Ada \u00e9\U0001f600 #:v0"


class Address(BaseModel):
    street: str
    zip_code: str = Field(alias="zipCode")


class Profile(dm.Model):
    class Meta:
        table = "interop-profiles"
        registry = REG

    id: Annotated[str, dm.HashKey]
    name: str
    age: int
    ratio: float
    balance: Decimal
    active: bool
    avatar: bytes
    nickname: str | None = None
    tags: set[str] = set()
    scores: set[int] = set()
    blobs: set[bytes] = set()
    history: list[Any] = []
    address: Address
    extra: dict[str, Any] = {}
    joined: datetime


def profile(id: str) -> Profile:
    return Profile(
        id=id,
        name=NAME,
        age=36,
        ratio=0.25,
        balance=Decimal("12.50"),
        active=True,
        avatar=b"\x00\xff\x10",
        tags={"a", "b"},
        scores={1, 2, 30},
        blobs={b"\x00", b"\xff"},
        history=[1, "two", None, [3, {"four": 4}]],
        address=Address(street="1 Main St", zipCode="02139"),
        extra={"k": {"nested": 1, "list": ["x"]}},
        joined=JOINED,
    )


# What `aws dynamodb put-item --item file://item.json` sends and `get-item` prints.
CLI_ITEM = """{
  "id": {"S": "cli"},
  "name": {"S": "Ada \\u00e9\\ud83d\\ude00 #:v0"},
  "age": {"N": "36"},
  "ratio": {"N": "0.25"},
  "balance": {"N": "12.50"},
  "active": {"BOOL": true},
  "avatar": {"B": "AP8Q"},
  "nickname": {"NULL": true},
  "tags": {"SS": ["a", "b"]},
  "scores": {"NS": ["1", "2", "30"]},
  "blobs": {"BS": ["AA==", "/w=="]},
  "history": {"L": [{"N": "1"}, {"S": "two"}, {"NULL": true},
                    {"L": [{"N": "3"}, {"M": {"four": {"N": "4"}}}]}]},
  "address": {"M": {"street": {"S": "1 Main St"}, "zipCode": {"S": "02139"}}},
  "extra": {"M": {"k": {"M": {"nested": {"N": "1"}, "list": {"L": [{"S": "x"}]}}}}},
  "joined": {"S": "2025-01-02T03:04:05.000006Z"},
  "legacy": {"S": "an attribute no model declares"}
}"""


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(Profile)


async def raw_get(db: dm.Session, key: str) -> dict[str, Any]:
    response = await db.client.get_item(
        TableName=db.table_name(Profile), Key={"id": {"S": key}}, ConsistentRead=True
    )
    item: dict[str, Any] = response["Item"]
    return item


def from_cli(node: Any) -> Any:
    """The CLI's reading of DynamoDB JSON: B and BS values are base64 text."""
    if isinstance(node, dict):
        if set(node) == {"B"}:
            return {"B": base64.b64decode(node["B"])}
        if set(node) == {"BS"}:
            return {"BS": [base64.b64decode(v) for v in node["BS"]]}
        return {k: from_cli(v) for k, v in node.items()}
    if isinstance(node, list):
        return [from_cli(v) for v in node]
    return node


def comparable(node: Any) -> Any:
    """DynamoDB JSON with bytes as base64, numbers by value and sets unordered: what two
    writers of the same item must agree on."""
    if isinstance(node, dict):
        (kind, value), *rest = node.items()
        if rest or kind not in {"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"}:
            return {k: comparable(v) for k, v in node.items()}
        if kind == "N":
            return {"N": Decimal(value)}
        if kind == "B":
            return {"B": base64.b64encode(value).decode() if isinstance(value, bytes) else value}
        if kind in ("SS", "NS", "BS"):
            items = [comparable({kind[0]: v})[kind[0]] for v in value]
            return {kind: sorted(items, key=str)}
        if kind in ("L", "M"):
            return {kind: comparable(value)}
        return node
    if isinstance(node, list):
        return [comparable(v) for v in node]
    return node


# ---------------------------------------------------------------- boto3 and the CLI


async def test_an_item_written_by_boto3s_type_serializer_is_read_by_its_model(
    db: dm.Session,
) -> None:
    serializer = TypeSerializer()
    values = {
        "id": "boto3",
        "name": NAME,
        "age": 36,
        "ratio": Decimal("0.25"),  # TypeSerializer takes no float
        "balance": Decimal("12.50"),
        "active": True,
        "avatar": b"\x00\xff\x10",
        "nickname": None,
        "tags": {"a", "b"},
        "scores": {1, 2, 30},
        "blobs": {b"\x00", b"\xff"},
        "history": [1, "two", None, [3, {"four": 4}]],
        "address": {"street": "1 Main St", "zipCode": "02139"},
        "extra": {"k": {"nested": 1, "list": ["x"]}},
        "joined": "2025-01-02T03:04:05.000006+00:00",  # another writer's ISO 8601
        "legacy": "an attribute no model declares",
    }
    await db.client.put_item(
        TableName=db.table_name(Profile),
        Item={name: serializer.serialize(value) for name, value in values.items()},
    )
    read = await Profile.get("boto3", consistent=True)
    assert read.model_dump() == profile("boto3").model_dump()
    assert read.extra_attributes == {"legacy": {"S": "an attribute no model declares"}}
    await read.save()  # a save keeps what the model does not declare
    assert (await raw_get(db, "boto3"))["legacy"] == {"S": "an attribute no model declares"}


async def test_an_item_written_by_dynamodm_reads_back_identically_through_boto3(
    db: dm.Session,
) -> None:
    await profile("mine").save()
    deserializer = TypeDeserializer()
    read = {k: deserializer.deserialize(v) for k, v in (await raw_get(db, "mine")).items()}
    assert read == {
        "id": "mine",
        "name": NAME,
        "age": Decimal(36),
        "ratio": Decimal("0.25"),
        "balance": Decimal("12.50"),
        "active": True,
        "avatar": b"\x00\xff\x10",
        "tags": {"a", "b"},
        "scores": {Decimal(1), Decimal(2), Decimal(30)},
        "blobs": {b"\x00", b"\xff"},
        "history": [Decimal(1), "two", None, [Decimal(3), {"four": Decimal(4)}]],
        "address": {"street": "1 Main St", "zipCode": "02139"},
        "extra": {"k": {"nested": Decimal(1), "list": ["x"]}},
        "joined": "2025-01-02T03:04:05.000006Z",
    }  # the None nickname is no attribute at all (its default is None)
    again = {k: TypeSerializer().serialize(v) for k, v in read.items()}
    await db.client.put_item(TableName=db.table_name(Profile), Item=again)
    assert await Profile.get("mine", consistent=True) == profile("mine")


async def test_cli_style_dynamodb_json_is_read_by_its_model_and_printed_back_the_same(
    db: dm.Session,
) -> None:
    document = json.loads(CLI_ITEM)
    await db.client.put_item(TableName=db.table_name(Profile), Item=from_cli(document))
    read = await Profile.get("cli", consistent=True)
    assert read.model_dump() == profile("cli").model_dump()
    assert read.extra_attributes == {"legacy": {"S": "an attribute no model declares"}}

    await profile("cli-out").save()
    printed = await raw_get(db, "cli-out")  # what `aws dynamodb get-item` would print
    expected = {k: v for k, v in document.items() if k not in ("nickname", "legacy")}
    expected["id"] = {"S": "cli-out"}
    assert comparable(printed) == comparable(expected)


# ---------------------------------------------------------------- PynamoDB


def pynamodb_models(table: str, host: str) -> tuple[type[Any], type[Any]]:
    """(writer, reader) PynamoDB models of the Profile table. The writer stores dates
    as PynamoDB does (``+0000``); PynamoDB's UTCDateTimeAttribute reads only that form,
    so the reader takes dynamodm's ``Z`` dates as text."""
    try:
        from pynamodb.attributes import (
            BinaryAttribute,
            BinarySetAttribute,
            BooleanAttribute,
            ListAttribute,
            MapAttribute,
            NumberAttribute,
            NumberSetAttribute,
            UnicodeAttribute,
            UnicodeSetAttribute,
            UTCDateTimeAttribute,
        )
        from pynamodb.models import Model
    except ImportError:
        pytest.skip("pynamodb is not installed: pip install -e '.[dev]' (or '.[bench]')")

    class PAddress(MapAttribute[str, Any]):
        street = UnicodeAttribute()
        zip_code = UnicodeAttribute(attr_name="zipCode")

    class TableMeta:
        table_name = table
        region = "us-east-1"
        aws_access_key_id = "interop"
        aws_secret_access_key = "interop"

    TableMeta.host = host  # type: ignore[attr-defined]

    class Common(Model):
        id = UnicodeAttribute(hash_key=True)
        name = UnicodeAttribute()
        age = NumberAttribute()
        ratio = NumberAttribute()
        balance = NumberAttribute()
        active = BooleanAttribute()
        avatar = BinaryAttribute(legacy_encoding=False)
        nickname = UnicodeAttribute(null=True)
        tags = UnicodeSetAttribute()
        scores = NumberSetAttribute()
        blobs = BinarySetAttribute(legacy_encoding=False)
        history = ListAttribute()  # type: ignore[var-annotated]
        address = PAddress()
        extra = MapAttribute()  # type: ignore[var-annotated]

    class Writer(Common):
        Meta = TableMeta
        joined = UTCDateTimeAttribute()

    class Reader(Common):
        Meta = TableMeta
        joined = UnicodeAttribute()

    return Writer, Reader


@pytest.fixture
def pynamodb(db: dm.Session, server: ServerHandle) -> tuple[type[Any], type[Any]]:
    return pynamodb_models(db.table_name(Profile), server.endpoint_url)


async def test_an_item_written_by_pynamodb_is_read_by_its_model(
    pynamodb: tuple[type[Any], type[Any]],
) -> None:
    writer, _ = pynamodb
    item = writer(
        id="pynamodb",
        name=NAME,
        age=36,
        ratio=0.25,
        balance=12.5,  # NumberAttribute serialises with json: no Decimal
        active=True,
        avatar=b"\x00\xff\x10",
        nickname=None,
        tags={"a", "b"},
        scores={1, 2, 30},
        blobs={b"\x00", b"\xff"},
        history=[1, "two", None, [3, {"four": 4}]],
        address={"street": "1 Main St", "zip_code": "02139"},
        extra={"k": {"nested": 1, "list": ["x"]}},
        joined=JOINED,
    )
    await asyncio.to_thread(item.save)
    assert await Profile.get("pynamodb", consistent=True) == profile("pynamodb")


async def test_an_item_written_by_dynamodm_reads_back_identically_through_pynamodb(
    pynamodb: tuple[type[Any], type[Any]],
) -> None:
    _, reader = pynamodb
    await profile("to-pynamodb").save()
    read = await asyncio.to_thread(reader.get, "to-pynamodb", consistent_read=True)
    assert (read.name, read.age, read.ratio, read.balance, read.active) == (
        NAME,
        36,
        0.25,
        12.5,
        True,
    )
    assert read.avatar == b"\x00\xff\x10" and read.nickname is None
    assert (read.tags, read.scores, read.blobs) == ({"a", "b"}, {1, 2, 30}, {b"\x00", b"\xff"})
    assert read.history == [1, "two", None, [3, {"four": 4}]]
    assert (read.address.street, read.address.zip_code) == ("1 Main St", "02139")
    assert read.extra.as_dict() == {"k": {"nested": 1, "list": ["x"]}}
    assert datetime.fromisoformat(read.joined) == JOINED
    # And back: PynamoDB saves what it read; dynamodm reads the same instance.
    await asyncio.to_thread(read.save)
    assert await Profile.get("to-pynamodb", consistent=True) == profile("to-pynamodb")
