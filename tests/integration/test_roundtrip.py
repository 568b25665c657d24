"""Every row of the type table survives a trip through a real local server.

Each test writes instances with ``save()`` or ``create()``, reads them back with
``get(consistent=True)`` and compares. Strategies reach DynamoDB's boundaries
(38 significant digits, magnitudes 1E-130 and 9.99E+125, empty and large strings,
empty sets). The tables are created once per test function, not per example.
"""

from __future__ import annotations

import enum
import operator
import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import AnyUrl, BaseModel, Field, SecretStr

import dynamodm as dm

REG = dm.Registry("roundtrip-tests")
M = TypeVar("M", bound=dm.Model)

ROUNDTRIP = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------- strategies

MAX_INT = 10**38 - 1
SMALLEST = Decimal("1E-130")
LARGEST = Decimal("9.9999999999999999999999999999999999999E+125")
LARGEST_FLOAT = 9.999999999999998e125  # the largest float whose shortest repr is in range


@st.composite
def dynamo_decimals(draw: st.DrawFn) -> Decimal:
    """Any Decimal DynamoDB can store: up to 38 significant digits, adjusted exponent in
    [-130, 125]."""
    coefficient = draw(st.integers(1, MAX_INT))
    digits = len(str(coefficient))
    exponent = draw(st.integers(-130 - (digits - 1), 125 - (digits - 1)))
    sign = draw(st.sampled_from([0, 1]))
    return Decimal((sign, tuple(int(d) for d in str(coefficient)), exponent))


decimals = st.one_of(
    dynamo_decimals(),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**30), max_value=10**30
    ),
    st.sampled_from(
        [
            Decimal(0),
            SMALLEST,
            SMALLEST.copy_negate(),
            LARGEST,
            LARGEST.copy_negate(),
            Decimal(MAX_INT),
        ]
    ),
)

large_ints = dynamo_decimals().filter(lambda d: d == d.to_integral_value()).map(int)
ints = st.one_of(
    st.integers(-MAX_INT, MAX_INT),
    st.sampled_from([0, 1, -1, MAX_INT, -MAX_INT, 10**37, 2**63, -(2**63) - 1]),
    large_ints,
)

floats = st.one_of(
    st.floats(min_value=1e-130, max_value=LARGEST_FLOAT),
    st.floats(min_value=-LARGEST_FLOAT, max_value=-1e-130),
    st.sampled_from([0.0, -0.0, 0.1, 1e-130, -1e-130, LARGEST_FLOAT, 1e16, 1e-7]),
)

texts = st.one_of(
    st.text(),
    st.sampled_from(["", "\x00", "a\x00b", "😀", "👩‍👩‍👧‍👦", "\U0010ffff", " ", "é" * 3]),
    # tens of KB: a short piece repeated (cheap to generate, up to ~190 KB of UTF-8)
    st.builds(operator.mul, st.text(min_size=1, max_size=8), st.integers(1_000, 6_000)),
)

blobs = st.one_of(
    st.binary(),
    st.just(b""),
    st.builds(operator.mul, st.binary(min_size=1, max_size=8), st.integers(1_000, 8_000)),
)

fixed_offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
datetimes = st.one_of(
    st.datetimes(),  # naive, years 1 to 9999: taken as UTC
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.just(UTC) | fixed_offsets,
    ),
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]),
)

# "__proto__" is left to test_a_map_key_named_proto_round_trips (dynalite mishandles it).
keys = st.text(min_size=1, max_size=20).filter(lambda key: key != "__proto__")


def scalars() -> st.SearchStrategy[Any]:
    # An integral float of 1e38 or more has no exact decimal text within 38 digits: an Any
    # field reads its stored text back as an int (documented); typed float fields do not.
    any_floats = floats.filter(lambda f: abs(f) < 1e38 or not f.is_integer())
    return st.one_of(
        st.none(), st.booleans(), ints, any_floats, st.text(max_size=50), st.binary()
    )


