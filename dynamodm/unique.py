"""Unique fields: guard items in one guard table per table prefix, written in the same
transaction as the item they guard.

A guard's key names the table, the attribute and the value; its ``owner`` names the
item that holds the value. Guards never appear in a model's queries or scans: they
live in their own table.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .codec import AttributeValue, Item, decode_any
from .expressions import Renderer
from .keys import canonical_number, key_from_text, key_text
from .schema import TableNames

if TYPE_CHECKING:
    from .model import Model

GUARD_KEY = "pk"
OWNER = "owner"
EXPIRES = "expires"
_MAX_TEXT = 1024


@dataclass(frozen=True)
class Guard:
    """A Put or Delete of one guard item, with the field and value it is for."""

    kind: Literal["Put", "Delete"]
    field: str
    value: Any
    body: dict[str, Any]
    owner: str = ""  # the key text of the item that claims or releases the value


def guard_key(model: type[Model], name: str, av: AttributeValue) -> str:
    """``table#attribute#value``, the value in a canonical text (1 and 1.0 are one number)."""
    attribute = model.__dm_codec__.by_name[name].attribute
    kind, raw = next(iter(av.items()))
    if kind == "N":
        text = canonical_number(raw)
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


def _owned_or_free(body: dict[str, Any], owner: str) -> None:
    r = Renderer()
    body["ConditionExpression"] = (
        f"attribute_not_exists({r.name(GUARD_KEY)}) OR {r.name(OWNER)} = {r.value({'S': owner})}"
    )
    body["ExpressionAttributeNames"] = r.attribute_names()
    body["ExpressionAttributeValues"] = r.values


def _put(
    names: TableNames,
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
    body: dict[str, Any] = {"TableName": names.guard, "Item": guard}
    _owned_or_free(body, owner)
    return Guard("Put", name, _plain(av), body, owner)


def _delete(
    names: TableNames, model: type[Model], name: str, av: AttributeValue, owner: str
) -> Guard:
    body: dict[str, Any] = {
        "TableName": names.guard,
        "Key": {GUARD_KEY: {"S": guard_key(model, name, av)}},
    }
    _owned_or_free(body, owner)
    return Guard("Delete", name, _plain(av), body, owner)


def _plain(av: AttributeValue) -> Any:
    return decode_any(av)


def guards_for_put(
    names: TableNames,
    model: type[Model],
    item: Item,
    key: Item,
    stored: dict[str, AttributeValue | None],
    *,
    create: bool,
) -> list[Guard]:
    owner = key_text(key)
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
            guards.append(_delete(names, model, name, old, owner))
        if new is not None and (not same or expiring):
            guards.append(_put(names, model, name, new, owner, item))
    return guards


def _same(
    model: type[Model], name: str, old: AttributeValue | None, new: AttributeValue | None
) -> bool:
    """Whether two values of a unique field hold one guard ("1.50" and "1.5" do)."""
    if old is None or new is None:
        return old is new
    return guard_key(model, name, old) == guard_key(model, name, new)


def guards_for_update(
    names: TableNames,
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
    owner = key_text(key)
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
            guards.append(_delete(names, model, name, old, owner))
        if new is not None:
            guards.append(_put(names, model, name, new, owner, item))
    return guards


def guards_for_delete(
    names: TableNames, model: type[Model], key: Item, stored: dict[str, AttributeValue | None]
) -> list[Guard]:
    owner = key_text(key)
    return [_delete(names, model, name, av, owner) for name, av in stored.items() if av is not None]


def owner_key(guard: Item) -> Item:
    """The key of the item that holds a guard's value."""
    from_text: Item = key_from_text(guard[OWNER]["S"])
    return from_text


def guard_create_request(names: TableNames) -> dict[str, Any]:
    return {
        "TableName": names.guard,
        "AttributeDefinitions": [{"AttributeName": GUARD_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": GUARD_KEY, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def handover(claim: Guard, release: Guard) -> Guard:
    """One guard put for a value that ``release`` gives up and ``claim`` takes in the
    same transaction: it succeeds when the guard is free or held by either owner."""
    body = dict(claim.body)
    r = Renderer()
    body["ConditionExpression"] = (
        f"attribute_not_exists({r.name(GUARD_KEY)}) OR {r.name(OWNER)} IN "
        f"({r.value({'S': claim.owner})}, {r.value({'S': release.owner})})"
    )
    body["ExpressionAttributeNames"] = r.attribute_names()
    body["ExpressionAttributeValues"] = r.values
    return Guard("Put", claim.field, claim.value, body, claim.owner)
