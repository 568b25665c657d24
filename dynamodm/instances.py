"""Instances: a stored item turned into a model instance, and the library's per-instance
state (attributes the model does not declare, partial loads, unique values as stored).

Pure: no I/O and no session. Everything that reads an item (gets, queries, batches,
transactions, streams) loads it here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from .codec import AttributeValue, ExactLoader, Item, Mismatch, decode_binary, encode_any
from .errors import ItemInvalid
from .migrations import VERSION_ATTRIBUTE, stored_version, upgrade

if TYPE_CHECKING:
    from .model import Model

M = TypeVar("M", bound="Model")


def set_state(instance: BaseModel, name: str, value: Any) -> None:
    """Set one of the library's per-instance values (``_dm_extra``, ``_dm_partial``,
    ``_dm_unique``, ``_dm_stored``): kept in the instance __dict__, invisible to dumps and
    equality."""
    object.__setattr__(instance, name, value)


def load_item(model: type[M], item: Item, *, partial: bool = False) -> M:
    """A model instance from a stored item (unknown attributes kept aside)."""
    codec = model.__dm_codec__
    version = model.__dm_schema_version__
    read = stored_version(item) if version is not None else None
    instance: M | None = None
    if read is not None and version is not None and read < version:
        data, extra = _migrated(model, item, read)
    else:
        instance, extra = (None, {}) if partial else _exact(codec.exact, item)
        if instance is None:
            data, extra = codec.decode_fields(item, partial=partial)
    if instance is None and partial:
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
    elif instance is None:
        instance = model.model_validate(data)
    if not partial:
        # What save() compares with to send only the changed attributes.
        set_state(instance, "_dm_stored", item)
    computed = model.__dm_schema__.computed_attributes
    if computed and extra:
        extra = {k: v for k, v in extra.items() if k not in computed}
    if version is not None:
        extra.pop(VERSION_ATTRIBUTE, None)
        if read != version:
            # Written at another version: a save writes the whole item, conditional on it.
            set_state(instance, "_dm_read_version", read)
    if extra:
        set_state(instance, "_dm_extra", extra)
    if not partial and model.__dm_schema__.unique:
        remember(instance, item)
    if model.__dm_hooks__:
        for name in model.__dm_hooks__.get(("after", "load"), ()):
            getattr(instance, name)()
    return instance


def _exact(loader: ExactLoader | None, item: Item) -> tuple[Any, Item]:
    """The instance built by the model's exact loader and the undeclared attributes, or
    (None, {}) when the model needs validation or the item holds a value of another kind
    than its field's (full decoding and validation then coerce it or refuse it)."""
    if loader is None:
        return None, {}
    try:
        return loader.load(item)
    except Mismatch:
        return None, {}


def _migrated(model: type[Model], item: Item, read: int) -> tuple[dict[str, Any], Item]:
    """Plain values by attribute (declared ones) and the other attributes encoded, of an
    item upgraded from schema version ``read`` by the model's migrations."""
    raw = upgrade(model, item, read, _key(model, item))
    declared = model.__dm_codec__.by_attribute
    data = {a: v for a, v in raw.items() if a in declared}
    extra: Item = {}
    for attribute, value in raw.items():
        if attribute not in declared:
            encoded = encode_any(value)
            if encoded is not None:
                extra[attribute] = encoded
    return data, extra


def expired(model: type[Model], item: Item, now: float | None = None) -> bool:
    """Whether a stored item's TTL has passed (DynamoDB deletes such items up to a few
    days late; until then reads hide them unless asked with ``include_expired``)."""
    attribute = model.__dm_schema__.ttl_attribute
    if attribute is None:
        return False
    value = item.get(attribute)
    if value is None or "N" not in value:
        return False
    try:
        return float(value["N"]) <= (time.time() if now is None else now)
    except ValueError:
        return False


def load_checked(model: type[M], item: Item, *, partial: bool = False) -> M:
    """``load_item``, with an item that does not fit the model as ``dm.ItemInvalid``
    (naming the model and fields, the key as an attribute, no value in the message). An
    item of a polymorphic model loads as the class its entity value names."""
    if not partial:
        fast = model.__dm_codec__.fast_load
        if fast is None:
            fast = model.__dm_codec__.fast_load = _fast_loader(model)
        if fast is not False:
            try:
                loaded: M = fast(item)
                return loaded
            except Mismatch:
                # A value of another kind: full decoding and validation decide, on binary
                # values as bytes (an item of a raw_loader's page may hold base64 text).
                decode_binary(item)
    cls = model if model.__dm_family__ is None else entity_class(model, item)
    if cls is None:
        raise ItemInvalid(
            f"{model.__name__}: the stored item is of another class of its table's "
            "hierarchy; read it through their common base",
            model=model.__name__,
            key=_key(model, item),
        )
    try:
        return load_item(cls, item, partial=partial)
    except ValidationError as error:
        raise invalid(cls, item, error) from None


def fast_loader(model: type[Model]) -> Callable[[Item], Any] | None:
    """The one-call loader of ``load_checked`` for whole items of ``model``, or None when
    its items take the general path; it raises ``Mismatch`` for an item that full
    decoding and validation must judge (``load_checked`` then gives the answer)."""
    fast = model.__dm_codec__.fast_load
    if fast is None:
        fast = model.__dm_codec__.fast_load = _fast_loader(model)
    return fast or None


def load_raw(model: type[M], item: Item, load: Callable[[Item], Any]) -> M:
    """``load_checked`` of an item whose binary values may be base64 text, through its
    model's ``raw_loader`` ``load``: an item it leaves to validation is decoded first."""
    try:
        loaded: M = load(item)
    except Mismatch:
        return load_checked(model, item)  # decodes the item, then validates it in full
    return loaded


