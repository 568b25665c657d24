"""User code written against API.md sections 1-3 and 5, checked by ``mypy --strict``.

The async functions below are never called: they exist to be type-checked. Their
names do not start with ``test_``, so pytest imports this module (declarations
only, no I/O) without collecting them. The models declare their own registry
(``Meta.registry``) so that they stay out of ``dm.registry``.

A ``# type: ignore[code]`` below marks a line mypy must reject; mypy's
``warn_unused_ignores`` (part of --strict) fails the run if it ever stops
rejecting it.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, assert_type

from pydantic import BaseModel, Field

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, LocalIndex, Model, RangeKey

TYPING = dm.Registry("typing")


# ---------------------------------------------------------------- 1. declaring models


class User(Model):
    class Meta:
        table = "users"
        registry = TYPING
        indexes = (
            GlobalIndex("EmailIndex", hash_key="email"),
            GlobalIndex("UsernameIndex", hash_key="username"),
        )

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    username: str
    email: str
    role: Literal["student", "teacher", "admin"] = "student"
    logins: int = 0
    score: int = 0
    tags: list[str] = []
    badges: set[str] = set()
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")
    version: Annotated[int, dm.Version] = 0
    expires_at: Annotated[datetime | None, dm.TTL] = None


class Owned(Model):
    """A base model with shared fields and no table."""

    class Meta:
        abstract = True

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    owner: str
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")


class Content(Owned):
    class Meta:
        table = "content"
        registry = TYPING
        indexes = (GlobalIndex("OwnerIndex", hash_key="owner", range_key="created_at"),)
        billing = dm.Provisioned(read=5, write=5)
        stream = "NEW_AND_OLD_IMAGES"

    title: str
    status: Literal["processing", "ready"] = "processing"


class Attendance(Model):
    class Meta:
        table = "attendance"
        registry = TYPING
        indexes = (LocalIndex("ByStatus", range_key="status", projection="KEYS_ONLY"),)

    student: Annotated[str, HashKey]
    at: Annotated[datetime, RangeKey]
    status: str = "present"


class UserOut(BaseModel):
    """A plain Pydantic response model built from a dynamodm model."""

    id: str
    username: str


# ---------------------------------------------------------------- 2. connecting


async def connecting() -> None:
    async with dm.connect(
        region="us-east-1",
        endpoint_url=None,
        table_prefix="ai-study-circle-",
    ) as db:
        assert_type(db, dm.Session)
        assert_type(await db.create_tables(), list[str])
        assert_type(await db.create_tables(User, Content), list[str])
        description = await db.describe_table(User)
        assert_type(description, dm.TableDescription)
        assert_type(description.status, str)
        assert_type(description.item_count, int)
        assert_type(description.indexes, dict[str, str])
        assert_type(await db.list_tables(), list[str])
        assert_type(db.table_name(User), str)
        assert_type(db.table_prefix, str)
        assert_type(db.client, Any)
        assert_type(await db.delete_tables(Content), list[str])

    session = dm.connect(retry=dm.RetryPolicy(max_attempts=3), read_timeout=5.0)
    assert_type(session, dm.Session)
    dm.connect(table_prefix=3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- 3. items


async def items(db: dm.Session) -> None:
    user = await User.create(username="ada", email="ada@example.com")
    assert_type(user, User)
    assert_type(await User.get("u-1"), User)
    assert_type(await User.get("u-1", consistent=True, session=db), User)
    assert_type(await User.get_or_none("u-1"), User | None)
    rec = await Attendance.get("john", datetime(2025, 12, 1, 9, tzinfo=UTC))
    assert_type(rec, Attendance)
    assert_type(rec.at, datetime)

    assert_type(user.id, str)
    assert_type(user.created_at, datetime)
    assert_type(user.version, int)
    assert_type(user.expires_at, datetime | None)
    user.role = "teacher"
    user.role = "boss"  # type: ignore[assignment]
    user.expires_at = datetime.now(UTC) + timedelta(days=30)

    assert_type(await user.save(), None)
    await user.save(condition=User.role == "student")
    await user.save(session=db)
    await user.update(
        dm.attr(User.logins).add(1),
        dm.attr(User.tags).append(["math"]),
        role="admin",
    )
    await user.update(condition=User.role == "student", role="admin")
    await user.update(dm.attr(User.score).set(dm.attr(User.score) + 5))
    await user.update(dm.attr(User.score).set(dm.attr(User.score) - 1))
    await user.update(
        dm.attr(User.tags).prepend(["first"]),
        dm.attr(User.badges).add({"early"}),
        dm.attr(User.expires_at).remove(),
    )
    await user.update(dm.attr(User.badges).delete({"early"}))
    await user.update(dm.attr(User.tags)[0].set("zero"), dm.attr(User.logins).set_if_not_exists(0))
    await user.update(expires_at=None)
    await user.update(role="admin", session=db)

    await user.delete()
    await user.delete(condition=User.logins > 3)
    assert_type(await User.delete_key("u-1"), None)
    await User.delete_key("u-1", condition=User.role != "admin", session=db)

    upserted = await User.upsert("u-2", dm.attr(User.logins).add(1), username="grace")
    assert_type(upserted, User)
    assert_type(await Attendance.upsert(("john", datetime.now(UTC)), status="late"), Attendance)

    content = await Content.create(owner=user.id, title="Calculus")
    assert_type(content, Content)
    assert_type(content.owner, str)

    out = UserOut.model_validate(user.model_dump())
    assert_type(out, UserOut)
    assert_type(user.model_dump(by_alias=True), dict[str, Any])
    assert_type(user.key(), dict[str, Any])
    assert_type(user.extra_attributes, dict[str, Any])


def typed_spellings() -> None:
    """Class attributes are values to mypy; dm.attr() is the typed path."""
    assert_type(User.logins, int)
    assert_type(dm.attr(User.logins), dm.Path[int])
    assert_type(dm.attr(User.tags), dm.Path[list[str]])
    assert_type(dm.attr(User.logins).add(1), dm.Action)
    dm.attr(User.score).set("five")  # type: ignore[arg-type]
    assert_type(dm.attr(User.role) == "admin", dm.Condition)
    assert_type(dm.attr(User.score) > 3, dm.Condition)


# ---------------------------------------------------------------- conditions


async def conditions(user: User) -> None:
    is_student = User.role == "student"
    assert_type(is_student, bool)
    high = (User.score > 10) & (User.logins >= 3)
    either = (User.role == "admin") | (User.score <= 0)
    await user.save(condition=is_student)
    await user.update(condition=high | either, role="teacher")
    await user.delete(condition=(User.email != "x@example.com") & (User.score < 100))

    # The typed spelling: real Condition objects, negation included.
    typed = ~(dm.attr(User.role) == "admin") & (dm.attr(User.score) > 10)
    assert_type(typed, dm.Condition)
    await user.update(condition=typed | (dm.attr(User.logins) == 0), score=0)

    # `~` on a class-attribute condition: mypy types `~bool` as int, which
    # `condition=` (dm.ConditionLike) accepts.
    await user.save(condition=~(User.role == "student"))


# ---------------------------------------------------------------- 5. errors and versions


async def errors(user: User) -> None:
    try:
        await User.get("missing")
    except dm.NotFound as error:
        assert_type(error.key, Any)
        assert_type(error.code, str | None)

    try:
        await User.create(id=user.id, username="ada", email="ada@example.com")
    except dm.AlreadyExists as error:
        assert_type(error.item, Any)

    stale = await User.get(user.id)
    await user.update(dm.attr(User.logins).add(1))
    try:
        await stale.save()
    except dm.VersionConflict as error:
        assert_type(error.item, Any)
        assert_type(error.service_message, str | None)

    try:
        await user.update(condition=User.role == "student", role="admin")
    except dm.ConditionFailed as error:
        stored = error.item
        if isinstance(stored, User):
            assert_type(stored.role, Literal["student", "teacher", "admin"])
    except dm.DynamoDMError as error:
        assert_type(error.code, str | None)

    try:
        await user.save()
    except (dm.OutcomeUnknown, dm.RequestTimeout, dm.ConnectionFailed, dm.Throttled):
        pass
    except (dm.TableNotFound, dm.ItemTooLarge, dm.ConfigurationError, dm.UsageError):
        pass


# ---------------------------------------------------------------- under pytest


def test_models_register_in_meta_registry() -> None:
    assert set(TYPING) == {User, Content, Attendance}
    assert User not in dm.registry


def test_typed_spellings_build_expressions() -> None:
    """At runtime the class attributes are paths and the conditions are objects (no I/O)."""
    conditions = [
        User.role == "student",
        (User.score > 10) & (User.logins >= 3),
        ~(dm.attr(User.role) == "admin") | (dm.attr(User.score) > 10),
    ]
    assert all(isinstance(c, dm.Condition) for c in conditions)
    actions = [
        dm.attr(User.logins).add(1),
        dm.attr(User.tags).append(["math"]),
        dm.attr(User.score).set(dm.attr(User.score) + 5),
    ]
    assert all(isinstance(a, dm.Action) for a in actions)
