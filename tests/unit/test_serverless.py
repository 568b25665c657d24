"""dm.run, lambda_handler and stream_handler without a server.

Sessions here point at a closed loopback port: opening one makes no connection, so a
test passes only if nothing is sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm.serverless import run
from dynamodm.session import current_session

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing is sent
REGISTRY = dm.Registry("unit-serverless")
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2025-12-01T00:00:00.000"


class Order(dm.Model):
    class Meta:
        table = "orders"
        registry = REGISTRY

    id: Annotated[str, dm.HashKey]
    total: int = Field(ge=0)


class Receipt(dm.Model):
    class Meta:
        table = "receipts"
        registry = REGISTRY

    id: Annotated[str, dm.HashKey]


def record(
    sequence: str, order_id: str, total: Any = 1, *, table: str = "p-orders"
) -> dict[str, Any]:
    """An INSERT record as Lambda delivers it."""
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1764547200,
            "Keys": {"id": {"S": order_id}},
            "NewImage": {"id": {"S": order_id}, "total": {"N": str(total)}},
            "SequenceNumber": sequence,
            "SizeBytes": 20,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": ARN.format(table),
    }


@pytest.fixture
def opened() -> Any:
    """Sessions a test opens with dm.run, closed afterwards."""
    sessions: list[dm.Session] = []
    yield sessions
    for session in sessions:
        run(session.close())


# ---------------------------------------------------------------- dm.run


def test_run_returns_the_result_on_one_background_loop() -> None:
    async def where() -> tuple[int, int]:
        return id(asyncio.get_running_loop()), threading.get_ident()

    first, second = run(where()), run(where())
    assert first == second  # the same long-lived loop, on the same thread
    assert first[1] != threading.get_ident()


def test_run_from_many_threads_at_once() -> None:
    loops: set[int] = set()
    results: dict[int, list[int]] = {}

    async def echo(number: int) -> int:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.001)
        return number

    def caller(index: int) -> None:
        results[index] = [run(echo(index * 100 + n)) for n in range(25)]

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert results == {i: [i * 100 + n for n in range(25)] for i in range(8)}
    assert len(loops) == 1


def test_run_propagates_the_exception_itself() -> None:
    class Custom(Exception):
        pass

    raised = Custom("boom")

    async def fail() -> None:
        raise raised

    with pytest.raises(Custom) as caught:
        run(fail())
    assert caught.value is raised


def test_run_carries_the_callers_context_variables() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    request_id.set("req-7")

    async def read() -> str:
        return request_id.get()

    assert run(read()) == "req-7"


def test_run_accepts_any_awaitable_and_refuses_the_rest() -> None:
    async def seven() -> int:
        return 7

    class Awaitable:
        def __await__(self) -> Any:
            return seven().__await__()

    assert run(Awaitable()) == 7
    with pytest.raises(dm.UsageError, match="takes a coroutine"):
        run(seven)  # type: ignore[arg-type]


async def test_run_refuses_a_thread_whose_loop_runs() -> None:
    async def nothing() -> None:
        return None

    coro = nothing()
    with pytest.raises(dm.UsageError, match="await the coroutine instead"):
        run(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED  # no "never awaited"


def test_run_refuses_to_nest_on_its_own_loop() -> None:
    async def inner() -> int:
        return 1

    async def outer() -> int:
        return run(inner())

    with pytest.raises(dm.UsageError, match="await the coroutine instead"):
        run(outer())


def test_run_timeout_cancels_the_coroutine() -> None:
    cleaned = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.set()

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"within 0\.1 s"):
        run(slow(), timeout=0.1)
    assert time.monotonic() - started < 5
    assert cleaned.is_set()  # cancelled and cleaned up before run() returned


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT")
def test_run_interrupted_caller_cancels_the_task() -> None:
    started, cleaned = threading.Event(), threading.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.set()

    def interrupt() -> None:
        if started.wait(5):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)  # Ctrl-C

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run(slow())
    assert cleaned.is_set()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_run_in_a_forked_child_starts_its_own_loop() -> None:
    async def where() -> int:
        return id(asyncio.get_running_loop())

    parent_loop = run(where())
    child = os.fork()
    if child == 0:  # the child: the parent's loop thread does not exist here
        try:
            code = 0 if run(asyncio.sleep(0, 7), timeout=10) == 7 else 1
        except BaseException:
            code = 2
        os._exit(code)
    _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run(where()) == parent_loop  # the parent's loop is untouched


def test_session_opened_under_run_stays_open_and_is_the_fallback(opened: list[Any]) -> None:
    db = dm.connect(endpoint_url=NOWHERE, region="us-east-1")
    run(db.open())
    opened.append(db)

    async def which() -> dm.Session:
        return current_session()

    assert run(which()) is db
    assert run(which()) is db  # still open, still the one used, on later calls
    run(db.close())
    with pytest.raises(dm.ConfigurationError, match="no dynamodm session is open"):
        run(which())


def test_sessions_left_open_are_closed_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "left_open.py"
    script.write_text(
        "import asyncio, atexit, threading\n"
        "import dynamodm as dm\n"
        f"db = dm.connect(endpoint_url={NOWHERE!r}, region='us-east-1')\n"
        # Registered before dm.run starts its loop: runs after the loop's own exit handler.
        "atexit.register(lambda: print('closed at exit:', not db.is_open))\n"
        "dm.run(db.open())\n"
        # A caller still waiting at exit (a daemon thread) must not hold the exit up.
        "threading.Thread(target=dm.run, args=(asyncio.sleep(300),), daemon=True).start()\n"
        "print('open:', db.is_open)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-X", "dev", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["open: True", "closed at exit: True"]
    assert "Unclosed" not in done.stderr  # aiohttp's warning for a pool never closed
    assert time.monotonic() - started < 30


def test_exit_is_bounded_when_a_coroutine_ignores_cancellation(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import asyncio, threading\n"
        "import dynamodm as dm\n"
        "async def stubborn():\n"
        "    for _ in range(1000):\n"
        "        try:\n"
        "            await asyncio.sleep(1)\n"
        "        except asyncio.CancelledError:\n"
        "            pass\n"
        "threading.Thread(target=dm.run, args=(stubborn(),), daemon=True).start()\n"
        "dm.run(asyncio.sleep(0.1))\n"
        "print('exiting')\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "exiting\n"
    assert time.monotonic() - started < 15  # the exit handler gives up after about 7 s


# ---------------------------------------------------------------- lambda_handler


def test_lambda_handler_refuses_a_sync_function() -> None:
    def handler(event: Any, context: Any) -> None:
        return None

    with pytest.raises(dm.UsageError, match="async def handler"):
        dm.lambda_handler(handler)  # type: ignore[arg-type]


def test_lambda_handler_refuses_unknown_connect_keywords() -> None:
    with pytest.raises(dm.UsageError, match=r"dm\.connect\(\)'s keywords"):
        dm.lambda_handler(tabel_prefix="p-")


def test_lambda_handler_opens_one_session_for_every_invocation(opened: list[Any]) -> None:
    @dm.lambda_handler(endpoint_url=NOWHERE, region="us-east-1", table_prefix="p-")
    async def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Answers with the session it sees."""
        db = current_session()
        return {"session": db, "prefix": db.table_prefix, "echo": event["n"]}

    assert handler.__name__ == "handler"
    assert handler.__doc__ == "Answers with the session it sees."
    assert handler.session is None  # nothing opened at import
    answers = [handler({"n": n}, None) for n in range(5)]
    opened.append(handler.session)
    assert [a["echo"] for a in answers] == list(range(5))
    assert {id(a["session"]) for a in answers} == {id(handler.session)}
    assert answers[0]["prefix"] == "p-"


