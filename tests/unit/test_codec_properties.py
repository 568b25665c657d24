"""Round trips of every type-table row, with values reaching DynamoDB's boundaries."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, SecretStr

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, Model
from dynamodm.codec import MAX_NESTING, EncodeError, Item, check_nesting, encode_float, item_size

REGISTRY = dm.Registry("unit-codec-properties")
PROPERTY = settings(max_examples=200, deadline=None)

MAX_INT = 10**38 - 1
DATETIME_WIDTH = len("YYYY-MM-DDTHH:MM:SS.ffffffZ")


class Mood(enum.StrEnum):
    HAPPY = "happy"
    SAD = "sad"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 9


class Leaf(BaseModel):
    label: str = Field(alias="the-label")
    weight: float | None = None


class Tree(BaseModel):
    name: str
    children: list[Tree] = []
    leaf: Leaf | None = None


class Wide(Model):
    class Meta:
        table = "wide"
        registry = REGISTRY
        indexes = (GlobalIndex("ActiveIndex", hash_key="active"),)

    id: Annotated[str, HashKey] = "w-1"
    text: str = ""
    count: int = 0
    ratio: float = 0.0
    amount: Decimal = Decimal(0)
    done: bool = False
    active: bool = False
    blob: bytes = b""
    maybe_none: int | None = None
    maybe_five: int | None = 5
    names: set[str] = set()
    counts: frozenset[int] = frozenset()
    ratios: set[float] = set()
    amounts: set[Decimal] = set()
    blobs: set[bytes] = set()
    maybe_names: set[str] | None = None
    numbers: list[int] = []
    pair: tuple[str, float] = ("", 0.0)
    scores: dict[str, float] = {}
    document: dict[str, Any] = {}
    tree: Tree | None = None
    at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    day: date = date(2000, 1, 1)
    expires: Annotated[datetime | None, dm.TTL] = None
    mood: Mood = Mood.HAPPY
    priority: Priority = Priority.LOW
    kind: Literal["a", "b", "c"] = "a"
    ref: uuid.UUID = uuid.UUID(int=0)
    wait: timedelta = timedelta(0)
    secret: SecretStr = SecretStr("")
    anything: Any = None
    either: int | str | bytes = 0


def round_trip(instance: Wide) -> Wide:
    item = Wide.__dm_codec__.encode_fields(instance)
    assert item_size(item) > 0
    data, extra = Wide.__dm_codec__.decode_fields(item)
    assert extra == {}
    return Wide.model_validate(data)


def assert_round_trips(**values: Any) -> Item:
    instance = Wide(**values)
    loaded = round_trip(instance)
    for name in values:
        assert getattr(loaded, name) == getattr(instance, name), name
    return Wide.__dm_codec__.encode_fields(instance)


# ---------------------------------------------------------------- strategies

ints = st.one_of(
    st.integers(-MAX_INT, MAX_INT),
    st.sampled_from([0, 1, -1, MAX_INT, -MAX_INT, 10**37, 9 * 10**125, -(9 * 10**125)]),
    # Trailing zeros are not significant: up to 38 digits times a power of ten below 1E+126.
    st.builds(lambda m, e: m * 10**e, st.integers(-MAX_INT, MAX_INT), st.integers(0, 88)),
)


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    """Up to 38 significant digits with a magnitude from 1E-130 to 9.99...E+125."""
    coefficient = draw(st.one_of(st.integers(0, MAX_INT), st.sampled_from([1, MAX_INT])))
    if coefficient == 0:
        return Decimal(0)
    digits = len(str(coefficient))
    exponent = draw(
        st.one_of(
            st.integers(-130 - (digits - 1), 125 - (digits - 1)),
            st.sampled_from([-130 - (digits - 1), 125 - (digits - 1)]),
        )
    )
    sign = draw(st.sampled_from([0, 1]))
    return Decimal((sign, tuple(int(d) for d in str(coefficient)), exponent))


magnitudes = st.one_of(
    st.floats(min_value=1e-130, max_value=9.999999999999998e125),
    st.sampled_from([1e-130, 9.999999999999998e125, 0.1, 1e16, 2.0**53 + 2]),
)
floats = st.one_of(st.just(0.0), st.just(-0.0), magnitudes, magnitudes.map(lambda f: -f))
texts = st.one_of(
    st.text(),  # every code point but surrogates
    st.sampled_from(["", "\x00", "\U0001f389", "a\x00b\U0001f469\u200d\U0001f4bbc\u0301"]),
    st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), min_size=1),
)
key_texts = st.text(max_size=8)

json_leaves = st.one_of(st.none(), st.booleans(), ints, floats, texts, st.binary(max_size=16))


@st.composite
def deep_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A map nested through maps and lists to a depth of 8 to 12."""
    value: Any = draw(json_leaves)
    for _ in range(draw(st.integers(8, 12))):
        if draw(st.booleans()):
            value = {**draw(st.dictionaries(key_texts, json_leaves)), draw(key_texts): value}
        else:
            value = [*draw(st.lists(json_leaves, max_size=3)), value]
    return {"root": value}


