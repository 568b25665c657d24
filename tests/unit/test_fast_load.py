"""Exact loading: models whose fields the decoders produce as they are skip Pydantic's
second pass, and give the instances full validation gives; anything else is validated."""

from __future__ import annotations

import base64
import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, Model, RangeKey
from dynamodm.codec import EncodeError, Item, Mismatch
from dynamodm.instances import load_checked

REGISTRY = dm.Registry("unit-fast-load")
PROPERTY = settings(max_examples=200, deadline=None)


class Leaf(BaseModel):
    label: str = Field(alias="the-label")
    weight: float | None = None
    tags: list[str] = []


class Shade(str, enum.Enum):  # noqa: UP042 (a str mixin, as most apps declare them)
    LIGHT = "light"
    DARK = "dark"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 3


class Plain(enum.Enum):
    ONE = "one"
    TWO = 2


class Lenient(enum.Enum):
    A = "a"

    @classmethod
    def _missing_(cls, value: object) -> Lenient:
        return cls.A


class Fast(Model):
    """Every row of the type table the exact decoders take as it is."""

    class Meta:
        table = "fast"
        registry = REGISTRY
        indexes = (GlobalIndex("ActiveIndex", hash_key="active"),)

    id: Annotated[str, HashKey]
    sort: Annotated[int, RangeKey] = 0
    text: str = ""
    renamed: str = Field(default="", alias="stored-as")
    count: int = 0
    ratio: float = 0.0
    done: bool = False
    active: bool = False  # an index key: stored as N 0/1
    blob: bytes = b""
    maybe_none: int | None = None
    maybe_five: int | None = 5
    maybe_text: str | None = "x"
    names: set[str] = set()
    counts: frozenset[int] = frozenset()
    ratios: set[float] = set()
    blobs: set[bytes] = set()
    maybe_names: set[str] | None = None
    numbers: list[int] = []
    holes: list[str | None] = []
    scores: dict[str, float] = {}
    document: dict[str, Any] = {}
    anything: Any = None
    leaf: Leaf | None = None
    leaves: list[Leaf] = Field(default_factory=list)
    version: Annotated[int, dm.Version] = 0
    when: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    created: Annotated[datetime, dm.CreatedAt] = Field(
        default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC)
    )
    maybe_when: datetime | None = None
    day: date = date(2000, 1, 1)
    ident: uuid.UUID = uuid.UUID(int=0)
    amount: Decimal = Decimal(0)
    shade: Shade = Shade.LIGHT
    level: Level = Level.LOW
    plain: Plain = Plain.ONE
    mode: Literal["a", "b", 7] = "a"
    moments: list[datetime] = []


def full(model: type[Model], item: Item) -> Any:
    """What full decoding and validation make of ``item`` (the exact loader and the
    one-call load built on it switched off)."""
    codec = model.__dm_codec__
    exact, fast = codec.exact, codec.fast_load
    codec.exact, codec.fast_load = None, False
    try:
        return load_checked(model, item)
    finally:
        codec.exact, codec.fast_load = exact, fast


def state(value: Any) -> Any:
    """Everything an instance holds, types included (1 is not 1.0 nor True; set is not
    frozenset; a nested model's fields set counts)."""
    if isinstance(value, BaseModel):
        return (
            type(value),
            [(k, state(v)) for k, v in value.__dict__.items()],
            value.model_fields_set,
            value.__pydantic_extra__,
            value.__pydantic_private__,
        )
    if isinstance(value, list):
        return [state(v) for v in value]
    if isinstance(value, dict):
        return [(k, state(v)) for k, v in value.items()]
    if isinstance(value, set | frozenset):
        return (type(value), sorted(repr(v) for v in value))
    return (type(value), repr(value))


def outcome(model: type[Model], item: Item, *, exact: bool) -> Any:
    try:
        instance = load_checked(model, item) if exact else full(model, item)
    except dm.ItemInvalid as error:
        return ("invalid", error.fields, error.key)
    return state(instance)


def assert_same(item: Item) -> Any:
    built = outcome(Fast, item, exact=True)
    assert built == outcome(Fast, item, exact=False)
    return built


