"""Python values <-> DynamoDB AttributeValues, compiled once per field type.

Encoders turn a validated Python value into the low-level AttributeValue form
(``{"S": "..."}``); decoders turn an AttributeValue into a plain Python value that
Pydantic then validates into the field's type. Bytes travel as ``bytes``; the
transport chooses their wire form.
"""

from __future__ import annotations

import base64
import binascii
import copy
import enum
import math
import types
import typing
import uuid
from collections.abc import Callable, Mapping, MutableSet, Sequence, Set
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Union

import orjson
from pydantic import BaseModel, SecretBytes, SecretStr, TypeAdapter, ValidationError

from .errors import ItemTooLarge, UsageError

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

MAX_ITEM_SIZE = 409_600
MAX_NESTING = 32  # levels, the top-level attribute's value being the first
_UTC = UTC
_INT_LIMIT = 10**38


class EncodeError(UsageError, ValueError):
    """A value DynamoDB cannot store (named by model and field where known)."""


# ---------------------------------------------------------------- numbers


def check_number(text: str) -> str:
    """Check a number's text against DynamoDB's range and precision; return it."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise EncodeError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise EncodeError("NaN and infinity cannot be stored in DynamoDB")
    if number:
        significant = _significant_digits(number)
        adjusted = number.adjusted()
        if significant > 38:
            raise EncodeError(
                f"a number with {significant} significant digits cannot be stored: "
                "DynamoDB keeps at most 38 (use a str field for longer values)"
            )
        if adjusted > 125 or adjusted < -130:
            raise EncodeError(
                "a number outside DynamoDB's range (magnitude 1E-130 to "
                "9.9999999999999999999999999999999999999E+125) cannot be stored"
            )
    return text


def _significant_digits(number: Decimal) -> int:
    """Digits without trailing zeros, counted exactly (normalize() would round past 60)."""
    digits = number.as_tuple().digits
    count = len(digits)
    while count > 1 and digits[count - 1] == 0:
        count -= 1
    return count


def encode_int(value: int) -> AttributeValue:
    if -_INT_LIMIT < value < _INT_LIMIT:
        return {"N": str(value)}
    return {"N": check_number(str(value))}


def encode_float(value: float) -> AttributeValue:
    if (1e-129 < abs(value) < 1e16 and not value.is_integer()) or value == 0:
        return {"N": repr(value)}  # in range, at most 17 significant digits: nothing to check
    if not math.isfinite(value):
        raise EncodeError("NaN and infinity cannot be stored in DynamoDB")
    text = repr(value)
    if value.is_integer() and -_INT_LIMIT < value < _INT_LIMIT and Decimal(text) != int(value):
        # Past 2**53 the shortest repr may name another integer (3.602879701896397e+16 for
        # 36028797018963968): DynamoDB keeps decimal values, so send the exact digits.
        text = str(int(value))
    return {"N": check_number(text)}


def encode_decimal(value: Decimal) -> AttributeValue:
    return {"N": check_number(str(value))}


def number_text(value: Any) -> str:
    """The N text of an int, float or Decimal (bool refused)."""
    if isinstance(value, bool):
        raise EncodeError("a bool is not a number here")
    if isinstance(value, int):
        return encode_int(value)["N"]  # type: ignore[no-any-return]
    if isinstance(value, float):
        return encode_float(value)["N"]  # type: ignore[no-any-return]
    if isinstance(value, Decimal):
        return check_number(str(value))
    raise EncodeError(f"expected a number, got {type(value).__name__}")


def decode_number(text: str) -> int | float | Decimal:
    """An N value read without a declared type: int if integral, else float if exact."""
    if "." not in text and "e" not in text and "E" not in text:
        return int(text)
    as_float = float(text)
    exact = Decimal(text)
    if repr(as_float) == text or Decimal(repr(as_float)) == exact:
        return as_float  # DynamoDB may answer 1e-07 as 0.0000001: compare values
    if exact == exact.to_integral_value() and abs(exact) < _INT_LIMIT:
        return int(exact)
    return exact


def _to_int(av: AttributeValue) -> Any:
    text = av["N"]
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


# ---------------------------------------------------------------- time


def utcnow() -> datetime:
    """Now, in UTC (the stamp of CreatedAt and UpdatedAt fields)."""
    return datetime.now(UTC)


def format_datetime(value: datetime) -> str:
    """UTC, fixed width ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: string order is time order."""
    value = _utc(value)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}Z"
    )


def epoch_seconds(value: datetime) -> int:
    return int(_utc(value).replace(tzinfo=_UTC).timestamp())


def _utc(value: datetime) -> datetime:
    """Aware datetimes converted to UTC; naive ones are UTC already."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(_UTC)
    except (OverflowError, ValueError):
        raise EncodeError(
            "a datetime whose UTC time falls outside years 1 to 9999 cannot be stored"
        ) from None


# ---------------------------------------------------------------- text


def utf8(text: str) -> str:
    """``text`` if DynamoDB can store it: a string with a lone surrogate ("\\ud800") is not
    valid UTF-8, which DynamoDB refuses (and some clients would send it unchecked)."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise EncodeError(
                "a string holds a lone surrogate character, which is not valid UTF-8 and "
                "cannot be stored; decode the text correctly (errors='replace')"
            ) from None
    return text


# ---------------------------------------------------------------- runtime (Any)


def encode_any(value: Any) -> AttributeValue | None:
    """Encode by the runtime type of the value (Any fields and untyped containers)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": utf8(value)}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return encode_int(value)
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Decimal):
        return encode_decimal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": _encode_any_map(value)}
    if isinstance(value, list | tuple):
        return {"L": [_encode_any_element(v) for v in value]}
    if isinstance(value, set | frozenset):
        return _encode_any_set(value)
    if isinstance(value, datetime):
        return {"S": format_datetime(value)}
    if isinstance(value, date):
        return {"S": value.isoformat()}
    if isinstance(value, time):
        return {"S": value.isoformat()}
    if isinstance(value, enum.Enum):
        return encode_any(value.value)
    if isinstance(value, uuid.UUID):
        return {"S": str(value)}
    if isinstance(value, SecretStr | SecretBytes):
        return encode_any(value.get_secret_value())
    if isinstance(value, BaseModel):
        return model_codec(type(value)).encode(value)
    dumped = TypeAdapter(type(value)).dump_python(value, mode="json")
    if type(dumped) is type(value):
        raise EncodeError(f"values of type {type(value).__name__} cannot be stored")
    return encode_any(dumped)


def _encode_any_element(value: Any) -> AttributeValue:
    encoded = encode_any(value)
    if encoded is None:
        raise EncodeError("an empty set cannot be stored inside a list or map")
    return encoded


def _encode_any_map(value: Mapping[Any, Any]) -> Item:
    out: Item = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise EncodeError(f"map keys must be strings, got {type(key).__name__}")
        out[utf8(key)] = _encode_any_element(item)
    return out


def _encode_any_set(value: set[Any] | frozenset[Any]) -> AttributeValue | None:
    if not value:
        return None
    if all(isinstance(v, str) for v in value):
        return {"SS": [utf8(v) for v in value]}
    if all(isinstance(v, bytes) for v in value):
        return {"BS": list(value)}
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
        return {"NS": _distinct("NS", [number_text(v) for v in value])}
    raise EncodeError("a set must hold only strings, only numbers or only bytes")


def _distinct(kind: str, texts: list[str]) -> list[str]:
    """The encoded members of a set, refused when two of them are one value to DynamoDB
    (0.1 and Decimal("0.1"); a naive and an aware datetime of one instant), which it
    refuses as duplicates."""
    seen = {Decimal(t) for t in texts} if kind == "NS" else set(texts)
    if len(seen) != len(texts):
        raise EncodeError(
            f"the set holds {len(texts) - len(seen)} values that are stored alike "
            "(DynamoDB refuses duplicates in a set); keep one of each"
        )
    return texts


