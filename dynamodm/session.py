"""Session: the one place where model operations become DynamoDB requests."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Sequence
from contextvars import ContextVar, Token
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import batch, hooks, keys, tables, unique, writes
from .codec import Item
from .errors import (
    ConfigurationError,
    NotFound,
    ServiceError,
    TableNotFound,
    UsageError,
    from_service,
)
from .expressions import (
    Action,
    ConditionLike,
    Path,
)
from .model import set_state
from .observe import Listener, RequestEvent, active_dry_run, log_event
from .observe import logger as request_logger
from .query import DEFAULT_CURSOR_KEY
from .retry import RetryPolicy
from .schema import StreamView
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

M = TypeVar("M", bound="Model")

_current: ContextVar[Session | None] = ContextVar("dynamodm_session", default=None)
_open_sessions: list[Session] = []
logger = logging.getLogger("dynamodm.session")
_WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
_CAPACITY_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)



def current_session(explicit: Session | None = None) -> Session:
    """The session a model call uses: explicit, else this task's, else the latest open one."""
    if explicit is not None:
        return explicit
    session = _current.get()
    if session is not None and session.is_open:
        return session
    if _open_sessions:
        return _open_sessions[-1]
    raise ConfigurationError(
        "no dynamodm session is open: wrap the calls in `async with dm.connect(...) as db:` "
        "(or open one in your app's lifespan), or pass session=..."
    )


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


