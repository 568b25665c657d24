"""Write plans are pure: a model instance and table names in, request bodies out."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm import HashKey, Model, RangeKey, writes
from dynamodm.expressions import Action
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


class Counter(Model):
    class Meta:
        table = "counters"
        registry = REGISTRY

    id: Annotated[str, HashKey] = "c-1"
    a: int = 0
    b: float = 0.0
    c: bool = False
    label: str | None = None
    tags: set[str] = set()
    steps: dict[str, int] = {}


def _update_body(counter: Counter, *actions: Action, **sets: object) -> dict[str, Any]:
    return plan_update(NAMES, counter, actions, dict(sets), condition=None).body


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"a": 1, "b": 2.0}, {"a": 5, "b": 6.5}),
        ({"a": 1, "c": True}, {"a": 1, "c": True}),
        ({"a": 1, "label": "1"}, {"a": 2, "label": "2"}),
        ({"label": None, "a": 3}, {"label": None, "a": 4}),
        ({"tags": {"x"}, "a": 1}, {"tags": set(), "a": 1}),
    ],
)
def test_updates_of_one_shape_render_as_a_fresh_renderer_does(
    first: dict[str, object], second: dict[str, object]
) -> None:
    counter = Counter()
    for sets in (first, second, second):
        cached = _update_body(counter, **sets)
        writes._rendered.clear()
        fresh = _update_body(counter, **sets)
        assert cached == fresh
        assert cached["ExpressionAttributeValues"] is not fresh["ExpressionAttributeValues"]


def test_equal_and_different_values_of_one_shape_get_their_own_placeholders() -> None:
    counter = Counter()
    keys = ("UpdateExpression", "ExpressionAttributeValues")
    same = _update_body(counter, dm.attr(Counter.a).add(1), b=1.0)
    assert [same[k] for k in keys] == [
        "SET #n1 = :v1 ADD #n0 :v0",
        {":v0": {"N": "1"}, ":v1": {"N": "1.0"}},
    ]
    shared = _update_body(counter, dm.attr(Counter.a).add(2), label="x", tags={"x"})
    again = _update_body(counter, dm.attr(Counter.a).add(2), label="2", tags={"2"})
    assert shared["UpdateExpression"] == "SET #n1 = :v1, #n2 = :v2 ADD #n0 :v0"
    assert again["ExpressionAttributeValues"] == {
        ":v0": {"N": "2"},
        ":v1": {"S": "2"},
        ":v2": {"SS": ["2"]},
    }
    merged = _update_body(counter, dm.attr(Counter.a).add(3), b=3.0, label=None)
    twice = _update_body(counter, dm.attr(Counter.a).add(3), b=3.5, label=None)
    assert (
        merged["UpdateExpression"]
        == twice["UpdateExpression"]
        == ("SET #n1 = :v1 REMOVE #n2 ADD #n0 :v0")
    )
    assert twice["ExpressionAttributeValues"] == {":v0": {"N": "3"}, ":v1": {"N": "3.5"}}


def test_requests_of_one_shape_share_no_dicts() -> None:
    counter = Counter()
    first = _update_body(counter, a=1)
    first["ExpressionAttributeNames"]["#n0"] = "changed"
    first["ExpressionAttributeValues"][":v0"] = {"N": "9"}
    second = _update_body(counter, a=2)
    assert second["ExpressionAttributeNames"] == {"#n0": "a", "#n1": "id"}
    assert second["ExpressionAttributeValues"] == {":v0": {"N": "2"}}


def test_updates_under_a_condition_or_on_nested_paths_are_rendered_each_time() -> None:
    counter = Counter()
    writes._rendered.clear()
    plan_update(NAMES, counter, (), {"a": 1}, condition=Counter.a == 1)
    plan_update(NAMES, counter, (Counter.steps["k"].set(1),), {}, condition=None)
    plan_update(NAMES, counter, (Counter.a.set(Counter.a + 1),), {}, condition=None)
    assert writes._rendered == {}
    body = plan_update(NAMES, counter, (), {"a": 1}, condition=Counter.b == 2.0).body
    assert body["ConditionExpression"] == "(attribute_exists(#n1)) AND (#n2 = :v1)"
    assert body["ExpressionAttributeValues"] == {":v0": {"N": "1"}, ":v1": {"N": "2.0"}}


def test_only_so_many_shapes_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writes, "_SHAPES_KEPT", 1)
    monkeypatch.setattr(writes, "_rendered", {})
    counter = Counter()
    bodies = [_update_body(counter, **{name: 1}) for name in ("a", "b", "a", "b")]
    assert len(writes._rendered) == 1
    assert [b["ExpressionAttributeNames"]["#n0"] for b in bodies] == ["a", "b", "a", "b"]
    assert bodies[1]["ExpressionAttributeValues"] == {":v0": {"N": "1.0"}}