def raw_loader(model: type[Model]) -> Callable[[Item], Any] | None:
    """``fast_loader`` for items whose binary values may still be base64 text, as the
    transport leaves them in the pages of the readers that ask it to (a whole-page search
    for binary values costs more than the loader's own decoding of what it keeps), or None
    when a field of the model takes binary values: then the reader asks for bytes. No
    declared attribute of such a model holds a binary value that loads (the exact decoders
    refuse one: ``Mismatch``, and ``load_checked`` decodes the item before the general
    path); its undeclared attributes are decoded in place, in the stored item too."""
    codec = model.__dm_codec__
    raw = codec.raw_load
    if raw is None:
        exact = codec.exact
        binary = exact is None or exact.binary
        raw = codec.raw_load = False if binary else _fast_loader(model, raw=True)
    return raw or None


def _fast_loader(
    model: type[Model], *, raw: bool = False
) -> Callable[[Item], Any] | Literal[False]:
    """``load_item`` in one call for the models whose loads do nothing but build the
    instance with its exact loader and keep the item and its undeclared attributes: no
    schema version, no polymorphic family, no unique fields, no after-load hooks. False
    for the others. ``Mismatch`` from it sends the item down the general path. ``raw``:
    binary values of undeclared attributes (``raw_loader``) are decoded first."""
    loader = model.__dm_codec__.exact
    schema = model.__dm_schema__
    if (
        loader is None
        or loader.cls is not model
        or model.__dm_schema_version__ is not None
        or model.__dm_family__ is not None
        or schema.unique
        or (model.__dm_hooks__ and model.__dm_hooks__.get(("after", "load")))
    ):
        return False
    build = loader.build_stored
    declared = loader.by_attribute
    skipped = declared | frozenset(schema.computed_attributes)
    keep = object.__setattr__

    def load(item: Item) -> Any:
        instance, found = build(item)
        if found != len(item):
            extra = {k: v for k, v in item.items() if k not in skipped}
            if extra:
                keep(instance, "_dm_extra", extra)
        return instance

    if not raw:
        return load

    def load_decoding(item: Item) -> Any:
        instance, found = build(item)
        if found != len(item):
            for name, av in item.items():
                if name not in declared and "S" not in av and "N" not in av:
                    decode_binary(av)
            extra = {k: v for k, v in item.items() if k not in skipped}
            if extra:
                keep(instance, "_dm_extra", extra)
        return instance

    return load_decoding


def entity_class(model: type[M], item: Item) -> type[M] | None:
    """The class of a polymorphic model's stored item: ``model`` or the subclass that its
    entity value names; None when that class is not ``model`` or one of its subclasses;
    ``ItemInvalid`` when no class has that entity value."""
    family = model.__dm_family__
    if family is None:
        return model
    attribute = model.__dm_schema__.entity_attribute
    value = item.get(attribute, {}).get("S")
    cls = family.get(value) if value is not None else None
    if cls is None:
        raise ItemInvalid(
            f"{model.__name__}: the stored entity value {value!r} (attribute "
            f"{attribute!r}) names no class of this model's hierarchy; declare the subclass "
            "or migrate the item",
            model=model.__name__,
            key=_key(model, item),
            fields=(attribute,),
        )
    if not issubclass(cls, model):
        return None
    found: type[M] = cls
    return found


def family_entities(model: type[Model]) -> list[str] | None:
    """The entity values of a polymorphic model and its subclasses (None for others)."""
    family = model.__dm_family__
    if family is None:
        return None
    return [entity for entity, cls in family.items() if issubclass(cls, model)]


def _key(model: type[Model], item: Item) -> Item:
    return {
        k.attribute: item[k.attribute]
        for k in model.__dm_schema__.table_keys
        if k.attribute in item
    }


def invalid(model: type[Model], item: Item, error: ValidationError) -> ItemInvalid:
    """The ``dm.ItemInvalid`` of a stored item that failed the model's validation."""
    by_attribute = model.__dm_codec__.by_attribute
    details = error.errors(include_input=False, include_url=False, include_context=False)
    fields: list[str] = []
    for detail in details:
        where = detail.get("loc") or ("(item)",)
        spec = by_attribute.get(str(where[0]))
        name = spec.name if spec is not None else str(where[0])
        if name not in fields:
            fields.append(name)
    key = _key(model, item)
    return ItemInvalid(
        f"{model.__name__}: a stored item does not fit the model (fields: "
        f"{', '.join(fields)}); its key is on error.key. Migrate the item, or make the "
        "model accept it (a default, a wider type)",
        model=model.__name__,
        key=key,
        fields=tuple(fields),
        errors=details,
    )


# ---------------------------------------------------------------- unique values as stored


def stored_values(instance: Model) -> dict[str, AttributeValue | None] | None:
    """The unique fields' values as stored, or None when this instance never was."""
    return instance._dm_unique


def remember(instance: Model, item: Item) -> None:
    """Note the unique fields' values of ``item`` as the ones stored for ``instance``."""
    schema = type(instance).__dm_schema__
    if not schema.unique:
        return
    codec = type(instance).__dm_codec__
    set_state(
        instance, "_dm_unique", {n: item.get(codec.by_name[n].attribute) for n in schema.unique}
    )


def forget(instance: Model) -> None:
    set_state(instance, "_dm_unique", None)


def forget_changed(instance: Model, changed: dict[str, Any]) -> None:
    """After a transaction update: the stored values are the ones just written."""
    if instance._dm_unique is None or not changed:
        return
    stored = dict(instance._dm_unique)  # a copy: model_copy() shares the old dict
    for name, value in changed.items():
        path = getattr(type(instance), name)
        stored[name] = None if value is None else path.encode(value)
    set_state(instance, "_dm_unique", stored)
