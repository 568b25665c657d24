"""Defects found against a stand-in for the real service and by attacking the library
(the production issue): each test here failed before its fix."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import Field, field_validator

import dynamodm as dm
from tests.servers import ServerHandle

REG = dm.Registry("production-tests")


class Member(dm.Model):
    class Meta:
        table = "members"
        registry = REG
        unique = ("email",)

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    email: str
    version: Annotated[int, dm.Version] = 0

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class Tagged(dm.Model):
    class Meta:
        table = "tagged"
        registry = REG
        indexes = (dm.GlobalIndex("ByTag", hash_key="tag"),)

    id: Annotated[str, dm.HashKey]
    tag: str | None = None
    n: int = 0


class Ledger(dm.Model):
    class Meta:
        table = "ledger"
        registry = REG

    account: Annotated[str, dm.HashKey]
    at: Annotated[int, dm.RangeKey]
    amount: int = 0
    version: Annotated[int, dm.Version] = 0


@pytest.fixture
async def tables(db: dm.Session) -> dm.Session:
    await db.create_tables(*REG.models)
    return db


# ------------------------------------------------------- 12: unique values follow validators


@pytest.mark.moto_only(reason="dynalite has no transactions (unique guards)")
async def test_update_claims_the_guard_of_the_validated_value(tables: dm.Session) -> None:
    ada = await Member.create(email="ada@x.org")
    await ada.update(email="  Ada@Example.ORG ")
    assert ada.email == "ada@example.org"
    found = await Member.get_by(email="ada@example.org")
    assert found.id == ada.id
    with pytest.raises(dm.UniqueViolation):
        await Member.create(email="ada@example.org")
    # The old value was released.
    assert (await Member.create(email="ada@x.org")).email == "ada@x.org"


@pytest.mark.moto_only(reason="dynalite has no transactions (unique guards)")
async def test_transaction_update_claims_the_guard_of_the_validated_value(
    tables: dm.Session,
) -> None:
    bob = await Member.create(email="bob@x.org")
    async with dm.transaction() as tx:
        tx.update(bob, email="BOB@Example.org")
    assert bob.email == "bob@example.org"
    assert (await Member.get_by(email="bob@example.org")).id == bob.id
    with pytest.raises(dm.UniqueViolation):
        await Member.create(email="Bob@example.org")


# ---------------------------------------------------------------- 17: another thread's session


async def test_a_session_of_another_threads_loop_is_never_the_fallback(
    server: ServerHandle, db: dm.Session
) -> None:
    await db.create_tables(Tagged)
    opened = threading.Event()
    stop = threading.Event()

    def other_thread() -> None:
        async def hold() -> None:
            async with dm.connect(endpoint_url=server.endpoint_url, region="us-east-1"):
                opened.set()
                await asyncio.to_thread(stop.wait, 10)

        asyncio.run(hold())

    worker = threading.Thread(target=other_thread, daemon=True)
    worker.start()
    try:
        assert opened.wait(10)

        # A task that does not inherit this test's context (as a server's request handler
        # would not) falls back to the latest session open on *this* loop.
        async def handler(i: int) -> int:
            await Tagged(id=f"t-{i}").save()
            return (await Tagged.get(f"t-{i}")).n

        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.create_task(handler(i), context=contextvars.Context()) for i in range(20))
        )
        assert results == [0] * 20
    finally:
        stop.set()
        worker.join(10)


# ---------------------------------------------------------------- 20: closing with calls in flight


async def test_closing_a_session_lets_calls_in_flight_finish(server: ServerHandle) -> None:
    session = dm.connect(endpoint_url=server.endpoint_url, region="us-east-1")
    await session.open()
    await session.create_tables(Tagged)
    calls = [asyncio.ensure_future(Tagged(id=f"c-{i}").save(session=session)) for i in range(50)]
    await asyncio.sleep(0)  # let them start
    await session.close()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        assert outcome is None or isinstance(outcome, dm.DynamoDMError), repr(outcome)
    assert not any(isinstance(o, asyncio.CancelledError | RuntimeError) for o in outcomes)
    with pytest.raises(dm.ConfigurationError, match="closed"):
        await Tagged.get("c-1", session=session)


# ---------------------------------------------------------------- 21: empty index keys


async def test_empty_index_key_values_are_refused_on_every_update_path(tables: dm.Session) -> None:
    item = Tagged(id="e-1", tag="a")
    await item.save()
    with pytest.raises(dm.UsageError, match="tag"):
        await item.update(tag="")
    with pytest.raises(dm.UsageError, match="tag"):
        await Tagged.upsert("e-2", tag="")
    with pytest.raises(dm.UsageError, match="tag"):
        await item.update(dm.attr(Tagged.tag).set(""))
    assert (await Tagged.get("e-1")).tag == "a"
    assert await Tagged.get_or_none("e-2") is None


# ---------------------------------------------------------------- 22: forged cursors


async def test_a_cursor_outside_the_range_condition_is_refused_before_sending(
    tables: dm.Session,
) -> None:
    for at in range(10):
        await Ledger(account="a", at=at).save()
    query = Ledger.query("a", Ledger.at >= 5)
    page = await query.page(size=2)
    assert [e.at for e in page.items] == [5, 6] and page.cursor
    # A cursor of this query whose start key lies below the range: forged with the
    # session's key (by default a public one), so the signature holds and the range not.
    forged = query._encode_cursor({"account": {"S": "a"}, "at": {"N": "1"}}, tables.cursor_key)
    with pytest.raises(dm.InvalidCursor, match="range"):
        await query.page(cursor=forged, size=2)


# ---------------------------------------------------------------- 23: the right error


async def test_a_failed_user_condition_on_an_unmoved_version_is_condition_failed(
    tables: dm.Session,
) -> None:
    entry = await Ledger.create(account="b", at=1, amount=5)
    # Another writer changes the amount without touching the version (a raw request),
    # to a value this model cannot read.
    table = tables.table_name(Ledger)
    await tables.client.update_item(
        TableName=table,
        Key={"account": {"S": "b"}, "at": {"N": "1"}},
        UpdateExpression="SET amount = :a",
        ExpressionAttributeValues={":a": {"S": "lots"}},
    )
    with pytest.raises(dm.ConditionFailed) as caught:
        await entry.update(amount=6, condition=Ledger.amount == 5)
    assert type(caught.value) is dm.ConditionFailed
    assert "version" not in str(caught.value)


# ---------------------------------------------------------------- 24: sets that collapse


class Bag(dm.Model):
    class Meta:
        table = "bags"
        registry = REG

    id: Annotated[str, dm.HashKey]
    numbers: set[Decimal | float] = set()


async def test_a_set_whose_values_encode_alike_is_refused(tables: dm.Session) -> None:
    await tables.create_tables(Bag)
    with pytest.raises(dm.UsageError, match="numbers"):
        await Bag(id="b", numbers={0.1, Decimal("0.1")}).save()
    assert await Bag.get_or_none("b") is None


# ---------------------------------------------------------------- 26: batch_get names the table


async def test_batch_get_of_a_missing_table_names_it(db: dm.Session) -> None:
    with pytest.raises(dm.TableNotFound) as caught:
        await Tagged.batch_get(["x"])
    assert db.table_name(Tagged) in str(caught.value)


# ---------------------------------------------------------------- 19: batch_write backpressure


async def test_batch_write_holds_a_bounded_number_of_requests_and_items(
    tables: dm.Session,
) -> None:
    import tracemalloc

    from dynamodm import batch as batch_module

    limit = getattr(batch_module, "MAX_QUEUED", 16)
    most_queued = 0
    sizes: dict[int, int] = {}
    tracemalloc.start()
    try:
        async with dm.batch_write() as batch:
            for i in range(4000):
                await batch.put(Tagged(id=f"b-{i:05d}", n=i))
                queued = sum(1 for r in batch._inflight if r.task and not r.task.done())
                most_queued = max(most_queued, queued)
                if i in (1000, 3999):
                    # The client's allocations (moto serves in this process and stores).
                    snapshot = tracemalloc.take_snapshot().filter_traces(
                        [
                            tracemalloc.Filter(True, pattern)
                            for pattern in ("*dynamodm*", "*pydantic*", "*aiohttp*", "*asyncio*")
                        ]
                        + [tracemalloc.Filter(True, __file__)]
                    )
                    sizes[i] = sum(stat.size for stat in snapshot.statistics("filename"))
    finally:
        tracemalloc.stop()
    assert batch.written == 4000 and batch.failed == []
    assert most_queued <= limit
    # 3,000 more items may not cost memory in proportion (each instance and its encoded
    # item is well over 300 bytes).
    assert sizes[3999] - sizes[1000] < 3000 * 300, sizes
    assert await Tagged.query("x", index="ByTag").count() == 0
    assert len(await Tagged.batch_get([f"b-{i:05d}" for i in range(0, 4000, 97)])) == 42


# ---------------------------------------------------------------- 26: swapping unique values


@pytest.mark.moto_only(reason="dynalite has no transactions (unique guards)")
async def test_two_items_swap_unique_values_in_one_transaction(tables: dm.Session) -> None:
    first = await Member.create(email="first@x.org")
    second = await Member.create(email="second@x.org")
    async with dm.transaction() as tx:
        tx.update(first, email="second@x.org")
        tx.update(second, email="first@x.org")
    assert (await Member.get_by(email="second@x.org")).id == first.id
    assert (await Member.get_by(email="first@x.org")).id == second.id
    for taken in ("first@x.org", "second@x.org"):
        with pytest.raises(dm.UniqueViolation):
            await Member.create(email=taken)


@pytest.mark.moto_only(reason="dynalite has no transactions (unique guards)")
async def test_two_claims_of_one_value_in_a_transaction_name_the_unique_field(
    tables: dm.Session,
) -> None:
    first = await Member.create(email="one@x.org")
    second = await Member.create(email="two@x.org")
    with pytest.raises(dm.UsageError, match=r"unique field Member\.email"):
        async with dm.transaction() as tx:
            tx.update(first, email="three@x.org")
            tx.update(second, email="three@x.org")
    assert (await Member.get_by(email="one@x.org")).id == first.id
