"""Table set-up from model schemas: create, wait, TTL, streams, describe, delete."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import unique
from .errors import ConfigurationError, ServiceError, TableNotFound, Throttled, UsageError
from .schema import IndexSchema, KeyAttribute, Provisioned, TableSchema

if TYPE_CHECKING:
    from .model import Model
    from .session import Session

logger = logging.getLogger("dynamodm.tables")

WAIT_SECONDS = 300.0
_UNSUPPORTED = frozenset({"UnknownOperationException", "UnrecognizedClientException"})


@dataclass(frozen=True)
class TableDescription:
    """What ``db.describe_table(Model)`` reports."""

    name: str
    status: str
    item_count: int
    size_bytes: int
    indexes: dict[str, str]
    ttl_attribute: str | None = None
    stream: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class _Table:
    """The merged definition of one physical table (one or more models)."""

    name: str
    schema: TableSchema
    models: list[str]
    indexes: dict[str, IndexSchema]
    ttl: str | None


def _shape(key: KeyAttribute | None) -> tuple[str, str] | None:
    """What the table sees of a key attribute: its name and type (not how it is computed)."""
    return None if key is None else (key.attribute, key.type)


def _index_shape(index: IndexSchema) -> tuple[Any, ...]:
    return (
        index.kind,
        _shape(index.hash_key),
        _shape(index.range_key),
        index.projection,
        tuple(sorted(index.include)),
        index.read,
        index.write,
    )


def _group(session: Session, models: list[type[Model]]) -> list[_Table]:
    found: dict[str, _Table] = {}
    for model in models:
        schema: TableSchema = model.__dm_schema__
        name = session.table_prefix + schema.table
        table = found.get(name)
        if table is None:
            found[name] = _Table(
                name, schema, [model.__name__], dict(schema.indexes), schema.ttl_attribute
            )
            continue
        if (_shape(table.schema.hash_key), _shape(table.schema.range_key)) != (
            _shape(schema.hash_key),
            _shape(schema.range_key),
        ):
            raise UsageError(
                f"models {table.models[0]} and {model.__name__} share table {schema.table!r} "
                "but declare different table keys; give them the same key attributes"
            )
        for index_name, index in schema.indexes.items():
            other = table.indexes.setdefault(index_name, index)
            if _index_shape(other) != _index_shape(index):
                raise UsageError(
                    f"models {table.models[0]} and {model.__name__} declare index "
                    f"{index_name!r} of table {schema.table!r} differently (keys, types or "
                    "projection); make them equal"
                )
        if schema.ttl_attribute and table.ttl not in (None, schema.ttl_attribute):
            raise UsageError(
                f"models {table.models[0]} and {model.__name__} share table "
                f"{schema.table!r} but name different TTL attributes; a table has one"
            )
        table.ttl = table.ttl or schema.ttl_attribute
        table.models.append(model.__name__)
    return list(found.values())


def _definitions(table: _Table) -> list[dict[str, str]]:
    types: dict[str, str] = {}
    keys: list[KeyAttribute] = [table.schema.hash_key]
    if table.schema.range_key:
        keys.append(table.schema.range_key)
    for index in table.indexes.values():
        keys.append(index.hash_key)
        if index.range_key:
            keys.append(index.range_key)
    for key in keys:
        known = types.setdefault(key.attribute, key.type)
        if known != key.type:
            raise UsageError(
                f"table {table.name!r}: attribute {key.attribute!r} is keyed as both "
                f"{known} and {key.type} by its models; use one type"
            )
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]


def _key_schema(hash_key: KeyAttribute, range_key: KeyAttribute | None) -> list[dict[str, str]]:
    keys = [{"AttributeName": hash_key.attribute, "KeyType": "HASH"}]
    if range_key is not None:
        keys.append({"AttributeName": range_key.attribute, "KeyType": "RANGE"})
    return keys


def _projection(index: IndexSchema) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.projection}
    if index.include:
        projection["NonKeyAttributes"] = list(index.include)
    return projection


def create_request(table: _Table) -> dict[str, Any]:
    schema = table.schema
    request: dict[str, Any] = {
        "TableName": table.name,
        "AttributeDefinitions": _definitions(table),
        "KeySchema": _key_schema(schema.hash_key, schema.range_key),
    }
    provisioned = schema.billing if isinstance(schema.billing, Provisioned) else None
    if provisioned:
        request["BillingMode"] = "PROVISIONED"
        request["ProvisionedThroughput"] = {
            "ReadCapacityUnits": provisioned.read,
            "WriteCapacityUnits": provisioned.write,
        }
    else:
        request["BillingMode"] = "PAY_PER_REQUEST"
    gsis, lsis = [], []
    for index in table.indexes.values():
        spec: dict[str, Any] = {
            "IndexName": index.name,
            "KeySchema": _key_schema(index.hash_key, index.range_key),
            "Projection": _projection(index),
        }
        if index.kind == "LSI":
            lsis.append(spec)
            continue
        if provisioned:
            spec["ProvisionedThroughput"] = {
                "ReadCapacityUnits": index.read or provisioned.read,
                "WriteCapacityUnits": index.write or provisioned.write,
            }
        gsis.append(spec)
    if gsis:
        request["GlobalSecondaryIndexes"] = gsis
    if lsis:
        request["LocalSecondaryIndexes"] = lsis
    if schema.stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": schema.stream}
    return request


async def create_tables(session: Session, models: list[type[Model]], *, wait: bool) -> list[str]:
    """Create missing tables (concurrently), then wait, then turn on TTL where asked."""
    tables = _group(session, models)
    jobs = [(create_request(t), t.ttl) for t in tables]
    guarded = [m for m in models if m.__dm_schema__.unique]
    if guarded:
        expiring = any(m.__dm_schema__.ttl for m in guarded)
        jobs.append((unique.guard_create_request(session), unique.EXPIRES if expiring else None))
    await asyncio.gather(*(_create_one(session, request, ttl, wait) for request, ttl in jobs))
    return [request["TableName"] for request, _ in jobs]


async def _create_one(
    session: Session, request: dict[str, Any], ttl: str | None, wait: bool
) -> None:
    name = request["TableName"]
    try:
        await session.call("CreateTable", request, idempotent=False, table=name)
        logger.info("created table %s", name)
    except ServiceError as error:
        if error.code != "ResourceInUseException":
            raise
    if wait or ttl or "StreamSpecification" in request:
        await wait_until_active(session, name)
    if ttl:
        await _enable_ttl(session, name, ttl)
    if "StreamSpecification" in request:
        await _enable_stream(session, name, request["StreamSpecification"])


async def wait_until_active(session: Session, name: str, seconds: float = WAIT_SECONDS) -> None:
    """Poll DescribeTable until the table and its indexes are ACTIVE."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while True:
        table = (
            await session.call("DescribeTable", {"TableName": name}, idempotent=True, table=name)
        )["Table"]
        indexes = table.get("GlobalSecondaryIndexes", [])
        if table.get("TableStatus") == "ACTIVE" and all(
            i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes
        ):
            return
        if time.monotonic() > deadline:
            raise ConfigurationError(f"table {name!r} did not become ACTIVE in {seconds:.0f} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def _enable_ttl(session: Session, name: str, attribute: str) -> None:
    try:
        current = await session.call(
            "DescribeTimeToLive", {"TableName": name}, idempotent=True, table=name
        )
        description = current.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if description.get("AttributeName") != attribute:
                logger.warning(
                    "table %s has TTL on %r, the model asks for %r; left as it is",
                    name,
                    description.get("AttributeName"),
                    attribute,
                )
            return
        await session.call(
            "UpdateTimeToLive",
            {
                "TableName": name,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attribute},
            },
            idempotent=True,
            table=name,
        )
    except ServiceError as error:
        if error.code in _UNSUPPORTED:
            logger.warning("the server does not support TTL; table %s has none", name)
            return
        raise


