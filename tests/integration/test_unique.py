"""Unique fields through a real local server: guard items written in the same
transaction as the item, kept in step on change and delete, invisible to the model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm import keys

REG = dm.Registry("unique-tests")
pytestmark = pytest.mark.moto_only(reason="dynalite has no transactions")
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


class User(dm.Model):
    class Meta:
        table = "users"
        registry = REG
        unique = ("email", "username")
        indexes = (dm.GlobalIndex("EmailIndex", hash_key="email"),)

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    username: str
    email: str
    role: str = "student"
    version: Annotated[int, dm.Version] = 0


class Visit(dm.Model):
    class Meta:
        table = "visits"
        registry = REG
        unique = ("email",)

    id: Annotated[str, dm.HashKey]
    email: str
    expires_at: Annotated[datetime | None, dm.TTL] = None


class Badge(dm.Model):
    class Meta:
        table = "badges"
        registry = REG
        unique = ("number",)

    id: Annotated[str, dm.HashKey]
    number: Decimal


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(User, Visit, Badge)


async def guards(db: dm.Session) -> list[dict[str, Any]]:
    """Every guard item, read raw from the guard table."""
    response = await db.client.scan(
        TableName=db.table_prefix + "dynamodm-unique", ConsistentRead=True
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


async def guarded_values(db: dm.Session) -> set[str]:
    return {g["pk"]["S"].split("#", 2)[2] for g in await guards(db)}


# ---------------------------------------------------------------- create


async def test_create_refuses_a_taken_email(db: dm.Session) -> None:
    first = await User.create(username="ada", email="ada@example.com")

    with pytest.raises(dm.UniqueViolation) as caught:
        await User.create(username="ada2", email="ada@example.com")

    assert isinstance(caught.value, dm.ConditionFailed)
    assert (caught.value.field, caught.value.value) == ("email", "ada@example.com")
    assert [u.id for u in await User.scan().all()] == [first.id]
    assert await guarded_values(db) == {"S:ada@example.com", "S:ada"}


async def test_create_refuses_a_taken_username(db: dm.Session) -> None:
    await User.create(username="ada", email="ada@example.com")

    with pytest.raises(dm.UniqueViolation) as caught:
        await User.create(username="ada", email="other@example.com")

    assert (caught.value.field, caught.value.value) == ("username", "ada")
    assert await User.scan().count() == 1
    assert "S:other@example.com" not in await guarded_values(db)


async def test_create_refuses_an_existing_key_without_touching_guards(db: dm.Session) -> None:
    await User.create(id="u1", username="ada", email="ada@example.com")

    with pytest.raises(dm.AlreadyExists):
        await User.create(id="u1", username="bob", email="bob@example.com")

    assert await guarded_values(db) == {"S:ada@example.com", "S:ada"}


# ---------------------------------------------------------------- change and delete


async def test_save_with_a_new_email_frees_the_old_one_and_takes_the_new(
    db: dm.Session,
) -> None:
    user = await User.create(username="ada", email="old@example.com")
    user.email = "new@example.com"
    await user.save()

    assert await guarded_values(db) == {"S:new@example.com", "S:ada"}
    other = await User.create(username="bob", email="old@example.com")
    with pytest.raises(dm.UniqueViolation):
        await User.create(username="cy", email="new@example.com")
    assert (await User.get_by(email="old@example.com")).id == other.id
    assert (await User.get_by(email="new@example.com")).id == user.id


async def test_update_of_a_unique_field_moves_its_guard(db: dm.Session) -> None:
    user = await User.create(username="ada", email="old@example.com")
    await user.update(email="new@example.com", role="admin")

    assert user.email == "new@example.com"
    assert await guarded_values(db) == {"S:new@example.com", "S:ada"}
    await User.create(username="bob", email="old@example.com")
    with pytest.raises(dm.UniqueViolation) as caught:
        await user.update(email="old@example.com")
    assert caught.value.field == "email"
    assert (await User.get(user.id)).email == "new@example.com"


async def test_saving_without_changing_unique_fields_keeps_the_guards(db: dm.Session) -> None:
    user = await User.create(username="ada", email="ada@example.com")
    before = await guards(db)
    user.role = "teacher"
    await user.save()

    assert await guards(db) == before
    assert (await User.get(user.id)).role == "teacher"


async def test_delete_frees_the_values(db: dm.Session) -> None:
    user = await User.create(username="ada", email="ada@example.com")
    await user.delete()

    assert await guards(db) == []
    again = await User.create(username="ada", email="ada@example.com")
    assert (await User.get_by(username="ada")).id == again.id


async def test_delete_key_frees_the_values(db: dm.Session) -> None:
    user = await User.create(username="ada", email="ada@example.com")
    await User.delete_key(user.id)

    assert await guards(db) == []
    assert await User.get_or_none(user.id) is None
    await User.create(username="ada", email="ada@example.com")


async def test_delete_in_a_transaction_frees_the_values(db: dm.Session) -> None:
    user = await User.create(username="ada", email="ada@example.com")
    async with dm.transaction() as tx:
        tx.delete(user)
    assert await guards(db) == []


async def test_an_equal_number_written_differently_keeps_its_guard(db: dm.Session) -> None:
    await Badge.create(id="b1", number=Decimal("1.5"))
    badge = await Badge.get("b1")
    badge.number = Decimal("1.50")
    await badge.save()  # the same number: no guard to move

    assert await guarded_values(db) == {"N:1.5"}
    with pytest.raises(dm.UniqueViolation):
        await Badge.create(id="b2", number=Decimal("15E-1"))
    assert (await Badge.get_by(number=Decimal("1.500"))).id == "b1"


# ---------------------------------------------------------------- reads


async def test_get_by_reads_through_the_guard(db: dm.Session) -> None:
    user = await User.create(username="ada", email="ada@example.com")
    await User.create(username="bob", email="bob@example.com")

    assert await User.get_by(email="ada@example.com") == user
    assert (await User.get_by(username="bob")).email == "bob@example.com"
    with pytest.raises(dm.NotFound):
        await User.get_by(email="nobody@example.com")
    with pytest.raises(dm.UsageError, match="not a unique field"):
        await User.get_by(role="student")
    with pytest.raises(dm.UsageError, match="exactly one"):
        await User.get_by(email="ada@example.com", username="ada")


async def test_get_by_ignores_a_guard_whose_item_holds_another_value(db: dm.Session) -> None:
    user = await User.create(username="ada", email="ada@example.com")
    # A write around the library leaves the guard stale.
    await db.client.update_item(
        TableName=db.table_name(User),
        Key={"id": {"S": user.id}},
        UpdateExpression="SET email = :e",
        ExpressionAttributeValues={":e": {"S": "changed@example.com"}},
    )

    with pytest.raises(dm.NotFound):
        await User.get_by(email="ada@example.com")


async def test_guards_never_appear_in_the_models_reads(db: dm.Session) -> None:
    users = [await User.create(username=f"u{i}", email=f"u{i}@example.com") for i in range(3)]

    assert len(await guards(db)) == 6  # they exist, in their own table
    assert await User.scan().count() == 3
    assert {u.id for u in await User.scan().all()} == {u.id for u in users}
    assert await User.query(users[0].id).count() == 1
    assert [u.id for u in await User.query("u1@example.com", index="EmailIndex").all()] == [
        users[1].id
    ]
    assert db.names.guard in await db.list_tables()
    assert (await db.describe_table(User)).item_count in (0, 3)  # moto may lag; never 9


# ---------------------------------------------------------------- expiry


async def test_guards_expire_with_their_item(db: dm.Session) -> None:
    visit = await Visit.create(id="v1", email="a@example.com", expires_at=EXPIRES)
    epoch = str(int(EXPIRES.timestamp()))

    (guard,) = await guards(db)
    assert guard["expires"] == {"N": epoch}
    assert guard["owner"]["S"] == keys.key_text({"id": {"S": "v1"}})

    visit.email = "b@example.com"
    await visit.save()
    (guard,) = await guards(db)
    assert guard["pk"]["S"].endswith("S:b@example.com")
    assert guard["expires"] == {"N": epoch}

    await Visit.create(id="v2", email="c@example.com")
    assert [
        g.get("expires") for g in await guards(db) if g["pk"]["S"].endswith("c@example.com")
    ] == [None]


async def test_a_new_expiry_is_carried_to_the_guards(db: dm.Session) -> None:
    visit = await Visit.create(id="v1", email="a@example.com", expires_at=EXPIRES)
    later = EXPIRES.replace(year=2031)

    visit.expires_at = later
    await visit.save()
    (guard,) = await guards(db)
    assert guard["expires"] == {"N": str(int(later.timestamp()))}

    visit.expires_at = None
    await visit.save()
    (guard,) = await guards(db)
    assert "expires" not in guard


async def test_update_of_a_unique_field_keeps_the_expiry(db: dm.Session) -> None:
    visit = await Visit.create(id="v1", email="a@example.com", expires_at=EXPIRES)
    await visit.update(email="b@example.com")

    (guard,) = await guards(db)
    assert guard["expires"] == {"N": str(int(EXPIRES.timestamp()))}


async def test_update_of_the_expiry_is_carried_to_the_guards(db: dm.Session) -> None:
    visit = await Visit.create(id="v1", email="a@example.com", expires_at=EXPIRES)
    later = EXPIRES.replace(year=2031)
    await visit.update(expires_at=later)

    (guard,) = await guards(db)
    assert guard["expires"] == {"N": str(int(later.timestamp()))}


# ---------------------------------------------------------------- concurrency


async def test_twenty_concurrent_creates_of_one_email_leave_exactly_one(db: dm.Session) -> None:
    async def create(i: int) -> dm.Model:
        return await User.create(username=f"user{i}", email="same@example.com")

    results = await asyncio.gather(*(create(i) for i in range(20)), return_exceptions=True)

    created = [r for r in results if isinstance(r, User)]
    refused = [r for r in results if isinstance(r, dm.UniqueViolation | dm.TransactionCanceled)]
    assert len(created) == 1 and len(refused) == 19, results
    (stored,) = await User.scan().all()
    assert stored.id == created[0].id
    assert (await User.get_by(email="same@example.com")).id == stored.id
    assert await guarded_values(db) == {"S:same@example.com", "S:" + stored.username}
