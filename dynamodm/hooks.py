"""Lifecycle hooks: methods a model marks to run before or after its writes, or after
loads. Sync or async; a before-hook that raises stops the write before anything is sent.

    class User(dm.Model):
        @dm.before("create", "save")
        def normalise_email(self) -> None:
            self.email = self.email.lower()
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .errors import InvalidModel

if TYPE_CHECKING:
    from .model import Model

Event = Literal["create", "save", "update", "delete", "load"]
When = Literal["before", "after"]
EVENTS: tuple[Event, ...] = ("create", "save", "update", "delete", "load")
F = TypeVar("F", bound=Callable[..., Any])


def _marker(when: When, events: tuple[str, ...]) -> Callable[[F], F]:
    for event in events:
        if event not in EVENTS:
            raise InvalidModel(f"dm.{when}({event!r}): hooks run on {', '.join(EVENTS)}")
    if not events:
        raise InvalidModel(f"dm.{when}() needs at least one event: {', '.join(EVENTS)}")
    if when == "before" and "load" in events:
        raise InvalidModel("there is no before-load hook; use dm.after('load')")

    def mark(function: F) -> F:
        marks = getattr(function, "__dm_hooks__", ())
        function.__dm_hooks__ = (*marks, *((when, e) for e in events))  # type: ignore[attr-defined]
        return function

    return mark


def before(*events: Event) -> Callable[[F], F]:
    """Run the decorated method before these writes: create, save, update, delete."""
    return _marker("before", events)


def after(*events: Event) -> Callable[[F], F]:
    """Run the decorated method once DynamoDB has acknowledged these writes, or after
    an item is loaded ("load": sync methods only)."""
    return _marker("after", events)


Hooks = dict[tuple[str, str], tuple[str, ...]]


def collect(cls: type[Model]) -> Hooks:
    """The hook method names of a model class, by (when, event), bases first."""
    found: dict[tuple[str, str], list[str]] = {}
    seen: set[str] = set()
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            marks = getattr(value, "__dm_hooks__", None)
            if not marks or name in seen:
                continue
            seen.add(name)
            for mark in marks:
                found.setdefault(mark, []).append(name)
    for name in found.get(("after", "load"), []):
        if inspect.iscoroutinefunction(getattr(cls, name)):
            raise InvalidModel(
                f"{cls.__name__}.{name}: an after-load hook must be a plain (sync) method, "
                "since loading never waits"
            )
    return {mark: tuple(names) for mark, names in found.items()}


def has(instance_or_model: Any, when: When, event: Event) -> bool:
    hooks: Hooks = getattr(instance_or_model, "__dm_hooks__", {})
    return (when, event) in hooks


def is_async(model: type[Model], when: When, event: Event) -> bool:
    names = model.__dm_hooks__.get((when, event), ())
    return any(inspect.iscoroutinefunction(getattr(model, n)) for n in names)


async def run(instance: Model, when: When, event: Event) -> None:
    """Call the instance's hooks for (when, event), awaiting async ones."""
    for name in type(instance).__dm_hooks__.get((when, event), ()):
        result = getattr(instance, name)()
        if inspect.isawaitable(result):
            await result
