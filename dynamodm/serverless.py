"""Sync callers and serverless functions: one long-lived event loop per process.

``dm.run(coro)`` runs a coroutine on that loop (a daemon thread, started on first use)
and returns its result, from any thread. Sessions opened under it stay open across
calls, their connection pools warm. ``@dm.lambda_handler`` and ``@dm.stream_handler``
turn ``async def`` functions into the sync handlers AWS Lambda calls, each with one
session opened at first need and reused by every later invocation of the container.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from pydantic import ValidationError

from .errors import ConfigurationError, ItemInvalid, UsageError
from .registry import Registry
from .session import Session, connect, current_session
from .streams import StreamChange, parse_stream

if TYPE_CHECKING:
    from .model import Model

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("dynamodm.serverless")

_START_TIMEOUT = 10.0  # for the loop's thread to start running the loop
_CANCEL_GRACE = 5.0  # how long an interrupted caller waits for the cancelled task's cleanup
_EXIT_TIMEOUT = 5.0  # at interpreter exit: to cancel what still runs and close sessions
_EXIT_MAX_SESSIONS = 1000
_RUNNING_LOOP = (
    "dm.run() was called from a thread whose event loop is running (async code, a "
    "notebook cell): await the coroutine instead"
)

# -------------------------------------------------------------------- the process's loop


class _Runner:
    """One event loop running forever in a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._at_exit = False
        self._calls: set[asyncio.Task[Any]] = set()  # touched on the loop's thread only

    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None and loop.is_running():
            return loop
        with self._lock:
            loop = self._loop
            if loop is None or not loop.is_running():
                loop = self._start()
            return loop

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        thread = threading.Thread(
            target=self._serve, args=(loop, started), name="dynamodm-loop", daemon=True
        )
        thread.start()
        if not started.wait(_START_TIMEOUT):
            loop.call_soon_threadsafe(loop.stop)
            raise RuntimeError(f"dm.run: the event loop did not start within {_START_TIMEOUT} s")
        self._loop, self._thread = loop, thread
        if not self._at_exit:
            atexit.register(self.shutdown)
            self._at_exit = True
        return loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def forget_after_fork(self) -> None:
        """In a forked child the loop's thread does not exist: start afresh on next use."""
        self._lock = threading.Lock()
        self._loop = self._thread = None

    def shutdown(self) -> None:
        """Close the loop's sessions and stop it, in bounded time (registered with atexit
        when the loop starts)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or not loop.is_running():
            return
        if thread is threading.current_thread():
            return  # cannot wait for the loop from its own thread
        done = asyncio.run_coroutine_threadsafe(_wind_down(self._calls), loop)
        try:
            done.result(_EXIT_TIMEOUT + 1.0)
        except Exception as error:  # the process is ending: report and carry on
            logger.warning("dynamodm: closing sessions at exit failed: %r", error)
            done.cancel()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(1.0)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        loop = self.loop()
        context = contextvars.copy_context()  # the caller's context variables travel
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:
            task = loop.create_task(coro, context=context)
            tasks.append(task)
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            task.add_done_callback(functools.partial(_settle, outcome))

        def abandon() -> None:
            # Callbacks run in the order they were scheduled: no task means that start()
            # was never scheduled, and the coroutine never will run.
            if tasks:
                tasks[0].cancel()
            elif not outcome.done():
                coro.close()
                outcome.set_exception(asyncio.CancelledError())

        try:
            loop.call_soon_threadsafe(start)
            return outcome.result(timeout)
        except BaseException as error:
            if outcome.done():
                raise  # the coroutine's own exception, or an interrupt as it finished
            # The caller was interrupted (KeyboardInterrupt) or timed out: cancel the task
            # and give it a moment to clean up before the interrupt goes on.
            loop.call_soon_threadsafe(abandon)
            concurrent.futures.wait([outcome], _CANCEL_GRACE)
            if isinstance(error, TimeoutError):
                raise TimeoutError(
                    f"dm.run: the coroutine did not finish within {timeout:g} s; it was cancelled"
                ) from None
            raise


def _settle(outcome: concurrent.futures.Future[T], task: asyncio.Task[T]) -> None:
    if task.cancelled():
        outcome.set_exception(asyncio.CancelledError())
    elif (error := task.exception()) is not None:
        outcome.set_exception(error)
    else:
        outcome.set_result(task.result())


async def _wind_down(calls: set[asyncio.Task[Any]]) -> None:
    """At exit: cancel the calls still running (their callers, daemon threads, will never
    see a result), close every session open on this loop, then cancel what else runs."""
    step = _EXIT_TIMEOUT / 3
    await _cancel(set(calls), step)
    try:
        async with asyncio.timeout(step):
            for _ in range(_EXIT_MAX_SESSIONS):
                try:
                    session = current_session()  # the latest session open on this loop
                except ConfigurationError:
                    break
                await session.close()
    except TimeoutError:
        logger.warning("dynamodm: sessions were still closing at exit after %g s", step)
    this = asyncio.current_task()
    await _cancel({task for task in asyncio.all_tasks() if task is not this}, step)


async def _cancel(tasks: set[asyncio.Task[Any]], grace: float) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=grace)


_runner = _Runner()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_runner.forget_after_fork)


def run(coro: Awaitable[T], *, timeout: float | None = None) -> T:
    """Run a coroutine on the process's own long-lived event loop and return its result.

    The way for sync code (Lambda sync handlers, Django and Flask views, scripts) to use
    the library, from any number of threads at once: ``user = dm.run(User.get("ada"))``.
    The coroutine's exceptions propagate unchanged. A session opened under it without
    ``async with`` (``dm.run(db.open())``) stays open, its connection pool warm, and is
    the session of later calls until ``dm.run(db.close())``; sessions still open when the
    interpreter exits are closed then.

    ``timeout`` (seconds) cancels the coroutine and raises ``TimeoutError`` when it runs
    longer. If the calling thread is interrupted (Ctrl-C), the coroutine is cancelled too.
    Called from a thread whose event loop is running, it raises ``dm.UsageError``: await
    the coroutine there instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(coro):
            coro.close()  # never to run: no "was never awaited" warning
        raise UsageError(_RUNNING_LOOP)
    if not inspect.isawaitable(coro):
        raise UsageError(
            f"dm.run() takes a coroutine, e.g. dm.run(User.get('ada')); got {type(coro).__name__}"
        )
    if inspect.iscoroutine(coro):
        return _runner.call(cast("Coroutine[Any, Any, T]", coro), timeout)
    return _runner.call(_awaited(coro), timeout)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


