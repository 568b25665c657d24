"""Batches through a real local server: batch_get of any number of keys, batch_write of
any number of puts and deletes, checked against the requests actually sent."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import pytest

import dynamodm as dm

Sent = list[tuple[str, dict[str, Any]]]
REG = dm.Registry("batch-tests")


class Book(dm.Model):
    class Meta:
        table = "books"
        registry = REG

    id: Annotated[str, dm.HashKey]
    title: str = ""
    pages: int = 0


class Reading(dm.Model):
    class Meta:
        table = "readings"
        registry = REG

    sensor: Annotated[str, dm.HashKey]
    at: Annotated[int, dm.RangeKey]
    value: float = 0.0


class Price(dm.Model):
    class Meta:
        table = "prices"
        registry = REG

    amount: Annotated[Decimal, dm.HashKey]
    label: str = ""


class Account(dm.Model):
    class Meta:
        table = "accounts"
        registry = REG

    id: Annotated[str, dm.HashKey]
    version: Annotated[int, dm.Version] = 0


class Member(dm.Model):
    class Meta:
        table = "members"
        registry = REG
        unique = ("email",)

    id: Annotated[str, dm.HashKey]
    email: str


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(Book, Reading, Price)


async def count(db: dm.Session, model: type[dm.Model]) -> int:
    response = await db.client.scan(TableName=db.table_name(model), Select="COUNT")
    total: int = response["Count"]
    return total


async def store_books(n: int) -> list[str]:
    ids = [f"b{i:04d}" for i in range(n)]
    async with dm.batch_write() as batch:
        for i, book_id in enumerate(ids):
            batch.put(Book(id=book_id, title=f"title {i}", pages=i))
    return ids


def keys_asked(sent: Sent) -> list[list[dict[str, Any]]]:
    """The keys of each BatchGetItem request, all tables together."""
    return [
        [key for spec in request["RequestItems"].values() for key in spec["Keys"]]
        for operation, request in sent
        if operation == "BatchGetItem"
    ]


def write_requests(sent: Sent) -> list[list[tuple[str, dict[str, Any]]]]:
    """The (table, PutRequest/DeleteRequest) entries of each BatchWriteItem request."""
    return [
        [(table, entry) for table, entries in request["RequestItems"].items() for entry in entries]
        for operation, request in sent
        if operation == "BatchWriteItem"
    ]


def entry_key(entry: dict[str, Any]) -> str:
    if "DeleteRequest" in entry:
        return str(sorted(entry["DeleteRequest"]["Key"].items()))
    item = entry["PutRequest"]["Item"]
    return str(sorted((k, v) for k, v in item.items() if k in ("id", "sensor", "at")))


async def wait_for(check: Callable[[], bool]) -> None:
    """Poll ``check()`` until true (at most 5 s), yielding to the batch's tasks."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the batch did not get there within 5 s")


# ---------------------------------------------------------------- batch get


async def test_batch_get_returns_250_items_in_the_order_asked_missing_left_out(
    db: dm.Session, sent: Sent
) -> None:
    ids = await store_books(250)
    asked = [*ids, *(f"missing-{i}" for i in range(20))]
    random.Random(7).shuffle(asked)
    sent.clear()

    books = await Book.batch_get(asked)

    assert [b.id for b in books] == [k for k in asked if not k.startswith("missing")]
    assert all(b.title == f"title {int(b.id[1:])}" for b in books)
    requests = keys_asked(sent)
    assert [len(keys) for keys in requests] == [100, 100, 70]
    assert sorted(k["id"]["S"] for keys in requests for k in keys) == sorted(asked)


async def test_batch_get_takes_hash_and_range_keys(db: dm.Session, sent: Sent) -> None:
    async with dm.batch_write() as batch:
        for i in range(250):
            batch.put(Reading(sensor=f"s{i % 5}", at=i, value=i / 2))
    asked = [(f"s{i % 5}", i) for i in reversed(range(250))] + [("s0", 1)]  # s0/1: absent
    sent.clear()

    readings = await Reading.batch_get(asked)

    assert [(r.sensor, r.at) for r in readings] == asked[:-1]
    assert [r.value for r in readings[:2]] == [124.5, 124.0]
    assert [len(keys) for keys in keys_asked(sent)] == [100, 100, 51]


