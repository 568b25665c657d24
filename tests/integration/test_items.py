"""Items through a real local server: create, get, save, update, delete, upsert, versions.

Every unhappy path also reads the item back raw (``db.client``) to show nothing
was written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

import dynamodm as dm

REG = dm.Registry("items-tests")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
WHEN = datetime(2025, 12, 1, 9, tzinfo=UTC)


class Address(BaseModel):
    city: str
    zip_code: str = Field(default="", alias="zip")


class User(dm.Model):
    class Meta:
        table = "users"
        registry = REG

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    username: str
    email: str = ""
    role: Literal["student", "teacher", "admin"] = "student"
    logins: int = 0
    score: int = 0
    tags: list[str] = []
    badges: set[str] = set()
    nickname: str | None = None
    address: Address | None = None
    prefs: dict[str, int] = {}
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")
    version: Annotated[int, dm.Version] = 0
    expires_at: Annotated[datetime | None, dm.TTL] = None


class Attendance(dm.Model):
    class Meta:
        table = "attendance"
        registry = REG

    student: Annotated[str, dm.HashKey]
    at: Annotated[datetime, dm.RangeKey]
    note: str = ""


class Note(dm.Model):
    """No Version field: writes are conditional only when asked."""

    class Meta:
        table = "notes"
        registry = REG

    id: Annotated[str, dm.HashKey]
    text: str = ""
    count: int = 0


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(User, Attendance, Note)


async def raw(db: dm.Session, model: type[dm.Model], key: dict[str, Any]) -> dict[str, Any] | None:
    """The item as stored, read around the library."""
    response = await db.client.get_item(
        TableName=db.table_name(model), Key=key, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


async def raw_user(db: dm.Session, user_id: str) -> dict[str, Any] | None:
    return await raw(db, User, {"id": {"S": user_id}})


async def item_count(db: dm.Session, model: type[dm.Model]) -> int:
    response = await db.client.scan(TableName=db.table_name(model), Select="COUNT")
    count: int = response["Count"]
    return count


# ---------------------------------------------------------------- create


async def test_create_stores_version_one_and_fills_timestamps(db: dm.Session) -> None:
    before = datetime.now(UTC)
    user = await User.create(id="u-1", username="ada")

    assert user.version == 1
    assert before <= user.created_at <= datetime.now(UTC)
    assert user.created_at.utcoffset() == timedelta(0)
    assert user.updated_at >= user.created_at
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["version"] == {"N": "1"}
    assert stored["username"] == {"S": "ada"}
    assert TIMESTAMP.match(stored["createdAt"]["S"])
    assert TIMESTAMP.match(stored["updatedAt"]["S"])
    assert "created_at" not in stored
    assert await User.get("u-1", consistent=True) == user


async def test_create_refuses_existing_key_and_carries_stored_item(db: dm.Session) -> None:
    await User.create(id="u-1", username="ada")
    before = await raw_user(db, "u-1")

    with pytest.raises(dm.AlreadyExists) as caught:
        await User.create(id="u-1", username="bob")

    assert isinstance(caught.value, dm.ConditionFailed)
    assert caught.value.code == "ConditionalCheckFailedException"
    assert isinstance(caught.value.item, User)
    assert caught.value.item.username == "ada"
    assert await raw_user(db, "u-1") == before


async def test_create_refuses_invalid_data_before_any_request(
    db: dm.Session, sent: list[Any]
) -> None:
    with pytest.raises(ValidationError):
        await User.create(id="u-1", username="ada", role="superuser")
    with pytest.raises(ValidationError):
        await User.create(id="u-1")  # username is required

    assert sent == []
    assert await raw_user(db, "u-1") is None


# ---------------------------------------------------------------- get


async def test_get_reads_the_stored_item(db: dm.Session) -> None:
    created = await User.create(username="ada", tags=["x"], address=Address(city="Paris"))

    got = await User.get(created.id, consistent=True)

    assert got == created
    assert got is not created


async def test_get_raises_not_found_for_a_missing_key(db: dm.Session) -> None:
    with pytest.raises(dm.NotFound) as caught:
        await User.get("nobody", consistent=True)
    assert caught.value.key == {"id": {"S": "nobody"}}
    assert "User" in str(caught.value)


async def test_get_or_none_returns_none_for_a_missing_key(db: dm.Session) -> None:
    assert await User.get_or_none("nobody", consistent=True) is None
    await User.create(id="u-1", username="ada")
    found = await User.get_or_none("u-1", consistent=True)
    assert found is not None
    assert found.username == "ada"


async def test_get_with_hash_and_range_key(db: dm.Session) -> None:
    created = await Attendance.create(student="john", at=WHEN, note="on time")
    await Attendance.create(student="john", at=WHEN + timedelta(days=1), note="late")

    got = await Attendance.get("john", WHEN, consistent=True)

    assert got == created
    assert got.note == "on time"
    stored = await raw(
        db, Attendance, {"student": {"S": "john"}, "at": {"S": "2025-12-01T09:00:00.000000Z"}}
    )
    assert stored is not None
    assert stored["note"] == {"S": "on time"}


@pytest.mark.parametrize(
    "range_value",
    [
        WHEN,
        WHEN.astimezone(timezone(timedelta(hours=2))),
        WHEN.replace(tzinfo=None),
        "2025-12-01T09:00:00Z",
    ],
    ids=["utc", "other-offset", "naive-as-utc", "iso-string"],
)
async def test_get_validates_a_datetime_range_key_through_the_field_type(
    db: dm.Session, range_value: Any
) -> None:
    await Attendance.create(student="john", at=WHEN)

    got = await Attendance.get("john", range_value, consistent=True)

    assert got.at == WHEN


@pytest.mark.parametrize(
    ("model", "key"),
    [
        (User, (123,)),
        (User, ([1, 2],)),
        (User, ("",)),
        (User, (None,)),
        (User, ("u-1", "extra-range")),
        (Attendance, ("john",)),
        (Attendance, ("john", "not a date")),
        (Attendance, ("", WHEN)),
        (Attendance, (7, WHEN)),
    ],
    ids=[
        "int-for-str",
        "list-for-str",
        "empty-hash",
        "none-hash",
        "range-on-hash-only-model",
        "missing-range",
        "bad-datetime",
        "empty-hash-with-range",
        "int-hash-with-range",
    ],
)
async def test_get_refuses_an_invalid_key_before_any_request(
    db: dm.Session, sent: list[Any], model: type[dm.Model], key: tuple[Any, ...]
) -> None:
    with pytest.raises(dm.UsageError):
        await model.get(*key)
    with pytest.raises(dm.UsageError):
        await model.get_or_none(*key)
    with pytest.raises(dm.UsageError):
        await model.delete_key(*key)
    assert sent == []


async def test_create_refuses_an_empty_key_before_any_request(
    db: dm.Session, sent: list[Any]
) -> None:
    with pytest.raises(dm.UsageError):
        await User.create(id="", username="ada")
    with pytest.raises(dm.UsageError):
        await Attendance.create(student="", at=WHEN)
    assert sent == []
    assert await item_count(db, User) == 0
    assert await item_count(db, Attendance) == 0


# ---------------------------------------------------------------- save


async def test_save_puts_the_changed_item(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")
    first_update = user.updated_at
    user.role = "teacher"
    user.tags = ["math", "art"]

    await user.save()

    assert user.version == 2
    assert user.updated_at > first_update
    got = await User.get("u-1", consistent=True)
    assert got.role == "teacher"
    assert got.tags == ["math", "art"]
    assert got.version == 2
    assert got.created_at == user.created_at
    assert got == user


async def test_save_with_a_condition_that_holds(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")
    user.role = "teacher"

    await user.save(condition=User.role == "student")

    got = await User.get("u-1", consistent=True)
    assert got.role == "teacher"


async def test_save_with_a_failing_condition_raises_with_the_stored_item(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", role="admin")
    before = await raw_user(db, "u-1")
    user.username = "bob"

    with pytest.raises(dm.ConditionFailed) as caught:
        await user.save(condition=User.role == "student")

    assert type(caught.value) is dm.ConditionFailed
    assert caught.value.code == "ConditionalCheckFailedException"
    assert isinstance(caught.value.item, User)
    assert caught.value.item.username == "ada"
    assert caught.value.item.role == "admin"
    assert await raw_user(db, "u-1") == before
    assert user.version == 1


async def test_save_on_an_unversioned_model_honours_the_condition(db: dm.Session) -> None:
    note = Note(id="n-1", text="draft")
    await note.save()
    note.text = "final"

    with pytest.raises(dm.ConditionFailed) as caught:
        await note.save(condition=Note.text == "something else")

    assert caught.value.item == Note(id="n-1", text="draft")
    assert await raw(db, Note, {"id": {"S": "n-1"}}) == {
        "id": {"S": "n-1"},
        "text": {"S": "draft"},
        "count": {"N": "0"},
    }
    await note.save(condition=Note.text == "draft")
    assert (await Note.get("n-1", consistent=True)).text == "final"


async def test_save_without_version_overwrites_unconditionally(db: dm.Session) -> None:
    await Note(id="n-1", text="one", count=3).save()
    await Note(id="n-1", text="two").save()

    assert await Note.get("n-1", consistent=True) == Note(id="n-1", text="two", count=0)


async def test_unknown_attributes_are_kept_on_read_and_written_back_on_save(
    db: dm.Session,
) -> None:
    legacy = {
        "legacyFlag": {"BOOL": True},
        "legacyMap": {"M": {"a": {"N": "1"}, "b": {"SS": ["x", "y"]}}},
        "legacyBytes": {"B": b"\x00\x01"},
    }
    await db.client.put_item(
        TableName=db.table_name(User),
        Item={
            "id": {"S": "u-1"},
            "username": {"S": "ada"},
            "version": {"N": "1"},
            "createdAt": {"S": "2025-01-01T00:00:00.000000Z"},
            "updatedAt": {"S": "2025-01-01T00:00:00.000000Z"},
            **legacy,
        },
    )

    user = await User.get("u-1", consistent=True)
    assert user.extra_attributes == legacy
    dumped = user.model_dump(by_alias=True)
    assert not set(legacy) & set(dumped)
    user.role = "teacher"
    await user.save()

    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert {name: stored[name] for name in legacy} == legacy
    assert stored["role"] == {"S": "teacher"}
    assert stored["version"] == {"N": "2"}

    await user.update(role="admin")
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert {name: stored[name] for name in legacy} == legacy
    assert user.extra_attributes == legacy


# ---------------------------------------------------------------- update


async def test_update_sets_keyword_fields_and_refreshes_the_instance(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")
    first_update = user.updated_at

    await user.update(role="admin", nickname="Countess", tags=["math"])

    assert (user.role, user.nickname, user.tags) == ("admin", "Countess", ["math"])
    assert user.version == 2
    assert user.updated_at > first_update
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["role"] == {"S": "admin"}
    assert stored["nickname"] == {"S": "Countess"}
    assert stored["tags"] == {"L": [{"S": "math"}]}
    assert stored["version"] == {"N": "2"}
    assert await User.get("u-1", consistent=True) == user


async def test_update_with_none_removes_the_attribute(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", nickname="Countess")

    await user.update(nickname=None)

    assert user.nickname is None
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert "nickname" not in stored


async def test_update_with_an_empty_set_removes_the_attribute(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", badges={"gold"})

    await user.update(badges=set())

    assert user.badges == set()
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert "badges" not in stored


async def test_update_refuses_none_for_a_field_that_cannot_be_none(
    db: dm.Session, sent: list[Any]
) -> None:
    user = await User.create(id="u-1", username="ada")
    before = await raw_user(db, "u-1")
    sent.clear()

    with pytest.raises(dm.UsageError, match="username"):
        await user.update(username=None)

    assert sent == []
    assert await raw_user(db, "u-1") == before
    assert user.username == "ada"


async def test_update_returns_all_new_including_other_writers_changes(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")
    await db.client.update_item(
        TableName=db.table_name(User),
        Key={"id": {"S": "u-1"}},
        UpdateExpression="SET score = :s, email = :e",
        ExpressionAttributeValues={":s": {"N": "40"}, ":e": {"S": "ada@example.com"}},
    )

    await user.update(role="teacher")

    assert user.score == 40
    assert user.email == "ada@example.com"
    assert user.role == "teacher"


async def test_update_actions_add_append_prepend_and_arithmetic(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", tags=["b"], score=10)

    await user.update(
        dm.attr(User.logins).add(1),
        User.tags.append(["c", "d"]),  # type: ignore[attr-defined]
        dm.attr(User.score).set(dm.attr(User.score) + 5),
    )
    await user.update(dm.attr(User.logins).add(2), dm.attr(User.tags).prepend(["a"]))

    assert user.logins == 3
    assert user.tags == ["a", "b", "c", "d"]
    assert user.score == 15
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["logins"] == {"N": "3"}
    assert stored["score"] == {"N": "15"}
    assert stored["tags"] == {"L": [{"S": t} for t in "abcd"]}
    assert stored["version"] == {"N": "3"}


async def test_update_subtracts_with_arithmetic(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", score=10)

    await user.update(dm.attr(User.score).set(dm.attr(User.score) - 3))

    assert user.score == 7
    assert (await User.get("u-1", consistent=True)).score == 7


async def test_update_remove_action_and_set_if_not_exists(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", nickname="Countess", score=4)

    await user.update(dm.attr(User.nickname).remove(), dm.attr(User.score).set_if_not_exists(99))
    assert user.nickname is None
    assert user.score == 4
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert "nickname" not in stored

    await user.update(dm.attr(User.nickname).set_if_not_exists("first"))
    await user.update(dm.attr(User.nickname).set_if_not_exists("second"))

    assert user.nickname == "first"
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["nickname"] == {"S": "first"}
    assert stored["score"] == {"N": "4"}


async def test_update_adds_to_and_deletes_from_a_set(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert "badges" not in stored  # an empty set is not stored

    await user.update(dm.attr(User.badges).add({"gold", "silver", "bronze"}))
    assert user.badges == {"gold", "silver", "bronze"}
    await user.update(dm.attr(User.badges).delete({"silver", "bronze"}))

    assert user.badges == {"gold"}
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["badges"] == {"SS": ["gold"]}

    await user.update(dm.attr(User.badges).delete({"gold"}))
    assert user.badges == set()
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert "badges" not in stored


async def test_update_nested_model_and_dict_paths(db: dm.Session) -> None:
    user = await User.create(
        id="u-1", username="ada", address=Address(city="London", zip="N1"), prefs={"a": 1}
    )
    address: Any = dm.attr(User.address)
    prefs: Any = dm.attr(User.prefs)

    await user.update(
        address.city.set("Paris"),
        address.zip_code.set("75001"),
        prefs["dark"].set(1),
        prefs["a"].set(prefs["a"] + 10),
    )

    assert user.address == Address(city="Paris", zip="75001")
    assert user.prefs == {"a": 11, "dark": 1}
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["address"] == {"M": {"city": {"S": "Paris"}, "zip": {"S": "75001"}}}
    assert stored["prefs"] == {"M": {"a": {"N": "11"}, "dark": {"N": "1"}}}

    await user.update(prefs["dark"].remove())
    assert user.prefs == {"a": 11}


async def test_update_on_a_missing_item_raises_not_found_and_creates_nothing(
    db: dm.Session,
) -> None:
    ghost = User(id="ghost", username="casper")

    with pytest.raises(dm.NotFound):
        await ghost.update(role="admin")
    with pytest.raises(dm.NotFound):
        await ghost.update(dm.attr(User.logins).add(1))

    assert await raw_user(db, "ghost") is None
    assert await item_count(db, User) == 0


async def test_update_on_an_unversioned_missing_item_raises_not_found(db: dm.Session) -> None:
    with pytest.raises(dm.NotFound):
        await Note(id="n-1").update(text="hello")
    assert await raw(db, Note, {"id": {"S": "n-1"}}) is None


async def test_update_with_a_failing_condition_raises_and_writes_nothing(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", role="teacher")
    before = await raw_user(db, "u-1")

    with pytest.raises(dm.ConditionFailed) as caught:
        await user.update(
            dm.attr(User.logins).add(1), condition=User.role == "student", role="admin"
        )

    assert type(caught.value) is dm.ConditionFailed
    assert isinstance(caught.value.item, User)
    assert caught.value.item.role == "teacher"
    assert await raw_user(db, "u-1") == before
    assert user.role == "teacher"
    assert user.version == 1


async def test_update_with_a_condition_that_holds(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")

    await user.update(condition=User.role == "student", role="admin")

    assert (await User.get("u-1", consistent=True)).role == "admin"


async def test_update_refuses_to_change_a_key_field_before_any_request(
    db: dm.Session, sent: list[Any]
) -> None:
    user = await User.create(id="u-1", username="ada")
    record = await Attendance.create(student="john", at=WHEN)
    sent.clear()

    with pytest.raises(dm.UsageError, match="key"):
        await user.update(id="u-2")
    with pytest.raises(dm.UsageError, match="key"):
        await user.update(dm.attr(User.id).set("u-2"))
    with pytest.raises(dm.UsageError, match="key"):
        await record.update(at=WHEN + timedelta(hours=1))

    assert sent == []
    assert await raw_user(db, "u-2") is None
    assert (await User.get("u-1", consistent=True)).version == 1


async def test_update_refuses_wrong_values_and_unknown_fields_before_any_request(
    db: dm.Session, sent: list[Any]
) -> None:
    user = await User.create(id="u-1", username="ada")
    before = await raw_user(db, "u-1")
    sent.clear()

    # invalid data is Pydantic's ValidationError (the model's own validation), as on assignment
    with pytest.raises(ValidationError):
        await user.update(logins="many")
    with pytest.raises(ValidationError):
        await user.update(role="superuser")
    assert (user.logins, user.role) == (0, "student")  # the instance is unchanged
    with pytest.raises(dm.UsageError, match="unknown field"):
        await user.update(nonexistent=1)
    with pytest.raises(dm.UsageError):
        await user.update()

    assert sent == []
    assert await raw_user(db, "u-1") == before


# ---------------------------------------------------------------- delete


async def test_delete_removes_the_item(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")

    await user.delete()

    assert await raw_user(db, "u-1") is None
    assert await User.get_or_none("u-1", consistent=True) is None


async def test_delete_with_a_failing_condition_keeps_the_item(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada", role="admin")
    before = await raw_user(db, "u-1")

    with pytest.raises(dm.ConditionFailed) as caught:
        await user.delete(condition=User.role == "student")

    assert type(caught.value) is dm.ConditionFailed
    assert isinstance(caught.value.item, User)
    assert await raw_user(db, "u-1") == before
    await user.delete(condition=User.role == "admin")
    assert await raw_user(db, "u-1") is None


async def test_delete_of_a_versioned_item_already_gone_raises_not_found(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")
    await User.delete_key("u-1")

    with pytest.raises(dm.NotFound):
        await user.delete()
    assert await item_count(db, User) == 0


async def test_delete_key_removes_the_item(db: dm.Session) -> None:
    await User.create(id="u-1", username="ada")
    await Note(id="n-1").save()
    await Attendance.create(student="john", at=WHEN)

    await User.delete_key("u-1")
    await Note.delete_key("n-1")
    await Attendance.delete_key("john", WHEN)

    assert await raw_user(db, "u-1") is None
    assert await item_count(db, Note) == 0
    assert await item_count(db, Attendance) == 0


async def test_delete_key_of_a_missing_item_does_nothing(db: dm.Session) -> None:
    await User.delete_key("nobody")
    await Note.delete_key("nobody")
    assert await item_count(db, User) == 0
    assert await item_count(db, Note) == 0


async def test_delete_key_with_a_condition(db: dm.Session) -> None:
    await Note(id="n-1", text="keep").save()
    await User.create(id="u-1", username="ada", role="admin")

    with pytest.raises(dm.ConditionFailed) as caught:
        await Note.delete_key("n-1", condition=Note.text == "drop")
    assert caught.value.item == Note(id="n-1", text="keep")
    with pytest.raises(dm.ConditionFailed):
        await User.delete_key("u-1", condition=User.role == "student")

    assert await raw(db, Note, {"id": {"S": "n-1"}}) is not None
    assert await raw_user(db, "u-1") is not None
    await Note.delete_key("n-1", condition=Note.text == "keep")
    await User.delete_key("u-1", condition=User.role == "admin")
    assert await item_count(db, Note) == 0
    assert await item_count(db, User) == 0


# ---------------------------------------------------------------- upsert


async def test_upsert_creates_a_missing_item_with_every_required_field(db: dm.Session) -> None:
    user = await User.upsert("u-1", dm.attr(User.logins).add(1), username="ada")

    assert user.id == "u-1"
    assert (user.username, user.logins, user.role, user.version) == ("ada", 1, "student", 1)
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["username"] == {"S": "ada"}
    assert stored["role"] == {"S": "student"}
    assert stored["logins"] == {"N": "1"}
    assert stored["version"] == {"N": "1"}
    assert TIMESTAMP.match(stored["createdAt"]["S"])
    assert TIMESTAMP.match(stored["updatedAt"]["S"])
    assert await User.get("u-1", consistent=True) == user


async def test_upsert_without_a_required_field_on_a_missing_item_writes_nothing(
    db: dm.Session,
) -> None:
    with pytest.raises(dm.NotFound, match="username"):
        await User.upsert("u-1", dm.attr(User.logins).add(1))

    assert await raw_user(db, "u-1") is None
    assert await item_count(db, User) == 0


async def test_upsert_updates_a_present_item_and_increments_its_version(db: dm.Session) -> None:
    created = await User.create(id="u-1", username="ada", role="teacher", score=7)

    first = await User.upsert("u-1", dm.attr(User.logins).add(2))
    second = await User.upsert("u-1", nickname="Countess")

    assert (first.username, first.role, first.score, first.logins) == ("ada", "teacher", 7, 2)
    assert first.created_at == created.created_at
    assert (first.version, second.version) == (2, 3)
    assert second.nickname == "Countess"
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["version"] == {"N": "3"}
    assert stored["logins"] == {"N": "2"}


async def test_upsert_does_not_reset_present_fields_to_their_defaults(db: dm.Session) -> None:
    await User.create(id="u-1", username="ada", role="admin", tags=["x"])

    user = await User.upsert("u-1", username="bob")

    assert (user.username, user.role, user.tags) == ("bob", "admin", ["x"])


async def test_upsert_with_hash_and_range_key(db: dm.Session) -> None:
    created = await Attendance.upsert(("john", WHEN), note="first")
    updated = await Attendance.upsert(("john", WHEN), note="second")

    assert created == Attendance(student="john", at=WHEN, note="first")
    assert updated.note == "second"
    assert await item_count(db, Attendance) == 1


async def test_upsert_with_a_failing_condition_writes_nothing(db: dm.Session) -> None:
    await User.create(id="u-1", username="ada", role="admin")
    before = await raw_user(db, "u-1")

    with pytest.raises(dm.ConditionFailed):
        await User.upsert("u-1", condition=User.role == "student", username="bob")

    assert await raw_user(db, "u-1") == before


# ---------------------------------------------------------------- versions


async def test_versions_are_contiguous_across_create_save_update(db: dm.Session) -> None:
    user = await User.create(id="u-1", username="ada")
    versions = [(await raw_user(db, "u-1") or {})["version"]["N"]]
    user.role = "teacher"
    await user.save()
    versions.append((await raw_user(db, "u-1") or {})["version"]["N"])
    await user.update(dm.attr(User.logins).add(1))
    versions.append((await raw_user(db, "u-1") or {})["version"]["N"])

    assert versions == ["1", "2", "3"]
    assert user.version == 3


async def test_second_save_of_a_stale_copy_raises_version_conflict(db: dm.Session) -> None:
    await User.create(id="u-1", username="ada")
    first = await User.get("u-1", consistent=True)
    second = await User.get("u-1", consistent=True)
    first.role = "teacher"
    await first.save()
    after_first = await raw_user(db, "u-1")
    second.role = "admin"

    with pytest.raises(dm.VersionConflict) as caught:
        await second.save()

    assert isinstance(caught.value, dm.ConditionFailed)
    assert isinstance(caught.value.item, User)
    assert caught.value.item.version == 2
    assert caught.value.item.role == "teacher"
    assert await raw_user(db, "u-1") == after_first
    assert second.version == 1


async def test_update_of_a_stale_copy_raises_version_conflict(db: dm.Session) -> None:
    first = await User.create(id="u-1", username="ada")
    second = await User.get("u-1", consistent=True)
    await first.update(role="teacher")
    after_first = await raw_user(db, "u-1")

    with pytest.raises(dm.VersionConflict):
        await second.update(dm.attr(User.logins).add(1), role="admin")

    assert await raw_user(db, "u-1") == after_first
    assert second.role == "student"


async def test_delete_of_a_stale_copy_raises_version_conflict(db: dm.Session) -> None:
    first = await User.create(id="u-1", username="ada")
    second = await User.get("u-1", consistent=True)
    await first.update(role="teacher")
    after_first = await raw_user(db, "u-1")

    with pytest.raises(dm.VersionConflict):
        await second.delete()

    assert await raw_user(db, "u-1") == after_first
    await first.delete()
    assert await raw_user(db, "u-1") is None


async def test_saving_a_new_versioned_instance_over_an_existing_item_conflicts(
    db: dm.Session,
) -> None:
    await User.create(id="u-1", username="ada")
    before = await raw_user(db, "u-1")

    with pytest.raises(dm.VersionConflict):
        await User(id="u-1", username="impostor").save()

    assert await raw_user(db, "u-1") == before


async def test_saving_a_new_versioned_instance_creates_it_at_version_one(db: dm.Session) -> None:
    user = User(id="u-1", username="ada")

    await user.save()

    assert user.version == 1
    assert (await raw_user(db, "u-1") or {})["version"] == {"N": "1"}


# ---------------------------------------------------------------- TTL, size, validation


async def test_ttl_field_is_stored_as_epoch_seconds(db: dm.Session) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    user = await User.create(id="u-1", username="ada", expires_at=expires)

    assert user.expires_at == expires.replace(microsecond=0)
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert stored["expires_at"] == {"N": str(int(expires.timestamp()))}
    got = await User.get("u-1", consistent=True)
    assert got.expires_at == expires.replace(microsecond=0)

    await got.update(expires_at=None)
    assert "expires_at" not in (await raw_user(db, "u-1") or {})


async def test_item_too_large_is_refused_before_sending(db: dm.Session, sent: list[Any]) -> None:
    big = "x" * 410_000

    with pytest.raises(dm.ItemTooLarge) as caught:
        await User.create(id="u-1", username="ada", email=big)
    assert caught.value.size is not None
    assert caught.value.size > 409_600
    assert sent == []
    assert await raw_user(db, "u-1") is None

    user = await User.create(id="u-1", username="ada")
    before = await raw_user(db, "u-1")
    user.email = big
    sent.clear()
    with pytest.raises(dm.ItemTooLarge):
        await user.save()
    assert sent == []
    assert await raw_user(db, "u-1") == before


async def test_update_that_would_make_the_item_too_large_raises_item_too_large(
    db: dm.Session,
) -> None:
    user = await User.create(id="u-1", username="ada", email="e" * 300_000)
    before = await raw_user(db, "u-1")

    with pytest.raises(dm.ItemTooLarge) as caught:
        await user.update(nickname="n" * 200_000)

    assert caught.value.code == "ValidationException"
    assert await raw_user(db, "u-1") == before
    assert user.nickname is None


async def test_item_just_under_the_size_limit_is_stored(db: dm.Session) -> None:
    text = "y" * 400_000
    user = await User.create(id="u-1", username="ada", email=text)

    assert (await User.get("u-1", consistent=True)).email == text
    assert user.version == 1


async def test_invalid_assignment_fails_before_any_request(db: dm.Session, sent: list[Any]) -> None:
    user = await User.create(id="u-1", username="ada")
    before = await raw_user(db, "u-1")
    sent.clear()

    with pytest.raises(ValidationError):
        user.role = "superuser"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        user.logins = "many"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        user.tags = "not a list"  # type: ignore[assignment]

    assert (user.role, user.logins, user.tags) == ("student", 0, [])
    assert sent == []
    await user.save()
    stored = await raw_user(db, "u-1")
    assert stored is not None
    assert before is not None
    assert stored["role"] == before["role"] == {"S": "student"}
    assert stored["logins"] == {"N": "0"}