def decode_any(av: AttributeValue) -> Any:
    """Decode by the AttributeValue's own type."""
    for kind, raw in av.items():
        if kind == "S":
            return raw
        if kind == "N":
            return decode_number(raw)
        if kind == "BOOL":
            return raw
        if kind == "NULL":
            return None
        if kind == "M":
            return {k: decode_any(v) for k, v in raw.items()}
        if kind == "L":
            return [decode_any(v) for v in raw]
        if kind == "B":
            return bytes(raw)
        if kind == "SS":
            return set(raw)
        if kind == "NS":
            return {decode_number(v) for v in raw}
        if kind == "BS":
            return {bytes(v) for v in raw}
    raise EncodeError(f"unknown AttributeValue {list(av)!r}")


# ---------------------------------------------------------------- compiled codecs


class Codec:
    """How one declared type travels. Subclasses are compiled once per type."""

    key_type: Literal["S", "N", "B"] | None = None
    nullable = False

    def encode(self, value: Any) -> AttributeValue | None:
        """The AttributeValue for a non-None value, or None to omit the attribute."""
        return encode_any(value)

    def decode(self, av: AttributeValue) -> Any:
        return decode_any(av)

    def child(self, key: str | int) -> Codec:
        """The codec of a nested map key or list index (for attribute paths)."""
        return ANY

    def field_attribute(self, name: str) -> str | None:
        """The attribute name of a nested model field, or None when unknown."""
        return None


class _Any(Codec):
    pass


ANY = _Any()


class _Str(Codec):
    key_type = "S"

    def encode(self, value: Any) -> AttributeValue:
        return {"S": utf8(value if type(value) is str else str(value))}

    def decode(self, av: AttributeValue) -> Any:
        return av["S"] if "S" in av else decode_any(av)


class _Int(Codec):
    key_type = "N"

    def encode(self, value: Any) -> AttributeValue:
        return encode_int(value)

    def decode(self, av: AttributeValue) -> Any:
        return _to_int(av) if "N" in av else decode_any(av)


class _Float(Codec):
    key_type = "N"

    def encode(self, value: Any) -> AttributeValue:
        if isinstance(value, float):
            return encode_float(value)
        return {"N": number_text(value)}

    def decode(self, av: AttributeValue) -> Any:
        return float(av["N"]) if "N" in av else decode_any(av)


class _Decimal(Codec):
    key_type = "N"

    def encode(self, value: Any) -> AttributeValue:
        return {"N": number_text(value)}

    def decode(self, av: AttributeValue) -> Any:
        return Decimal(av["N"]) if "N" in av else decode_any(av)


class _Bool(Codec):
    def encode(self, value: Any) -> AttributeValue:
        return {"BOOL": bool(value)}

    def decode(self, av: AttributeValue) -> Any:
        if "N" in av:
            return av["N"] != "0"
        return decode_any(av)


class _BoolKey(_Bool):
    """A bool used as an index key: DynamoDB cannot key on BOOL, so N 0/1."""

    key_type = "N"

    def encode(self, value: Any) -> AttributeValue:
        return {"N": "1" if value else "0"}


class _Bytes(Codec):
    key_type = "B"

    def encode(self, value: Any) -> AttributeValue:
        return {"B": bytes(value)}

    def decode(self, av: AttributeValue) -> Any:
        return bytes(av["B"]) if "B" in av else decode_any(av)


class _Datetime(Codec):
    key_type = "S"

    def encode(self, value: Any) -> AttributeValue:
        return {"S": format_datetime(value)}

    def decode(self, av: AttributeValue) -> Any:
        if "N" in av:
            return decode_number(av["N"])
        return av["S"] if "S" in av else decode_any(av)


class _EpochSeconds(Codec):
    """A TTL field: epoch seconds in an N attribute."""

    key_type = "N"

    def encode(self, value: Any) -> AttributeValue:
        if isinstance(value, datetime):
            return {"N": str(epoch_seconds(value))}
        if isinstance(value, date):
            return {"N": str(epoch_seconds(datetime(value.year, value.month, value.day)))}
        return {"N": number_text(value)}

    def decode(self, av: AttributeValue) -> Any:
        if "N" in av:
            return _to_int(av)
        return decode_any(av)


class _Isoformat(Codec):
    key_type = "S"

    def encode(self, value: Any) -> AttributeValue:
        return {"S": value.isoformat()}

    def decode(self, av: AttributeValue) -> Any:
        return av["S"] if "S" in av else decode_any(av)


class _Enum(Codec):
    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.key_type = inner.key_type

    def encode(self, value: Any) -> AttributeValue | None:
        return self.inner.encode(value.value if isinstance(value, enum.Enum) else value)

    def decode(self, av: AttributeValue) -> Any:
        return self.inner.decode(av)


class _Secret(Codec):
    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def encode(self, value: Any) -> AttributeValue | None:
        return self.inner.encode(value.get_secret_value())

    def decode(self, av: AttributeValue) -> Any:
        return self.inner.decode(av)


class _Dumped(Codec):
    """Types Pydantic serialises to JSON (timedelta, URLs, ...): stored as that JSON value."""

    def __init__(self, tp: Any) -> None:
        self.adapter: TypeAdapter[Any] = TypeAdapter(tp)

    def encode(self, value: Any) -> AttributeValue | None:
        return encode_any(self.adapter.dump_python(value, mode="json"))


class _Nullable(Codec):
    nullable = True

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.key_type = inner.key_type

    def encode(self, value: Any) -> AttributeValue | None:
        return {"NULL": True} if value is None else self.inner.encode(value)

    def decode(self, av: AttributeValue) -> Any:
        return None if "NULL" in av else self.inner.decode(av)

    def child(self, key: str | int) -> Codec:
        return self.inner.child(key)

    def field_attribute(self, name: str) -> str | None:
        return self.inner.field_attribute(name)


class _List(Codec):
    def __init__(self, element: Codec) -> None:
        self.element = element
        self.member = _list_element(element)

    def encode(self, value: Any) -> AttributeValue:
        member = self.member
        return {"L": [member(item) for item in value]}

    def decode(self, av: AttributeValue) -> Any:
        if "L" not in av:
            return decode_any(av)
        decode = self.element.decode
        return [None if "NULL" in v else decode(v) for v in av["L"]]

    def child(self, key: str | int) -> Codec:
        return self.element


class _Map(Codec):
    def __init__(self, value: Codec) -> None:
        self.value = value

    def encode(self, value: Any) -> AttributeValue:
        encode = self.value.encode
        out: Item = {}
        for key, item in value.items():
            if type(key) is not str:
                key = str(key.value if isinstance(key, enum.Enum) else key)
            utf8(key)
            if item is None:
                out[key] = {"NULL": True}
                continue
            encoded = encode(item)
            if encoded is None:
                raise EncodeError("an empty set cannot be stored inside a map")
            out[key] = encoded
        return {"M": out}

    def decode(self, av: AttributeValue) -> Any:
        if "M" not in av:
            return decode_any(av)
        decode = self.value.decode
        return {k: None if "NULL" in v else decode(v) for k, v in av["M"].items()}

    def child(self, key: str | int) -> Codec:
        return self.value


class _Set(Codec):
    def __init__(self, kind: Literal["SS", "NS", "BS"], element: Codec) -> None:
        self.kind = kind
        self.element = element

    def encode(self, value: Any) -> AttributeValue | None:
        if not value:
            return None
        if self.kind == "BS":
            return {"BS": [bytes(v) for v in value]}
        # Each element travels as its own type does (a datetime as its fixed-width string).
        scalar = "S" if self.kind == "SS" else "N"
        encode = self.element.encode
        texts = [encode(v)[scalar] for v in value]  # type: ignore[index]
        return {self.kind: _distinct(self.kind, texts)}

    def decode(self, av: AttributeValue) -> Any:
        if self.kind in av:
            if self.kind == "NS":
                return {self.element.decode({"N": v}) for v in av["NS"]}
            return set(av[self.kind])
        return decode_any(av)

    def child(self, key: str | int) -> Codec:
        return self.element


