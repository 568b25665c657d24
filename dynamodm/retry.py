"""One retry policy for every request: exponential backoff with full jitter.

What is retried: throttling (the service did nothing), requests that never left,
and, for idempotent calls only, 5xx answers, timeouts and dropped connections.
A non-idempotent write whose answer was lost raises ``OutcomeUnknown``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import (
    REJECTED_CODES,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    ConnectionFailed,
    DynamoDMError,
    OutcomeUnknown,
    RequestTimeout,
    ServiceError,
    TransportError,
)

T = TypeVar("T")


class RetryQuota:
    """Retry tokens shared by every request of one session, so that a long outage does
    not multiply the load on a service that is already struggling.

    As in the AWS SDKs, a retry takes ``RETRY_COST`` tokens (``TIMEOUT_COST`` after a
    timeout) and a request that succeeds gives back what its retries took (one token when
    it needed none). Unlike them, the tokens also come back with time (``refill`` a
    second), and a retry that finds them spent waits for them instead of failing at once:
    retries are paced, calls keep their time budget, and the load of an outage stays
    bounded (at most ``capacity / RETRY_COST`` retries at once, then ``refill / RETRY_COST``
    a second)."""

    RETRY_COST = 5
    TIMEOUT_COST = 10

    __slots__ = ("_clock", "_last", "capacity", "refill", "tokens")

    def __init__(
        self, capacity: int, refill: float = 50.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.refill = refill
        self.tokens = float(capacity)
        self._clock = clock
        self._last = clock()

    def _fill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.refill)
        self._last = now

    def take(self, timeout: bool) -> tuple[int, float]:
        """Take the tokens of one retry: (their number, the seconds to wait until they
        are there; 0 when they are there now)."""
        self._fill()
        cost = self.TIMEOUT_COST if timeout else self.RETRY_COST
        self.tokens -= cost
        if self.tokens >= 0:
            return cost, 0.0
        if self.refill <= 0:
            self.tokens += cost
            return 0, float("inf")
        return cost, -self.tokens / self.refill

    def give_back(self, taken: int) -> None:
        """Return tokens: those of retries not made, or what a call that succeeded took
        (one token when it took none)."""
        if not taken and self.tokens >= self.capacity:
            return  # full: the common case of a call that needed no retry
        self._fill()
        self.tokens = min(self.capacity, self.tokens + (taken or 1))


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts and a time budget; clock, randomness and sleep are injectable.

    The time budget governs: throttling is retried for up to ``budget`` seconds (pauses
    of full jitter under ``max_delay``), paced by the session's ``RetryQuota`` of
    ``quota`` tokens refilled at ``quota_refill`` a second (``quota=None``: no quota)."""

    max_attempts: int = 100
    base_delay: float = 0.025
    max_delay: float = 5.0
    budget: float = 30.0
    quota: int | None = 500
    quota_refill: float = 50.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def delay(self, retry: int) -> float:
        """The pause before retry number ``retry`` (0-based): full jitter under a cap."""
        # The exponent is capped so that a large retry number cannot overflow a float.
        return float(self.random() * min(self.max_delay, self.base_delay * 2.0 ** min(retry, 64)))

    async def pause(self, retry: int, started: float) -> bool:
        """Sleep before retry number ``retry`` (1-based) of work that DynamoDB left undone
        (unprocessed batch items, a transaction conflict, a table still being created),
        begun at ``started`` (this policy's clock); False, without sleeping, when the
        attempts or the time budget are spent."""
        delay = self.delay(retry)
        if retry >= self.max_attempts or self.clock() - started + delay > self.budget:
            return False
        await self.sleep(delay)
        return True

    def retryable(self, error: Exception, *, idempotent: bool) -> bool:
        if isinstance(error, ServiceError):
            if error.code in THROTTLING_CODES or error.code in REJECTED_CODES:
                return True
            return idempotent and (error.code in TRANSIENT_CODES or error.status >= 500)
        if isinstance(error, TransportError):
            return idempotent or not error.sent
        return False

    async def run(
        self,
        send: Callable[[], Awaitable[T]],
        *,
        idempotent: bool,
        what: str,
        write: bool = False,
        quota: RetryQuota | None = None,
    ) -> tuple[T, int]:
        """Call ``send`` until it succeeds or the budget is spent; return (result, retries).

        ``write`` marks a request that changes data: if the budget runs out after an
        attempt that may have reached DynamoDB, the error is ``OutcomeUnknown``.
        ``quota``, the session's retry tokens, may stop retries sooner."""
        start = self.clock()
        retries = 0
        taken = 0
        maybe_applied = False
        while True:
            try:
                result = await send()
            except (ServiceError, TransportError) as error:
                maybe_applied = maybe_applied or _may_have_applied(error)
                exhausted = False
                if self.retryable(error, idempotent=idempotent):
                    pause = self.delay(retries)
                    exhausted = (
                        retries + 1 >= self.max_attempts
                        or self.clock() - start + pause > self.budget
                    )
                    if not exhausted and quota is not None:
                        cost, wait = quota.take(timeout=getattr(error, "timeout", False))
                        pause = max(pause, wait)
                        exhausted = (
                            not cost
                            or retries + 1 >= self.max_attempts
                            or self.clock() - start + pause > self.budget
                        )
                        if exhausted and cost:
                            quota.give_back(cost)  # the retry is not made
                        elif not exhausted:
                            taken += cost
                    if not exhausted:
                        retries += 1
                        await self.sleep(pause)
                        continue
                if write and exhausted and maybe_applied:
                    raise OutcomeUnknown(
                        f"{what}: no answer after {retries + 1} attempts, and an attempt may "
                        "have reached DynamoDB; it may or may not have been applied: read the "
                        "item to find out"
                    ) from error
                final = _final(error, what, idempotent, retries, exhausted=exhausted)
                if final is error:
                    raise
                raise final from error
            if quota is not None:
                quota.give_back(taken)
            return result, retries


def _may_have_applied(error: ServiceError | TransportError) -> bool:
    if isinstance(error, TransportError):
        return error.sent
    return error.code not in THROTTLING_CODES and (
        error.code in TRANSIENT_CODES or error.status >= 500
    )


def _final(
    error: ServiceError | TransportError,
    what: str,
    idempotent: bool,
    retries: int,
    exhausted: bool = False,
) -> DynamoDMError | ServiceError:
    tries = f" after {retries + 1} attempts" if retries else ""
    if isinstance(error, ServiceError):
        if (
            not idempotent
            and not exhausted
            and error.code not in THROTTLING_CODES
            and (error.code in TRANSIENT_CODES or error.status >= 500)
        ):
            return OutcomeUnknown(
                f"{what}: DynamoDB answered {error.code} to a write that is not safe to repeat; "
                "it may or may not have been applied: read the item to find out",
                code=error.code,
                service_message=error.service_message,
                request_id=error.request_id,
            )
        return error
    if error.sent and not idempotent:
        return OutcomeUnknown(
            f"{what}: the response was lost ({error}); the write is not safe to repeat and "
            "may or may not have been applied: read the item to find out"
        )
    if error.timeout:
        return RequestTimeout(f"{what}: timed out{tries}; check the endpoint or raise the timeout")
    return ConnectionFailed(f"{what}: could not reach DynamoDB{tries} ({error})")
