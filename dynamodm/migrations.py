"""Schema versions and migrations: ``Meta.schema_version = n`` is stored on every put (the
``_sv`` attribute; an item without it is version 1), and ``@dm.migration(Model,
from_version=k)`` registers the function that turns a version-k item into version k+1.
Reads pass an older item through each migration in turn before validation. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .codec import Item, decode_any
from .errors import InvalidModel, ItemInvalid

if TYPE_CHECKING:
    from .model import Model

VERSION_ATTRIBUTE = "_sv"
Migration = Callable[[dict[str, Any]], dict[str, Any]]
F = TypeVar("F", bound=Migration)


def migration(model: type[Model], *, from_version: int) -> Callable[[F], F]:
    """Register ``f(raw) -> raw``, which turns an item of ``model`` stored at
    ``from_version`` into one of the next version. ``raw`` holds plain Python values by
    attribute name (numbers as int or Decimal, as stored), before validation::

        @dm.migration(User, from_version=1)
        def split_name(raw: dict) -> dict:
            first, _, last = raw.pop("name", "").partition(" ")
            return {**raw, "first_name": first, "last_name": last}
    """
    current = model.__dm_schema_version__
    name = model.__name__
    if current is None:
        raise InvalidModel(f"{name}: migrations need Meta.schema_version (the current version)")
    if isinstance(from_version, bool) or not isinstance(from_version, int):
        raise InvalidModel(f"{name}: from_version must be an int")
    if not 1 <= from_version < current:
        raise InvalidModel(
            f"{name}: a migration from version {from_version} is outside 1 to {current - 1} "
            f"(Meta.schema_version is {current})"
        )

    def register(function: F) -> F:
        if from_version in model.__dm_migrations__:
            raise InvalidModel(f"{name}: two migrations from version {from_version}")
        model.__dm_migrations__[from_version] = function
        return function

    return register


def stored_version(item: Item) -> int:
    """The schema version an item was written at (1 when it carries none)."""
    value = item.get(VERSION_ATTRIBUTE)
    if value is None or "N" not in value:
        return 1
    try:
        return int(value["N"])
    except ValueError:
        return 1


def upgrade(model: type[Model], item: Item, version: int, key: Item) -> dict[str, Any]:
    """The item's plain values after every migration from ``version`` to the current one;
    ``ItemInvalid`` when one is missing or fails (naming the version, never a value)."""
    current = model.__dm_schema_version__
    assert current is not None
    raw = {a: decode_any(av) for a, av in item.items() if a != VERSION_ATTRIBUTE}
    for step in range(version, current):
        function = model.__dm_migrations__.get(step)
        if function is None:
            raise ItemInvalid(
                f"{model.__name__}: a stored item is at schema version {step} and no "
                f"migration from version {step} is registered (@dm.migration)",
                model=model.__name__,
                key=key,
            )
        try:
            raw = function(dict(raw))
        except Exception as error:
            raise ItemInvalid(
                f"{model.__name__}: the migration from schema version {step} failed on a "
                f"stored item ({type(error).__name__}); its key is on error.key",
                model=model.__name__,
                key=key,
            ) from None
        if not isinstance(raw, dict):
            raise ItemInvalid(
                f"{model.__name__}: the migration from schema version {step} returned a "
                f"{type(raw).__name__}, not a dict",
                model=model.__name__,
                key=key,
            )
    return raw