class FieldSpec:
    """One model field on the wire."""

    __slots__ = ("attribute", "codec", "name", "omit_none")

    def __init__(self, name: str, attribute: str, codec: Codec, omit_none: bool) -> None:
        self.name = name
        self.attribute = attribute
        self.codec = codec
        self.omit_none = omit_none


class ModelCodec(Codec):
    """Encoder and decoder of a Pydantic model class, its fields compiled once."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.cls = cls
        self.fields: list[FieldSpec] = []
        self.by_name: dict[str, FieldSpec] = {}
        self.by_attribute: dict[str, FieldSpec] = {}
        self.decoders: dict[str, Callable[[AttributeValue], Any]] = {}
        self.empty_sets: list[str] = []
        # Set by the model's compilation when its instances may skip Pydantic's validation.
        self.exact: ExactLoader | None = None
        # Set on the model's first load (instances.py): its one-call loader, or False when
        # its items need the general path (migrations, hooks, unique values, subclasses).
        self.fast_load: Callable[[Item], Any] | Literal[False] | None = None
        # The same for items whose binary values may still be base64 text (instances.py).
        self.raw_load: Callable[[Item], Any] | Literal[False] | None = None
        # The encoder of a positional (hash, range) key, made on first use (keys.py).
        self.positional_key: Callable[[Any, Any], Item] | None = None
        self._bounded: frozenset[str] | None = None
        self._depth: int | None = None  # nesting_depth, once known
        self._depth_known = False

    @property
    def bounded(self) -> frozenset[str]:
        """The attributes whose declared type keeps them within DynamoDB's nesting limit
        whatever they hold: an item's size check need not walk them."""
        if self._bounded is None:
            self._bounded = frozenset(
                spec.attribute
                for spec in self.fields
                if (depth := nesting_depth(spec.codec)) is not None and depth < MAX_NESTING
            )
        return self._bounded

    def compile(self, overrides: Mapping[str, Codec] | None = None) -> None:
        for name, info in self.cls.model_fields.items():
            attribute = info.alias or name
            codec = (overrides or {}).get(name) or compile_type(info.annotation)
            omit_none = info.default is None and not info.is_required()
            spec = FieldSpec(name, attribute, codec, omit_none)
            self.fields.append(spec)
            self.by_name[name] = spec
            self.by_attribute[attribute] = spec
            self.decoders[attribute] = codec.decode
            inner = codec.inner if isinstance(codec, _Nullable) else codec
            if isinstance(inner, _Set | _AnySet) and not omit_none:
                # An empty set is stored as no attribute; a missing one reads back empty.
                self.empty_sets.append(attribute)

    def encode(self, value: Any) -> AttributeValue:
        if not isinstance(value, self.cls):
            # model_construct() or an unvalidated assignment can leave anything here.
            raise EncodeError(
                f"expected a {self.cls.__name__} instance, got {type(value).__name__}"
            )
        return {"M": self.encode_fields(value)}

    def encode_fields(self, instance: Any) -> Item:
        """The item of an instance: through a builder generated for this model on first
        use (one block per field, the common types inline), which then replaces this
        method on the codec; ``encode_fields_generic`` gives the same item."""
        encode: Callable[[Any], Item] = _generate_encoder(self)
        self.encode_fields = encode  # type: ignore[method-assign,assignment]
        return encode(instance)

    def encode_fields_generic(self, instance: Any) -> Item:
        values = instance.__dict__
        out: Item = {}
        for spec in self.fields:
            value = values[spec.name]
            if value is None:
                if not spec.omit_none:
                    out[spec.attribute] = {"NULL": True}
                continue
            try:
                encoded = spec.codec.encode(value)
            except EncodeError as exc:
                raise EncodeError(
                    f"{self.cls.__name__}.{spec.name}: {exc} (the value is on the instance)"
                ) from None
            except RecursionError:
                raise EncodeError(
                    f"{self.cls.__name__}.{spec.name}: the value is nested far deeper than "
                    f"the {MAX_NESTING} levels DynamoDB allows"
                ) from None
            if encoded is not None:
                out[spec.attribute] = encoded
        return out

    def decode(self, av: AttributeValue) -> Any:
        if "M" not in av:
            return decode_any(av)
        return self.decode_fields(av["M"])[0]

    def decode_fields(self, item: Item, *, partial: bool = False) -> tuple[dict[str, Any], Item]:
        """Plain values by attribute name, and the attributes the model does not declare.

        A set attribute that is missing reads back as an empty set, unless ``partial``
        (an item read with a projection, where missing means not loaded).
        """
        data: dict[str, Any] = {}
        extra: Item = {}
        decoders = self.decoders
        for attribute, av in item.items():
            decode = decoders.get(attribute)
            if decode is None:
                extra[attribute] = av
            else:
                data[attribute] = decode(av)  # every decoder reads NULL as None
        if not partial:
            for attribute in self.empty_sets:
                if attribute not in item:
                    data[attribute] = set()
        return data, extra

    def child(self, key: str | int) -> Codec:
        spec = self.by_name.get(key) if isinstance(key, str) else None
        return spec.codec if spec else ANY

    def field_attribute(self, name: str) -> str | None:
        spec = self.by_name.get(name)
        return spec.attribute if spec else None


def nesting_depth(codec: Codec, within: tuple[ModelCodec, ...] = ()) -> int | None:
    """How many lists and maps deep any value this codec encodes can be (0 for a scalar
    or a set), or None when the type does not bound it (Any, JSON-dumped types, models
    that contain themselves). Every codec coerces to its own shape (a str field holding a
    list encodes its text), so the bound holds for whatever value a field holds."""
    if isinstance(codec, _Nullable | _Enum | _Secret):
        return nesting_depth(codec.inner, within)
    if isinstance(codec, _List):
        inner = nesting_depth(codec.element, within)
        return None if inner is None else inner + 1
    if isinstance(codec, _Map):
        inner = nesting_depth(codec.value, within)
        return None if inner is None else inner + 1
    if isinstance(codec, ModelCodec):
        if codec in within:
            return None
        # Once per model: a model reused in many fields (and levels) is not walked again.
        # A result is the model's own whatever the path that reached it: a model that
        # reaches one of the models above it lies on a cycle, unbounded from anywhere.
        if codec._depth_known:
            return codec._depth
        depths = []
        for spec in codec.fields:
            inner = nesting_depth(spec.codec, (*within, codec))
            if inner is None:
                break
            depths.append(inner)
        else:
            codec._depth = max(depths, default=0) + 1
        codec._depth_known = True  # None (the default) when a field is unbounded
        return codec._depth
    if isinstance(codec, _Str | _Int | _Float | _Decimal | _Bool | _Bytes | _Datetime):
        return 0  # _BoolKey is a _Bool
    if isinstance(codec, _EpochSeconds | _Isoformat | _Set | _AnySet):
        return 0
    return None


# ---------------------------------------------------------------- generated encoders


