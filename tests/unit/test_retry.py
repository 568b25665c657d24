"""The retry policy: what is retried, how long it waits, and what it raises at the end."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

import dynamodm as dm
from dynamodm.errors import ServiceError, TransportError
from dynamodm.retry import RetryPolicy

BASE = 0.1
CAP = 1.0


class FakeTime:
    """A clock that only moves when the policy sleeps (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Sender:
    """Fails with the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: BaseException, forever: BaseException | None = None) -> None:
        self.errors = list(errors)
        self.forever = forever
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        if self.forever is not None:
            raise self.forever
        return "ok"


def policy(
    time: FakeTime,
    *,
    jitter: Callable[[], float] = lambda: 1.0,
    max_attempts: int = 5,
    budget: float = 60.0,
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts,
        base_delay=BASE,
        max_delay=CAP,
        budget=budget,
        clock=time.clock,
        random=jitter,
        sleep=time.sleep,
    )


def throttled() -> ServiceError:
    return ServiceError("slow down", code="ThrottlingException", status=400)


def server_error(status: int = 500, code: str = "InternalServerError") -> ServiceError:
    return ServiceError("boom", code=code, service_message="internal", status=status)


def condition_failed() -> ServiceError:
    return ServiceError("no", code="ConditionalCheckFailedException", status=400)


# ---------------------------------------------------------------- delays


@pytest.mark.parametrize("retry", range(8))
def test_delay_is_the_full_exponential_at_maximum_jitter(retry: int) -> None:
    assert policy(FakeTime()).delay(retry) == pytest.approx(min(CAP, BASE * 2**retry))


@pytest.mark.parametrize("retry", range(8))
def test_delay_scales_with_the_random_draw(retry: int) -> None:
    assert policy(FakeTime(), jitter=lambda: 0.0).delay(retry) == 0.0
    half = policy(FakeTime(), jitter=lambda: 0.5).delay(retry)
    assert half == pytest.approx(min(CAP, BASE * 2**retry) / 2)


def test_delay_stays_within_full_jitter_bounds_with_real_randomness() -> None:
    draws = random.Random(1234)
    retry_policy = RetryPolicy(base_delay=BASE, max_delay=CAP, random=draws.random)
    for retry in range(20):
        ceiling = min(CAP, BASE * 2**retry)
        delays = [retry_policy.delay(retry) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.9


def test_delay_of_a_very_late_retry_stays_at_the_cap() -> None:
    assert policy(FakeTime()).delay(5000) == CAP


# ---------------------------------------------------------------- what is retried


async def test_success_at_the_first_attempt_reports_no_retries() -> None:
    time = FakeTime()
    send = Sender()
    assert await policy(time).run(send, idempotent=False, what="PutItem") == ("ok", 0)
    assert (send.calls, time.sleeps) == (1, [])


@pytest.mark.parametrize("idempotent", [True, False])
async def test_throttling_is_retried_with_growing_delays(idempotent: bool) -> None:
    time = FakeTime()
    send = Sender(throttled(), throttled(), throttled())
    result = await policy(time).run(send, idempotent=idempotent, what="PutItem")
    assert result == ("ok", 3)
    assert send.calls == 4
    assert time.sleeps == pytest.approx([BASE, BASE * 2, BASE * 4])


@pytest.mark.parametrize("idempotent", [True, False])
async def test_throttling_is_retried_until_max_attempts_then_raised(idempotent: bool) -> None:
    time = FakeTime()
    send = Sender(forever=throttled())
    with pytest.raises(ServiceError) as caught:
        await policy(time, max_attempts=4).run(send, idempotent=idempotent, what="PutItem")
    assert caught.value.code == "ThrottlingException"
    assert caught.value.__cause__ is None
    assert send.calls == 4
    assert len(time.sleeps) == 3


async def test_one_attempt_means_no_retry() -> None:
    send = Sender(forever=throttled())
    with pytest.raises(ServiceError):
        await policy(FakeTime(), max_attempts=1).run(send, idempotent=True, what="GetItem")
    assert send.calls == 1


@pytest.mark.parametrize("idempotent", [True, False])
async def test_request_that_never_left_is_always_retried(idempotent: bool) -> None:
    time = FakeTime()
    send = Sender(TransportError("refused", sent=False), TransportError("refused", sent=False))
    assert await policy(time).run(send, idempotent=idempotent, what="UpdateItem") == ("ok", 2)
    assert send.calls == 3


async def test_lost_response_of_an_idempotent_call_is_retried() -> None:
    send = Sender(
        TransportError("reset", sent=True), TransportError("slow", sent=True, timeout=True)
    )
    assert await policy(FakeTime()).run(send, idempotent=True, what="GetItem") == ("ok", 2)


async def test_lost_response_of_a_non_idempotent_write_is_outcome_unknown_at_once() -> None:
    time = FakeTime()
    lost = TransportError("connection reset", sent=True)
    send = Sender(lost)
    with pytest.raises(dm.OutcomeUnknown, match="UpdateItem on 'users': the response was lost"):
        await policy(time).run(send, idempotent=False, what="UpdateItem on 'users'")
    assert (send.calls, time.sleeps) == (1, [])


async def test_timeout_of_a_non_idempotent_write_is_outcome_unknown() -> None:
    send = Sender(TransportError("read timeout", sent=True, timeout=True))
    with pytest.raises(dm.OutcomeUnknown) as caught:
        await policy(FakeTime()).run(send, idempotent=False, what="PutItem")
    assert isinstance(caught.value.__cause__, TransportError)


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "InternalServerError"), (503, "ServiceUnavailable"), (502, "SomethingNew")],
)
async def test_server_error_on_a_non_idempotent_write_is_outcome_unknown(
    status: int, code: str
) -> None:
    time = FakeTime()
    send = Sender(server_error(status, code))
    with pytest.raises(dm.OutcomeUnknown, match="may or may not have been applied") as caught:
        await policy(time).run(send, idempotent=False, what="UpdateItem")
    assert caught.value.code == code
    assert (send.calls, time.sleeps) == (1, [])


async def test_server_error_on_an_idempotent_call_is_retried() -> None:
    send = Sender(server_error(), server_error(503, "ServiceUnavailable"))
    assert await policy(FakeTime()).run(send, idempotent=True, what="GetItem") == ("ok", 2)


async def test_server_errors_of_an_idempotent_call_are_raised_when_attempts_run_out() -> None:
    error = server_error()
    send = Sender(forever=error)
    with pytest.raises(ServiceError) as caught:
        await policy(FakeTime(), max_attempts=3).run(send, idempotent=True, what="GetItem")
    assert caught.value is error
    assert caught.value.__cause__ is None
    assert send.calls == 3


@pytest.mark.parametrize("idempotent", [True, False])
async def test_conditional_check_failure_is_never_retried(idempotent: bool) -> None:
    time = FakeTime()
    error = condition_failed()
    send = Sender(error)
    with pytest.raises(ServiceError) as caught:
        await policy(time).run(send, idempotent=idempotent, what="PutItem")
    assert caught.value is error
    assert (send.calls, time.sleeps) == (1, [])


async def test_client_errors_are_not_retried() -> None:
    send = Sender(ServiceError("bad", code="ValidationException", status=400))
    with pytest.raises(ServiceError, match="bad"):
        await policy(FakeTime()).run(send, idempotent=True, what="Query")
    assert send.calls == 1


async def test_other_exceptions_propagate_unchanged() -> None:
    error = ValueError("bug")
    send = Sender(error)
    with pytest.raises(ValueError) as caught:
        await policy(FakeTime()).run(send, idempotent=True, what="GetItem")
    assert caught.value is error
    assert send.calls == 1


# ---------------------------------------------------------------- exhaustion


async def test_timeouts_that_outlast_the_attempts_raise_request_timeout() -> None:
    send = Sender(forever=TransportError("read timeout", sent=True, timeout=True))
    with pytest.raises(dm.RequestTimeout, match="GetItem: timed out after 3 attempts"):
        await policy(FakeTime(), max_attempts=3).run(send, idempotent=True, what="GetItem")
    assert send.calls == 3


async def test_unreachable_endpoint_raises_connection_failed_after_the_attempts() -> None:
    send = Sender(forever=TransportError("refused", sent=False))
    with pytest.raises(dm.ConnectionFailed, match="could not reach DynamoDB after 4 attempts"):
        await policy(FakeTime(), max_attempts=4).run(send, idempotent=False, what="PutItem")
    assert send.calls == 4


async def test_time_budget_stops_retries_before_a_pause_would_overrun_it() -> None:
    time = FakeTime()
    send = Sender(forever=throttled())
    # Pauses at full jitter: 0.1, 0.2, 0.4, 0.8; the fourth would end at 1.5 > 1.0.
    with pytest.raises(ServiceError):
        await policy(time, budget=1.0, max_attempts=50).run(send, idempotent=True, what="Scan")
    assert time.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert send.calls == 4


async def test_time_spent_in_requests_counts_against_the_budget() -> None:
    time = FakeTime()

    async def slow_failure() -> str:
        time.now += 2.0
        raise TransportError("read timeout", sent=True, timeout=True)

    with pytest.raises(dm.RequestTimeout):
        await policy(time, budget=5.0, max_attempts=50).run(
            slow_failure, idempotent=True, what="GetItem"
        )
    assert len(time.sleeps) == 2
    assert time.now - 100.0 <= 5.0 + 2.0


# ---------------------------------------------------------------- cancellation


async def test_cancellation_raised_by_the_request_propagates_unchanged() -> None:
    cancelled = asyncio.CancelledError()
    send = Sender(cancelled)
    with pytest.raises(asyncio.CancelledError) as caught:
        await policy(FakeTime()).run(send, idempotent=True, what="GetItem")
    assert caught.value is cancelled
    assert send.calls == 1


async def test_cancellation_during_a_pause_propagates_and_stops_retrying() -> None:
    failed = asyncio.Event()
    calls = 0

    async def send() -> str:
        nonlocal calls
        calls += 1
        failed.set()
        raise throttled()

    retry_policy = RetryPolicy(base_delay=10.0, max_delay=10.0, random=lambda: 1.0)
    task = asyncio.create_task(retry_policy.run(send, idempotent=True, what="GetItem"))
    await failed.wait()
    await asyncio.sleep(0)  # let the policy reach its pause
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert calls == 1


# ---------------------------------------------------------------- the budget governs


@pytest.mark.parametrize("seed", range(5))
async def test_the_default_policy_rides_out_throttling_for_its_whole_budget(seed: int) -> None:
    """With full jitter the old defaults (10 attempts, 2 s cap) gave up after 3.6 s of
    throttling on average, so the documented 30 s budget never bound."""
    time = FakeTime()
    rng = random.Random(seed)
    default = RetryPolicy(clock=time.clock, sleep=time.sleep, random=rng.random, quota=None)
    sender = Sender(forever=throttled())
    with pytest.raises(ServiceError):
        await default.run(sender, idempotent=True, what="GetItem")
    waited = time.now - 100.0
    assert 20.0 <= waited <= default.budget, waited
    assert sender.calls < default.max_attempts


async def test_the_retry_quota_paces_retries_once_spent() -> None:
    time = FakeTime()
    quota = dm.RetryQuota(20, refill=1.0, clock=time.clock)  # four retries at once
    retrying = policy(time, max_attempts=100, budget=10.0)
    sender = Sender(forever=throttled())
    with pytest.raises(ServiceError):
        await retrying.run(sender, idempotent=True, what="GetItem", quota=quota)
    # Four retries with the backoff's pauses, then one each time 5 tokens have come
    # back (one a second), until the 10 s budget: fewer requests than without a quota.
    assert time.sleeps[:4] == [BASE, BASE * 2, BASE * 4, BASE * 8]
    assert time.sleeps[4:] == [pytest.approx(3.5), pytest.approx(5.0)]
    assert sender.calls == 7
    assert time.now - 100.0 <= 10.0


async def test_a_success_gives_back_what_its_retries_took() -> None:
    time = FakeTime()
    quota = dm.RetryQuota(20, refill=0.0, clock=time.clock)
    retrying = policy(time, max_attempts=100)
    quota.tokens = 10.0
    await retrying.run(Sender(throttled()), idempotent=True, what="GetItem", quota=quota)
    assert quota.tokens == 10.0  # took 5 for the retry, gave them back
    await retrying.run(Sender(), idempotent=True, what="GetItem", quota=quota)
    assert quota.tokens == 11.0  # one for a call that needed no retry
    quota.tokens = 2.0
    with pytest.raises(ServiceError):  # spent, and nothing comes back with time
        await retrying.run(Sender(throttled()), idempotent=True, what="GetItem", quota=quota)
    assert quota.tokens == 2.0


async def test_without_a_quota_every_call_retries_on_its_own() -> None:
    time = FakeTime()
    retrying = policy(time, max_attempts=100, budget=10.0)
    sender = Sender(forever=throttled())
    with pytest.raises(ServiceError):
        await retrying.run(sender, idempotent=True, what="GetItem", quota=None)
    assert sender.calls == 13


@pytest.mark.parametrize(
    "code", ["ReplicatedWriteConflictException", "TransactionConflictException"]
)
async def test_a_write_refused_for_a_conflict_is_retried_though_not_idempotent(
    code: str,
) -> None:
    """The write was rejected before it was applied (botocore retries these too)."""
    time = FakeTime()
    refused = ServiceError("refused", code=code, status=409 if "Replicated" in code else 400)
    sender = Sender(refused)
    result = await policy(time).run(sender, idempotent=False, what="PutItem", write=True)
    assert result == ("ok", 1) and sender.calls == 2