json_like = st.recursive(
    scalars(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# ---------------------------------------------------------------- models


class Strings(dm.Model):
    class Meta:
        table = "rt-strings"
        registry = REG

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    text: str
    short: str = ""


class Integers(dm.Model):
    class Meta:
        table = "rt-integers"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    number: int
    negative: int = -1


class Floats(dm.Model):
    class Meta:
        table = "rt-floats"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    number: float
    ratio: float = 0.5


class Decimals(dm.Model):
    class Meta:
        table = "rt-decimals"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    number: Decimal


class BoolsAndBytes(dm.Model):
    class Meta:
        table = "rt-bools-bytes"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    flag: bool
    blob: bytes
    maybe: bool | None = None


class Inner(BaseModel):
    name: str
    size: int = Field(default=0, alias="Size")
    note: str | None = None
    tags: list[str] = []


class Nones(dm.Model):
    class Meta:
        table = "rt-nones"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    omitted: str | None = None
    nullable: str | None = "default"
    count: int | None = 5
    inner: Inner | None = None
    when: datetime | None = None


class Sets(dm.Model):
    class Meta:
        table = "rt-sets"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    strings: set[str] = set()
    ints: set[int] = set()
    floats: set[float] = set()
    decimals: set[Decimal] = set()
    blobs: set[bytes] = set()
    frozen: frozenset[str] = frozenset()


class Sequences(dm.Model):
    class Meta:
        table = "rt-sequences"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    numbers: list[int]
    words: tuple[str, ...] = ()
    pair: tuple[int, str] = (0, "")
    nested: list[list[str]] = []
    holes: list[int | None] = []
    blobs: list[bytes] = []


class Maps(dm.Model):
    class Meta:
        table = "rt-maps"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    counts: dict[str, int]
    deep: dict[str, dict[str, list[float]]] = {}
    inner: Inner
    inners: list[Inner] = []
    by_name: dict[str, Inner] = {}
    optional: dict[str, str | None] = {}


class Times(dm.Model):
    class Meta:
        table = "rt-times"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    at: datetime
    day: date
    history: list[datetime] = []


class Expiring(dm.Model):
    class Meta:
        table = "rt-ttl"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    expires_at: Annotated[datetime | None, dm.TTL] = None


class ExpiringSeconds(dm.Model):
    class Meta:
        table = "rt-ttl-seconds"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    expires_at: Annotated[int, dm.TTL]


class Color(enum.StrEnum):
    RED = "red"
    GREEN = "green"
    EMPTY = ""


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Misc(dm.Model):
    class Meta:
        table = "rt-misc"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    color: Color
    level: Level
    kind: Literal["a", "b", "c"]
    uid: UUID
    span: timedelta
    secret: SecretStr
    site: AnyUrl
    colors: set[Color] = set()


class Dynamic(dm.Model):
    class Meta:
        table = "rt-dynamic"
        registry = REG

    id: Annotated[str, dm.HashKey] = "item"
    anything: Any = None
    either: int | str = 0
    flag_or_number: bool | int = False
    text_or_blob: str | bytes = ""
    number_or_words: float | list[str] = 0.0


T = TypeVar("T")


def uses(*models: type[dm.Model]) -> Callable[[T], T]:
    """The tables a test needs (the ``rt`` fixture creates them once per test function)."""

    def mark(test: T) -> T:
        test.__dm_tables__ = models  # type: ignore[attr-defined]
        return test

    return mark


@pytest.fixture
async def rt(db: dm.Session, request: pytest.FixtureRequest) -> dm.Session:
    """A session whose round-trip tables exist (created once per test function)."""
    await db.create_tables(*request.function.__dm_tables__)
    return db


async def stored_item(db: dm.Session, model: type[dm.Model]) -> dict[str, Any]:
    """The item with id "item" as stored, read around the library."""
    response = await db.client.get_item(
        TableName=db.table_name(model), Key={"id": {"S": "item"}}, ConsistentRead=True
    )
    item: dict[str, Any] = response["Item"]
    return item


async def save_and_get(instance: M) -> M:
    await instance.save()
    key: Any = getattr(instance, "id")  # noqa: B009 (every model here keys on id)
    # include_expired: a TTL in the past must round-trip too (reads hide it by default).
    return await type(instance).get(key, consistent=True, include_expired=True)


# ---------------------------------------------------------------- one test per row


@uses(Strings)
@ROUNDTRIP
@given(text=texts, short=st.text(max_size=30))
async def test_str_round_trips(rt: dm.Session, text: str, short: str) -> None:
    created = await Strings.create(text=text, short=short)

    got = await Strings.get(created.id, consistent=True)

    assert got.text == text
    assert got.short == short
    assert got == created


@uses(Integers)
@ROUNDTRIP
@given(number=ints, negative=ints)
async def test_int_round_trips(rt: dm.Session, number: int, negative: int) -> None:
    got = await save_and_get(Integers(number=number, negative=negative))

    assert type(got.number) is int
    assert (got.number, got.negative) == (number, negative)


@uses(Floats)
@ROUNDTRIP
@given(number=floats, ratio=floats)
async def test_float_round_trips(rt: dm.Session, number: float, ratio: float) -> None:
    got = await save_and_get(Floats(number=number, ratio=ratio))

    assert type(got.number) is float
    assert (got.number, got.ratio) == (number, ratio)


@uses(Decimals)
@ROUNDTRIP
@given(number=decimals)
async def test_decimal_round_trips_exactly(rt: dm.Session, number: Decimal) -> None:
    got = await save_and_get(Decimals(number=number))

    assert isinstance(got.number, Decimal)
    assert got.number == number


@uses(BoolsAndBytes)
@ROUNDTRIP
@given(flag=st.booleans(), blob=blobs, maybe=st.none() | st.booleans())
async def test_bool_and_bytes_round_trip(
    rt: dm.Session, flag: bool, blob: bytes, maybe: bool | None
) -> None:
    instance = BoolsAndBytes(flag=flag, blob=blob, maybe=maybe)

    got = await save_and_get(instance)

    assert got.flag is flag
    assert type(got.blob) is bytes
    assert got == instance


inners = st.builds(
    Inner,
    name=st.text(max_size=20),
    Size=ints,
    note=st.none() | st.text(max_size=20),
    tags=st.lists(st.text(max_size=10), max_size=4),
)


@uses(Nones)
@ROUNDTRIP
@given(
    omitted=st.none() | st.text(max_size=20),
    nullable=st.none() | st.text(max_size=20),
    count=st.none() | ints,
    inner=st.none() | inners,
    when=st.none() | datetimes,
)
async def test_none_and_defaults_round_trip(
    rt: dm.Session,
    omitted: str | None,
    nullable: str | None,
    count: int | None,
    inner: Inner | None,
    when: datetime | None,
) -> None:
    instance = Nones(omitted=omitted, nullable=nullable, count=count, inner=inner, when=when)

    got = await save_and_get(instance)

    assert (got.omitted, got.nullable, got.count, got.inner) == (omitted, nullable, count, inner)
    assert got.when == (None if when is None else as_utc(when))
    stored = await stored_item(rt, Nones)
    # None is omitted when the field's default is None, stored as NULL otherwise
    assert ("omitted" in stored) is (omitted is not None)
    assert ("inner" in stored) is (inner is not None)
    assert stored["nullable"] == ({"NULL": True} if nullable is None else {"S": nullable})
    assert set(stored["count"]) == ({"NULL"} if count is None else {"N"})


@uses(Sets)
@ROUNDTRIP
@given(
    strings=st.sets(texts, max_size=5),
    ints_=st.sets(ints, max_size=5),
    floats_=st.sets(floats, max_size=5),
    decimals_=st.sets(decimals, max_size=5),
    blobs_=st.sets(st.binary(max_size=20), max_size=5),
    frozen=st.frozensets(st.text(max_size=10), max_size=5),
)
async def test_sets_round_trip_including_empty_ones(
    rt: dm.Session,
    strings: set[str],
    ints_: set[int],
    floats_: set[float],
    decimals_: set[Decimal],
    blobs_: set[bytes],
    frozen: frozenset[str],
) -> None:
    instance = Sets(
        strings=strings,
        ints=ints_,
        floats=floats_,
        decimals=decimals_,
        blobs=blobs_,
        frozen=frozen,
    )

    got = await save_and_get(instance)

    assert got == instance
    stored = await stored_item(rt, Sets)
    for name, kind in [("strings", "SS"), ("ints", "NS"), ("blobs", "BS"), ("frozen", "SS")]:
        value = getattr(instance, name)
        assert (name in stored) is bool(value)  # an empty set is no attribute
        if value:
            assert kind in stored[name]


@uses(Sequences)
@ROUNDTRIP
@given(
    numbers=st.lists(ints, max_size=10),
    words=st.lists(st.text(max_size=10), max_size=5).map(tuple),
    pair=st.tuples(ints, st.text(max_size=10)),
    nested=st.lists(st.lists(st.text(max_size=5), max_size=3), max_size=3),
    holes=st.lists(st.none() | ints, max_size=5),
    blobs_=st.lists(st.binary(max_size=10), max_size=3),
)
async def test_lists_and_tuples_round_trip(
    rt: dm.Session,
    numbers: list[int],
    words: tuple[str, ...],
    pair: tuple[int, str],
    nested: list[list[str]],
    holes: list[int | None],
    blobs_: list[bytes],
) -> None:
    instance = Sequences(
        numbers=numbers, words=words, pair=pair, nested=nested, holes=holes, blobs=blobs_
    )

    got = await save_and_get(instance)

    assert got == instance


@uses(Maps)
@ROUNDTRIP
@given(
    counts=st.dictionaries(keys, ints, max_size=5),
    deep=st.dictionaries(
        keys, st.dictionaries(keys, st.lists(floats, max_size=3), max_size=3), max_size=3
    ),
    inner=inners,
    inners_=st.lists(inners, max_size=3),
    by_name=st.dictionaries(keys, inners, max_size=3),
    optional=st.dictionaries(keys, st.none() | st.text(max_size=5), max_size=4),
)
async def test_maps_and_nested_models_round_trip(
    rt: dm.Session,
    counts: dict[str, int],
    deep: dict[str, dict[str, list[float]]],
    inner: Inner,
    inners_: list[Inner],
    by_name: dict[str, Inner],
    optional: dict[str, str | None],
) -> None:
    instance = Maps(
        counts=counts, deep=deep, inner=inner, inners=inners_, by_name=by_name, optional=optional
    )

    got = await save_and_get(instance)

    assert got == instance


@uses(Times)
@ROUNDTRIP
@given(at=datetimes, day=st.dates(), history=st.lists(datetimes, max_size=3))
async def test_datetimes_and_dates_round_trip_as_utc(
    rt: dm.Session, at: datetime, day: date, history: list[datetime]
) -> None:
    got = await save_and_get(Times(at=at, day=day, history=history))

    assert got.at == as_utc(at)
    assert got.at.utcoffset() == timedelta(0)
    assert got.day == day
    assert got.history == [as_utc(h) for h in history]


@uses(Expiring, ExpiringSeconds)
@ROUNDTRIP
@given(expires_at=st.none() | datetimes, seconds=ints)
async def test_ttl_fields_round_trip_as_whole_epoch_seconds(
    rt: dm.Session, expires_at: datetime | None, seconds: int
) -> None:
    instance = Expiring(expires_at=expires_at)

    got = await save_and_get(instance)
    got_seconds = await save_and_get(ExpiringSeconds(expires_at=seconds))

    expected = None if expires_at is None else as_utc(expires_at).replace(microsecond=0)
    assert instance.expires_at == (
        None if expires_at is None else expires_at.replace(microsecond=0)
    )
    assert got.expires_at == expected
    assert got_seconds.expires_at == seconds
    stored = await stored_item(rt, Expiring)
    if expected is None:
        assert "expires_at" not in stored
    else:
        assert stored["expires_at"] == {"N": str(int(expected.timestamp()))}


urls = st.builds(
    lambda host, path: AnyUrl(f"https://{host}.example.com/{path}"),
    st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=20),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~/", max_size=30),
)


@uses(Misc)
@ROUNDTRIP
@given(
    color=st.sampled_from(Color),
    level=st.sampled_from(Level),
    kind=st.sampled_from(["a", "b", "c"]),
    uid=st.uuids(),
    span=st.timedeltas(),
    secret=st.text().map(SecretStr),
    site=urls,
    colors=st.sets(st.sampled_from(Color)),
)
async def test_enums_literals_uuids_timedeltas_secrets_and_urls_round_trip(
    rt: dm.Session,
    color: Color,
    level: Level,
    kind: Literal["a", "b", "c"],
    uid: UUID,
    span: timedelta,
    secret: SecretStr,
    site: AnyUrl,
    colors: set[Color],
) -> None:
    instance = Misc(
        color=color,
        level=level,
        kind=kind,
        uid=uid,
        span=span,
        secret=secret,
        site=site,
        colors=colors,
    )

    got = await save_and_get(instance)

    assert got == instance
    assert got.secret.get_secret_value() == secret.get_secret_value()
    assert type(got.color) is Color
    assert type(got.level) is Level


async def test_email_round_trips(db: dm.Session) -> None:
    pytest.importorskip("email_validator", reason="EmailStr needs the email-validator package")
    from pydantic import EmailStr

    class Contact(dm.Model):
        class Meta:
            table = "rt-contacts"
            registry = dm.Registry("roundtrip-email")

        id: Annotated[str, dm.HashKey] = "item"
        email: EmailStr

    await db.create_tables(Contact)
    for address in ["ada@example.com", "o'brien+tag@sub.example.org", "x@example.io"]:
        assert (await save_and_get(Contact(email=address))).email == address


@uses(Dynamic)
@ROUNDTRIP
@given(
    anything=json_like,
    either=ints | st.text(max_size=20),
    flag_or_number=st.booleans() | ints,
    text_or_blob=st.text(max_size=20) | st.binary(max_size=20),
    number_or_words=floats | st.lists(st.text(max_size=5), max_size=3),
)
@example(
    anything={"a": [1, 2.5, None, True, "x", b"\x00"], "b": {"c": {}}, "d": []},
    either="5",
    flag_or_number=1,
    text_or_blob=b"",
    number_or_words=[],
)
async def test_any_and_unions_round_trip_by_runtime_type(
    rt: dm.Session,
    anything: Any,
    either: int | str,
    flag_or_number: bool | int,
    text_or_blob: str | bytes,
    number_or_words: float | list[str],
) -> None:
    instance = Dynamic(
        anything=anything,
        either=either,
        flag_or_number=flag_or_number,
        text_or_blob=text_or_blob,
        number_or_words=number_or_words,
    )

    got = await save_and_get(instance)

    assert got == instance
    assert type(got.either) is type(either)
    assert type(got.flag_or_number) is type(flag_or_number)
    assert type(got.text_or_blob) is type(text_or_blob)


@uses(Maps)
async def test_a_map_key_named_proto_round_trips(
    rt: dm.Session, server: Any, request: pytest.FixtureRequest
) -> None:
    if server.name == "dynalite":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="dynalite (JavaScript) drops a map key named __proto__ or refuses the "
                "map; DynamoDB stores any non-empty key",
            )
        )
    instance = Maps(
        counts={"__proto__": 1, "a": 2},
        inner=Inner(name="x"),
        deep={"__proto__": {"b": [1.5]}},
    )

    got = await save_and_get(instance)

    assert got == instance


