"""What a model declares: key markers, indexes and Meta, checked once into a TableSchema."""

from __future__ import annotations

import re
import string
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from .errors import InvalidModel, UsageError

if TYPE_CHECKING:
    from .model import Model
    from .registry import Registry


class Marker:
    """A behaviour marker placed in ``Annotated[...]``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"dynamodm.{self.name}"


class _TTLMarker(Marker):
    """TTL values are truncated to whole seconds on assignment, so they round-trip."""

    __slots__ = ()

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = core_schema.no_info_after_validator_function(_whole_seconds, handler(source))
        members = typing.get_args(source) if typing.get_origin(source) in _UNIONS else (source,)
        if datetime in members:
            return core_schema.no_info_before_validator_function(_epoch_to_datetime, schema)
        if date in members:
            return core_schema.no_info_before_validator_function(_epoch_to_date, schema)
        return schema


_UNIONS = (typing.Union, types.UnionType)


def _whole_seconds(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(microsecond=0)
    return value


def _epoch_to_datetime(value: Any) -> Any:
    """A number is epoch seconds (Pydantic alone would read numbers past 2e10 as ms)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("epoch seconds outside years 1 to 9999") from None
    return value


def _epoch_to_date(value: Any) -> Any:
    moment = _epoch_to_datetime(value)
    return moment.date() if isinstance(moment, datetime) else moment


HashKey = Marker("HashKey")
RangeKey = Marker("RangeKey")
Version = Marker("Version")
TTL = _TTLMarker("TTL")
CreatedAt = Marker("CreatedAt")
UpdatedAt = Marker("UpdatedAt")

Projection = Literal["ALL", "KEYS_ONLY"] | Sequence[str]
"""``"ALL"`` (default), ``"KEYS_ONLY"``, or the field names to INCLUDE."""


@dataclass(frozen=True)
class Template:
    """A key attribute computed from fields, for single-table design:
    ``dm.Template("PK", "ATHLETE#{athlete_id}")``.

    Each ``{field}`` is replaced by the field's stored text (a date as ``YYYY-MM-DD``,
    a datetime as its fixed-width UTC string, a number as its digits).
    """

    attribute: str
    template: str

    @cached_property
    def parts(self) -> tuple[tuple[str, str | None], ...]:
        """(literal text, field name or None) pairs, in order."""
        parts: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in string.Formatter().parse(self.template):
            if spec or conversion:
                raise ValueError(f"template {self.template!r}: no format specs or conversions")
            if name is not None and not name.isidentifier():
                raise ValueError(f"template {self.template!r}: {{{name}}} is not a field name")
            parts.append((literal, name))
        return tuple(parts)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _literal, name in self.parts if name is not None)

    @property
    def prefix(self) -> str:
        """The literal text before the first placeholder."""
        return self.parts[0][0] if self.parts else ""

    def render(self, texts: dict[str, str]) -> str:
        return "".join(literal + (texts[name] if name else "") for literal, name in self.parts)


KeyPart = str | Template
"""One attribute of a key: a field name, or a computed ``dm.Template``."""


@dataclass(frozen=True)
class GlobalIndex:
    """A global secondary index on the model's fields (or on computed Template keys).

    ``hash_key`` and ``range_key`` each take one field name or Template, or a tuple of up
    to four (a multi-attribute key): ``GlobalIndex("ByPlace", hash_key=("tenant_id",
    "region"), range_key=("country", "city"))``.
    """

    name: str
    hash_key: KeyPart | tuple[KeyPart, ...]
    range_key: KeyPart | tuple[KeyPart, ...] | None = None
    projection: Projection = "ALL"
    read: int | None = None
    write: int | None = None
    billing: OnDemand | Provisioned | None = None
    """The index's own throughput; None takes the table's (``read``/``write`` are the
    older spelling of ``billing=dm.Provisioned(read=, write=)``)."""


