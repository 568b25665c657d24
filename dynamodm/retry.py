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


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts and a time budget; clock, randomness and sleep are injectable."""

    max_attempts: int = 10
    base_delay: float = 0.025
    max_delay: float = 2.0
    budget: float = 30.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def delay(self, retry: int) -> float:
        """The pause before retry number ``retry`` (0-based): full jitter under a cap."""
        # The exponent is capped so that a large retry number cannot overflow a float.
        return float(self.random() * min(self.max_delay, self.base_delay * 2.0 ** min(retry, 64)))

    def retryable(self, error: Exception, *, idempotent: bool) -> bool:
        if isinstance(error, ServiceError):
            if error.code in THROTTLING_CODES:
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
    ) -> tuple[T, int]:
        """Call ``send`` until it succeeds or the budget is spent; return (result, retries).

        ``write`` marks a request that changes data: if the budget runs out after an
        attempt that may have reached DynamoDB, the error is ``OutcomeUnknown``."""
        start = self.clock()
        retries = 0
        maybe_applied = False
        while True:
            try:
                return await send(), retries
            except (ServiceError, TransportError) as error:
                maybe_applied = maybe_applied or _may_have_applied(error)
                exhausted = False
                if self.retryable(error, idempotent=idempotent):
                    pause = self.delay(retries)
                    exhausted = (
                        retries + 1 >= self.max_attempts
                        or self.clock() - start + pause > self.budget
                    )
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