async def test_batch_get_asks_each_key_once_and_answers_every_position(
    db: dm.Session, sent: Sent
) -> None:
    await store_books(3)
    sent.clear()

    books = await Book.batch_get(["b0000", "b0001", "b0000", "b0002", "gone", "b0000", "b0001"])

    assert [b.id for b in books] == ["b0000", "b0001", "b0000", "b0002", "b0000", "b0001"]
    assert books[0] == books[2] and books[0] is not books[2]
    assert sorted(k["id"]["S"] for keys in keys_asked(sent) for k in keys) == [
        "b0000",
        "b0001",
        "b0002",
        "gone",
    ]


async def test_batch_get_treats_equal_numbers_as_one_key(db: dm.Session, sent: Sent) -> None:
    await Price(amount=Decimal("1.5"), label="one and a half").save()
    sent.clear()

    prices = await Price.batch_get([Decimal("1.50"), Decimal("1.5"), Decimal("15E-1")])

    assert [p.label for p in prices] == ["one and a half"] * 3
    assert [len(keys) for keys in keys_asked(sent)] == [1]


async def test_batch_get_reads_several_models_in_one_request(db: dm.Session, sent: Sent) -> None:
    await Book(id="k", title="a book").save()
    await Reading(sensor="k", at=1, value=2.5).save()
    sent.clear()

    found = await db.batch_get(
        [(Reading, ("k", 1)), (Book, "k"), (Book, "nope"), (Reading, ("k", 2))]
    )

    assert [type(f) for f in found] == [Reading, Book]
    assert found[0].value == 2.5 and found[1].title == "a book"
    ((operation, request),) = sent
    assert operation == "BatchGetItem"
    assert set(request["RequestItems"]) == {db.table_name(Book), db.table_name(Reading)}


async def test_batch_get_consistent_reads_every_table_consistently(
    db: dm.Session, sent: Sent
) -> None:
    await Book(id="k").save()
    sent.clear()

    await db.batch_get([(Book, "k"), (Reading, ("k", 1))], consistent=True)
    await Book.batch_get(["k"])

    consistent, default = (request for _, request in sent)
    assert all(spec["ConsistentRead"] is True for spec in consistent["RequestItems"].values())
    assert all("ConsistentRead" not in spec for spec in default["RequestItems"].values())


async def test_batch_get_of_no_keys_sends_nothing(db: dm.Session, sent: Sent) -> None:
    assert await Book.batch_get([]) == []
    assert sent == []


# ---------------------------------------------------------------- batch write


async def test_batch_write_puts_and_deletes_many_items_of_two_models(
    db: dm.Session, sent: Sent
) -> None:
    async with dm.batch_write() as batch:
        for i in range(70):
            batch.put(Book(id=f"b{i:03d}", pages=i))
        for i in range(40):
            batch.put(Reading(sensor="s", at=i, value=i))

    assert await count(db, Book) == 70 and await count(db, Reading) == 40
    requests = write_requests(sent)
    assert [len(r) for r in requests] == [25, 25, 25, 25, 10]
    sent.clear()

    books = await Book.batch_get([f"b{i:03d}" for i in range(35)])
    async with dm.batch_write() as batch:
        for book in books:
            batch.delete(book)
        for i in range(20):
            batch.delete_key(Reading, ("s", i))

    assert await count(db, Book) == 35 and await count(db, Reading) == 20
    assert (await Book.get("b035")).pages == 35
    assert await Reading.get_or_none("s", 19) is None
    assert (await Reading.get("s", 20)).value == 20
    deletes = [e for r in write_requests(sent) for _, e in r]
    assert len(deletes) == 55 and all(set(e) == {"DeleteRequest"} for e in deletes)


async def test_batch_write_sends_each_request_as_it_fills(db: dm.Session, sent: Sent) -> None:
    async with dm.batch_write() as batch:
        for i in range(25):
            batch.put(Book(id=f"b{i:02d}"))
        await wait_for(lambda: batch.written == 25)
        assert [len(r) for r in write_requests(sent)] == [25]
        assert await count(db, Book) == 25  # written while the block still runs

        for i in range(25, 49):
            batch.put(Book(id=f"b{i:02d}"))
        await asyncio.sleep(0.05)
        assert [len(r) for r in write_requests(sent)] == [25]  # 24 wait for the exit

    assert [len(r) for r in write_requests(sent)] == [25, 24]
    assert await count(db, Book) == 49