@dataclass(frozen=True)
class LocalIndex:
    """A local secondary index: the table's hash key with another range key."""

    name: str
    range_key: str | Template
    projection: Projection = "ALL"


@dataclass(frozen=True)
class Provisioned:
    """Provisioned billing with read and write capacity units."""

    read: int
    write: int


@dataclass(frozen=True)
class OnDemand:
    """On-demand billing (PAY_PER_REQUEST), optionally capped: ``max_read`` and
    ``max_write`` are the most request units per second DynamoDB lets through."""

    max_read: int | None = None
    max_write: int | None = None


Billing = OnDemand | Provisioned
TableClass = Literal["STANDARD", "STANDARD_INFREQUENT_ACCESS"]
TABLE_CLASSES: tuple[str, ...] = typing.get_args(TableClass)


@dataclass(frozen=True)
class TableOptions:
    """The table options of ``Meta`` beyond keys and indexes, checked once."""

    table_class: TableClass = "STANDARD"
    sse_kms_key: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    deletion_protection: bool = False
    point_in_time_recovery: bool = False

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)


StreamView = Literal["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]


@dataclass(frozen=True)
class KeyAttribute:
    """One key attribute: the field it comes from (None when computed by a template),
    its wire name and scalar type."""

    field: str | None
    attribute: str
    type: Literal["S", "N", "B"]
    template: Template | None = None


@dataclass(frozen=True)
class IndexSchema:
    """A resolved index: kind, name, key attributes (in key schema order) and projection.

    A multi-attribute key has several hash or range attributes; ``hash_key`` and
    ``range_key`` are the first of each (the only one of a single-attribute key).
    """

    kind: Literal["GSI", "LSI"]
    name: str
    hash_keys: tuple[KeyAttribute, ...]
    range_keys: tuple[KeyAttribute, ...]
    projection: Literal["ALL", "KEYS_ONLY", "INCLUDE"]
    include: tuple[str, ...] = ()
    billing: Billing | None = None

    @property
    def hash_key(self) -> KeyAttribute:
        return self.hash_keys[0]

    @property
    def range_key(self) -> KeyAttribute | None:
        return self.range_keys[0] if self.range_keys else None

    @property
    def keys(self) -> tuple[KeyAttribute, ...]:
        """Every key attribute: the hash attributes, then the range attributes."""
        return self.hash_keys + self.range_keys

    @property
    def multi_attribute(self) -> bool:
        """Whether the hash or the range key has more than one attribute."""
        return len(self.hash_keys) > 1 or len(self.range_keys) > 1


@dataclass(frozen=True)
class TableSchema:
    """Everything table-level a model declares, resolved to wire names."""

    model_name: str
    table: str
    hash_key: KeyAttribute
    range_key: KeyAttribute | None
    indexes: dict[str, IndexSchema]
    unique: tuple[str, ...]
    billing: Billing
    stream: StreamView | None
    version: str | None
    ttl: str | None
    created_at: str | None
    updated_at: str | None
    ttl_attribute: str | None
    registry: Registry = field(compare=False, repr=False)
    entity: str | None = None
    entity_attribute: str = "_type"
    options: TableOptions = TableOptions()

    @cached_property
    def table_key_attributes(self) -> tuple[str, ...]:
        """The table key's attribute names, sorted (as ``keys.identity_of`` reads them)."""
        return tuple(sorted(k.attribute for k in self.table_keys))

    @cached_property
    def table_keys(self) -> tuple[KeyAttribute, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    @cached_property
    def key_fields(self) -> tuple[str, ...]:
        """The fields the table key is made of (a template's fields when computed)."""
        names: list[str] = []
        for key in self.table_keys:
            for name in key.template.fields if key.template else (key.field,):
                if name is not None and name not in names:
                    names.append(name)
        return tuple(names)

    @cached_property
    def templates(self) -> tuple[Template, ...]:
        """Every computed key attribute of the table and its indexes."""
        found: dict[str, Template] = {}
        for key in self.key_attributes().values():
            if key.template is not None:
                found[key.attribute] = key.template
        return tuple(found.values())

    @cached_property
    def computed_attributes(self) -> frozenset[str]:
        """Attributes the library writes that are not fields (templates, entity)."""
        names = {t.attribute for t in self.templates}
        if self.entity is not None:
            names.add(self.entity_attribute)
        return frozenset(names)

    def index_key_fields(self) -> frozenset[str]:
        """Every field that is a key of the table or of an index."""
        names: set[str] = set()
        for key in self.key_attributes().values():
            names.update(key.template.fields if key.template else (key.field or "",))
        names.discard("")
        return frozenset(names)

    def key_attributes(self) -> dict[str, KeyAttribute]:
        """Every key attribute of the table and its indexes, by wire name."""
        return self._key_attributes

    @cached_property
    def range_attributes(self) -> frozenset[str]:
        """Attributes that are a range (sort) key of the table or of an index."""
        keys = [self.range_key, *(k for index in self.indexes.values() for k in index.range_keys)]
        return frozenset(k.attribute for k in keys if k is not None)

    @cached_property
    def _key_attributes(self) -> dict[str, KeyAttribute]:
        found = {self.hash_key.attribute: self.hash_key}
        if self.range_key is not None:
            found[self.range_key.attribute] = self.range_key
        for index in self.indexes.values():
            for key in index.keys:
                found[key.attribute] = key
        return found


RESERVED_FIELD_NAMES = frozenset(
    {"session", "condition", "touch", "if_version", "returning", "on_invalid", "include_expired"}
)
_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
MAX_GSI = 20
MAX_LSI = 5
MAX_KEY_ATTRIBUTES = 4
"""Attributes of a multi-attribute GSI hash key, and of its range key (DynamoDB's limit)."""


def fail(model: str, message: str) -> InvalidModel:
    return InvalidModel(f"{model}: {message}")


def markers_of(metadata: Sequence[Any]) -> set[Marker]:
    return {m for m in metadata if isinstance(m, Marker)}


def build_schema(
    model: str,
    meta: Any,
    field_markers: dict[str, set[Marker]],
    attribute_names: dict[str, str],
    key_types: dict[str, Literal["S", "N", "B"] | None],
    registry: Registry,
) -> TableSchema:
    """Check a model's declaration and resolve it into a TableSchema.

    ``key_types`` gives, per field, the scalar type DynamoDB could key on (None when
    the field's type cannot be a key).
    """
    table = getattr(meta, "table", None)
    if not isinstance(table, str) or not table:
        raise fail(model, 'Meta.table is missing; add `class Meta: table = "..."`')
    if not _NAME.fullmatch(table):
        raise fail(
            model, f"Meta.table {table!r} must be 3 to 255 characters of a-z, A-Z, 0-9, _ - ."
        )

    for name in field_markers:
        if name in RESERVED_FIELD_NAMES:
            raise fail(
                model,
                f"field {name!r} is reserved (it is a keyword argument of model methods); "
                "rename it and keep the attribute name with Field(alias=...)",
            )
    stored_by: dict[str, str] = {}
    for name, attribute in attribute_names.items():
        other = stored_by.setdefault(attribute, name)
        if other != name:
            raise fail(
                model,
                f"fields {other!r} and {name!r} are both stored as attribute {attribute!r}; "
                "give one of them another name or alias",
            )

    def single(marker: Marker) -> str | None:
        found = [name for name, marks in field_markers.items() if marker in marks]
        if len(found) > 1:
            raise fail(
                model,
                f"{len(found)} fields are marked {marker.name} ({', '.join(found)}); "
                f"mark exactly one",
            )
        return found[0] if found else None

    hash_field: str | Template | None = single(HashKey)
    range_field: str | Template | None = single(RangeKey)
    meta_hash = getattr(meta, "hash_key", None)
    meta_range = getattr(meta, "range_key", None)
    if meta_hash is not None or meta_range is not None:
        if hash_field is not None or range_field is not None:
            raise fail(
                model,
                "declare the table key either with HashKey/RangeKey markers or with "
                "Meta.hash_key/Meta.range_key templates, not both",
            )
        if not isinstance(meta_hash, Template) or not isinstance(meta_range, Template | None):
            raise fail(
                model,
                'Meta.hash_key and Meta.range_key take dm.Template("PK", "PREFIX#{field}")',
            )
        hash_field, range_field = meta_hash, meta_range
    if hash_field is None:
        raise fail(
            model,
            "no field is marked HashKey; declare one, e.g. "
            "`id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)`",
        )
    if range_field is not None and range_field == hash_field:
        raise fail(model, f"field {hash_field!r} cannot be both HashKey and RangeKey")

    def key(field_name: str | Template, role: str) -> KeyAttribute:
        if isinstance(field_name, Template):
            return template_key(field_name, role)
        if field_name not in attribute_names:
            raise fail(
                model,
                f"{role} names unknown field {field_name!r}; "
                f"use one of: {', '.join(attribute_names)}",
            )
        key_type = key_types.get(field_name)
        if key_type is None:
            raise fail(
                model,
                f"field {field_name!r} is used as {role}, but DynamoDB keys must be "
                "strings, numbers or bytes (str, int, Decimal, bytes, datetime, date, UUID, "
                "a str/int Enum or Literal, or bool as an index key); change its type",
            )
        return KeyAttribute(field_name, attribute_names[field_name], key_type)

    def template_key(template: Template, role: str) -> KeyAttribute:
        try:
            names = template.fields
        except ValueError as exc:
            raise fail(model, f"{role}: {exc}") from None
        if template.attribute in stored_by:
            raise fail(
                model,
                f"{role}: the computed attribute {template.attribute!r} is also a field's "
                "attribute; computed key attributes are not declared as fields",
            )
        for name in names:
            if name not in attribute_names:
                raise fail(
                    model,
                    f"{role}: template {template.template!r} names unknown field {name!r}; "
                    f"use one of: {', '.join(attribute_names)}",
                )
            if key_types.get(name) not in ("S", "N"):
                raise fail(
                    model,
                    f"{role}: field {name!r} in template {template.template!r} must be a "
                    "string, number, date, datetime, UUID or enum to appear in a key",
                )
        return KeyAttribute(None, template.attribute, "S", template)

    hash_key = key(hash_field, "the table's hash key")
    range_key = key(range_field, "the table's range key") if range_field else None

    billing = _billing(model, "Meta.billing", getattr(meta, "billing", "PAY_PER_REQUEST"))
    indexes: dict[str, IndexSchema] = {}
    declared = getattr(meta, "indexes", ()) or ()
    if isinstance(declared, GlobalIndex | LocalIndex):
        declared = (declared,)
    for index in declared:
        if not isinstance(index, GlobalIndex | LocalIndex):
            raise fail(
                model, f"Meta.indexes holds {index!r}; use GlobalIndex(...) or LocalIndex(...)"
            )
        if index.name in indexes:
            raise fail(
                model, f"index {index.name!r} is declared twice; give each index its own name"
            )
        where = f"index {index.name!r}"
        if not _NAME.fullmatch(index.name):
            raise fail(
                model, f"{where}: index names are 3 to 255 characters of a-z, A-Z, 0-9, _ - ."
            )
        projection, include = _projection(model, where, index.projection, attribute_names)
        if isinstance(index, GlobalIndex):
            hash_parts = _key_parts(model, where, "hash_key", index.hash_key)
            range_parts = (
                _key_parts(model, where, "range_key", index.range_key)
                if index.range_key is not None
                else ()
            )
            index_keys = tuple(
                key(part, _role(where, kind, position, len(parts)))
                for kind, parts in (("hash", hash_parts), ("range", range_parts))
                for position, part in enumerate(parts)
            )
            seen: set[str] = set()
            for index_key in index_keys:
                if index_key.attribute in seen:
                    raise fail(
                        model,
                        f"{where} names attribute {index_key.attribute!r} twice in its key; "
                        "each key attribute appears once (in the hash key or the range key)",
                    )
                seen.add(index_key.attribute)
            indexes[index.name] = IndexSchema(
                "GSI",
                index.name,
                index_keys[: len(hash_parts)],
                index_keys[len(hash_parts) :],
                projection,
                include,
                _index_billing(model, where, index, billing),
            )
        else:
            if not isinstance(index.range_key, str | Template):
                raise fail(
                    model,
                    f"{where}: a LocalIndex takes one range key (a field name or Template); "
                    "multi-attribute keys are for GlobalIndex",
                )
            if range_key is None:
                raise fail(
                    model,
                    f"{where} is a LocalIndex, which needs a table with a range key; "
                    "add a RangeKey field or use a GlobalIndex",
                )
            indexes[index.name] = IndexSchema(
                "LSI",
                index.name,
                (hash_key,),
                (key(index.range_key, f"range key of {where}"),),
                projection,
                include,
            )
    gsis = sum(1 for i in indexes.values() if i.kind == "GSI")
    if gsis > MAX_GSI:
        raise fail(model, f"{gsis} global indexes declared; DynamoDB allows {MAX_GSI} per table")
    if len(indexes) - gsis > MAX_LSI:
        raise fail(model, f"{len(indexes) - gsis} local indexes; DynamoDB allows {MAX_LSI}")

    unique = getattr(meta, "unique", ()) or ()
    if isinstance(unique, str):
        unique = (unique,)
    for name in unique:
        if name not in attribute_names:
            raise fail(model, f"Meta.unique names unknown field {name!r}")
        if name in (hash_key.field, range_key.field if range_key else None):
            raise fail(model, f"Meta.unique names the key field {name!r}, which is unique already")

    for index in indexes.values():
        if index.billing is not None and type(index.billing) is not type(billing):
            raise fail(
                model,
                f"index {index.name!r} declares {type(index.billing).__name__} billing on a "
                f"table with {type(billing).__name__} billing; an index bills like its table",
            )
    options = _options(model, meta)
    stream: Any = getattr(meta, "stream", None)
    if stream is True:
        stream = "NEW_AND_OLD_IMAGES"
    if stream not in (None, False, "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"):
        raise fail(
            model,
            "Meta.stream must be True or one of NEW_IMAGE, OLD_IMAGE, "
            "NEW_AND_OLD_IMAGES, KEYS_ONLY",
        )

    entity = getattr(meta, "entity", None)
    templated = any(k.template for k in (hash_key, range_key) if k is not None) or any(
        k.template for index in indexes.values() for k in index.keys
    )
    if entity is None and templated:
        entity = model
    if entity is not None and not isinstance(entity, str):
        raise fail(model, "Meta.entity must be a string (the value of the entity attribute)")
    entity_attribute = getattr(meta, "entity_attribute", "_type")
    if entity is not None and entity_attribute in stored_by:
        raise fail(
            model,
            f"the entity attribute {entity_attribute!r} is also a field's attribute; "
            "set Meta.entity_attribute to another name",
        )

    ttl = single(TTL)
    return TableSchema(
        model_name=model,
        table=table,
        hash_key=hash_key,
        range_key=range_key,
        indexes=indexes,
        unique=tuple(unique),
        billing=billing,
        stream=stream or None,
        version=single(Version),
        ttl=ttl,
        created_at=single(CreatedAt),
        updated_at=single(UpdatedAt),
        ttl_attribute=attribute_names[ttl] if ttl else None,
        registry=registry,
        entity=entity,
        entity_attribute=entity_attribute,
        options=options,
    )


def _key_parts(model: str, where: str, role: str, declared: Any) -> tuple[KeyPart, ...]:
    """A GlobalIndex's hash_key or range_key as a tuple of one to four parts."""
    parts = (declared,) if isinstance(declared, str | Template) else declared
    if not isinstance(parts, tuple | list) or not all(
        isinstance(part, str | Template) for part in parts
    ):
        raise fail(
            model,
            f"{where}: {role} takes a field name, a dm.Template, or a tuple of up to "
            f"{MAX_KEY_ATTRIBUTES} of them (got {declared!r})",
        )
    if not parts:
        raise fail(model, f"{where}: {role} is empty; name at least one field")
    if len(parts) > MAX_KEY_ATTRIBUTES:
        raise fail(
            model,
            f"{where}: {role} has {len(parts)} attributes; DynamoDB allows up to "
            f"{MAX_KEY_ATTRIBUTES} in a multi-attribute key: drop some, or combine them "
            "in a dm.Template",
        )
    return tuple(parts)


def _role(where: str, kind: str, position: int, count: int) -> str:
    """How a declaration error names one attribute of an index key."""
    if count == 1:
        return f"{kind} key of {where}"
    return f"{kind} key attribute {position + 1} of {count} of {where}"


def _units(model: str, where: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(model, f"{where} must be a whole number of units, at least 1 (got {value!r})")


def _billing(model: str, where: str, billing: Any) -> Billing:
    """``Meta.billing`` or an index's ``billing``: the strings of old or the two classes."""
    if billing == "PAY_PER_REQUEST":
        return OnDemand()
    if isinstance(billing, OnDemand):
        _units(model, f"{where} max_read", billing.max_read, optional=True)
        _units(model, f"{where} max_write", billing.max_write, optional=True)
        return billing
    if isinstance(billing, Provisioned):
        _units(model, f"{where} read", billing.read, optional=False)
        _units(model, f"{where} write", billing.write, optional=False)
        return billing
    raise fail(
        model,
        f'{where} must be "PAY_PER_REQUEST", dm.OnDemand(max_read=, max_write=) or '
        f"dm.Provisioned(read=, write=) (got {billing!r})",
    )


def _index_billing(model: str, where: str, index: GlobalIndex, table: Billing) -> Billing | None:
    if index.billing is not None:
        if index.read is not None or index.write is not None:
            raise fail(model, f"{where}: give either billing= or read=/write=, not both")
        return _billing(model, f"{where} billing", index.billing)
    if index.read is None and index.write is None:
        return None
    if not isinstance(table, Provisioned):
        raise fail(
            model,
            f"{where}: read=/write= are provisioned capacity, but the table bills on demand; "
            "use billing=dm.OnDemand(max_read=, max_write=) or a provisioned table",
        )
    read, write = index.read or table.read, index.write or table.write
    return _billing(model, f"{where} billing", Provisioned(read, write))


_TAG_KEY = re.compile(r"[\w\s.:/=+\-@]{1,128}", re.UNICODE)
_TAG_VALUE = re.compile(r"[\w\s.:/=+\-@]{0,256}", re.UNICODE)
MAX_TAGS = 50


def _options(model: str, meta: Any) -> TableOptions:
    """Table class, encryption, tags, deletion protection and PITR from ``Meta``."""
    table_class: Any = getattr(meta, "table_class", "STANDARD")
    if table_class not in TABLE_CLASSES:
        raise fail(
            model, f"Meta.table_class {table_class!r} must be one of {', '.join(TABLE_CLASSES)}"
        )
    key = getattr(meta, "sse_kms_key", None)
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise fail(
            model, "Meta.sse_kms_key must be a KMS key id, ARN or alias (a non-empty string)"
        )
    tags: Any = getattr(meta, "tags", None) or {}
    if not isinstance(tags, dict):
        raise fail(model, 'Meta.tags must be a dict of str to str, e.g. {"team": "data"}')
    if len(tags) > MAX_TAGS:
        raise fail(model, f"Meta.tags holds {len(tags)} tags; DynamoDB allows {MAX_TAGS}")
    for name, value in tags.items():
        if not isinstance(name, str) or not _TAG_KEY.fullmatch(name):
            raise fail(
                model,
                f"Meta.tags key {name!r} must be 1 to 128 letters, digits, spaces "
                "or _ . : / = + - @",
            )
        if name.startswith("aws:"):
            raise fail(model, f"Meta.tags key {name!r}: the aws: prefix is reserved for AWS")
        if not isinstance(value, str) or not _TAG_VALUE.fullmatch(value):
            raise fail(
                model,
                f"Meta.tags[{name!r}] must be a string of up to 256 letters, digits, spaces "
                "or _ . : / = + - @",
            )
    flags: dict[str, bool] = {}
    for option in ("deletion_protection", "point_in_time_recovery"):
        flag = getattr(meta, option, False)
        if not isinstance(flag, bool):
            raise fail(model, f"Meta.{option} must be True or False (got {flag!r})")
        flags[option] = flag
    return TableOptions(
        table_class=table_class,
        sse_kms_key=key,
        tags=tuple(sorted(tags.items())),
        deletion_protection=flags["deletion_protection"],
        point_in_time_recovery=flags["point_in_time_recovery"],
    )


def _projection(
    model: str, where: str, projection: Projection, attribute_names: dict[str, str]
) -> tuple[Literal["ALL", "KEYS_ONLY", "INCLUDE"], tuple[str, ...]]:
    if projection == "ALL" or projection == "KEYS_ONLY":
        return projection, ()
    if isinstance(projection, str):
        raise fail(
            model,
            f"{where}: projection {projection!r} must be 'ALL', 'KEYS_ONLY' "
            "or a list of field names",
        )
    names = tuple(projection)
    for name in names:
        if name not in attribute_names:
            raise fail(model, f"{where}: projection names unknown field {name!r}")
    return "INCLUDE", tuple(attribute_names[n] for n in names)


# ---------------------------------------------------------------- physical table names

GUARD_TABLE = "dynamodm-unique"


def schema_of(model: type[Model]) -> TableSchema:
    """The table schema of a concrete model; ``UsageError`` for an abstract one."""
    schema: TableSchema | None = getattr(model, "__dm_schema__", None)
    if schema is None:
        raise UsageError(
            f"{getattr(model, '__name__', model)} is not a concrete model (abstract, or no "
            "Meta.table); only models with a table can be stored"
        )
    return schema


class TableNames:
    """The physical names of tables under one prefix: ``prefix + Meta.table``, and the
    uniqueness guard table ``prefix + "dynamodm-unique"``. The one home of that rule."""

    __slots__ = ("_by_model", "guard", "prefix")

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.guard = prefix + GUARD_TABLE
        self._by_model: dict[type[Model], str] = {}

    def __repr__(self) -> str:
        return f"TableNames({self.prefix!r})"

    def of(self, model: type[Model]) -> str:
        """The physical table name of a model."""
        name = self._by_model.get(model)
        if name is None:
            name = self._by_model[model] = self.prefix + schema_of(model).table
        return name

    def table(self, logical: str) -> str:
        """The physical name of a table by its ``Meta.table`` name."""
        return self.prefix + logical

    def model_of(self, physical: str) -> type[Model] | None:
        """A model this object has named with a physical table name, if any."""
        for model, name in self._by_model.items():
            if name == physical:
                return model
        return None

    def logical(self, physical: str) -> str | None:
        """The ``Meta.table`` name of a physical table of this prefix, else None."""
        if not physical.startswith(self.prefix):
            return None
        return physical[len(self.prefix) :]