def test_a_model_of_plain_fields_compiles_an_exact_loader() -> None:
    assert Fast.__dm_codec__.exact is not None


@pytest.mark.parametrize(
    ("model", "value"),
    [
        (_m, _v)
        for _m, _v in [
            ("timestamped", datetime(2000, 1, 1, tzinfo=UTC)),
            ("dated", date(2000, 1, 1)),
            ("identified", uuid.UUID(int=5)),
            ("decimal", Decimal("1.50")),
            ("shaded", Shade.DARK),
            ("leveled", Level.HIGH),
            ("chosen", "b"),
        ]
    ],
)
def test_dates_times_ids_decimals_and_choices_load_exactly(model: str, value: Any) -> None:
    """Each loads without validation when stored as the library writes it, equal to what
    validation gives, Pydantic's own UTC zone included."""
    field = Fast.__dm_codec__.by_name[
        {
            "timestamped": "when",
            "dated": "day",
            "identified": "ident",
            "decimal": "amount",
            "shaded": "shade",
            "leveled": "level",
            "chosen": "mode",
        }[model]
    ]
    instance = Fast.model_validate({"id": "f-1", field.name: value})
    item = stored(instance)
    loader = Fast.__dm_codec__.exact
    assert loader is not None
    loader.build(item)  # no Mismatch: the exact decoder takes the stored value
    loaded = load_checked(Fast, item)
    assert getattr(loaded, field.name) == value
    assert state(loaded) == state(full(Fast, item))


# ---------------------------------------------------------------- strategies

ints = st.integers(-(10**38) + 1, 10**38 - 1)
magnitudes = st.floats(min_value=1e-130, max_value=9.999999999999998e125)
floats = st.one_of(st.just(0.0), st.just(-0.0), magnitudes, magnitudes.map(lambda f: -f))
texts = st.text()
json_leaves = st.one_of(st.none(), st.booleans(), ints, floats, texts, st.binary(max_size=8))
documents = st.dictionaries(
    st.text(max_size=6),
    st.recursive(
        json_leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children),
        max_leaves=10,
    ),
    max_size=4,
)
leaves = st.builds(
    lambda label, weight, tags: Leaf.model_validate(
        {"the-label": label, "weight": weight, "tags": tags}
    ),
    texts,
    st.none() | floats,
    st.lists(texts, max_size=3),
)
# Stored in UTC whatever their zone (a naive one is taken as UTC): aware UTC values read
# back equal to what was written.
datetimes = st.datetimes(timezones=st.just(UTC))
instances = st.builds(
    lambda **values: Fast.model_validate(values),
    id=texts.filter(bool),
    sort=ints,
    text=texts,
    **{"stored-as": texts},
    count=ints,
    ratio=floats,
    done=st.booleans(),
    active=st.booleans(),
    blob=st.binary(),
    maybe_none=st.none() | ints,
    maybe_five=st.none() | ints,
    maybe_text=st.none() | texts,
    names=st.sets(texts),
    counts=st.frozensets(ints),
    ratios=st.sets(floats),
    blobs=st.sets(st.binary()),
    maybe_names=st.none() | st.sets(texts, min_size=1),
    numbers=st.lists(ints, max_size=4),
    holes=st.lists(st.none() | texts, max_size=4),
    scores=st.dictionaries(texts, floats, max_size=3),
    document=documents,
    anything=json_leaves,
    leaf=st.none() | leaves,
    leaves=st.lists(leaves, max_size=2),
    version=ints,
    when=datetimes,
    created=datetimes,
    maybe_when=st.none() | datetimes,
    day=st.dates(),
    ident=st.uuids(),
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=4).filter(
        lambda d: abs(d) < Decimal(10) ** 30
    ),
    shade=st.sampled_from(Shade),
    level=st.sampled_from(Level),
    plain=st.sampled_from(Plain),
    mode=st.sampled_from(["a", "b", 7]),
    moments=st.lists(datetimes, max_size=3),
)


