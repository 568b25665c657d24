"""Rate limits against each local server: capacity asked for on every request, charges
corrected by what the server reports, per-operation limits, adaptive backoff under the
fault proxy's throttling, and the CLI's import paced at ``--rate`` by a proxy that
throttles like a table of that capacity."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from faultproxy import Exchange, FaultProxy, Rule
from servers import ServerHandle
from typer.testing import CliRunner

import dynamodm as dm
from dynamodm.cli import app
from dynamodm.codec import item_size

REG = dm.Registry("ratelimit-tests")
FAST_RETRY = dm.RetryPolicy(base_delay=0.001, max_delay=0.05, max_attempts=25)

MOTO_CAPACITY = (
    "moto's ConsumedCapacity does not follow DynamoDB's rules: 1 write unit for a PutItem "
    "of any size, 0.5 for an UpdateItem, 1 for a whole BatchWriteItem, an empty list for "
    "TransactWriteItems (dynalite reports DynamoDB's figures)"
)


class Reading(dm.Model):
    class Meta:
        table = "readings"
        registry = REG

    device: Annotated[str, dm.HashKey]
    n: Annotated[int, dm.RangeKey]
    payload: str = ""


class FakeTime:
    """A clock that moves only when a pacing sleep ends: concurrent sleeps that began
    at the same moment end at their own times, not one after the other."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, until)


def fake_limit(fake: FakeTime, **rates: Any) -> dm.RateLimit:
    return dm.RateLimit(**rates, clock=fake.clock, sleep=fake.sleep)


def moto_gap(server: ServerHandle, request: pytest.FixtureRequest, reason: str) -> None:
    if server.name == "moto":
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(Reading)


def connect(
    db: dm.Session,
    endpoint_url: str,
    rate_limit: dm.RateLimit | None = None,
    retry: dm.RetryPolicy = FAST_RETRY,
) -> dm.Session:
    return dm.connect(
        endpoint_url=endpoint_url,
        region="us-east-1",
        table_prefix=db.table_prefix,
        rate_limit=rate_limit,
        retry=retry,
    )


