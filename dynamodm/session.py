"""Session: the one place where model operations become DynamoDB requests."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from contextvars import ContextVar, Token
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import aioboto3

from . import tables
from .codec import Item, check_item_size, format_datetime
from .errors import (
    AlreadyExists,
    ConditionFailed,
    ConfigurationError,
    NotFound,
    ServiceError,
    UsageError,
    VersionConflict,
    from_service,
)
from .expressions import (
    Action,
    AddAction,
    Arithmetic,
    Condition,
    IfNotExists,
    ListAppend,
    Path,
    Renderer,
    SetAction,
    Value,
    _adapter,
    all_of,
    as_condition,
    render_update,
)
from .retry import RetryPolicy
from .schema import TableSchema
from .transport import BotocoreTransport, Request, Response, Transport

if TYPE_CHECKING:
    from .model import Model

M = TypeVar("M", bound="Model")

_current: ContextVar[Session | None] = ContextVar("dynamodm_session", default=None)
_open_sessions: list[Session] = []

LOCAL_CREDENTIALS = ("dynamodm-local", "dynamodm-local")


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


def _is_loopback(endpoint_url: str | None) -> bool:
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    ) -> None:
        self.endpoint_url = endpoint_url or _env("DYNAMODB_ENDPOINT_URL", "DYNAMODB_ENDPOINT")
        self.table_prefix = (
            table_prefix if table_prefix is not None else _env("DYNAMODB_TABLE_PREFIX") or ""
        )
        self.region = region or _env("AWS_REGION", "AWS_DEFAULT_REGION")
        self.retry = retry or RetryPolicy()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._boto_session = boto_session
        self._transport: Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tokens: list[Token[Session | None]] = []

    # -- lifecycle

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    async def open(self) -> Session:
        """Open the connection (``async with`` does this for you)."""
        if self._transport is not None:
            raise UsageError("this session is already open")
        local = _is_loopback(self.endpoint_url)
        boto_session = self._boto_session
        if boto_session is None:
            if local and not (_env("AWS_ACCESS_KEY_ID") or _env("AWS_PROFILE")):
                key, secret = LOCAL_CREDENTIALS
                boto_session = aioboto3.Session(aws_access_key_id=key, aws_secret_access_key=secret)
            else:
                boto_session = aioboto3.Session()
        region = self.region or boto_session.region_name or ("us-east-1" if local else None)
        if region is None:
            raise ConfigurationError("no AWS region: pass dm.connect(region=...) or set AWS_REGION")
        self.region = region
        self._transport = await BotocoreTransport.open(
            boto_session,
            region=region,
            endpoint_url=self.endpoint_url,
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
        if isinstance(transport, BotocoreTransport):
            return transport.client
        raise ConfigurationError("this session's transport has no aioboto3 client")

    # -- requests

    async def call(
        self, operation: str, request: Request, *, idempotent: bool, table: str | None = None
    ) -> Response:
        """Send one request through the retry policy; errors become the library's."""
        transport = self.transport
        what = f"{operation} on {table!r}" if table else operation
        try:
            response, _retries = await self.retry.run(
                lambda: transport.send(operation, request), idempotent=idempotent, what=what
            )
        except ServiceError as error:
            raise from_service(error, operation=operation, table=table) from None
        return response

    def table_name(self, model: type[Model]) -> str:
        """The physical table name of a model: ``table_prefix + Meta.table``."""
        return self.table_prefix + _schema(model).table

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

    # -- items

    def key_of(self, model: type[Model], hash_value: Any, range_value: Any = None) -> Item:
        """The encoded key of a model's item, validated through the key fields' types."""
        schema = _schema(model)
        key = {schema.hash_key.attribute: _key_value(model, schema.hash_key.field, hash_value)}
        if schema.range_key is None:
            if range_value is not None:
                raise UsageError(f"{model.__name__} has no range key; pass the hash key only")
        else:
            if range_value is None:
                raise UsageError(
                    f"{model.__name__} has a range key ({schema.range_key.field}); "
                    "pass both the hash and the range key"
                )
            key[schema.range_key.attribute] = _key_value(model, schema.range_key.field, range_value)
        return key

    def split_key(self, model: type[Model], key: Any) -> Item:
        """A key given as a hash value or a ``(hash, range)`` tuple, encoded."""
        if isinstance(key, tuple):
            if len(key) != 2:
                raise UsageError(f"{model.__name__}: a key tuple is (hash, range)")
            return self.key_of(model, key[0], key[1])
        return self.key_of(model, key)

    def instance_key(self, instance: Model) -> Item:
        model = type(instance)
        schema = _schema(model)
        return self.key_of(
            model,
            getattr(instance, schema.hash_key.field),
            getattr(instance, schema.range_key.field) if schema.range_key else None,
        )

    def load(self, model: type[M], item: Item, *, partial: bool = False) -> M:
        """A model instance from a stored item (unknown attributes kept aside)."""
        codec = model.__dm_codec__
        data, extra = codec.decode_fields(item)
        if partial:
            # Fields not loaded stay unset (reading one raises AttributeError); each loaded
            # value is validated on assignment.
            instance = model.model_construct()
            for attribute, value in data.items():
                setattr(instance, codec.by_attribute[attribute].name, value)
            instance._dm_partial = True
        else:
            instance = model.model_validate(data)
        if extra:
            instance._dm_extra = extra
        return instance

    async def get(
        self,
        model: type[M],
        hash_value: Any,
        range_value: Any = None,
        *,
        consistent: bool = False,
        required: bool = False,
    ) -> M | None:
        key = self.key_of(model, hash_value, range_value)
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
        self, instance: Model, *, create: bool = False, condition: Condition | bool | None = None
    ) -> None:
        model = type(instance)
        schema = _schema(model)
        operation = "create" if create else "save"
        if instance._dm_partial:
            raise UsageError(
                f"save {model.__name__}: this instance was loaded with attributes=..., so a "
                "whole-item put would delete the attributes not loaded; use update() instead"
            )
        user = as_condition(condition, "condition") if condition is not None else None
        item = model.__dm_codec__.encode_fields(instance)
        _check_key_values(model, item)
        now = _utcnow()
        if schema.updated_at:
            item[_attribute(model, schema.updated_at)] = {"S": format_datetime(now)}
        version = getattr(instance, schema.version) if schema.version else None
        if version is not None and schema.version:
            item[_attribute(model, schema.version)] = {"N": str(version + 1)}
        if instance._dm_extra:
            item = {**instance._dm_extra, **item}
        check_item_size(item, model.__name__, operation)

        hash_path = _path(model, schema.hash_key.field)
        checks: list[Condition | None] = [user]
        if create or version == 0:
            checks.insert(0, hash_path.not_exists())
        elif version is not None:
            checks.insert(0, _path(model, schema.version or "") == version)
        table = self.table_name(model)
        request: Request = {"TableName": table, "Item": item}
        full = all_of(checks)
        _add_condition(request, full)
        try:
            await self.call("PutItem", request, idempotent=full is None, table=table)
        except ConditionFailed as error:
            key = {a: item[a] for a in _key_attributes(model)}
            raise await self._condition_error(
                model, operation, error, key, create=create, version=version
            ) from None
        if schema.updated_at:
            instance.__dict__[schema.updated_at] = now
        if version is not None and schema.version:
            instance.__dict__[schema.version] = version + 1

    async def update(
        self,
        instance: Model,
        actions: tuple[Action, ...],
        sets: dict[str, Any],
        *,
        condition: Condition | bool | None = None,
    ) -> None:
        model = type(instance)
        schema = _schema(model)
        user = as_condition(condition, "condition") if condition is not None else None
        all_actions = _actions(model, actions, sets, "update")
        if not all_actions:
            raise UsageError(f"update {model.__name__}: give at least one action or field=value")
        version = getattr(instance, schema.version) if schema.version else None
        checks: list[Condition | None] = [_path(model, schema.hash_key.field).exists()]
        if version is not None and schema.version:
            version_path = _path(model, schema.version)
            all_actions.append(SetAction(version_path, Value({"N": str(version + 1)})))
            checks.append(
                (version_path.not_exists() | (version_path == 0))
                if version == 0
                else version_path == version
            )
        _stamp_updated(model, all_actions)
        checks.append(user)
        key = self.instance_key(instance)
        table = self.table_name(model)
        request = _update_request(table, key, all_actions, all_of(checks))
        try:
            response = await self.call("UpdateItem", request, idempotent=False, table=table)
        except ConditionFailed as error:
            raise await self._condition_error(
                model, "update", error, key, create=False, version=version
            ) from None
        fresh = self.load(model, response["Attributes"])
        instance.__dict__.update(fresh.__dict__)
        instance._dm_extra = fresh._dm_extra
        instance._dm_partial = False

    async def upsert(
        self,
        model: type[M],
        key_value: Any,
        actions: tuple[Action, ...],
        sets: dict[str, Any],
        *,
        condition: Condition | bool | None = None,
    ) -> M:
        schema = _schema(model)
        user = as_condition(condition, "condition") if condition is not None else None
        key = self.split_key(model, key_value)
        all_actions = _actions(model, actions, sets, "upsert")
        touched = {a.path.root for a in all_actions}
        missing = []
        for name, info in model.model_fields.items():
            if name in touched or name in schema.key_fields or name == schema.version:
                continue
            if info.is_required():
                missing.append(name)
                continue
            default = info.get_default(call_default_factory=True)
            if default is None:
                continue
            path = _path(model, name)
            all_actions.append(SetAction(path, IfNotExists(path, Value(path.encode(default)))))
        if schema.version:
            path = _path(model, schema.version)
            all_actions.append(
                SetAction(
                    path, Arithmetic(IfNotExists(path, Value({"N": "0"})), "+", Value({"N": "1"}))
                )
            )
        _stamp_updated(model, all_actions)
        hash_path = _path(model, schema.hash_key.field)
        exists = hash_path.exists() if missing else None
        table = self.table_name(model)
        full = all_of([exists, user])
        request = _update_request(table, key, all_actions, full)
        idempotent = full is None and not schema.version and _idempotent(all_actions)
        try:
            response = await self.call("UpdateItem", request, idempotent=idempotent, table=table)
        except ConditionFailed as error:
            failure = await self._condition_error(
                model, "upsert", error, key, create=False, version=None
            )
            if isinstance(failure, NotFound) and missing:
                failure = NotFound(
                    f"upsert {model.__name__}: no item has this key, and creating one needs "
                    f"the required fields {', '.join(missing)}; pass them as keywords",
                    key=key,
                )
            raise failure from None
        return self.load(model, response["Attributes"])

    async def delete(self, instance: Model, *, condition: Condition | bool | None = None) -> None:
        model = type(instance)
        schema = _schema(model)
        version = getattr(instance, schema.version) if schema.version else None
        await self._delete(model, self.instance_key(instance), version, condition)

    async def delete_key(
        self,
        model: type[Model],
        hash_value: Any,
        range_value: Any = None,
        *,
        condition: Condition | bool | None = None,
    ) -> None:
        schema = _schema(model)
        key = self.key_of(model, hash_value, range_value)
        version = None
        if schema.version:
            table = self.table_name(model)
            response = await self.call(
                "GetItem",
                {"TableName": table, "Key": key, "ConsistentRead": True},
                idempotent=True,
                table=table,
            )
            if "Item" not in response:
                return
            version = getattr(self.load(model, response["Item"]), schema.version)
        await self._delete(model, key, version, condition)

    async def _delete(
        self,
        model: type[Model],
        key: Item,
        version: int | None,
        condition: Condition | bool | None,
    ) -> None:
        schema = _schema(model)
        user = as_condition(condition, "condition") if condition is not None else None
        checks: list[Condition | None] = [user]
        if version is not None and schema.version:
            version_path = _path(model, schema.version)
            checks.insert(
                0,
                _path(model, schema.hash_key.field).exists()
                & (
                    version_path == version
                    if version
                    else version_path.not_exists() | (version_path == 0)
                ),
            )
        table = self.table_name(model)
        request: Request = {"TableName": table, "Key": key}
        full = all_of(checks)
        _add_condition(request, full)
        try:
            await self.call("DeleteItem", request, idempotent=full is None, table=table)
        except ConditionFailed as error:
            raise await self._condition_error(
                model, "delete", error, key, create=False, version=version
            ) from None

    async def _condition_error(
        self,
        model: type[Model],
        operation: str,
        error: ConditionFailed,
        key: Item,
        *,
        create: bool,
        version: int | None,
    ) -> ConditionFailed | NotFound:
        """Choose the error from the item as it was: missing, version moved, or condition."""
        raw = error.item
        if raw is None:
            table = self.table_name(model)
            response = await self.call(
                "GetItem",
                {"TableName": table, "Key": key, "ConsistentRead": True},
                idempotent=True,
                table=table,
            )
            raw = response.get("Item")
        name = model.__name__
        codes = {"code": error.code, "service_message": error.service_message}
        if raw is None:
            if create:
                return ConditionFailed(f"{operation} {name}: the condition did not hold", **codes)
            return NotFound(f"{operation} {name}: no item with this key", key=key)
        try:
            old: Any = self.load(model, raw)
        except ValueError:
            old = None
        if create:
            return AlreadyExists(
                f"create {name}: an item with this key already exists; use save() to "
                "overwrite it or update() to change it",
                item=old,
                **codes,
            )
        schema = _schema(model)
        if version is not None and schema.version:
            stored = old.__dict__.get(schema.version) if old is not None else None
            if stored != version:
                return VersionConflict(
                    f"{operation} {name}: the item changed since it was read (version "
                    f"{version} expected, {stored} stored); read it again and retry",
                    item=old,
                    **codes,
                )
        return ConditionFailed(f"{operation} {name}: the condition did not hold", item=old, **codes)


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
) -> Session:
    """A session to use as ``async with dm.connect(...) as db:``.

    Defaults come from AWS_REGION / AWS_DEFAULT_REGION, DYNAMODB_ENDPOINT_URL /
    DYNAMODB_ENDPOINT and DYNAMODB_TABLE_PREFIX. Against a loopback endpoint with no
    credentials configured, dummy credentials and us-east-1 are used.
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
    )


# ---------------------------------------------------------------- helpers


def _utcnow() -> datetime:
    from .model import utcnow

    return utcnow()


def _schema(model: type[Model]) -> TableSchema:
    schema: TableSchema | None = getattr(model, "__dm_schema__", None)
    if schema is None:
        raise UsageError(
            f"{getattr(model, '__name__', model)} is not a concrete model (abstract, or no "
            "Meta.table); only models with a table can be stored"
        )
    return schema


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


def _attribute(model: type[Model], field: str) -> str:
    attribute: str = model.__dm_codec__.by_name[field].attribute
    return attribute


def _key_attributes(model: type[Model]) -> list[str]:
    schema = _schema(model)
    names = [schema.hash_key.attribute]
    if schema.range_key is not None:
        names.append(schema.range_key.attribute)
    return names


def _key_value(model: type[Model], field: str, value: Any) -> Any:
    spec = model.__dm_codec__.by_name[field]
    if value is None:
        raise UsageError(f"{model.__name__}: the key field {field!r} needs a value, got None")
    try:
        value = _adapter(model.model_fields[field].annotation).validate_python(value)
    except ValueError as exc:
        raise UsageError(
            f"{model.__name__}: the key value for {field!r} does not fit the field's type "
            f"({_first_error(exc)})"
        ) from None
    encoded = spec.codec.encode(value)
    if encoded is None or encoded.get("S") == "" or encoded.get("B") == b"":
        raise UsageError(f"{model.__name__}: the key field {field!r} cannot be empty")
    return encoded


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc))
    return str(exc)


def _check_key_values(model: type[Model], item: Item) -> None:
    """Table and index keys may not be empty strings or bytes; table keys must be present."""
    schema = _schema(model)
    for attribute, key in schema.key_attributes().items():
        value = item.get(attribute)
        if value is None:
            if key.field in schema.key_fields:
                raise UsageError(f"{model.__name__}: the key field {key.field!r} needs a value")
            continue
        if value.get("S") == "" or value.get("B") == b"":
            raise UsageError(
                f"{model.__name__}.{key.field}: an empty value cannot be stored in a key "
                "attribute of the table or an index; use None (no index entry) or a value"
            )


def _actions(
    model: type[Model], actions: tuple[Action, ...], sets: dict[str, Any], operation: str
) -> list[Action]:
    schema = _schema(model)
    result: list[Action] = []
    for action in actions:
        if not isinstance(action, Action):
            raise UsageError(
                f"{operation} {model.__name__}: positional arguments are update actions such "
                f"as dm.attr(User.logins).add(1), got {type(action).__name__}"
            )
        result.append(action)
    for name, value in sets.items():
        if name not in model.model_fields:
            raise UsageError(
                f"{operation} {model.__name__}: unknown field {name!r}; fields are "
                f"{', '.join(model.model_fields)}"
            )
        path = _path(model, name)
        result.append(path.remove() if value is None else path.set(value))
    seen: set[tuple[str | int, ...]] = set()
    for action in result:
        path = action.path
        if path.model is not None and not issubclass(model, path.model):
            raise UsageError(
                f"{operation} {model.__name__}: the action on {path} belongs to another model"
            )
        if path.root in schema.key_fields:
            raise UsageError(
                f"{operation} {model.__name__}: {path.root!r} is part of the table key and "
                "cannot be changed; create a new item and delete the old one"
            )
        if path.elements in seen:
            raise UsageError(f"{operation} {model.__name__}: two actions on {path}")
        seen.add(path.elements)
    return result


def _stamp_updated(model: type[Model], actions: list[Action]) -> None:
    schema = _schema(model)
    if schema.updated_at and not any(a.path.root == schema.updated_at for a in actions):
        actions.append(
            SetAction(_path(model, schema.updated_at), Value({"S": format_datetime(_utcnow())}))
        )


def _idempotent(actions: list[Action]) -> bool:
    for action in actions:
        if isinstance(action, AddAction):
            return False
        if isinstance(action, SetAction) and isinstance(action.operand, Arithmetic | ListAppend):
            return False
    return True


def _add_condition(request: Request, condition: Condition | None) -> None:
    if condition is None:
        return
    renderer = Renderer()
    request["ConditionExpression"] = condition.render(renderer)
    request["ExpressionAttributeNames"] = renderer.attribute_names()
    if renderer.values:
        request["ExpressionAttributeValues"] = renderer.values
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"


def _update_request(
    table: str, key: Item, actions: list[Action], condition: Condition | None
) -> Request:
    renderer = Renderer()
    request: Request = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": render_update(actions, renderer),
        "ReturnValues": "ALL_NEW",
    }
    if condition is not None:
        request["ConditionExpression"] = condition.render(renderer)
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    request["ExpressionAttributeNames"] = renderer.attribute_names()
    if renderer.values:
        request["ExpressionAttributeValues"] = renderer.values
    return request
