"""A server that accepts connections and never answers: every call ends within its limit."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Annotated

import pytest
from pydantic import Field

import dynamodm as dm

REG = dm.Registry("timeout-tests")


class Note(dm.Model):
    class Meta:
        table = "notes"
        registry = REG

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    text: str = ""


@pytest.fixture
def silent_server() -> Iterator[str]:
    """127.0.0.1:PORT that accepts, reads and never answers (bounded: closed at the end)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


POLICY = dm.RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget=5.0)


@pytest.mark.parametrize("transport", ["http", "botocore"])
async def test_a_read_times_out_after_its_retries(silent_server: str, transport: str) -> None:
    async with dm.connect(
        endpoint_url=silent_server,
        read_timeout=0.3,
        retry=POLICY,
        transport=transport,  # type: ignore[arg-type]
    ) as db:
        started = time.monotonic()
        with pytest.raises(dm.RequestTimeout, match="timed out after 3 attempts"):
            await Note.get("n-1", session=db)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3.0  # three reads of 0.3 s each, then the error


@pytest.mark.parametrize("transport", ["http", "botocore"])
async def test_a_create_whose_answer_never_comes_is_outcome_unknown(
    silent_server: str, transport: str
) -> None:
    async with dm.connect(
        endpoint_url=silent_server,
        read_timeout=0.3,
        retry=POLICY,
        transport=transport,  # type: ignore[arg-type]
    ) as db:
        started = time.monotonic()
        with pytest.raises(dm.OutcomeUnknown):
            await Note.create(text="once", session=db)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5  # not retried: it may have happened


async def test_the_retry_budget_bounds_the_whole_call(silent_server: str) -> None:
    policy = dm.RetryPolicy(max_attempts=50, base_delay=0.01, max_delay=0.02, budget=1.0)
    async with dm.connect(endpoint_url=silent_server, read_timeout=0.3, retry=policy) as db:
        started = time.monotonic()
        with pytest.raises(dm.RequestTimeout):
            await Note.get("n-1", session=db)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0


async def test_a_closed_port_is_connection_failed() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    async with dm.connect(endpoint_url=f"http://127.0.0.1:{port}", retry=POLICY) as db:
        with pytest.raises(dm.ConnectionFailed):
            await Note.get("n-1", session=db)
        # a write that never left is safe to retry, and fails the same way
        with pytest.raises(dm.ConnectionFailed):
            await Note.create(session=db)


async def test_cancellation_propagates_unchanged(silent_server: str) -> None:
    async with dm.connect(endpoint_url=silent_server, read_timeout=5, retry=POLICY) as db:
        task = asyncio.ensure_future(Note.get("n-1", session=db))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
