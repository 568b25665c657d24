"""dynamodm quickstart: the whole item API against a local DynamoDB, in a few seconds.

Run it with ``./scripts/demo``, or ``python examples/quickstart.py``. It starts the
embedded server (moto, on a free loopback port) unless ``DYNAMODB_ENDPOINT_URL``
names a running one, creates its tables under a fresh prefix, and deletes them at
the end. Every step checks its own result: a wrong answer stops the script with a
message and a non-zero exit status.
"""

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, Model
from dynamodm.local import LocalServer


class User(Model):
    class Meta:
        table = "users"  # physical name: table_prefix + "users"
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
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")
    version: Annotated[int, dm.Version] = 0
    expires_at: Annotated[datetime | None, dm.TTL] = None  # epoch seconds on the wire


class Content(Model):
    class Meta:
        table = "content"
        indexes = (GlobalIndex("OwnerIndex", hash_key="owner", range_key="created_at"),)

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    owner: str
    title: str
    content_type: Literal["text", "pdf", "video"] = Field(default="text", alias="contentType")
    status: Literal["processing", "ready"] = "processing"
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")


def check(ok: bool, wrong: str) -> None:
    """Stop the demo when a result is not what the API promises."""
    if not ok:
        raise SystemExit(f"quickstart FAILED: {wrong}")


def step(name: str, text: str) -> None:
    print(f"  {name:<13} {text}")


async def tour(endpoint_url: str) -> None:
    prefix = f"quickstart-{dm.new_id()[:8]}-"
    async with dm.connect(endpoint_url=endpoint_url, table_prefix=prefix) as db:
        created = await db.create_tables()  # every model in the registry; idempotent
        try:
            await items(db, created)
        finally:
            deleted = await db.delete_tables()
        remaining = set(await db.list_tables()) & set(deleted)
        check(not remaining, f"tables left after delete_tables: {sorted(remaining)}")
        step("delete_tables", ", ".join(deleted))