def stored(instance: Fast) -> Item:
    return Fast.__dm_codec__.encode_fields(instance)


# ---------------------------------------------------------------- equal instances


@PROPERTY
@given(instances)
def test_every_row_loads_as_full_validation_loads_it(instance: Fast) -> None:
    item = stored(instance)
    built = assert_same(item)
    assert built != ("invalid",)
    assert load_checked(Fast, item) == instance


@PROPERTY
@given(instances, st.data())
def test_missing_attributes_take_the_defaults_validation_gives(
    instance: Fast, data: st.DataObject
) -> None:
    item = stored(instance)
    dropped = data.draw(st.sets(st.sampled_from(sorted(item))))
    assert_same({k: v for k, v in item.items() if k not in dropped})


@PROPERTY
@given(instances, st.dictionaries(st.text(min_size=1), st.just({"S": "kept aside"})))
def test_undeclared_attributes_are_kept_aside_as_validation_keeps_them(
    instance: Fast, extra: Item
) -> None:
    item = {**extra, **stored(instance)}
    assert_same(item)
    loaded = load_checked(Fast, item)
    assert loaded.extra_attributes == {k: v for k, v in extra.items() if k not in stored(instance)}


# ---------------------------------------------------------------- mismatches

other_kinds = st.sampled_from(
    [
        {"S": "x"},
        {"S": ""},
        {"S": "5"},
        {"S": "true"},
        {"N": "5"},
        {"N": "0"},
        {"N": "-1.5"},
        {"N": "1e400"},
        {"N": "1E+3"},
        {"N": "12345678901234567890123456789"},
        {"BOOL": True},
        {"BOOL": False},
        {"NULL": True},
        {"B": b"x"},
        {"L": []},
        {"L": [{"S": "a"}, {"NULL": True}]},
        {"L": [{"N": "1"}]},
        {"L": [{"M": {"the-label": {"S": "a"}}}]},
        {"L": [{"M": {"the-label": {"N": "1"}}}]},
        {"M": {}},
        {"M": {"the-label": {"S": "a"}, "weight": {"S": "heavy"}}},
        {"M": {"the-label": {"S": "a"}, "unknown": {"S": "b"}}},
        {"M": {"a": {"N": "1.5"}, "b": {"S": "c"}}},
        {"SS": ["a", "b"]},
        {"NS": ["1", "2.5"]},
        {"NS": ["1", "2"]},
        {"BS": [b"a"]},
        # Dates, times, ids, numbers and choices in forms other than the library writes.
        {"S": "2025-12-01T09:00:00.000000Z"},
        {"S": "2025-12-01T09:00:00Z"},
        {"S": "2025-12-01T09:00:00.123456+02:00"},
        {"S": "2025-12-01T09:00:00.000000"},
        {"S": "2025-12-01T09:00:00,000000Z"},
        {"S": "2025-13-01T09:00:00.000000Z"},
        {"S": "2025-12-01T24:00:00.000000Z"},
        {"S": "2025-12-01 09:00:00.000000Z"},
        {"S": "2025-12-01"},
        {"S": "20251201"},
        {"S": "2025-02-30"},
        {"N": "1700000000"},
        {"N": "1700000000.5"},
        {"S": "12345678-1234-5678-1234-567812345678"},
        {"S": "12345678-1234-5678-1234-56781234567Z"},
        {"S": "12345678123456781234567812345678"},
        {"S": "{12345678-1234-5678-1234-567812345678}"},
        {"S": "ABCDEF78-1234-5678-1234-567812345678"},
        {"N": "1.50"},
        {"N": "-0"},
        {"N": "1E+2"},
        {"S": "light"},
        {"S": "LIGHT"},
        {"S": "one"},
        {"N": "2"},
        {"N": "3"},
        {"N": "7"},
        {"S": "7"},
        {"S": "a"},
        {"L": [{"S": "2025-12-01T09:00:00.000000Z"}, {"S": "2025-12-01"}]},
    ]
)