def _generate_encoder(codec: ModelCodec) -> Callable[[Any], Item]:
    """``ModelCodec.encode_fields_generic`` as generated source for one model: strings,
    ints, bools and lists of strings inline; other values through their field's codec.
    An EncodeError names the model and field, as the generic loop's does."""
    namespace: dict[str, Any] = {
        "EncodeError": EncodeError,
        "_utf8": utf8,
        "_limit": _INT_LIMIT,
        "_model": codec.cls.__name__,
        "_nesting": MAX_NESTING,
    }
    lines = ["def encode_fields(instance):", "    values = instance.__dict__", "    out = {}"]
    lines += ["    field = None", "    try:"]
    for i, spec in enumerate(codec.fields):
        namespace[f"_e{i}"] = spec.codec.encode
        a = repr(spec.attribute)
        body = [f"field = {spec.name!r}", f"v = values[{spec.name!r}]", "if v is None:"]
        body.append("    pass" if spec.omit_none else f"    out[{a}] = {{'NULL': True}}")
        # None is handled above: a nullable field's other values go as its inner type's.
        inner = spec.codec.inner if isinstance(spec.codec, _Nullable) else spec.codec
        if inner is _STR:
            body += [
                "elif v.__class__ is str:",
                "    if not v.isascii():",
                "        _utf8(v)",
                f"    out[{a}] = {{'S': v}}",
            ]
        elif inner is _INT:
            body += [
                "elif v.__class__ is int and -_limit < v < _limit:",
                f"    out[{a}] = {{'N': str(v)}}",
            ]
        elif inner is _BOOL:
            body += ["elif v.__class__ is bool:", f"    out[{a}] = {{'BOOL': v}}"]
        elif inner is _FLOAT:
            # encode_float's common case: finite, in range, not integral (or zero).
            body += [
                "elif v.__class__ is float and (1e-129 < abs(v) < 1e16 and not v.is_integer()"
                " or v == 0.0):",
                f"    out[{a}] = {{'N': repr(v)}}",
            ]
        elif isinstance(inner, ModelCodec):
            # An instance of exactly the declared class: its own generated encoder.
            namespace[f"_c{i}"], namespace[f"_m{i}"] = inner.cls, inner
            body += [
                f"elif v.__class__ is _c{i}:",
                f"    out[{a}] = {{'M': _m{i}.encode_fields(v)}}",
            ]
        elif isinstance(inner, _List) and inner.element is _STR:
            namespace[f"_l{i}"] = inner.member
            body += [
                "elif v.__class__ is list:",
                f"    out[{a}] = {{'L': [{{'S': x}} if x.__class__ is str and x.isascii() "
                f"else _l{i}(x) for x in v]}}",
            ]
        body += ["else:", f"    e = _e{i}(v)", "    if e is not None:", f"        out[{a}] = e"]
        lines += ["        " + line for line in body]
    lines += [
        "    except EncodeError as exc:",
        "        raise EncodeError(",
        "            f'{_model}.{field}: {exc} (the value is on the instance)'",
        "        ) from None",
        "    except RecursionError:",
        "        raise EncodeError(",
        "            f'{_model}.{field}: the value is nested far deeper than the {_nesting} '",
        "            'levels DynamoDB allows'",
        "        ) from None",
        "    return out",
    ]
    code = compile("\n".join(lines), f"<dynamodm encoder of {codec.cls.__qualname__}>", "exec")
    exec(code, namespace)
    encoder: Callable[[Any], Item] = namespace["encode_fields"]
    return encoder


def _list_element(element: Codec) -> Callable[[Any], AttributeValue]:
    """One member of a list: NULL for None, else its element codec's value (a list cannot
    hold an empty set, which encodes to nothing)."""
    encode = element.encode

    def member(value: Any) -> AttributeValue:
        if value is None:
            return {"NULL": True}
        encoded = encode(value)
        if encoded is None:
            raise EncodeError("an empty set cannot be stored inside a list")
        return encoded

    return member


# ---------------------------------------------------------------- exact loading


class Mismatch(Exception):
    """A stored value the exact decoders do not take as it is: full validation decides."""


ExactDecoder = Callable[[AttributeValue], Any]

# What a missing attribute becomes: required (full validation reports it), a default
# shared as Pydantic shares hashable ones, a default copied as Pydantic copies the others,
# a default factory, or an empty set (a missing set attribute reads back empty).
_REQUIRED, _SHARED, _COPIED, _FACTORY, _EMPTY_SET = range(5)

# Model config an exact loader may ignore: options that cannot change or refuse what
# validation makes of the values the exact decoders take (naming, schemas, serialisation,
# assignment; inf/NaN and numbers in str fields are left to validation by the decoders).
_CONFIG_HARMLESS = frozenset(
    {
        "alias_generator",
        "allow_inf_nan",
        "arbitrary_types_allowed",
        "cache_strings",
        "coerce_numbers_to_str",
        "defer_build",
        "extra",
        "field_title_generator",
        "from_attributes",
        "frozen",
        "hide_input_in_errors",
        "ignored_types",
        "json_encoders",
        "json_schema_extra",
        "json_schema_mode_override",
        "json_schema_serialization_defaults_required",
        "loc_by_alias",
        "model_title_generator",
        "polymorphic_serialization",
        "populate_by_name",
        "protected_namespaces",
        "regex_engine",
        "revalidate_instances",
        "schema_generator",
        "ser_json_bytes",
        "ser_json_inf_nan",
        "ser_json_temporal",
        "ser_json_timedelta",
        "serialize_by_alias",
        "title",
        "use_attribute_docstrings",
        "validate_assignment",
        "validate_by_name",
        "validate_return",
        "validation_error_cause",
    }
)
# Options that change values or refuse them, harmless only at these (their defaults);
# any option in neither list (a Pydantic release may add some) keeps validation.
_CONFIG_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "strict": (None, False),
    "str_strip_whitespace": (None, False),
    "str_to_lower": (None, False),
    "str_to_upper": (None, False),
    "str_min_length": (None, 0),
    "str_max_length": (None,),
    "use_enum_values": (None, False),
    "val_temporal_unit": (None, "infer"),
    "val_json_bytes": (None, "utf8"),
    "validate_default": (None, False),
    "validate_by_alias": (None, True),
}


class ExactField:
    """One field of an exact loader: where it is stored, how it decodes (inline for the
    scalar types, else ``decode``), and what a missing attribute becomes."""

    __slots__ = ("attribute", "decode", "default", "missing", "name", "nullable", "scalar")

    def __init__(
        self, name: str, attribute: str, annotation: Any, missing: int, default: Any
    ) -> None:
        self.name = name
        self.attribute = attribute
        self.missing = missing
        self.default = default
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        self.nullable = typing.get_origin(annotation) in (Union, types.UnionType)
        inner = members[0] if self.nullable and len(members) == 1 else annotation
        self.scalar: str | None = _INLINE.get(inner) if _hashable(inner) else None
        if self.scalar is None and typing.get_origin(inner) is list:
            (element,) = typing.get_args(inner) or (None,)
            if element is str:
                self.scalar = "list[str]"
        self.decode = _exact_decoder(annotation)


class ExactLoader:
    """Builds instances of a model class straight from stored attributes, compiled when
    every field's exact decoder yields the very value Pydantic's validation would keep (and
    no validator, constraint or hook could change or refuse it). A value of another kind
    raises ``Mismatch``: the caller then decodes and validates the item in full.

    The builders are generated Python source, one block per field (as dataclasses generate
    ``__init__``): a loop calling a decoder per field costs more than Pydantic's own
    validation, which runs in Rust. Three are generated from the same blocks:

    - ``build(item)``: the instance and how many of the item's attributes it declares;
    - ``build_stored(item)``: the same, the item kept on the instance as ``_dm_stored``
      (what a save compares with), in the one ``__dict__`` the instance is given;
    - ``decode(av)``: the instance of a nested model from its M value (attributes it does
      not declare are dropped, as its full decoding drops them)."""

    __slots__ = ("binary", "build", "build_stored", "by_attribute", "cls", "decode")

    def __init__(self, cls: type[BaseModel], fields: list[ExactField], binary: bool) -> None:
        self.cls = cls
        self.by_attribute = frozenset(f.attribute for f in fields)
        # Whether a field's decoder takes a B or BS value (bytes, a set of bytes or Any,
        # anywhere in its type). When none does, a binary value in a declared attribute is
        # a Mismatch, whether it is bytes or still base64 text: the readers that leave the
        # decoding of binary values to the loader rely on that (instances.raw_loader).
        self.binary = binary
        builders = _generate(cls, fields)
        self.build: Callable[[Item], tuple[BaseModel, int]] = builders["build"]
        self.build_stored: Callable[[Item], tuple[BaseModel, int]] = builders["build_stored"]
        self.decode: Callable[[AttributeValue], BaseModel] = builders["decode"]

    def load(self, item: Item) -> tuple[BaseModel, Item]:
        """The instance, and the attributes the model does not declare."""
        instance, found = self.build(item)
        if found == len(item):
            return instance, {}
        declared = self.by_attribute
        return instance, {k: v for k, v in item.items() if k not in declared}