@uses(Dynamic)
@pytest.mark.parametrize("number", [1e-07, 1.5e-130, -2.5e-20], ids=repr)
async def test_any_field_reads_back_a_float_with_an_exponent_as_the_same_float(
    rt: dm.Session, number: float
) -> None:
    # DynamoDB trims a number's text (1e-07 comes back as 0.0000001); the value is kept.
    got = await save_and_get(Dynamic(anything={"n": number, "list": [number]}))

    assert got.anything == {"n": number, "list": [number]}
    assert type(got.anything["n"]) is float


@uses(Dynamic)
async def test_any_field_reads_back_a_large_integral_float_as_the_same_number(
    rt: dm.Session,
) -> None:
    # Written as its exact digits (36028797018963968), not its shortest repr.
    number = 3.602879701896397e16

    got = await save_and_get(Dynamic(anything=number))

    assert got.anything == number


# ---------------------------------------------------------------- refused before sending


@uses(Integers, Decimals, Floats, Sets)
@pytest.mark.parametrize(
    ("model", "values"),
    [
        (Integers, {"number": 10**38 + 1}),
        (Integers, {"number": 10**126}),
        (Decimals, {"number": Decimal("1E-131")}),
        (Decimals, {"number": Decimal("1E+126")}),
        (Decimals, {"number": Decimal("1." + "1" * 38)}),
        (Floats, {"number": 1e-200}),
        (Floats, {"number": 1e200}),
        (Sets, {"ints": {1, 10**40 + 1}}),
    ],
    ids=[
        "int-39-digits",
        "int-too-large",
        "decimal-too-small",
        "decimal-too-large",
        "decimal-39-digits",
        "float-too-small",
        "float-too-large",
        "set-element-39-digits",
    ],
)
async def test_numbers_outside_dynamodbs_range_are_refused_before_sending(
    rt: dm.Session, model: type[dm.Model], values: dict[str, Any]
) -> None:
    instance = model(**values)

    with pytest.raises(dm.UsageError, match=model.__name__):
        await instance.save()

    stored = await rt.client.get_item(
        TableName=rt.table_name(model), Key={"id": {"S": "item"}}, ConsistentRead=True
    )
    assert "Item" not in stored