documents = st.one_of(
    st.dictionaries(
        key_texts,
        st.recursive(
            json_leaves,
            lambda children: (
                st.lists(children, max_size=4) | st.dictionaries(key_texts, children, max_size=4)
            ),
            max_leaves=20,
        ),
        max_size=5,
    ),
    deep_documents(),
)

leaves = st.builds(
    lambda label, weight: Leaf.model_validate({"the-label": label, "weight": weight}),
    texts,
    st.none() | floats,
)


def trees(depth: int) -> st.SearchStrategy[Tree]:
    if depth == 0:
        return st.builds(Tree, name=texts, leaf=st.none() | leaves)
    return st.builds(
        Tree,
        name=texts,
        children=st.lists(trees(depth - 1), min_size=1, max_size=1),
        leaf=st.none() | leaves,
    )


offsets = st.one_of(
    st.just(None),
    st.just(UTC),
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
    .map(lambda d: timedelta(minutes=d // timedelta(minutes=1)))
    .map(timezone),
)


def _utc_representable(moment: datetime) -> bool:
    try:
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return True


datetimes = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz),
    st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]),
    ),
    offsets,
).filter(_utc_representable)


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------- scalars


@PROPERTY
@given(texts)
def test_str_round_trips(value: str) -> None:
    assert assert_round_trips(text=value)["text"] == {"S": value}


@PROPERTY
@given(ints)
def test_int_round_trips_up_to_38_digits_and_1e125(value: int) -> None:
    assert assert_round_trips(count=value)["count"] == {"N": str(value)}


@PROPERTY
@given(floats)
def test_float_round_trips_through_its_shortest_repr(value: float) -> None:
    text = assert_round_trips(ratio=value)["ratio"]["N"]
    if value.is_integer() and abs(value) < 1e38 and Decimal(repr(value)) != int(value):
        # an integral float whose shortest repr names another integer: its exact digits
        assert Decimal(text) == int(value)
    else:
        assert text == repr(value)


@PROPERTY
@given(decimals())
def test_decimal_round_trips_exactly(value: Decimal) -> None:
    item = assert_round_trips(amount=value)
    assert item["amount"] == {"N": str(value)}
    assert str(round_trip(Wide(amount=value)).amount) == str(value)


@PROPERTY
@given(st.booleans(), st.booleans(), st.binary())
def test_bool_bool_index_key_and_bytes_round_trip(done: bool, active: bool, blob: bytes) -> None:
    item = assert_round_trips(done=done, active=active, blob=blob)
    assert item["done"] == {"BOOL": done}
    assert item["active"] == {"N": "1" if active else "0"}
    assert item["blob"] == {"B": blob}


@PROPERTY
@given(st.none() | ints, st.none() | ints)
def test_none_round_trips_whatever_the_default(
    maybe_none: int | None, maybe_five: int | None
) -> None:
    item = assert_round_trips(maybe_none=maybe_none, maybe_five=maybe_five)
    assert ("maybe_none" in item) == (maybe_none is not None)
    assert item["maybe_five"] == ({"NULL": True} if maybe_five is None else {"N": str(maybe_five)})


