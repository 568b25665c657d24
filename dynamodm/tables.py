"""Table set-up from model schemas: create, wait, TTL, streams, describe, delete; and
table operations: point-in-time recovery, backups, streams, TTL state, drift checks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

from . import unique
from .connection import Connection
from .errors import (
    DIFFERENCE_KINDS,
    UNSUPPORTED_CODES,
    ConfigurationError,
    DifferenceKind,
    ServiceError,
    TableDifference,
    TableNotFound,
    Throttled,
    UsageError,
)
from .schema import (
    _NAME,
    Billing,
    IndexSchema,
    KeyAttribute,
    Provisioned,
    StreamView,
    TableNames,
    TableSchema,
)

if TYPE_CHECKING:
    from .model import Model

logger = logging.getLogger("dynamodm.tables")

WAIT_SECONDS = 300.0


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


@dataclass(frozen=True)
class TimeToLive:
    """A table's TTL state (``db.describe_ttl``): ``status`` is ENABLED, ENABLING,
    DISABLED or DISABLING, ``attribute`` the attribute it reads (None when off)."""

    status: str
    attribute: str | None

    @property
    def enabled(self) -> bool:
        return self.status in ("ENABLED", "ENABLING")


@dataclass(frozen=True)
class Backup:
    """An on-demand backup (``db.create_backup``, ``db.list_backups``).

    ``status`` is CREATING, AVAILABLE or DELETED; ``kind`` is USER, SYSTEM or AWS_BACKUP.
    """

    arn: str
    name: str
    table: str
    status: str
    kind: str
    created_at: datetime | None
    size_bytes: int | None


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
        tuple(_shape(key) for key in index.hash_keys),
        tuple(_shape(key) for key in index.range_keys),
        index.projection,
        tuple(sorted(index.include)),
        index.billing,
    )


def _group(names: TableNames, models: list[type[Model]]) -> list[_Table]:
    found: dict[str, _Table] = {}
    for model in models:
        schema: TableSchema = model.__dm_schema__
        name = names.table(schema.table)
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
        for option, mine, theirs in (
            ("Meta.billing", schema.billing, table.schema.billing),
            ("the table options", schema.options, table.schema.options),
        ):
            if mine != theirs:
                raise UsageError(
                    f"models {table.models[0]} and {model.__name__} share table "
                    f"{schema.table!r} but declare {option} differently ({theirs} and {mine}); "
                    "a table has one: declare the same in both"
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
        keys.extend(index.keys)
    for key in keys:
        known = types.setdefault(key.attribute, key.type)
        if known != key.type:
            raise UsageError(
                f"table {table.name!r}: attribute {key.attribute!r} is keyed as both "
                f"{known} and {key.type} by its models; use one type"
            )
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]


def _key_schema(
    hash_keys: tuple[KeyAttribute, ...], range_keys: tuple[KeyAttribute, ...]
) -> list[dict[str, str]]:
    """A KeySchema: every HASH element, then every RANGE element, each in declared order
    (a multi-attribute GSI key has up to four of each)."""
    return [{"AttributeName": k.attribute, "KeyType": "HASH"} for k in hash_keys] + [
        {"AttributeName": k.attribute, "KeyType": "RANGE"} for k in range_keys
    ]


def _projection(index: IndexSchema) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.projection}
    if index.include:
        projection["NonKeyAttributes"] = list(index.include)
    return projection


def _throughput(billing: Billing) -> dict[str, Any]:
    """The ProvisionedThroughput or OnDemandThroughput of a table or GSI ({} when none)."""
    if isinstance(billing, Provisioned):
        return {
            "ProvisionedThroughput": {
                "ReadCapacityUnits": billing.read,
                "WriteCapacityUnits": billing.write,
            }
        }
    limits = {
        name: value
        for name, value in (
            ("MaxReadRequestUnits", billing.max_read),
            ("MaxWriteRequestUnits", billing.max_write),
        )
        if value is not None
    }
    return {"OnDemandThroughput": limits} if limits else {}


def billing_mode(billing: Billing) -> str:
    return "PROVISIONED" if isinstance(billing, Provisioned) else "PAY_PER_REQUEST"


def create_request(table: _Table) -> dict[str, Any]:
    """The CreateTable request of a grouped table (keys, indexes, billing, stream, options;
    TTL and point-in-time recovery are set after creation)."""
    schema = table.schema
    options = schema.options
    request: dict[str, Any] = {
        "TableName": table.name,
        "AttributeDefinitions": _definitions(table),
        "KeySchema": _key_schema(schema.table_keys[:1], schema.table_keys[1:]),
        "BillingMode": billing_mode(schema.billing),
        **_throughput(schema.billing),
    }
    provisioned = schema.billing if isinstance(schema.billing, Provisioned) else None
    gsis, lsis = [], []
    for index in table.indexes.values():
        spec: dict[str, Any] = {
            "IndexName": index.name,
            "KeySchema": _key_schema(index.hash_keys, index.range_keys),
            "Projection": _projection(index),
        }
        if index.kind == "LSI":
            lsis.append(spec)
            continue
        if index.billing is not None:
            spec.update(_throughput(index.billing))
        elif provisioned:
            spec.update(_throughput(provisioned))
        gsis.append(spec)
    if gsis:
        request["GlobalSecondaryIndexes"] = gsis
    if lsis:
        request["LocalSecondaryIndexes"] = lsis
    if schema.stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": schema.stream}
    if options.table_class != "STANDARD":
        request["TableClass"] = options.table_class
    if options.sse_kms_key:
        request["SSESpecification"] = {
            "Enabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": options.sse_kms_key,
        }
    if options.tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in options.tags]
    if options.deletion_protection:
        request["DeletionProtectionEnabled"] = True
    return request


async def create_tables(session: Connection, models: list[type[Model]], *, wait: bool) -> list[str]:
    """Create missing tables (concurrently), then wait, then turn on TTL where asked."""
    tables = _group(session.names, models)
    jobs = [(create_request(t), t.ttl, t.schema.options.point_in_time_recovery) for t in tables]
    guard = guard_table(session.names, models)
    if guard is not None:
        jobs.append((guard[0], guard[1], False))
    await asyncio.gather(
        *(_create_one(session, request, ttl, pitr, wait) for request, ttl, pitr in jobs)
    )
    return [request["TableName"] for request, _, _ in jobs]


def guard_table(
    names: TableNames, models: list[type[Model]]
) -> tuple[dict[str, Any], str | None] | None:
    """The uniqueness guard table's CreateTable request and TTL attribute, when any of
    the models declares unique fields."""
    guarded = [m for m in models if m.__dm_schema__.unique]
    if not guarded:
        return None
    expiring = any(m.__dm_schema__.ttl for m in guarded)
    return unique.guard_create_request(names), unique.EXPIRES if expiring else None


async def _create_one(
    session: Connection, request: dict[str, Any], ttl: str | None, pitr: bool, wait: bool
) -> None:
    name = request["TableName"]
    try:
        await session.call("CreateTable", request, idempotent=False, table=name)
        logger.info("created table %s", name)
    except ServiceError as error:
        if error.code != "ResourceInUseException":
            raise
    if wait or ttl or pitr or "StreamSpecification" in request:
        await wait_until_active(session, name)
    if ttl:
        await _enable_ttl(session, name, ttl)
    if "StreamSpecification" in request:
        await _enable_stream(session, name, request["StreamSpecification"])
    if pitr:
        try:
            await _set_pitr(session, name, True)
        except ConfigurationError as error:
            if error.code not in UNSUPPORTED_CODES:
                raise
            logger.warning(
                "the server does not support point-in-time recovery; table %s has none", name
            )


async def _describe(session: Connection, name: str) -> dict[str, Any]:
    """DynamoDB's description of a table (``TableNotFound`` when it does not exist)."""
    answer = await session.call("DescribeTable", {"TableName": name}, idempotent=True, table=name)
    table: dict[str, Any] | None = answer.get("Table")
    if table is None:
        # Only a dry run answers without a description.
        raise UsageError(
            f"DescribeTable on table {name!r} was not sent (dm.dry_run): table set-up, "
            "describe_table and check_tables need real answers; run them outside the dry run"
        )
    return table


