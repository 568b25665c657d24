"""Planned writes: one description of a put, update, delete or check, run alone or in a
transaction, with the library's own checks (existence, Version, unique guards) ANDed in.

A ``Write`` holds the request body that PutItem/UpdateItem/DeleteItem and
TransactWriteItems share, the guard writes that keep unique fields in step, and
what to change on the instance once DynamoDB has acknowledged the write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import keys, unique
from .codec import AttributeValue, Item, check_item_size, format_datetime, item_size
from .errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    TransactionCanceled,
    UniqueViolation,
    UsageError,
    VersionConflict,
)
from .expressions import (
    Action,
    AddAction,
    Arithmetic,
    Comparison,
    Condition,
    ConditionLike,
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
from .model import set_state
from .observe import active_dry_run
from .schema import TableSchema

if TYPE_CHECKING:
    from .model import Model
    from .session import Session

M = TypeVar("M", bound="Model")

Kind = Literal["Put", "Update", "Delete", "ConditionCheck"]
_OPERATIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


@dataclass
class Write:
    """One write to one item, ready to send alone or inside TransactWriteItems."""

    kind: Kind
    model: type[Model]
    operation: str
    body: dict[str, Any]
    key: Item
    idempotent: bool
    create: bool = False
    version: int | None = None
    conditional: bool = False
    guards: list[unique.Guard] = field(default_factory=list)
    apply: Callable[[Item | None], None] | None = None
    missing_required: tuple[str, ...] = ()

    def transact_items(self) -> list[dict[str, Any]]:
        body = dict(self.body)
        if self.conditional:
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        items: list[dict[str, Any]] = [{self.kind: body}]
        items.extend({guard.kind: guard.body} for guard in self.guards)
        return items


# ---------------------------------------------------------------- planning


_schema = keys.schema_of


def _path(model: type[Model], name: str) -> Path[Any]:
    path: Path[Any] = getattr(model, name)
    return path


def _attribute(model: type[Model], name: str) -> str:
    attribute: str = model.__dm_codec__.by_name[name].attribute
    return attribute


def _utcnow() -> datetime:
    from .model import utcnow

    return utcnow()


def _render(
    body: dict[str, Any],
    condition: Condition | None,
    actions: list[Action] | None = None,
) -> None:
    renderer = Renderer()
    if actions is not None:
        body["UpdateExpression"] = render_update(actions, renderer)
    if condition is not None:
        body["ConditionExpression"] = condition.render(renderer)
    if renderer.names:
        body["ExpressionAttributeNames"] = renderer.attribute_names()
    if renderer.values:
        body["ExpressionAttributeValues"] = renderer.values


def _version_check(model: type[Model], version: int) -> Condition:
    path = _path(model, _schema(model).version or "")
    if version == 0:
        return path.not_exists() | (path == 0)
    return path == version


def _unique_checks(
    model: type[Model], stored: dict[str, AttributeValue | None]
) -> Condition | None:
    """The unique attributes still hold the values this instance knows (so the right
    guards are released)."""
    checks: list[Condition | None] = []
    for name, av in stored.items():
        path = _path(model, name)
        checks.append(path.not_exists() if av is None else Comparison("=", path, Value(av)))
    return all_of(checks)


def plan_put(
    session: Session, instance: Model, *, create: bool, condition: ConditionLike | None
) -> Write:
    model = type(instance)
    schema = _schema(model)
    operation = "create" if create else "save"
    if instance._dm_partial:
        raise UsageError(
            f"save {model.__name__}: this instance was loaded with attributes=..., so a "
            "whole-item put would delete the attributes not loaded; use update() instead"
        )
    user = as_condition(condition, "condition") if condition is not None else None
    item = encode_for_put(instance, operation)
    now = _utcnow() if schema.updated_at else None
    if now is not None and schema.updated_at:
        item[_attribute(model, schema.updated_at)] = {"S": format_datetime(now)}
    version = getattr(instance, schema.version) if schema.version else None
    if version is not None and schema.version:
        item[_attribute(model, schema.version)] = {"N": str(version + 1)}
    check_item_size(item, model.__name__, operation)

    key = {a: item[a] for a in _key_attributes(schema)}
    checks: list[Condition | None] = []
    if create or version == 0:
        checks.append(keys.hash_path(model).not_exists())
    elif version is not None:
        checks.append(_version_check(model, version))
    guards: list[unique.Guard] = []
    stored = unique.stored_values(instance)
    if schema.unique:
        if stored is None and not create:
            raise UsageError(
                f"save {model.__name__}: the unique fields' stored values are unknown for an "
                "instance that was not read or created here; use create() for a new item, or "
                "read the item first"
            )
        guards = unique.guards_for_put(session, model, item, key, stored or {}, create=create)
        if stored and not create:
            checks.append(_unique_checks(model, stored))
    checks.append(user)
    full = all_of(checks)
    body: dict[str, Any] = {"TableName": session.table_name(model), "Item": item}
    _render(body, full)

    def apply(_: Item | None) -> None:
        if now is not None and schema.updated_at:
            instance.__dict__[schema.updated_at] = now
        if version is not None and schema.version:
            instance.__dict__[schema.version] = version + 1
        unique.remember(instance, item)

    return Write(
        "Put",
        model,
        operation,
        body,
        key,
        idempotent=full is None,
        create=create,
        version=version,
        conditional=full is not None,
        guards=guards,
        apply=apply,
    )


def encode_for_put(instance: Model, operation: str) -> Item:
    """The whole item of an instance, with the attributes the model does not declare."""
    model = type(instance)
    item = model.__dm_codec__.encode_fields(instance)
    if model.__dm_schema__.computed_attributes:
        item.update(keys.computed(model, instance.__dict__))
    check_key_values(model, item)
    if instance._dm_extra:
        item = {**instance._dm_extra, **item}
    return item


def check_key_values(model: type[Model], item: Item) -> None:
    """Table and index keys may not be empty strings or bytes; table keys must be present."""
    schema = _schema(model)
    for attribute, key in schema.key_attributes().items():
        value = item.get(attribute)
        name = key.field or attribute
        if value is None:
            if key in schema.table_keys:
                needs = key.template.fields if key.template else (name,)
                raise UsageError(
                    f"{model.__name__}: the table key needs {', '.join(map(repr, needs))}"
                )
            continue
        if value.get("S") == "" or value.get("B") == b"":
            raise UsageError(
                f"{model.__name__}.{name}: an empty value cannot be stored in a key "
                "attribute of the table or an index; use None (no index entry) or a value"
            )


def _key_attributes(schema: TableSchema) -> list[str]:
    names = [schema.hash_key.attribute]
    if schema.range_key is not None:
        names.append(schema.range_key.attribute)
    return names


def plan_update(
    session: Session,
    instance: Model,
    actions: tuple[Action, ...],
    sets: dict[str, Any],
    *,
    condition: ConditionLike | None,
) -> Write:
    model = type(instance)
    schema = _schema(model)
    user = as_condition(condition, "condition") if condition is not None else None
    all_actions = collect_actions(model, actions, sets, "update", base=instance)
    if not all_actions:
        raise UsageError(f"update {model.__name__}: give at least one action or field=value")
    all_actions.extend(_template_actions(model, instance.__dict__, sets, all_actions))
    version = getattr(instance, schema.version or "") if _version_known(instance) else None
    checks: list[Condition | None] = [keys.hash_path(model).exists()]
    if version is not None and schema.version:
        all_actions.append(SetAction(_path(model, schema.version), Value({"N": str(version + 1)})))
        checks.append(_version_check(model, version))
    elif schema.version:
        path = _path(model, schema.version)
        all_actions.append(SetAction(path, Arithmetic(path, "+", Value({"N": "1"}))))
    stamp_updated(model, all_actions)
    key = session.instance_key(instance)
    guards: list[unique.Guard] = []
    changed = {name: sets[name] for name in schema.unique if name in sets}
    ttl_changed = bool(schema.unique and schema.ttl and schema.ttl in sets)
    if changed or ttl_changed:
        stored = unique.stored_values(instance)
        if stored is None:
            raise UsageError(
                f"update {model.__name__}: changing a unique field (or the expiry of a model "
                "with unique fields) needs the stored values; read the item first"
            )
        expiry = None
        if schema.ttl and schema.ttl_attribute:
            ttl_value = (
                sets[schema.ttl] if schema.ttl in sets else instance.__dict__.get(schema.ttl)
            )
            encoded = None if ttl_value is None else _path(model, schema.ttl).encode(ttl_value)
            expiry = {schema.ttl_attribute: encoded} if encoded and "N" in encoded else {}
        guards = unique.guards_for_update(session, model, key, stored, changed, expiry=expiry)
        checks.append(_unique_checks(model, {n: stored.get(n) for n in (changed or schema.unique)}))
    checks.append(user)
    body: dict[str, Any] = {"TableName": session.table_name(model), "Key": key}
    _render(body, all_of(checks), all_actions)

    def apply(attributes: Item | None) -> None:
        if attributes is not None:
            fresh = session.load(model, attributes)
            instance.__dict__.update(fresh.__dict__)
            set_state(instance, "_dm_extra", fresh._dm_extra)
            set_state(instance, "_dm_partial", False)
            unique.remember(instance, attributes)
            return
        # Inside a transaction DynamoDB returns nothing: apply what is known locally.
        for name, value in sets.items():
            setattr(instance, name, value)
        if version is not None and schema.version:
            instance.__dict__[schema.version] = version + 1
        unique.forget_changed(instance, changed)

    return Write(
        "Update",
        model,
        "update",
        body,
        key,
        idempotent=False,
        version=version,
        conditional=True,
        guards=guards,
        apply=apply,
    )


def _template_actions(
    model: type[Model], current: dict[str, Any], sets: dict[str, Any], actions: list[Action]
) -> list[Action]:
    """Keep computed key attributes in step with the fields they are made of."""
    schema = _schema(model)
    table_keys = {k.attribute for k in schema.table_keys}
    result: list[Action] = []
    for template in schema.templates:
        if template.attribute in table_keys:
            continue
        fields = set(template.fields)
        by_action = [
            a.path.root for a in actions if a.path.root in fields and a.path.root not in sets
        ]
        if by_action:
            raise UsageError(
                f"{model.__name__}: {by_action[0]!r} is part of the computed key "
                f"{template.attribute!r}; change it with a keyword ({by_action[0]}=...) so "
                "the key stays in step"
            )
        if not fields & set(sets):
            continue
        text = keys.render(model, template, {**current, **sets})
        path = keys.attribute_path(model, template.attribute)
        result.append(path.remove() if text is None else SetAction(path, Value({"S": text})))
    return result


def plan_upsert(
    session: Session,
    model: type[Model],
    key_value: Any,
    actions: tuple[Action, ...],
    sets: dict[str, Any],
    *,
    condition: ConditionLike | None,
) -> Write:
    schema = _schema(model)
    if schema.unique:
        raise UsageError(
            f"upsert {model.__name__}: models with unique fields are created with create() "
            "and changed with update(), so their guards stay in step"
        )
    user = as_condition(condition, "condition") if condition is not None else None
    key = session.split_key(model, key_value)
    all_actions = collect_actions(model, actions, sets, "upsert", base=None)
    if schema.computed_attributes:
        all_actions.extend(_upsert_computed(model, key_value, sets, all_actions))
    touched = {a.path.root for a in all_actions}
    missing: list[str] = []
    for name, info in model.model_fields.items():
        if (
            name in touched
            or name in schema.key_fields
            or name
            in (
                schema.version,
                schema.updated_at,
            )
        ):
            continue
        if info.is_required():
            missing.append(name)
            continue
        default = info.get_default(call_default_factory=True)
        if default is None or (isinstance(default, set | frozenset) and not default):
            continue  # stored as no attribute: nothing to set
        path = _path(model, name)
        all_actions.append(SetAction(path, IfNotExists(path, Value(path.encode(default)))))
    if schema.version:
        path = _path(model, schema.version)
        all_actions.append(
            SetAction(
                path, Arithmetic(IfNotExists(path, Value({"N": "0"})), "+", Value({"N": "1"}))
            )
        )
    stamp_updated(model, all_actions)
    exists = keys.hash_path(model).exists() if missing else None
    full = all_of([exists, user])
    body: dict[str, Any] = {"TableName": session.table_name(model), "Key": key}
    _render(body, full, all_actions)
    idempotent = full is None and not schema.version and _idempotent(all_actions)
    return Write(
        "Update",
        model,
        "upsert",
        body,
        key,
        idempotent=idempotent,
        conditional=full is not None,
        missing_required=tuple(missing),
    )


def _upsert_computed(
    model: type[Model], key_value: Any, sets: dict[str, Any], actions: list[Action]
) -> list[Action]:
    """For a templated model: the key fields as attributes, the entity type, and the
    index templates the given values fill."""
    schema = _schema(model)
    fields = dict(key_value) if isinstance(key_value, dict) else {}
    result: list[Action] = []
    for name, value in fields.items():
        result.append(_path(model, name).set(value))
    values = {**fields, **sets}
    table_keys = {k.attribute for k in schema.table_keys}
    for attribute, av in keys.computed(model, values, validate=True).items():
        if attribute not in table_keys:
            result.append(SetAction(keys.attribute_path(model, attribute), Value(av)))
    touched = {a.path.root for a in actions}
    for template in schema.templates:
        if template.attribute in table_keys or template.attribute in values:
            continue
        partly = set(template.fields) & (touched - set(sets))
        if partly:
            raise UsageError(
                f"upsert {model.__name__}: {sorted(partly)[0]!r} is part of the computed key "
                f"{template.attribute!r}; pass it as a keyword value"
            )
    return result


def plan_delete(
    session: Session,
    model: type[Model],
    key: Item,
    *,
    version: int | None,
    stored: dict[str, AttributeValue | None] | None,
    condition: ConditionLike | None,
    instance: Model | None = None,
) -> Write:
    schema = _schema(model)
    user = as_condition(condition, "condition") if condition is not None else None
    checks: list[Condition | None] = []
    if version is not None and schema.version:
        checks.append(keys.hash_path(model).exists() & _version_check(model, version))
    guards: list[unique.Guard] = []
    if schema.unique:
        if stored is None:
            raise UsageError(
                f"delete {model.__name__}: the unique fields' stored values are unknown; "
                "read the item first or use delete_key()"
            )
        guards = unique.guards_for_delete(session, model, key, stored)
        checks.append(_unique_checks(model, stored))
    checks.append(user)
    full = all_of(checks)
    body: dict[str, Any] = {"TableName": session.table_name(model), "Key": key}
    _render(body, full)

    def apply(_: Item | None) -> None:
        if instance is not None:
            unique.forget(instance)

    return Write(
        "Delete",
        model,
        "delete",
        body,
        key,
        idempotent=full is None,
        version=version,
        conditional=full is not None,
        guards=guards,
        apply=apply,
    )


def plan_check(session: Session, model: type[Model], key: Item, condition: ConditionLike) -> Write:
    user = as_condition(condition, "condition")
    body: dict[str, Any] = {"TableName": session.table_name(model), "Key": key}
    _render(body, user)
    return Write("ConditionCheck", model, "check", body, key, idempotent=True, conditional=True)


def _version_known(instance: Model) -> bool:
    """False for a partial instance read without its Version field (through an index
    that does not project it): its writes then increment the version without checking
    it, as nothing was read to compare with."""
    schema = _schema(type(instance))
    return bool(schema.version) and schema.version in instance.__dict__


def collect_actions(
    model: type[Model],
    actions: tuple[Action, ...],
    sets: dict[str, Any],
    operation: str,
    *,
    base: Model | None,
) -> list[Action]:
    """Positional actions plus keyword SETs (None removes), checked against the model.

    Keyword values go through the model's own validation (field validators included),
    on a copy of ``base`` when there is one; invalid data raises Pydantic's
    ValidationError before any request."""
    schema = _schema(model)
    probe: Model | None = None
    result: list[Action] = []
    for action in actions:
        if not isinstance(action, Action):
            raise UsageError(
                f"{operation} {model.__name__}: positional arguments are update actions such "
                f"as dm.attr(User.logins).add(1), got {type(action).__name__}"
            )
        if action.path.root in schema.unique:
            raise UsageError(
                f"{operation} {model.__name__}: the unique field {action.path.root!r} is "
                f"changed with a keyword ({action.path.root}=...), so its guard stays in step"
            )
        result.append(action)
    for name, value in sets.items():
        if name not in model.model_fields:
            raise UsageError(
                f"{operation} {model.__name__}: unknown field {name!r}; fields are "
                f"{', '.join(model.model_fields)}"
            )
        path = _path(model, name)
        if value is None:
            try:
                _adapter(model.model_fields[name].annotation).validate_python(None)
            except ValueError:
                raise UsageError(
                    f"{operation} {model.__name__}: {name}=None would remove the attribute, "
                    f"but the field {name!r} cannot be None; give it a value"
                ) from None
            result.append(path.remove())
        elif isinstance(value, set | frozenset) and not value:
            result.append(path.remove())  # an empty set is stored as no attribute
        else:
            if probe is None:
                probe = base.model_copy() if base is not None else model.model_construct()
            setattr(probe, name, value)
            result.append(path.set(probe.__dict__[name]))
    seen: set[tuple[str | int, ...]] = set()
    for action in result:
        path = action.path
        if path.model is not None and not issubclass(model, path.model):
            raise UsageError(
                f"{operation} {model.__name__}: the action on {path} belongs to another model"
            )
        if path.root == schema.version:
            raise UsageError(
                f"{operation} {model.__name__}: {path.root!r} is the Version field, which "
                "the library maintains on every write; leave it out"
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


def stamp_updated(model: type[Model], actions: list[Action]) -> None:
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


# ---------------------------------------------------------------- running


async def run(session: Session, write: Write) -> Item | None:
    """Send one write; with unique guards it becomes a transaction. Returns ALL_NEW
    attributes for updates."""
    if write.guards:
        await run_transaction(session, [write])
        return None
    request = dict(write.body)
    if write.conditional:
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if write.kind == "Update":
        request["ReturnValues"] = "ALL_NEW"
    table = request["TableName"]
    try:
        response = await session.call(
            _OPERATIONS[write.kind], request, idempotent=write.idempotent, table=table
        )
    except ConditionFailed as error:
        raise await condition_error(session, write, error.item, error) from None
    attributes: Item | None = response.get("Attributes")
    if write.apply is not None and active_dry_run.get() is None:
        write.apply(attributes)
    return attributes


async def condition_error(
    session: Session, write: Write, raw: Item | None, error: Exception | None
) -> ConditionFailed | NotFound:
    """Choose the error from the item as it was: missing, version moved, or condition."""
    model = write.model
    if raw is None:
        table = session.table_name(model)
        response = await session.call(
            "GetItem",
            {"TableName": table, "Key": write.key, "ConsistentRead": True},
            idempotent=True,
            table=table,
        )
        raw = response.get("Item")
    name = model.__name__
    codes: dict[str, Any] = {
        "code": getattr(error, "code", None) or "ConditionalCheckFailedException",
        "service_message": getattr(error, "service_message", None),
    }
    operation = write.operation
    if raw is None:
        if write.create:
            return ConditionFailed(f"{operation} {name}: the condition did not hold", **codes)
        if write.missing_required:
            return NotFound(
                f"upsert {name}: no item has this key, and creating one needs the required "
                f"fields {', '.join(write.missing_required)}; pass them as keywords",
                key=write.key,
            )
        return NotFound(f"{operation} {name}: no item with this key", key=write.key)
    try:
        old: Any = session.load(model, raw)
    except ValueError:
        old = None
    if write.create:
        return AlreadyExists(
            f"create {name}: an item with this key already exists; use save() to "
            "overwrite it or update() to change it",
            item=old,
            **codes,
        )
    schema = _schema(model)
    if write.version is not None and schema.version:
        stored = old.__dict__.get(schema.version) if old is not None else None
        if stored != write.version:
            return VersionConflict(
                f"{operation} {name}: the item changed since it was read (version "
                f"{write.version} expected, {stored} stored); read it again and retry",
                item=old,
                **codes,
            )
    return ConditionFailed(f"{operation} {name}: the condition did not hold", item=old, **codes)


@dataclass(frozen=True)
class CancellationReason:
    """Why one action of a cancelled transaction failed (``code`` "None" when it did not)."""

    index: int
    operation: str
    model: str
    code: str
    message: str
    item: Any = None


async def run_transaction(session: Session, writes: list[Write]) -> None:
    """TransactWriteItems for the writes and their guards; one client request token is
    reused on every retry of the same commit. TransactionConflict is retried."""
    if not writes:
        return
    check_transaction(writes)
    items: list[dict[str, Any]] = []
    owners: list[tuple[int, unique.Guard | None]] = []
    for position, write in enumerate(writes):
        for offset, entry in enumerate(write.transact_items()):
            items.append(entry)
            owners.append((position, write.guards[offset - 1] if offset else None))
    policy = session.retry
    started = policy.clock()
    attempt = 0
    while True:
        # session.call re-sends this same request (same token) when an answer is lost,
        # so DynamoDB applies the commit once. A cancelled commit wrote nothing: its
        # conflict retry is a new commit with a new token.
        request = {"TransactItems": items, "ClientRequestToken": uuid.uuid4().hex}
        try:
            await session.call("TransactWriteItems", request, idempotent=True)
            break
        except TransactionCanceled as error:
            reasons = error.reasons or []
            codes = [str(r.get("Code") or "None") for r in reasons]
            conflict = "TransactionConflict" in codes and not (
                set(codes) - {"None", "TransactionConflict"}
            )
            attempt += 1
            pause = policy.delay(attempt)
            if (
                conflict
                and attempt < policy.max_attempts
                and policy.clock() - started + pause <= policy.budget
            ):
                await policy.sleep(pause)
                continue
            raise await _cancellation(session, writes, owners, reasons, error) from None
    if active_dry_run.get() is not None:
        return
    for write in writes:
        if write.apply is not None:
            write.apply(None)


async def _cancellation(
    session: Session,
    writes: list[Write],
    owners: list[tuple[int, unique.Guard | None]],
    reasons: list[dict[str, Any]],
    error: TransactionCanceled,
) -> Exception:
    per_write: list[CancellationReason] = []
    violation: UniqueViolation | None = None
    for position, write in enumerate(writes):
        code, message, item = "None", "", None
        for (owner, guard), reason in zip(owners, reasons, strict=False):
            if owner != position:
                continue
            reason_code = str(reason.get("Code") or "None")
            if reason_code == "None":
                continue
            if guard is not None and reason_code == "ConditionalCheckFailed":
                if violation is None and guard.kind == "Put":
                    violation = UniqueViolation(
                        f"{write.operation} {write.model.__name__}: the value of unique field "
                        f"{guard.field!r} is already taken",
                        field=guard.field,
                        value=guard.value,
                        code="ConditionalCheckFailed",
                    )
                code = code if code != "None" else reason_code
                continue
            code, message = reason_code, str(reason.get("Message") or "")
            raw = reason.get("Item")
            if raw:
                try:
                    item = session.load(write.model, raw)
                except ValueError:
                    item = None
        per_write.append(
            CancellationReason(position, write.operation, write.model.__name__, code, message, item)
        )
    if violation is not None:
        return violation
    if len(writes) == 1 and per_write[0].code == "ConditionalCheckFailed":
        raw = reasons[0].get("Item") if reasons else None
        return await condition_error(session, writes[0], raw, error)
    failed = ", ".join(
        f"#{r.index} {r.operation} {r.model}: {r.code}" for r in per_write if r.code != "None"
    )
    return TransactionCanceled(
        f"the transaction was cancelled ({failed or 'no reason given'}); nothing was written",
        reasons=per_write,
        code=error.code,
        service_message=error.service_message,
    )


def check_transaction(writes: list[Write]) -> None:
    """DynamoDB's limits, checked before sending: 100 actions, 4 MB, one action per item."""
    count = sum(1 + len(w.guards) for w in writes)
    if count > MAX_TRANSACTION_ACTIONS:
        raise UsageError(
            f"a transaction holds at most {MAX_TRANSACTION_ACTIONS} actions; this one has "
            f"{count} (unique guards count too); split it"
        )
    seen: set[tuple[str, str]] = set()
    size = 0
    for write in writes:
        for kind_body in write.transact_items():
            body = next(iter(kind_body.values()))
            identity = (body["TableName"], repr(sorted(_target_key(write, body).items())))
            if identity in seen:
                raise UsageError(
                    f"transaction: two actions on the same {write.model.__name__} item; "
                    "DynamoDB allows one action per item in a transaction"
                )
            seen.add(identity)
            size += item_size(body.get("Item") or body.get("Key") or {})
    if size > MAX_TRANSACTION_BYTES:
        raise UsageError(f"a transaction carries at most 4 MB of items; this one has {size} bytes")


def _target_key(write: Write, body: dict[str, Any]) -> Item:
    if "Key" in body:
        key: Item = body["Key"]
        return key
    if body is write.body or body.get("Item") is write.body.get("Item"):
        return write.key
    return {unique.GUARD_KEY: body["Item"][unique.GUARD_KEY]}
