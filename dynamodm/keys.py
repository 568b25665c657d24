"""Keys: a model's table key from positional values, keyword fields or an instance, and the
computed attributes (key templates, entity type) written with every item."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any

from .codec import ANY, AttributeValue, EncodeError, Item
from .errors import UsageError
from .expressions import Path, _adapter
from .schema import KeyAttribute, Template, schema_of

if TYPE_CHECKING:
    from .model import Model


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc))
    return str(exc)


def encode_field(model: type[Model], name: str, value: Any, *, validate: bool = True) -> Any:
    """A field value validated through the field's type and encoded as it is stored."""
    # The fields themselves, not the ``model_fields`` property: this runs for every key.
    annotation = model.__pydantic_fields__[name].annotation
    if validate and not (annotation is str and type(value) is str):
        try:
            value = _adapter(annotation).validate_python(value)
        except ValueError as exc:
            raise UsageError(
                f"{model.__name__}: the value for {name!r} does not fit the field's type "
                f"({_first_error(exc)})"
            ) from None
    try:
        return model.__dm_codec__.by_name[name].codec.encode(value)
    except EncodeError as exc:
        raise UsageError(f"{model.__name__}.{name}: {exc}") from None


MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024
# A string key of this many characters is within both limits, even at four bytes each.
SHORT_KEY = MAX_RANGE_KEY_BYTES // 4


def check_key_size(model: type[Model], name: str, av: AttributeValue, *, hash_key: bool) -> None:
    """DynamoDB's limits on key values: 2,048 bytes for a partition (hash) key, 1,024
    for a sort (range) key, of the table and of its indexes."""
    raw = av.get("S")
    if raw is None:
        raw = av.get("B")
        if raw is None:
            return
        size = len(raw)
    else:
        size = len(raw)
        if size <= SHORT_KEY:
            return
        size = len(raw.encode("utf-8", "surrogatepass"))
    limit = MAX_HASH_KEY_BYTES if hash_key else MAX_RANGE_KEY_BYTES
    if size > limit:
        kind = "partition (hash)" if hash_key else "sort (range)"
        raise UsageError(
            f"{model.__name__}.{name}: a {kind} key value is at most {limit} bytes in "
            f"DynamoDB; this one has {size}: store a shorter value or a hash of it"
        )


def key_value(
    model: type[Model], name: str, value: Any, *, hash_key: bool = True
) -> AttributeValue:
    """A key field's value, validated and encoded; None, empty and oversized values
    refused."""
    if (
        type(value) is str
        and 0 < len(value) <= SHORT_KEY
        and value.isascii()
        and model.__pydantic_fields__[name].annotation is str
    ):
        # The common key, a short ASCII value of a str field, is stored as it is: nothing
        # to validate or convert, and it is valid UTF-8, not empty and within the limits.
        return {"S": value}
    if value is None:
        raise UsageError(f"{model.__name__}: the key field {name!r} needs a value, got None")
    encoded = encode_field(model, name, value)
    if encoded is None or encoded.get("S") == "" or encoded.get("B") == b"":
        raise UsageError(f"{model.__name__}: the key field {name!r} cannot be empty")
    check_key_size(model, name, encoded, hash_key=hash_key)
    return encoded  # type: ignore[no-any-return]


def field_text(model: type[Model], name: str, value: Any, *, validate: bool = True) -> str:
    """The text a field contributes to a key template."""
    encoded = encode_field(model, name, value, validate=validate)
    if encoded is not None:
        for kind in ("S", "N"):
            if kind in encoded:
                text: str = encoded[kind]
                return text
    raise UsageError(f"{model.__name__}: field {name!r} has no text form for a key template")


def render(
    model: type[Model], template: Template, values: Mapping[str, Any], *, validate: bool = True
) -> str | None:
    """The template filled from field values, or None when a field has no value."""
    texts: dict[str, str] = {}
    for name in template.fields:
        value = values.get(name)
        if value is None:
            return None
        texts[name] = field_text(model, name, value, validate=validate)
    return template.render(texts)


def _key_part(
    model: type[Model],
    key: KeyAttribute,
    values: Mapping[str, Any],
    validate: bool,
    hash_key: bool,
) -> AttributeValue:
    if key.template is not None:
        text = render(model, key.template, values, validate=validate)
        if text is None:
            missing = [f for f in key.template.fields if values.get(f) is None]
            raise UsageError(
                f"{model.__name__}: the key needs {', '.join(repr(m) for m in missing)} "
                f"(template {key.template.template!r})"
            )
        av = {"S": text}
        check_key_size(model, key.attribute, av, hash_key=hash_key)
        return av
    assert key.field is not None
    return key_value(model, key.field, values.get(key.field), hash_key=hash_key)