class Session:
    """An open connection to DynamoDB (an async context manager). See ``dm.connect``."""

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
        auto_create_tables: bool = False,
        consumed_capacity: Literal["TOTAL", "INDEXES"] | None = None,
        transport: Literal["http", "botocore"] = "http",
        cursor_secret: str | bytes | None = None,
    ) -> None:
        if transport not in ("http", "botocore"):
            raise ConfigurationError(
                f"transport={transport!r}: use 'http' (the fast default) or 'botocore'"
            )
        self.transport_name = transport
        secret = cursor_secret or _env("DYNAMODM_CURSOR_SECRET")
        self.cursor_key = (
            secret.encode() if isinstance(secret, str) else secret or DEFAULT_CURSOR_KEY
        )
        self.endpoint_url = endpoint_url or _env("DYNAMODB_ENDPOINT_URL", "DYNAMODB_ENDPOINT")
        self.table_prefix = (
            table_prefix if table_prefix is not None else _env("DYNAMODB_TABLE_PREFIX") or ""
        )
        self.region = region
        self.retry = retry or RetryPolicy()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._boto_session = boto_session
        self._transport: Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tokens: list[Token[Session | None]] = []
        self._listeners: list[Listener] = []
        self._table_names: dict[type[Model], str] = {}
        self._models_by_table: dict[str, type[Model]] = {}
        self.auto_create_tables = auto_create_tables
        self.consumed_capacity = consumed_capacity

    # -- lifecycle

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    async def open(self) -> Session:
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
        _open_sessions.append(self)
        return self

    async def close(self) -> None:
        """Close the connection; model calls then use another open session, if any."""
        transport, self._transport = self._transport, None
        if self in _open_sessions:
            _open_sessions.remove(self)
        if transport is not None:
            await transport.close()

    async def __aenter__(self) -> Session:
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
        if self._transport is None:
            raise ConfigurationError(
                "this session is closed: use it inside `async with dm.connect(...)`"
            )
        if self._loop is not asyncio.get_running_loop():
            raise ConfigurationError(
                "this session was opened on another event loop; open a session in each loop "
                "(e.g. per test, or per asyncio.run in a Lambda handler)"
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

    async def call(
        self, operation: str, request: Request, *, idempotent: bool, table: str | None = None
    ) -> Response:
        """Send one request through the retry policy; errors become the library's.

        A table created on first use (``auto_create_tables``) is created when the service
        answers ResourceNotFoundException, and the request sent once more.
        """
        try:
            return await self._call(operation, request, idempotent=idempotent, table=table)
        except TableNotFound:
            names = [table] if table else list(request.get("RequestItems", {}))
            models = [self._models_by_table[n] for n in names if n in self._models_by_table]
            if not self.auto_create_tables or not models or operation.endswith("Table"):
                raise
            logger.info("creating tables %s on first use", names)
            wanted: list[type[Model]] = []
            for model in models:
                schema = _schema(model)
                wanted.extend(schema.registry.by_table(schema.table) or [model])
            await self.create_tables(*dict.fromkeys(wanted))
            return await self._call(operation, request, idempotent=idempotent, table=table)

    async def _call(
        self, operation: str, request: Request, *, idempotent: bool, table: str | None
    ) -> Response:
        transport = self.transport
        capture = active_dry_run.get()
        if capture is not None:
            self._emit(operation, table, 0.0, 0, "dry-run", None, dry_run=True)
            return capture.answer(operation, request)
        if self.consumed_capacity and operation in _CAPACITY_OPERATIONS:
            request = {**request, "ReturnConsumedCapacity": self.consumed_capacity}
        attempts = 0

        async def send() -> Response:
            nonlocal attempts
            attempts += 1
            return await transport.send(operation, request)

        observed = bool(self._listeners) or request_logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if observed else 0.0
        what = f"{operation} on {table!r}" if table else operation
        try:
            response, _retries = await self.retry.run(
                send, idempotent=idempotent, what=what, write=operation in _WRITE_OPERATIONS
            )
        except ServiceError as error:
            if observed:
                self._emit(operation, table, started, attempts, error.code or "error", None)
            raise from_service(error, operation=operation, table=table) from None
        except BaseException as error:
            if observed:
                self._emit(operation, table, started, attempts, type(error).__name__, None)
            raise
        if observed:
            capacity = response.get("ConsumedCapacity")
            self._emit(operation, table, started, attempts, "ok", capacity)
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
    ) -> None:
        latency = time.perf_counter() - started if started else 0.0
        event = RequestEvent(
            operation, table, latency, max(attempts - 1, 0), outcome, capacity, dry_run
        )
        log_event(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("a dynamodm request listener failed")

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` after every request (a ``dm.RequestEvent``)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def table_name(self, model: type[Model]) -> str:
        """The physical table name of a model: ``table_prefix + Meta.table``."""
        name = self._table_names.get(model)
        if name is None:
            name = self._table_names[model] = self.table_prefix + _schema(model).table
            self._models_by_table.setdefault(name, model)
        return name

    # -- tables

    async def create_tables(self, *models: type[Model], wait: bool = True) -> list[str]:
        """Create the tables of the given models (default: the whole registry); idempotent."""
        return await tables.create_tables(self, _models(models), wait=wait)

    async def delete_tables(self, *models: type[Model]) -> list[str]:
        """Delete the tables of the given models (default: the whole registry)."""
        return await tables.delete_tables(self, _models(models))

    async def describe_table(self, model: type[Model]) -> tables.TableDescription:
        """Status, item count, size and indexes of a model's table."""
        return await tables.describe_table(self, model)

    async def list_tables(self) -> list[str]:
        """Physical names of the tables that start with this session's prefix."""
        return await tables.list_tables(self)

    async def check_tables(self, *models: type[Model], ignore: Iterable[str] = ()) -> None:
        """Compare the live tables of the given models (default: the whole registry) with
        their declarations; raise one ``dm.ConfigurationError`` listing every difference in
        ``.differences`` (missing tables or indexes, other keys, types, TTL, stream).
        ``ignore`` skips kinds of difference, e.g. ``{"ttl", "stream"}``."""
        await tables.check_tables(self, _models(models), ignore)

    async def enable_point_in_time_recovery(
        self, model: type[Model], *, enabled: bool = True
    ) -> bool:
        """Turn point-in-time recovery of a model's table on (or off); whether it is on."""
        return await tables.enable_point_in_time_recovery(self, model, enabled)

    async def create_backup(self, model: type[Model], name: str) -> tables.Backup:
        """Start an on-demand backup of a model's table."""
        return await tables.create_backup(self, model, name)

    async def list_backups(self, model: type[Model]) -> list[tables.Backup]:
        """The on-demand backups of a model's table."""
        return await tables.list_backups(self, model)

    async def enable_stream(
        self, model: type[Model], *, view: StreamView | None = None, enabled: bool = True
    ) -> str | None:
        """Turn a model's table stream on (view: ``view``, else ``Meta.stream``, else
        NEW_AND_OLD_IMAGES) or off; the stream's ARN when on."""
        return await tables.enable_stream(self, model, view, enabled)

    async def describe_ttl(self, model: type[Model]) -> tables.TimeToLive:
        """The TTL state of a model's table."""
        return await tables.describe_ttl(self, model)

    # -- items

    def key_of(self, model: type[Model], hash_value: Any, range_value: Any = None) -> Item:
        """The encoded key of a model's item, validated through the key fields' types."""
        return keys.from_values(model, hash_value, range_value)

    def split_key(self, model: type[Model], key: Any) -> Item:
        """A key given as a hash value, a ``(hash, range)`` tuple or a dict of fields."""
        return keys.from_any(model, key)

    def instance_key(self, instance: Model) -> Item:
        return keys.from_instance(instance)

    def load(self, model: type[M], item: Item, *, partial: bool = False) -> M:
        """A model instance from a stored item (unknown attributes kept aside)."""
        return load_item(model, item, partial=partial)

    async def get(
        self,
        model: type[M],
        hash_value: Any = None,
        range_value: Any = None,
        *,
        consistent: bool = False,
        required: bool = False,
        fields: dict[str, Any] | None = None,
    ) -> M | None:
        key = keys.from_call(model, hash_value, range_value, fields or {})
        table = self.table_name(model)
        request: Request = {"TableName": table, "Key": key}
        if consistent:
            request["ConsistentRead"] = True
        response = await self.call("GetItem", request, idempotent=True, table=table)
        item = response.get("Item")
        if item is None:
            if required:
                raise NotFound(f"get {model.__name__}: no item with this key", key=key)
            return None
        return self.load(model, item)

    async def put(
        self, instance: Model, *, create: bool = False, condition: ConditionLike | None = None
    ) -> None:
        event: hooks.Event = "create" if create else "save"
        with_hooks = bool(type(instance).__dm_hooks__)
        if with_hooks:
            await hooks.run(instance, "before", event)
        await writes.run(self, writes.plan_put(self, instance, create=create, condition=condition))
        if with_hooks:
            await hooks.run(instance, "after", event)

    async def update(
        self,
        instance: Model,
        actions: tuple[Action, ...],
        sets: dict[str, Any],
        *,
        condition: ConditionLike | None = None,
    ) -> None:
        with_hooks = bool(type(instance).__dm_hooks__)
        if with_hooks:
            await hooks.run(instance, "before", "update")
        write = writes.plan_update(self, instance, actions, sets, condition=condition)
        await writes.run(self, write)
        if with_hooks:
            await hooks.run(instance, "after", "update")

    async def upsert(
        self,
        model: type[M],
        key_value: Any,
        actions: tuple[Action, ...],
        sets: dict[str, Any],
        *,
        condition: ConditionLike | None = None,
    ) -> M:
        write = writes.plan_upsert(self, model, key_value, actions, sets, condition=condition)
        attributes = await writes.run(self, write)
        if attributes is None and active_dry_run.get() is not None:
            return self.load(model, write.key, partial=True)  # nothing stored: the key only
        result = self.load(model, attributes or {})
        if model.__dm_hooks__:
            await hooks.run(result, "after", "update")
        return result

    async def delete(self, instance: Model, *, condition: ConditionLike | None = None) -> None:
        model = type(instance)
        schema = _schema(model)
        with_hooks = bool(model.__dm_hooks__)
        if with_hooks:
            await hooks.run(instance, "before", "delete")
        version = getattr(instance, schema.version, None) if schema.version else None
        write = writes.plan_delete(
            self,
            model,
            self.instance_key(instance),
            version=version,
            stored=unique.stored_values(instance),
            condition=condition,
            instance=instance,
        )
        await writes.run(self, write)
        if with_hooks:
            await hooks.run(instance, "after", "delete")

    async def delete_key(
        self,
        model: type[Model],
        hash_value: Any = None,
        range_value: Any = None,
        *,
        condition: ConditionLike | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Delete by key. The item of a model with a Version, unique fields or delete hooks
        is read first and deleted as an instance (two requests)."""
        schema = _schema(model)
        key = keys.from_call(model, hash_value, range_value, fields or {})
        if (
            schema.version
            or schema.unique
            or hooks.has(model, "before", "delete")
            or (hooks.has(model, "after", "delete"))
        ):
            table = self.table_name(model)
            response = await self.call(
                "GetItem",
                {"TableName": table, "Key": key, "ConsistentRead": True},
                idempotent=True,
                table=table,
            )
            if "Item" in response:
                await self.delete(self.load(model, response["Item"]), condition=condition)
            return
        write = writes.plan_delete(self, model, key, version=None, stored=None, condition=condition)
        await writes.run(self, write)

    async def batch_get(
        self, keys: Sequence[tuple[type[Model], Any]], *, consistent: bool = False
    ) -> list[Any]:
        """Items of any models by ``(Model, key)``, in the order asked, missing left out."""
        return await batch.batch_get(self, keys, consistent=consistent)

    async def get_by(self, model: type[M], **values: Any) -> M:
        """The item whose unique field has this value (read through its guard)."""
        found: M = await unique.get_by(self, model, values)
        return found


def connect(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    table_prefix: str | None = None,
    boto_session: aioboto3.Session | None = None,
    retry: RetryPolicy | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    max_connections: int = 64,
    auto_create_tables: bool = False,
    consumed_capacity: Literal["TOTAL", "INDEXES"] | None = None,
    transport: Literal["http", "botocore"] | None = None,
    cursor_secret: str | bytes | None = None,
) -> Session:
    """A session to use as ``async with dm.connect(...) as db:``.

    Defaults come from AWS_REGION / AWS_DEFAULT_REGION, DYNAMODB_ENDPOINT_URL /
    DYNAMODB_ENDPOINT and DYNAMODB_TABLE_PREFIX. Against a loopback endpoint with no
    credentials configured, dummy credentials and us-east-1 are used.

    ``transport`` is ``"http"`` (default: signed requests on a pooled aiohttp session)
    or ``"botocore"`` (the aioboto3 client); DYNAMODM_TRANSPORT sets the default.
    ``cursor_secret`` (or DYNAMODM_CURSOR_SECRET) signs pagination cursors so clients
    cannot forge one; without it cursors are only checked against tampering.
    ``auto_create_tables=True`` creates a model's table the first time DynamoDB answers
    that it does not exist. ``consumed_capacity`` asks DynamoDB to report capacity on
    every request, delivered in the request events (``db.add_listener``).
    """
    return Session(
        region=region,
        endpoint_url=endpoint_url,
        table_prefix=table_prefix,
        boto_session=boto_session,
        retry=retry,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_connections=max_connections,
        auto_create_tables=auto_create_tables,
        consumed_capacity=consumed_capacity,
        cursor_secret=cursor_secret,
        transport=transport or os.environ.get("DYNAMODM_TRANSPORT") or "http",  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- helpers


def load_item(model: type[M], item: Item, *, partial: bool = False) -> M:
    """A model instance from a stored item (unknown attributes kept aside); no I/O."""
    codec = model.__dm_codec__
    data, extra = codec.decode_fields(item, partial=partial)
    if partial:
        # Fields not loaded stay unset (reading one raises AttributeError); each loaded
        # value is validated on assignment.
        instance = model.model_construct()
        loaded = set()
        for attribute, value in data.items():
            name = codec.by_attribute[attribute].name
            setattr(instance, name, value)
            loaded.add(name)
        for name in [n for n in instance.__dict__ if n not in loaded]:
            del instance.__dict__[name]  # not loaded: reading it raises AttributeError
        set_state(instance, "_dm_partial", True)
    else:
        instance = model.model_validate(data)
    computed = model.__dm_schema__.computed_attributes
    if computed and extra:
        extra = {k: v for k, v in extra.items() if k not in computed}
    if extra:
        set_state(instance, "_dm_extra", extra)
    if model.__dm_schema__.unique and not partial:
        unique.remember(instance, item)
    if model.__dm_hooks__:
        for name in model.__dm_hooks__.get(("after", "load"), ()):
            getattr(instance, name)()
    return instance


def _utcnow() -> datetime:
    from .model import utcnow

    return utcnow()


_schema = keys.schema_of


def _models(models: tuple[type[Model], ...]) -> list[type[Model]]:
    if models:
        for model in models:
            _schema(model)
        return list(models)
    from .registry import registry

    return registry.models


def _path(model: type[Model], field: str) -> Path[Any]:
    path: Path[Any] = getattr(model, field)
    return path