# Inline decoding of a scalar AttributeValue ``a`` into ``{v}``.
# Inline decoding of a scalar AttributeValue ``a`` into ``{v}``. The builder's body runs
# in one ``try``: a missing kind (KeyError), a value of another shape (TypeError) or text
# that is not a number (ValueError) is a Mismatch, as an explicit check is.
_INLINE_SOURCE = {
    "str": ["{v} = a['S']", "if {v}.__class__ is not str:", "    raise _M('S')"],
    "bytes": ["{v} = a['B']", "if {v}.__class__ is not bytes:", "    raise _M('B')"],
    "int": ["{v} = int(a['N'])"],
    "float": [
        "{v} = float(a['N'])",
        "if {v} - {v} != 0.0:",  # infinity or NaN: the model's allow_inf_nan decides
        "    raise _M('N')",
    ],
    "bool": [
        "{v} = a.get('BOOL')",
        "if {v} is not True and {v} is not False:",
        "    {v} = _bool(a)",
    ],
    "list[str]": [
        "{v} = a['L']",
        "if {v}.__class__ is not list:",
        "    raise _M('L')",
        "{v} = [e['S'] for e in {v}]",
        "for e in {v}:",
        "    if e.__class__ is not str:",
        "        raise _M('S')",
    ],
}
_INLINE: dict[Any, str] = {str: "str", bytes: "bytes", int: "int", float: "float", bool: "bool"}


def _slot_setter(cls: type[BaseModel], name: str) -> Callable[[Any, Any], None]:
    """The setter of a slot of Pydantic's instances (``__dict__``, the fields set, the
    extra and private values): the descriptor's own, a third cheaper than
    ``object.__setattr__``, which looks it up on every call."""
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            if type(descriptor) in (types.MemberDescriptorType, types.GetSetDescriptorType):
                setter: Callable[[Any, Any], None] = descriptor.__set__
                return setter
            break
    return lambda instance, value: object.__setattr__(instance, name, value)


def _generate(cls: type[BaseModel], fields: list[ExactField]) -> dict[str, Any]:
    names = [f.name for f in fields]
    namespace: dict[str, Any] = {
        "_M": Mismatch,
        "_new": cls.__new__,
        "_cls": cls,
        "_set_dict": _slot_setter(cls, "__dict__"),
        "_set_fields_set": _slot_setter(cls, "__pydantic_fields_set__"),
        "_set_extra": _slot_setter(cls, "__pydantic_extra__"),
        "_set_private": _slot_setter(cls, "__pydantic_private__"),
        "_all": frozenset(names),
        "_bool": _exact_bool,
        "_deepcopy": copy.deepcopy,
    }
    # The fields set: every field, less those whose attribute is missing (they take their
    # default, which validation does not count as set; a missing set reads back empty,
    # which it does).
    body = ["fields_set = set(_all)", f"found = {len(fields)}"]
    for i, field in enumerate(fields):
        v = f"v{i}"
        namespace[f"_d{i}"] = field.decode
        namespace[f"_f{i}"] = field.default
        if field.scalar is None:
            block = [f"{v} = _d{i}(a)"]
        else:
            block = [line.format(v=v) for line in _INLINE_SOURCE[field.scalar]]
            if field.nullable:
                block = ["if 'NULL' in a:", f"    {v} = None", "else:"] + [
                    "    " + line for line in block
                ]
        if field.missing == _REQUIRED:
            # Missing: a KeyError, so a Mismatch (validation then reports the field).
            body += [f"a = item[{field.attribute!r}]", *block]
            continue
        body += [f"a = item.get({field.attribute!r})", "if a is None:", "    found -= 1"]
        if field.missing != _EMPTY_SET:  # an empty set read back counts as set
            body.append(f"    fields_set.discard({field.name!r})")
        value = {_SHARED: "_f{i}", _COPIED: "_deepcopy(_f{i})"}.get(field.missing, "_f{i}()")
        body += [f"    {v} = {value.format(i=i)}", "else:", *("    " + line for line in block)]
    values = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    # Validation sees the declared fields only: it leaves __pydantic_extra__ empty when
    # the model allows extra fields, and None otherwise.
    extra = "{}" if cls.model_config.get("extra") == "allow" else "None"

    def instance(state: str) -> list[str]:
        return [
            "instance = _new(_cls)",
            f"_set_dict(instance, {{{state}}})",
            "_set_fields_set(instance, fields_set)",
            f"_set_extra(instance, {extra})",
            "_set_private(instance, None)",
        ]

    body = [
        "try:",
        *("    " + line for line in body),
        "except (KeyError, TypeError, ValueError):",
        "    raise _M('item') from None",
    ]
    # ``found``: how many of the item's attributes the model declares.
    sources = {
        "build": ["def build(item):", *body, *instance(values), "return instance, found"],
        "build_stored": [
            "def build_stored(item):",
            *body,
            *instance(f"{values}, '_dm_stored': item" if values else "'_dm_stored': item"),
            "return instance, found",
        ],
        "decode": [
            "def decode(av):",
            "item = av.get('M')",
            "if item.__class__ is not dict:",
            "    raise _M('M')",
            *body,
            *instance(values),
            "return instance",
        ],
    }
    built: dict[str, Any] = {}
    for name, lines in sources.items():
        source = "\n".join([lines[0], *("    " + line for line in lines[1:])])
        code = compile(source, f"<dynamodm exact loader of {cls.__qualname__}>", "exec")
        exec(code, namespace)
        built[name] = namespace[name]
    return built


def exact_loader(
    cls: type[BaseModel], codec: ModelCodec, inert: Callable[[Any], bool] | None = None
) -> ExactLoader | None:
    """The exact loader of a model class, or None when its instances need Pydantic's
    validation. ``inert``: field metadata that neither validates nor changes a value (the
    library's key markers)."""
    if not _plain_model(cls):
        return None
    fields: list[ExactField] = []
    empty_sets = set(codec.empty_sets)
    for spec in codec.fields:
        info = cls.model_fields[spec.name]
        if any(not (inert is not None and inert(m)) for m in info.metadata):
            return None
        if info.validate_default or info.default_factory_takes_validated_data:
            return None
        if info.validation_alias is not None and info.validation_alias != spec.attribute:
            return None
        missing: int
        default: Any = None
        if spec.attribute in empty_sets:
            missing = _EMPTY_SET
            default = _empty_set_of(info.annotation)
        elif info.is_required():
            missing = _REQUIRED
        elif info.default_factory is not None:
            missing, default = _FACTORY, info.default_factory
        else:
            default = info.default
            missing = _SHARED if _hashable(default) else _COPIED
        field = ExactField(spec.name, spec.attribute, info.annotation, missing, default)
        if field.decode is None:
            return None
        fields.append(field)
    binary = any(_takes_binary(cls.model_fields[f.name].annotation) for f in fields)
    return ExactLoader(cls, fields, binary)


def _takes_binary(tp: Any, within: frozenset[type] = frozenset()) -> bool:
    """Whether the exact decoder of a declared type may take a B or BS value: ``bytes`` or
    ``Any`` anywhere in it, nested models included (a type the exact decoders do not
    handle has no exact loader at all)."""
    if tp is bytes or tp is Any:
        return True
    if isinstance(tp, type) and typing.get_origin(tp) is None and issubclass(tp, BaseModel):
        if tp in within:
            return True
        return any(
            _takes_binary(info.annotation, within | {tp}) for info in tp.model_fields.values()
        )
    return any(_takes_binary(arg, within) for arg in typing.get_args(tp))


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _empty_set_of(annotation: Any) -> type:
    """set or frozenset: what Pydantic makes of the empty set a missing attribute reads as."""
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (Union, types.UnionType) and len(members) == 1:
        annotation = members[0]
    return frozenset if typing.get_origin(annotation) is frozenset else set