def spy(session: dm.Session, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    sent: list[tuple[str, Any]] = []
    transport = session.transport
    send: Callable[..., Awaitable[dict[str, Any]]] = transport.send

    async def recording(operation: str, request: dict[str, Any], **options: Any) -> dict[str, Any]:
        sent.append((operation, request))
        return await send(operation, request, **options)

    monkeypatch.setattr(transport, "send", recording)
    return sent


# ---------------------------------------------------------------- on every server


async def test_a_rate_limited_session_asks_for_consumed_capacity_on_every_request(
    db: dm.Session, server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with connect(db, server.endpoint_url, dm.RateLimit(read=1000, write=1000)) as limited:
        sent = spy(limited, monkeypatch)
        await Reading(device="d", n=1).save()
        await Reading.get("d", 1)
        await Reading.query("d").all()
        await Reading.scan().count()
        async with dm.batch_write() as batch:
            batch.put(Reading(device="d", n=2))
        await limited.batch_get([(Reading, ("d", 1))])
        await limited.describe_table(Reading)
    asked = {operation: request.get("ReturnConsumedCapacity") for operation, request in sent}
    item_operations = ["PutItem", "GetItem", "Query", "Scan", "BatchWriteItem", "BatchGetItem"]
    assert {
        operation: asked.pop(operation, None) for operation in item_operations
    } == dict.fromkeys(item_operations, "TOTAL")
    assert "DescribeTable" in asked
    assert set(asked.values()) == {None}  # table operations consume no capacity


async def test_charges_are_corrected_by_the_consumed_capacity(
    db: dm.Session, server: ServerHandle, request: pytest.FixtureRequest
) -> None:
    """A put of a 3.5 KB item is charged 4 write units from its size; an update of it,
    whose size the library does not know, 1 unit, corrected to the 4 that DynamoDB
    counts, and the next update of that table is estimated at 4."""
    moto_gap(server, request, MOTO_CAPACITY)
    fake = FakeTime()
    rate = fake_limit(fake, write=100)
    bucket = rate.buckets["write"]
    async with connect(db, server.endpoint_url, rate) as limited:
        await Reading(device="d", n=1, payload="x" * 3500).save()
        assert bucket.tokens == pytest.approx(96.0)
        update = {
            "TableName": limited.table_name(Reading),
            "Key": {"device": {"S": "d"}, "n": {"N": "1"}},
            "UpdateExpression": "SET #p = :p",
            "ExpressionAttributeNames": {"#p": "payload"},
            "ExpressionAttributeValues": {":p": {"S": "y" * 3500}},
        }
        await limited.call("UpdateItem", update, idempotent=True)
        assert bucket.tokens == pytest.approx(92.0)
        assert limited.capacity_estimates.estimate("UpdateItem", update) == 4.0


@pytest.mark.parametrize("operation", ["scan", "query"])
async def test_a_scan_or_query_is_paced_by_its_own_limit(
    db: dm.Session, server: ServerHandle, operation: str
) -> None:
    """Pages of 10 items read at 2 units a second: the pause before each page is what
    the pages before it consumed (as the server reported it) beyond one second's worth,
    give or take one page's estimate. The session's own limit is charged as well."""
    async with dm.batch_write() as batch:
        for n in range(60):
            batch.put(Reading(device="d", n=n, payload="x" * 1500))
    fake = FakeTime()
    reads = fake_limit(fake, read=2)
    frozen = FakeTime()  # the session's clock: it never refills
    session_limit = fake_limit(frozen, read=10_000)
    consumed: list[float] = []
    async with connect(db, server.endpoint_url, session_limit) as limited:

        def listen(event: dm.RequestEvent) -> None:
            if event.operation in ("Scan", "Query"):
                consumed.append(sum(_units(event.consumed_capacity)))

        limited.add_listener(listen)
        query = (
            Reading.scan(rate_limit=reads, consistent=True)
            if operation == "scan"
            else Reading.query("d", rate_limit=reads, consistent=True)
        )
        cursor: str | None = None
        seen = 0
        for _ in range(20):
            page = await query.page(cursor, size=10)
            seen += len(page.items)
            cursor = page.cursor
            if cursor is None:
                break
    assert seen == 60
    before_last = sum(consumed[:-1])
    elapsed = fake.now - 1000.0
    assert (before_last - 2) / 2 - 1e-6 <= elapsed <= before_last / 2 + 1e-6
    assert reads.waited == pytest.approx(elapsed)
    assert session_limit.waited == 0.0
    # charged by every page too, and corrected to what each consumed
    assert session_limit.buckets["read"].tokens == pytest.approx(10_000 - sum(consumed))


async def test_a_batch_write_is_paced_by_its_own_limit(
    db: dm.Session, server: ServerHandle
) -> None:
    """100 items of 2 write units (1.5 KB) at 100 units a second: the first second's
    worth leaves at once, the rest 1 second later."""
    fake = FakeTime()
    writes = fake_limit(fake, write=100)
    async with (
        connect(db, server.endpoint_url) as limited,
        dm.batch_write(session=limited, rate_limit=writes) as batch,
    ):
        for n in range(100):
            batch.put(Reading(device="w", n=n, payload="x" * 1500))
    assert batch.written == 100
    assert fake.now - 1000.0 == pytest.approx((100 * 2 - 100) / 100)
    assert writes.waited > 0


async def test_adaptive_backs_off_on_injected_throttling_and_recovers(
    db: dm.Session, fault_proxy: FaultProxy
) -> None:
    fake = FakeTime()
    rate = fake_limit(fake, write=100, adaptive=True)
    async with connect(db, fault_proxy.endpoint_url, rate):
        fault_proxy.add("throttle", "PutItem", times=3)
        await Reading(device="a", n=1).save()
        assert rate.throttled == 3
        assert rate.rate("write") == pytest.approx(50.0)  # once for the same second
        fake.now += 1.0
        fault_proxy.add("throttle", "PutItem", times=1)
        await Reading(device="a", n=2).save()
        assert rate.rate("write") == pytest.approx(25.0)
        for step in range(8):
            fake.now += 1.0
            await Reading(device="a", n=3 + step).save()
        assert rate.rate("write") == pytest.approx(100.0)
    assert len(fault_proxy.exchanges("PutItem", "throttle")) == 4


def _units(capacity: Any) -> list[float]:
    entries = capacity if isinstance(capacity, list) else [capacity] if capacity else []
    return [float(e.get("CapacityUnits", 0)) for e in entries]


# ---------------------------------------------------------------- a table's capacity


class CapacityProxy(FaultProxy):
    """The fault proxy as a table of ``capacity`` write units a second: a write is
    throttled when the table's bucket (``burst`` seconds' worth) cannot pay for it, and
    its answer reports DynamoDB's ConsumedCapacity (1 unit per KB of each item), since
    moto's figures do not follow DynamoDB's rules."""

    def __init__(self, upstream: str, capacity: float, burst: float = 1.0) -> None:
        super().__init__(upstream, seed=17)
        self.capacity = capacity
        self.most = capacity * burst
        self.tokens = self.most
        self._last = time.monotonic()
        # (arrival time, units, admitted) of every write
        self.timeline: list[tuple[float, float, bool]] = []

    def units(self, operation: str, request: dict[str, Any]) -> float:
        if operation == "PutItem":
            return float(math.ceil(item_size(request["Item"]) / 1024))
        if operation == "BatchWriteItem":
            return float(
                sum(
                    math.ceil(item_size(entry["PutRequest"]["Item"]) / 1024)
                    if "PutRequest" in entry
                    else 1
                    for entries in request["RequestItems"].values()
                    for entry in entries
                )
            )
        return 0.0

    async def _handle(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        operation = headers.get("x-amz-target", "").rpartition(".")[2]
        if operation in ("PutItem", "BatchWriteItem"):
            units = self.units(operation, json.loads(body))
            now = time.monotonic()
            self.tokens = min(self.most, self.tokens + (now - self._last) * self.capacity)
            self._last = now
            admitted = self.tokens >= units
            self.timeline.append((now, units, admitted))
            if admitted:
                self.tokens -= units
            else:  # answered by the base class's throttle rule, logged as "throttle"
                self.rules.insert(0, Rule("throttle", operation, times=1))
                try:
                    return await super()._handle(method, path, headers, body, writer)
                finally:
                    self.rules = [r for r in self.rules if r.times is None or r.used < r.times]
        return await super()._handle(method, path, headers, body, writer)

    async def _reply(
        self,
        exchange: Exchange,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = "application/x-amz-json-1.0",
        extra: dict[str, str] | None = None,
    ) -> bool:
        if status == 200 and exchange.operation in ("PutItem", "BatchWriteItem"):
            answer = json.loads(body)
            if "ConsumedCapacity" in answer:
                units = self.units(exchange.operation, exchange.request)
                reported: Any = {"TableName": "", "CapacityUnits": units}
                answer["ConsumedCapacity"] = (
                    [reported] if exchange.operation == "BatchWriteItem" else reported
                )
                body = json.dumps(answer).encode()
        return await super()._reply(exchange, writer, status, body, content_type, extra)

    def throttled(self) -> int:
        return sum(1 for _t, _u, admitted in self.timeline if not admitted)


@pytest.fixture
async def table_of(server: ServerHandle) -> AsyncIterator[Callable[[float, float], Any]]:
    """Start capacity proxies in front of the test's server: ``await table_of(100)``."""
    proxies: list[CapacityProxy] = []

    async def start(capacity: float, burst: float = 1.0) -> CapacityProxy:
        proxy = await CapacityProxy(server.endpoint_url, capacity, burst).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.stop()


IMPORT_ITEMS = 5_000
IMPORT_RATE = 800
PAYLOAD = 1_400  # with the keys: a 1.4 KB item, 2 write units


async def test_import_at_a_rate_takes_the_time_it_should_and_is_never_throttled(
    db: dm.Session, table_of: Callable[..., Any], tmp_path: Path
) -> None:
    """5,000 items of 2 write units imported with ``--rate 800`` through a table of 800
    write units a second (with a quarter of a second's slack for the network): never
    throttled, and the writes span (10,000 - 800) / 800 = 11.5 s (the first second's
    worth leaves at once), within 10 %.

    The issue's figure is 5,000 one-unit items at ``--rate 100``: 49 s on each of the
    two servers. Items twice as large at eight times the rate keep the 5,000 items and
    test the same pacing (and that an item's size counts) in 11.5 s; the estimate per
    item comes from its size, so a 1-unit-per-item pacing would finish in half the time
    and fail."""
    proxy = await table_of(IMPORT_RATE, 1.25)
    lines = [
        json.dumps({"device": "imp", "n": n, "payload": "p" * PAYLOAD}) for n in range(IMPORT_ITEMS)
    ]
    source = tmp_path / "readings.jsonl"
    source.write_text("\n".join(lines) + "\n")
    items = [
        {"device": {"S": "imp"}, "n": {"N": str(n)}, "payload": {"S": "p" * PAYLOAD}}
        for n in range(IMPORT_ITEMS)
    ]
    units = sum(math.ceil(item_size(item) / 1024) for item in items)
    assert units == 2 * IMPORT_ITEMS
    expected = (units - IMPORT_RATE) / IMPORT_RATE

    started = time.monotonic()
    args = import_args(f"{Reading.__module__}:Reading", source, proxy, db.table_prefix)
    result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--rate", str(IMPORT_RATE)])
    wall = time.monotonic() - started
    assert result.exit_code == 0, result.output
    writes = [t for t, _units, _admitted in proxy.timeline]
    span = writes[-1] - writes[0]
    print(
        f"import: {IMPORT_ITEMS} items, {units} write units at --rate {IMPORT_RATE}: "
        f"expected {expected:.2f} s, writes spanned {span:.2f} s, command {wall:.2f} s, "
        f"{len(writes)} requests, {proxy.throttled()} throttled"
    )
    assert proxy.throttled() == 0
    assert sum(u for _t, u, _a in proxy.timeline) == units
    assert abs(span - expected) <= 0.1 * expected
    assert await Reading.query("imp").count() == IMPORT_ITEMS


def import_args(model: str, source: Path, proxy: CapacityProxy, prefix: str) -> list[str]:
    return [
        "import",
        model,
        str(source),
        "--format",
        "plain",
        "--endpoint-url",
        proxy.endpoint_url,
        "--region",
        "us-east-1",
        "--prefix",
        prefix,
    ]


async def test_an_import_without_rate_is_throttled_by_the_same_table(
    db: dm.Session, table_of: Callable[..., Any], tmp_path: Path
) -> None:
    """The control of the test above: the proxy does throttle a client that is not
    paced (the import still completes, through retries)."""
    proxy = await table_of(IMPORT_RATE, 1.25)
    source = tmp_path / "readings.jsonl"
    source.write_text(
        "".join(
            json.dumps({"device": "fast", "n": n, "payload": "p" * PAYLOAD}) + "\n"
            for n in range(1_000)
        )
    )
    args = import_args(f"{Reading.__module__}:Reading", source, proxy, db.table_prefix)
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    print(f"import without --rate: {proxy.throttled()} of {len(proxy.timeline)} throttled")
    assert proxy.throttled() > 0
    assert await Reading.query("fast").count() == 1_000


@pytest.mark.parametrize("command", ["import", "export", "migrate"])
@pytest.mark.parametrize("rate", ["0", "-5", "inf"])
def test_rate_must_be_a_positive_number(command: str, rate: str, tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text("")
    files = [] if command == "migrate" else [str(source)]
    result = CliRunner().invoke(
        app, [command, f"{Reading.__module__}:Reading", *files, "--rate", rate]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--rate'" in result.output


async def test_adaptive_converges_on_the_capacity_of_a_throttling_table(
    db: dm.Session, table_of: Callable[..., Any]
) -> None:
    """A limit of 1,000 write units a second against a table of 300: the first seconds
    are throttled, the limit halves until it fits, and in the second half of the run
    few writes are throttled while the table is kept at least half busy."""
    proxy = await table_of(300)
    rate = dm.RateLimit(write=1000, adaptive=True)
    async with (
        connect(db, proxy.endpoint_url, retry=dm.RetryPolicy()) as limited,
        dm.batch_write(session=limited, rate_limit=rate) as batch,
    ):
        for n in range(2_400):
            await batch.put(Reading(device="ad", n=n))
    assert batch.written == 2_400
    start, end = proxy.timeline[0][0], proxy.timeline[-1][0]
    middle = (start + end) / 2
    early = [admitted for t, _u, admitted in proxy.timeline if t < middle]
    late = [(u, admitted) for t, u, admitted in proxy.timeline if t >= middle]
    late_throttled = sum(1 for _u, admitted in late if not admitted)
    late_units = sum(u for u, admitted in late if admitted)
    print(
        f"adaptive: {len(proxy.timeline)} requests over {end - start:.1f} s; throttled "
        f"{early.count(False)} in the first half, {late_throttled} of {len(late)} in the "
        f"second; {late_units / (end - middle):.0f} units/s in the second half; allowed "
        f"rate at the end {rate.rate('write'):.0f}"
    )
    assert early.count(False) > 0
    assert late_throttled <= 0.1 * len(late)
    assert late_units / (end - middle) >= 0.5 * 300
    assert (rate.rate("write") or 0) <= 2 * 300
