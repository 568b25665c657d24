"""The type table: every Python type to its exact AttributeValue and back through a model."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, Model
from dynamodm.codec import (
    MAX_ITEM_SIZE,
    EncodeError,
    Item,
    check_item_size,
    encode_decimal,
    encode_float,
    item_size,
)
from dynamodm.instances import set_state

REGISTRY = dm.Registry("unit-codec")
M = TypeVar("M", bound=Model)


def encode(instance: Model) -> Item:
    return type(instance).__dm_codec__.encode_fields(instance)


def load(model: type[M], item: Item) -> M:
    """What Session.load does: decode, validate, keep unknown attributes aside."""
    data, extra = model.__dm_codec__.decode_fields(item)
    instance = model.model_validate(data)
    if extra:
        set_state(instance, "_dm_extra", extra)
    return instance


def round_trip(instance: M) -> M:
    return load(type(instance), encode(instance))


# ---------------------------------------------------------------- str


class Text(Model):
    class Meta:
        table = "texts"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "t-1"
    body: str = "x"


def test_str_is_stored_as_s_and_may_be_empty() -> None:
    assert encode(Text(body="")) == {"id": {"S": "t-1"}, "body": {"S": ""}}
    assert round_trip(Text(body="")).body == ""


def test_str_keeps_unicode_emoji_and_nul_exactly() -> None:
    body = "h\u00e9llo \u65e5\u672c \U0001f389\x00end"
    assert encode(Text(body=body))["body"] == {"S": body}
    assert round_trip(Text(body=body)).body == body


# ---------------------------------------------------------------- numbers


class Numbers(Model):
    class Meta:
        table = "numbers"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "n-1"
    count: int = 0
    ratio: float = 0.0
    amount: Decimal = Decimal(0)


@pytest.mark.parametrize("value", [0, 42, -7, 10**38 - 1, -(10**38 - 1), 10**100, 9 * 10**125])
def test_int_is_stored_exactly_as_n(value: int) -> None:
    item = encode(Numbers(count=value))
    assert item["count"] == {"N": str(value)}
    loaded = round_trip(Numbers(count=value))
    assert loaded.count == value
    assert type(loaded.count) is int


@pytest.mark.parametrize("value", [10**38 + 1, -(10**38 + 1), 10**70 + 1, 10**125 + 1])
def test_int_with_more_than_38_significant_digits_is_refused(value: int) -> None:
    with pytest.raises(EncodeError, match=r"^Numbers\.count: .*significant digits"):
        encode(Numbers(count=value))


@pytest.mark.parametrize("value", [10**126, -(10**126), 10**130])
def test_int_above_dynamodb_range_is_refused(value: int) -> None:
    with pytest.raises(EncodeError, match=r"^Numbers\.count: .*outside DynamoDB's range"):
        encode(Numbers(count=value))


def test_encode_error_is_a_usage_error_without_the_value() -> None:
    with pytest.raises(dm.UsageError) as caught:
        encode(Numbers(count=10**38 + 1))
    assert str(10**38 + 1) not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (-2.5, "-2.5"),
        (1e22, "1e+22"),
        (1e-130, "1e-130"),
        (9.9e125, "9.9e+125"),
        (123456789.125, "123456789.125"),
    ],
)
def test_float_is_stored_as_its_shortest_repr(value: float, text: str) -> None:
    assert encode(Numbers(ratio=value))["ratio"] == {"N": text}
    loaded = round_trip(Numbers(ratio=value))
    assert loaded.ratio == value
    assert type(loaded.ratio) is float


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_float_nan_and_infinity_fail_validation(value: float) -> None:
    with pytest.raises(ValidationError):
        Numbers(ratio=value)
    numbers = Numbers()
    with pytest.raises(ValidationError):
        numbers.ratio = value


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_float_encoder_refuses_nan_and_infinity_that_skipped_validation(value: float) -> None:
    with pytest.raises(EncodeError, match="NaN and infinity"):
        encode_float(value)
    with pytest.raises(EncodeError, match=r"^Numbers\.ratio: "):
        encode(Numbers.model_construct(id="n-1", count=0, ratio=value, amount=Decimal(0)))


@pytest.mark.parametrize("value", [1e-131, 5e-324, 1e126, -1e300])
def test_float_outside_dynamodb_range_is_refused(value: float) -> None:
    with pytest.raises(EncodeError, match=r"^Numbers\.ratio: .*outside DynamoDB's range"):
        encode(Numbers(ratio=value))


@pytest.mark.parametrize(
    "text",
    [
        "1.10",
        "-0.000001",
        "12345678901234567890.123456789012345678",
        "1E-130",
        "9." + "9" * 37 + "E+125",
        "-9." + "9" * 37 + "E+125",
        "1E+2",
    ],
)
def test_decimal_is_stored_exactly(text: str) -> None:
    assert encode(Numbers(amount=Decimal(text)))["amount"] == {"N": text}
    loaded = round_trip(Numbers(amount=Decimal(text)))
    assert str(loaded.amount) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1234567890123456789012345678901234567.89", "significant digits"),
        ("1E-131", "outside DynamoDB's range"),
        ("1E+126", "outside DynamoDB's range"),
        ("-9." + "9" * 38 + "E+125", "significant digits"),
        ("1" * 70, "significant digits"),
    ],
)
def test_decimal_outside_dynamodb_limits_is_refused(text: str, why: str) -> None:
    with pytest.raises(EncodeError, match=why):
        encode(Numbers(amount=Decimal(text)))
    with pytest.raises(EncodeError, match=why):
        encode_decimal(Decimal(text))


def test_decimal_trailing_zeros_are_not_significant_digits() -> None:
    text = "1" + "0" * 37 + ".000000000000000000000000000000"
    assert encode(Numbers(amount=Decimal(text)))["amount"] == {"N": text}


# ---------------------------------------------------------------- bool, bytes, None


class Flags(Model):
    class Meta:
        table = "flags"
        registry = REGISTRY
        indexes = (GlobalIndex("ActiveIndex", hash_key="active"),)

    id: Annotated[str, HashKey] = "f-1"
    done: bool = False
    active: bool = False
    blob: bytes = b""


def test_bool_is_stored_as_bool() -> None:
    assert encode(Flags(done=True))["done"] == {"BOOL": True}
    assert encode(Flags(done=False))["done"] == {"BOOL": False}
    assert round_trip(Flags(done=True)).done is True


def test_bool_index_key_is_stored_as_n_zero_or_one_and_read_back_as_bool() -> None:
    assert encode(Flags(active=True))["active"] == {"N": "1"}
    assert encode(Flags(active=False))["active"] == {"N": "0"}
    assert Flags.__dm_schema__.indexes["ActiveIndex"].hash_key.type == "N"
    assert load(Flags, {"id": {"S": "f-1"}, "active": {"N": "1"}}).active is True
    assert load(Flags, {"id": {"S": "f-1"}, "active": {"N": "0"}}).active is False


def test_bool_index_key_written_as_bool_by_another_service_still_reads() -> None:
    assert load(Flags, {"id": {"S": "f-1"}, "active": {"BOOL": True}}).active is True


@pytest.mark.parametrize("blob", [b"", b"\x00\xff\x10", bytes(range(256))])
def test_bytes_are_stored_as_b(blob: bytes) -> None:
    assert encode(Flags(blob=blob))["blob"] == {"B": blob}
    assert round_trip(Flags(blob=blob)).blob == blob


class Optionals(Model):
    class Meta:
        table = "optionals"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "o-1"
    nickname: str | None = None
    limit: int | None = 10


def test_none_is_omitted_when_the_default_is_none() -> None:
    assert encode(Optionals()) == {"id": {"S": "o-1"}, "limit": {"N": "10"}}
    assert round_trip(Optionals()).nickname is None


def test_none_is_stored_as_null_when_the_default_is_not_none() -> None:
    item = encode(Optionals(limit=None))
    assert item["limit"] == {"NULL": True}
    assert round_trip(Optionals(limit=None)).limit is None


def test_null_reads_back_as_none_for_a_field_whose_default_is_none() -> None:
    loaded = load(Optionals, {"id": {"S": "o-1"}, "nickname": {"NULL": True}})
    assert loaded.nickname is None


# ---------------------------------------------------------------- sets


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Sets(Model):
    class Meta:
        table = "sets"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "s-1"
    names: set[str] = set()
    counts: set[int] = set()
    ratios: set[float] = set()
    amounts: set[Decimal] = set()
    blobs: set[bytes] = set()
    colors: set[Color] = set()
    moments: set[datetime] = set()
    required: frozenset[str]
    defaulted: set[str] = {"seed"}
    maybe: set[str] | None = None
    abstract: AbstractSet[str] = frozenset()


def test_sets_are_stored_as_ss_ns_and_bs() -> None:
    sets = Sets(
        names={"a", "b"},
        counts={1, -2},
        ratios={0.5, 1e22},
        amounts={Decimal("1.10"), Decimal("-3")},
        blobs={b"\x00", b"xy"},
        colors={Color.RED},
        required=frozenset({"r"}),
        abstract={"z"},
    )
    item = encode(sets)
    assert sorted(item["names"]["SS"]) == ["a", "b"]
    assert sorted(item["counts"]["NS"]) == ["-2", "1"]
    assert sorted(item["ratios"]["NS"]) == ["0.5", "1e+22"]
    assert sorted(item["amounts"]["NS"]) == ["-3", "1.10"]
    assert sorted(item["blobs"]["BS"]) == [b"\x00", b"xy"]
    assert item["colors"] == {"SS": ["red"]}
    assert item["required"] == {"SS": ["r"]}
    assert item["abstract"] == {"SS": ["z"]}
    assert round_trip(sets) == sets


def test_set_of_datetimes_holds_fixed_width_utc_strings() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    item = encode(Sets(moments={moment}, required=frozenset({"r"})))
    assert item["moments"] == {"SS": ["2024-01-02T02:04:05.000000Z"]}
    assert round_trip(Sets(moments={moment}, required=frozenset({"r"}))).moments == {moment}


def test_empty_set_is_omitted_and_read_back_as_empty_set() -> None:
    sets = Sets(required=frozenset(), defaulted=set(), maybe=None)
    item = encode(sets)
    assert item == {"id": {"S": "s-1"}}
    loaded = load(Sets, item)
    assert loaded.names == set()
    assert loaded.required == frozenset()
    assert loaded.defaulted == set()
    assert loaded.maybe is None


def test_missing_set_of_a_partial_item_is_not_filled_in() -> None:
    data, _extra = Sets.__dm_codec__.decode_fields({"id": {"S": "s-1"}}, partial=True)
    assert data == {"id": "s-1"}


def test_empty_set_in_a_list_is_refused() -> None:
    with pytest.raises(EncodeError, match=r"^Nested\.groups: .*empty set"):
        encode(Nested(groups=[set()]))


# ---------------------------------------------------------------- lists, maps, nested models


class Address(BaseModel):
    street_name: str = Field(alias="streetName")
    zip_code: str | None = Field(default=None, alias="zip-code")
    floor: int = 0


class Nested(Model):
    class Meta:
        table = "nested"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "n-1"
    scores: list[int] = []
    maybe_scores: list[int | None] = []
    pair: tuple[int, str] = (0, "")
    many: tuple[float, ...] = ()
    counts: dict[str, int] = {}
    by_level: dict[Level, str] = {}
    tags_by_user: dict[str, list[str]] = {}
    groups: list[set[str]] = []
    address: Address | None = None
    history: list[Address] = []


def test_list_and_tuple_are_stored_as_l() -> None:
    nested = Nested(scores=[3, 1], maybe_scores=[1, None], pair=(7, "x"), many=(0.5, 2.0))
    item = encode(nested)
    assert item["scores"] == {"L": [{"N": "3"}, {"N": "1"}]}
    assert item["maybe_scores"] == {"L": [{"N": "1"}, {"NULL": True}]}
    assert item["pair"] == {"L": [{"N": "7"}, {"S": "x"}]}
    assert item["many"] == {"L": [{"N": "0.5"}, {"N": "2.0"}]}
    assert round_trip(nested) == nested


def test_dict_is_stored_as_m_with_string_keys() -> None:
    nested = Nested(
        counts={"a": 1, "": 0},
        by_level={Level.HIGH: "h"},
        tags_by_user={"u": ["x", "y"]},
    )
    item = encode(nested)
    assert item["counts"] == {"M": {"a": {"N": "1"}, "": {"N": "0"}}}
    assert item["by_level"] == {"M": {"2": {"S": "h"}}}
    assert item["tags_by_user"] == {"M": {"u": {"L": [{"S": "x"}, {"S": "y"}]}}}
    assert round_trip(nested) == nested


def test_nested_model_is_stored_as_m_keyed_by_aliases() -> None:
    nested = Nested(
        address=Address(streetName="Main", floor=2),
        history=[Address(streetName="Old", **{"zip-code": "123"})],
    )
    item = encode(nested)
    assert item["address"] == {"M": {"streetName": {"S": "Main"}, "floor": {"N": "2"}}}
    assert item["history"] == {
        "L": [{"M": {"streetName": {"S": "Old"}, "zip-code": {"S": "123"}, "floor": {"N": "0"}}}]
    }
    assert round_trip(nested) == nested


# ---------------------------------------------------------------- time


class Times(Model):
    class Meta:
        table = "times"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "t-1"
    at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    day: date = date(2000, 1, 1)
    expires: Annotated[datetime | None, dm.TTL] = None


def test_naive_datetime_is_taken_as_utc() -> None:
    naive = datetime(2024, 5, 6, 7, 8, 9, 10)
    assert encode(Times(at=naive))["at"] == {"S": "2024-05-06T07:08:09.000010Z"}
    assert round_trip(Times(at=naive)).at == naive.replace(tzinfo=UTC)


def test_aware_datetime_is_converted_to_utc() -> None:
    aware = datetime(2024, 5, 6, 1, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert encode(Times(at=aware))["at"] == {"S": "2024-05-06T06:30:00.000000Z"}
    loaded = round_trip(Times(at=aware))
    assert loaded.at == aware
    assert loaded.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
        (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), "0999-12-31T23:59:59.000000Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_datetime_is_fixed_width(moment: datetime, text: str) -> None:
    assert encode(Times(at=moment))["at"] == {"S": text}
    assert len(text) == len("YYYY-MM-DDTHH:MM:SS.ffffffZ")
    assert round_trip(Times(at=moment)).at == moment


def test_datetime_string_order_is_time_order() -> None:
    moments = [
        datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(2023, 12, 31, 23, 30),
        datetime(999, 5, 5, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(9999, 1, 1, tzinfo=timezone(timedelta(hours=-12))),
        datetime(2024, 1, 1, 0, 0, 0, 10, tzinfo=UTC),
    ]
    as_utc = [m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments]
    texts = [encode(Times(at=m))["at"]["S"] for m in moments]
    assert sorted(texts) == [texts[as_utc.index(m)] for m in sorted(as_utc)]


def test_datetime_outside_utc_years_is_refused() -> None:
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(EncodeError, match=r"^Times\.at: .*years 1 to 9999"):
        encode(Times(at=early))


def test_any_iso_datetime_is_accepted_on_read() -> None:
    loaded = load(Times, {"id": {"S": "t-1"}, "at": {"S": "2024-05-06T09:08:09+02:00"}})
    assert loaded.at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_date_is_stored_as_iso_date() -> None:
    assert encode(Times(day=date(5, 3, 9)))["day"] == {"S": "0005-03-09"}
    assert round_trip(Times(day=date(2024, 2, 29))).day == date(2024, 2, 29)


def test_ttl_is_stored_as_epoch_seconds() -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert encode(Times(expires=expires))["expires"] == {"N": str(int(expires.timestamp()))}
    assert round_trip(Times(expires=expires)).expires == expires
    assert Times.__dm_schema__.ttl_attribute == "expires"


def test_ttl_is_truncated_to_whole_seconds_on_assignment() -> None:
    times = Times(expires=datetime(2030, 1, 2, 3, 4, 5, 999999, tzinfo=UTC))
    assert times.expires == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    times.expires = datetime(2031, 1, 1, 0, 0, 0, 500000)
    assert times.expires == datetime(2031, 1, 1)
    assert round_trip(times).expires == datetime(2031, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("year", [1, 1969, 2603, 2604, 3000, 9999])
def test_ttl_reads_back_the_same_moment_in_any_year(year: int) -> None:
    expires = datetime(year, 6, 1, 12, 0, 1, tzinfo=UTC)
    assert round_trip(Times(expires=expires)).expires == expires


class Deadlines(Model):
    class Meta:
        table = "deadlines"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "d-1"
    purge_on: Annotated[date, dm.TTL] = date(2030, 1, 1)


class EpochTTL(Model):
    class Meta:
        table = "epochs"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "e-1"
    expires: Annotated[int, dm.TTL] = 0


def test_date_ttl_is_stored_as_epoch_seconds_of_utc_midnight() -> None:
    midnight = datetime(2030, 1, 1, tzinfo=UTC)
    assert encode(Deadlines())["purge_on"] == {"N": str(int(midnight.timestamp()))}
    assert round_trip(Deadlines()).purge_on == date(2030, 1, 1)


def test_int_ttl_is_stored_as_the_number() -> None:
    assert encode(EpochTTL(expires=1_900_000_000))["expires"] == {"N": "1900000000"}
    assert round_trip(EpochTTL(expires=32_503_680_000)).expires == 32_503_680_000


# ---------------------------------------------------------------- other scalars


class Scalars(Model):
    class Meta:
        table = "scalars"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "x-1"
    color: Color = Color.RED
    level: Level = Level.LOW
    role: Literal["student", "teacher"] = "student"
    rank: Literal[1, 2, 3] = 1
    ref: uuid.UUID = uuid.UUID(int=0)
    wait: timedelta = timedelta(0)
    password: SecretStr = SecretStr("")


def test_enums_are_stored_as_their_values() -> None:
    scalars = Scalars(color=Color.BLUE, level=Level.HIGH)
    item = encode(scalars)
    assert item["color"] == {"S": "blue"}
    assert item["level"] == {"N": "2"}
    loaded = round_trip(scalars)
    assert loaded.color is Color.BLUE
    assert loaded.level is Level.HIGH


def test_literals_are_stored_as_their_values() -> None:
    item = encode(Scalars(role="teacher", rank=3))
    assert item["role"] == {"S": "teacher"}
    assert item["rank"] == {"N": "3"}
    loaded = round_trip(Scalars(role="teacher", rank=3))
    assert (loaded.role, loaded.rank) == ("teacher", 3)


def test_uuid_is_stored_as_its_string() -> None:
    ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert encode(Scalars(ref=ref))["ref"] == {"S": "12345678-1234-5678-1234-567812345678"}
    assert round_trip(Scalars(ref=ref)).ref == ref


@pytest.mark.parametrize(
    ("wait", "text"),
    [(timedelta(seconds=1.5), "PT1.5S"), (timedelta(days=-1, seconds=5), "-PT23H59M55S")],
)
def test_timedelta_is_stored_as_iso_duration(wait: timedelta, text: str) -> None:
    assert encode(Scalars(wait=wait))["wait"] == {"S": text}
    assert round_trip(Scalars(wait=wait)).wait == wait


def test_secret_str_stores_the_secret_not_the_mask() -> None:
    item = encode(Scalars(password=SecretStr("hunter2")))
    assert item["password"] == {"S": "hunter2"}
    assert round_trip(Scalars(password=SecretStr("hunter2"))).password.get_secret_value() == (
        "hunter2"
    )


class Dynamic(Model):
    class Meta:
        table = "dynamic"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "d-1"
    payload: Any = None
    either: int | str = 0
    flag_or_number: bool | int = 0


@pytest.mark.parametrize(
    ("payload", "av"),
    [
        ("s", {"S": "s"}),
        (7, {"N": "7"}),
        (2.5, {"N": "2.5"}),
        (True, {"BOOL": True}),
        (b"\x01", {"B": b"\x01"}),
        ([1, "a", None], {"L": [{"N": "1"}, {"S": "a"}, {"NULL": True}]}),
        ({"k": {"n": [False]}}, {"M": {"k": {"M": {"n": {"L": [{"BOOL": False}]}}}}}),
        ({"a", "b"}, {"SS": ["a", "b"]}),
    ],
)
def test_any_is_encoded_by_the_runtime_type(payload: Any, av: dict[str, Any]) -> None:
    item = encode(Dynamic(payload=payload))
    if "SS" in av:
        assert sorted(item["payload"]["SS"]) == av["SS"]
    else:
        assert item["payload"] == av
    assert round_trip(Dynamic(payload=payload)).payload == payload


def test_any_set_to_none_is_omitted_when_its_default_is_none() -> None:
    assert "payload" not in encode(Dynamic(payload=None))


def test_union_is_encoded_by_the_runtime_type_and_keeps_it() -> None:
    assert encode(Dynamic(either=1))["either"] == {"N": "1"}
    assert encode(Dynamic(either="1"))["either"] == {"S": "1"}
    assert round_trip(Dynamic(either="1")).either == "1"
    assert round_trip(Dynamic(either=1)).either == 1
    assert encode(Dynamic(flag_or_number=True))["flag_or_number"] == {"BOOL": True}
    assert round_trip(Dynamic(flag_or_number=True)).flag_or_number is True
    assert round_trip(Dynamic(flag_or_number=1)).flag_or_number == 1


# ---------------------------------------------------------------- unknown attributes


def test_unknown_attributes_are_kept_aside_and_not_dumped() -> None:
    item: Item = {"id": {"S": "t-1"}, "body": {"S": "b"}, "legacy": {"NS": ["1"]}}
    text = load(Text, item)
    assert text._dm_extra == {"legacy": {"NS": ["1"]}}
    assert text.extra_attributes == {"legacy": {"NS": ["1"]}}
    assert text.model_dump() == {"id": "t-1", "body": "b"}
    assert "legacy" not in text.model_dump_json()


def test_session_load_keeps_unknown_attributes_aside() -> None:
    text = dm.Session().load(Text, {"id": {"S": "t-1"}, "other": {"S": "o"}})
    assert text.extra_attributes == {"other": {"S": "o"}}
    assert "other" not in text.model_dump()


# ---------------------------------------------------------------- item size


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"id": {"S": "abc"}}, 2 + 3),
        ({"\u00e9": {"S": "\u65e5\u672c"}}, 2 + 6),
        ({"n": {"N": "0"}}, 1 + 1),
        ({"n": {"N": "1"}}, 1 + 2),
        ({"n": {"N": "12"}}, 1 + 2),
        ({"n": {"N": "123"}}, 1 + 3),
        ({"n": {"N": "1.2"}}, 1 + 3),
        ({"n": {"N": "0.12"}}, 1 + 2),
        ({"n": {"N": "1.50"}}, 1 + 3),
        ({"n": {"N": "100"}}, 1 + 2),
        ({"n": {"N": "-1"}}, 1 + 3),
        ({"n": {"N": "-12"}}, 1 + 3),
        ({"n": {"N": "1E+2"}}, 1 + 2),
        ({"n": {"N": "12" * 19}}, 1 + 20),
        ({"n": {"N": "1." + "2" * 37}}, 1 + 21),
        ({"n": {"N": "-" + "1" * 37}}, 1 + 21),
        ({"b": {"B": b"\x00\x01\x02"}}, 1 + 3),
        ({"t": {"BOOL": True}}, 1 + 1),
        ({"z": {"NULL": True}}, 1 + 1),
        ({"m": {"M": {}}}, 1 + 3),
        ({"m": {"M": {"ab": {"S": "x"}, "c": {"N": "1"}}}}, 1 + 3 + (2 + 1 + 1) + (1 + 1 + 2)),
        ({"l": {"L": []}}, 1 + 3),
        ({"l": {"L": [{"S": "ab"}, {"BOOL": True}]}}, 1 + 3 + (1 + 2) + (1 + 1)),
        ({"s": {"SS": ["a", "bc"]}}, 1 + 3),
        ({"s": {"NS": ["1", "-12"]}}, 1 + 2 + 3),
        ({"s": {"BS": [b"ab", b"c"]}}, 1 + 3),
        ({"id": {"S": "u-1"}, "age": {"N": "42"}}, (2 + 3) + (3 + 2)),
    ],
)
def test_item_size_follows_dynamodb_rules(item: Item, size: int) -> None:
    assert item_size(item) == size


def test_item_of_exactly_the_limit_passes() -> None:
    item: Item = {"id": {"S": "x" * (MAX_ITEM_SIZE - 2)}}
    assert item_size(item) == 409_600
    check_item_size(item, "Text", "save")


def test_item_one_byte_over_the_limit_is_refused() -> None:
    item: Item = {"id": {"S": "x" * (MAX_ITEM_SIZE - 1)}}
    with pytest.raises(dm.ItemTooLarge, match=r"save Text: the item is 409601 bytes") as caught:
        check_item_size(item, "Text", "save")
    assert caught.value.size == 409_601


def test_item_with_a_lone_surrogate_is_refused_before_sending() -> None:
    with pytest.raises(EncodeError, match=r"save Text: .*lone surrogate"):
        check_item_size({"id": {"S": "\ud800"}}, "Text", "save")