def _plain_model(cls: type[BaseModel]) -> bool:
    """Whether validating ``cls`` does no more than check its fields' types: no
    validators, post-init, private attributes, custom schema or value-changing config."""
    config = cls.model_config
    decorators = cls.__pydantic_decorators__
    return (
        cls.__pydantic_complete__
        and not cls.__pydantic_root_model__
        and not cls.__pydantic_post_init__
        and not cls.__private_attributes__
        and not decorators.validators
        and not decorators.field_validators
        and not decorators.root_validators
        and not decorators.model_validators
        and getattr(cls.model_validate, "__func__", None) is _MODEL_VALIDATE
        and getattr(cls.__get_pydantic_core_schema__, "__func__", None) is _CORE_SCHEMA
        and all(
            option in _CONFIG_HARMLESS
            or (option in _CONFIG_DEFAULTS and value in _CONFIG_DEFAULTS[option])
            for option, value in config.items()
        )
    )


_MODEL_VALIDATE = BaseModel.model_validate.__func__  # type: ignore[attr-defined]
_CORE_SCHEMA = BaseModel.__get_pydantic_core_schema__.__func__  # type: ignore[attr-defined]


def _exact_str(av: AttributeValue) -> Any:
    value = av.get("S")
    if type(value) is not str:
        raise Mismatch("S")
    return value


def _exact_int(av: AttributeValue) -> Any:
    try:
        return int(av["N"])
    except (KeyError, ValueError, TypeError):
        raise Mismatch("N") from None


def _exact_float(av: AttributeValue) -> Any:
    try:
        value = float(av["N"])
    except (KeyError, ValueError, TypeError):
        raise Mismatch("N") from None
    if value - value != 0.0:  # infinity or NaN: the model's allow_inf_nan decides
        raise Mismatch("N")
    return value


def _exact_bool(av: AttributeValue) -> Any:
    value = av.get("BOOL")
    if value is True or value is False:
        return value
    if "N" in av:  # an index key: N 0 or 1, read as the bool decoder reads it
        return av["N"] != "0"
    raise Mismatch("BOOL")


def _exact_bytes(av: AttributeValue) -> Any:
    value = av.get("B")
    if type(value) is not bytes:
        raise Mismatch("B")
    return value


def _validated_text(tp: type) -> ExactDecoder:
    """The exact decoder of a type Pydantic parses from text (datetime, date, UUID): the
    S value through Pydantic's own validator of that type (the one the model's validation
    runs on the same text, in Rust, faster than any parse written here); anything else, or
    text it refuses, is left to the model's validation."""
    validator = _TEXT_VALIDATORS.get(tp)
    if validator is None:
        validator = _TEXT_VALIDATORS[tp] = TypeAdapter(tp).validate_python

    def decode(av: AttributeValue) -> Any:
        text = av.get("S")
        if type(text) is not str:
            raise Mismatch("S")
        try:
            return validator(text)
        except ValidationError:
            raise Mismatch("S") from None

    return decode


_TEXT_VALIDATORS: dict[type, Callable[[Any], Any]] = {}
_PARSED_FROM_TEXT = (datetime, date, uuid.UUID)


def _exact_decimal(av: AttributeValue) -> Any:
    text = av.get("N")
    if type(text) is not str:
        raise Mismatch("N")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Mismatch("N") from None
    if not value.is_finite():
        raise Mismatch("N")
    return value


def _exact_choice(choices: dict[tuple[str, Any], Any], kinds: frozenset[str]) -> ExactDecoder:
    """An enum member or a Literal value, found by its stored value: an S text, or an N
    read as an int. A value that is not one of them exactly is left to validation (which
    may coerce it, call the enum's ``_missing_``, or refuse it)."""

    def decode(av: AttributeValue) -> Any:
        try:
            if "S" in av and "S" in kinds:
                found = choices.get(("S", av["S"]), _NONE)
            elif "N" in av and "N" in kinds:
                found = choices.get(("N", int(av["N"])), _NONE)
            else:
                raise Mismatch("S")
        except (ValueError, TypeError):
            raise Mismatch("S") from None
        if found is _NONE:
            raise Mismatch("S")
        return found

    return decode


_NONE = object()


def _choices(values: list[tuple[Any, Any]]) -> ExactDecoder | None:
    """The exact decoder of a closed set of (stored value, loaded value): str values are
    stored as S, int values (not bool) as N; None for any other kind."""
    choices: dict[tuple[str, Any], Any] = {}
    for raw, loaded in values:
        if type(raw) is str:
            choices[("S", raw)] = loaded
        elif type(raw) is int:
            choices[("N", raw)] = loaded
        else:
            return None
    return _exact_choice(choices, frozenset(kind for kind, _ in choices))


def _exact_enum(cls: type[enum.Enum]) -> ExactDecoder | None:
    if getattr(cls._missing_, "__func__", None) is not getattr(enum.Enum._missing_, "__func__", 0):
        return None  # the enum's own lookup decides: validation calls it
    return _choices([(member.value, member) for member in cls])


_EXACT_SCALARS: dict[Any, ExactDecoder] = {
    str: _exact_str,
    int: _exact_int,
    float: _exact_float,
    bool: _exact_bool,
    bytes: _exact_bytes,
    Decimal: _exact_decimal,
    Any: decode_any,  # Pydantic keeps whatever an Any field is given
}
_SET_KINDS: dict[Any, str] = {str: "SS", int: "NS", float: "NS", bytes: "BS"}
_EXACT_IN_PROGRESS: set[type[BaseModel]] = set()
_EXACT_MODELS: dict[type[BaseModel], ExactLoader | None] = {}


def _exact_decoder(tp: Any) -> ExactDecoder | None:
    """The exact decoder of a declared type, or None when only validation can tell the
    value (constraints, coercions, enums, datetimes, unions of several types...)."""
    scalar = _EXACT_SCALARS.get(tp) if _hashable(tp) else None  # Annotated may be unhashable
    if scalar is not None:
        return scalar
    if _hashable(tp) and tp in _PARSED_FROM_TEXT:
        return _validated_text(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) != 1 or len(args) != 2:
            return None
        inner = _exact_decoder(members[0])
        return None if inner is None else _nullable(inner)
    if origin is list and len(args) == 1:
        element = _exact_decoder(args[0])
        return None if element is None else _exact_list(element)
    if origin is dict and len(args) == 2 and args[0] is str:
        value = _exact_decoder(args[1])
        return None if value is None else _exact_map(value)
    if origin in (set, frozenset) and len(args) == 1 and _exact_decoder(args[0]) is not None:
        kind = _SET_KINDS.get(args[0])
        return None if kind is None else _exact_set(kind, _EXACT_SCALARS[args[0]], origin)
    if isinstance(tp, type) and issubclass(tp, BaseModel) and origin is None:
        loader = _exact_model(tp)
        return None if loader is None else loader.decode
    if isinstance(tp, type) and issubclass(tp, enum.Enum) and origin is None:
        return _exact_enum(tp)
    if origin is Literal:
        if any(isinstance(a, enum.Enum) for a in args):
            return None
        return _choices([(a, a) for a in args])
    return None


def _exact_model(cls: type[BaseModel]) -> ExactLoader | None:
    """The exact loader of a nested model class (once per class; a model that contains
    itself keeps full validation)."""
    if cls in _EXACT_MODELS:
        return _EXACT_MODELS[cls]
    if cls in _EXACT_IN_PROGRESS:
        return None
    _EXACT_IN_PROGRESS.add(cls)
    try:
        loader = exact_loader(cls, model_codec(cls))
    finally:
        _EXACT_IN_PROGRESS.discard(cls)
    _EXACT_MODELS[cls] = loader
    return loader


