"""Unique fields: guard items in one guard table per table prefix, written in the same
transaction as the item they guard.

A guard's key names the table, the attribute and the value; its ``owner`` names the
item that holds the value. Guards never appear in a model's queries or scans: they
live in their own table.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, Literal

from .codec import AttributeValue, Item
from .errors import NotFound, UsageError
from .expressions import Renderer
from .model import set_state

if TYPE_CHECKING:
    from .model import Model
    from .session import Session

GUARD_TABLE = "dynamodm-unique"
GUARD_KEY = "pk"
OWNER = "owner"
EXPIRES = "expires"
_MAX_TEXT = 1024
# Wide enough for DynamoDB's 38 significant digits: normalising never rounds.
_EXACT = Context(prec=60)


@dataclass(frozen=True)
class Guard:
    """A Put or Delete of one guard item, with the field and value it is for."""

    kind: Literal["Put", "Delete"]
    field: str
    value: Any
    body: dict[str, Any]


def guard_table(session: Session) -> str:
    return session.table_prefix + GUARD_TABLE


def guard_key(model: type[Model], name: str, av: AttributeValue) -> str:
    """``table#attribute#value``, the value in a canonical text (1 and 1.0 are one number)."""
    attribute = model.__dm_codec__.by_name[name].attribute
    kind, raw = next(iter(av.items()))
    if kind == "N":
        text = number_text(raw)
    elif kind == "B":
        text = base64.b64encode(raw).decode()
    else:
        text = str(raw)
    key = f"{model.__dm_schema__.table}#{attribute}#{kind}:{text}"
    if len(key.encode()) > _MAX_TEXT:
        key = (
            f"{model.__dm_schema__.table}#{attribute}#H:{hashlib.sha256(key.encode()).hexdigest()}"
        )
    return key


def number_text(raw: str) -> str:
    """A number's canonical text: "1.50", "1.5" and "15E-1" are one number to DynamoDB."""
    number = Decimal(raw)
    return format(_EXACT.normalize(number), "f") if number else "0"


