"""DynamoDB Streams: the records of a Lambda (or GetRecords) event as typed changes.

Plain functions, no I/O: ``dm.parse_stream(event)`` finds each record's model through the
registry, by table name and, for tables several models share, by entity type.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from .codec import Item, decode_any, item_from_json
from .errors import ItemInvalid, UsageError
from .expressions import _adapter
from .instances import load_checked
from .registry import registry as default_registry
from .schema import TableNames

if TYPE_CHECKING:
    from .model import Model
    from .registry import Registry

logger = logging.getLogger("dynamodm.streams")

Operation = Literal["INSERT", "MODIFY", "REMOVE"]
_OPERATIONS: frozenset[str] = frozenset({"INSERT", "MODIFY", "REMOVE"})
_TTL_PRINCIPAL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclass(frozen=True)
class StreamChange:
    """One stream record as a typed change.

    ``new`` is the item after the change (INSERT, MODIFY) and ``old`` the item before it
    (MODIFY, REMOVE), as instances of ``model``, when the stream's view type carries
    them: NEW_IMAGE gives ``new``, OLD_IMAGE ``old``, NEW_AND_OLD_IMAGES both and
    KEYS_ONLY neither. ``keys`` always holds the item's key: field values by field name,
    and a computed key attribute (a template) by its attribute name, as text.
    ``table`` is the physical table name; ``raw`` the record as received.
    """

    operation: Operation
    model: type[Model]
    new: Model | None
    old: Model | None
    keys: dict[str, Any]
    table: str
    sequence_number: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def expired(self) -> bool:
        """Whether DynamoDB's TTL deleted the item (a REMOVE by the service itself)."""
        return self.operation == "REMOVE" and self.raw.get("userIdentity") == _TTL_PRINCIPAL


def parse_stream(
    event: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    *,
    table_prefix: str = "",
    registry: Registry | None = None,
    unknown: Literal["skip", "raise"] = "skip",
) -> list[StreamChange]:
    """The changes a DynamoDB Streams event describes, in the order of its records.

    ``event`` is a Lambda event (``{"Records": [...]}``) or a list of records. Each
    record's table comes from its ``eventSourceARN`` (or ``tableName``, as records
    from Kinesis Data Streams carry it); ``table_prefix`` is removed from it to find the
    models of ``Meta.table`` in ``registry`` (default ``dm.registry``). When several
    models share the table, the item's entity attribute picks one. A record of a table
    or entity type no model declares is skipped (``unknown="skip"``) or raises
    ``dm.UsageError`` (``unknown="raise"``). An image that does not validate raises
    ``dm.ItemInvalid`` (model and fields, never a value), with a note naming the record.
    """
    if unknown not in ("skip", "raise"):
        raise UsageError(f'parse_stream: unknown={unknown!r}; use "skip" or "raise"')
    if registry is None:
        registry = default_registry
    records = event.get("Records") if isinstance(event, Mapping) else event
    if records is None or isinstance(records, str | bytes):
        raise UsageError(
            "parse_stream: pass a DynamoDB Streams event ({'Records': [...]}) or a list of "
            "its records"
        )
    resolver = _Resolver(registry, table_prefix)
    changes: list[StreamChange] = []
    for record in records:
        change = _parse_record(record, resolver, unknown)
        if change is not None:
            changes.append(change)
    return changes


class _Resolver:
    """The models of each table named in one event, looked up once per table."""

    def __init__(self, registry: Registry, prefix: str) -> None:
        self.registry = registry
        self.names = TableNames(prefix)
        self._tables: dict[str, list[type[Model]]] = {}

    def candidates(self, table: str) -> list[type[Model]]:
        found = self._tables.get(table)
        if found is None:
            logical = self.names.logical(table)
            found = self.registry.by_table(logical) if logical else []
            self._tables[table] = found
        return found

    def model(self, table: str, keys: Item, image: Item | None) -> type[Model] | str:
        """The record's model, or why there is none."""
        candidates = self.candidates(table)
        if not candidates:
            logical = self.names.logical(table)
            if logical is None:
                return f"table {table!r} does not start with the prefix {self.names.prefix!r}"
            return (
                f"no model in registry {self.registry.name!r} declares table "
                f"{logical!r} (physical name {table!r})"
            )
        if image is not None:
            plain = [m for m in candidates if m.__dm_schema__.entity is None]
            for model in candidates:
                schema = model.__dm_schema__
                if schema.entity is not None and image.get(schema.entity_attribute) == {
                    "S": schema.entity
                }:
                    return model
            if len(plain) == 1:
                return plain[0]
            entities = sorted({m.__dm_schema__.entity_attribute for m in candidates})
            found = {name: image.get(name, {}).get("S") for name in entities}
            return f"no model of table {table!r} has the item's entity type {found}"
        # KEYS_ONLY: the key templates' literal prefixes are all there is to go by.
        matching = [m for m in candidates if _keys_fit(m, keys)]
        if len(matching) == 1:
            return matching[0]
        names = ", ".join(m.__name__ for m in matching or candidates)
        return (
            f"the key of a record of table {table!r} fits "
            f"{'several models' if matching else 'none of its models'} ({names}); "
            "use a stream view type with images to tell shared-table models apart"
        )