async def test_batch_write_last_operation_on_a_key_wins(db: dm.Session, sent: Sent) -> None:
    await Book(id="gone", title="old").save()
    async with dm.batch_write() as batch:
        batch.put(Book(id="a", title="first"))
        batch.put(Book(id="a", title="second"))
        batch.put(Book(id="gone", title="rewritten"))
        batch.delete_key(Book, "gone")
        batch.delete_key(Book, "back")
        batch.put(Book(id="back", title="back again"))

    assert [len(r) for r in write_requests(sent)] == [3]
    assert (await Book.get("a")).title == "second"
    assert await Book.get_or_none("gone") is None
    assert (await Book.get("back")).title == "back again"


async def test_batch_write_orders_operations_on_a_key_across_requests(
    db: dm.Session, sent: Sent
) -> None:
    async with dm.batch_write() as batch:
        batch.put(Book(id="x", title="put first"))
        for i in range(24):
            batch.put(Book(id=f"filler{i}"))  # the 25th entry: the request above leaves
        batch.delete_key(Book, "x")
        batch.put(Reading(sensor="x", at=1))
        batch.delete_key(Reading, ("x", 1))

    assert await Book.get_or_none("x") is None
    assert await Reading.get_or_none("x", 1) is None
    assert [len(r) for r in write_requests(sent)] == [25, 2]


async def test_batch_write_never_sends_one_key_twice_in_a_request(
    db: dm.Session, sent: Sent
) -> None:
    rng = random.Random(3)
    last: dict[str, str | None] = {}
    async with dm.batch_write() as batch:
        for step in range(300):
            book_id = f"b{rng.randrange(12)}"
            if rng.random() < 0.3:
                batch.delete_key(Book, book_id)
                last[book_id] = None
            else:
                batch.put(Book(id=book_id, title=f"step {step}"))
                last[book_id] = f"step {step}"

    for request in write_requests(sent):
        keys = [entry_key(entry) for _, entry in request]
        assert len(keys) == len(set(keys))
    for book_id, title in last.items():
        book = await Book.get_or_none(book_id)
        assert (book.title if book else None) == title


async def test_batch_write_takes_hash_and_range_keys(db: dm.Session) -> None:
    async with dm.batch_write() as batch:
        for i in range(30):
            batch.put(Reading(sensor=f"s{i % 2}", at=i, value=i))
    async with dm.batch_write() as batch:
        batch.delete_key(Reading, ("s0", 0))
        batch.delete(await Reading.get("s1", 1))
        batch.put(Reading(sensor="s0", at=2, value=-2))

    assert await count(db, Reading) == 28
    assert (await Reading.get("s0", 2)).value == -2
    assert await Reading.get_or_none("s0", 0) is None


async def test_batch_write_refuses_versioned_and_unique_models(db: dm.Session, sent: Sent) -> None:
    async with dm.batch_write() as batch:
        with pytest.raises(dm.UsageError, match=r"Account.*Version.*dm\.transaction"):
            batch.put(Account(id="a"))
        with pytest.raises(dm.UsageError, match="Account"):
            batch.delete_key(Account, "a")
        with pytest.raises(dm.UsageError, match=r"Member.*unique"):
            batch.put(Member(id="m", email="m@example.com"))
        with pytest.raises(dm.UsageError, match="Member"):
            batch.delete(Member(id="m", email="m@example.com"))
    assert sent == []


async def test_exception_in_the_block_writes_nothing_not_yet_sent(
    db: dm.Session, sent: Sent
) -> None:
    with pytest.raises(RuntimeError, match="boom") as caught:
        async with dm.batch_write() as batch:
            for i in range(30):  # a full request of 25 was queued, but never left
                batch.put(Book(id=f"b{i:02d}"))
            raise RuntimeError("boom")

    assert sent == []
    assert await count(db, Book) == 0
    assert caught.value.__notes__ == [
        "dynamodm: batch_write wrote 0 items before the error; "
        "30 items not yet sent were not written"
    ]


async def test_exception_after_a_request_keeps_what_was_written(db: dm.Session, sent: Sent) -> None:
    with pytest.raises(RuntimeError, match="boom") as caught:
        async with dm.batch_write() as batch:
            for i in range(25):
                batch.put(Book(id=f"b{i:02d}"))
            await wait_for(lambda: batch.written == 25)
            for i in range(25, 35):
                batch.put(Book(id=f"b{i:02d}"))
            raise RuntimeError("boom")

    assert [len(r) for r in write_requests(sent)] == [25]
    assert await count(db, Book) == 25
    assert "wrote 25 items before the error; 10 items not yet sent" in caught.value.__notes__[0]
