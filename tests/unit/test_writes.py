"""Write plans are pure: a model instance and table names in, request bodies out."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm import HashKey, Model, RangeKey
from dynamodm.instances import load_checked, remember, set_state, stored_values
from dynamodm.keys import from_values
from dynamodm.schema import TableNames
from dynamodm.writes import (
    check_transaction,
    plan_check,
    plan_delete,
    plan_put,
    plan_update,
    plan_upsert,
)

REGISTRY = dm.Registry("unit-writes")


class User(Model):
    class Meta:
        table = "users"
        registry = REGISTRY
        unique = ("email",)

    id: Annotated[str, HashKey]
    email: str
    logins: int = 0
    version: Annotated[int, dm.Version] = 0


class Reading(Model):
    class Meta:
        table = "readings"
        registry = REGISTRY

    sensor: Annotated[str, HashKey]
    at: Annotated[Decimal, RangeKey]
    value: float = 0.0


class Note(Model):
    class Meta:
        table = "notes"
        registry = REGISTRY

    id: Annotated[str, HashKey] = Field(default="n-1")
    text: str = ""


NAMES = TableNames("app-")


def test_table_names_apply_the_prefix_to_tables_and_the_guard_table() -> None:
    assert NAMES.of(User) == "app-users"
    assert NAMES.guard == "app-dynamodm-unique"
    assert NAMES.logical("app-users") == "users"
    assert NAMES.logical("other-users") is None
    assert NAMES.model_of("app-users") is User


def test_plan_put_of_a_new_versioned_unique_item_needs_no_server() -> None:
    user = User(id="u-1", email="ada@example.com")
    write = plan_put(NAMES, user, create=True, condition=None)
    assert write.kind == "Put" and write.operation == "create"
    assert write.body["TableName"] == "app-users"
    assert write.body["Item"]["version"] == {"N": "1"}
    assert "attribute_not_exists" in write.body["ConditionExpression"]
    assert write.key == {"id": {"S": "u-1"}}
    assert not write.idempotent and write.conditional
    # The unique email is claimed by a guard put in the guard table.
    (guard,) = write.guards
    assert guard.kind == "Put" and guard.field == "email"
    assert guard.body["TableName"] == "app-dynamodm-unique"
    assert guard.body["Item"]["pk"]["S"] == "users#email#S:ada@example.com"


def test_plan_put_leaves_the_instance_alone_until_applied() -> None:
    user = User(id="u-1", email="ada@example.com")
    write = plan_put(NAMES, user, create=True, condition=None)
    assert user.version == 0 and stored_values(user) is None
    assert write.apply is not None
    write.apply(None)
    assert user.version == 1
    assert stored_values(user) == {"email": {"S": "ada@example.com"}}


def test_plan_update_checks_the_version_and_moves_the_guard() -> None:
    user = User(id="u-1", email="old@example.com", version=3)
    remember(user, {"email": {"S": "old@example.com"}})
    write = plan_update(NAMES, user, (), {"email": "new@example.com"}, condition=None)
    values = write.body["ExpressionAttributeValues"]
    assert {"N": "3"} in values.values() and {"N": "4"} in values.values()
    kinds = sorted((g.kind, g.body["TableName"]) for g in write.guards)
    assert kinds == [("Delete", "app-dynamodm-unique"), ("Put", "app-dynamodm-unique")]


def test_plan_update_refuses_unknown_fields_and_key_changes() -> None:
    user = User(id="u-1", email="a@example.com")
    with pytest.raises(dm.UsageError, match="unknown field 'nope'"):
        plan_update(NAMES, user, (), {"nope": 1}, condition=None)
    with pytest.raises(dm.UsageError, match="part of the table key"):
        plan_update(NAMES, user, (), {"id": "u-2"}, condition=None)


def test_plan_upsert_is_idempotent_only_without_arithmetic() -> None:
    plain = plan_upsert(NAMES, Note, "n-1", (), {"text": "hi"}, condition=None)
    assert plain.idempotent and plain.body["TableName"] == "app-notes"
    counted = plan_upsert(
        NAMES,
        Reading,
        ("s-1", Decimal("1.5")),
        (dm.attr(Reading.value).add(1),),
        {},
        condition=None,
    )
    assert not counted.idempotent


def test_plan_delete_and_check_name_the_table() -> None:
    key = from_values(Note, "n-1")
    delete = plan_delete(NAMES, Note, key, version=None, stored=None, condition=None)
    assert delete.body == {"TableName": "app-notes", "Key": {"id": {"S": "n-1"}}}
    assert delete.idempotent
    check = plan_check(NAMES, Note, key, Note.text == "x")
    assert check.kind == "ConditionCheck" and check.body["TableName"] == "app-notes"


def test_check_transaction_sees_one_item_in_numbers_written_differently() -> None:
    """Decimal("1.5") and Decimal("1.50") are one key to DynamoDB: two actions on it are
    refused before sending (DynamoDB would cancel the whole transaction)."""
    first = plan_put(NAMES, Reading(sensor="s-1", at=Decimal("1.5")), create=False, condition=None)
    second = plan_put(
        NAMES, Reading(sensor="s-1", at=Decimal("1.50")), create=False, condition=None
    )
    with pytest.raises(dm.UsageError, match="two actions on the same Reading item"):
        check_transaction([first, second])
    other = plan_put(NAMES, Reading(sensor="s-1", at=Decimal("2")), create=False, condition=None)
    check_transaction([first, other])


def test_update_refresh_keeps_the_returned_extras_and_unique_values() -> None:
    user = load_checked(User, {"id": {"S": "u-1"}, "email": {"S": "a@example.com"}})
    set_state(user, "_dm_partial", True)
    set_state(user, "_dm_extra", {"old": {"S": "gone"}})
    write = plan_update(NAMES, user, (), {"logins": 2}, condition=None)
    assert write.apply is not None
    returned = {
        "id": {"S": "u-1"},
        "email": {"S": "b@example.com"},
        "logins": {"N": "2"},
        "version": {"N": "1"},
        "new": {"S": "kept"},
    }
    write.apply(returned)
    assert (user.email, user.logins, user.version) == ("b@example.com", 2, 1)
    assert user._dm_extra == {"new": {"S": "kept"}}
    assert user._dm_partial is False
    assert stored_values(user) == {"email": {"S": "b@example.com"}}
    write.apply({k: v for k, v in returned.items() if k != "new"})
    assert user._dm_extra == {}


def test_update_refresh_of_a_plain_model_drops_extras_it_no_longer_has() -> None:
    note = load_checked(Note, {"id": {"S": "n-1"}, "x": {"S": "extra"}})
    assert note._dm_extra == {"x": {"S": "extra"}}
    write = plan_update(NAMES, note, (), {"text": "hi"}, condition=None)
    assert write.apply is not None
    write.apply({"id": {"S": "n-1"}, "text": {"S": "hi"}})
    assert (note.text, note._dm_extra, note._dm_partial) == ("hi", {}, False)
    write.apply({"id": {"S": "n-1"}, "text": {"S": "hi"}, "y": {"N": "1"}})
    assert note._dm_extra == {"y": {"N": "1"}}