def _keys_fit(model: type[Model], keys: Item) -> bool:
    for key in model.__dm_schema__.table_keys:
        if key.template is not None:
            text = keys.get(key.attribute, {}).get("S")
            if not isinstance(text, str) or not text.startswith(key.template.prefix):
                return False
    return True


def _table_of(record: Mapping[str, Any]) -> str:
    arn = record.get("eventSourceARN")
    if isinstance(arn, str):
        # arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL
        parts = arn.split(":", 5)[-1].split("/")
        if len(parts) >= 2 and parts[0] == "table":
            return parts[1]
        raise UsageError(f"parse_stream: {arn!r} is not a DynamoDB stream ARN")
    name = record.get("tableName")
    if isinstance(name, str):
        return name
    raise UsageError(
        "parse_stream: a record has no eventSourceARN (Lambda events carry it; records read "
        "with GetRecords do not): add the stream's ARN to each record as eventSourceARN"
    )


def _binary_decoded(image: Any) -> Item:
    """The image with the base64 text of B and BS values (as Lambda events carry them)
    turned into bytes; values that are bytes already (boto3's GetRecords) stay. The
    record itself is left as it was."""
    try:
        return item_from_json(image, binary="either")
    except ValueError as error:
        raise UsageError(f"parse_stream: a record's image is not DynamoDB JSON: {error}") from None


def _parse_record(
    record: Mapping[str, Any], resolver: _Resolver, unknown: Literal["skip", "raise"]
) -> StreamChange | None:
    if not isinstance(record, Mapping):
        raise UsageError(f"parse_stream: a record is a {type(record).__name__}, not a mapping")
    operation = record.get("eventName")
    body = record.get("dynamodb")
    source = record.get("eventSource", "aws:dynamodb")
    if operation not in _OPERATIONS or not isinstance(body, Mapping) or source != "aws:dynamodb":
        raise UsageError(
            f"parse_stream: not a DynamoDB stream record (eventSource={source!r}, "
            f"eventName={operation!r}); expected INSERT, MODIFY or REMOVE with a 'dynamodb' body"
        )
    table = _table_of(record)
    sequence_number = str(body.get("SequenceNumber", ""))
    keys = _binary_decoded(body.get("Keys") or {})
    new_image = _binary_decoded(body["NewImage"]) if "NewImage" in body else None
    old_image = _binary_decoded(body["OldImage"]) if "OldImage" in body else None
    model = resolver.model(table, keys, new_image if new_image is not None else old_image)
    if isinstance(model, str):
        if unknown == "raise":
            raise UsageError(f"parse_stream: record {sequence_number}: {model}")
        logger.debug("stream record %s skipped: %s", sequence_number, model)
        return None
    try:
        new = load_checked(model, new_image) if new_image is not None else None
        old = load_checked(model, old_image) if old_image is not None else None
        plain_keys = _plain_keys(model, keys)
    except (ItemInvalid, ValidationError) as error:
        error.add_note(
            f"in stream record {sequence_number} ({operation}) of table {table!r}, "
            f"read as {model.__name__}"
        )
        raise
    return StreamChange(
        operation=operation,
        model=model,
        new=new,
        old=old,
        keys=plain_keys,
        table=table,
        sequence_number=sequence_number,
        raw=record,
    )


def _plain_keys(model: type[Model], keys: Item) -> dict[str, Any]:
    """Key fields validated through their types; computed key attributes as text."""
    by_attribute = model.__dm_codec__.by_attribute
    plain: dict[str, Any] = {}
    for attribute, av in keys.items():
        spec = by_attribute.get(attribute)
        if spec is None:
            plain[attribute] = decode_any(av)
            continue
        annotation = model.model_fields[spec.name].annotation
        plain[spec.name] = _adapter(annotation).validate_python(spec.codec.decode(av))
    return plain
