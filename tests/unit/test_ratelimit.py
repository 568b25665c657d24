"""Rate limits: token buckets on an injected clock, estimates of capacity units, and
adaptive decrease and recovery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import dynamodm as dm
from dynamodm.ratelimit import (
    CapacityEstimates,
    TokenBucket,
    charge,
    consumed_units,
    kind_of,
    write_units,
)


class FakeTime:
    """A clock that only moves when something sleeps (or the test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limit(time: FakeTime, **rates: Any) -> dm.RateLimit:
    return dm.RateLimit(**rates, clock=time.clock, sleep=time.sleep)


def item(size: int) -> dict[str, Any]:
    """An item of exactly ``size`` bytes by DynamoDB's rules (name "id" + a string)."""
    return {"id": {"S": "x" * (size - 2)}}


# ---------------------------------------------------------------- buckets


def test_bucket_starts_full_and_paces_at_its_rate() -> None:
    time = FakeTime()
    bucket = TokenBucket(100, time.clock)
    assert bucket.reserve(100) == 0.0  # one second's worth, at once
    assert bucket.reserve(25) == pytest.approx(0.25)
    assert bucket.reserve(25) == pytest.approx(0.5)  # queued behind the first
    time.now += 0.5
    assert bucket.tokens == pytest.approx(0.0)


def test_bucket_refills_to_one_seconds_worth_only() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, time.clock)
    bucket.reserve(10)
    time.now += 60
    assert bucket.tokens == pytest.approx(10.0)
    assert bucket.reserve(10) == 0.0
    assert bucket.reserve(1) == pytest.approx(0.1)


def test_a_charge_larger_than_the_bucket_waits_for_a_full_one_and_leaves_debt() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, time.clock)
    bucket.reserve(5)
    assert bucket.reserve(40) == pytest.approx(0.5)  # waits for 10 tokens, not 40
    time.now += 0.5
    assert bucket.tokens == pytest.approx(-30.0)
    assert bucket.reserve(1) == pytest.approx(3.1)


def test_settle_corrects_the_estimate_by_what_was_consumed() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, time.clock)
    bucket.reserve(1)  # an estimate of 1 unit...
    bucket.settle(1, 4)  # ...that consumed 4
    assert bucket.tokens == pytest.approx(6.0)
    bucket.settle(4, 0)  # a throttled request consumed nothing
    assert bucket.tokens == pytest.approx(10.0)
    bucket.settle(0, -5)  # never above one second's worth
    assert bucket.tokens == pytest.approx(10.0)


async def test_charge_waits_for_the_slowest_limit_and_counts_the_wait() -> None:
    time = FakeTime()
    session = limit(time, write=100)
    operation = limit(time, write=10)
    assert await charge([session, operation], "write", 10) is not None
    assert time.sleeps == []
    await charge([session, operation], "write", 5)
    assert time.sleeps == [pytest.approx(0.5)]
    assert operation.waited == pytest.approx(0.5)
    assert await charge([session], "read", 5) is None  # reads are not limited