# -------------------------------------------------------------------- handlers


def _check_connect_kwargs(connect_kwargs: Mapping[str, Any], decorator: str) -> None:
    try:
        inspect.signature(connect).bind(**connect_kwargs)
    except TypeError as error:
        raise UsageError(f"@dm.{decorator}(...) takes dm.connect()'s keywords: {error}") from None


class _SharedSession:
    """One session per handler: opened on the runner's loop at first need, kept open."""

    def __init__(self, connect_kwargs: Mapping[str, Any], decorator: str) -> None:
        _check_connect_kwargs(connect_kwargs, decorator)
        self._kwargs = dict(connect_kwargs)
        self.session: Session | None = None  # the session opened last
        self._unopened: Session | None = None
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @property
    def table_prefix(self) -> str:
        """The session's table prefix (``table_prefix``, else DYNAMODB_TABLE_PREFIX)."""
        return (self.session or self._next()).table_prefix

    def _next(self) -> Session:
        if self._unopened is None:
            self._unopened = connect(**self._kwargs)
        return self._unopened

    async def opened(self) -> Session:
        session = self.session
        if session is not None and _usable(session):
            return session
        loop = asyncio.get_running_loop()
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        async with self._opening[1]:  # one opening, however many invocations wait for it
            session = self.session
            if session is None or not _usable(session):
                # Closed under the handler, or open on a loop that is gone (a forked
                # child): a new session.
                session, self._unopened = self._next(), None
                await session.open()
                self.session = session
        return session


