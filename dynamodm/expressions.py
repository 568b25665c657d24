"""Attribute paths, conditions and update actions, rendered through placeholders.

Every node is a small frozen object that renders itself into one shared
``Renderer``: names become ``#n0``, values ``:v0``. No user value is ever part of
an expression string.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, TypeAdapter, ValidationError

from .codec import ANY, AttributeValue, Codec, EncodeError, check_nesting, encode_any, utf8
from .errors import UsageError

if TYPE_CHECKING:
    from .model import Model

T = TypeVar("T")

ATTRIBUTE_TYPES = frozenset({"S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"})


class Renderer:
    """Collects ``#name`` and ``:value`` placeholders for one request."""

    __slots__ = ("_value_keys", "names", "values")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}
        self._value_keys: dict[Any, str] = {}

    def name(self, attribute: str) -> str:
        placeholder = self.names.get(attribute)
        if placeholder is None:
            count = len(self.names)
            placeholder = _NAMES[count] if count < _MADE else f"#n{count}"
            self.names[attribute] = placeholder
        return placeholder

    def value(self, av: AttributeValue) -> str:
        key: Any = None
        if len(av) == 1:
            ((tag, raw),) = av.items()
            if type(raw) is str:
                # The common value, one tag and a str ("S", "N"): (tag, text) is its key.
                # It equals no _freeze() result, whose members are tuples, not str.
                key = (tag, raw)
        if key is None:
            key = _freeze(av)
        placeholder = self._value_keys.get(key)
        if placeholder is None:
            count = len(self._value_keys)
            placeholder = _VALUES[count] if count < _MADE else f":v{count}"
            self._value_keys[key] = placeholder
            self.values[placeholder] = av
        return placeholder

    def attribute_names(self) -> dict[str, str]:
        return {placeholder: name for name, placeholder in self.names.items()}


# The placeholders of most requests, made once rather than formatted for each request.
_MADE = 32
_NAMES = tuple(f"#n{i}" for i in range(_MADE))
_VALUES = tuple(f":v{i}" for i in range(_MADE))


def _freeze(av: Any) -> Any:
    """A hashable form of an AttributeValue that keeps its type tags (1 != 1.0 != True)."""
    if isinstance(av, dict):
        return tuple((k, _freeze(v)) for k, v in av.items())
    if isinstance(av, list):
        return tuple(_freeze(v) for v in av)
    return (type(av).__name__, av)


# ---------------------------------------------------------------- operands

# Plain field types whose validation returns a value of exactly that type unchanged:
# such a value is encoded without a call into the validator.
_SELF_VALID = frozenset({int, float, str, bool})

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    try:
        adapter = _ADAPTERS.get(annotation)
    except TypeError:
        return TypeAdapter(annotation)
    if adapter is None:
        adapter = _ADAPTERS[annotation] = TypeAdapter(annotation)
    return adapter