@PROPERTY
@given(instances, st.data(), other_kinds)
def test_a_value_of_another_kind_is_coerced_or_refused_as_validation_does(
    instance: Fast, data: st.DataObject, value: dict[str, Any]
) -> None:
    item = stored(instance)
    attribute = data.draw(st.sampled_from([s.attribute for s in Fast.__dm_codec__.fields]))
    item[attribute] = value
    assert_same(item)


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("count", {"S": "many"}),
        ("ratio", {"N": "1e400"}),  # infinity: the model refuses it
        ("done", {"S": "maybe"}),
        ("text", {"NULL": True}),
        ("numbers", {"L": [{"NULL": True}]}),
        ("leaf", {"M": {"weight": {"N": "1"}}}),  # the leaf's label is missing
        ("names", {"NS": ["1"]}),
    ],
)
def test_a_drifted_item_is_refused_with_item_invalid(attribute: str, value: dict[str, Any]) -> None:
    item = {**stored(Fast(id="f-1")), attribute: value}
    loader = Fast.__dm_codec__.exact
    assert loader is not None
    with pytest.raises(Mismatch):
        loader.load(item)
    with pytest.raises(dm.ItemInvalid) as caught:
        load_checked(Fast, item)
    assert caught.value.fields == (attribute,)
    assert caught.value.key == {"id": {"S": "f-1"}, "sort": {"N": "0"}}


def test_a_value_validation_coerces_is_coerced() -> None:
    item = {**stored(Fast(id="f-1")), "count": {"S": "42"}, "ratio": {"N": "7"}}
    loaded = load_checked(Fast, item)
    assert loaded.count == 42
    assert type(loaded.ratio) is float


def test_mutable_defaults_are_not_shared_between_instances() -> None:
    first = load_checked(Fast, {"id": {"S": "a"}})
    second = load_checked(Fast, {"id": {"S": "a"}})
    assert first.numbers == second.numbers == []
    assert first.numbers is not second.numbers
    assert first.leaves is not second.leaves
    assert (
        first.model_fields_set
        == second.model_fields_set
        == {
            "id",
            "names",
            "counts",
            "ratios",
            "blobs",
        }
    )


def test_after_load_hooks_and_library_state_are_kept() -> None:
    calls: list[str] = []

    class Hooked(Model):
        class Meta:
            table = "hooked"
            registry = REGISTRY

        id: Annotated[str, HashKey]

        @dm.after("load")
        def loaded(self) -> None:
            calls.append(self.id)

    assert Hooked.__dm_codec__.exact is not None
    item = {"id": {"S": "h-1"}, "other": {"N": "1"}}
    instance = load_checked(Hooked, item)
    assert calls == ["h-1"]
    assert instance.extra_attributes == {"other": {"N": "1"}}
    assert instance._dm_stored is item


