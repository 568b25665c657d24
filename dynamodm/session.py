"""Session: the verbs of the public API (with their hooks), table set-up and tables
created on first use, on top of the Connection that sends; ``dm.connect``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from . import batch, execute, hooks, keys, tables, writes
from .codec import Item
from .connection import Connection, current_connection
from .errors import NotFound
from .expressions import Action, ConditionLike
from .instances import (
    entity_class,
    expired,
    load_checked,
    load_item,
    load_raw,
    raw_loader,
    stored_values,
)
from .observe import active_dry_run
from .ratelimit import RateLimit
from .registry import registry
from .retry import RetryPolicy
from .schema import StreamView, schema_of

if TYPE_CHECKING:
    import aioboto3

    from .model import Model

M = TypeVar("M", bound="Model")

logger = logging.getLogger("dynamodm.session")


def current_session(explicit: Session | None = None) -> Session:
    """The session a model call uses: explicit, else this task's, else the latest one
    open on the running event loop."""
    return cast(Session, current_connection(explicit))


class Session(Connection):
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
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(
            region=region,
            endpoint_url=endpoint_url,
            table_prefix=table_prefix,
            boto_session=boto_session,
            retry=retry,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
            consumed_capacity=consumed_capacity,
            transport=transport,
            cursor_secret=cursor_secret,
            rate_limit=rate_limit,
        )
        self.auto_create_tables = auto_create_tables

    async def open(self) -> Session:
        """Open the connection (``async with`` does this for you)."""
        await super().open()
        return self

    async def __aenter__(self) -> Session:
        await super().__aenter__()
        return self

    async def create_missing_tables(self, names: list[str]) -> bool:
        """With ``auto_create_tables``: create the tables (and the others of their
        models' registries that share them) of models this session has named."""
        if not self.auto_create_tables:
            return False
        models = [m for m in map(self.names.model_of, names) if m is not None]
        if not models:
            return False
        logger.info("creating tables %s on first use", names)
        wanted: list[type[Model]] = []
        for model in models:
            schema = schema_of(model)
            wanted.extend(schema.registry.by_table(schema.table) or [model])
        await self.create_tables(*dict.fromkeys(wanted))
        return True

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
        include_expired: bool = False,
    ) -> M | None:
        key = keys.from_call(model, hash_value, range_value, fields or {})
        # A model that takes no binary value reads the item with its base64 text left in
        # place, not searched for, and decodes what it keeps (instances.raw_loader).
        raw = raw_loader(model)
        response = await execute.get_response(
            self, self.names.of(model), key, consistent=consistent, raw_binary=raw is not None
        )
        item = response.get("Item")
        if item is not None and not include_expired and expired(model, item):
            item = None
        if item is not None and model.__dm_family__ and entity_class(model, item) is None:
            item = None  # another class of the hierarchy: not one of these
        if item is None:
            if required:
                raise NotFound(
                    f"get {model.__name__}: no item with this key",
                    key=key,
                    request_id=response.get("ResponseMetadata", {}).get("RequestId"),
                )
            return None
        if raw is not None:
            return load_raw(model, item, raw)
        return load_checked(model, item)

    async def put(
        self,
        instance: Model,
        *,
        create: bool = False,
        condition: ConditionLike | None = None,
        replace: bool = False,
    ) -> None:
        """Store an instance: a read one sends only what changed (nothing when nothing
        did), a built one (or ``replace=True``) the whole item."""
        event: hooks.Event = "create" if create else "save"
        with_hooks = bool(type(instance).__dm_hooks__)
        if with_hooks:
            await hooks.run(instance, "before", event)
        write: writes.Write | None
        if create or replace or instance._dm_stored is None or instance._dm_partial:
            write = writes.plan_put(self.names, instance, create=create, condition=condition)
        else:
            write = writes.plan_changes(self.names, instance, condition=condition)
        if write is not None:
            await execute.run_write(self, write)
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
        write = writes.plan_update(self.names, instance, actions, sets, condition=condition)
        await execute.run_write(self, write)
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
        write = writes.plan_upsert(self.names, model, key_value, actions, sets, condition=condition)
        return await self._stored(model, write)

    async def update_key(
        self,
        model: type[M],
        key_value: Any,
        actions: tuple[Action, ...],
        sets: dict[str, Any],
        *,
        condition: ConditionLike | None = None,
        if_version: int | None = None,
        touch: bool = True,
    ) -> M:
        write = writes.plan_update_key(
            self.names,
            model,
            key_value,
            actions,
            sets,
            condition=condition,
            if_version=if_version,
            touch=touch,
        )
        return await self._stored(model, write)

    async def _stored(self, model: type[M], write: writes.Write) -> M:
        """Send an update by key and return the item as stored (ALL_NEW), after-update
        hooks run on it; in a dry run, an instance holding the key only."""
        attributes = await execute.run_write(self, write)
        if attributes is None and active_dry_run.get() is not None:
            return load_item(model, write.key, partial=True)  # nothing stored: the key only
        result = load_checked(model, attributes or {})
        if model.__dm_hooks__:
            await hooks.run(result, "after", "update")
        return result

    async def delete(
        self, instance: Model, *, condition: ConditionLike | None = None, returning: bool = False
    ) -> Any:
        model = type(instance)
        schema = schema_of(model)
        with_hooks = bool(model.__dm_hooks__)
        if with_hooks:
            await hooks.run(instance, "before", "delete")
        version = getattr(instance, schema.version, None) if schema.version else None
        write = writes.plan_delete(
            self.names,
            model,
            keys.from_instance(instance),
            version=version,
            stored=stored_values(instance),
            condition=condition,
            instance=instance,
            returning=returning,
        )
        old = await execute.run_write(self, write)
        if with_hooks:
            await hooks.run(instance, "after", "delete")
        if not returning:
            return None
        if old:
            return load_checked(model, old)
        # Deleted in a transaction with its guards, which returns nothing: the item was
        # this instance (its unique values and version were checked).
        return instance if write.guards else None

    async def delete_key(
        self,
        model: type[Model],
        hash_value: Any = None,
        range_value: Any = None,
        *,
        condition: ConditionLike | None = None,
        fields: dict[str, Any] | None = None,
        returning: bool = False,
    ) -> Any:
        """Delete by key. The item of a model with a Version, unique fields or delete hooks
        is read first and deleted as an instance (two requests). With ``returning``, the
        deleted item as an instance (None if there was none)."""
        schema = schema_of(model)
        key = keys.from_call(model, hash_value, range_value, fields or {})
        if (
            schema.version
            or schema.unique
            or hooks.has(model, "before", "delete")
            or hooks.has(model, "after", "delete")
        ):
            item = await execute.get_item(self, model, key, consistent=True)
            if item is None:
                return None
            instance = load_checked(model, item)
            await self.delete(instance, condition=condition)
            return instance if returning else None
        write = writes.plan_delete(
            self.names,
            model,
            key,
            version=None,
            stored=None,
            condition=condition,
            returning=returning,
        )
        old = await execute.run_write(self, write)
        return load_checked(model, old) if returning and old else None

    async def batch_get(
        self,
        keys: Sequence[tuple[type[Model], Any]],
        *,
        consistent: bool = False,
        on_invalid: Literal["raise", "skip"] = "raise",
        include_expired: bool = False,
    ) -> list[Any]:
        """Items of any models by ``(Model, key)``, in the order asked, missing (and
        expired) left out."""
        return await batch.batch_get(
            self,
            keys,
            consistent=consistent,
            on_invalid=on_invalid,
            include_expired=include_expired,
        )

    async def get_by(self, model: type[M], include_expired: bool = False, **values: Any) -> M:
        """The item whose unique field has this value (read through its guard)."""
        found: M = await execute.get_by(self, model, values, include_expired=include_expired)
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
    rate_limit: RateLimit | None = None,
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
    ``rate_limit=dm.RateLimit(read=..., write=...)`` paces every request of the session
    to that many capacity units a second.
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
        rate_limit=rate_limit,
        transport=transport or os.environ.get("DYNAMODM_TRANSPORT") or "http",  # type: ignore[arg-type]
    )


def _models(models: tuple[type[Model], ...]) -> list[type[Model]]:
    if models:
        for model in models:
            schema_of(model)
        return list(models)
    return registry.models