@PROPERTY
@given(
    st.sets(texts),
    st.frozensets(ints),
    st.sets(floats),
    st.sets(decimals()),
    st.sets(st.binary()),
    st.none() | st.sets(texts, min_size=1),
)
def test_sets_round_trip_including_empty(
    names: set[str],
    counts: frozenset[int],
    ratios: set[float],
    amounts: set[Decimal],
    blobs: set[bytes],
    maybe_names: set[str] | None,
) -> None:
    item = assert_round_trips(
        names=names,
        counts=counts,
        ratios=ratios,
        amounts=amounts,
        blobs=blobs,
        maybe_names=maybe_names,
    )
    for name, kind, value in [
        ("names", "SS", names),
        ("counts", "NS", counts),
        ("ratios", "NS", ratios),
        ("amounts", "NS", amounts),
        ("blobs", "BS", blobs),
    ]:
        if value:
            assert len(item[name][kind]) == len(value)
        else:
            assert name not in item


# ---------------------------------------------------------------- containers


@PROPERTY
@given(st.lists(ints), st.tuples(texts, floats), st.dictionaries(texts, floats))
def test_list_tuple_and_dict_round_trip(
    numbers: list[int], pair: tuple[str, float], scores: dict[str, float]
) -> None:
    item = assert_round_trips(numbers=numbers, pair=pair, scores=scores)
    assert item["numbers"] == {"L": [{"N": str(n)} for n in numbers]}
    assert item["pair"] == {"L": [{"S": pair[0]}, encode_float(pair[1])]}


@PROPERTY
@given(documents)
def test_nested_maps_and_lists_round_trip_to_depth_eight_and_more(
    document: dict[str, Any],
) -> None:
    assert_round_trips(document=document)


@PROPERTY
@given(trees(9))
def test_nested_models_round_trip_with_aliases(tree: Tree) -> None:
    item = assert_round_trips(tree=tree)
    node = item["tree"]["M"]
    while node["children"]["L"]:
        if "leaf" in node:
            assert "the-label" in node["leaf"]["M"]
        node = node["children"]["L"][0]["M"]


# ---------------------------------------------------------------- time


@PROPERTY
@given(datetimes)
def test_datetime_round_trips_as_fixed_width_utc(moment: datetime) -> None:
    item = Wide.__dm_codec__.encode_fields(Wide(at=moment))
    text = item["at"]["S"]
    assert len(text) == DATETIME_WIDTH
    assert text.endswith("Z")
    assert round_trip(Wide(at=moment)).at == as_utc(moment)


@PROPERTY
@given(datetimes, datetimes)
def test_datetime_string_order_is_time_order(first: datetime, second: datetime) -> None:
    texts = [Wide.__dm_codec__.encode_fields(Wide(at=m))["at"]["S"] for m in (first, second)]
    assert (texts[0] < texts[1]) == (as_utc(first) < as_utc(second))
    assert (texts[0] == texts[1]) == (as_utc(first) == as_utc(second))


@PROPERTY
@given(st.dates())
def test_date_round_trips(day: date) -> None:
    assert assert_round_trips(day=day)["day"] == {"S": day.isoformat()}


@PROPERTY
@given(datetimes)
def test_ttl_round_trips_in_whole_seconds(moment: datetime) -> None:
    instance = Wide(expires=moment)
    assert instance.expires == moment.replace(microsecond=0)
    item = Wide.__dm_codec__.encode_fields(instance)
    assert item["expires"] == {"N": str(int(as_utc(moment.replace(microsecond=0)).timestamp()))}
    assert round_trip(instance).expires == as_utc(moment.replace(microsecond=0))


# ---------------------------------------------------------------- other rows