def from_fields(model: type[Model], values: Mapping[str, Any], *, validate: bool = True) -> Item:
    """The table key from field values by name."""
    schema = schema_of(model)
    unknown = [name for name in values if name not in model.model_fields]
    if unknown:
        raise UsageError(
            f"{model.__name__}: unknown key field {unknown[0]!r}; the key is made of "
            f"{', '.join(schema.key_fields)}"
        )
    return {
        k.attribute: _key_part(model, k, values, validate, k is schema.hash_key)
        for k in schema.table_keys
    }


def from_values(model: type[Model], hash_value: Any, range_value: Any = None) -> Item:
    """The table key from positional hash (and range) values."""
    schema = schema_of(model)
    if schema.hash_key.template is not None or (
        schema.range_key is not None and schema.range_key.template is not None
    ):
        raise UsageError(
            f"{model.__name__}: its key is computed from fields; pass them by name, e.g. "
            f"{model.__name__}.get({', '.join(f'{f}=...' for f in schema.key_fields)})"
        )
    assert schema.hash_key.field is not None
    key = {schema.hash_key.attribute: key_value(model, schema.hash_key.field, hash_value)}
    if schema.range_key is None:
        if range_value is not None:
            raise UsageError(f"{model.__name__} has no range key; pass the hash key only")
    else:
        if range_value is None:
            raise UsageError(
                f"{model.__name__} has a range key ({schema.range_key.field}); "
                "pass both the hash and the range key"
            )
        assert schema.range_key.field is not None
        key[schema.range_key.attribute] = key_value(
            model, schema.range_key.field, range_value, hash_key=False
        )
    return key


def from_any(model: type[Model], key: Any) -> Item:
    """A key given as a hash value, a ``(hash, range)`` tuple or a dict of field values."""
    if isinstance(key, Mapping):
        return from_fields(model, key)
    if isinstance(key, tuple):
        if len(key) != 2:
            raise UsageError(f"{model.__name__}: a key tuple is (hash, range)")
        return from_values(model, key[0], key[1])
    return from_values(model, key)


def key_encoder(model: type[Model]) -> Callable[[Any], Item]:
    """``from_any`` for one model (batch_get's keys), with the common key read in place:
    a short ASCII ``str`` (or a pair of them) for a table key of plain ``str`` fields is
    stored as it is, by ``key_value``'s rule for such values; anything else goes through
    ``from_any``."""
    schema = model.__dm_schema__
    fields = model.__pydantic_fields__
    hash_key, range_key = schema.hash_key, schema.range_key
    short = SHORT_KEY

    def plain(key: KeyAttribute | None) -> bool:
        return key is None or (
            key.template is None and key.field is not None and fields[key.field].annotation is str
        )

    def general(key: Any) -> Item:
        return from_any(model, key)

    if not (plain(hash_key) and plain(range_key)):
        return general
    hash_attribute = hash_key.attribute
    if range_key is None:

        def hash_only(key: Any) -> Item:
            if type(key) is str and 0 < len(key) <= short and key.isascii():
                return {hash_attribute: {"S": key}}
            return from_any(model, key)

        return hash_only
    range_attribute = range_key.attribute

    def pair(key: Any) -> Item:
        if type(key) is tuple and len(key) == 2:
            first, second = key
            if (
                type(first) is str
                and type(second) is str
                and 0 < len(first) <= short
                and 0 < len(second) <= short
                and first.isascii()
                and second.isascii()
            ):
                return {hash_attribute: {"S": first}, range_attribute: {"S": second}}
        return from_any(model, key)

    return pair


def from_call(
    model: type[Model], hash_value: Any, range_value: Any, fields: Mapping[str, Any]
) -> Item:
    """The key of a call such as ``get(hash, range)`` or ``get(athlete_id=..., ...)``."""
    if fields:
        if hash_value is not None or range_value is not None:
            raise UsageError(
                f"{model.__name__}: pass the key either positionally or by field names"
            )
        return from_fields(model, fields)
    encode = model.__dm_codec__.positional_key
    if encode is None:
        encode = model.__dm_codec__.positional_key = _positional_encoder(model)
    return encode(hash_value, range_value)


def _positional_encoder(model: type[Model]) -> Callable[[Any, Any], Item]:
    """``from_values`` for one model, with a common key (short ASCII text for plain
    ``str`` key fields) read in place by ``key_encoder``; any other value goes through
    ``from_values``, as before."""
    encode = key_encoder(model)
    if model.__dm_schema__.range_key is None:

        def hash_only(hash_value: Any, range_value: Any) -> Item:
            if range_value is None and type(hash_value) is str:
                return encode(hash_value)
            return from_values(model, hash_value, range_value)

        return hash_only

    def pair(hash_value: Any, range_value: Any) -> Item:
        if range_value is not None:
            return encode((hash_value, range_value))
        return from_values(model, hash_value, range_value)

    return pair