def _strip(annotation: Any) -> Any:
    """Unwrap Annotated and Optional to the type a path's value has."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _child_annotation(annotation: Any, key: str | int) -> Any:
    annotation = _strip(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(key, str):
        info = annotation.model_fields.get(key)
        return info.annotation if info else Any
    if origin in (list, set, frozenset) and args:
        return args[0]
    if origin is tuple and args:
        return args[0] if len(set(args) - {Ellipsis}) == 1 else Any
    if origin is dict and len(args) == 2:
        return args[1]
    return Any


class Operand:
    """Something that renders to a value in an expression: a path, a value, a size..."""

    def render(self, r: Renderer) -> str:
        raise NotImplementedError


@dataclass(frozen=True, eq=False, init=False)
class Value(Operand):
    av: AttributeValue

    # Values and update actions are made for every update: their fields go straight into
    # the instance dict, as the __init__ dataclasses writes for a frozen class (through
    # object.__setattr__, one call per field) costs about twice as much.
    def __init__(self, av: AttributeValue) -> None:
        self.__dict__["av"] = av

    def render(self, r: Renderer) -> str:
        return r.value(self.av)


class Path(Operand, Generic[T]):
    """An attribute path: ``User.email``, ``Image.steps["resize"].status``, ``User.tags[0]``.

    Comparisons build conditions; methods build update actions.
    """

    __slots__ = ("_kind_of", "_name", "annotation", "codec", "elements", "model", "root")

    def __init__(
        self,
        model: type[Model] | None,
        root: str,
        elements: tuple[str | int, ...],
        codec: Codec,
        annotation: Any,
    ) -> None:
        self.model = model
        self.root = root
        self.elements = elements
        self.codec = codec
        self.annotation = annotation
        # A top-level attribute renders as one name placeholder (most paths are one).
        self._name = elements[0] if len(elements) == 1 and type(elements[0]) is str else None
        self._kind_of: str | None = None  # _kind(), worked out on first use

    # -- navigation

    def __getattr__(self, name: str) -> Path[Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        attribute = self.codec.field_attribute(name)
        if attribute is None:
            annotation = _strip(self.annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                raise UsageError(f"{self}: {annotation.__name__} has no field {name!r}")
            raise AttributeError(
                f"{self} is not a nested model; use {self}[{name!r}] for a map key"
            )
        return Path(
            self.model,
            self.root,
            (*self.elements, attribute),
            self.codec.child(name),
            _child_annotation(self.annotation, name),
        )

    def __getitem__(self, key: str | int) -> Path[Any]:
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise UsageError(f"{self}[...] takes a map key (str) or a list index (int)")
        if isinstance(key, int) and key < 0:
            raise UsageError(f"{self}[{key}]: DynamoDB list indexes start at 0")
        return Path(
            self.model,
            self.root,
            (*self.elements, key),
            self.codec.child(key),
            _child_annotation(self.annotation, key),
        )

    def render(self, r: Renderer) -> str:
        if self._name is not None:
            return r.name(self._name)
        parts: list[str] = []
        for element in self.elements:
            if isinstance(element, int):
                parts.append(f"[{element}]")
            else:
                parts.append(("." if parts else "") + r.name(element))
        return "".join(parts)

    @property
    def nested(self) -> bool:
        return len(self.elements) > 1

    def __repr__(self) -> str:
        owner = self.model.__name__ if self.model else "path"
        text = self.root
        for element in self.elements[1:]:
            text += f"[{element}]" if isinstance(element, int) else f".{element}"
        return f"{owner}.{text}"

    __str__ = __repr__

    def __hash__(self) -> int:
        return hash((self.model, self.elements))

    def __bool__(self) -> bool:
        raise UsageError(f"{self} is an attribute path, not a value; did you mean a condition?")

    # -- values

    def encode(self, value: Any, what: str = "value", *, validated: bool = False) -> AttributeValue:
        """Encode a value as this path stores it (validated through the field's type,
        unless ``validated``: the model's own validation already made it)."""
        if isinstance(value, Operand):
            raise UsageError(f"{self}: expected a {what}, got {value!r}")
        if value is None:
            if self.annotation is not Any:
                try:
                    _adapter(self.annotation).validate_python(None)
                except ValidationError:
                    raise UsageError(
                        f"{self}: None does not fit the field's type; use .remove() to "
                        "delete the attribute, or give a value"
                    ) from None
            return {"NULL": True}
        if (
            self.annotation is not Any
            and not validated
            and not (type(value) is self.annotation and self.annotation in _SELF_VALID)
        ):
            try:
                value = _adapter(self.annotation).validate_python(value)
            except ValidationError as exc:
                raise UsageError(
                    f"{self}: the {what} does not fit the field's type ({exc.errors()[0]['msg']})"
                ) from None
        try:
            encoded = self.codec.encode(value)
            if encoded is not None and (self._name is None or "M" in encoded or "L" in encoded):
                # A scalar at the top level is within the nesting limit: nothing to check.
                check_nesting(encoded, f"the {what}", above=len(self.elements) - 1)
        except EncodeError as exc:
            raise UsageError(f"{self}: {exc}") from None
        except RecursionError:
            message = f"{self}: the {what} is nested far deeper than DynamoDB allows"
            raise UsageError(message) from None
        if encoded is None:
            raise UsageError(f"{self}: an empty set cannot be used as a {what}")
        return encoded

    def _operand(self, value: Any) -> Operand:
        return value if isinstance(value, Operand) else Value(self.encode(value))

    # -- conditions

    def __eq__(self, other: object) -> Condition:  # type: ignore[override]
        return Comparison("=", self, self._operand(other))

    def __ne__(self, other: object) -> Condition:  # type: ignore[override]
        return Comparison("<>", self, self._operand(other))

    def __lt__(self, other: Any) -> Condition:
        return Comparison("<", self, self._operand(other))

    def __le__(self, other: Any) -> Condition:
        return Comparison("<=", self, self._operand(other))

    def __gt__(self, other: Any) -> Condition:
        return Comparison(">", self, self._operand(other))

    def __ge__(self, other: Any) -> Condition:
        return Comparison(">=", self, self._operand(other))

    def between(self, low: Any, high: Any) -> Condition:
        return Between(self, self._operand(low), self._operand(high))

    def begins_with(self, prefix: str | bytes) -> Condition:
        if isinstance(prefix, str):
            try:
                av: AttributeValue = {"S": utf8(prefix)}
            except EncodeError as exc:
                raise UsageError(f"{self}.begins_with(): {exc}") from None
        elif isinstance(prefix, bytes):
            av = {"B": prefix}
        else:
            raise UsageError(f"{self}.begins_with() takes a str or bytes prefix")
        if not prefix:
            raise UsageError(f"{self}.begins_with() needs a non-empty prefix")
        return BeginsWith(self, Value(av))

    def contains(self, value: Any) -> Condition:
        element: Path[Any] = Path(
            self.model,
            self.root,
            self.elements,
            self.codec.child(0),
            _child_annotation(self.annotation, 0),
        )
        stripped = _strip(self.annotation)
        if stripped is str or (typing.get_origin(stripped) is None and self.codec is ANY):
            operand: Operand = Value(encode_any(value) or {"NULL": True})
        else:
            operand = element._operand(value)
        return Contains(self, operand)

    def is_in(self, values: Iterable[Any]) -> Condition:
        operands = tuple(self._operand(v) for v in values)
        if not 1 <= len(operands) <= 100:
            raise UsageError(f"{self}.is_in() takes 1 to 100 values, got {len(operands)}")
        return In(self, operands)

    def exists(self) -> Condition:
        return Function("attribute_exists", self)

    def not_exists(self) -> Condition:
        return Function("attribute_not_exists", self)

    def is_type(self, type_: str) -> Condition:
        if type_ not in ATTRIBUTE_TYPES:
            raise UsageError(
                f"{self}.is_type({type_!r}): use one of {', '.join(sorted(ATTRIBUTE_TYPES))}"
            )
        return IsType(self, Value({"S": type_}))

    def size(self) -> Size:
        return Size(self)

    # -- update actions

    def set(self, value: T | Operand) -> Action:
        return SetAction(self, self._operand(value))

    def remove(self) -> Action:
        return RemoveAction(self)

    def add(self, value: Any) -> Action:
        if self.nested:
            raise UsageError(
                f"{self}.add(): DynamoDB's ADD works on top-level attributes only; "
                "use .set(path + n) for a nested number"
            )
        kind = self._kind()
        if kind not in ("number", "set", "any"):
            raise UsageError(
                f"{self}.add(): DynamoDB's ADD works on numbers and sets; use .set() or "
                ".append() for this field"
            )
        return AddAction(self, Value(self.encode(value, "number or set to add")))

    def delete(self, value: Any) -> Action:
        if self._kind() not in ("set", "any"):
            raise UsageError(
                f"{self}.delete(): DynamoDB's DELETE removes elements from a set; use "
                ".remove() to delete the attribute"
            )
        return DeleteAction(self, Value(self.encode(value, "set of elements to delete")))

    def _kind(self) -> str:
        """ "number", "set", or "any" (untyped), or "other", from the path's type."""
        kind = self._kind_of
        if kind is None:
            kind = self._kind_of = self._annotation_kind()
        return kind

    def _annotation_kind(self) -> str:
        annotation = _strip(self.annotation)
        if annotation is Any or annotation is object:
            return "any"
        if (
            isinstance(annotation, type)
            and issubclass(annotation, int | float | Decimal)
            and (annotation is not bool)
        ):
            return "number"
        origin = typing.get_origin(annotation) or annotation
        if origin in (set, frozenset, AbstractSet):
            return "set"
        return "other"

    def append(self, values: Iterable[Any]) -> Action:
        return SetAction(self, ListAppend(self, Value(self.encode(list(values), "list"))))

    def prepend(self, values: Iterable[Any]) -> Action:
        return SetAction(self, ListAppend(Value(self.encode(list(values), "list")), self))

    def set_if_not_exists(self, value: T) -> Action:
        return SetAction(self, IfNotExists(self, self._operand(value)))

    def __add__(self, other: Any) -> Operand:
        return Arithmetic(self, "+", self._operand(other))

    def __radd__(self, other: Any) -> Operand:
        return Arithmetic(self._operand(other), "+", self)

    def __sub__(self, other: Any) -> Operand:
        return Arithmetic(self, "-", self._operand(other))

    def __rsub__(self, other: Any) -> Operand:
        return Arithmetic(self._operand(other), "-", self)


def attr(value: T) -> Path[T]:
    """The typed spelling of a class attribute path: ``dm.attr(User.logins).add(1)``."""
    if not isinstance(value, Path):
        raise UsageError(
            f"dm.attr() takes a model attribute path such as User.email, got {type(value).__name__}"
        )
    return value


@dataclass(frozen=True, eq=False)
class Size(Operand):
    path: Path[Any]

    def render(self, r: Renderer) -> str:
        return f"size({self.path.render(r)})"

    def _int(self, value: Any) -> Operand:
        if isinstance(value, Operand):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"size({self.path}) compares with an int")
        return Value({"N": str(value)})

    def __eq__(self, other: object) -> Condition:  # type: ignore[override]
        return Comparison("=", self, self._int(other))

    def __ne__(self, other: object) -> Condition:  # type: ignore[override]
        return Comparison("<>", self, self._int(other))

    def __lt__(self, other: Any) -> Condition:
        return Comparison("<", self, self._int(other))

    def __le__(self, other: Any) -> Condition:
        return Comparison("<=", self, self._int(other))

    def __gt__(self, other: Any) -> Condition:
        return Comparison(">", self, self._int(other))

    def __ge__(self, other: Any) -> Condition:
        return Comparison(">=", self, self._int(other))

    def between(self, low: int, high: int) -> Condition:
        return Between(self, self._int(low), self._int(high))

    __hash__ = object.__hash__


