"""Request events, logging and dry runs: a dry run records exactly what a real call sends."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm

from .conftest import Sent

REG = dm.Registry("observe-tests")


class Counter(dm.Model):
    class Meta:
        table = "counters"
        registry = REG
        indexes = (dm.GlobalIndex("ByOwner", hash_key="owner"),)

    id: Annotated[str, dm.HashKey]
    owner: str = "o"
    hits: int = 0
    version: Annotated[int, dm.Version] = 0


class Plain(dm.Model):
    class Meta:
        table = "plain"
        registry = REG

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    text: str = ""


@pytest.fixture(autouse=True)
async def tables(db: dm.Session) -> Any:
    await db.create_tables(Counter, Plain)
    yield


async def test_every_request_emits_one_event(db: dm.Session) -> None:
    events: list[dm.RequestEvent] = []
    db.add_listener(events.append)
    counter = await Counter.create(id="c1")
    await Counter.get("c1")
    with pytest.raises(dm.NotFound):
        await Counter.get("missing")
    with pytest.raises(dm.VersionConflict):
        stale = await Counter.get("c1")
        await counter.update(hits=1)
        await stale.update(hits=2)
    db.remove_listener(events.append)
    await Counter.get("c1")
    operations = [(e.operation, e.outcome) for e in events]
    assert operations[:3] == [("PutItem", "ok"), ("GetItem", "ok"), ("GetItem", "ok")]
    assert ("UpdateItem", "ConditionalCheckFailedException") in operations
    assert all(e.table == db.table_name(Counter) for e in events)
    assert all(e.latency > 0 and e.retries == 0 and not e.dry_run for e in events)
    assert len(events) == len(operations)  # nothing after the listener was removed


async def test_consumed_capacity_is_reported_when_asked(server: Any) -> None:
    events: list[dm.RequestEvent] = []
    async with dm.connect(
        endpoint_url=server.endpoint_url,
        table_prefix=f"cc{dm.new_id()[:6]}-",
        consumed_capacity="TOTAL",
    ) as db:
        await db.create_tables(Plain)
        db.add_listener(events.append)
        await Plain(id="p").save()
        await Plain.get("p")
        await db.delete_tables(Plain)
    puts = [e for e in events if e.operation in ("PutItem", "GetItem")]
    assert puts and all(e.consumed_capacity for e in puts)


async def test_requests_are_logged_at_debug(
    db: dm.Session, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="dynamodm.requests"):
        await Plain(id="x", text="secret text").save()
    lines = [r.getMessage() for r in caplog.records if r.name == "dynamodm.requests"]
    assert lines and lines[0].startswith("PutItem ")
    assert "secret text" not in " ".join(lines)


async def test_a_failing_listener_does_not_break_the_call(
    db: dm.Session, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: dm.RequestEvent) -> None:
        raise RuntimeError("listener bug")

    db.add_listener(broken)
    await Plain(id="y").save()
    assert (await Plain.get("y")).id == "y"
    assert any("listener failed" in r.getMessage() for r in caplog.records)


async def _operations(db: dm.Session) -> None:
    """One of each: get, save, update, delete, query, scan, batch, transaction."""
    counter = Counter(id="c9", owner="ann", hits=3, version=1)
    await Plain.get_or_none("p1")
    await Plain(id="p1", text="t").save()
    await counter.update(dm.attr(Counter.hits).add(1), owner="bob")
    await Plain.delete_key("p1")
    await Counter.query("c9", filter=dm.attr(Counter.hits) > 1).all()
    await Counter.scan(filter=dm.attr(Counter.owner) == "bob", limit=5).all()
    await Counter.query("ann", index="ByOwner").count()
    async with dm.batch_write() as batch:
        batch.put(Plain(id="p2", text="u"))
        batch.delete_key(Plain, "p3")
    await Plain.batch_get(["p2", "p4"])


async def test_a_dry_run_sends_nothing_and_records_every_request(db: dm.Session) -> None:
    events: list[dm.RequestEvent] = []
    db.add_listener(events.append)
    async with dm.dry_run() as captured:
        await _operations(db)
    operations = [r.operation for r in captured.requests]
    assert operations == [
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "Query",
        "BatchWriteItem",
        "BatchGetItem",
    ]
    assert all(e.dry_run for e in events)
    assert await Plain.get_or_none("p1") is None and await Plain.get_or_none("p2") is None


async def test_a_dry_run_records_exactly_what_the_real_call_sends(
    db: dm.Session, sent: Sent
) -> None:
    # Same calls twice: captured in a dry run, then sent for real through a spy on the
    # transport. Only values that are fresh on each call (UpdatedAt stamps) may differ.
    async with dm.dry_run() as captured:
        await _operations(db)
    sent.clear()
    await Counter.create(id="c9", owner="ann", hits=3)
    sent.clear()
    await _operations(db)
    real = [(operation, request) for operation, request in sent]
    assert [(r.operation, r.request) for r in captured.requests] == real


@pytest.mark.moto_only(reason="dynalite has no transactions")
async def test_a_dry_run_of_a_transaction(db: dm.Session, sent: Sent) -> None:
    async def transaction() -> None:
        async with dm.transaction() as tx:
            tx.create(Plain(id="t1", text="a"))
            tx.check(Counter, "c1", condition=dm.attr(Counter.hits) >= 0)

    await Counter.create(id="c1")
    async with dm.dry_run() as captured:
        await transaction()
    assert [r.operation for r in captured.requests] == ["TransactWriteItems"]
    assert await Plain.get_or_none("t1") is None
    sent.clear()
    await transaction()
    dry = dict(captured.requests[0].request)
    real = dict(sent[0][1])
    # the client request token is fresh for every commit
    assert dry.pop("ClientRequestToken") != real.pop("ClientRequestToken")
    assert dry == real


async def test_events_of_batches_name_their_tables(db: dm.Session) -> None:
    events: list[dm.RequestEvent] = []
    db.add_listener(events.append)
    async with dm.batch_write() as batch:
        batch.put(Plain(id="p1"))
    await db.batch_get([(Plain, "p1"), (Counter, "nope")])
    db.remove_listener(events.append)
    by_operation = {e.operation: e.table for e in events}
    assert by_operation["BatchWriteItem"] == db.table_name(Plain)
    tables = set((by_operation["BatchGetItem"] or "").split(", "))
    assert tables == {db.table_name(Plain), db.table_name(Counter)}