async def items(db: dm.Session, created: list[str]) -> None:
    users_table, content_table = db.table_name(User), db.table_name(Content)
    check(
        {users_table, content_table} <= set(created),
        f"create_tables returned {created}, expected {users_table} and {content_table}",
    )
    step("create_tables", ", ".join(created))

    # -- create: validated by Pydantic, stored with a condition that the key is new
    ada = await User.create(
        username="ada",
        email="ada@example.com",
        expires_at=datetime.now(UTC) + timedelta(days=30),
    )
    check(ada.version == 1, f"a new item stores version 1, got {ada.version}")
    check(ada.created_at.tzinfo is not None, "CreatedAt must be filled in UTC")
    step("create", f"User {ada.username!r} id={ada.id} role={ada.role} version={ada.version}")

    # The wire form, through the raw aioboto3 client: aliases and epoch-second TTL.
    raw = (await db.client.get_item(TableName=users_table, Key={"id": {"S": ada.id}}))["Item"]
    expires = ada.expires_at
    check(expires is not None and expires.microsecond == 0, "TTL values keep whole seconds")
    check(
        expires is not None and raw.get("expires_at") == {"N": str(int(expires.timestamp()))},
        f"expires_at should be epoch seconds (N) on the wire, got {raw.get('expires_at')}",
    )
    check(
        "createdAt" in raw and "created_at" not in raw and raw["createdAt"]["S"].endswith("Z"),
        f"created_at should travel as the alias createdAt, a UTC string; got {sorted(raw)}",
    )
    step("on the wire", f"createdAt={raw['createdAt']['S']} expires_at={raw['expires_at']['N']}")

    # -- get / get_or_none
    fetched = await User.get(ada.id, consistent=True)
    check(fetched == ada, f"get returned {fetched!r}, expected {ada!r}")
    step("get", f"read {fetched.username!r} back, equal to the created instance")
    missing = await User.get_or_none("no-such-user")
    check(missing is None, f"get_or_none on a missing key returned {missing!r}")
    step("get_or_none", "'no-such-user' -> None")
    try:
        await User.get("no-such-user")
    except dm.NotFound as error:
        step("get", f"'no-such-user' -> NotFound: {error}")
    else:
        raise SystemExit("quickstart FAILED: get on a missing key must raise NotFound")

    # -- update: one UpdateItem from actions and keywords; the instance is refreshed
    before = ada.updated_at
    await ada.update(
        dm.attr(User.logins).add(1),
        dm.attr(User.tags).append(["math"]),
        role="admin",
    )
    check(
        (ada.logins, ada.tags, ada.role, ada.version) == (1, ["math"], "admin", 2),
        f"after update: logins={ada.logins} tags={ada.tags} role={ada.role} v={ada.version}",
    )
    check(ada.updated_at > before, "update must re-stamp UpdatedAt")
    step(
        "update",
        f"logins+1, tags+['math'], role='admin' -> logins={ada.logins} tags={ada.tags} "
        f"role={ada.role} version={ada.version}",
    )

    # -- a conditional update whose condition does not hold: nothing is written
    is_student = User.role == "student"
    try:
        await ada.update(condition=is_student, role="teacher")
    except dm.ConditionFailed as error:
        check(type(error) is dm.ConditionFailed, f"expected ConditionFailed, got {error!r}")
        stored = error.item
        check(
            isinstance(stored, User) and stored.role == "admin",
            f"ConditionFailed.item should be the stored item (role admin), got {stored!r}",
        )
        step("update", f"condition role == 'student' refused: {type(error).__name__}: {error}")
    else:
        raise SystemExit("quickstart FAILED: the conditional update should have been refused")
    check(ada.role == "admin" and ada.version == 2, "a refused update must not change the item")

    # A condition that holds, and arithmetic on an attribute.
    await ada.update(
        dm.attr(User.score).set(dm.attr(User.score) + 5),
        condition=User.role == "admin",
    )
    check((ada.score, ada.version) == (5, 3), f"score={ada.score} version={ada.version}")
    step("update", f"condition role == 'admin' held: score = score + 5 -> {ada.score}")

    # -- save: the whole item, conditional on the version it was read at
    stale = await User.get(ada.id, consistent=True)
    ada.username = "ada.lovelace"
    await ada.save()
    check(ada.version == 4, f"save should store version 4, got {ada.version}")
    step("save", f"username -> {ada.username!r}, version {ada.version}")
    stale.email = "someone.else@example.com"
    try:
        await stale.save()
    except dm.VersionConflict as error:
        check(
            isinstance(error.item, User) and error.item.version == 4,
            f"VersionConflict.item should be the stored item at version 4, got {error.item!r}",
        )
        step("save", f"stale copy (version 3) refused: VersionConflict: {error}")
    else:
        raise SystemExit("quickstart FAILED: saving a stale copy must raise VersionConflict")
    stored = await User.get(ada.id, consistent=True)
    check(stored.email == "ada@example.com", "a refused save must not write anything")

    # -- create refuses an existing key
    try:
        await User.create(id=ada.id, username="impostor", email="impostor@example.com")
    except dm.AlreadyExists as error:
        owner = error.item.username if isinstance(error.item, User) else None
        check(owner == "ada.lovelace", f"AlreadyExists.item should be ada's item, got {owner!r}")
        step("create", f"same id again refused: AlreadyExists: {error}")
    else:
        raise SystemExit("quickstart FAILED: create on an existing key must raise AlreadyExists")

    # -- upsert: create-or-update by key
    grace = await User.upsert("u-grace", username="grace", email="grace@example.com")
    check(
        (grace.id, grace.username, grace.logins, grace.version) == ("u-grace", "grace", 0, 1),
        f"upsert should create grace at version 1, got {grace!r}",
    )
    step("upsert", f"created {grace.id!r} (version {grace.version})")
    grace = await User.upsert("u-grace", dm.attr(User.logins).add(1))
    check(
        (grace.username, grace.logins, grace.version) == ("grace", 1, 2),
        f"upsert should update grace to logins=1 version 2, got {grace!r}",
    )
    step("upsert", f"updated {grace.id!r}: logins={grace.logins} version={grace.version}")

    # -- a second model, with a global secondary index
    notes = await Content.create(owner=ada.id, title="Calculus notes", status="ready")
    check(await Content.get(notes.id, consistent=True) == notes, "Content should read back equal")
    step("create", f"Content {notes.title!r} owned by {notes.owner}")

    # -- delete and delete_key
    await notes.delete()
    check(await Content.get_or_none(notes.id, consistent=True) is None, "notes still exist")
    step("delete", f"Content {notes.id} deleted")
    await User.delete_key("u-grace")
    check(await User.get_or_none("u-grace", consistent=True) is None, "u-grace still exists")
    step("delete_key", "'u-grace' deleted")
    await ada.delete()
    check(await User.get_or_none(ada.id, consistent=True) is None, "ada still exists")
    step("delete", f"User {ada.id} deleted")

    # -- describe_table
    users = await db.describe_table(User)
    check(users.name == users_table, f"describe_table named {users.name}")
    check(users.status == "ACTIVE", f"table status {users.status}")
    check(
        set(users.indexes) == {"EmailIndex", "UsernameIndex"},
        f"User's indexes are {sorted(users.indexes)}",
    )
    check(
        users.ttl_attribute in ("expires_at", None),  # None: a local server without TTL
        f"TTL attribute {users.ttl_attribute!r}",
    )
    content = await db.describe_table(Content)
    check(set(content.indexes) == {"OwnerIndex"}, f"Content's indexes: {sorted(content.indexes)}")
    step(
        "describe",
        f"{users.name}: {users.status}, indexes {sorted(users.indexes)}, "
        f"TTL on {users.ttl_attribute}",
    )


async def main() -> None:
    print("dynamodm quickstart")
    endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if endpoint_url:
        step("server", f"{endpoint_url} (from DYNAMODB_ENDPOINT_URL)")
        await tour(endpoint_url)
    else:
        async with LocalServer() as server:
            step("server", f"embedded moto at {server.endpoint_url}")
            await tour(server.endpoint_url)
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
