"""Query and Scan: async iteration, all/first/count, and cursor pages."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from . import keys
from .codec import EncodeError, Item, check_number, decode_any
from .errors import InvalidCursor, UsageError
from .expressions import (
    BeginsWith,
    Between,
    Comparison,
    Condition,
    ConditionLike,
    In,
    Path,
    Renderer,
    Value,
    all_of,
    as_condition,
    paths_of,
)
from .schema import IndexSchema, KeyAttribute, TableSchema

if TYPE_CHECKING:
    from .model import Model
    from .session import Session

M = TypeVar("M", bound="Model")

DEFAULT_CURSOR_KEY = b"dynamodm cursor integrity"
_KEY_OPERATORS = frozenset({"=", "<", "<=", ">", ">="})
_SCAN_QUEUE = 1024


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of results: ``items`` and the ``cursor`` of the next page (None at the end)."""

    items: list[M]
    cursor: str | None


class Query(Generic[M]):
    """A Query or Scan, run when iterated or asked for ``all()``, ``first()``, ``count()``,
    ``page()``. Building one sends nothing."""

    def __init__(
        self,
        model: type[M],
        operation: Literal["Query", "Scan"],
        *,
        hash_value: Any = None,
        range_condition: ConditionLike | None = None,
        index: str | None = None,
        filter: ConditionLike | None = None,
        limit: int | None = None,
        reverse: bool = False,
        consistent: bool = False,
        attributes: Sequence[str] | None = None,
        segments: int = 1,
        session: Session | None = None,
        fields: Mapping[str, Any] | None = None,
        entities: Sequence[str] | None = None,
    ) -> None:
        from .session import _schema

        self.model = model
        self.operation = operation
        self._session = session
        schema = _schema(model)
        name = model.__name__
        self.index = _index(schema, index, name)
        self.hash_key, self.range_key = _keys(schema, self.index)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise UsageError(f"{name}: limit must be a positive int")
        if consistent and self.index is not None and self.index.kind == "GSI":
            raise UsageError(
                f"{name}: consistent=True is not possible on the global index "
                f"{self.index.name!r}; DynamoDB reads GSIs eventually consistently"
            )
        if not isinstance(segments, int) or not 1 <= segments <= 1_000_000:
            raise UsageError(f"{name}: segments must be an int from 1 to 1,000,000")
        if operation == "Query" and segments != 1:
            raise UsageError(f"{name}: segments is for scan(), not query()")
        self.limit = limit
        self.reverse = reverse
        self.consistent = consistent
        self.segments = segments
        self.partial = bool(attributes) or (
            self.index is not None and self.index.projection != "ALL"
        )

        renderer = Renderer()
        request: dict[str, Any] = {"TableName": ""}
        if self.index is not None:
            request["IndexName"] = self.index.name
        self.hash_av: dict[str, Any] | None = None
        self._key_fingerprint = ""
        filters: list[Condition | None] = []
        fields = dict(fields or {})
        if operation == "Query":
            self.hash_av = self._hash_value(hash_value, fields)
            expression = (
                f"{renderer.name(self.hash_key.attribute)} = {renderer.value(self.hash_av)}"
            )
            if entities is not None:
                hash_fields = self.hash_key.template.fields if self.hash_key.template else ()
                leftover = sorted(set(fields) - set(hash_fields))
                if leftover or range_condition is not None:
                    raise UsageError(
                        f"a collection query takes the hash key fields only, not "
                        f"{leftover or 'a range condition'}"
                    )
            elif self.range_key is not None and self.range_key.template is not None:
                templated, exact = self._template_range(range_condition, fields)
                if templated is not None:
                    expression += " AND " + templated.render(renderer)
                filters.append(exact)
            elif fields:
                raise UsageError(
                    f"{name}.query(): unexpected field values {sorted(fields)}; this key is "
                    "not computed from fields"
                )
            elif range_condition is not None:
                condition = as_condition(range_condition, "range_condition")
                expression += " AND " + self._range_expression(condition, renderer)
            request["KeyConditionExpression"] = expression
            # A cursor only fits this key condition: another one refuses its start key.
            self._key_fingerprint = _fingerprint([expression, renderer.values])
            if reverse:
                request["ScanIndexForward"] = False
        elif range_condition is not None or hash_value is not None or reverse or fields:
            raise UsageError(f"{name}.scan() takes no key values, range condition or reverse")
        if filter is not None:
            condition = as_condition(filter, "filter")
            if operation == "Query":
                self._check_filter(condition)
            filters.append(condition)
        if entities is not None:
            filters.append(_one_of(self.model, schema.entity_attribute, entities))
        elif schema.entity is not None and self._projects(schema.entity_attribute):
            filters.append(_compare(self.model, "=", schema.entity_attribute, {"S": schema.entity}))
        combined = all_of(filters)
        if combined is not None:
            request["FilterExpression"] = combined.render(renderer)
        if attributes:
            request["ProjectionExpression"] = self._projection(list(attributes), renderer)
        if consistent:
            request["ConsistentRead"] = True
        if renderer.names:
            request["ExpressionAttributeNames"] = renderer.attribute_names()
        if renderer.values:
            request["ExpressionAttributeValues"] = renderer.values
        self.has_filter = combined is not None
        self._request = request

    # -- building

    def _projects(self, attribute: str) -> bool:
        """Whether items read through this query carry ``attribute``."""
        if self.index is None or self.index.projection == "ALL":
            return True
        return attribute in self.index.include or attribute in self._key_attributes()

    def _hash_value(self, hash_value: Any, fields: dict[str, Any]) -> dict[str, Any]:
        name = self.model.__name__
        key = self.hash_key
        if key.template is None:
            if hash_value is None:
                raise UsageError(f"{name}.query() needs the hash key value")
            assert key.field is not None
            return keys.key_value(self.model, key.field, hash_value)
        if hash_value is not None:
            raise UsageError(
                f"{name}.query(): the hash key {key.attribute!r} is computed from "
                f"{', '.join(key.template.fields) or 'constants'}; pass them by name"
            )
        missing = [f for f in key.template.fields if fields.get(f) is None]
        if missing:
            raise UsageError(
                f"{name}.query(): the hash key {key.attribute!r} needs "
                f"{', '.join(repr(m) for m in missing)} (template {key.template.template!r})"
            )
        text = keys.render(self.model, key.template, fields, validate=True)
        assert text is not None
        if (
            self.range_key is None
            or self.range_key.template is None
            or not (set(key.template.fields) & set(self.range_key.template.fields))
        ):
            for used in key.template.fields:
                fields.pop(used, None)
        return {"S": text}

    def _template_range(
        self, range_condition: ConditionLike | None, fields: dict[str, Any]
    ) -> tuple[Condition | None, Condition | None]:
        """The key condition on a computed range key, and an exact filter on the field the
        range condition names (the key condition alone may be a superset)."""
        model, name = self.model, self.model.__name__
        assert self.range_key is not None and self.range_key.template is not None
        template, attribute = self.range_key.template, self.range_key.attribute
        hash_fields = self.hash_key.template.fields if self.hash_key.template else ()
        unknown_fields = set(fields) - set(template.fields) - set(hash_fields)
        if unknown_fields:
            raise UsageError(
                f"{name}.query(): {sorted(unknown_fields)[0]!r} is not part of the key; "
                "use filter= for other fields"
            )
        prefix = ""
        open_field: str | None = None
        separator = ""
        parts = template.parts
        for position, (literal, placeholder) in enumerate(parts):
            prefix += literal
            if placeholder is None:
                continue
            value = fields.get(placeholder)
            if value is None:
                open_field = placeholder
                separator = parts[position + 1][0] if position + 1 < len(parts) else ""
                break
            prefix += keys.field_text(model, placeholder, value)
        if range_condition is None:
            if open_field is None:
                return _compare(self.model, "=", attribute, {"S": prefix}), None
            return (_begins(model, attribute, prefix) if prefix else None), None
        condition = as_condition(range_condition, "range_condition")
        subject, op, values = _range_parts(condition)
        if open_field is None or subject is None or subject.nested or (subject.root != open_field):
            raise UsageError(
                f"{name}.query(): the range condition must be on {open_field!r}, the next "
                f"field of the range key template {template.template!r}"
                if open_field
                else f"{name}.query(): every field of the range key is given already"
            )
        top = "\U0010ffff"
        if op == "begins_with":
            return _begins(model, attribute, prefix + str(values[0])), None
        texts = [keys.field_text(model, open_field, v) for v in values]
        key_condition: Condition
        if op == "=":
            key_condition = _begins(model, attribute, prefix + texts[0] + separator)
        elif op in ("<", "<="):
            high = prefix + texts[0] + separator + top
            key_condition = (
                _between(model, attribute, prefix, high)
                if prefix
                else _compare(self.model, "<=", attribute, {"S": high})
            )
        elif op in (">", ">="):
            low = prefix + texts[0]
            key_condition = (
                _between(model, attribute, low, prefix + top)
                if prefix
                else _compare(self.model, ">=", attribute, {"S": low})
            )
        else:
            key_condition = _between(
                model, attribute, prefix + texts[0], prefix + texts[1] + separator + top
            )
        field_attribute = self.model.__dm_codec__.by_name[open_field].attribute
        return key_condition, (condition if self._projects(field_attribute) else None)

    def _range_expression(self, condition: Condition, renderer: Renderer) -> str:
        name = self.model.__name__
        where = f"index {self.index.name!r}" if self.index else "the table"
        if self.range_key is None:
            raise UsageError(
                f"{name}.query(): {where} has no range key, so it takes no range condition"
            )
        if isinstance(condition, Comparison) and condition.op in _KEY_OPERATORS:
            subject = condition.left
        elif isinstance(condition, Between | BeginsWith):
            subject = condition.operand if isinstance(condition, Between) else condition.path
        else:
            raise UsageError(
                f"{name}.query(): a range condition is one of == < <= > >= between "
                "begins_with on the range key; use filter= for anything else"
            )
        if (
            not isinstance(subject, Path)
            or subject.nested
            or (subject.root != self.range_key.field)
        ):
            raise UsageError(
                f"{name}.query(): the range condition must be on {self.range_key.field!r}, "
                f"the range key of {where}, not on {subject}"
            )
        for path in paths_of(condition):
            if path is not subject:
                raise UsageError(f"{name}.query(): the range condition compares with values only")
        if isinstance(condition, BeginsWith) and self.range_key.type == "N":
            raise UsageError(
                f"{name}.query(): begins_with needs a string or binary range key; "
                f"{self.range_key.field!r} is stored as a number, so compare it instead"
            )
        return condition.render(renderer)

    def _check_filter(self, condition: Condition) -> None:
        keys = {self.hash_key.field}
        if self.range_key is not None:
            keys.add(self.range_key.field)
        for path in paths_of(condition):
            if path.root in keys:
                raise UsageError(
                    f"{self.model.__name__}.query(): the filter uses the key attribute "
                    f"{path.root!r}, which DynamoDB refuses; put it in the range condition"
                )

    def _projection(self, attributes: list[str], renderer: Renderer) -> str:
        codec = self.model.__dm_codec__
        names: list[str] = []
        for field in attributes:
            spec = codec.by_name.get(field)
            if spec is None:
                raise UsageError(
                    f"{self.model.__name__}: attributes= names unknown field {field!r}"
                )
            if spec.attribute not in names:
                names.append(spec.attribute)
        # Keys address the item; the version keeps update() and delete() of it conditional.
        version = self.model.__dm_schema__.version
        carried = [codec.by_name[version].attribute] if version else []
        for attribute in [*self._key_attributes(), *carried]:
            if attribute not in names:
                names.append(attribute)
        return ", ".join(renderer.name(n) for n in names)

    def _key_attributes(self) -> list[str]:
        schema: TableSchema = self.model.__dm_schema__
        names = [schema.hash_key.attribute]
        if schema.range_key:
            names.append(schema.range_key.attribute)
        if self.index is not None:
            for key in (self.index.hash_key, self.index.range_key):
                if key is not None and key.attribute not in names:
                    names.append(key.attribute)
        return names

    # -- running

    def session(self) -> Session:
        from .session import current_session

        return current_session(self._session)

    def _base(self, session: Session) -> dict[str, Any]:
        request = dict(self._request)
        request["TableName"] = session.table_name(self.model)
        return request

    async def _pages(
        self, session: Session, request: dict[str, Any], want: int | None
    ) -> AsyncIterator[tuple[list[Item], Item | None]]:
        """Raw pages: (items, LastEvaluatedKey), asking no more than ``want`` if given."""
        table = request["TableName"]
        while True:
            if want is not None and not self.has_filter:
                request["Limit"] = want
            response = await session.call(self.operation, request, idempotent=True, table=table)
            items = response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            yield items, last
            if not last:
                return
            request["ExclusiveStartKey"] = last
            if want is not None:
                want -= len(items)
                if want <= 0 and not self.has_filter:
                    return

    def _load(self, session: Session, item: Item) -> M:
        return session.load(self.model, item, partial=self.partial)

    async def __aiter__(self) -> AsyncIterator[M]:
        session = self.session()
        async for item in self._items(session):
            yield self._load(session, item)

    def raw(self) -> AsyncIterator[Item]:
        """The matching items as DynamoDB returns them (AttributeValues, every attribute),
        without building models: for exports and tools."""
        return self._items(self.session())

    async def _items(self, session: Session) -> AsyncIterator[Item]:
        if self.segments > 1:
            async for item in self._parallel_scan(session):
                yield item
            return
        remaining = self.limit
        async for page, _last in self._pages(session, self._base(session), remaining):
            for raw in page:
                yield raw
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        return

    async def _parallel_scan(self, session: Session) -> AsyncIterator[Item]:
        queue: asyncio.Queue[list[Item] | BaseException | None] = asyncio.Queue(_SCAN_QUEUE)

        async def segment(number: int) -> None:
            request = self._base(session)
            request["Segment"] = number
            request["TotalSegments"] = self.segments
            try:
                async for items, _last in self._pages(session, request, None):
                    if items:
                        await queue.put(items)
            except BaseException as error:  # handed to the consumer, which re-raises
                await queue.put(error)
                raise
            finally:
                await queue.put(None)

        tasks = [asyncio.create_task(segment(n)) for n in range(self.segments)]
        remaining, running = self.limit, len(tasks)
        try:
            while running:
                got = await queue.get()
                if got is None:
                    running -= 1
                    continue
                if isinstance(got, BaseException):
                    raise got
                for item in got:
                    yield item
                    if remaining is not None:
                        remaining -= 1
                        if remaining == 0:
                            return
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def all(self) -> list[M]:
        """Every matching item (up to ``limit``), following pages."""
        return [item async for item in self]

    async def first(self) -> M | None:
        """The first matching item, reading pages until one matches; None if none does."""
        session = self.session()
        async for items, _last in self._pages(session, self._base(session), 1):
            if items:
                return self._load(session, items[0])
        return None

    async def count(self) -> int:
        """How many items match (Select=COUNT, following every page; capped by ``limit``)."""
        session = self.session()
        request = self._base(session)
        request["Select"] = "COUNT"
        request.pop("ProjectionExpression", None)
        _drop_unused_names(request)
        total = 0
        async for _items, _last in self._count_pages(session, request):
            total += _items
            if self.limit is not None and total >= self.limit:
                return self.limit
        return total

    async def _count_pages(
        self, session: Session, request: dict[str, Any]
    ) -> AsyncIterator[tuple[int, Item | None]]:
        table = request["TableName"]
        while True:
            response = await session.call(self.operation, request, idempotent=True, table=table)
            last = response.get("LastEvaluatedKey")
            yield int(response.get("Count", 0)), last
            if not last:
                return
            request["ExclusiveStartKey"] = last

    async def page(self, cursor: str | None = None, size: int = 50) -> Page[M]:
        """Up to ``size`` items (and no more than ``limit``) after ``cursor``;
        ``Page.cursor`` is None on the last page."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UsageError(f"{self.model.__name__}: page size must be a positive int")
        if self.segments > 1:
            raise UsageError(f"{self.model.__name__}: page() works on single-segment scans")
        if self.limit is not None:
            size = min(size, self.limit)
        session = self.session()
        request = self._base(session)
        if cursor is not None:
            request["ExclusiveStartKey"] = self._decode_cursor(cursor, session.cursor_key)
        results: list[M] = []
        last_item: Item | None = None
        async for items, last in self._pages(session, request, size):
            for position, item in enumerate(items):
                results.append(self._load(session, item))
                last_item = item
                if len(results) == size:
                    more = position < len(items) - 1 or last is not None
                    return Page(
                        results, self._encode_cursor(item, session.cursor_key) if more else None
                    )
            if last is None:
                return Page(results, None)
            if len(results) == size:
                break
        return Page(
            results, self._encode_cursor(last_item, session.cursor_key) if last_item else None
        )

    # -- cursors

    def _identity(self) -> dict[str, Any]:
        return {
            "m": self.model.__name__,
            "t": self.model.__dm_schema__.table,
            "i": self.index.name if self.index else "",
            "h": self._key_fingerprint,
            "o": self.operation,
        }

    def _encode_cursor(self, item: Item, secret: bytes) -> str:
        key = {name: _jsonable(item[name]) for name in self._key_attributes() if name in item}
        payload = json.dumps(
            {**self._identity(), "k": key}, separators=(",", ":"), sort_keys=True
        ).encode()
        return _b64(payload) + "." + _b64(_sign(payload, secret))

    def _decode_cursor(self, cursor: str, secret: bytes) -> Item:
        name = self.model.__name__
        if not isinstance(cursor, str) or cursor.count(".") != 1:
            raise InvalidCursor(f"{name}: the cursor is not one this query produced")
        body, signature = cursor.split(".")
        try:
            payload = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), _sign(payload, secret))
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise InvalidCursor(f"{name}: the cursor was altered or truncated")
        # Signed with the default key (public), a cursor can be forged: read it as untrusted.
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise InvalidCursor(f"{name}: the cursor is not one this query produced")
        expected = self._identity()
        if any(data.get(k) != v for k, v in expected.items()):
            raise InvalidCursor(
                f"{name}: the cursor belongs to another query (model, index, hash value or "
                "range condition)"
            )
        key = data.get("k")
        if not isinstance(key, dict) or set(key) != set(self._key_attributes()):
            raise InvalidCursor(f"{name}: the cursor does not hold this query's key")
        try:
            start = {k: _from_jsonable(v) for k, v in key.items()}
        except ValueError:  # base64 of bytes that does not decode
            start = {}
        schema: TableSchema = self.model.__dm_schema__
        declared = [schema.hash_key, schema.range_key]
        if self.index is not None:
            declared += [self.index.hash_key, self.index.range_key]
        types = {k.attribute: k.type for k in declared if k is not None}
        if not start or not all(_fits(start[a], types.get(a)) for a in start):
            raise InvalidCursor(f"{name}: the cursor does not hold this query's key")
        if self.hash_av is not None and start[self.hash_key.attribute] != self.hash_av:
            raise InvalidCursor(f"{name}: the cursor starts in another partition")
        return start


def _compare(model: type[Model], op: str, attribute: str, av: dict[str, Any]) -> Condition:
    """``#attribute op :value`` on an attribute by wire name (computed keys, entity)."""
    return Comparison(op, keys.attribute_path(model, attribute), Value(av))


