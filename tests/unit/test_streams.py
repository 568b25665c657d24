"""parse_stream: DynamoDB Streams records, written as AWS documents them, as typed changes."""

from __future__ import annotations

import base64
import copy
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm import HashKey, Model, RangeKey, Template

REGISTRY = dm.Registry("unit-streams")
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2015-06-27T00:48:05.899"


class Example(Model):
    """The table of AWS's example event (Lambda developer guide, DynamoDB)."""

    class Meta:
        table = "ExampleTableWithStream"
        registry = REGISTRY
        stream = True

    id: Annotated[int, HashKey] = Field(alias="Id")
    message: str = Field(alias="Message")


class Order(Model):
    class Meta:
        table = "orders"
        registry = REGISTRY
        stream = "NEW_AND_OLD_IMAGES"

    customer: Annotated[str, HashKey]
    placed_at: Annotated[datetime, RangeKey] = Field(alias="placedAt")
    total: Decimal = Decimal(0)
    weight: float = 0.0
    quantity: int = 0
    tags: set[str] = set()
    sizes: set[int] = set()
    prices: set[Decimal] = set()
    payload: bytes = b""
    chunks: set[bytes] = set()
    lines: list[dict[str, Any]] = []
    gift: bool = False
    note: str | None = None


class Athlete(Model):
    class Meta:
        table = "tracker"
        registry = REGISTRY
        entity = "ATHLETE"
        entity_attribute = "Type"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "ATHLETE#{athlete_id}")

    athlete_id: str = Field(alias="AthleteId")
    name: str = Field(alias="Name")


