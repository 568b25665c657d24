"""Planned writes: one description of a put, update, delete or check, run alone or in a
transaction, with the library's own checks (existence, Version, unique guards) ANDed in.

A ``Write`` holds the request body that PutItem/UpdateItem/DeleteItem and
TransactWriteItems share, the guard writes that keep unique fields in step, and
what to change on the instance once DynamoDB has acknowledged the write.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import keys, unique
from .codec import (
    AttributeValue,
    Item,
    av_equal,
    check_item_size,
    format_datetime,
    item_size,
    sized_item,
    utcnow,
    value_size,
)
from .errors import UsageError
from .expressions import (
    Action,
    AddAction,
    Arithmetic,
    Comparison,
    Condition,
    ConditionLike,
    DeleteAction,
    IfNotExists,
    In,
    ListAppend,
    Path,
    RemoveAction,
    Renderer,
    SetAction,
    Value,
    _adapter,
    all_of,
    as_condition,
    check_expressions,
    render_update,
)
from .instances import (
    family_entities,
    forget,
    forget_changed,
    load_checked,
    load_raw,
    raw_loader,
    remember,
    set_state,
    stored_values,
)
from .migrations import VERSION_ATTRIBUTE
from .schema import KeyAttribute, TableNames, TableSchema, schema_of

if TYPE_CHECKING:
    from .model import Model

M = TypeVar("M", bound="Model")

_SETS = (set, frozenset)  # made once: ``set | frozenset`` builds a new union at each use

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
    returning: bool = False  # a delete that returns the old item
    # ``apply`` takes the returned attributes with their binary values still base64 text
    # (``instances.raw_loader``): the transport need not search the answer for them.
    raw_binary: bool = False

    def transact_items(self) -> list[dict[str, Any]]:
        body = dict(self.body)
        if self.conditional:
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        items: list[dict[str, Any]] = [{self.kind: body}]
        items.extend({guard.kind: guard.body} for guard in self.guards)
        return items


# ---------------------------------------------------------------- planning


_schema = schema_of


def _path(model: type[Model], name: str) -> Path[Any]:
    # The class's own cache of the paths its metaclass made, read first: getattr() only
    # reaches the metaclass after the normal attribute lookup fails, which costs more.
    made = model.__dict__.get("__dm_path_objects__")
    path: Path[Any] | None = made.get(name) if made is not None else None
    if path is None:
        path = getattr(model, name)
    return path


def _attribute(model: type[Model], name: str) -> str:
    attribute: str = model.__dm_codec__.by_name[name].attribute
    return attribute


def _render(
    body: dict[str, Any],
    condition: Condition | None,
    actions: list[Action] | None = None,
) -> None:
    shape: tuple[Any, ...] | None = None
    values = None
    if actions is not None and (condition is None or _made_once.get(id(condition)) is condition):
        values = Renderer()
        shape = _shape(actions, condition, values)
        rendered = _rendered.get(shape) if shape is not None else None
        if rendered is not None:
            update, condition_text, names = rendered
            body["UpdateExpression"] = update
            if condition_text is not None:
                body["ConditionExpression"] = condition_text
            if names:
                body["ExpressionAttributeNames"] = dict(names)
            if values.values:
                body["ExpressionAttributeValues"] = values.values
            return
    renderer = Renderer()
    if actions is not None:
        body["UpdateExpression"] = render_update(actions, renderer)
    if condition is not None:
        body["ConditionExpression"] = condition.render(renderer)
    if renderer.names:
        body["ExpressionAttributeNames"] = renderer.attribute_names()
    if renderer.values:
        body["ExpressionAttributeValues"] = renderer.values
    check_expressions(body, body["TableName"])
    if (
        shape is not None
        and values is not None
        and renderer.values == values.values
        and len(_rendered) < _SHAPES_KEPT
    ):
        _rendered[shape] = (
            body["UpdateExpression"],
            body.get("ConditionExpression"),
            renderer.attribute_names(),
        )


# An update of top-level attributes to values (or removing them), under no condition or
# one made once for good (``_present``), renders to expressions and names that follow
# from its shape alone: each action's kind and attribute, and which of its values are
# equal (the placeholders they get). Such updates are rendered once per shape; later ones
# only place their values. Bounded: past the limit, new shapes are rendered each time.
_SHAPES_KEPT = 1024
_rendered: dict[tuple[Any, ...], tuple[str, str | None, dict[str, str]]] = {}
_made_once: dict[int, Condition] = {}  # the conditions made once, by id: they live on
_VALUED = (SetAction, AddAction, DeleteAction)


def _shape(
    actions: list[Action], condition: Condition | None, values: Renderer
) -> tuple[Any, ...] | None:
    """The shape of an update for ``_rendered``, its values placed in ``values`` as a
    full rendering places them; None for an update of another form."""
    shape: list[Any] = [id(condition)]
    for action in actions:
        elements = action.path.elements
        kind = type(action)
        if len(elements) != 1:
            return None
        if kind is RemoveAction:
            shape.append((kind, action.clause, elements[0]))
            continue
        operand = getattr(action, "operand", None) if kind in _VALUED else None
        if type(operand) is not Value:
            return None
        shape.append((kind, action.clause, elements[0], values.value(operand.av)))
    return tuple(shape)


def _now() -> Value:
    return Value({"N": str(int(time.time()))})


_exists: dict[type[Model], Condition] = {}


def _present(model: type[Model]) -> Condition:
    """The item exists and has not expired (an item past its TTL counts as gone, though
    DynamoDB may delete it days later)."""
    if model.__dm_family__ is None and _schema(model).ttl is None:
        # Nothing in it changes with time or with the model's subclasses: made once.
        found = _exists.get(model)
        if found is None:
            found = _exists[model] = keys.hash_path(model).exists()
            _made_once[id(found)] = found
        return found
    exists = keys.hash_path(model).exists()
    entities = family_entities(model)
    if entities is not None and len(entities) < len(model.__dm_family__ or ()):
        # A subclass of a polymorphic model: the item must be of its kind.
        attribute = keys.attribute_path(model, _schema(model).entity_attribute)
        exists = exists & In(attribute, tuple(Value({"S": e}) for e in entities))
    ttl = _schema(model).ttl
    if ttl is None:
        return exists
    path = _path(model, ttl)
    return exists & (path.not_exists() | Comparison(">", path, _now()))


def _absent(model: type[Model]) -> Condition:
    """No item has this key, or only one past its TTL."""
    missing = keys.hash_path(model).not_exists()
    ttl = _schema(model).ttl
    if ttl is None:
        return missing
    return missing | Comparison("<=", _path(model, ttl), _now())


def _schema_version_check(model: type[Model], read: int) -> Condition:
    """The item is still at the schema version it was read at (a migrator or another
    writer that rewrote it in the meantime wins)."""
    if read > (model.__dm_schema_version__ or 0):
        raise UsageError(
            f"save {model.__name__}: the item was written at schema version {read}, newer "
            f"than this model's {model.__dm_schema_version__}; a save would write an older "
            "shape over it: deploy the newer model"
        )
    path = keys.attribute_path(model, VERSION_ATTRIBUTE)
    same = Comparison("=", path, Value({"N": str(read)}))
    return path.not_exists() | same if read == 1 else same


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
    names: TableNames, instance: Model, *, create: bool, condition: ConditionLike | None
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
    now = utcnow() if schema.updated_at else None
    if now is not None and schema.updated_at:
        item[_attribute(model, schema.updated_at)] = {"S": format_datetime(now)}
    version = getattr(instance, schema.version) if schema.version else None
    if version is not None and schema.version:
        item[_attribute(model, schema.version)] = {"N": str(version + 1)}
    # From here on the item is only read: it carries the JSON it is sent as.
    item, _ = sized_item(item, model.__name__, operation, model.__dm_codec__.bounded)

    key = {a: item[a] for a in _key_attributes(schema)}
    checks: list[Condition | None] = []
    if create or version == 0:
        checks.append(_absent(model))
    elif version is not None:
        checks.append(_version_check(model, version))
    read = instance._dm_read_version
    if read is not None and not create:
        checks.append(_schema_version_check(model, read))
    guards: list[unique.Guard] = []
    stored = stored_values(instance)
    if schema.unique:
        if stored is None and not create:
            raise UsageError(
                f"save {model.__name__}: the unique fields' stored values are unknown for an "
                "instance that was not read or created here; use create() for a new item, or "
                "read the item first"
            )
        guards = unique.guards_for_put(names, model, item, key, stored or {}, create=create)
        if stored and not create:
            checks.append(_unique_checks(model, stored))
    checks.append(user)
    full = all_of(checks)
    body: dict[str, Any] = {"TableName": names.of(model), "Item": item}
    if full is not None:
        _render(body, full)

    def apply(_: Item | None) -> None:
        if now is not None and schema.updated_at:
            instance.__dict__[schema.updated_at] = now
        if version is not None and schema.version:
            instance.__dict__[schema.version] = version + 1
        remember(instance, item)
        # A plain copy: the instance keeps the attributes, not the JSON they were sent as.
        set_state(instance, "_dm_stored", dict(item))
        set_state(instance, "_dm_read_version", None)

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


def plan_changes(
    names: TableNames, instance: Model, *, condition: ConditionLike | None
) -> Write | None:
    """The UpdateItem that brings a read instance's stored item in step with it: SET of
    the attributes that changed, REMOVE of those that are gone, conditional on the item
    existing (and on its version and unique values). None when nothing changed; a full
    PutItem (``plan_put``) when the key itself changed."""
    model = type(instance)
    schema = _schema(model)
    stored = instance._dm_stored
    if stored is None or instance._dm_partial:
        raise UsageError(f"save {model.__name__}: the instance was not read; use a put")
    if instance._dm_read_version is not None:
        # Read at another schema version: the whole item is written in the current shape.
        return plan_put(names, instance, create=False, condition=condition)
    user = as_condition(condition, "condition") if condition is not None else None
    item = encode_for_put(instance, "save")
    skip = {_attribute(model, n) for n in (schema.version, schema.updated_at) if n}
    watched = [spec.attribute for spec in model.__dm_codec__.fields]
    watched += sorted(schema.computed_attributes)
    if any(not av_equal(stored.get(a), item.get(a)) for a in _key_attributes(schema)):
        return plan_put(names, instance, create=False, condition=condition)
    actions: list[Action] = []
    changed_names: dict[str, Any] = {}
    for attribute in watched:
        if attribute in skip:
            continue
        new, old = item.get(attribute), stored.get(attribute)
        if av_equal(new, old):
            continue
        path = keys.attribute_path(model, attribute)
        actions.append(path.remove() if new is None else SetAction(path, Value(new)))
        spec = model.__dm_codec__.by_attribute.get(attribute)
        if spec is not None:
            changed_names[spec.name] = instance.__dict__.get(spec.name)
    if not actions:
        return None
    version = instance.__dict__.get(schema.version) if schema.version else None
    checks: list[Condition | None] = [_present(model)]
    if version is not None and schema.version:
        actions.append(SetAction(_path(model, schema.version), Value({"N": str(version + 1)})))
        checks.append(_version_check(model, version))
    now = utcnow() if schema.updated_at else None
    if now is not None and schema.updated_at:
        actions.append(
            SetAction(_path(model, schema.updated_at), Value({"S": format_datetime(now)}))
        )
    check_item_size(item, model.__name__, "save", model.__dm_codec__.bounded)
    key = {a: item[a] for a in _key_attributes(schema)}
    moved = {n: v for n, v in changed_names.items() if n in schema.unique}
    ttl_value = instance.__dict__.get(schema.ttl) if schema.ttl else None
    guards, guard_check = _moved_guards(
        names, model, key, instance, moved, schema.ttl in changed_names, ttl_value, "save"
    )
    checks.append(guard_check)
    checks.append(user)
    body: dict[str, Any] = {"TableName": names.of(model), "Key": key}
    _render(body, all_of(checks), actions)

    def apply(attributes: Item | None) -> None:
        if now is not None and schema.updated_at:
            instance.__dict__[schema.updated_at] = now
        if version is not None and schema.version:
            instance.__dict__[schema.version] = version + 1
        if attributes is not None:
            set_state(instance, "_dm_stored", attributes)
            remember(instance, attributes)
        else:  # in a transaction nothing comes back: what was sent is what is stored
            set_state(instance, "_dm_stored", None)
            forget_changed(instance, moved)

    return Write(
        "Update",
        model,
        "save",
        body,
        key,
        idempotent=False,
        version=version,
        conditional=True,
        guards=guards,
        apply=apply,
    )


def encode_for_put(instance: Model, operation: str) -> Item:
    """The whole item of an instance, with the attributes the model does not declare."""
    model = type(instance)
    item = model.__dm_codec__.encode_fields(instance)
    schema = model.__dm_schema__
    if schema.computed_attributes:
        item.update(keys.computed(model, instance.__dict__))
    if model.__dm_schema_version__ is not None:
        item[VERSION_ATTRIBUTE] = {"N": str(model.__dm_schema_version__)}
    check_key_values(model, item, schema)
    if instance._dm_extra:
        item = {**instance._dm_extra, **item}
    return item


def check_key_values(model: type[Model], item: Item, schema: TableSchema) -> None:
    """Table and index keys may not be empty strings or bytes; table keys must be present."""
    for attribute, key in schema.key_attributes().items():
        value = item.get(attribute)
        if value is not None:
            text = value.get("S")
            if text and len(text) <= keys.SHORT_KEY:
                continue  # the common case, checked in place
        _check_key_value(model, schema, attribute, key, value)


def _check_key_value(
    model: type[Model],
    schema: TableSchema,
    attribute: str,
    key: KeyAttribute,
    value: AttributeValue | None,
) -> None:
    name = key.field or attribute
    if value is None:
        if key in schema.table_keys:
            needs = key.template.fields if key.template else (name,)
            raise UsageError(f"{model.__name__}: the table key needs {', '.join(map(repr, needs))}")
        return
    if value.get("S") == "" or value.get("B") == b"":
        raise UsageError(
            f"{model.__name__}.{name}: an empty value cannot be stored in a key "
            "attribute of the table or an index; use None (no index entry) or a value"
        )
    keys.check_key_size(model, name, value, hash_key=attribute not in schema.range_attributes)


def _key_attributes(schema: TableSchema) -> list[str]:
    names = [schema.hash_key.attribute]
    if schema.range_key is not None:
        names.append(schema.range_key.attribute)
    return names


def plan_update(
    names: TableNames,
    instance: Model,
    actions: tuple[Action, ...],
    sets: dict[str, Any],
    *,
    condition: ConditionLike | None,
) -> Write:
    model = type(instance)
    schema = _schema(model)
    user = as_condition(condition, "condition") if condition is not None else None
    sets = validate_sets(model, sets, "update", base=instance)
    all_actions = collect_actions(model, actions, sets, "update")
    if not all_actions:
        raise UsageError(f"update {model.__name__}: give at least one action or field=value")
    # Each step below is skipped for a model without the feature it serves (templates,
    # Version, UpdatedAt, unique fields, TTL): most models have few of them.
    if schema.templates:
        all_actions.extend(_template_actions(model, instance.__dict__, sets, all_actions))
    version = (
        getattr(instance, schema.version) if schema.version and _version_known(instance) else None
    )
    checks: list[Condition | None] = [_present(model)]
    if version is not None and schema.version:
        all_actions.append(SetAction(_path(model, schema.version), Value({"N": str(version + 1)})))
        checks.append(_version_check(model, version))
    elif schema.version:
        path = _path(model, schema.version)
        all_actions.append(SetAction(path, Arithmetic(path, "+", Value({"N": "1"}))))
    if schema.updated_at:
        stamp_updated(model, all_actions)
    key = keys.from_instance(instance)
    changed = {name: sets[name] for name in schema.unique if name in sets} if schema.unique else {}
    guards: list[unique.Guard] = []
    if changed or schema.ttl:
        ttl_value = instance.__dict__.get(schema.ttl) if schema.ttl else None
        if schema.ttl and schema.ttl in sets:
            ttl_value = sets[schema.ttl]
        guards, guard_check = _moved_guards(
            names, model, key, instance, changed, schema.ttl in sets, ttl_value, "update"
        )
        checks.append(guard_check)
    checks.append(user)
    body: dict[str, Any] = {"TableName": names.of(model), "Key": key}
    _render(body, all_of(checks), all_actions)

    raw = raw_loader(model)

    def apply(attributes: Item | None) -> None:
        if attributes is not None:
            if raw is not None:
                fresh = load_raw(model, attributes, raw)
            else:
                fresh = load_checked(model, attributes)
            instance.__dict__.update(fresh.__dict__)
            # Each state is written only when it differs: most instances hold the defaults.
            if fresh._dm_extra or instance._dm_extra:
                set_state(instance, "_dm_extra", fresh._dm_extra)
            if instance._dm_partial:
                set_state(instance, "_dm_partial", False)
            if schema.unique:
                remember(instance, attributes)
            return
        # Inside a transaction DynamoDB returns nothing: apply what is known locally. The
        # stored item is not known whole any more: the next save() is a full put.
        set_state(instance, "_dm_stored", None)
        for name, value in sets.items():
            setattr(instance, name, value)
        if version is not None and schema.version:
            instance.__dict__[schema.version] = version + 1
        forget_changed(instance, changed)

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
        raw_binary=raw is not None,
    )


def _moved_guards(
    names: TableNames,
    model: type[Model],
    key: Item,
    instance: Model,
    changed: dict[str, Any],
    ttl_changed: bool,
    ttl_value: Any,
    operation: str,
) -> tuple[list[unique.Guard], Condition | None]:
    """The guard writes of an update that changes unique values (or the expiry of a model
    with unique fields, which every guard carries), and the check that the stored unique
    values are still the ones this instance knows."""
    schema = _schema(model)
    if not (changed or (schema.unique and schema.ttl and ttl_changed)):
        return [], None
    stored = stored_values(instance)
    if stored is None:
        raise UsageError(
            f"{operation} {model.__name__}: changing a unique field (or the expiry of a model "
            "with unique fields) needs the stored values; read the item first"
        )
    expiry = None
    if schema.ttl and schema.ttl_attribute:
        encoded = None if ttl_value is None else _path(model, schema.ttl).encode(ttl_value)
        expiry = {schema.ttl_attribute: encoded} if encoded and "N" in encoded else {}
    guards = unique.guards_for_update(names, model, key, stored, changed, expiry=expiry)
    return guards, _unique_checks(model, {n: stored.get(n) for n in (changed or schema.unique)})


def _template_actions(
    model: type[Model], current: dict[str, Any], sets: dict[str, Any], actions: list[Action]
) -> list[Action]:
    """Keep computed key attributes in step with the fields they are made of."""
    schema = _schema(model)
    if not schema.templates:
        return []
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
    names: TableNames,
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
    key = keys.from_any(model, key_value)
    sets = validate_sets(model, sets, "upsert", base=None)
    all_actions = collect_actions(model, actions, sets, "upsert")
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
        if default is None or (isinstance(default, _SETS) and not default):
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
    exists = _present(model) if missing else None
    fresh = None
    if model.__dm_schema_version__ is not None:
        # An item this creates is of the current version; one it finds keeps its own.
        path = keys.attribute_path(model, VERSION_ATTRIBUTE)
        current = Value({"N": str(model.__dm_schema_version__)})
        all_actions.append(SetAction(path, IfNotExists(path, current)))
        if model.__dm_schema_version__ > 1:
            # An item without the attribute is of version 1: not one to upsert into.
            fresh = path.exists() | keys.hash_path(model).not_exists()
    full = all_of([exists, fresh, user])
    body: dict[str, Any] = {"TableName": names.of(model), "Key": key}
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


def plan_update_key(
    names: TableNames,
    model: type[Model],
    key_value: Any,
    actions: tuple[Action, ...],
    sets: dict[str, Any],
    *,
    condition: ConditionLike | None,
    if_version: int | None,
    touch: bool,
) -> Write:
    """An UpdateItem of an existing item by key, without reading it first: conditional on
    the item existing (and on ``if_version``); ``touch=False`` leaves Version and
    UpdatedAt alone (counters)."""
    schema = _schema(model)
    operation = "update_key"
    user = as_condition(condition, "condition") if condition is not None else None
    key = keys.from_any(model, key_value)
    if if_version is not None and (
        not schema.version or isinstance(if_version, bool) or not isinstance(if_version, int)
    ):
        raise UsageError(
            f"{operation} {model.__name__}: if_version needs a model with a Version field and "
            "an int"
            if schema.version
            else f"{operation} {model.__name__}: if_version needs a Version field in the model"
        )
    changed_unique = [n for n in schema.unique if n in sets] or (
        [schema.ttl] if schema.unique and schema.ttl and schema.ttl in sets else []
    )
    if changed_unique:
        raise UsageError(
            f"{operation} {model.__name__}: changing {changed_unique[0]!r} moves a unique "
            "guard, which needs the stored values; read the item and use update()"
        )
    sets = validate_sets(model, sets, operation, base=None)
    all_actions = collect_actions(model, actions, sets, operation)
    if not all_actions:
        raise UsageError(f"{operation} {model.__name__}: give at least one action or field=value")
    for template in schema.templates:
        given = set(template.fields) & set(sets)
        if given and given != set(template.fields):
            raise UsageError(
                f"{operation} {model.__name__}: the computed key {template.attribute!r} is "
                f"made of {', '.join(template.fields)}; give all of them (or read the item "
                "and use update())"
            )
    all_actions.extend(_template_actions(model, {}, sets, all_actions))
    checks: list[Condition | None] = [_present(model)]
    if schema.version and if_version is not None:
        checks.append(_version_check(model, if_version))
    if touch:
        if schema.version:
            path = _path(model, schema.version)
            new = (
                Value({"N": str(if_version + 1)})
                if if_version is not None
                else Arithmetic(path, "+", Value({"N": "1"}))
            )
            all_actions.append(SetAction(path, new))
        stamp_updated(model, all_actions)
    checks.append(user)
    body: dict[str, Any] = {"TableName": names.of(model), "Key": key}
    _render(body, all_of(checks), all_actions)
    return Write(
        "Update",
        model,
        operation,
        body,
        key,
        idempotent=False,
        version=if_version,
        conditional=True,
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
    names: TableNames,
    model: type[Model],
    key: Item,
    *,
    version: int | None,
    stored: dict[str, AttributeValue | None] | None,
    condition: ConditionLike | None,
    instance: Model | None = None,
    returning: bool = False,
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
        guards = unique.guards_for_delete(names, model, key, stored)
        checks.append(_unique_checks(model, stored))
    checks.append(user)
    full = all_of(checks)
    body: dict[str, Any] = {"TableName": names.of(model), "Key": key}
    if full is not None:
        _render(body, full)

    def apply(_: Item | None) -> None:
        if instance is not None:
            forget(instance)

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
        returning=returning,
    )


def plan_check(names: TableNames, model: type[Model], key: Item, condition: ConditionLike) -> Write:
    user = as_condition(condition, "condition")
    body: dict[str, Any] = {"TableName": names.of(model), "Key": key}
    _render(body, user)
    return Write("ConditionCheck", model, "check", body, key, idempotent=True, conditional=True)


def _version_known(instance: Model) -> bool:
    """False for a partial instance read without its Version field (through an index
    that does not project it): its writes then increment the version without checking
    it, as nothing was read to compare with."""
    schema = _schema(type(instance))
    return bool(schema.version) and schema.version in instance.__dict__


def validate_sets(
    model: type[Model], sets: dict[str, Any], operation: str, *, base: Model | None
) -> dict[str, Any]:
    """Keyword values as the model stores them: each goes through the model's own
    validation (field validators included), on a copy of ``base`` when there is one.
    Invalid data raises Pydantic's ValidationError before any request. Unique guards,
    key templates and the instance all follow these validated values."""
    probe: Model | None = None
    validated: dict[str, Any] = {}
    fields = model.__pydantic_fields__  # not the model_fields property: once per update
    for name, value in sets.items():
        if name not in fields:
            raise UsageError(
                f"{operation} {model.__name__}: unknown field {name!r}; fields are "
                f"{', '.join(model.model_fields)}"
            )
        if value is None:
            try:
                _adapter(fields[name].annotation).validate_python(None)
            except ValueError:
                raise UsageError(
                    f"{operation} {model.__name__}: {name}=None would remove the attribute, "
                    f"but the field {name!r} cannot be None; give it a value"
                ) from None
            validated[name] = None
        elif isinstance(value, _SETS) and not value:
            validated[name] = value
        else:
            if probe is None:
                probe = base.model_copy() if base is not None else model.model_construct()
            # The model's validator itself, as an assignment with validate_assignment makes
            # it, whatever the model's config says: collect_actions sends what this gives.
            model.__pydantic_validator__.validate_assignment(probe, name, value)
            validated[name] = probe.__dict__[name]
    return validated


def collect_actions(
    model: type[Model],
    actions: tuple[Action, ...],
    sets: dict[str, Any],
    operation: str,
) -> list[Action]:
    """Positional actions plus keyword SETs of validated values (``validate_sets``; None
    removes), checked against the model."""
    schema = _schema(model)
    index_keys = schema.key_attributes()
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
        path = _path(model, name)
        if value is None or (isinstance(value, _SETS) and not value):
            result.append(path.remove())  # None, and an empty set, are stored as no attribute
        else:
            # validate_sets made the value through the model's validation: encoded as it is.
            result.append(SetAction(path, Value(path.encode(value, validated=True))))
    seen: set[tuple[str | int, ...]] = set()
    version, key_fields = schema.version, schema.key_fields
    for action in result:
        path = action.path
        if path.model is not None and path.model is not model and not issubclass(model, path.model):
            raise UsageError(
                f"{operation} {model.__name__}: the action on {path} belongs to another model"
            )
        if path.root == version:
            raise UsageError(
                f"{operation} {model.__name__}: {path.root!r} is the Version field, which "
                "the library maintains on every write; leave it out"
            )
        if path.root in key_fields:
            raise UsageError(
                f"{operation} {model.__name__}: {path.root!r} is part of the table key and "
                "cannot be changed; create a new item and delete the old one"
            )
        if path.elements in seen:
            raise UsageError(f"{operation} {model.__name__}: two actions on {path}")
        seen.add(path.elements)
        if (
            isinstance(action, SetAction)
            and isinstance(action.operand, Value)
            and len(path.elements) == 1
            and path.elements[0] in index_keys
            and (action.operand.av.get("S") == "" or action.operand.av.get("B") == b"")
        ):
            raise UsageError(
                f"{operation} {model.__name__}.{path.root}: an empty value cannot be stored "
                "in a key attribute of an index; use None (no index entry) or a value"
            )
    return result


def stamp_updated(model: type[Model], actions: list[Action]) -> None:
    schema = _schema(model)
    if schema.updated_at and not any(a.path.root == schema.updated_at for a in actions):
        actions.append(
            SetAction(_path(model, schema.updated_at), Value({"S": format_datetime(utcnow())}))
        )


def _idempotent(actions: list[Action]) -> bool:
    for action in actions:
        if isinstance(action, AddAction):
            return False
        if isinstance(action, SetAction) and isinstance(action.operand, Arithmetic | ListAppend):
            return False
    return True


def check_transaction(writes: list[Write]) -> None:
    """DynamoDB's limits, checked before sending: 100 actions, 4 MB, one action per item."""
    count = sum(1 + len(w.guards) for w in writes)
    if count > MAX_TRANSACTION_ACTIONS:
        raise UsageError(
            f"a transaction holds at most {MAX_TRANSACTION_ACTIONS} actions; this one has "
            f"{count} (unique guards count too); split it"
        )
    seen: dict[str, str | None] = {}
    size = 0
    for write in writes:
        guards: list[unique.Guard | None] = [None, *write.guards]
        for kind_body, guard in zip(write.transact_items(), guards, strict=True):
            body = next(iter(kind_body.values()))
            identity = keys.item_identity(body["TableName"], _target_key(write, body))
            if identity in seen:
                name = write.model.__name__
                if guard is not None:
                    raise UsageError(
                        f"transaction: two actions claim or release one value of the unique "
                        f"field {name}.{guard.field}; DynamoDB allows one action per item, "
                        "and the value's guard is one item (a swap of two values between "
                        "two items is supported; two claims of one value are not)"
                    )
                raise UsageError(
                    f"transaction: two actions on the same {name} item; "
                    "DynamoDB allows one action per item in a transaction"
                )
            seen[identity] = guard.field if guard is not None else None
            size += item_size(body.get("Item") or body.get("Key") or {})
            size += sum(map(value_size, body.get("ExpressionAttributeValues", {}).values()))
    if size > MAX_TRANSACTION_BYTES:
        raise UsageError(f"a transaction carries at most 4 MB of items; this one has {size} bytes")


