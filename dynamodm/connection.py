"""Connection: the one place that sends. One request through the retry policy, request
events, dry runs, errors mapped to the library's, physical table names, and which
connection a call uses when none is passed.

Everything below it (plans, keys, codec) is pure; the units above it (queries, batches,
transactions, tables) and the Session run on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

from .cursor import DEFAULT_CURSOR_KEY
from .errors import (
    THROTTLING_CODES,
    ConfigurationError,
    ConnectionFailed,
    OutcomeUnknown,
    ServiceError,
    TableNotFound,
    TransportError,
    UsageError,
    from_service,
)
from .observe import (
    Listener,
    RequestEvent,
    RequestScope,
    active_dry_run,
    log_event,
    request_hooks,
)
from .observe import logger as request_logger
from .ratelimit import (
    CAPACITY_OPERATIONS,
    WRITE_OPERATIONS,
    CapacityEstimates,
    RateLimit,
    charge,
    consumed_units,
    kind_of,
)
from .retry import RetryPolicy, RetryQuota
from .schema import TableNames
from .transport import (
    BotocoreTransport,
    HttpTransport,
    Request,
    Response,
    Transport,
    open_transport,
)

if TYPE_CHECKING:
    import aioboto3

    from .model import Model

_current: ContextVar[Connection | None] = ContextVar("dynamodm_session", default=None)
_open: list[Connection] = []
logger = logging.getLogger("dynamodm.session")
# How long close() waits for calls in flight before it closes the transport under them.
_CLOSE_GRACE = 10.0

NO_SESSION = (
    "no dynamodm session is open: wrap the calls in `async with dm.connect(...) as db:` "
    "(or open one in your app's lifespan), or pass session=..."
)


def env(*names: str) -> str | None:
    """The first of these environment variables that is set and not empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def current_connection(explicit: Connection | None = None) -> Connection:
    """The connection a call uses: ``explicit``, else the innermost one opened in this
    task's context, else the most recently opened one still open on the running event
    loop (never one bound to another thread's loop or to a closed loop)."""
    if explicit is not None:
        return explicit
    found = _current.get()
    if found is not None and found.is_open:
        return found
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    for connection in reversed(_open):
        if connection._loop is loop and loop is not None:
            return connection
    raise ConfigurationError(NO_SESSION)