def _usable(session: Session) -> bool:
    """Whether the session is open on the running loop."""
    try:
        session.transport  # noqa: B018 (raises when closed or bound to another loop)
    except ConfigurationError:
        return False
    return True


def _check_async(func: Callable[..., Any], decorator: str, signature: str) -> None:
    if not inspect.iscoroutinefunction(func):
        raise UsageError(
            f"@dm.{decorator} wraps an `async def {signature}`; "
            f"{getattr(func, '__qualname__', func)!r} is not a coroutine function"
        )


class LambdaHandler(Generic[R]):
    """A sync AWS Lambda handler running an ``async def handler(event, context)`` on the
    process's loop (made by ``@dm.lambda_handler``)."""

    def __init__(
        self,
        func: Callable[[Any, Any], Awaitable[R]],
        connect_kwargs: Mapping[str, Any],
    ) -> None:
        _check_async(func, "lambda_handler", "handler(event, context)")
        self._func = func
        self._shared = _SharedSession(connect_kwargs, "lambda_handler")
        functools.update_wrapper(self, func)

    @property
    def session(self) -> Session | None:
        """The handler's session once the first invocation has opened it, else None."""
        return self._shared.session

    def __call__(self, event: Any, context: Any = None) -> R:
        return run(self._invoke(event, context))

    async def _invoke(self, event: Any, context: Any) -> R:
        # The handler's session is the latest one opened on this loop, so model calls in
        # the handler use it without being passed it.
        await self._shared.opened()
        return await self._func(event, context)


@overload
def lambda_handler(func: Callable[[Any, Any], Awaitable[R]], /) -> LambdaHandler[R]: ...


@overload
def lambda_handler(
    **connect_kwargs: Any,
) -> Callable[[Callable[[Any, Any], Awaitable[R]]], LambdaHandler[R]]: ...


def lambda_handler(
    func: Callable[[Any, Any], Awaitable[R]] | None = None, /, **connect_kwargs: Any
) -> LambdaHandler[R] | Callable[[Callable[[Any, Any], Awaitable[R]]], LambdaHandler[R]]:
    """Turn ``async def handler(event, context)`` into the sync handler Lambda calls.

    ::

        @dm.lambda_handler(table_prefix="prod-")
        async def handler(event, context):
            return (await User.get(event["id"])).model_dump(mode="json")

    Invocations run on the process's long-lived loop (``dm.run``). The first one opens a
    session with ``dm.connect(**connect_kwargs)``; later invocations of the same
    container reuse it, its connections warm (no new TLS handshake, no new client). It
    is closed when the process ends. Model calls in the handler use it without being
    passed it (it is the latest session opened on the loop).
    """
    if func is not None:
        return LambdaHandler(func, connect_kwargs)
    _check_connect_kwargs(connect_kwargs, "lambda_handler")

    def decorate(handler: Callable[[Any, Any], Awaitable[R]]) -> LambdaHandler[R]:
        return LambdaHandler(handler, connect_kwargs)

    return decorate


StreamFunction = Callable[[StreamChange], Awaitable[Any]]


class StreamHandler:
    """A sync AWS Lambda handler for DynamoDB Streams events, running an
    ``async def f(change)`` once per change (made by ``@dm.stream_handler``)."""

    def __init__(
        self,
        func: StreamFunction,
        models: Iterable[type[Model]],
        connect_kwargs: Mapping[str, Any],
    ) -> None:
        _check_async(func, "stream_handler", "f(change)")
        self.models = _check_models(models)
        # The models alone: records of other tables, or of other entity types of a
        # shared table, are skipped.
        self._registry = Registry(f"stream_handler {getattr(func, '__qualname__', func)}")
        for model in self.models:
            self._registry.register(model)
        self._func = func
        self._shared = _SharedSession(connect_kwargs, "stream_handler")
        functools.update_wrapper(self, func)

    @property
    def session(self) -> Session | None:
        """The handler's session once a change has needed it, else None."""
        return self._shared.session

    def __call__(self, event: Any, context: Any = None) -> dict[str, list[dict[str, str]]]:
        return run(self._invoke(event))

    async def _invoke(self, event: Any) -> dict[str, list[dict[str, str]]]:
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list):
            raise UsageError(
                "@dm.stream_handler: the event has no 'Records' list; is the function "
                "triggered by a DynamoDB stream?"
            )
        prefix = self._shared.table_prefix
        for record in records:
            try:
                changes = parse_stream([record], table_prefix=prefix, registry=self._registry)
            except (ItemInvalid, ValidationError, UsageError) as error:
                return _failed(record, error, reading=True)
            for change in changes:
                await self._shared.opened()
                try:
                    await self._func(change)
                except Exception as error:
                    return _failed(record, error, reading=False)
        return {"batchItemFailures": []}