def _begins(model: type[Model], attribute: str, prefix: str) -> Condition:
    return BeginsWith(keys.attribute_path(model, attribute), Value({"S": prefix}))


def _between(model: type[Model], attribute: str, low: str, high: str) -> Condition:
    path = keys.attribute_path(model, attribute)
    return Between(path, Value({"S": low}), Value({"S": high}))


def _one_of(model: type[Model], attribute: str, values: Sequence[str]) -> Condition:
    return In(keys.attribute_path(model, attribute), tuple(Value({"S": v}) for v in values))


def _range_parts(condition: Condition) -> tuple[Path[Any] | None, str, list[Any]]:
    """(path, operator, plain values) of a range condition on one field."""
    if (
        isinstance(condition, Comparison)
        and condition.op in _KEY_OPERATORS
        and isinstance(condition.left, Path)
        and isinstance(condition.right, Value)
    ):
        return condition.left, condition.op, [decode_any(condition.right.av)]
    if (
        isinstance(condition, Between)
        and isinstance(condition.operand, Path)
        and isinstance(condition.low, Value)
        and isinstance(condition.high, Value)
    ):
        low, high = decode_any(condition.low.av), decode_any(condition.high.av)
        return condition.operand, "between", [low, high]
    if isinstance(condition, BeginsWith) and isinstance(condition.prefix, Value):
        return condition.path, "begins_with", [condition.prefix.av.get("S", "")]
    return None, "", []


