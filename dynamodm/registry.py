"""The registry: every concrete model class, for table set-up, the CLI and reads by table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from .model import Model


class Registry:
    """A set of model classes. ``dm.registry`` is the default one."""

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._models: dict[str, type[Model]] = {}

    def register(self, model: type[Model]) -> None:
        """Add a model (a class defined again under the same name replaces the old one)."""
        self._models[f"{model.__module__}.{model.__qualname__}"] = model

    def unregister(self, model: type[Model]) -> None:
        self._models.pop(f"{model.__module__}.{model.__qualname__}", None)

    @property
    def models(self) -> list[type[Model]]:
        return list(self._models.values())

    def __iter__(self) -> Iterator[type[Model]]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model: object) -> bool:
        return model in self._models.values()

    def get(self, name: str) -> type[Model]:
        """A model by class name (or module-qualified name)."""
        found = [m for key, m in self._models.items() if key == name or m.__name__ == name]
        if len(found) != 1:
            known = ", ".join(sorted(m.__name__ for m in self._models.values())) or "none"
            why = "is ambiguous" if found else "is not registered"
            raise UsageError(f"model {name!r} {why} in registry {self.name!r} (models: {known})")
        return found[0]

    def by_table(self, table: str) -> list[type[Model]]:
        """The models stored in a logical table (the name before the prefix)."""
        return [m for m in self._models.values() if m.__dm_schema__.table == table]

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {len(self._models)} models)"


registry = Registry()