@PROPERTY
@given(
    st.sampled_from(Mood),
    st.sampled_from(Priority),
    st.sampled_from(["a", "b", "c"]),
    st.uuids(),
    st.timedeltas(),
    texts,
)
def test_enum_literal_uuid_timedelta_and_secret_round_trip(
    mood: Mood, priority: Priority, kind: str, ref: uuid.UUID, wait: timedelta, secret: str
) -> None:
    item = assert_round_trips(
        mood=mood, priority=priority, kind=kind, ref=ref, wait=wait, secret=SecretStr(secret)
    )
    assert item["mood"] == {"S": mood.value}
    assert item["priority"] == {"N": str(priority.value)}
    assert item["ref"] == {"S": str(ref)}
    assert item["secret"] == {"S": secret}


@PROPERTY
@given(json_leaves | documents, ints | texts | st.binary())
def test_any_and_unions_round_trip_by_runtime_type(
    anything: Any, either: int | str | bytes
) -> None:
    assert_round_trips(anything=anything, either=either)
    assert type(round_trip(Wide(either=either)).either) is type(either)


@PROPERTY
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "text": texts,
            "count": ints,
            "amount": decimals(),
            "names": st.sets(texts, max_size=3),
            "document": documents,
            "at": datetimes,
            "expires": st.none() | datetimes,
            "maybe_five": st.none() | ints,
        },
    )
)
def test_whole_items_round_trip(values: dict[str, Any]) -> None:
    instance = Wide(**values)
    expected = instance.model_dump()
    for name in ("at", "expires"):
        if expected[name] is not None:
            expected[name] = as_utc(expected[name])
    assert round_trip(instance).model_dump() == expected


# ---------------------------------------------------------------- nesting