class Connection:
    """An open connection to DynamoDB: sends requests; the Session adds the verbs."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        table_prefix: str | None = None,
        boto_session: aioboto3.Session | None = None,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 64,
        consumed_capacity: Literal["TOTAL", "INDEXES"] | None = None,
        transport: Literal["http", "botocore"] = "http",
        cursor_secret: str | bytes | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        if transport not in ("http", "botocore"):
            raise ConfigurationError(
                f"transport={transport!r}: use 'http' (the fast default) or 'botocore'"
            )
        self.transport_name = transport
        secret = cursor_secret or env("DYNAMODM_CURSOR_SECRET")
        self.cursor_key = (
            secret.encode() if isinstance(secret, str) else secret or DEFAULT_CURSOR_KEY
        )
        self.endpoint_url = endpoint_url or env("DYNAMODB_ENDPOINT_URL", "DYNAMODB_ENDPOINT")
        prefix = table_prefix if table_prefix is not None else env("DYNAMODB_TABLE_PREFIX")
        self.names = TableNames(prefix or "")
        self.region = region
        self.retry = retry or RetryPolicy()
        self.retry_quota = (
            RetryQuota(self.retry.quota, self.retry.quota_refill, self.retry.clock)
            if self.retry.quota is not None
            else None
        )
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.consumed_capacity = consumed_capacity
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise ConfigurationError(
                f"rate_limit={rate_limit!r}: give a dm.RateLimit(read=..., write=...)"
            )
        self.rate_limit = rate_limit
        self.capacity_estimates = CapacityEstimates()
        self._boto_session = boto_session
        self._transport: Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tokens: list[Token[Connection | None]] = []
        self._listeners: list[Listener] = []
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        self._closing = False

    @property
    def table_prefix(self) -> str:
        """The prefix of every physical table name (``DYNAMODB_TABLE_PREFIX``)."""
        return self.names.prefix

    # -- lifecycle

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._closing

    async def open(self) -> Connection:
        """Open the connection (``async with`` does this for you)."""
        if self._transport is not None:
            raise UsageError("this session is already open")
        self._transport, self.region = await open_transport(
            self.transport_name,
            region=self.region,
            endpoint_url=self.endpoint_url,
            boto_session=self._boto_session,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_connections=self.max_connections,
        )
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        _open.append(self)
        return self

    async def close(self) -> None:
        """Close the connection. New calls are refused at once; calls in flight finish
        (up to a grace period of 10 seconds) before the connection pool closes."""
        if self._transport is None:
            return
        self._closing = True
        if self in _open:
            _open.remove(self)
        if self._inflight and self._idle is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), _CLOSE_GRACE)
            except TimeoutError:
                logger.warning(
                    "closing a dynamodm session with %d calls still in flight", self._inflight
                )
        transport, self._transport = self._transport, None
        self._closing = False
        if transport is not None:
            await transport.close()

    async def __aenter__(self) -> Any:
        if self._transport is None:
            await self.open()
        self._tokens.append(_current.set(self))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tokens:
            token = self._tokens.pop()
            try:
                _current.reset(token)
            except ValueError:
                _current.set(None)
        await self.close()

    @property
    def transport(self) -> Transport:
        if self._transport is None or self._closing:
            raise ConfigurationError(
                "this session is closed: use it inside `async with dm.connect(...)`"
            )
        if self._loop is not asyncio.get_running_loop():
            raise ConfigurationError(
                "this session was opened on another event loop; open a session in each loop "
                "(e.g. per test, or per asyncio.run in a Lambda handler), or use dm.run"
            )
        return self._transport

    @property
    def client(self) -> Any:
        """The aioboto3 DynamoDB client of this session (an escape hatch)."""
        transport = self.transport
        if isinstance(transport, BotocoreTransport | HttpTransport):
            return transport.client
        raise ConfigurationError("this session's transport has no aioboto3 client")

    # -- requests

    def table_name(self, model: type[Model]) -> str:
        """The physical table name of a model: ``table_prefix + Meta.table``."""
        return self.names.of(model)

    async def call(
        self,
        operation: str,
        request: Request,
        *,
        idempotent: bool,
        table: str | None = None,
        rate_limit: RateLimit | None = None,
        raw_binary: bool = False,
    ) -> Response:
        """Send one request through the retry policy; errors become the library's.

        When the service answers that a table does not exist, ``create_missing_tables``
        may create it (a Session with ``auto_create_tables``), and the request is sent
        once more. ``rate_limit`` paces this request as well as the session's limit.
        ``raw_binary``: the items of a GetItem, Query, Scan, BatchGetItem or UpdateItem
        answer may keep their binary values as base64 text, for a caller that decodes them
        (``raw_loader``)."""
        created = False
        while True:
            try:
                return await self._call(
                    operation,
                    request,
                    idempotent=idempotent,
                    table=table,
                    rate_limit=rate_limit,
                    raw_binary=raw_binary,
                )
            except TableNotFound:
                if created or operation.endswith("Table"):
                    raise
                names = [table] if table else list(request.get("RequestItems", {}))
                if not await self.create_missing_tables(names):
                    raise
                created = True  # sent once more; a second TableNotFound is the answer

    async def create_missing_tables(self, names: list[str]) -> bool:
        """Create tables that a request found missing; True when it did. The base
        connection creates none (the Session does, with ``auto_create_tables``)."""
        return False

    async def _call(
        self,
        operation: str,
        request: Request,
        *,
        idempotent: bool,
        table: str | None,
        rate_limit: RateLimit | None = None,
        raw_binary: bool = False,
    ) -> Response:
        if not request_hooks:
            return await self._request(
                operation,
                request,
                idempotent=idempotent,
                table=table,
                rate_limit=rate_limit,
                raw_binary=raw_binary,
            )
        # Hooks (tracing) follow the whole request, retries included, in this context.
        with contextlib.ExitStack() as stack:
            tables = table or _tables_of(request)
            scopes = tuple(
                stack.enter_context(hook(self, operation, tables)) for hook in list(request_hooks)
            )
            return await self._request(
                operation,
                request,
                idempotent=idempotent,
                table=table,
                rate_limit=rate_limit,
                scopes=scopes,
                raw_binary=raw_binary,
            )

    async def _request(
        self,
        operation: str,
        request: Request,
        *,
        idempotent: bool,
        table: str | None,
        rate_limit: RateLimit | None = None,
        scopes: tuple[RequestScope, ...] = (),
        raw_binary: bool = False,
    ) -> Response:
        transport = self.transport
        # Only the fast transport leaves binary values to the caller (botocore decodes them).
        raw_binary = raw_binary and isinstance(transport, HttpTransport)
        capture = active_dry_run.get()
        if capture is not None:
            self._emit(operation, table, 0.0, 0, "dry-run", None, dry_run=True, scopes=scopes)
            return capture.answer(operation, request)
        limits = (
            [
                limit
                for limit in (self.rate_limit, rate_limit)
                if limit is not None and operation in CAPACITY_OPERATIONS
            ]
            if self.rate_limit is not None or rate_limit is not None
            else _NO_LIMITS
        )
        # A rate-limited request asks what it consumed, to correct its estimate.
        capacity = self.consumed_capacity or ("TOTAL" if limits else None)
        if capacity and operation in CAPACITY_OPERATIONS:
            request = {**request, "ReturnConsumedCapacity": capacity}
        attempts = 0
        write = operation in WRITE_OPERATIONS
        units = self.capacity_estimates.estimate(operation, request) if limits else 0.0

        last_reason = ""

        async def send() -> Response:
            nonlocal attempts, last_reason
            # Paced per attempt: a retry is charged again (a throttled attempt is refunded).
            charged = await charge(limits, kind_of(operation), units) if limits else None
            if self._transport is None:  # closed under a call that was retrying
                if charged is not None:
                    charged.refund()
                raise ConnectionFailed(f"{operation}: the session was closed during the call")
            if attempts and scopes:
                for scope in scopes:
                    _safely(scope.retried, attempts + 1, last_reason)
            attempts += 1
            try:
                if raw_binary:
                    fast = cast(HttpTransport, transport)
                    response = await fast.send(operation, request, raw_binary=True)
                else:
                    response = await transport.send(operation, request)
            except (ServiceError, TransportError) as error:
                last_reason = getattr(error, "code", None) or type(error).__name__
                if (
                    charged is not None
                    and isinstance(error, ServiceError)
                    and error.code in THROTTLING_CODES
                ):
                    charged.answered(0.0, throttled=True)
                raise
            if charged is None:
                return response
            left = response.get("UnprocessedItems") or response.get("UnprocessedKeys")
            charged.answered(consumed_units(response), throttled=bool(left))
            self.capacity_estimates.record(operation, request, response)
            return response

        observed = (
            bool(self._listeners) or bool(scopes) or request_logger.isEnabledFor(logging.DEBUG)
        )
        started = time.perf_counter() if observed else 0.0
        what = f"{operation} on {table!r}" if table else operation
        if observed and table is None:
            table = _tables_of(request)  # events of batches and transactions name theirs
        self._inflight += 1
        if self._idle is not None:
            self._idle.clear()
        try:
            response, _retries = await self.retry.run(
                send, idempotent=idempotent, what=what, write=write, quota=self.retry_quota
            )
        except ServiceError as error:
            if observed:
                self._emit(
                    operation,
                    table,
                    started,
                    attempts,
                    error.code or "error",
                    None,
                    request_id=error.request_id,
                    scopes=scopes,
                )
            named = table or _tables_of(request)
            raise from_service(error, operation=operation, table=named) from None
        except RuntimeError as error:
            if self._transport is not None and not self._closing:
                raise
            # aiohttp's "Session is closed": the pool closed under this call.
            if observed:
                self._emit(operation, table, started, attempts, "closed", None, scopes=scopes)
            if write and attempts and not idempotent:
                raise OutcomeUnknown(
                    f"{what}: the session was closed while the write was in flight; it may "
                    "or may not have been applied: read the item to find out"
                ) from error
            raise ConnectionFailed(f"{what}: the session was closed during the call") from error
        except BaseException as error:
            if observed:
                self._emit(
                    operation,
                    table,
                    started,
                    attempts,
                    type(error).__name__,
                    None,
                    scopes=scopes,
                )
            raise
        finally:
            self._inflight -= 1
            if not self._inflight and self._idle is not None:
                self._idle.set()
        if observed:
            capacity = response.get("ConsumedCapacity")
            request_id = response.get("ResponseMetadata", {}).get("RequestId")
            self._emit(
                operation,
                table,
                started,
                attempts,
                "ok",
                capacity,
                request_id=request_id,
                scopes=scopes,
            )
        return response

    def _emit(
        self,
        operation: str,
        table: str | None,
        started: float,
        attempts: int,
        outcome: str,
        capacity: Any,
        *,
        dry_run: bool = False,
        request_id: str | None = None,
        scopes: tuple[RequestScope, ...] = (),
    ) -> None:
        latency = time.perf_counter() - started if started else 0.0
        event = RequestEvent(
            operation, table, latency, max(attempts - 1, 0), outcome, capacity, dry_run, request_id
        )
        log_event(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("a dynamodm request listener failed")
        for scope in scopes:
            _safely(scope.finished, event)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` after every request (a ``dm.RequestEvent``)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)


_NO_LIMITS: list[Any] = []


def _tables_of(request: Request) -> str | None:
    """The tables a multi-table request names (batches, transactions), for its errors."""
    names: dict[str, None] = dict.fromkeys(request.get("RequestItems", ()))
    for action in request.get("TransactItems", ()):
        for body in action.values():
            names[body["TableName"]] = None
    return ", ".join(names) or None


def _safely(function: Callable[..., None], *args: Any) -> None:
    """Call a request hook's scope; a failure in it never fails the request."""
    try:
        function(*args)
    except Exception:
        logger.exception("a dynamodm request hook failed")
