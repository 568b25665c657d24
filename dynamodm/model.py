"""The Model base class: a Pydantic model plus key metadata. Methods are sugar over Session."""

from __future__ import annotations

import typing
import uuid
import warnings
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, dataclass_transform, overload

from pydantic import BaseModel, ConfigDict
from pydantic._internal._model_construction import ModelMetaclass, build_lenient_weakvaluedict
from pydantic._internal._typing_extra import parent_frame_namespace

from . import hooks
from .codec import (
    BOOL_KEY,
    EPOCH_SECONDS,
    Codec,
    ModelCodec,
    _Nullable,
    exact_loader,
    utcnow,
)
from .errors import InvalidModel
from .expressions import Action, ConditionLike, Path, _strip
from .migrations import Migration
from .query import Query
from .ratelimit import RateLimit
from .registry import Registry, registry
from .schema import (
    RESERVED_FIELD_NAMES,
    TTL,
    CreatedAt,
    GlobalIndex,
    HashKey,
    LocalIndex,
    Marker,
    RangeKey,
    TableSchema,
    UpdatedAt,
    Version,
    build_schema,
    markers_of,
)
from .session import Session, current_session


def new_id() -> str:
    """A new random id (32 hex characters), for ``Field(default_factory=dm.new_id)``."""
    return uuid.uuid4().hex