@dataclass(frozen=True, eq=False)
class Arithmetic(Operand):
    left: Operand
    op: Literal["+", "-"]
    right: Operand

    def render(self, r: Renderer) -> str:
        return f"{self.left.render(r)} {self.op} {self.right.render(r)}"


@dataclass(frozen=True, eq=False)
class ListAppend(Operand):
    first: Operand
    second: Operand

    def render(self, r: Renderer) -> str:
        return f"list_append({self.first.render(r)}, {self.second.render(r)})"


@dataclass(frozen=True, eq=False)
class IfNotExists(Operand):
    path: Path[Any]
    default: Operand

    def render(self, r: Renderer) -> str:
        return f"if_not_exists({self.path.render(r)}, {self.default.render(r)})"


# ---------------------------------------------------------------- conditions


class Condition:
    """A condition; combine with ``&``, ``|`` and ``~``."""

    def render(self, r: Renderer) -> str:
        raise NotImplementedError

    def __and__(self, other: ConditionLike) -> Condition:
        return And(self, as_condition(other, "&"))

    def __or__(self, other: ConditionLike) -> Condition:
        return Or(self, as_condition(other, "|"))

    def __invert__(self) -> Condition:
        return Not(self)

    def __bool__(self) -> bool:
        raise UsageError(
            "a condition has no truth value: combine conditions with & | ~, not and/or/not"
        )