def test_one_call_loads_keep_what_the_general_load_keeps() -> None:
    """Models whose loads only build the instance load in one call; the others (schema
    versions, unique fields, subclasses of a family, after-load hooks) take the general
    path. Both give the same instance, stored item and undeclared attributes, computed
    key attributes left out."""

    class Templated(Model):
        class Meta:
            table = "templated"
            registry = REGISTRY
            hash_key = dm.Template("PK", "USER#{id}")
            indexes = (GlobalIndex("ByName", hash_key=dm.Template("GSI1PK", "NAME#{name}")),)

        id: str
        name: str = ""

    class Unique(Model):
        class Meta:
            table = "unique-fast"
            registry = REGISTRY
            unique = ("email",)

        id: Annotated[str, HashKey]
        email: str = ""

    class Versioned(Model):
        class Meta:
            table = "versioned-fast"
            registry = REGISTRY
            schema_version = 1

        id: Annotated[str, HashKey]

    computed = sorted(Templated.__dm_schema__.computed_attributes)
    assert computed  # the table key and the index key attributes
    item: Item = {"id": {"S": "u-1"}, "name": {"S": "Ada"}, "other": {"N": "1"}}
    for attribute in computed:
        item[attribute] = {"S": f"{attribute}#x"}
    loaded = load_checked(Templated, item)
    assert callable(Templated.__dm_codec__.fast_load)
    assert state(loaded) == state(full(Templated, item))
    assert loaded.extra_attributes == {"other": {"N": "1"}}
    assert loaded._dm_stored is item

    assert Unique.__dm_codec__.exact is not None
    load_checked(Unique, {"id": {"S": "u-1"}, "email": {"S": "a@example.com"}})
    assert Unique.__dm_codec__.fast_load is False
    assert Versioned.__dm_codec__.exact is not None
    load_checked(Versioned, {"id": {"S": "v-1"}, "_sv": {"N": "1"}})
    assert Versioned.__dm_codec__.fast_load is False

    # A value of another kind leaves the one-call load: full validation coerces or refuses.
    def result(load: Any, item: Item) -> Any:
        try:
            return state(load(Counted, item))
        except dm.ItemInvalid as error:
            return ("invalid", error.fields)

    class Counted(Model):
        class Meta:
            table = "counted"
            registry = REGISTRY

        id: Annotated[str, HashKey]
        count: int = 0

    for drifted, expected in [
        ({"id": {"S": "c"}, "count": {"S": "5"}}, 5),  # coerced by validation
        ({"id": {"S": "c"}, "count": {"S": "five"}}, None),  # refused
        ({"id": {"N": "1"}}, None),
    ]:
        assert result(load_checked, drifted) == result(full, drifted)
        if expected is None:
            assert result(load_checked, drifted)[0] == "invalid"
        else:
            assert load_checked(Counted, drifted).count == expected
    assert callable(Counted.__dm_codec__.fast_load)


# ---------------------------------------------------------------- what keeps validation


class Shouting(BaseModel):
    word: str

    @field_validator("word")
    @classmethod
    def upper(cls, value: str) -> str:
        return value.upper()


class Color(enum.Enum):
    RED = "red"


class Floaty(enum.Enum):
    HALF = 0.5


def _model(name: str, annotation: Any, default: Any = ..., **config: Any) -> type[Model]:
    namespace: dict[str, Any] = {
        "__annotations__": {"id": Annotated[str, HashKey], "value": annotation},
        "Meta": type("Meta", (), {"table": name, "registry": REGISTRY}),
        "__module__": __name__,
    }
    if default is not ...:
        namespace["value"] = default
    if config:
        namespace["model_config"] = ConfigDict(**config)  # type: ignore[typeddict-item]
    return type(name, (Model,), namespace)


@pytest.mark.parametrize(
    "model",
    [
        _model("constrained", Annotated[str, Field(max_length=3)], ""),
        _model("constrained_element", list[Annotated[int, Field(gt=0)]], []),
        _model("stripped", str, "", str_strip_whitespace=True),
        _model("strict", int, 0, strict=True),
        _model("validating_default", int, 0, validate_default=True),
        _model("lenient_enum", Lenient, Lenient.A),  # its _missing_ decides
        _model("enum_values", Plain, Plain.ONE, use_enum_values=True),
        _model("milliseconds", datetime, datetime(2000, 1, 1), val_temporal_unit="milliseconds"),
        _model("empty_strings_only", str, "", str_max_length=0),
        _model("float_enum", Floaty, Floaty.HALF),
        _model("enum_literal", Literal[Color.RED], Color.RED),
        _model("constrained_decimal", Annotated[Decimal, Field(max_digits=5)], Decimal(0)),
        _model("union", int | str, 0),
        _model("tuple", tuple[int, int], (0, 0)),
        _model("expiring", Annotated[int | None, dm.TTL], None),
        _model("validated_nested", Shouting | None, None),
        _model("aliased", str, Field(default="", validation_alias="elsewhere")),
    ],
    ids=lambda model: model.__name__,
)
def test_models_whose_validation_could_change_a_value_keep_it(model: type[Model]) -> None:
    assert model.__dm_codec__.exact is None