def _nullable(inner: ExactDecoder) -> ExactDecoder:
    def decode(av: AttributeValue) -> Any:
        return None if "NULL" in av else inner(av)

    return decode


def _exact_list(element: ExactDecoder) -> ExactDecoder:
    def decode(av: AttributeValue) -> Any:
        values = av.get("L")
        if type(values) is not list:
            raise Mismatch("L")
        return [element(v) for v in values]

    return decode


def _exact_map(value: ExactDecoder) -> ExactDecoder:
    def decode(av: AttributeValue) -> Any:
        values = av.get("M")
        if type(values) is not dict:
            raise Mismatch("M")
        return {k: value(v) for k, v in values.items()}

    return decode


def _exact_set(kind: str, element: ExactDecoder, container: type) -> ExactDecoder:
    scalar = {"SS": "S", "NS": "N", "BS": "B"}[kind]

    def decode(av: AttributeValue) -> Any:
        values = av.get(kind)
        if type(values) is not list:
            raise Mismatch(kind)
        return container(element({scalar: v}) for v in values)

    return decode


_MODEL_CODECS: dict[type[BaseModel], ModelCodec] = {}


def model_codec(cls: type[BaseModel]) -> ModelCodec:
    """The compiled codec of a nested model class (built once, recursion-safe)."""
    codec = _MODEL_CODECS.get(cls)
    if codec is None:
        codec = _MODEL_CODECS[cls] = ModelCodec(cls)
        codec.compile()
    return codec


_STR = _Str()
_INT = _Int()
_FLOAT = _Float()
_DECIMAL = _Decimal()
_BOOL = _Bool()
_BYTES = _Bytes()
_DATETIME = _Datetime()
_ISO = _Isoformat()
BOOL_KEY = _BoolKey()
EPOCH_SECONDS = _EpochSeconds()
_SCALARS: dict[Any, Codec] = {
    str: _STR,
    int: _INT,
    float: _FLOAT,
    Decimal: _DECIMAL,
    bool: _BOOL,
    bytes: _BYTES,
    datetime: _DATETIME,
    date: _ISO,
    time: _ISO,
    uuid.UUID: _STR,
    Any: ANY,
    object: ANY,
}