class Workout(Model):
    class Meta:
        table = "tracker"
        registry = REGISTRY
        entity = "WORKOUT"
        entity_attribute = "Type"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "WORKOUT#{workout_id}")

    athlete_id: str = Field(alias="AthleteId")
    workout_id: str = Field(alias="WorkoutId")
    minutes: int = Field(alias="Minutes")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def record(
    event_name: str,
    table: str,
    keys: dict[str, Any],
    *,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    view: str = "NEW_AND_OLD_IMAGES",
    sequence: str = "111",
) -> dict[str, Any]:
    """A record as Lambda delivers it (B values as base64 text, times as epoch seconds)."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1428537600,
        "Keys": keys,
        "SequenceNumber": sequence,
        "SizeBytes": 26,
        "StreamViewType": view,
    }
    if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        body["NewImage"] = new
    if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
        body["OldImage"] = old
    return {
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
        "eventSourceARN": ARN.format(table),
    }


# The example event of AWS's documentation, as published.
AWS_EXAMPLE_EVENT: dict[str, Any] = {
    "Records": [
        {
            "eventID": "c4ca4238a0b923820dcc509a6f75849b",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": {"Id": {"N": "101"}},
                "NewImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                "ApproximateCreationDateTime": 1428537600,
                "SequenceNumber": "4421584500000000017450439091",
                "SizeBytes": 26,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": ARN.format("ExampleTableWithStream"),
        },
        {
            "eventID": "c81e728d9d4c2f636f067f89cc14862c",
            "eventName": "MODIFY",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": {"Id": {"N": "101"}},
                "NewImage": {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}},
                "OldImage": {"Message": {"S": "New item!"}, "Id": {"N": "101"}},
                "ApproximateCreationDateTime": 1428537600,
                "SequenceNumber": "4421584500000000017450439092",
                "SizeBytes": 59,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": ARN.format("ExampleTableWithStream"),
        },
        {
            "eventID": "eccbc87e4b5ce2fe28308fd9f2a7baf3",
            "eventName": "REMOVE",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": {"Id": {"N": "101"}},
                "OldImage": {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}},
                "ApproximateCreationDateTime": 1428537600,
                "SequenceNumber": "4421584500000000017450439093",
                "SizeBytes": 38,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": ARN.format("ExampleTableWithStream"),
        },
    ]
}

ORDER_KEYS = {"customer": {"S": "c-1"}, "placedAt": {"S": "2025-12-01T09:00:00.000000Z"}}
PLACED_AT = datetime(2025, 12, 1, 9, tzinfo=UTC)


def order_image(**attributes: Any) -> dict[str, Any]:
    return {**ORDER_KEYS, **attributes}


def parse(event: Any, **options: Any) -> list[dm.StreamChange]:
    return dm.parse_stream(event, registry=REGISTRY, **options)


# ---------------------------------------------------------------- AWS's example event


def test_documented_example_event_gives_one_change_per_record() -> None:
    changes = parse(AWS_EXAMPLE_EVENT)
    assert [c.operation for c in changes] == ["INSERT", "MODIFY", "REMOVE"]
    assert all(c.model is Example and c.table == "ExampleTableWithStream" for c in changes)
    insert, modify, remove = changes
    assert insert.new == Example(id=101, message="New item!") and insert.old is None
    assert modify.old == Example(id=101, message="New item!")
    assert modify.new == Example(id=101, message="This item has changed")
    assert remove.new is None and remove.old == Example(id=101, message="This item has changed")
    assert [c.sequence_number for c in changes] == [
        "4421584500000000017450439091",
        "4421584500000000017450439092",
        "4421584500000000017450439093",
    ]
    assert all(c.keys == {"id": 101} for c in changes)
    assert [c.raw for c in changes] == AWS_EXAMPLE_EVENT["Records"]


def test_parsing_leaves_the_event_unchanged() -> None:
    event = {
        "Records": [
            record("INSERT", "orders", ORDER_KEYS, new=order_image(payload={"B": b64(b"\x00\xff")}))
        ]
    }
    before = copy.deepcopy(event)
    (change,) = parse(event)
    assert event == before
    assert change.raw is event["Records"][0]


def test_a_list_of_records_is_accepted() -> None:
    changes = parse(AWS_EXAMPLE_EVENT["Records"])
    assert [c.operation for c in changes] == ["INSERT", "MODIFY", "REMOVE"]


# ---------------------------------------------------------------- view types


@pytest.mark.parametrize(
    ("view", "insert", "modify", "remove"),
    [
        # (new, old) present for INSERT, MODIFY, REMOVE
        ("NEW_AND_OLD_IMAGES", (True, False), (True, True), (False, True)),
        ("NEW_IMAGE", (True, False), (True, False), (False, False)),
        ("OLD_IMAGE", (False, False), (False, True), (False, True)),
        ("KEYS_ONLY", (False, False), (False, False), (False, False)),
    ],
)
def test_each_view_type_gives_the_images_it_carries(
    view: str,
    insert: tuple[bool, bool],
    modify: tuple[bool, bool],
    remove: tuple[bool, bool],
) -> None:
    first, second = order_image(quantity={"N": "1"}), order_image(quantity={"N": "2"})
    event = {
        "Records": [
            record("INSERT", "orders", ORDER_KEYS, new=first, view=view, sequence="1"),
            record("MODIFY", "orders", ORDER_KEYS, new=second, old=first, view=view, sequence="2"),
            record("REMOVE", "orders", ORDER_KEYS, old=second, view=view, sequence="3"),
        ]
    }
    changes = parse(event)
    assert [c.operation for c in changes] == ["INSERT", "MODIFY", "REMOVE"]
    for change, (has_new, has_old) in zip(changes, (insert, modify, remove), strict=True):
        assert (change.new is not None, change.old is not None) == (has_new, has_old)
        assert change.model is Order
        assert change.keys == {"customer": "c-1", "placed_at": PLACED_AT}
    quantities = [
        (getattr(c.new, "quantity", None), getattr(c.old, "quantity", None)) for c in changes
    ]
    expected = {
        "NEW_AND_OLD_IMAGES": [(1, None), (2, 1), (None, 2)],
        "NEW_IMAGE": [(1, None), (2, None), (None, None)],
        "OLD_IMAGE": [(None, None), (None, 1), (None, 2)],
        "KEYS_ONLY": [(None, None)] * 3,
    }
    assert quantities == expected[view]


def test_keys_only_records_carry_the_key_as_field_values() -> None:
    (change,) = parse([record("REMOVE", "orders", ORDER_KEYS, view="KEYS_ONLY")])
    assert change.new is None and change.old is None
    assert change.keys == {"customer": "c-1", "placed_at": PLACED_AT}
    assert isinstance(change.keys["placed_at"], datetime)


# ---------------------------------------------------------------- values


def test_binary_values_of_lambda_events_are_decoded_from_base64() -> None:
    image = order_image(
        payload={"B": b64(b"\x00\x01binary\xff")},
        chunks={"BS": [b64(b"one"), b64(b"\x00two")]},
        lines={"L": [{"M": {"blob": {"B": b64(b"nested")}}}]},
    )
    (change,) = parse([record("INSERT", "orders", ORDER_KEYS, new=image)])
    order = change.new
    assert isinstance(order, Order)
    assert order.payload == b"\x00\x01binary\xff"
    assert order.chunks == {b"one", b"\x00two"}
    assert order.lines == [{"blob": b"nested"}]


def test_binary_values_already_decoded_pass_unchanged() -> None:
    """Records read with boto3's GetRecords carry bytes, not base64 text."""
    image = order_image(payload={"B": b"raw"}, chunks={"BS": [b"a", b"b"]})
    (change,) = parse([record("INSERT", "orders", ORDER_KEYS, new=image)])
    assert isinstance(change.new, Order)
    assert (change.new.payload, change.new.chunks) == (b"raw", {b"a", b"b"})