def test_lambda_handler_reopens_a_session_closed_under_it(opened: list[Any]) -> None:
    @dm.lambda_handler(endpoint_url=NOWHERE, region="us-east-1")
    async def handler(event: Any, context: Any) -> bool:
        return current_session().is_open

    assert handler({}, None)
    first = handler.session
    assert first is not None
    run(first.close())
    assert handler({}, None)
    opened.append(handler.session)
    assert handler.session is not None and handler.session.is_open


def test_lambda_handler_bare_decorator_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch, opened: list[Any]
) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", NOWHERE)
    monkeypatch.setenv("DYNAMODB_TABLE_PREFIX", "env-")

    @dm.lambda_handler
    async def handler(event: Any, context: Any) -> str:
        return current_session().table_prefix

    assert handler({}, None) == "env-"
    opened.append(handler.session)


def test_lambda_handler_errors_reach_the_caller(opened: list[Any]) -> None:
    @dm.lambda_handler(endpoint_url=NOWHERE, region="us-east-1")
    async def handler(event: Any, context: Any) -> None:
        raise dm.NotFound("no such order")

    with pytest.raises(dm.NotFound, match="no such order"):
        handler({}, None)
    opened.append(handler.session)


# ---------------------------------------------------------------- stream_handler


def make_stream_handler(
    seen: list[str], fail_on: set[str] = frozenset(), **connect: Any
) -> dm.serverless.StreamHandler:
    @dm.stream_handler(
        Order, endpoint_url=NOWHERE, region="us-east-1", table_prefix="p-", **connect
    )
    async def handler(change: dm.StreamChange) -> None:
        assert isinstance(change.new, Order)
        if change.new.id in fail_on:
            raise RuntimeError(f"cannot handle {change.new.id}")
        seen.append(change.new.id)

    return handler