def compile_type(tp: Any) -> Codec:
    """The codec for a declared type (see the type table in the docs)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return compile_type(args[0])
    if tp in _SCALARS:
        return _SCALARS[tp]
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        inner = compile_type(members[0]) if len(members) == 1 else _union(members)
        return _Nullable(inner) if len(members) < len(args) else inner
    if origin is Literal:
        kinds = {type(a) for a in args}
        if len(kinds) == 1:
            kind = kinds.pop()
            if issubclass(kind, enum.Enum):
                return _Enum(compile_type(type(args[0].value)))
            return compile_type(kind)
        return ANY
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            values = {type(m.value) for m in tp}
            return _Enum(compile_type(values.pop()) if len(values) == 1 else ANY)
        if issubclass(tp, BaseModel):
            return model_codec(tp)
        if issubclass(tp, SecretStr | SecretBytes):
            return _Secret(_STR if issubclass(tp, SecretStr) else _BYTES)
        if issubclass(tp, bool):
            return _BOOL
        for base in (str, int, float, Decimal, bytes, datetime, date, uuid.UUID):
            if issubclass(tp, base):
                return _SCALARS[base]
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        element: Any = args[0] if args else Any
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            element = args[0] if len(set(args)) == 1 else Any
        return _List(compile_type(element))
    if origin in (dict, Mapping) or tp is dict:
        return _Map(compile_type(args[1]) if args else ANY)
    if origin in (set, frozenset, Set, MutableSet) or tp in (set, frozenset):
        element = compile_type(args[0]) if args else ANY
        inner = element.inner if isinstance(element, _Enum) else element
        if inner is _BYTES:
            return _Set("BS", element)
        if inner.key_type == "N":
            return _Set("NS", element)
        if inner.key_type == "S":
            return _Set("SS", element)
        return _AnySet()
    return _Dumped(tp)


class _AnySet(Codec):
    def encode(self, value: Any) -> AttributeValue | None:
        return _encode_any_set(value)


def _union(members: list[Any]) -> Codec:
    """Unions of one scalar kind keep their codec; others go by the runtime type."""
    codecs = [compile_type(m) for m in members]
    if all(c is codecs[0] for c in codecs):
        return codecs[0]
    return ANY


# ---------------------------------------------------------------- equality


def av_equal(left: AttributeValue | None, right: AttributeValue | None) -> bool:
    """Whether two AttributeValues hold one value as DynamoDB compares them: numbers by
    value ("1.50" is "1.5"), sets without order, lists and maps member by member."""
    if left is None or right is None:
        return left is right
    if left == right:
        return True
    if len(left) != 1 or len(right) != 1:
        return False
    ((kind, a),) = left.items()
    ((other, b),) = right.items()
    if kind != other:
        return False
    try:
        if kind == "N":
            return bool(Decimal(a) == Decimal(b))
        if kind == "NS":
            return {Decimal(v) for v in a} == {Decimal(v) for v in b}
        if kind in ("SS", "BS"):
            return {bytes(v) if kind == "BS" else v for v in a} == {
                bytes(v) if kind == "BS" else v for v in b
            }
        if kind == "B":
            return bytes(a) == bytes(b)
        if kind == "L":
            return len(a) == len(b) and all(av_equal(x, y) for x, y in zip(a, b, strict=True))
        if kind == "M":
            return a.keys() == b.keys() and all(av_equal(a[k], b[k]) for k in a)
    except (TypeError, ArithmeticError, ValueError):
        return False
    return False


# ---------------------------------------------------------------- item size


def item_size(item: Item) -> int:
    """The item's size by DynamoDB's rules (names + values; lists and maps + 3 bytes)."""
    return sum(len(name.encode()) + value_size(av) for name, av in item.items())


def value_size(av: AttributeValue) -> int:
    for kind, raw in av.items():
        if kind == "S":
            return len(raw.encode())
        if kind == "N":
            return _number_size(raw)
        if kind == "B":
            return len(raw)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + 1 + value_size(v) for k, v in raw.items())
        if kind == "L":
            return 3 + sum(1 + value_size(v) for v in raw)
        if kind == "SS":
            return sum(len(s.encode()) for s in raw)
        if kind == "NS":
            return sum(_number_size(n) for n in raw)
        if kind == "BS":
            return sum(len(b) for b in raw)
    return 0


def _number_size(text: str) -> int:
    number = Decimal(text)
    if not number:
        return 1
    count = _significant_digits(number)
    adjusted = number.adjusted()
    even_pad = 1 if count % 2 == 0 and adjusted % 2 == 0 else 0
    return 1 + -(-count // 2) + even_pad + (1 if number.is_signed() else 0)


def check_nesting(av: AttributeValue, what: str, above: int = 0) -> None:
    """Refuse a value nested deeper than DynamoDB allows; ``above`` is how many levels
    the path it is stored under adds (0 for a top-level attribute)."""
    if above + 1 > MAX_NESTING or not _nesting_fits(av, above + 1):
        raise EncodeError(
            f"{what} is nested more than {MAX_NESTING} levels deep, which DynamoDB "
            "refuses; flatten the structure or store it as a JSON string"
        )


def _nesting_fits(av: AttributeValue, level: int) -> bool:
    """Whether no value inside ``av`` (at ``level``) lies deeper than MAX_NESTING. Only
    lists and maps are descended into: a scalar member costs one membership test."""
    for kind, raw in av.items():
        if kind == "M":
            children = raw.values()
        elif kind == "L":
            children = raw
        else:
            continue
        if level >= MAX_NESTING and children:
            return False
        for child in children:
            if ("M" in child or "L" in child) and not _nesting_fits(child, level + 1):
                return False
    return True


class EncodedItem(dict[str, AttributeValue]):
    """An item that carries its JSON as DynamoDB's JSON protocol sends it (bytes in
    base64), made once for its size bound: the fast transport sends these bytes instead
    of serialising the item again. Setting, deleting or updating its attributes drops the
    JSON (the item is then serialised as a plain dict); its attribute values themselves
    must not be changed in place once it is sized (the library never does: a write that
    changes an item builds and sizes it again)."""

    __slots__ = ("json",)

    # No Python ``__init__``: ``sized_item`` builds one with dict's own (a copy of the
    # item, in C) and then sets ``json``, which every EncodedItem must be given.
    json: bytes | None

    def __setitem__(self, key: str, value: AttributeValue) -> None:
        self.json = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.json = None
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.json = None
        return super().pop(*args)

    def popitem(self) -> tuple[str, AttributeValue]:
        self.json = None
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.json = None
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.json = None
        super().update(*args, **kwargs)

    def clear(self) -> None:
        self.json = None
        super().clear()

    def __ior__(self, other: Any) -> EncodedItem:  # type: ignore[override,misc]
        self.json = None
        super().__ior__(other)
        return self

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))

    def __copy__(self) -> Item:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Item:
        return copy.deepcopy(dict(self), memo)


def request_json(value: Any) -> bytes:
    """DynamoDB's JSON of a request or an item: bytes in base64; an ``EncodedItem`` as the
    JSON it was sized with; other subclasses of str, int, dict and list as orjson writes
    them without its passthrough option (their base type's value)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_PASSTHROUGH_SUBCLASS)


def _json_default(value: Any) -> Any:
    cls = type(value)
    if cls is EncodedItem:
        json = value.json
        return dict(value) if json is None else orjson.Fragment(json)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode()
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise TypeError(f"{cls.__name__} is not JSON serialisable")


def check_item_size(
    item: Item, model: str, operation: str, bounded: frozenset[str] = frozenset()
) -> int:
    """Raise ItemTooLarge (or EncodeError, for nesting) before sending an item DynamoDB
    would refuse; return the item's size, or an upper bound of it when far below.
    ``bounded`` names attributes whose type bounds their nesting (``ModelCodec.bounded``),
    which are not walked."""
    return _measure(item, model, operation, bounded)[1]


def sized_item(
    item: Item, model: str, operation: str, bounded: frozenset[str] = frozenset()
) -> tuple[Item, int]:
    """``check_item_size``, and the item to send: an ``EncodedItem`` holding the JSON that
    measured it, so that the item is serialised once for its bound and its request."""
    if bounded.issuperset(item):
        # The common case, in one call: no nesting to walk and the JSON well within the
        # limit (what _measure then does). Anything else, even a failed dump, goes
        # through _measure, which decides as it always has.
        try:
            dumped = orjson.dumps(
                item, default=_json_default, option=orjson.OPT_PASSTHROUGH_SUBCLASS
            )
        except (TypeError, orjson.JSONEncodeError):
            pass
        else:
            if len(dumped) <= MAX_ITEM_SIZE:
                encoded = EncodedItem(item)
                encoded.json = dumped
                return encoded, len(dumped)
    json, size = _measure(item, model, operation, bounded)
    encoded = EncodedItem(item)
    encoded.json = json
    return encoded, size


def _measure(
    item: Item, model: str, operation: str, bounded: frozenset[str]
) -> tuple[bytes | None, int]:
    """The item's JSON (None when it cannot be written) and its size or bound."""
    if not bounded.issuperset(item):
        for name, av in item.items():
            if ("M" in av or "L" in av) and name not in bounded:
                check_nesting(av, f"{operation} {model}: attribute {name!r}")
    json: bytes | None
    try:
        # The item's JSON is never smaller than its DynamoDB size (names and strings are
        # the same UTF-8 bytes plus quotes, numbers at least as many characters as their
        # size, bytes grow in base64): orjson measures it far faster than the exact walk.
        json = request_json(item)
        bound = len(json)
    except (TypeError, orjson.JSONEncodeError):
        json, bound = None, MAX_ITEM_SIZE + 1
    if bound <= MAX_ITEM_SIZE:
        return json, bound
    try:
        size = item_size(item)
    except UnicodeEncodeError:
        raise EncodeError(
            f"{operation} {model}: a string holds a lone surrogate, which is not valid "
            "UTF-8 and cannot be stored; clean the text before saving"
        ) from None
    if size > MAX_ITEM_SIZE:
        raise ItemTooLarge(
            f"{operation} {model}: the item is {size} bytes, over DynamoDB's limit of "
            f"{MAX_ITEM_SIZE}; store large values elsewhere (S3) and keep a reference",
            size=size,
        )
    return json, size


# ---------------------------------------------------------------- DynamoDB JSON


def decode_binary(node: Any) -> Any:
    """Turn the base64 text of B and BS AttributeValues into bytes, in place; values
    already bytes are left as they are (an item may be decoded twice)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "B" and isinstance(value, str) and len(node) == 1:
                node[key] = base64.b64decode(value)
            elif key == "BS" and isinstance(value, list) and len(node) == 1:
                node[key] = [base64.b64decode(v) if isinstance(v, str) else v for v in value]
            elif isinstance(value, dict | list):
                decode_binary(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, dict | list):
                decode_binary(value)
    return node


def item_from_json(data: object, *, binary: Literal["base64", "either"] = "base64") -> Item:
    """An item from parsed DynamoDB JSON (the AWS CLI's, exports, Lambda stream events),
    checked: binary values base64-decoded (``binary="either"`` also takes bytes, as boto3
    returns them), numbers in DynamoDB's range. Raises ValueError naming the attribute."""
    if not isinstance(data, dict):
        raise ValueError('an item is one JSON object such as {"id": {"S": "u-1"}}')
    return {name: _json_value(av, name, binary == "either") for name, av in data.items()}


def _json_value(av: object, where: str, either: bool) -> AttributeValue:
    if not isinstance(av, dict) or len(av) != 1:
        raise ValueError(f'{where}: expected one typed value such as {{"S": "text"}}')
    ((kind, raw),) = av.items()
    if kind == "S" and isinstance(raw, str):
        return {"S": raw}
    if kind == "N" and isinstance(raw, str):
        return {"N": _json_number(raw, where)}
    if kind == "B":
        return {"B": _json_bytes(raw, where, either)}
    if kind == "BOOL" and isinstance(raw, bool):
        return {"BOOL": raw}
    if kind == "NULL" and raw is True:
        return {"NULL": True}
    if kind == "M" and isinstance(raw, dict):
        return {"M": {k: _json_value(v, f"{where}.{k}", either) for k, v in raw.items()}}
    if kind == "L" and isinstance(raw, list):
        return {"L": [_json_value(v, f"{where}[{i}]", either) for i, v in enumerate(raw)]}
    if kind in ("SS", "NS", "BS") and isinstance(raw, list) and raw:
        if kind == "BS":
            return {"BS": [_json_bytes(v, where, either) for v in raw]}
        if not all(isinstance(v, str) for v in raw):
            raise ValueError(f"{where}: the elements of {kind} are strings")
        return {kind: [_json_number(v, where) for v in raw] if kind == "NS" else list(raw)}
    if kind in ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"):
        raise ValueError(f"{where}: {kind} holds a {type(raw).__name__} it cannot hold")
    raise ValueError(f"{where}: {kind!r} is not a DynamoDB type")


def _json_number(text: str, where: str) -> str:
    try:
        return check_number(text)
    except UsageError as error:
        raise ValueError(f"{where}: {error}") from None


def _json_bytes(raw: object, where: str, either: bool) -> bytes:
    if either and isinstance(raw, bytes | bytearray):
        return bytes(raw)
    if not isinstance(raw, str):
        raise ValueError(f"{where}: binary values are base64 strings")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise ValueError(f"{where}: not valid base64") from None