def test_binary_hash_key_is_decoded_in_keys() -> None:
    class Blob(Model):
        class Meta:
            table = "blobs"
            registry = REGISTRY

        digest: Annotated[bytes, HashKey]

    try:
        keys = {"digest": {"B": b64(b"\x01\x02")}}
        (change,) = parse([record("REMOVE", "blobs", keys, view="KEYS_ONLY")])
        assert change.keys == {"digest": b"\x01\x02"}
    finally:
        REGISTRY.unregister(Blob)


def test_numbers_sets_and_other_types_decode_exactly() -> None:
    image = order_image(
        total={"N": "12345678901234567890.123456789"},
        weight={"N": "0.1"},
        quantity={"N": "99999999999999999999999999999999999999"},
        tags={"SS": ["red", "blue"]},
        sizes={"NS": ["1", "20", "300"]},
        prices={"NS": ["2.5", "0.10"]},
        gift={"BOOL": True},
        note={"NULL": True},
        lines={"L": [{"M": {"sku": {"S": "A1"}, "count": {"N": "2"}}}]},
    )
    (change,) = parse([record("INSERT", "orders", ORDER_KEYS, new=image)])
    order = change.new
    assert isinstance(order, Order)
    assert order.total == Decimal("12345678901234567890.123456789")
    assert order.weight == 0.1 and isinstance(order.weight, float)
    assert order.quantity == 99999999999999999999999999999999999999
    assert order.tags == {"red", "blue"}
    assert order.sizes == {1, 20, 300}
    assert order.prices == {Decimal("2.5"), Decimal("0.10")}
    assert order.gift is True and order.note is None
    assert order.lines == [{"sku": "A1", "count": 2}]
    assert order.placed_at == PLACED_AT


def test_missing_set_attributes_read_back_as_empty_sets() -> None:
    (change,) = parse([record("INSERT", "orders", ORDER_KEYS, new=order_image())])
    assert isinstance(change.new, Order)
    assert (change.new.tags, change.new.sizes, change.new.chunks) == (set(), set(), set())


def test_attributes_the_model_does_not_declare_are_kept_aside() -> None:
    image = order_image(legacyField={"S": "from another service"})
    (change,) = parse([record("INSERT", "orders", ORDER_KEYS, new=image)])
    assert isinstance(change.new, Order)
    assert change.new.extra_attributes == {"legacyField": {"S": "from another service"}}
    assert "legacyField" not in change.new.model_dump(by_alias=True)