async def _enable_stream(session: Session, name: str, wanted: dict[str, Any]) -> None:
    """Turn the stream on for a table that exists without one (never changes its view)."""
    table = (await session.call("DescribeTable", {"TableName": name}, idempotent=True, table=name))[
        "Table"
    ]
    current = table.get("StreamSpecification") or {}
    if current.get("StreamEnabled"):
        if current.get("StreamViewType") != wanted["StreamViewType"]:
            logger.warning(
                "table %s streams %s, the model asks for %s; left as it is",
                name,
                current.get("StreamViewType"),
                wanted["StreamViewType"],
            )
        return
    try:
        await session.call(
            "UpdateTable",
            {"TableName": name, "StreamSpecification": wanted},
            idempotent=True,
            table=name,
        )
    except ServiceError as error:
        if error.code in _UNSUPPORTED or error.code == "ValidationException":
            logger.warning("the server cannot turn on streams for table %s: %s", name, error)
            return
        raise
    await wait_until_active(session, name)


async def delete_tables(session: Session, models: list[type[Model]]) -> list[str]:
    """Delete the models' tables, and release their unique guards: the guard table goes
    too when no model left in the registry declares unique fields."""
    tables = _group(session, models)
    names = [t.name for t in tables]
    await asyncio.gather(*(_delete_one(session, n) for n in names))
    guarded = [m for m in models if m.__dm_schema__.unique]
    if guarded:
        registry = guarded[0].__dm_schema__.registry
        remaining = [m for m in registry if m.__dm_schema__.unique and m not in models]
        guard_table = unique.guard_table(session)
        if remaining:
            await _release_guards(session, guard_table, {m.__dm_schema__.table for m in guarded})
        else:
            await _delete_one(session, guard_table)
            names.append(guard_table)
    return names