def owner_text(key: Item) -> str:
    """An item's key as a canonical string (numbers normalised as DynamoDB stores them)."""
    return json.dumps(
        {
            k: {
                t: (
                    base64.b64encode(v).decode()
                    if isinstance(v, bytes)
                    else number_text(v)
                    if t == "N"
                    else v
                )
                for t, v in av.items()
            }
            for k, av in sorted(key.items())
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _owned_or_free(body: dict[str, Any], owner: str) -> None:
    r = Renderer()
    body["ConditionExpression"] = (
        f"attribute_not_exists({r.name(GUARD_KEY)}) OR {r.name(OWNER)} = {r.value({'S': owner})}"
    )
    body["ExpressionAttributeNames"] = r.attribute_names()
    body["ExpressionAttributeValues"] = r.values


def _put(
    session: Session,
    model: type[Model],
    name: str,
    av: AttributeValue,
    owner: str,
    item: Item,
) -> Guard:
    guard: Item = {
        GUARD_KEY: {"S": guard_key(model, name, av)},
        OWNER: {"S": owner},
        "model": {"S": model.__name__},
    }
    ttl = model.__dm_schema__.ttl_attribute
    if ttl and ttl in item and "N" in item[ttl]:
        guard[EXPIRES] = item[ttl]
    body: dict[str, Any] = {"TableName": guard_table(session), "Item": guard}
    _owned_or_free(body, owner)
    return Guard("Put", name, _plain(av), body)


def _delete(
    session: Session, model: type[Model], name: str, av: AttributeValue, owner: str
) -> Guard:
    body: dict[str, Any] = {
        "TableName": guard_table(session),
        "Key": {GUARD_KEY: {"S": guard_key(model, name, av)}},
    }
    _owned_or_free(body, owner)
    return Guard("Delete", name, _plain(av), body)


def _plain(av: AttributeValue) -> Any:
    from .codec import decode_any

    return decode_any(av)


def guards_for_put(
    session: Session,
    model: type[Model],
    item: Item,
    key: Item,
    stored: dict[str, AttributeValue | None],
    *,
    create: bool,
) -> list[Guard]:
    owner = owner_text(key)
    # The stored expiry is unknown here: with a TTL every guard is written again, so that
    # it expires with the item.
    expiring = model.__dm_schema__.ttl_attribute is not None
    guards: list[Guard] = []
    for name in model.__dm_schema__.unique:
        attribute = model.__dm_codec__.by_name[name].attribute
        new = item.get(attribute)
        old = None if create else stored.get(name)
        same = _same(model, name, old, new)
        if old is not None and not same:
            guards.append(_delete(session, model, name, old, owner))
        if new is not None and (not same or expiring):
            guards.append(_put(session, model, name, new, owner, item))
    return guards


def _same(
    model: type[Model], name: str, old: AttributeValue | None, new: AttributeValue | None
) -> bool:
    """Whether two values of a unique field hold one guard ("1.50" and "1.5" do)."""
    if old is None or new is None:
        return old is new
    return guard_key(model, name, old) == guard_key(model, name, new)


def guards_for_update(
    session: Session,
    model: type[Model],
    key: Item,
    stored: dict[str, AttributeValue | None],
    changed: dict[str, Any],
    *,
    expiry: Item | None = None,
) -> list[Guard]:
    """Guard writes for an update. ``changed`` holds the unique fields set by keyword;
    ``expiry`` (the item's TTL attribute after the update, when the model has a TTL) is
    written on every guard put, and a TTL change alone rewrites every guard."""
    owner = owner_text(key)
    guards: list[Guard] = []
    item = expiry or {}
    refresh = expiry is not None
    for name in model.__dm_schema__.unique:
        old = stored.get(name)
        if name in changed:
            value = changed[name]
            new = None if value is None else getattr(model, name).encode(value)
        elif refresh:
            new = old
        else:
            continue
        same = _same(model, name, old, new)
        if same and not refresh:
            continue
        if old is not None and not same:
            guards.append(_delete(session, model, name, old, owner))
        if new is not None:
            guards.append(_put(session, model, name, new, owner, item))
    return guards


def guards_for_delete(
    session: Session, model: type[Model], key: Item, stored: dict[str, AttributeValue | None]
) -> list[Guard]:
    owner = owner_text(key)
    return [
        _delete(session, model, name, av, owner) for name, av in stored.items() if av is not None
    ]


# ---------------------------------------------------------------- what an instance knows


def stored_values(instance: Model) -> dict[str, AttributeValue | None] | None:
    """The unique fields' values as stored, or None when this instance never was."""
    return instance._dm_unique


def remember(instance: Model, item: Item) -> None:
    schema = type(instance).__dm_schema__
    if not schema.unique:
        return
    codec = type(instance).__dm_codec__
    set_state(
        instance, "_dm_unique", {n: item.get(codec.by_name[n].attribute) for n in schema.unique}
    )


def forget(instance: Model) -> None:
    set_state(instance, "_dm_unique", None)


def forget_changed(instance: Model, changed: dict[str, Any]) -> None:
    """After a transaction update: the stored values are the ones just written."""
    if instance._dm_unique is None or not changed:
        return
    stored = dict(instance._dm_unique)  # a copy: model_copy() shares the old dict
    for name, value in changed.items():
        path = getattr(type(instance), name)
        stored[name] = None if value is None else path.encode(value)
    set_state(instance, "_dm_unique", stored)


async def get_by(session: Session, model: type[Model], values: dict[str, Any]) -> Any:
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
    table = guard_table(session)
    response = await session.call(
        "GetItem",
        {
            "TableName": table,
            "Key": {GUARD_KEY: {"S": wanted}},
            "ConsistentRead": True,
        },
        idempotent=True,
        table=table,
    )
    guard = response.get("Item")
    if guard is None:
        raise NotFound(f"get_by {model.__name__}: no item has this {name}")
    key = _owner_key(guard[OWNER]["S"])
    item_table = session.table_name(model)
    found = await session.call(
        "GetItem",
        {"TableName": item_table, "Key": key, "ConsistentRead": True},
        idempotent=True,
        table=item_table,
    )
    item = found.get("Item")
    attribute = model.__dm_codec__.by_name[name].attribute
    # A guard left by a write made around the library must not return another value's item.
    if item is None or attribute not in item or guard_key(model, name, item[attribute]) != wanted:
        raise NotFound(f"get_by {model.__name__}: no item has this {name}")
    return session.load(model, item)


def _owner_key(text: str) -> Item:
    data = json.loads(text)
    return {
        k: {t: (base64.b64decode(v) if t == "B" else v) for t, v in av.items()}
        for k, av in data.items()
    }


def guard_create_request(session: Session) -> dict[str, Any]:
    return {
        "TableName": guard_table(session),
        "AttributeDefinitions": [{"AttributeName": GUARD_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": GUARD_KEY, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