async def wait_until_active(
    session: Connection, name: str, seconds: float = WAIT_SECONDS
) -> dict[str, Any]:
    """Poll DescribeTable until the table and its indexes are ACTIVE; its description."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while True:
        table = await _describe(session, name)
        indexes = table.get("GlobalSecondaryIndexes", [])
        if table.get("TableStatus") == "ACTIVE" and all(
            i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes
        ):
            return table
        if time.monotonic() > deadline:
            raise ConfigurationError(f"table {name!r} did not become ACTIVE in {seconds:.0f} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def _ttl_state(session: Connection, name: str) -> TimeToLive | None:
    """The table's TTL state, or None when the server has no TTL."""
    try:
        answer = await _operate(session, "DescribeTimeToLive", {"TableName": name}, idempotent=True)
    except ConfigurationError as error:
        if error.code in UNSUPPORTED_CODES:
            return None
        raise
    description = answer.get("TimeToLiveDescription", {})
    return TimeToLive(
        description.get("TimeToLiveStatus", "DISABLED"), description.get("AttributeName")
    )


async def _enable_ttl(session: Connection, name: str, attribute: str) -> None:
    try:
        current = await _ttl_state(session, name)
        if current is None:
            logger.warning("the server does not support TTL; table %s has none", name)
            return
        if current.enabled:
            if current.attribute != attribute:
                logger.warning(
                    "table %s has TTL on %r, the model asks for %r; left as it is",
                    name,
                    current.attribute,
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
    except (ServiceError, ConfigurationError) as error:
        # dynalite answers DescribeTimeToLive but not UpdateTimeToLive
        # (UnknownOperationException, which session.call raises as ConfigurationError).
        if error.code in UNSUPPORTED_CODES:
            logger.warning("the server does not support TTL; table %s has none", name)
            return
        raise


async def _enable_stream(session: Connection, name: str, wanted: dict[str, Any]) -> None:
    """Turn the stream on for a table that exists without one (never changes its view)."""
    table = await _describe(session, name)
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
    except (ServiceError, ConfigurationError) as error:
        if error.code in UNSUPPORTED_CODES or error.code == "ValidationException":
            logger.warning("the server cannot turn on streams for table %s: %s", name, error)
            return
        raise
    await wait_until_active(session, name)


async def delete_tables(session: Connection, models: list[type[Model]]) -> list[str]:
    """Delete the models' tables, and release their unique guards: the guard table goes
    too when no model left in the registry declares unique fields."""
    tables = _group(session.names, models)
    names = [t.name for t in tables]
    await asyncio.gather(*(_delete_one(session, n) for n in names))
    guarded = [m for m in models if m.__dm_schema__.unique]
    if guarded:
        registry = guarded[0].__dm_schema__.registry
        remaining = [m for m in registry if m.__dm_schema__.unique and m not in models]
        guard_table = session.names.guard
        if remaining:
            await _release_guards(session, guard_table, {m.__dm_schema__.table for m in guarded})
        else:
            await _delete_one(session, guard_table)
            names.append(guard_table)
    return names


async def _release_guards(session: Connection, guard_table: str, tables: set[str]) -> None:
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
            started = session.retry.clock()
            attempt = 0
            while pending:
                answer = await session.call(
                    "BatchWriteItem", {"RequestItems": pending}, idempotent=True
                )
                pending = answer.get("UnprocessedItems") or {}
                attempt += 1
                if pending and not await session.retry.pause(attempt, started):
                    break
            if pending:
                raise Throttled(
                    f"delete_tables: guard items of {sorted(tables)} were left unprocessed by "
                    "DynamoDB; run delete_tables again"
                )
        start = page.get("LastEvaluatedKey")
        if not start:
            return


async def _delete_one(session: Connection, name: str) -> None:
    try:
        await session.call("DeleteTable", {"TableName": name}, idempotent=True, table=name)
    except TableNotFound:
        return
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            await _describe(session, name)
        except TableNotFound:
            return
        await asyncio.sleep(0.05)


async def describe_table(session: Connection, model: type[Model]) -> TableDescription:
    name = session.names.of(model)
    table = await _describe(session, name)
    indexes = {
        i["IndexName"]: i.get("IndexStatus", "ACTIVE")
        for i in table.get("GlobalSecondaryIndexes", [])
    }
    indexes.update({i["IndexName"]: "ACTIVE" for i in table.get("LocalSecondaryIndexes", [])})
    ttl_state = await _ttl_state(session, name)
    ttl = ttl_state.attribute if ttl_state is not None and ttl_state.enabled else None
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


async def list_tables(session: Connection) -> list[str]:
    names: list[str] = []
    request: dict[str, Any] = {}
    while True:
        response = await session.call("ListTables", dict(request), idempotent=True)
        names.extend(response.get("TableNames", []))
        last = response.get("LastEvaluatedTableName")
        if not last:
            break
        request["ExclusiveStartTableName"] = last
    return [n for n in names if session.names.logical(n) is not None]


# ---------------------------------------------------------------- table operations


async def _operate(
    session: Connection, operation: str, request: dict[str, Any], *, idempotent: bool
) -> dict[str, Any]:
    """One table operation. A missing table is ``TableNotFound`` whatever code the
    service uses for it, and an operation the server lacks a ``ConfigurationError``
    (both by ``errors.from_service``)."""
    name = request["TableName"]
    return await session.call(operation, request, idempotent=idempotent, table=name)


async def enable_point_in_time_recovery(
    session: Connection, model: type[Model], enabled: bool
) -> bool:
    """Turn PITR on or off; whether it is on now. A table created moments ago may not
    accept it yet (ContinuousBackupsUnavailableException): that is retried for a while."""
    return await _set_pitr(session, session.names.of(model), enabled)


async def _set_pitr(session: Connection, name: str, enabled: bool) -> bool:
    request = {
        "TableName": name,
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": enabled},
    }
    deadline = time.monotonic() + WAIT_SECONDS
    delay = 0.5
    while True:
        try:
            answer = await _operate(session, "UpdateContinuousBackups", request, idempotent=True)
            break
        except ServiceError as error:
            if error.code != "ContinuousBackupsUnavailableException":
                raise
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    description = answer.get("ContinuousBackupsDescription", {})
    status = description.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    return status in ("ENABLED", "ENABLING")


def _moment(value: Any) -> datetime | None:
    """A timestamp as the transports give it: epoch seconds (JSON) or a datetime."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def _backup(details: dict[str, Any], table: str) -> Backup:
    size = details.get("BackupSizeBytes")
    return Backup(
        arn=details["BackupArn"],
        name=details.get("BackupName", ""),
        table=details.get("TableName", table),
        status=details.get("BackupStatus", "UNKNOWN"),
        kind=details.get("BackupType", "USER"),
        created_at=_moment(details.get("BackupCreationDateTime")),
        size_bytes=int(size) if size is not None else None,
    )


async def create_backup(session: Connection, model: type[Model], name: str) -> Backup:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(
            f"create_backup {model.__name__}: backup name {name!r} must be 3 to 255 characters "
            "of a-z, A-Z, 0-9, _ - ."
        )
    table = session.names.of(model)
    answer = await _operate(
        session, "CreateBackup", {"TableName": table, "BackupName": name}, idempotent=False
    )
    return _backup(answer["BackupDetails"], table)


async def list_backups(session: Connection, model: type[Model]) -> list[Backup]:
    table = session.names.of(model)
    request: dict[str, Any] = {"TableName": table}
    backups: list[Backup] = []
    while True:
        answer = await _operate(session, "ListBackups", dict(request), idempotent=True)
        backups.extend(_backup(summary, table) for summary in answer.get("BackupSummaries", []))
        last = answer.get("LastEvaluatedBackupArn")
        if not last:
            return backups
        request["ExclusiveStartBackupArn"] = last


async def describe_ttl(session: Connection, model: type[Model]) -> TimeToLive:
    name = session.names.of(model)
    state = await _ttl_state(session, name)
    if state is None:
        raise ConfigurationError(
            f"describe_ttl {model.__name__}: the server does not support TTL (table {name!r})"
        )
    return state


async def enable_stream(
    session: Connection, model: type[Model], view: StreamView | None, enabled: bool
) -> str | None:
    """Turn the table's stream on (with ``view``) or off; the stream's ARN when on."""
    name = session.names.of(model)
    wanted = view or model.__dm_schema__.stream or "NEW_AND_OLD_IMAGES"
    if wanted not in get_args(StreamView):
        raise UsageError(
            f"enable_stream {model.__name__}: view={view!r}; use one of "
            f"{', '.join(get_args(StreamView))}"
        )
    table = await _describe(session, name)
    current = table.get("StreamSpecification") or {}
    spec: dict[str, Any]
    if enabled:
        if current.get("StreamEnabled"):
            if current.get("StreamViewType") == wanted:
                arn: str | None = table.get("LatestStreamArn")
                return arn
            raise ConfigurationError(
                f"enable_stream {model.__name__}: table {name!r} already streams "
                f"{current.get('StreamViewType')}, and a stream's view type cannot change: "
                f"turn it off (`await db.enable_stream({model.__name__}, enabled=False)`), "
                "then on with the new view; readers move to the new stream's ARN"
            )
        spec = {"StreamEnabled": True, "StreamViewType": wanted}
    elif not current.get("StreamEnabled"):
        return None
    else:
        spec = {"StreamEnabled": False}
    try:
        await session.call(
            "UpdateTable",
            {"TableName": name, "StreamSpecification": spec},
            idempotent=True,
            table=name,
        )
    except ServiceError as error:
        if error.code not in UNSUPPORTED_CODES and error.code != "ValidationException":
            raise
        raise ConfigurationError(
            f"enable_stream {model.__name__}: the server refused to change the stream of "
            f"table {name!r} ({error.code}: {error.service_message}); local servers such as "
            "dynalite have no streams",
            code=error.code,
            service_message=error.service_message,
        ) from None
    table = await wait_until_active(session, name)
    streaming = bool((table.get("StreamSpecification") or {}).get("StreamEnabled"))
    if streaming != enabled:
        raise ConfigurationError(
            f"enable_stream {model.__name__}: the server accepted the change but table "
            f"{name!r} still {'has no' if enabled else 'has a'} stream; it does not support "
            "streams"
        )
    arn = table.get("LatestStreamArn") if enabled else None
    return arn


# ---------------------------------------------------------------- drift checks


async def check_tables(
    session: Connection, models: list[type[Model]], ignore: Iterable[str]
) -> None:
    """Compare the live tables with the models; every difference in one error."""
    skipped = set(ignore)
    if skipped - set(DIFFERENCE_KINDS):
        raise UsageError(
            f"check_tables: ignore={sorted(skipped)!r} names unknown kinds; use "
            f"{', '.join(DIFFERENCE_KINDS)}"
        )
    checks = [_check_table(session, table) for table in _group(session.names, models)]
    guarded = [m.__name__ for m in models if m.__dm_schema__.unique]
    if guarded:
        checks.append(_check_guard_table(session, guarded))
    found = [
        difference
        for differences in await asyncio.gather(*checks)
        for difference in differences
        if difference.kind not in skipped
    ]
    if found:
        lines = "\n".join(f"- {difference}" for difference in found)
        error = ConfigurationError(
            f"{len(found)} difference(s) between the live tables and the models:\n{lines}"
        )
        error.differences = tuple(found)
        raise error


def _keys_text(keys: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in keys) or "nothing"


def _live_keys(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in spec.get("KeySchema", [])]


def _wanted_keys(
    hash_keys: tuple[KeyAttribute, ...], range_keys: tuple[KeyAttribute, ...]
) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in _key_schema(hash_keys, range_keys)]


def _projection_text(kind: str, include: Iterable[str]) -> str:
    names = sorted(include)
    return f"{kind} ({', '.join(names)})" if names else kind


def _live_projection(spec: dict[str, Any]) -> str:
    projection = spec.get("Projection", {})
    return _projection_text(
        projection.get("ProjectionType", "ALL"), projection.get("NonKeyAttributes", [])
    )


async def _check_table(session: Connection, table: _Table) -> list[TableDifference]:
    name, who = table.name, ", ".join(table.models)
    schema = table.schema

    def differs(kind: DifferenceKind, message: str) -> None:
        found.append(TableDifference(name, kind, f"table {name!r} ({who}): {message}"))

    found: list[TableDifference] = []
    try:
        live = await _describe(session, name)
    except TableNotFound:
        differs("missing_table", "does not exist; create it with `await db.create_tables()`")
        return found
    wanted = _wanted_keys(schema.table_keys[:1], schema.table_keys[1:])
    if _live_keys(live) != wanted:
        differs(
            "key_schema",
            f"is keyed on {_keys_text(_live_keys(live))}, the models on {_keys_text(wanted)}; "
            "keys never change: create a new table and copy the items (export, import)",
        )
    types = {d["AttributeName"]: d["AttributeType"] for d in live.get("AttributeDefinitions", [])}
    for definition in _definitions(table):
        attribute, kind = definition["AttributeName"], definition["AttributeType"]
        if types.get(attribute, kind) != kind:
            differs(
                "attribute_type",
                f"attribute {attribute!r} is keyed as {types[attribute]}, the models "
                f"store it as {kind}",
            )
    live_indexes = {i["IndexName"]: ("GSI", i) for i in live.get("GlobalSecondaryIndexes", [])}
    live_indexes.update({i["IndexName"]: ("LSI", i) for i in live.get("LocalSecondaryIndexes", [])})
    for index in table.indexes.values():
        entry = live_indexes.get(index.name)
        if entry is None:
            differs(
                "missing_index",
                f"has no index {index.name!r}; "
                + (
                    "add it with UpdateTable (GlobalSecondaryIndexUpdates)"
                    if index.kind == "GSI"
                    else "a local index exists only from the table's creation: create a new "
                    "table and copy the items"
                ),
            )
            continue
        kind, spec = entry
        index_keys = _wanted_keys(index.hash_keys, index.range_keys)
        if kind != index.kind or _live_keys(spec) != index_keys:
            differs(
                "index",
                f"index {index.name!r} is a {kind} on {_keys_text(_live_keys(spec))}, the "
                f"models declare a {index.kind} on {_keys_text(index_keys)}",
            )
        projection = _projection_text(index.projection, index.include)
        if _live_projection(spec) != projection:
            differs(
                "index",
                f"index {index.name!r} projects {_live_projection(spec)}, the models "
                f"declare {projection}",
            )
        if index.kind == "GSI":
            wanted_billing = index.billing or schema.billing
            live_billing = _billing_text(spec, _live_mode(live))
            if live_billing != _billing_text(
                _throughput(wanted_billing), billing_mode(schema.billing)
            ):
                differs(
                    "billing",
                    f"index {index.name!r} bills {live_billing}, the models declare "
                    f"{_billing_text(_throughput(wanted_billing), billing_mode(schema.billing))}",
                )
    if table.ttl:
        ttl = await _ttl_state(session, name)
        if ttl is not None and not ttl.enabled:
            differs(
                "ttl",
                f"TTL is off, the models expire items by {table.ttl!r}; "
                "`await db.create_tables()` turns it on",
            )
        elif ttl is not None and ttl.attribute != table.ttl:
            differs("ttl", f"TTL reads {ttl.attribute!r}, the models expire by {table.ttl!r}")
    found.extend(
        TableDifference(name, kind, f"table {name!r} ({who}): {message}")
        for kind, message in await _option_differences(session, table, live)
    )
    if schema.stream:
        stream = live.get("StreamSpecification") or {}
        if not stream.get("StreamEnabled"):
            differs(
                "stream",
                f"has no stream, Meta.stream asks for {schema.stream}; "
                "`await db.create_tables()` turns it on",
            )
        elif stream.get("StreamViewType") != schema.stream:
            differs(
                "stream",
                f"streams {stream.get('StreamViewType')}, Meta.stream asks for {schema.stream}",
            )
    return found


def _live_mode(live: dict[str, Any]) -> str:
    """A table's billing mode; servers that omit BillingModeSummary report provisioned
    tables with capacity, on-demand ones with zeros."""
    mode = (live.get("BillingModeSummary") or {}).get("BillingMode")
    if mode:
        return str(mode)
    units = (live.get("ProvisionedThroughput") or {}).get("ReadCapacityUnits", 0)
    return "PROVISIONED" if units else "PAY_PER_REQUEST"


def _billing_text(spec: dict[str, Any], mode: str) -> str:
    """Billing of a table or GSI description (or request) in words, for comparison."""
    if mode == "PROVISIONED":
        units = spec.get("ProvisionedThroughput") or {}
        return (
            f"PROVISIONED (read {units.get('ReadCapacityUnits')}, "
            f"write {units.get('WriteCapacityUnits')})"
        )
    limits = spec.get("OnDemandThroughput") or {}
    caps = [
        f"{word} at most {limits[key]}"
        for word, key in (("read", "MaxReadRequestUnits"), ("write", "MaxWriteRequestUnits"))
        # DynamoDB describes "no maximum" as -1.
        if limits.get(key) not in (None, -1)
    ]
    return "PAY_PER_REQUEST" + (f" ({', '.join(caps)})" if caps else "")


def _sse_text(kms_key: str | None) -> str:
    return f"a KMS key ({kms_key})" if kms_key else "the AWS-owned key"


def _same_key(arn: str | None, wanted: str) -> bool:
    """Whether a live KMSMasterKeyArn is the key Meta.sse_kms_key names: its ARN or key id.
    An alias resolves to a key ARN that the description does not name, so it matches any."""
    if arn is None:
        return False
    return arn == wanted or arn.endswith("/" + wanted) or "alias/" in wanted


async def _option_differences(
    session: Connection, table: _Table, live: dict[str, Any]
) -> list[tuple[DifferenceKind, str]]:
    """Billing, table class, encryption, tags, deletion protection and PITR."""
    schema, options = table.schema, table.schema.options
    found: list[tuple[DifferenceKind, str]] = []
    wanted_billing = _billing_text(_throughput(schema.billing), billing_mode(schema.billing))
    live_billing = _billing_text(live, _live_mode(live))
    if live_billing != wanted_billing:
        found.append(("billing", f"bills {live_billing}, Meta.billing declares {wanted_billing}"))
    table_class = (live.get("TableClassSummary") or {}).get("TableClass", "STANDARD")
    if table_class != options.table_class:
        found.append(
            (
                "table_class",
                f"has table class {table_class}, Meta.table_class is {options.table_class}",
            )
        )
    sse = live.get("SSEDescription") or {}
    live_key = sse.get("KMSMasterKeyArn") if sse.get("SSEType") == "KMS" else None
    kms = sse.get("SSEType") == "KMS" and sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING")
    if options.sse_kms_key is None and kms:
        found.append(
            (
                "sse",
                f"is encrypted with {_sse_text(live_key)}, the models ask for the AWS-owned key",
            )
        )
    elif options.sse_kms_key is not None and not (kms and _same_key(live_key, options.sse_kms_key)):
        found.append(
            (
                "sse",
                f"is encrypted with {_sse_text(live_key)}, Meta.sse_kms_key is "
                f"{options.sse_kms_key}",
            )
        )
    protected = bool(live.get("DeletionProtectionEnabled", False))
    if protected != options.deletion_protection:
        found.append(
            (
                "deletion_protection",
                f"has deletion protection {'on' if protected else 'off'}, "
                f"Meta.deletion_protection is {options.deletion_protection}",
            )
        )
    if options.tags:
        tags = await _live_tags(session, live.get("TableArn"), table.name)
        if tags is not None:
            wrong = [
                f"{key}={tags[key]!r} (Meta.tags: {value!r})" if key in tags else f"{key} missing"
                for key, value in options.tags
                if tags.get(key) != value
            ]
            if wrong:
                found.append(("tags", f"tags differ: {', '.join(wrong)}"))
    if options.point_in_time_recovery:
        pitr = await _pitr_state(session, table.name)
        if pitr is not None and pitr not in ("ENABLED", "ENABLING"):
            found.append(
                (
                    "pitr",
                    f"point-in-time recovery is {pitr}, Meta.point_in_time_recovery is True; "
                    "`await db.create_tables()` turns it on",
                )
            )
    return found


async def _live_tags(session: Connection, arn: str | None, name: str) -> dict[str, str] | None:
    """A table's tags, or None when the server cannot list them."""
    if not arn:
        return None
    tags: dict[str, str] = {}
    request: dict[str, Any] = {"ResourceArn": arn}
    try:
        while True:
            answer = await session.call(
                "ListTagsOfResource", dict(request), idempotent=True, table=name
            )
            tags.update({t["Key"]: t["Value"] for t in answer.get("Tags", [])})
            token = answer.get("NextToken")
            if not token:
                return tags
            request["NextToken"] = token
    except (ServiceError, ConfigurationError) as error:
        if error.code in UNSUPPORTED_CODES:
            return None
        raise


async def _pitr_state(session: Connection, name: str) -> str | None:
    """PointInTimeRecoveryStatus of a table, or None when the server has no PITR."""
    try:
        answer = await _operate(
            session, "DescribeContinuousBackups", {"TableName": name}, idempotent=True
        )
    except ConfigurationError as error:
        if error.code in UNSUPPORTED_CODES:
            return None
        raise
    description = answer.get("ContinuousBackupsDescription", {})
    status = description.get("PointInTimeRecoveryDescription", {}).get(
        "PointInTimeRecoveryStatus", "DISABLED"
    )
    return str(status)


async def _check_guard_table(session: Connection, guarded: list[str]) -> list[TableDifference]:
    name = session.names.guard
    try:
        await _describe(session, name)
    except TableNotFound:
        return [
            TableDifference(
                name,
                "missing_table",
                f"the unique guard table {name!r} (for {', '.join(guarded)}) does not exist; "
                "create it with `await db.create_tables()`",
            )
        ]
    return []