async def _release_guards(session: Session, guard_table: str, tables: set[str]) -> None:
    """Delete the guard items of the given logical tables (their models are gone)."""
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {
            "TableName": guard_table,
            "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#k": unique.GUARD_KEY},
        }
        if start:
            request["ExclusiveStartKey"] = start
        try:
            page = await session.call("Scan", request, idempotent=True, table=guard_table)
        except TableNotFound:
            return
        keys = [
            item
            for item in page.get("Items", [])
            if item[unique.GUARD_KEY]["S"].split("#", 1)[0] in tables
        ]
        for offset in range(0, len(keys), 25):
            pending: dict[str, Any] = {
                guard_table: [{"DeleteRequest": {"Key": key}} for key in keys[offset : offset + 25]]
            }
            for _ in range(10):
                answer = await session.call(
                    "BatchWriteItem", {"RequestItems": pending}, idempotent=True
                )
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
                await asyncio.sleep(0.05)
            if pending:
                raise Throttled(
                    f"delete_tables: guard items of {sorted(tables)} were left unprocessed by "
                    "DynamoDB; run delete_tables again"
                )
        start = page.get("LastEvaluatedKey")
        if not start:
            return


async def _delete_one(session: Session, name: str) -> None:
    try:
        await session.call("DeleteTable", {"TableName": name}, idempotent=True, table=name)
    except TableNotFound:
        return
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            await session.call("DescribeTable", {"TableName": name}, idempotent=True, table=name)
        except TableNotFound:
            return
        await asyncio.sleep(0.05)


async def describe_table(session: Session, model: type[Model]) -> TableDescription:
    name = session.table_name(model)
    table = (await session.call("DescribeTable", {"TableName": name}, idempotent=True, table=name))[
        "Table"
    ]
    indexes = {
        i["IndexName"]: i.get("IndexStatus", "ACTIVE")
        for i in table.get("GlobalSecondaryIndexes", [])
    }
    indexes.update({i["IndexName"]: "ACTIVE" for i in table.get("LocalSecondaryIndexes", [])})
    ttl = None
    try:
        answer = await session.call(
            "DescribeTimeToLive", {"TableName": name}, idempotent=True, table=name
        )
        description = answer.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            ttl = description.get("AttributeName")
    except ServiceError as error:
        if error.code not in _UNSUPPORTED:
            raise
    stream = table.get("StreamSpecification", {})
    return TableDescription(
        name=name,
        status=table.get("TableStatus", "UNKNOWN"),
        item_count=int(table.get("ItemCount", 0)),
        size_bytes=int(table.get("TableSizeBytes", 0)),
        indexes=indexes,
        ttl_attribute=ttl,
        stream=stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
        raw=table,
    )


async def list_tables(session: Session) -> list[str]:
    names: list[str] = []
    request: dict[str, Any] = {}
    while True:
        response = await session.call("ListTables", dict(request), idempotent=True)
        names.extend(response.get("TableNames", []))
        last = response.get("LastEvaluatedTableName")
        if not last:
            break
        request["ExclusiveStartTableName"] = last
    return [n for n in names if n.startswith(session.table_prefix)]