def test_an_image_that_does_not_validate_raises_with_the_record_named() -> None:
    image = order_image(quantity={"S": "many"})
    with pytest.raises(dm.ItemInvalid) as caught:
        parse([record("INSERT", "orders", ORDER_KEYS, new=image, sequence="777")])
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "777" in notes and "orders" in notes and "Order" in notes
    assert caught.value.fields == ("quantity",)
    assert "many" not in str(caught.value) and "many" not in notes


def test_after_load_hooks_run_on_stream_images() -> None:
    class Audited(Model):
        class Meta:
            table = "audited"
            registry = REGISTRY

        id: Annotated[str, HashKey]
        name: str

        @dm.after("load")
        def normalise(self) -> None:
            self.name = self.name.strip()

    try:
        image = {"id": {"S": "a"}, "name": {"S": "  padded  "}}
        (change,) = parse([record("INSERT", "audited", {"id": {"S": "a"}}, new=image)])
        assert isinstance(change.new, Audited) and change.new.name == "padded"
    finally:
        REGISTRY.unregister(Audited)


# ---------------------------------------------------------------- shared tables


def athlete_image(athlete_id: str, name: str) -> dict[str, Any]:
    key = f"ATHLETE#{athlete_id}"
    return {
        "PK": {"S": key},
        "SK": {"S": key},
        "Type": {"S": "ATHLETE"},
        "AthleteId": {"S": athlete_id},
        "Name": {"S": name},
    }


def workout_image(athlete_id: str, workout_id: str, minutes: int) -> dict[str, Any]:
    return {
        "PK": {"S": f"ATHLETE#{athlete_id}"},
        "SK": {"S": f"WORKOUT#{workout_id}"},
        "Type": {"S": "WORKOUT"},
        "AthleteId": {"S": athlete_id},
        "WorkoutId": {"S": workout_id},
        "Minutes": {"N": str(minutes)},
    }


def keys_of(image: dict[str, Any]) -> dict[str, Any]:
    return {"PK": image["PK"], "SK": image["SK"]}


def test_shared_table_records_are_told_apart_by_entity_type() -> None:
    athlete, workout = athlete_image("a1", "Ada"), workout_image("a1", "w1", 45)
    changes = parse(
        [
            record("INSERT", "tracker", keys_of(athlete), new=athlete),
            record("INSERT", "tracker", keys_of(workout), new=workout),
            record("REMOVE", "tracker", keys_of(workout), old=workout),
        ]
    )
    assert [c.model for c in changes] == [Athlete, Workout, Workout]
    assert changes[0].new == Athlete(athlete_id="a1", name="Ada")
    assert changes[1].new == Workout(athlete_id="a1", workout_id="w1", minutes=45)
    assert changes[2].old == changes[1].new
    # Computed attributes (templates, entity type) are not kept as unknown attributes.
    assert isinstance(changes[0].new, Athlete) and changes[0].new.extra_attributes == {}
    assert changes[1].keys == {"PK": "ATHLETE#a1", "SK": "WORKOUT#w1"}


def test_shared_table_keys_only_records_are_told_apart_by_key_templates() -> None:
    athlete, workout = athlete_image("a1", "Ada"), workout_image("a1", "w1", 45)
    changes = parse(
        [
            record("INSERT", "tracker", keys_of(athlete), view="KEYS_ONLY"),
            record("INSERT", "tracker", keys_of(workout), view="KEYS_ONLY"),
        ]
    )
    assert [c.model for c in changes] == [Athlete, Workout]
    assert all(c.new is None and c.old is None for c in changes)


def test_shared_table_entity_type_no_model_declares_is_skipped_or_raises() -> None:
    image = {**athlete_image("a1", "Ada"), "Type": {"S": "COACH"}}
    records = [record("INSERT", "tracker", keys_of(image), new=image)]
    assert parse(records) == []
    with pytest.raises(dm.UsageError, match=r"tracker.*COACH"):
        parse(records, unknown="raise")