async def test_a_cancelled_wait_gives_the_units_back() -> None:
    rate = dm.RateLimit(write=10)
    await charge([rate], "write", 10)
    task = asyncio.create_task(charge([rate], "write", 5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rate.buckets["write"].tokens > -1.0  # the 5 units came back


async def test_requests_are_paced_to_the_rate_over_many_charges() -> None:
    time = FakeTime()
    rate = limit(time, write=100)
    start = time.now
    for _ in range(200):
        charged = await charge([rate], "write", 25)
        assert charged is not None
        charged.answered(25.0)
    # 5,000 units at 100 a second, the first second's worth at once.
    assert time.now - start == pytest.approx((5000 - 100) / 100)


# ---------------------------------------------------------------- adaptive


def test_adaptive_halves_on_throttling_at_most_once_a_second() -> None:
    time = FakeTime()
    bucket = TokenBucket(100, time.clock, adaptive=True)
    bucket.throttled()
    bucket.throttled()  # the same second's excess
    assert bucket.rate == pytest.approx(50.0)
    time.now += 1.0
    bucket.throttled()
    assert bucket.rate == pytest.approx(25.0)
    assert bucket.tokens <= 25.0


def test_adaptive_recovers_a_tenth_of_the_limit_per_second_of_successes() -> None:
    time = FakeTime()
    bucket = TokenBucket(100, time.clock, adaptive=True)
    bucket.throttled()
    time.now += 2.0
    bucket.succeeded()
    assert bucket.rate == pytest.approx(70.0)
    time.now += 10.0
    bucket.succeeded()
    assert bucket.rate == pytest.approx(100.0)  # never above the limit


def test_adaptive_never_goes_below_a_64th_of_the_limit() -> None:
    time = FakeTime()
    bucket = TokenBucket(64, time.clock, adaptive=True)
    for _ in range(20):
        bucket.throttled()
        time.now += 1.0
    assert bucket.rate == pytest.approx(1.0)


def test_without_adaptive_throttling_leaves_the_rate() -> None:
    time = FakeTime()
    bucket = TokenBucket(100, time.clock)
    bucket.throttled()
    assert bucket.rate == 100.0


async def test_adaptive_converges_near_the_capacity_that_throttles() -> None:
    """A service that throttles above 200 units a second: an adaptive limit of 1,000 is
    throttled less and less, and settles between half the capacity and the capacity."""
    time = FakeTime()
    rate = limit(time, write=1000, adaptive=True)
    capacity = TokenBucket(200, time.clock)  # the service's own bucket
    throttled_late = sent_late = 0
    units_late = 0.0
    late_start = time.now + 30.0
    while time.now < late_start + 30.0:
        charged = await charge([rate], "write", 25)
        assert charged is not None
        accepted = capacity.tokens >= 0
        if accepted:
            capacity.reserve(25)
        charged.answered(25.0 if accepted else 0.0, throttled=not accepted)
        if not accepted:
            time.now += 0.05  # the retry policy's pause
        if time.now >= late_start:
            sent_late += 1
            throttled_late += not accepted
            units_late += 25.0 if accepted else 0.0
    assert throttled_late / sent_late < 0.1
    assert 100 <= units_late / 30.0 <= 230
    assert 100 <= (rate.rate("write") or 0) <= 400
    assert rate.throttled > 0


# ---------------------------------------------------------------- the public object


@pytest.mark.parametrize(
    "rates",
    [{}, {"read": 0}, {"write": -1}, {"read": True}, {"write": "100"}, {"read": float("inf")}],
)
def test_rate_limit_refuses_what_is_not_a_positive_rate(rates: dict[str, Any]) -> None:
    with pytest.raises(dm.UsageError, match="RateLimit"):
        dm.RateLimit(**rates)


def test_rate_limit_reports_its_current_rates() -> None:
    rate = dm.RateLimit(read=200, write=100.5, adaptive=True)
    assert (rate.rate("read"), rate.rate("write")) == (200.0, 100.5)
    assert dm.RateLimit(write=1).rate("read") is None
    assert repr(rate) == "RateLimit(read=200, write=100.5, adaptive=True)"


def test_connect_refuses_a_rate_limit_that_is_not_one() -> None:
    with pytest.raises(dm.ConfigurationError, match="RateLimit"):
        dm.connect(rate_limit=100)  # type: ignore[arg-type]


# ---------------------------------------------------------------- estimates


def test_write_units_are_one_per_kilobyte_rounded_up() -> None:
    assert write_units(item(1)) == 1
    assert write_units(item(1024)) == 1
    assert write_units(item(1025)) == 2
    assert write_units(item(3500)) == 4


def test_estimates_of_writes_come_from_item_sizes() -> None:
    estimates = CapacityEstimates()
    assert estimates.estimate("PutItem", {"Item": item(3500)}) == 4
    batch = {
        "RequestItems": {
            "a": [{"PutRequest": {"Item": item(1500)}}] * 10,
            "b": [{"DeleteRequest": {"Key": item(10)}}] * 3,
        }
    }
    assert estimates.estimate("BatchWriteItem", batch) == 10 * 2 + 3
    transaction = {
        "TransactItems": [{"Put": {"TableName": "a", "Item": item(1500)}}, {"Delete": {}}]
    }
    assert estimates.estimate("TransactWriteItems", transaction) == 2 * 2 + 2  # double
    assert estimates.estimate("TransactGetItems", {"TransactItems": [{"Get": {}}] * 3}) == 6


def test_estimates_of_batch_gets_count_keys_by_consistency() -> None:
    estimates = CapacityEstimates()
    request = {
        "RequestItems": {
            "a": {"Keys": [{}] * 10},
            "b": {"Keys": [{}] * 4, "ConsistentRead": True},
        }
    }
    assert estimates.estimate("BatchGetItem", request) == 10 * 0.5 + 4


def test_unknown_sizes_start_at_one_unit_then_follow_what_was_consumed() -> None:
    estimates = CapacityEstimates()
    request = {"TableName": "t", "Key": {}}
    assert estimates.estimate("UpdateItem", request) == 1
    estimates.record("UpdateItem", request, {"ConsumedCapacity": {"CapacityUnits": 4.0}})
    assert estimates.estimate("UpdateItem", request) == 4
    assert estimates.estimate("UpdateItem", {"TableName": "other"}) == 1
    assert estimates.estimate("GetItem", request) == 1


def test_a_page_is_estimated_from_its_limit_and_the_previous_page() -> None:
    estimates = CapacityEstimates()
    page = {"TableName": "t", "Limit": 100}
    assert estimates.estimate("Scan", page) == 1
    estimates.record("Scan", page, {"ConsumedCapacity": {"CapacityUnits": 5}, "ScannedCount": 100})
    assert estimates.estimate("Scan", {"TableName": "t", "Limit": 400}) == 20
    assert estimates.estimate("Scan", {"TableName": "t"}) == 5  # no Limit: the last page
    huge = {"TableName": "t", "Limit": 1_000_000}
    assert estimates.estimate("Scan", huge) == 128  # 1 MB, eventually consistent
    assert estimates.estimate("Scan", {**huge, "ConsistentRead": True}) == 256
    assert estimates.estimate("Scan", {"TableName": "t", "IndexName": "i"}) == 1


def test_consumed_units_sum_the_tables_of_an_answer() -> None:
    assert consumed_units({}) is None
    assert consumed_units({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 2}}) == 2
    both = [{"TableName": "a", "CapacityUnits": 1.5}, {"TableName": "b", "CapacityUnits": 3}]
    assert consumed_units({"ConsumedCapacity": both}) == 4.5
    assert consumed_units({"ConsumedCapacity": []}) is None  # moto's transactions


def test_kinds_of_operations() -> None:
    assert {kind_of(op) for op in ("PutItem", "BatchWriteItem", "TransactWriteItems")} == {"write"}
    assert {kind_of(op) for op in ("GetItem", "Query", "Scan", "TransactGetItems")} == {"read"}