# Type checkers honour the dataclass_transform of pydantic's own metaclass, not of a
# subclass of it: declared again here, Model(...) keywords are checked. Without field
# specifiers, `= Field(alias=...)` counts as a default and the keyword stays the field's
# Python name, as the models take it (validate_by_name); only such a field's being
# required goes unchecked.
@dataclass_transform(kw_only_default=True)
class ModelMeta(ModelMetaclass):
    """Builds the table schema and codec once, when a model class is defined."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> type:
        meta = namespace.pop("Meta", None)
        if kwargs.get("__pydantic_reset_parent_namespace__", True):
            # Pydantic reads the defining scope's names from its caller's frame, which is
            # this method: hand it the frame that defines the class instead.
            namespace["__pydantic_parent_namespace__"] = build_lenient_weakvaluedict(
                parent_frame_namespace()
            )
            kwargs["__pydantic_reset_parent_namespace__"] = False
        if any(getattr(base, "__dm_paths__", None) for base in bases):
            # A field of a concrete parent redeclared (a subclass's own default): the
            # parent's class attribute is our attribute path, not a shadowed value.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Field name .* shadows an attribute in parent")
                cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        else:
            cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        cls.__dm_meta__ = meta  # type: ignore[attr-defined]
        cls.__dm_schema__ = None  # type: ignore[attr-defined]
        cls.__dm_codec__ = None  # type: ignore[attr-defined]
        if namespace.get("__module__") == __name__ and name == "Model":
            return cls
        base = _polymorphic_base(cls)
        if base is not None:
            meta = _subclass_meta(name, cls, base, meta)
            cls.__dm_meta__ = meta  # type: ignore[attr-defined]
        elif meta is None or getattr(meta, "abstract", False):
            return cls
        elif getattr(meta, "polymorphic", False) and getattr(meta, "entity", None) is None:
            meta = type("Meta", (meta,), {"entity": name})
            cls.__dm_meta__ = meta  # type: ignore[attr-defined]
        _complete(cls, name, meta)
        if base is not None:
            _join_family(cls, name, base)
        elif getattr(meta, "polymorphic", False):
            cls.__dm_family__ = {cls.__dm_schema__.entity: cls}  # type: ignore[attr-defined]
        return cls

    if not TYPE_CHECKING:  # type checkers see fields as their values; paths are runtime

        def __getattr__(cls, name: str) -> Any:
            paths = cls.__dict__.get("__dm_paths__")
            if paths is not None:
                # One Path per field and class, made on first use (paths are immutable:
                # navigating one or building an action from it makes new objects).
                made = cls.__dict__["__dm_path_objects__"]
                path = made.get(name)
                if path is not None:
                    return path
                found = paths.get(name)
                if found is not None:
                    attribute, codec, annotation = found
                    path = made[name] = Path(cls, name, (attribute,), codec, annotation)
                    return path
            return super().__getattr__(name)


def _complete(cls: type[Model], name: str, meta: Any) -> None:
    fields = cls.model_fields
    for field_name in fields:
        if field_name in RESERVED_FIELD_NAMES:
            raise InvalidModel(
                f"{name}: field {field_name!r} is reserved (model methods take it as a keyword "
                "argument); rename the field and keep the attribute name with Field(alias=...)"
            )
    field_markers = {n: markers_of(info.metadata) for n, info in fields.items()}
    _check_markers(name, cls, field_markers)

    index_keys = _declared_index_keys(meta, field_markers)
    codec = ModelCodec(cls)
    overrides: dict[str, Codec] = {}
    for field_name, info in fields.items():
        marks = field_markers[field_name]
        if TTL in marks:
            overrides[field_name] = (
                _Nullable(EPOCH_SECONDS) if _optional(info.annotation) else EPOCH_SECONDS
            )
        elif field_name in index_keys and _strip(info.annotation) is bool:
            overrides[field_name] = _Nullable(BOOL_KEY) if _optional(info.annotation) else BOOL_KEY
    codec.compile(overrides)
    codec.exact = exact_loader(cls, codec, inert=_inert)

    key_types = {spec.name: spec.codec.key_type for spec in codec.fields}
    attribute_names = {spec.name: spec.attribute for spec in codec.fields}
    owner: Registry | None = getattr(meta, "registry", None)
    if owner is None:
        owner = registry
    schema = build_schema(name, meta, field_markers, attribute_names, key_types, owner)
    for key_field in schema.key_fields:
        if codec.by_name[key_field].codec.nullable:
            raise InvalidModel(
                f"{name}: key field {key_field!r} cannot be optional; every item needs its key"
            )
    cls.__dm_schema__ = schema
    cls.__dm_codec__ = codec
    cls.__dm_path_objects__ = {}  # type: ignore[attr-defined]
    cls.__dm_paths__ = {  # type: ignore[attr-defined]
        spec.name: (spec.attribute, spec.codec, fields[spec.name].annotation)
        for spec in codec.fields
    }
    cls.__dm_hooks__ = hooks.collect(cls)
    version = getattr(meta, "schema_version", None)
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise InvalidModel(f"{name}: Meta.schema_version must be an int of 1 or more")
    cls.__dm_schema_version__ = version
    cls.__dm_migrations__ = {}
    owner.register(cls)


def _inert(metadata: Any) -> bool:
    """Field metadata that neither validates nor changes a loaded value: the key and version
    markers (TTL's marker converts epoch seconds, so a TTL field keeps validation)."""
    return isinstance(metadata, Marker) and not hasattr(metadata, "__get_pydantic_core_schema__")


# ---------------------------------------------------------------- inheritance

_SUBCLASS_META = frozenset({"entity"})


def _polymorphic_base(cls: type) -> type[Model] | None:
    """The nearest ancestor with ``Meta.polymorphic`` (or one of its subclasses)."""
    for ancestor in cls.__mro__[1:]:
        if ancestor.__dict__.get("__dm_family__") is not None:
            base: type[Model] = ancestor
            return base
    return None


def _subclass_meta(name: str, cls: type[Model], base: type[Model], meta: Any) -> Any:
    """The Meta of a subclass of a polymorphic model: the base's table, keys, indexes
    and options, with the subclass's own entity value (``Meta.entity`` or its name)."""
    base_fields = base.model_fields
    for field_name, info in cls.model_fields.items():
        if field_name not in base_fields and markers_of(info.metadata) & {HashKey, RangeKey}:
            raise InvalidModel(
                f"{name}.{field_name}: a subclass of the polymorphic model {base.__name__} "
                "keeps its keys; it may not declare a key field of its own"
            )
    own = {k: v for k, v in vars(meta).items() if not k.startswith("__")} if meta else {}
    refused = sorted(set(own) - _SUBCLASS_META)
    if refused:
        raise InvalidModel(
            f"{name}: a subclass of the polymorphic model {base.__name__} lives in its table "
            f"with its keys and indexes; its Meta may only set entity, not {', '.join(refused)}"
        )
    base_meta = base.__dm_meta__
    inherited = {
        k: getattr(base_meta, k)
        for k in dir(base_meta)
        if not k.startswith("__") and k not in ("polymorphic", "entity")
    }
    return type("Meta", (), {**inherited, "entity": own.get("entity", name)})


def _join_family(cls: type[Model], name: str, base: type[Model]) -> None:
    family: dict[str, type[Model]] = base.__dm_family__  # type: ignore[assignment]
    entity = cls.__dm_schema__.entity
    assert entity is not None
    if entity in family:
        raise InvalidModel(
            f"{name}: the entity value {entity!r} is taken by {family[entity].__name__} in "
            f"the family of {base.__name__}; set Meta.entity"
        )
    family[entity] = cls
    cls.__dm_family__ = family


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _declared_index_keys(meta: Any, field_markers: dict[str, set[Marker]]) -> set[str]:
    names = {n for n, marks in field_markers.items() if marks & {HashKey, RangeKey}}
    for index in getattr(meta, "indexes", ()) or ():
        if isinstance(index, GlobalIndex | LocalIndex):
            for key in (getattr(index, "hash_key", None), index.range_key):
                parts = key if isinstance(key, tuple | list) else (key,)
                names.update(part for part in parts if isinstance(part, str))
    return names


def _check_markers(name: str, cls: type[Model], field_markers: dict[str, set[Marker]]) -> None:
    """Check marker types and give CreatedAt/UpdatedAt/Version their defaults."""
    changed = False
    for field_name, marks in field_markers.items():
        info = cls.model_fields[field_name]
        annotation = _strip(info.annotation)
        if marks & {CreatedAt, UpdatedAt}:
            if annotation is not datetime:
                raise InvalidModel(
                    f"{name}.{field_name}: CreatedAt/UpdatedAt fields must be datetime"
                )
            if info.is_required():
                info.default_factory = utcnow
                changed = True
        if Version in marks:
            if annotation is not int:
                raise InvalidModel(f"{name}.{field_name}: a Version field must be an int")
            if info.is_required():
                info.default = 0
                changed = True
        if TTL in marks and annotation not in (datetime, int, float, Decimal, date):
            raise InvalidModel(
                f"{name}.{field_name}: a TTL field must be a datetime (or epoch seconds as int)"
            )
    if changed:
        cls.model_rebuild(force=True)


_session = current_session


class Model(BaseModel, metaclass=ModelMeta):
    """Base class of every dynamodm model."""

    model_config = ConfigDict(
        validate_assignment=True,
        validate_by_name=True,
        validate_by_alias=True,
        allow_inf_nan=False,
    )

    __dm_schema__: ClassVar[TableSchema]
    __dm_codec__: ClassVar[ModelCodec]
    __dm_meta__: ClassVar[Any]
    __dm_hooks__: ClassVar[dict[tuple[str, str], tuple[str, ...]]] = {}
    # Polymorphic models: the classes of one table's hierarchy by entity value.
    __dm_family__: ClassVar[dict[str, type[Model]] | None] = None
    # Meta.schema_version, and the migrations from each older version.
    __dm_schema_version__: ClassVar[int | None] = None
    __dm_migrations__: ClassVar[dict[int, Migration]] = {}

    # Per-instance state lives in the instance __dict__ (set with object.__setattr__ by
    # set_state), with these class-level defaults: Pydantic private attributes would cost
    # every validation an initialisation step.
    _dm_extra: ClassVar[dict[str, Any]] = {}
    _dm_partial: ClassVar[bool] = False
    _dm_unique: ClassVar[dict[str, Any] | None] = None
    _dm_stored: ClassVar[dict[str, Any] | None] = None  # the item as last read or written
    _dm_read_version: ClassVar[int | None] = None  # schema version read, when not current

    # -- class-level operations

    @classmethod
    async def create(cls, *, session: Session | None = None, **values: Any) -> Self:
        """Build, validate and store a new item; ``AlreadyExists`` if the key is taken."""
        instance = cls(**values)
        await _session(session).put(instance, create=True)
        return instance

    @classmethod
    async def get(
        cls,
        hash_key: Any = None,
        range_key: Any = None,
        *,
        consistent: bool = False,
        include_expired: bool = False,
        session: Session | None = None,
        **fields: Any,
    ) -> Self:
        """The item with this key; raises ``dm.NotFound`` when there is none (or it is past
        its TTL, unless ``include_expired=True``).

        Models with templated keys take the key fields by name:
        ``TrainingSession.get(athlete_id="a-1", session_id="s-9")``.
        """
        found = await _session(session).get(
            cls,
            hash_key,
            range_key,
            consistent=consistent,
            required=True,
            fields=fields,
            include_expired=include_expired,
        )
        assert found is not None
        return found

    @classmethod
    async def get_or_none(
        cls,
        hash_key: Any = None,
        range_key: Any = None,
        *,
        consistent: bool = False,
        include_expired: bool = False,
        session: Session | None = None,
        **fields: Any,
    ) -> Self | None:
        """The item with this key, or None (also for an item past its TTL, unless
        ``include_expired=True``)."""
        return await _session(session).get(
            cls,
            hash_key,
            range_key,
            consistent=consistent,
            fields=fields,
            include_expired=include_expired,
        )

    @classmethod
    @overload
    async def delete_key(
        cls,
        hash_key: Any = None,
        range_key: Any = None,
        *,
        condition: ConditionLike | None = None,
        returning: Literal[False] = False,
        session: Session | None = None,
        **fields: Any,
    ) -> None: ...

    @classmethod
    @overload
    async def delete_key(
        cls,
        hash_key: Any = None,
        range_key: Any = None,
        *,
        condition: ConditionLike | None = None,
        returning: Literal[True],
        session: Session | None = None,
        **fields: Any,
    ) -> Self | None: ...

    @classmethod
    async def delete_key(
        cls,
        hash_key: Any = None,
        range_key: Any = None,
        *,
        condition: ConditionLike | None = None,
        returning: bool = False,
        session: Session | None = None,
        **fields: Any,
    ) -> Self | None:
        """Delete the item with this key (nothing happens if there is none); with
        ``returning=True``, the deleted item as an instance (None if there was none)."""
        found: Self | None = await _session(session).delete_key(
            cls, hash_key, range_key, condition=condition, fields=fields, returning=returning
        )
        return found

    @classmethod
    async def update_key(
        cls,
        key: Any,
        *actions: Action,
        condition: ConditionLike | None = None,
        if_version: int | None = None,
        touch: bool = True,
        session: Session | None = None,
        **sets: Any,
    ) -> Self:
        """Update an existing item by key without reading it first; returns it as stored.

        ``key`` is a hash value or a ``(hash, range)`` tuple; ``dm.NotFound`` if there is
        no such item. ``if_version=n`` makes it conditional on the stored version
        (``dm.VersionConflict``); ``touch=False`` leaves ``Version`` and ``UpdatedAt``
        alone, for counters: ``await Post.update_key(pid, dm.attr(Post.views).add(1),
        touch=False)``.
        """
        return await _session(session).update_key(
            cls, key, actions, sets, condition=condition, if_version=if_version, touch=touch
        )

    @classmethod
    async def upsert(
        cls,
        key: Any,
        *actions: Action,
        condition: ConditionLike | None = None,
        session: Session | None = None,
        **sets: Any,
    ) -> Self:
        """Update the item with this key, creating it if missing; returns it as stored.

        ``key`` is a hash value or a ``(hash, range)`` tuple. Creating an item needs
        every required field among the keyword values.
        """
        return await _session(session).upsert(cls, key, actions, sets, condition=condition)

    @classmethod
    async def batch_get(
        cls,
        keys: Sequence[Any],
        *,
        consistent: bool = False,
        on_invalid: Literal["raise", "skip"] = "raise",
        include_expired: bool = False,
        session: Session | None = None,
    ) -> list[Self]:
        """The items with these keys (hash values or ``(hash, range)`` tuples), in the order
        asked, missing ones left out. Any number of keys. Items that do not fit the model
        raise ``dm.ItemInvalid`` (the good ones on ``.items``), or are skipped with
        ``on_invalid="skip"``."""
        return await _session(session).batch_get(
            [(cls, key) for key in keys],
            consistent=consistent,
            on_invalid=on_invalid,
            include_expired=include_expired,
        )

    @classmethod
    async def get_by(
        cls, *, include_expired: bool = False, session: Session | None = None, **value: Any
    ) -> Self:
        """The item whose unique field has this value: ``await User.get_by(email=...)``."""
        return await _session(session).get_by(cls, include_expired=include_expired, **value)

    @classmethod
    def query(
        cls,
        hash_value: Any = None,
        range_condition: ConditionLike | None = None,
        *,
        index: str | None = None,
        filter: ConditionLike | None = None,
        limit: int | None = None,
        reverse: bool = False,
        consistent: bool = False,
        attributes: Sequence[str] | None = None,
        on_invalid: Literal["raise", "skip"] = "raise",
        include_expired: bool = False,
        rate_limit: RateLimit | None = None,
        session: Session | None = None,
        **fields: Any,
    ) -> Query[Self]:
        """Items of one partition (of the table or ``index``), in range key order.

        Models with templated keys are queried by field values:
        ``TrainingSession.query(athlete_id="a-1")``.

        Nothing is sent until the query is iterated or asked for ``all()``,
        ``first()``, ``count()`` or ``page()``. ``rate_limit=dm.RateLimit(read=...)``
        paces its pages.
        """
        return Query(
            cls,
            "Query",
            hash_value=hash_value,
            range_condition=range_condition,
            index=index,
            filter=filter,
            limit=limit,
            reverse=reverse,
            consistent=consistent,
            attributes=attributes,
            session=session,
            fields=fields,
            on_invalid=on_invalid,
            include_expired=include_expired,
            rate_limit=rate_limit,
        )

    @classmethod
    def scan(
        cls,
        filter: ConditionLike | None = None,
        *,
        limit: int | None = None,
        segments: int = 1,
        index: str | None = None,
        attributes: Sequence[str] | None = None,
        consistent: bool = False,
        on_invalid: Literal["raise", "skip"] = "raise",
        include_expired: bool = False,
        rate_limit: RateLimit | None = None,
        session: Session | None = None,
    ) -> Query[Self]:
        """Every item of the table (or ``index``); ``segments > 1`` scans in parallel.
        ``rate_limit=dm.RateLimit(read=...)`` paces its pages (all segments together)."""
        return Query(
            cls,
            "Scan",
            filter=filter,
            limit=limit,
            segments=segments,
            index=index,
            attributes=attributes,
            consistent=consistent,
            session=session,
            on_invalid=on_invalid,
            include_expired=include_expired,
            rate_limit=rate_limit,
        )

    # -- instance operations

    async def save(
        self,
        *,
        condition: ConditionLike | None = None,
        replace: bool = False,
        session: Session | None = None,
    ) -> None:
        """Store this item, honouring Version, unique fields and ``condition``.

        An instance that was read (returned by get, query, create, update...) sends an
        UpdateItem of the fields that changed, conditional on the item existing; nothing
        when nothing changed. A built instance, or ``replace=True``, sends the whole item
        (PutItem)."""
        await _session(session).put(self, condition=condition, replace=replace)

    async def insert(self, *, session: Session | None = None) -> None:
        """Store this built instance as a new item; ``dm.AlreadyExists`` if the key is
        taken (``create()`` for an instance built in code)."""
        await _session(session).put(self, create=True)

    async def update(
        self,
        *actions: Action,
        condition: ConditionLike | None = None,
        session: Session | None = None,
        **sets: Any,
    ) -> None:
        """Change the stored item in one UpdateItem and refresh this instance from it."""
        await _session(session).update(self, actions, sets, condition=condition)

    @overload
    async def delete(
        self,
        *,
        condition: ConditionLike | None = None,
        returning: Literal[False] = False,
        session: Session | None = None,
    ) -> None: ...

    @overload
    async def delete(
        self,
        *,
        condition: ConditionLike | None = None,
        returning: Literal[True],
        session: Session | None = None,
    ) -> Self | None: ...

    async def delete(
        self,
        *,
        condition: ConditionLike | None = None,
        returning: bool = False,
        session: Session | None = None,
    ) -> Self | None:
        """Delete this item, honouring Version and ``condition``; with
        ``returning=True``, the item as it was stored (None if there was none)."""
        found: Self | None = await _session(session).delete(
            self, condition=condition, returning=returning
        )
        return found

    # -- helpers

    @property
    def is_partial(self) -> bool:
        """True when loaded with ``attributes=`` (it cannot be saved whole)."""
        return self._dm_partial

    @property
    def extra_attributes(self) -> dict[str, Any]:
        """Attributes stored on the item that the model does not declare (AttributeValues)."""
        return dict(self._dm_extra)

    def key(self) -> dict[str, Any]:
        """The key field values of this instance, by field name."""
        return {name: getattr(self, name) for name in self.__dm_schema__.key_fields}