def test_shared_table_keys_only_record_no_template_fits_is_skipped_or_raises() -> None:
    records = [
        record("REMOVE", "tracker", {"PK": {"S": "COACH#c1"}, "SK": {"S": "X"}}, view="KEYS_ONLY")
    ]
    assert parse(records) == []
    with pytest.raises(dm.UsageError, match="tracker"):
        parse(records, unknown="raise")


# ---------------------------------------------------------------- tables and prefixes


def test_the_table_prefix_is_removed_to_find_the_model() -> None:
    records = [record("INSERT", "prod-orders", ORDER_KEYS, new=order_image())]
    (change,) = parse(records, table_prefix="prod-")
    assert change.model is Order and change.table == "prod-orders"


def test_a_table_of_another_prefix_is_unknown() -> None:
    records = [record("INSERT", "dev-orders", ORDER_KEYS, new=order_image())]
    assert parse(records, table_prefix="prod-") == []
    with pytest.raises(dm.UsageError, match=r"dev-orders.*prod-"):
        parse(records, table_prefix="prod-", unknown="raise")


def test_without_the_prefix_a_prefixed_table_is_unknown() -> None:
    records = [record("INSERT", "prod-orders", ORDER_KEYS, new=order_image())]
    assert parse(records) == []


def test_unknown_tables_are_skipped_by_default() -> None:
    records = [
        record("INSERT", "invoices", {"id": {"S": "i-1"}}, new={"id": {"S": "i-1"}}),
        record("INSERT", "orders", ORDER_KEYS, new=order_image()),
    ]
    changes = parse(records)
    assert [c.model for c in changes] == [Order]


def test_unknown_tables_raise_when_asked_naming_the_table() -> None:
    records = [record("INSERT", "invoices", {"id": {"S": "i-1"}}, new={"id": {"S": "i-1"}})]
    with pytest.raises(dm.UsageError, match=r"unit-streams.*'invoices'"):
        parse(records, unknown="raise")


def test_the_default_registry_is_dm_registry() -> None:
    class DefaultRegistered(Model):
        class Meta:
            table = "default-registered"

        id: Annotated[str, HashKey]

    try:
        records = [
            record("INSERT", "default-registered", {"id": {"S": "x"}}, new={"id": {"S": "x"}})
        ]
        (change,) = dm.parse_stream(records)
        assert change.model is DefaultRegistered
        assert parse(records) == []
    finally:
        dm.registry.unregister(DefaultRegistered)


def test_records_from_kinesis_name_their_table() -> None:
    rec = record("INSERT", "orders", ORDER_KEYS, new=order_image())
    del rec["eventSourceARN"]
    rec["tableName"] = "orders"
    (change,) = parse([rec])
    assert change.model is Order


def test_a_record_without_its_table_is_a_usage_error() -> None:
    rec = record("INSERT", "orders", ORDER_KEYS, new=order_image())
    del rec["eventSourceARN"]
    with pytest.raises(dm.UsageError, match="eventSourceARN"):
        parse([rec])


# ---------------------------------------------------------------- misuse and extras


@pytest.mark.parametrize(
    "event",
    [
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]},
        {"Records": [{"eventName": "INSERT"}]},
        {"detail-type": "Scheduled Event"},
        "not an event",
        [["a", "list"]],
    ],
)
def test_an_event_that_is_not_a_stream_event_is_a_usage_error(event: Any) -> None:
    with pytest.raises(dm.UsageError):
        parse(event)


def test_unknown_takes_skip_or_raise() -> None:
    with pytest.raises(dm.UsageError, match=r"skip.*raise"):
        parse(AWS_EXAMPLE_EVENT, unknown="ignore")


def test_ttl_deletions_are_flagged_as_expired() -> None:
    by_ttl = record("REMOVE", "orders", ORDER_KEYS, old=order_image())
    by_ttl["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    by_user = record("REMOVE", "orders", ORDER_KEYS, old=order_image())
    assert [c.expired for c in parse([by_ttl, by_user])] == [True, False]


def test_changes_are_immutable() -> None:
    change = parse(AWS_EXAMPLE_EVENT)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        change.operation = "REMOVE"  # type: ignore[misc]
