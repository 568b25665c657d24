"""Rate limits: token buckets of capacity units per second.

A request is charged before it is sent, by its estimated capacity units: reads 1 unit
per 4 KB strongly consistent (half as much eventually consistent), writes 1 unit per
1 KB of the item, transactions double, batches the sum of their entries. What DynamoDB
reports it consumed (``ConsumedCapacity``, which a rate-limited session asks for on
every request) then corrects the charge. Each bucket holds one second's worth.

Everything here is pure except for awaiting a sleep; clock and sleep are injectable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from .codec import item_size
from .errors import UsageError

Kind = Literal["read", "write"]

WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
CAPACITY_OPERATIONS = WRITE_OPERATIONS | {
    "GetItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "TransactGetItems",
}
READ_UNIT = 4096
WRITE_UNIT = 1024
# A Query or Scan page holds at most 1 MB: 256 strongly consistent read units.
_PAGE_UNITS = 1024 * 1024 / READ_UNIT

# Adaptive mode: a throttle halves the allowed rate (at most once a second: the throttles
# of one second answer the same excess), and every success regains a tenth of the limit
# per second since the last change, down to 1/64 of the limit at the least.
_DECREASE = 0.5
_DECREASE_EVERY = 1.0
_RECOVERY = 0.1
_FLOOR = 1 / 64


class TokenBucket:
    """Capacity units for one kind of request: ``rate`` a second, one second's worth held.

    Charges reserve units at once (the tokens may go below zero, so that requests queue
    in the order they came) and say how long to wait before sending."""

    __slots__ = (
        "_clock",
        "_last",
        "_last_decrease",
        "_last_increase",
        "_tokens",
        "adaptive",
        "limit",
        "rate",
    )

    def __init__(self, limit: float, clock: Callable[[], float], adaptive: bool = False) -> None:
        self.limit = float(limit)
        self.rate = float(limit)
        self.adaptive = adaptive
        self._clock = clock
        now = clock()
        self._last = now
        self._last_decrease = -math.inf
        self._last_increase = now
        self._tokens = self.rate

    @property
    def tokens(self) -> float:
        """The units available now (below zero while charges wait for their turn)."""
        self._refill()
        return self._tokens

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(now - self._last, 0.0)
        self._tokens = min(self.rate, self._tokens + elapsed * self.rate)
        self._last = now
        return now

    def reserve(self, units: float) -> float:
        """Charge ``units``; the seconds to wait before sending (0: send now). A charge
        larger than the bucket waits for a full bucket and leaves it in debt."""
        self._refill()
        need = min(units, self.rate)
        wait = max(need - self._tokens, 0.0) / self.rate
        self._tokens -= units
        return wait

    def settle(self, charged: float, consumed: float) -> None:
        """Correct a charge by what the request consumed (0 for a throttled request)."""
        self._refill()
        self._tokens = min(self.rate, self._tokens + charged - consumed)

    def throttled(self) -> None:
        """DynamoDB throttled a request: in adaptive mode, halve the allowed rate."""
        if not self.adaptive:
            return
        now = self._refill()
        self._last_increase = now
        if now - self._last_decrease < _DECREASE_EVERY:
            return
        self._last_decrease = now
        self.rate = max(self.limit * _FLOOR, self.rate * _DECREASE)
        self._tokens = min(self._tokens, self.rate)

    def succeeded(self) -> None:
        """A request went through: in adaptive mode, regain part of the limit."""
        if not self.adaptive:
            return
        now = self._refill()
        if self.rate < self.limit:
            gained = self.limit * _RECOVERY * max(now - self._last_increase, 0.0)
            self.rate = min(self.limit, self.rate + gained)
        self._last_increase = now


class RateLimit:
    """Pace requests to ``read`` and ``write`` capacity units per second (None: no limit
    of that kind): ``dm.connect(rate_limit=dm.RateLimit(read=200, write=100))`` for every
    request of a session, or ``rate_limit=`` on a scan, a query or a batch write for that
    operation alone.

    With ``adaptive=True``, throttling by DynamoDB halves the allowed rate, and it comes
    back (a tenth of the limit per second) while requests go through. A RateLimit passed
    to several operations is shared by them. ``clock`` and ``sleep`` are for tests."""

    def __init__(
        self,
        read: float | None = None,
        write: float | None = None,
        *,
        adaptive: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        for name, value in (("read", read), ("write", write)):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < math.inf
            ):
                raise UsageError(
                    f"RateLimit({name}={value!r}): give capacity units per second, a "
                    "positive number (or None for no limit)"
                )
        if read is None and write is None:
            raise UsageError("RateLimit(): give read=, write= or both (capacity units a second)")
        self.read = read
        self.write = write
        self.adaptive = adaptive
        self.sleep = sleep
        self.buckets: dict[Kind, TokenBucket] = {}
        if read is not None:
            self.buckets["read"] = TokenBucket(read, clock, adaptive)
        if write is not None:
            self.buckets["write"] = TokenBucket(write, clock, adaptive)
        self.waited = 0.0  # seconds this limit held requests back
        self.throttled = 0  # requests DynamoDB throttled (or left part of) under it

    def rate(self, kind: Kind) -> float | None:
        """The rate allowed now for ``kind`` (lower than the limit after throttling in
        adaptive mode); None when that kind is not limited."""
        bucket = self.buckets.get(kind)
        return bucket.rate if bucket is not None else None

    def __repr__(self) -> str:
        mode = ", adaptive=True" if self.adaptive else ""
        return f"RateLimit(read={self.read!r}, write={self.write!r}{mode})"


class Charge:
    """Units taken from the buckets of one request attempt, to settle once answered."""

    __slots__ = ("buckets", "limits", "units")

    def __init__(self, limits: list[RateLimit], buckets: list[TokenBucket], units: float) -> None:
        self.limits = limits
        self.buckets = buckets
        self.units = units

    def refund(self) -> None:
        """The request was not sent: give the units back."""
        for bucket in self.buckets:
            bucket.settle(self.units, 0.0)

    def answered(self, consumed: float | None, *, throttled: bool = False) -> None:
        """Correct by what DynamoDB consumed (None: it did not say; keep the estimate);
        ``throttled``: DynamoDB did nothing, or part of a batch, for want of capacity."""
        for bucket in self.buckets:
            if consumed is not None:
                bucket.settle(self.units, consumed)
            if throttled:
                bucket.throttled()
            else:
                bucket.succeeded()
        if throttled:
            for limit in self.limits:
                limit.throttled += 1


async def charge(limits: Sequence[RateLimit], kind: Kind, units: float) -> Charge | None:
    """Take ``units`` from every limit's bucket of ``kind`` and wait until all of them
    allow the request; None when none of them limits this kind."""
    pairs = [(limit, limit.buckets[kind]) for limit in limits if kind in limit.buckets]
    if not pairs:
        return None
    waits = [bucket.reserve(units) for _limit, bucket in pairs]
    wait, slowest = max((w, i) for i, w in enumerate(waits))
    found = Charge([limit for limit, _ in pairs], [bucket for _, bucket in pairs], units)
    if wait > 0:
        try:
            await pairs[slowest][0].sleep(wait)
        except BaseException:
            found.refund()
            raise
        for (limit, _bucket), own in zip(pairs, waits, strict=True):
            limit.waited += own
    return found


def kind_of(operation: str) -> Kind:
    return "write" if operation in WRITE_OPERATIONS else "read"


def consumed_units(response: Mapping[str, Any]) -> float | None:
    """The capacity units an answer reports (summed over tables); None when it reports
    none."""
    reported = response.get("ConsumedCapacity")
    if reported is None:
        return None
    entries: Iterable[Any] = reported if isinstance(reported, list) else [reported]
    total = 0.0
    found = False
    for entry in entries:
        if isinstance(entry, Mapping) and "CapacityUnits" in entry:
            total += float(entry["CapacityUnits"])
            found = True
    return total if found else None


def write_units(item: Mapping[str, Any]) -> float:
    """Write units of one item: 1 per KB, rounded up (at least 1)."""
    return float(max(1, math.ceil(item_size(dict(item)) / WRITE_UNIT)))


class CapacityEstimates:
    """Estimates of what a request will consume, from its items, keys and ``Limit``, and
    from what the previous request of its kind (operation, table, index) consumed.
    Requests whose size is unknown and unseen start at 1 unit."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        # (operation, table, index) -> (units consumed, items scanned) of the last answer
        self._seen: dict[tuple[str, str, str], tuple[float, int]] = {}

    def estimate(self, operation: str, request: Mapping[str, Any]) -> float:
        if operation == "PutItem":
            return write_units(request.get("Item") or {})
        if operation == "BatchWriteItem":
            total = 0.0
            for entries in (request.get("RequestItems") or {}).values():
                for entry in entries:
                    put = entry.get("PutRequest")
                    total += write_units(put.get("Item") or {}) if put else 1.0
            return max(total, 1.0)
        if operation == "BatchGetItem":
            total = 0.0
            for entry in (request.get("RequestItems") or {}).values():
                per_key = 1.0 if entry.get("ConsistentRead") else 0.5
                total += per_key * len(entry.get("Keys") or ())
            return max(total, 0.5)
        if operation in ("TransactWriteItems", "TransactGetItems"):
            total = 0.0
            for action in request.get("TransactItems") or ():
                put = action.get("Put")
                total += 2 * write_units(put.get("Item") or {}) if put else 2.0
            return max(total, 2.0)
        seen = self._seen.get(_kind_key(operation, request))
        if seen is None:
            return 1.0
        units, scanned = seen
        limit = request.get("Limit")
        if operation in ("Query", "Scan") and isinstance(limit, int) and scanned:
            page = _PAGE_UNITS if request.get("ConsistentRead") else _PAGE_UNITS / 2
            return max(min(units / scanned * limit, page), 0.5)
        return max(units, 0.5)

    def record(
        self, operation: str, request: Mapping[str, Any], response: Mapping[str, Any]
    ) -> None:
        """Remember what a single-table request consumed (and, for a Query or Scan page,
        how many items it scanned) as the estimate of the next one of its kind."""
        if operation not in _REMEMBERED:
            return
        consumed = consumed_units(response)
        if consumed is not None:
            scanned = int(response.get("ScannedCount") or 0)
            self._seen[_kind_key(operation, request)] = (consumed, scanned)


_REMEMBERED = frozenset({"GetItem", "UpdateItem", "DeleteItem", "Query", "Scan"})


def _kind_key(operation: str, request: Mapping[str, Any]) -> tuple[str, str, str]:
    return operation, str(request.get("TableName", "")), str(request.get("IndexName", ""))
