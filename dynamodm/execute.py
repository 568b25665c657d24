"""Running planned writes and reading items by key: one write alone, or several in one
TransactWriteItems with their unique guards; the error a failed condition or a cancelled
transaction means; ``get_by`` through a guard. Runs on a Connection.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .codec import Item
from .connection import Connection
from .errors import (
    AlreadyExists,
    CancellationReason,
    ConditionFailed,
    NotFound,
    TransactionCanceled,
    UniqueViolation,
    UsageError,
    VersionConflict,
    retryable_cancellation,
)
from .instances import entity_class, expired, load_checked, load_item
from .observe import active_dry_run
from .schema import schema_of
from .unique import GUARD_KEY, Guard, guard_key, owner_key
from .writes import Write, check_transaction, merge_guard_handovers

if TYPE_CHECKING:
    from .model import Model

_OPERATIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


async def get_item(
    conn: Connection, model: type[Model], key: Item, *, consistent: bool = False
) -> Item | None:
    """The stored item of ``model`` with this encoded key, or None."""
    return await get_raw(conn, conn.names.of(model), key, consistent=consistent)


async def get_raw(
    conn: Connection, table: str, key: Item, *, consistent: bool = False
) -> Item | None:
    """One GetItem: the item of a physical table with this encoded key, or None."""
    item: Item | None = (await get_response(conn, table, key, consistent=consistent)).get("Item")
    return item


async def get_response(
    conn: Connection,
    table: str,
    key: Item,
    *,
    consistent: bool = False,
    raw_binary: bool = False,
) -> dict[str, Any]:
    """The answer of one GetItem (``Item`` absent when there is none; the request id in
    ``ResponseMetadata`` where the transport gives it); ``raw_binary`` as ``conn.call``."""
    request: dict[str, Any] = {"TableName": table, "Key": key}
    if consistent:
        request["ConsistentRead"] = True
    return await conn.call("GetItem", request, idempotent=True, table=table, raw_binary=raw_binary)


async def get_by(
    conn: Connection, model: type[Model], values: dict[str, Any], *, include_expired: bool = False
) -> Any:
    """The item whose unique field has this value, read through its guard."""
    if len(values) != 1:
        raise UsageError(f"{model.__name__}.get_by() takes exactly one field=value")
    ((name, value),) = values.items()
    if name not in model.__dm_schema__.unique:
        raise UsageError(
            f"{model.__name__}.get_by(): {name!r} is not a unique field "
            f"(unique: {', '.join(model.__dm_schema__.unique) or 'none'}); query an index instead"
        )
    av = getattr(model, name).encode(value)
    wanted = guard_key(model, name, av)
    guard = await get_raw(conn, conn.names.guard, {GUARD_KEY: {"S": wanted}}, consistent=True)
    if guard is None:
        raise NotFound(f"get_by {model.__name__}: no item has this {name}")
    item = await get_item(conn, model, owner_key(guard), consistent=True)
    attribute = model.__dm_codec__.by_name[name].attribute
    # A guard left by a write made around the library must not return another value's item.
    if (
        item is None
        or attribute not in item
        or guard_key(model, name, item[attribute]) != wanted
        or (expired(model, item) and not include_expired)
    ):
        raise NotFound(f"get_by {model.__name__}: no item has this {name}")
    return load_checked(model, item)


async def run_write(conn: Connection, write: Write) -> Item | None:
    """Send one write; with unique guards it becomes a transaction. Returns ALL_NEW
    attributes for updates, ALL_OLD for a delete with ``returning``."""
    if write.guards:
        await run_transaction(conn, [write])
        return None
    request = dict(write.body)
    if write.conditional:
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if write.kind == "Update":
        request["ReturnValues"] = "ALL_NEW"
    elif write.returning:
        request["ReturnValues"] = "ALL_OLD"
    table = request["TableName"]
    try:
        response = await conn.call(
            _OPERATIONS[write.kind],
            request,
            idempotent=write.idempotent,
            table=table,
            raw_binary=write.raw_binary,
        )
    except ConditionFailed as error:
        raise await condition_error(conn, write, error.item, error) from None
    attributes: Item | None = response.get("Attributes")
    if write.apply is not None and active_dry_run.get() is None:
        write.apply(attributes)
    return attributes


async def condition_error(
    conn: Connection, write: Write, raw: Item | None, error: Exception | None
) -> ConditionFailed | NotFound:
    """Choose the error from the item as it was: missing, version moved, or condition."""
    model = write.model
    if raw is None:
        raw = await get_item(conn, model, write.key, consistent=True)
    if raw is not None and expired(model, raw):
        raw = None  # past its TTL: the write treated it as gone
    if raw is not None and model.__dm_family__ and entity_class(model, raw) is None:
        raw = None  # another class of the hierarchy: not an item of this model
    name = model.__name__
    codes: dict[str, Any] = {
        "code": getattr(error, "code", None) or "ConditionalCheckFailedException",
        "service_message": getattr(error, "service_message", None),
        "request_id": getattr(error, "request_id", None),
    }
    operation = write.operation
    if raw is None:
        if write.create:
            return ConditionFailed(f"{operation} {name}: the condition did not hold", **codes)
        if write.missing_required:
            return NotFound(
                f"upsert {name}: no item has this key, and creating one needs the required "
                f"fields {', '.join(write.missing_required)}; pass them as keywords",
                key=write.key,
            )
        return NotFound(f"{operation} {name}: no item with this key", key=write.key)
    try:
        old: Any = load_item(model, raw)
    except ValueError:
        old = None
    if write.create:
        return AlreadyExists(
            f"create {name}: an item with this key already exists; use save() to "
            "overwrite it or update() to change it",
            item=old,
            **codes,
        )
    schema = schema_of(model)
    if write.version is not None and schema.version:
        # Read from the raw item: one that no longer fits the model still has its version.
        attribute = model.__dm_codec__.by_name[schema.version].attribute
        number = raw.get(attribute, {}).get("N")
        stored = int(Decimal(number)) if number is not None else None
        if stored != write.version:
            return VersionConflict(
                f"{operation} {name}: the item changed since it was read (version "
                f"{write.version} expected, {stored} stored); read it again and retry",
                item=old,
                **codes,
            )
    return ConditionFailed(f"{operation} {name}: the condition did not hold", item=old, **codes)


async def run_transaction(conn: Connection, writes: list[Write]) -> None:
    """TransactWriteItems for the writes and their guards; one client request token is
    reused on every retry of the same commit. TransactionConflict is retried."""
    if not writes:
        return
    writes = merge_guard_handovers(writes)
    check_transaction(writes)
    items: list[dict[str, Any]] = []
    owners: list[tuple[int, Guard | None]] = []
    for position, write in enumerate(writes):
        for offset, entry in enumerate(write.transact_items()):
            items.append(entry)
            owners.append((position, write.guards[offset - 1] if offset else None))
    started = conn.retry.clock()
    attempt = 0
    while True:
        # conn.call re-sends this same request (same token) when an answer is lost,
        # so DynamoDB applies the commit once. A cancelled commit wrote nothing: its
        # retry after a conflict or throttling is a new commit with a new token.
        request = {"TransactItems": items, "ClientRequestToken": uuid.uuid4().hex}
        try:
            await conn.call("TransactWriteItems", request, idempotent=True)
            break
        except TransactionCanceled as error:
            reasons = error.reasons or []
            attempt += 1
            if retryable_cancellation(reasons) and await conn.retry.pause(attempt, started):
                continue
            raise await _cancellation(conn, writes, owners, reasons, error) from None
    if active_dry_run.get() is not None:
        return
    for write in writes:
        if write.apply is not None:
            write.apply(None)


async def _cancellation(
    conn: Connection,
    writes: list[Write],
    owners: list[tuple[int, Guard | None]],
    reasons: list[dict[str, Any]],
    error: TransactionCanceled,
) -> Exception:
    per_write: list[CancellationReason] = []
    violation: UniqueViolation | None = None
    for position, write in enumerate(writes):
        code, message, item = "None", "", None
        for (owner, guard), reason in zip(owners, reasons, strict=False):
            if owner != position:
                continue
            reason_code = str(reason.get("Code") or "None")
            if reason_code == "None":
                continue
            if guard is not None and reason_code == "ConditionalCheckFailed":
                if violation is None and guard.kind == "Put":
                    violation = UniqueViolation(
                        f"{write.operation} {write.model.__name__}: the value of unique field "
                        f"{guard.field!r} is already taken",
                        field=guard.field,
                        value=guard.value,
                        code="ConditionalCheckFailed",
                    )
                code = code if code != "None" else reason_code
                continue
            code, message = reason_code, str(reason.get("Message") or "")
            raw = reason.get("Item")
            if raw:
                try:
                    item = load_item(write.model, raw)
                except ValueError:
                    item = None
        per_write.append(
            CancellationReason(position, write.operation, write.model.__name__, code, message, item)
        )
    if violation is not None:
        return violation
    if len(writes) == 1 and per_write[0].code == "ConditionalCheckFailed":
        raw = reasons[0].get("Item") if reasons else None
        return await condition_error(conn, writes[0], raw, error)
    failed = ", ".join(
        f"#{r.index} {r.operation} {r.model}: {r.code}" for r in per_write if r.code != "None"
    )
    return TransactionCanceled(
        f"the transaction was cancelled ({failed or 'no reason given'}); nothing was written",
        reasons=per_write,
        code=error.code,
        service_message=error.service_message,
    )
