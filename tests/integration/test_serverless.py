"""dm.run, lambda_handler and stream_handler against the servers, as Lambda calls them.

The tests are sync, as Lambda's runtime and WSGI servers are. Clients talk to the
server through a proxy that counts the TCP connections it accepts (the fault proxy
with no rules), running on dm.run's own loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated, Any
from uuid import uuid4

import pytest
from faultproxy import FaultProxy
from pydantic import Field
from servers import ServerHandle

import dynamodm as dm
from dynamodm.session import current_session

REGISTRY = dm.Registry("integration-serverless")
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2025-12-01T00:00:00.000"


class Order(dm.Model):
    class Meta:
        table = "orders"
        registry = REGISTRY

    id: Annotated[str, dm.HashKey]
    total: int = Field(ge=0)


class Audit(dm.Model):
    class Meta:
        table = "audit"
        registry = REGISTRY

    sequence: Annotated[str, dm.HashKey]
    order_id: str


def insert_record(table: str, sequence: str, order_id: str, total: int) -> dict[str, Any]:
    """An INSERT record of a NEW_IMAGE stream, as Lambda delivers it."""
    image = {"id": {"S": order_id}, "total": {"N": str(total)}}
    return {
        "eventID": f"event-{sequence}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1764547200,
            "Keys": {"id": {"S": order_id}},
            "NewImage": image,
            "SequenceNumber": sequence,
            "SizeBytes": 40,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": ARN.format(table),
    }


@pytest.fixture
def proxy(server: ServerHandle) -> Iterator[FaultProxy]:
    """A proxy in front of the server, counting the connections clients open."""
    started = dm.run(FaultProxy(server.endpoint_url).start(), timeout=30)
    yield started
    dm.run(started.stop(), timeout=30)


@pytest.fixture
def prefix(server: ServerHandle) -> Iterator[str]:
    """A fresh table prefix with the tables of Order and Audit."""
    chosen = f"t{uuid4().hex[:10]}-"

    async def tables(create: bool) -> None:
        async with dm.connect(
            endpoint_url=server.endpoint_url, region="us-east-1", table_prefix=chosen
        ) as db:
            if create:
                await db.create_tables(Order, Audit)
            else:
                await db.delete_tables(Order, Audit)

    dm.run(tables(create=True), timeout=60)
    yield chosen
    dm.run(tables(create=False), timeout=60)


@pytest.fixture
def handlers() -> Iterator[list[Any]]:
    """Handlers a test makes; their sessions (kept open by design) closed afterwards."""
    made: list[Any] = []
    yield made
    for handler in made:
        if handler.session is not None:
            dm.run(handler.session.close(), timeout=30)


def read_audits(endpoint: str, prefix: str) -> list[str]:
    async def scan() -> list[str]:
        async with dm.connect(endpoint_url=endpoint, region="us-east-1", table_prefix=prefix):
            return sorted(a.order_id for a in await Audit.scan().all())

    return dm.run(scan(), timeout=30)


def test_session_opened_under_run_serves_later_calls_from_threads(
    proxy: FaultProxy, prefix: str
) -> None:
    db = dm.connect(endpoint_url=proxy.endpoint_url, region="us-east-1", table_prefix=prefix)
    dm.run(db.open())
    try:
        for n in range(10):  # sequential calls: one warm connection
            dm.run(Order(id=f"seq-{n}", total=n).save())
        assert [dm.run(Order.get(f"seq-{n}", consistent=True)).total for n in range(10)] == list(
            range(10)
        )
        assert proxy.connections == 1
        assert len(proxy.log) >= 20

        errors: list[BaseException] = []

        def worker(index: int) -> None:
            try:
                for n in range(8):
                    order = dm.run(Order.create(id=f"t{index}-{n}", total=index * 10 + n))
                    assert dm.run(Order.get(order.id, consistent=True)) == order
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        # Six callers at once need at most six connections, whatever the request count.
        assert proxy.connections <= 1 + 6
        assert len(proxy.log) >= 20 + 6 * 8 * 2
    finally:
        dm.run(db.close())


def test_lambda_handler_reuses_one_session_and_connection(
    proxy: FaultProxy, prefix: str, handlers: list[Any]
) -> None:
    @dm.lambda_handler(endpoint_url=proxy.endpoint_url, region="us-east-1", table_prefix=prefix)
    async def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        order = await Order.upsert(event["id"], dm.attr(Order.total).add(event["amount"]))
        return {"id": order.id, "total": order.total, "session": id(current_session())}

    handlers.append(handler)
    assert proxy.connections == 0  # nothing at import
    answers = [handler({"id": "o-1", "amount": n}, None) for n in range(1, 6)]
    assert [a["total"] for a in answers] == [1, 3, 6, 10, 15]
    assert {a["session"] for a in answers} == {id(handler.session)}
    assert proxy.connections == 1  # five invocations, one TCP connection
    assert len(proxy.exchanges("UpdateItem")) == 5


def test_stream_handler_partial_batch_and_retry(
    server: ServerHandle, proxy: FaultProxy, prefix: str, handlers: list[Any]
) -> None:
    failing = {"o3"}

    @dm.stream_handler(
        Order, endpoint_url=proxy.endpoint_url, region="us-east-1", table_prefix=prefix
    )
    async def handler(change: dm.StreamChange) -> None:
        assert isinstance(change.new, Order)
        if change.new.id in failing:
            raise RuntimeError("downstream unavailable")
        await Audit.create(sequence=change.sequence_number, order_id=change.new.id)

    handlers.append(handler)
    records = [insert_record(f"{prefix}orders", str(100 + n), f"o{n}", n) for n in range(1, 6)]
    other_table = insert_record(f"{prefix}invoices", "150", "x", 1)

    first = handler({"Records": [*records[:2], other_table, *records[2:]]}, None)
    assert first == {"batchItemFailures": [{"itemIdentifier": "103"}]}
    assert read_audits(server.endpoint_url, prefix) == ["o1", "o2"]

    # Lambda sends the batch again from the failed record; this time it goes through.
    failing.clear()
    assert handler({"Records": records[2:]}, None) == {"batchItemFailures": []}
    assert read_audits(server.endpoint_url, prefix) == ["o1", "o2", "o3", "o4", "o5"]
    assert proxy.connections == 1  # both invocations on one session's connection


def test_stream_handler_stops_at_a_poison_record(
    server: ServerHandle, proxy: FaultProxy, prefix: str, handlers: list[Any]
) -> None:
    @dm.stream_handler(
        Order, endpoint_url=proxy.endpoint_url, region="us-east-1", table_prefix=prefix
    )
    async def handler(change: dm.StreamChange) -> None:
        assert isinstance(change.new, Order)
        await Audit.create(sequence=change.sequence_number, order_id=change.new.id)

    handlers.append(handler)
    table = f"{prefix}orders"
    poison = insert_record(table, "202", "o2", -1)  # total must be >= 0
    event = {
        "Records": [
            insert_record(table, "201", "o1", 1),
            poison,
            insert_record(table, "203", "o3", 3),
        ]
    }
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "202"}]}
    assert read_audits(server.endpoint_url, prefix) == ["o1"]


def test_stream_handler_that_never_uses_the_database_connects_nowhere(
    proxy: FaultProxy, prefix: str, handlers: list[Any]
) -> None:
    seen: list[int] = []

    @dm.stream_handler(
        Order, endpoint_url=proxy.endpoint_url, region="us-east-1", table_prefix=prefix
    )
    async def handler(change: dm.StreamChange) -> None:
        assert isinstance(change.new, Order)
        seen.append(change.new.total)

    handlers.append(handler)
    table = f"{prefix}orders"
    event = {"Records": [insert_record(table, str(300 + n), f"o{n}", n) for n in range(3)]}
    assert handler(event, None) == {"batchItemFailures": []}
    assert seen == [0, 1, 2]
    assert proxy.connections == 0