def attribute_values(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    scalars = st.sampled_from([{"S": "a"}, {"N": "1"}, {"BOOL": True}, {"NULL": True}])
    empty = st.sampled_from([{"L": []}, {"M": {}}])
    if depth == 0:
        return scalars | empty
    children = attribute_values(depth - 1)
    return st.one_of(
        scalars,
        empty,
        st.lists(children, min_size=1, max_size=2).map(lambda values: {"L": values}),
        st.dictionaries(key_texts, children, min_size=1, max_size=2).map(
            lambda values: {"M": values}
        ),
    )


def chains(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
    value = leaf
    for level in range(levels - 1):
        value = {"L": [value]} if level % 2 else {"M": {"k": value}}
    return value


def levels(av: dict[str, Any]) -> int:
    """How many levels a value spans, itself the first."""
    ((kind, raw),) = av.items()
    members = raw.values() if kind == "M" else raw if kind == "L" else []
    return 1 + max((levels(m) for m in members), default=0)


@PROPERTY
@given(
    st.one_of(
        attribute_values(6),
        st.builds(chains, st.integers(1, 40), attribute_values(2)),
    ),
    st.sampled_from([0, 1, 5, MAX_NESTING - 2, MAX_NESTING - 1, MAX_NESTING]),
)
def test_nesting_is_refused_exactly_past_32_levels(av: dict[str, Any], above: int) -> None:
    if above + levels(av) > MAX_NESTING:
        with pytest.raises(EncodeError, match="nested more than 32 levels"):
            check_nesting(av, "the value", above)
    else:
        check_nesting(av, "the value", above)


# ---------------------------------------------------------------- nesting bounds by type


class Deep(BaseModel):
    rows: list[list[int]] = []
    leaf: Leaf | None = None


def _declared(levels: int, leaf: Any = int) -> Any:
    """list[list[...[leaf]...]] with ``levels`` lists."""
    annotation = leaf
    for _ in range(levels):
        annotation = list[annotation]
    return annotation


@pytest.mark.parametrize(
    ("annotation", "depth"),
    [
        (str, 0),
        (int | None, 0),
        (set[str], 0),
        (frozenset[int], 0),
        (bytes, 0),
        (datetime, 0),
        (Mood, 0),
        (SecretStr, 0),
        (list[str], 1),
        (list[str | None], 1),
        (dict[str, float], 1),
        (Leaf, 1),
        (Leaf | None, 1),
        (list[Leaf], 2),
        (Deep, 3),  # a map holding a list of lists
        (dict[str, list[Deep]], 5),
        (_declared(MAX_NESTING), MAX_NESTING),
        (Any, None),
        (dict[str, Any], None),
        (list[Any], None),
        (timedelta, None),  # stored as Pydantic dumps it: not bounded (walked, as before)
        (Tree, None),  # contains itself: no bound
    ],
)
def test_nesting_depth_of_declared_types(annotation: Any, depth: int | None) -> None:
    from dynamodm.codec import compile_type, nesting_depth

    assert nesting_depth(compile_type(annotation)) == depth


class Bounded(Model):
    class Meta:
        table = "bounded"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "b-1"
    words: list[str] = []
    deep: Deep = Deep()
    tree: Tree | None = None
    anything: Any = None
    deepest: _declared(MAX_NESTING - 1) = []  # type: ignore[valid-type]
    too_deep: _declared(MAX_NESTING) = []  # type: ignore[valid-type]


def _chain(levels: int) -> Any:
    value: Any = [1]
    for _ in range(levels - 1):
        value = [value]
    return value


def test_only_attributes_whose_type_bounds_them_skip_the_nesting_walk() -> None:
    assert Bounded.__dm_codec__.bounded == {"id", "words", "deep", "deepest"}


async def test_unbounded_attributes_are_still_walked_before_sending() -> None:
    # The deepest declared type fits; one level more, and Any or a recursive model, are
    # checked on every write as before.
    from hostile_models import offline_session

    tree = Tree(name="root")
    for _ in range(MAX_NESTING):
        tree = Tree(name="n", children=[tree])
    async with offline_session(), dm.dry_run() as dry:
        await Bounded(deepest=_chain(MAX_NESTING - 1)).save()
        assert len(dry.requests) == 1
        for field, instance in [
            ("too_deep", Bounded(too_deep=_chain(MAX_NESTING))),
            ("anything", Bounded(anything=_chain(MAX_NESTING))),
            ("tree", Bounded(tree=tree)),
        ]:
            with pytest.raises(EncodeError, match=f"'{field}' is nested more than 32 levels"):
                await instance.save()
        with pytest.raises(EncodeError, match="'anything' is nested more than 32 levels"):
            async with dm.batch_write() as batch:
                batch.put(Bounded(anything={"a": _chain(MAX_NESTING)}))
        assert len(dry.requests) == 1


@PROPERTY
@given(
    st.lists(st.lists(st.integers(-5, 5), max_size=3), max_size=3),
    st.one_of(st.none(), st.text(max_size=3).map(lambda label: Leaf(**{"the-label": label}))),
    st.lists(st.text(max_size=3), max_size=3),
)
def test_a_bounded_attribute_never_holds_more_levels_than_its_type_allows(
    rows: list[list[int]], leaf: Leaf | None, words: list[str]
) -> None:
    from dynamodm.codec import nesting_depth

    item = Bounded.__dm_codec__.encode_fields(Bounded(deep=Deep(rows=rows, leaf=leaf), words=words))
    for spec in Bounded.__dm_codec__.fields:
        if spec.attribute in Bounded.__dm_codec__.bounded and spec.attribute in item:
            assert levels(item[spec.attribute]) - 1 <= (nesting_depth(spec.codec) or 0)


def test_nesting_depth_walks_each_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Three fields of the next level at each of 30 levels: walking every path would take
    # 3**30 steps; each model's depth is worked out once.
    from pydantic import create_model

    from dynamodm import codec as codec_module

    level: type[BaseModel] = create_model("Level0", leaf=(str, ""))
    for number in range(1, 31):
        level = create_model(
            f"Level{number}",
            a=(level | None, None),
            b=(level | None, None),
            c=(list[level], []),
        )
    calls = 0
    walk = codec_module.nesting_depth

    def counted(codec: Any, within: tuple[Any, ...] = ()) -> int | None:
        nonlocal calls
        calls += 1
        if calls > 400:  # fails at once where every path would be walked
            raise AssertionError("nesting_depth walked the same models again")
        return walk(codec, within)

    monkeypatch.setattr(codec_module, "nesting_depth", counted)
    depth = counted(codec_module.compile_type(level))
    assert depth == 61  # 30 levels of (a list of) the next level, then the leaf's model
    assert calls < 400
