"""The embedded server applies each request atomically, as DynamoDB does.

moto's handlers are not thread-safe and its threaded server runs them side by side:
concurrent UpdateItems lost increments and version bumps, and a cancelled transaction
restored tables it had copied, erasing other transactions' writes. These tests start
``dynamodm.local.LocalServer`` directly (not the parametrised ``server`` fixture) and
send many concurrent requests at one item, or one unique value, and cancel them
mid-run. On the unserialised server each failed in most runs.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any
from uuid import uuid4

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm.local import LocalServer

REG = dm.Registry("local-atomic-tests")


class Counter(dm.Model):
    class Meta:
        table = "counters"
        registry = REG

    id: Annotated[str, dm.HashKey]
    n: int = 0
    version: Annotated[int, dm.Version] = 0


class Tally(dm.Model):
    class Meta:
        table = "tallies"
        registry = REG

    id: Annotated[str, dm.HashKey]
    n: int = 0


class Member(dm.Model):
    class Meta:
        table = "members"
        registry = REG
        unique = ("email",)

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    email: str


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _switch_threads_often() -> Iterator[None]:
    """Let the server's threads take turns every few microseconds instead of every 5 ms.

    Atomic handling must not depend on the scheduler; switching often makes an unsafe
    interleaving likely within a few hundred requests instead of rare."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.fixture
async def db(local_server: LocalServer) -> AsyncIterator[dm.Session]:
    async with dm.connect(
        endpoint_url=local_server.endpoint_url,
        region="us-east-1",
        table_prefix=f"t{uuid4().hex[:10]}-",
    ) as session:
        await session.create_tables(Counter, Tally, Member)
        try:
            yield session
        finally:
            await session.delete_tables(Counter, Tally, Member)


async def test_concurrent_upserts_on_a_versioned_model_each_add_one(db: dm.Session) -> None:
    results = await asyncio.gather(
        *(Counter.upsert("c", dm.attr(Counter.n).add(1)) for _ in range(50))
    )

    # Each upsert saw the item as the one before left it: no two answers alike.
    assert sorted(counter.n for counter in results) == list(range(1, 51))
    assert sorted(counter.version for counter in results) == list(range(1, 51))
    stored = await Counter.get("c", consistent=True)
    assert (stored.n, stored.version) == (50, 50)


async def test_concurrent_set_n_plus_one_updates_are_all_applied(db: dm.Session) -> None:
    await Tally.create(id="t")
    n = dm.attr(Tally.n)

    async def increment() -> int:
        tally = Tally(id="t")
        await tally.update(n.set(n + 1))
        return tally.n

    seen = await asyncio.gather(*(increment() for _ in range(250)))

    assert sorted(seen) == list(range(1, 251))
    assert (await Tally.get("t", consistent=True)).n == 250


async def _guards(db: dm.Session) -> list[dict[str, Any]]:
    """Every guard item, read raw from the guard table."""
    response = await db.client.scan(
        TableName=db.table_prefix + "dynamodm-unique", ConsistentRead=True
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


async def test_concurrent_creates_of_one_email_leave_one_member_and_its_guard(
    db: dm.Session,
) -> None:
    emails = [f"same{round_}@example.com" for round_ in range(5)]

    async def create(email: str) -> Member:
        return await Member.create(email=email)

    # Five emails, twenty creates each, all at once.
    results = await asyncio.gather(
        *(create(email) for email in emails for _ in range(20)), return_exceptions=True
    )

    created = [r for r in results if isinstance(r, Member)]
    refused = [r for r in results if isinstance(r, dm.UniqueViolation)]
    assert len(created) == len(emails) and len(refused) == 95, results
    assert sorted(m.email for m in created) == emails
    stored = await Member.scan(consistent=True).all()
    assert sorted((m.id, m.email) for m in stored) == sorted((m.id, m.email) for m in created)
    guarded = sorted(guard["pk"]["S"].rsplit("#S:", 1)[1] for guard in await _guards(db))
    assert guarded == emails


async def _members_and_guards(db: dm.Session) -> tuple[list[str], list[str]]:
    """The emails of the stored members and of the guards, each sorted."""
    items = await db.client.scan(TableName=db.table_name(Member), ConsistentRead=True)
    emails = sorted(item["email"]["S"] for item in items["Items"])
    guarded = sorted(guard["pk"]["S"].rsplit("#S:", 1)[1] for guard in await _guards(db))
    return emails, guarded


async def test_creates_cancelled_mid_run_leave_no_guard_without_its_member(
    db: dm.Session,
) -> None:
    tasks = [asyncio.create_task(Member.create(email=f"e{i % 10}@example.com")) for i in range(100)]
    # Cancel the rest as soon as one has been answered: many are then inside the server.
    await asyncio.wait(tasks, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert any(task.done() and not task.cancelled() for task in tasks)

    # The server finishes what it received; wait until two reads 100 ms apart agree.
    seen = await _members_and_guards(db)
    for _ in range(50):
        await asyncio.sleep(0.1)
        again = await _members_and_guards(db)
        if again == seen:
            break
        seen = again
    emails, guarded = seen
    assert emails == guarded
    assert len(set(emails)) == len(emails)