def merge_guard_handovers(writes: list[Write]) -> list[Write]:
    """Writes of one transaction where a unique value released by one item is claimed
    by another (a swap of emails between two users): the release and the claim of that
    value's guard become one guard put, conditional on the guard being free or held by
    either item, since DynamoDB takes one action per item in a transaction."""
    releases: dict[str, tuple[int, unique.Guard]] = {}
    for position, write in enumerate(writes):
        for guard in write.guards:
            if guard.kind == "Delete":
                releases[guard.body["Key"][unique.GUARD_KEY]["S"]] = (position, guard)
    if not releases:
        return writes
    dropped: dict[int, list[unique.Guard]] = {}
    replaced: dict[int, dict[int, unique.Guard]] = {}
    for position, write in enumerate(writes):
        for offset, guard in enumerate(write.guards):
            if guard.kind != "Put":
                continue
            released = releases.get(guard.body["Item"][unique.GUARD_KEY]["S"])
            if released is None or released[0] == position:
                continue
            owner, release = released
            replaced.setdefault(position, {})[offset] = unique.handover(guard, release)
            dropped.setdefault(owner, []).append(release)
    if not replaced:
        return writes
    merged: list[Write] = []
    for position, write in enumerate(writes):
        guards = [
            replaced.get(position, {}).get(offset, guard)
            for offset, guard in enumerate(write.guards)
            if not any(guard is gone for gone in dropped.get(position, ()))
        ]
        merged.append(dataclasses.replace(write, guards=guards))
    return merged


def _target_key(write: Write, body: dict[str, Any]) -> Item:
    if "Key" in body:
        key: Item = body["Key"]
        return key
    if body is write.body or body.get("Item") is write.body.get("Item"):
        return write.key
    return {unique.GUARD_KEY: body["Item"][unique.GUARD_KEY]}