ConditionLike = Union[Condition, int]  # noqa: UP007
"""What ``condition=``/``filter=`` take: a Condition. Type checkers see a class attribute
comparison (``User.role == "admin"``) as bool and ``~`` of one as int, so those types are
accepted too; at run time anything but a Condition is refused."""


def as_condition(value: ConditionLike | None, parameter: str) -> Condition:
    if isinstance(value, Condition):
        return value
    raise UsageError(
        f"{parameter} takes a condition such as User.role == 'admin', got {type(value).__name__}; "
        "build it from model attribute paths"
    )


@dataclass(frozen=True, eq=False)
class Comparison(Condition):
    op: str
    left: Operand
    right: Operand

    def render(self, r: Renderer) -> str:
        return f"{self.left.render(r)} {self.op} {self.right.render(r)}"


@dataclass(frozen=True, eq=False)
class Between(Condition):
    operand: Operand
    low: Operand
    high: Operand

    def render(self, r: Renderer) -> str:
        return f"{self.operand.render(r)} BETWEEN {self.low.render(r)} AND {self.high.render(r)}"


@dataclass(frozen=True, eq=False)
class In(Condition):
    operand: Operand
    values: tuple[Operand, ...]

    def render(self, r: Renderer) -> str:
        return f"{self.operand.render(r)} IN ({', '.join(v.render(r) for v in self.values)})"