def test_validators_private_attributes_and_self_nesting_keep_validation() -> None:
    class Validated(Model):
        class Meta:
            table = "validated"
            registry = REGISTRY

        id: Annotated[str, HashKey]

        @field_validator("id")
        @classmethod
        def lower(cls, value: str) -> str:
            return value.lower()

    class Checked(Model):
        class Meta:
            table = "checked"
            registry = REGISTRY

        id: Annotated[str, HashKey]

        @model_validator(mode="after")
        def check(self) -> Checked:
            return self

    class Private(Model):
        class Meta:
            table = "private"
            registry = REGISTRY

        id: Annotated[str, HashKey]
        _cache: int = PrivateAttr(default=0)

    class Node(BaseModel):
        children: list[Node] = []

    class Nested(Model):
        class Meta:
            table = "nested"
            registry = REGISTRY

        id: Annotated[str, HashKey]
        node: Node | None = None

    for model in (Validated, Checked, Private, Nested):
        assert model.__dm_codec__.exact is None, model.__name__
    assert load_checked(Validated, {"id": {"S": "ABC"}}).id == "abc"
    assert load_checked(Private, {"id": {"S": "p"}})._cache == 0


# ---------------------------------------------------------------- generated encoders


def _encoded(encode: Any, instance: Any) -> Any:
    try:
        return encode(instance)
    except EncodeError as error:
        return ("refused", str(error))


@PROPERTY
@given(instances)
def test_the_generated_encoder_writes_what_the_generic_loop_writes(instance: Fast) -> None:
    codec = Fast.__dm_codec__
    item = codec.encode_fields(instance)
    assert item == codec.encode_fields_generic(instance)
    assert list(item) == list(codec.encode_fields_generic(instance))  # same attribute order


class Encoded(Model):
    class Meta:
        table = "encoded"
        registry = REGISTRY
        indexes = (GlobalIndex("ByFlag", hash_key="flag"),)

    id: Annotated[str, HashKey]
    text: str = ""
    maybe: str | None = None
    count: int = 0
    done: bool = False
    flag: bool = False  # an index key: N 0/1, not inline
    words: list[str] = []
    maybe_words: list[str | None] = []
    leaf: Leaf | None = None
    ratio: float = 0.0
    maybe_ratio: float | None = None
    maybe_count: int | None = None
    shape: Leaf = Leaf.model_construct(label="x")


class SubLeaf(Leaf):
    extra: str = "more"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", "lone \ud800 surrogate"),
        ("text", "ünïcödé"),
        ("text", Shade.DARK),  # a str subclass
        ("maybe", None),
        ("count", 10**38),  # past DynamoDB's 38 digits
        ("count", 10**37),
        ("count", -(10**38) + 1),
        ("count", True),
        ("done", 1),
        ("flag", True),
        ("words", ["a", None, "b"]),
        ("words", ["a", "\udfff"]),
        ("words", ["a", Shade.LIGHT, "é"]),
        ("words", ("a", "b")),  # a tuple where a list is declared
        ("maybe_words", [None, "x"]),
        ("leaf", Leaf.model_construct(label="\ud800")),
        ("leaf", Leaf.model_construct(label="x", weight=float("nan"), tags=[])),
        ("leaf", Leaf.model_construct(label="x", weight=2.5, tags=["a"])),
        ("leaf", SubLeaf.model_construct(label="x", extra="y")),  # the declared fields only
        ("leaf", {"the-label": "x"}),  # not a model at all
        ("shape", Leaf.model_construct(label="x", weight=-0.0)),
        ("shape", SubLeaf.model_construct(label="\ud800")),
        ("ratio", 2.5),
        ("ratio", -0.0),
        ("ratio", 0.1 + 0.2),
        ("ratio", 1e16),  # integral from here on: the exact digits are checked
        ("ratio", 1e-130),  # below DynamoDB's smallest magnitude
        ("ratio", 3.602879701896397e16),
        ("ratio", 1e200),
        ("ratio", float("nan")),
        ("ratio", float("inf")),
        ("ratio", float("-inf")),
        ("ratio", 7),  # an int where a float is declared
        ("ratio", True),
        ("ratio", Decimal("1.25")),
        ("maybe_ratio", None),
        ("maybe_ratio", 1.5),
        ("maybe_ratio", float("nan")),
        ("maybe_count", 10**38),
        ("maybe_count", 42),
    ],
)
def test_the_generated_encoder_refuses_and_converts_as_the_generic_loop(
    field: str, value: Any
) -> None:
    instance = Encoded.model_construct(id="e-1")
    instance.__dict__[field] = value
    codec = Encoded.__dm_codec__
    generated = _encoded(codec.encode_fields, instance)
    assert generated == _encoded(codec.encode_fields_generic, instance)
    if isinstance(generated, tuple):
        assert generated[1].startswith("Encoded.")  # the model and the field are named
        assert "\ud800" not in generated[1] and "\udfff" not in generated[1]