def _index(schema: TableSchema, index: str | None, name: str) -> IndexSchema | None:
    if index is None:
        return None
    found = schema.indexes.get(index)
    if found is None:
        known = ", ".join(schema.indexes) or "none declared"
        raise UsageError(f"{name}: unknown index {index!r} (indexes: {known})")
    return found


def _keys(
    schema: TableSchema, index: IndexSchema | None
) -> tuple[KeyAttribute, KeyAttribute | None]:
    if index is None:
        return schema.hash_key, schema.range_key
    return index.hash_key, index.range_key


def _drop_unused_names(request: dict[str, Any]) -> None:
    """COUNT requests drop the projection; DynamoDB refuses unused placeholders."""
    names = request.get("ExpressionAttributeNames")
    if not names:
        return
    text = " ".join(str(request.get(k, "")) for k in ("KeyConditionExpression", "FilterExpression"))
    used = {p: n for p, n in names.items() if _uses(text, p)}
    if used:
        request["ExpressionAttributeNames"] = used
    else:
        del request["ExpressionAttributeNames"]


def _uses(text: str, placeholder: str) -> bool:
    start = 0
    while True:
        at = text.find(placeholder, start)
        if at < 0:
            return False
        end = at + len(placeholder)
        if end == len(text) or not text[end].isdigit():
            return True
        start = end


def _fingerprint(value: Any) -> str:
    data = json.dumps(_jsonable(value), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def _sign(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jsonable(av: Any) -> Any:
    if isinstance(av, bytes):
        return {"$b": base64.b64encode(av).decode()}
    if isinstance(av, dict):
        return {k: _jsonable(v) for k, v in av.items()}
    if isinstance(av, list):
        return [_jsonable(v) for v in av]
    return av


def _fits(value: Any, kind: str | None) -> bool:
    """Whether a start key value read from a cursor is one non-empty scalar of its type."""
    if not isinstance(value, dict) or len(value) != 1 or kind not in value:
        return False
    raw = value[kind]
    if kind == "B":
        return isinstance(raw, bytes) and bool(raw)
    if not isinstance(raw, str) or not raw:
        return False
    if kind == "N":
        try:
            check_number(raw)
        except EncodeError:
            return False
    return True


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$b"}:
            return base64.b64decode(value["$b"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value