def _check_models(models: Iterable[type[Model]]) -> tuple[type[Model], ...]:
    checked = tuple(models)
    if not checked:
        raise UsageError(
            "@dm.stream_handler(...) needs the models whose changes f handles, "
            "e.g. @dm.stream_handler(Order)"
        )
    for model in checked:
        if getattr(model, "__dm_schema__", None) is None:
            raise UsageError(
                "@dm.stream_handler(...) takes models with a table (Meta.table); "
                f"{getattr(model, '__name__', model)!r} is not one"
            )
    return checked


def _failed(record: Any, error: Exception, *, reading: bool) -> dict[str, list[dict[str, str]]]:
    """Lambda's partial batch response: retry from this record (it and every later one).
    ``reading``: the record could not be read, else the handler's function raised."""
    body = record.get("dynamodb") if isinstance(record, Mapping) else None
    sequence = body.get("SequenceNumber") if isinstance(body, Mapping) else None
    if not sequence:
        raise error  # nothing to name: the whole batch fails and is retried
    if isinstance(error, ItemInvalid):
        logger.warning(
            "stream record %s does not validate (fields: %s)", sequence, ", ".join(error.fields)
        )
    elif isinstance(error, ValidationError):
        # Pydantic's message quotes the values: log where validation failed, not what.
        where = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
        what = "does not validate" if reading else "failed: ValidationError"
        logger.warning("stream record %s %s (fields: %s)", sequence, what, where)
    elif reading:
        logger.warning("stream record %s cannot be read: %s", sequence, error)
    else:
        logger.warning(
            "stream record %s failed: %s; Lambda retries from it",
            sequence,
            type(error).__name__,
            exc_info=error,
        )
    return {"batchItemFailures": [{"itemIdentifier": str(sequence)}]}


def stream_handler(
    *models: type[Model], **connect_kwargs: Any
) -> Callable[[StreamFunction], StreamHandler]:
    """Turn ``async def f(change)`` into a DynamoDB Streams Lambda handler.

    ::

        @dm.stream_handler(Order, table_prefix="prod-")
        async def handler(change: dm.StreamChange) -> None:
            if change.operation == "INSERT":
                await Invoice.create(order_id=change.new.id)

    Each record is parsed with ``dm.parse_stream`` (table prefix: ``table_prefix`` here,
    else ``DYNAMODB_TABLE_PREFIX``); records of tables that belong to none of ``models``
    are skipped. ``f`` runs once per change, in the records' order. The first record
    whose processing raises, or whose item does not validate, stops the batch, and the
    handler returns Lambda's partial batch response naming it
    (``{"batchItemFailures": [{"itemIdentifier": <sequence number>}]}``): with
    ``ReportBatchItemFailures`` on, Lambda retries from that record, so order holds.
    The session (``dm.connect(**connect_kwargs)``) is opened before the first change is
    handed to ``f``, never for an event with none, and then kept; it makes no connection
    until ``f`` sends a request.
    """
    _check_models(models)
    _check_connect_kwargs(connect_kwargs, "stream_handler")

    def decorate(func: StreamFunction) -> StreamHandler:
        return StreamHandler(func, models, connect_kwargs)

    return decorate