def from_instance(instance: Model) -> Item:
    """The table key of an instance (its values were validated when they were set)."""
    model = type(instance)
    schema = schema_of(model)
    values = instance.__dict__
    key: Item = {}
    for part in schema.table_keys:
        hash_key = part is schema.hash_key
        if part.field is not None and part.template is None:
            # A plain key field, the common case: straight to its value (as _key_part does).
            key[part.attribute] = key_value(
                model, part.field, values.get(part.field), hash_key=hash_key
            )
        else:
            key[part.attribute] = _key_part(model, part, values, False, hash_key)
    return key


def computed(model: type[Model], values: Mapping[str, Any], *, validate: bool = False) -> Item:
    """The computed attributes an item carries: every template that its field values
    fill (index templates with a missing field are left out: a sparse index), and the
    entity type."""
    schema = schema_of(model)
    out: Item = {}
    for template in schema.templates:
        text = render(model, template, values, validate=validate)
        if text is not None:
            out[template.attribute] = {"S": text}
    if schema.entity is not None:
        out[schema.entity_attribute] = {"S": schema.entity}
    return out


def attribute_path(model: type[Model], attribute: str) -> Path[Any]:
    """A path to an attribute by its wire name (also for computed key attributes)."""
    spec = model.__dm_codec__.by_attribute.get(attribute)
    if spec is not None:
        path: Path[Any] = getattr(model, spec.name)
        return path
    return Path(model, attribute, (attribute,), ANY, Any)


def hash_path(model: type[Model]) -> Path[Any]:
    """The table's hash key attribute, for existence conditions."""
    return attribute_path(model, schema_of(model).hash_key.attribute)


# ---------------------------------------------------------------- identity

# Wide enough for DynamoDB's 38 significant digits: normalising never rounds.
_EXACT = Context(prec=60)


def canonical_number(raw: str) -> str:
    """A stored number's canonical text: "1.50", "1.5" and "15E-1" are one number to
    DynamoDB, so they are one key."""
    number = Decimal(raw)
    return format(_EXACT.normalize(number), "f") if number else "0"


def key_text(key: Item) -> str:
    """An item's key as one canonical string (numbers normalised as DynamoDB compares
    them, binary as base64); ``key_from_text`` reads it back."""
    return json.dumps(
        {
            name: {
                kind: (
                    base64.b64encode(value).decode()
                    if isinstance(value, bytes)
                    else canonical_number(value)
                    if kind == "N"
                    else value
                )
                for kind, value in av.items()
            }
            for name, av in sorted(key.items())
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def key_from_text(text: str) -> Item:
    """The key that ``key_text`` wrote."""
    data = json.loads(text)
    return {
        name: {kind: (base64.b64decode(v) if kind == "B" else v) for kind, v in av.items()}
        for name, av in data.items()
    }


def item_identity(table: str, key: Item) -> str:
    """One text per stored item: two keys DynamoDB takes for one item give one text
    (batches, transactions and guards de-duplicate with it)."""
    return identity_of(table, sorted(key), key)


def identity_of(table: str, attributes: Sequence[str], item: Item) -> str:
    """``item_identity`` of the key that the attributes ``attributes`` (sorted) of
    ``item`` make: read in place, without building the key first."""
    if len(attributes) == 2:
        # A hash and a range key of strings, the most common table key: the loop below
        # unrolled into one text (the loop decides every other case, with the same text).
        first, second = attributes
        a = item.get(first)
        b = item.get(second)
        if a is not None and b is not None and len(a) == 1 and len(b) == 1:
            x = a.get("S")
            y = b.get("S")
            if (
                x is not None
                and y is not None
                and "\x00" not in x
                and "\x01" not in x
                and "\x00" not in y
                and "\x01" not in y
            ):
                return f"{table}\x01{first}\x00S\x00{x}\x01{second}\x00S\x00{y}"
    text = table
    for name in attributes:
        av = item.get(name)
        # String keys, by far the most common, are their own canonical text, joined by
        # separators they cannot hold (a value holding one takes the JSON form, whose
        # text starts differently: "a\x01b" and "a" then "b" are not one identity).
        value = av.get("S") if av is not None and len(av) == 1 else None
        if value is None or "\x00" in value or "\x01" in value:
            return _typed_identity(table, {a: item[a] for a in attributes if a in item})
        text = f"{text}\x01{name}\x00S\x00{value}"
    return text


def _typed_identity(table: str, key: Item) -> str:
    text = [table]
    for name in sorted(key):
        ((kind, value),) = key[name].items()
        if kind != "S" or "\x00" in value or "\x01" in value:
            return table + "\x00" + key_text(key)
        text.append(f"{name}\x00S\x00{value}")
    return "\x01".join(text)