@dataclass(frozen=True, eq=False)
class Function(Condition):
    name: str
    path: Path[Any]

    def render(self, r: Renderer) -> str:
        return f"{self.name}({self.path.render(r)})"


@dataclass(frozen=True, eq=False)
class BeginsWith(Condition):
    path: Path[Any]
    prefix: Operand

    def render(self, r: Renderer) -> str:
        return f"begins_with({self.path.render(r)}, {self.prefix.render(r)})"


@dataclass(frozen=True, eq=False)
class Contains(Condition):
    path: Path[Any]
    operand: Operand

    def render(self, r: Renderer) -> str:
        return f"contains({self.path.render(r)}, {self.operand.render(r)})"


@dataclass(frozen=True, eq=False)
class IsType(Condition):
    path: Path[Any]
    type_: Operand

    def render(self, r: Renderer) -> str:
        return f"attribute_type({self.path.render(r)}, {self.type_.render(r)})"


@dataclass(frozen=True, eq=False)
class And(Condition):
    left: Condition
    right: Condition

    def render(self, r: Renderer) -> str:
        return f"({self.left.render(r)}) AND ({self.right.render(r)})"


@dataclass(frozen=True, eq=False)
class Or(Condition):
    left: Condition
    right: Condition

    def render(self, r: Renderer) -> str:
        return f"({self.left.render(r)}) OR ({self.right.render(r)})"


@dataclass(frozen=True, eq=False)
class Not(Condition):
    inner: Condition

    def render(self, r: Renderer) -> str:
        return f"NOT ({self.inner.render(r)})"


def paths_of(node: Condition | Operand) -> Iterator[Path[Any]]:
    """Every attribute path a condition or operand refers to."""
    if isinstance(node, Path):
        yield node
        return
    for item in _children(node):
        yield from paths_of(item)


def _children(node: Condition | Operand) -> Iterator[Condition | Operand]:
    for field in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Condition | Operand):
                yield item


def all_of(conditions: Iterable[Condition | None]) -> Condition | None:
    """AND the given conditions together, skipping None."""
    result: Condition | None = None
    for condition in conditions:
        if condition is not None:
            result = condition if result is None else And(result, condition)
    return result


# ---------------------------------------------------------------- update actions


class Action:
    """One update action on one path."""

    clause: Literal["SET", "REMOVE", "ADD", "DELETE"]
    path: Path[Any]

    def render(self, r: Renderer) -> str:
        raise NotImplementedError


