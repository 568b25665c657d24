"""Unique guards are planned without a server: which guard items a write puts or deletes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import dynamodm as dm
from dynamodm import HashKey, Model
from dynamodm.schema import TableNames
from dynamodm.unique import (
    guard_create_request,
    guard_key,
    guards_for_delete,
    guards_for_put,
    guards_for_update,
    owner_key,
)

REGISTRY = dm.Registry("unit-unique")
NAMES = TableNames("p-")


class Account(Model):
    class Meta:
        table = "accounts"
        registry = REGISTRY
        unique = ("email", "number")

    id: Annotated[str, HashKey]
    email: str
    number: Decimal | None = None


KEY = {"id": {"S": "a-1"}}


def test_equal_numbers_share_one_guard() -> None:
    assert guard_key(Account, "number", {"N": "1.50"}) == guard_key(Account, "number", {"N": "1.5"})


def test_long_values_are_hashed_into_the_key_limit() -> None:
    text = guard_key(Account, "email", {"S": "x" * 5000})
    assert len(text.encode()) < 1024 and "#H:" in text


def test_a_create_claims_every_value_it_holds() -> None:
    item = {"id": KEY["id"], "email": {"S": "a@x.org"}, "number": {"N": "7"}}
    guards = guards_for_put(NAMES, Account, item, KEY, {}, create=True)
    assert [(g.kind, g.field) for g in guards] == [("Put", "email"), ("Put", "number")]
    assert all(g.body["TableName"] == "p-dynamodm-unique" for g in guards)
    # The guard names its owner, and the owner's key reads back from it.
    assert owner_key(guards[0].body["Item"]) == KEY


def test_an_unchanged_value_is_left_alone_and_a_changed_one_moves() -> None:
    stored = {"email": {"S": "a@x.org"}, "number": {"N": "7"}}
    guards = guards_for_update(NAMES, Account, KEY, stored, {"email": "b@x.org"})
    assert [(g.kind, g.field, g.value) for g in guards] == [
        ("Delete", "email", "a@x.org"),
        ("Put", "email", "b@x.org"),
    ]
    assert guards_for_update(NAMES, Account, KEY, stored, {"number": Decimal("7.0")}) == []


def test_a_delete_releases_every_stored_value() -> None:
    stored = {"email": {"S": "a@x.org"}, "number": None}
    guards = guards_for_delete(NAMES, Account, KEY, stored)
    assert [(g.kind, g.field) for g in guards] == [("Delete", "email")]


def test_the_guard_table_is_named_by_the_prefix() -> None:
    assert guard_create_request(NAMES)["TableName"] == "p-dynamodm-unique"