def test_stream_handler_runs_f_once_per_change_in_order(opened: list[Any]) -> None:
    seen: list[str] = []
    handler = make_stream_handler(seen)
    event = {"Records": [record(str(n), f"o{n}") for n in range(1, 6)]}
    assert handler(event, None) == {"batchItemFailures": []}
    opened.append(handler.session)
    assert seen == ["o1", "o2", "o3", "o4", "o5"]


def test_stream_handler_stops_at_the_first_failure(opened: list[Any]) -> None:
    seen: list[str] = []
    handler = make_stream_handler(seen, fail_on={"o3", "o5"})
    event = {"Records": [record(str(n), f"o{n}") for n in range(1, 6)]}
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "3"}]}
    opened.append(handler.session)
    assert seen == ["o1", "o2"]  # o4 waits for o3: Lambda retries from 3


def test_stream_handler_reports_a_record_that_does_not_validate(
    opened: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    handler = make_stream_handler(seen)
    poison = record("2", "o2", total=-5)  # total must be >= 0
    event = {"Records": [record("1", "o1"), poison, record("3", "o3")]}
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    opened.append(handler.session)
    assert seen == ["o1"]
    assert "-5" not in caplog.text  # item values never reach the library's logs
    assert "stream record 2 does not validate (fields: total)" in caplog.text


def test_stream_handler_logs_what_failed_without_values(
    opened: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    @dm.stream_handler(Order, endpoint_url=NOWHERE, region="us-east-1", table_prefix="p-")
    async def handler(change: dm.StreamChange) -> None:
        assert isinstance(change.new, Order)
        if change.new.id == "o1":
            Receipt(id=12345)  # type: ignore[arg-type]  # f's own validation error
        raise RuntimeError("downstream unavailable")

    first = handler({"Records": [record("1", "o1")]}, None)
    second = handler({"Records": [record("2", "o2")]}, None)
    opened.append(handler.session)
    assert first == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert second == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert "stream record 1 failed: ValidationError (fields: id)" in caplog.text
    assert "12345" not in caplog.text
    assert "stream record 2 failed: RuntimeError" in caplog.text
    assert "downstream unavailable" in caplog.text  # f's traceback, for debugging


def test_stream_handler_skips_tables_of_other_models() -> None:
    seen: list[str] = []
    handler = make_stream_handler(seen)
    receipt = record("1", "r1", table="p-receipts")
    elsewhere = record("2", "o2", table="other-orders")  # another prefix
    assert handler({"Records": [receipt, elsewhere]}, None) == {"batchItemFailures": []}
    assert seen == []
    assert handler.session is None  # nothing to hand to f: no session


def test_stream_handler_prefix_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, opened: list[Any]
) -> None:
    monkeypatch.setenv("DYNAMODB_TABLE_PREFIX", "env-")
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", NOWHERE)
    seen: list[str] = []

    @dm.stream_handler(Order)
    async def handler(change: dm.StreamChange) -> None:
        seen.append(change.keys["id"])

    event = {"Records": [record("1", "o1", table="env-orders"), record("2", "o2")]}
    assert handler(event, None) == {"batchItemFailures": []}
    opened.append(handler.session)
    assert seen == ["o1"]


def test_stream_handler_without_sequence_number_fails_the_batch(opened: list[Any]) -> None:
    seen: list[str] = []
    handler = make_stream_handler(seen, fail_on={"o1"})
    broken = record("1", "o1")
    del broken["dynamodb"]["SequenceNumber"]
    with pytest.raises(RuntimeError, match="cannot handle o1"):
        handler({"Records": [broken]}, None)
    opened.append(handler.session)


def test_stream_handler_refuses_what_is_not_a_stream_event() -> None:
    handler = make_stream_handler([])
    with pytest.raises(dm.UsageError, match="no 'Records' list"):
        handler({"body": "{}"}, None)


def test_stream_handler_needs_models_and_an_async_function() -> None:
    with pytest.raises(dm.UsageError, match="needs the models"):

        @dm.stream_handler()
        async def nothing(change: dm.StreamChange) -> None:
            return None

    class Abstract(dm.Model):
        name: str

    with pytest.raises(dm.UsageError, match="'Abstract' is not one"):
        dm.stream_handler(Abstract)

    with pytest.raises(dm.UsageError, match=r"async def f\(change\)"):
        dm.stream_handler(Order)(lambda change: None)  # type: ignore[arg-type,return-value]