@dataclass(frozen=True, eq=False, init=False)
class SetAction(Action):
    path: Path[Any]
    operand: Operand
    clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "SET"

    def __init__(
        self,
        path: Path[Any],
        operand: Operand,
        clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "SET",
    ) -> None:
        fields = self.__dict__
        fields["path"], fields["operand"], fields["clause"] = path, operand, clause

    def render(self, r: Renderer) -> str:
        return f"{self.path.render(r)} = {self.operand.render(r)}"


@dataclass(frozen=True, eq=False, init=False)
class RemoveAction(Action):
    path: Path[Any]
    clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "REMOVE"

    def __init__(
        self, path: Path[Any], clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "REMOVE"
    ) -> None:
        fields = self.__dict__
        fields["path"], fields["clause"] = path, clause

    def render(self, r: Renderer) -> str:
        return self.path.render(r)


@dataclass(frozen=True, eq=False, init=False)
class AddAction(Action):
    path: Path[Any]
    operand: Operand
    clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "ADD"

    def __init__(
        self,
        path: Path[Any],
        operand: Operand,
        clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "ADD",
    ) -> None:
        fields = self.__dict__
        fields["path"], fields["operand"], fields["clause"] = path, operand, clause

    def render(self, r: Renderer) -> str:
        return f"{self.path.render(r)} {self.operand.render(r)}"


@dataclass(frozen=True, eq=False, init=False)
class DeleteAction(Action):
    path: Path[Any]
    operand: Operand
    clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "DELETE"

    def __init__(
        self,
        path: Path[Any],
        operand: Operand,
        clause: Literal["SET", "REMOVE", "ADD", "DELETE"] = "DELETE",
    ) -> None:
        fields = self.__dict__
        fields["path"], fields["operand"], fields["clause"] = path, operand, clause

    def render(self, r: Renderer) -> str:
        return f"{self.path.render(r)} {self.operand.render(r)}"


def render_update(actions: Iterable[Action], r: Renderer) -> str:
    """``SET a = :v0, b = :v1 REMOVE c ADD d :v2``, clauses in DynamoDB's order."""
    clauses: dict[str, list[str]] = {}
    for action in actions:
        parts = clauses.get(action.clause)
        if parts is None:
            parts = clauses[action.clause] = []
        parts.append(action.render(r))
    return " ".join(
        [f"{clause} {', '.join(clauses[clause])}" for clause in _CLAUSES if clause in clauses]
    )


_CLAUSES = ("SET", "REMOVE", "ADD", "DELETE")


# ---------------------------------------------------------------- request limits

MAX_EXPRESSION_BYTES = 4096
MAX_ATTRIBUTE_NAME_BYTES = 65535
_EXPRESSIONS = (
    "KeyConditionExpression",
    "FilterExpression",
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
)


def check_expressions(request: dict[str, Any], where: str) -> None:
    """DynamoDB's limits on a request's expressions, checked before sending: each
    expression at most 4 KB, each attribute name at most 64 KB and valid UTF-8 (some
    servers hang on a longer expression instead of refusing it)."""
    for name in _EXPRESSIONS:
        text = request.get(name)
        if text is not None and len(text) > MAX_EXPRESSION_BYTES // 4:
            size = len(text.encode())
            if size > MAX_EXPRESSION_BYTES:
                raise UsageError(
                    f"{where}: the {name} is {size} bytes and DynamoDB takes at most "
                    f"{MAX_EXPRESSION_BYTES}; split the condition (fewer values in one "
                    "is_in, or several requests)"
                )
    for attribute in request.get("ExpressionAttributeNames", {}).values():
        if len(attribute) > MAX_ATTRIBUTE_NAME_BYTES // 4 or not attribute.isascii():
            try:
                size = len(attribute.encode())
            except UnicodeEncodeError:
                raise UsageError(
                    f"{where}: an attribute name holds a lone surrogate character, which is "
                    "not valid UTF-8"
                ) from None
            if size > MAX_ATTRIBUTE_NAME_BYTES:
                raise UsageError(
                    f"{where}: an attribute name is {size} bytes; DynamoDB takes at most "
                    f"{MAX_ATTRIBUTE_NAME_BYTES}"
                )