class BytesLeaf(BaseModel):
    data: bytes = b""


def _binary_model(name: str, annotation: Any, default: Any) -> type[Model]:
    meta = type("Meta", (), {"table": f"binary-{name}", "registry": REGISTRY})
    namespace = {
        "Meta": meta,
        "__annotations__": {"id": Annotated[str, HashKey], "value": annotation},
        "value": default,
    }
    return type(f"Binary_{name}", (Model,), namespace)


@pytest.mark.parametrize(
    ("name", "annotation", "default"),
    [
        ("bytes", bytes, b""),
        ("optional", bytes | None, None),
        ("set", set[bytes], set()),
        ("any", Any, None),
        ("document", dict[str, Any], {}),
        ("nested", BytesLeaf | None, None),
        ("nested_list", list[BytesLeaf], []),
        ("map_of_lists", dict[str, list[bytes]], {}),
    ],
)
def test_models_whose_fields_take_binary_values_read_them_decoded(
    name: str, annotation: Any, default: Any
) -> None:
    """A model with a field that takes a B or BS value anywhere in its type has no raw
    loader: its reads ask the transport for bytes."""
    from dynamodm.instances import raw_loader

    model = _binary_model(name, annotation, default)
    assert model.__dm_codec__.exact is not None  # the one-call load exists...
    assert raw_loader(model) is None  # ...but not for items whose binary is text


def test_the_raw_loader_decodes_the_undeclared_binary_values_it_keeps() -> None:
    """For a model that takes no binary value, items whose binary values are still base64
    text load as their decoded form does: undeclared attributes decoded in place (in the
    stored item too), computed key attributes left as they are; a binary value in a
    declared attribute is a Mismatch, and load_checked decodes the item before the
    general path."""
    from dynamodm.instances import raw_loader

    class Templated(Model):
        class Meta:
            table = "templated-raw"
            registry = REGISTRY
            hash_key = dm.Template("PK", "USER#{id}")

        id: str
        name: str = ""
        leaf: Leaf | None = None

    load = raw_loader(Templated)
    assert load is not None

    def item(binary: bool) -> Item:
        def b(raw: bytes) -> Any:
            return raw if binary else base64.b64encode(raw).decode()

        return {
            "PK": {"S": "USER#u-1"},
            "id": {"S": "u-1"},
            "name": {"S": "Ada"},
            "leaf": {"M": {"the-label": {"S": "x"}, "tags": {"L": []}}},
            "old": {"B": b(b"\x00\xff")},
            "olds": {"BS": [b(b"\x01"), b(b"\x02")]},
            "deep": {"M": {"k": {"L": [{"B": b(b"\x03")}, {"N": "1"}]}}},
            "text": {"S": "QUJD"},
        }

    raw, decoded = item(binary=False), item(binary=True)
    loaded = load(raw)
    assert state(loaded) == state(full(Templated, decoded))
    assert loaded.extra_attributes == {k: decoded[k] for k in ("old", "olds", "deep", "text")}
    assert loaded._dm_stored == decoded
    assert load(decoded).extra_attributes == loaded.extra_attributes  # decoding twice is safe

    bad = item(binary=False)
    bad["name"] = {"B": "aGk="}
    with pytest.raises(Mismatch):
        load(bad)
    expected = full(Templated, item(binary=True) | {"name": {"B": b"hi"}})
    assert state(load_checked(Templated, bad)) == state(expected)
    assert bad["name"] == {"B": b"hi"}
