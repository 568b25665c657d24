"""Query and Scan: async iteration, all/first/count, and cursor pages."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from . import cursor, keys
from .codec import Item, Mismatch, decode_any
from .connection import Connection, current_connection
from .errors import InvalidCursor, ItemInvalid, UsageError
from .expressions import (
    And,
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
    check_expressions,
    paths_of,
)
from .instances import family_entities, fast_loader, load_checked, raw_loader
from .ratelimit import RateLimit
from .schema import IndexSchema, KeyAttribute, TableSchema, schema_of

if TYPE_CHECKING:
    from .model import Model

M = TypeVar("M", bound=BaseModel)  # a model, or the view of a projected query
V = TypeVar("V", bound=BaseModel)

logger = logging.getLogger("dynamodm")
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
        session: Connection | None = None,
        fields: Mapping[str, Any] | None = None,
        entities: Sequence[str] | None = None,
        on_invalid: Literal["raise", "skip"] = "raise",
        include_expired: bool = False,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.model: type[Model] = model  # type: ignore[assignment]
        self.operation = operation
        self._session = session
        schema = schema_of(self.model)
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
        if on_invalid not in ("raise", "skip"):
            raise UsageError(f"{name}: on_invalid is 'raise' or 'skip', not {on_invalid!r}")
        self.on_invalid = on_invalid
        self.rate_limit = rate_limit
        self._view: type[Any] | None = None
        self.skipped = 0
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
        self._range_condition: Condition | None = None
        # What a cursor's key condition digest is made of, digested when a cursor is made
        # or read (most queries never make one).
        self._key_condition: list[Any] | None = None
        filters: list[Condition | None] = []
        fields = dict(fields or {})
        # A multi-attribute index key: the value of each hash attribute, and a condition on
        # each range attribute of the leading run (wire name -> condition), for cursors.
        self._hash_avs: dict[str, dict[str, Any]] = {}
        self._range_conditions: dict[str, Condition] = {}
        if operation == "Query" and self.index is not None and self.index.multi_attribute:
            expression = self._multi_key(hash_value, range_condition, fields, entities, renderer)
            request["KeyConditionExpression"] = expression
            self._key_condition = [expression, dict(renderer.values)]
            if reverse:
                request["ScanIndexForward"] = False
        elif operation == "Query":
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
                    self._range_condition = templated
                filters.append(exact)
            elif fields:
                raise UsageError(
                    f"{name}.query(): unexpected field values {sorted(fields)}; this key is "
                    "not computed from fields"
                )
            elif range_condition is not None:
                condition = as_condition(range_condition, "range_condition")
                expression += " AND " + self._range_expression(condition, renderer)
                self._range_condition = condition
            request["KeyConditionExpression"] = expression
            # A cursor only fits this key condition: another one refuses its start key.
            self._key_condition = [expression, dict(renderer.values)]
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
            family = family_entities(self.model)
            if family is not None:  # a polymorphic model: it and its subclasses
                filters.append(_one_of(self.model, schema.entity_attribute, family))
            else:
                filters.append(
                    _compare(self.model, "=", schema.entity_attribute, {"S": schema.entity})
                )
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
        # Items past their TTL that DynamoDB has not deleted yet are filtered out on each
        # request (the time is taken when it is sent).
        self._expiry = None if include_expired else schema.ttl_attribute
        self.has_filter = combined is not None or self._expiry is not None
        check_expressions(request, f"{name}.{operation.lower()}()")
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
            text = values[0]
            if text is None:
                # A template key is text: a bytes (or other) prefix would have become ""
                # and matched every item of the partition.
                raise UsageError(
                    f"{name}.query(): begins_with on {open_field!r}, part of the range key "
                    f"template {template.template!r}, needs a string prefix"
                )
            return _begins(model, attribute, prefix + text), None
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
        if isinstance(condition, BeginsWith):
            if self.range_key.type == "N":
                raise UsageError(
                    f"{name}.query(): begins_with needs a string or binary range key; "
                    f"{self.range_key.field!r} is stored as a number, so compare it instead"
                )
            _check_prefix_kind(condition, self.range_key, f"{name}.query()")
        return condition.render(renderer)

    def _multi_key(
        self,
        hash_value: Any,
        range_condition: ConditionLike | None,
        fields: dict[str, Any],
        entities: Sequence[str] | None,
        renderer: Renderer,
    ) -> str:
        """The key condition on a multi-attribute index key: equality on every hash
        attribute, then equality on a leading run of the range attributes and any key
        condition on the one after it. Everything else is refused before sending."""
        assert self.index is not None
        model, index = self.model, self.index
        where = f"{model.__name__}.query() on index {index.name!r}"
        hash_names = ", ".join(_key_name(k) for k in index.hash_keys)
        range_names = ", ".join(_key_name(k) for k in index.range_keys)
        used: set[str] = set()
        if hash_value is not None:
            if not isinstance(hash_value, tuple):
                hash_value = (hash_value,)
            if len(hash_value) != len(index.hash_keys):
                raise UsageError(
                    f"{where}: the hash key has {len(index.hash_keys)} attribute(s) "
                    f"({hash_names}), got {len(hash_value)} value(s); pass a tuple of one "
                    "value for each, in that order, or each by keyword"
                )
            computed = [k for k in index.hash_keys if k.template is not None]
            if computed:
                raise UsageError(
                    f"{where}: the hash attribute {computed[0].attribute!r} is computed "
                    f"from {', '.join(computed[0].template.fields) or 'constants'}; pass the "  # type: ignore[union-attr]
                    "hash values by keyword"
                )
            clash = [k.field for k in index.hash_keys if k.field in fields]
            if clash:
                raise UsageError(
                    f"{where}: {clash[0]!r} is given both in the hash tuple and by keyword; "
                    "give each hash attribute once"
                )
            given = {k.field or "": v for k, v in zip(index.hash_keys, hash_value, strict=True)}
            fields = {**fields, **given}
        parts: list[str] = []
        for key in index.hash_keys:
            av = self._key_value(key, fields, used, where, f"the hash key ({hash_names})")
            self._hash_avs[key.attribute] = av
            parts.append(f"{renderer.name(key.attribute)} = {renderer.value(av)}")
        if entities is not None:
            leftover = sorted(set(fields) - used)
            if leftover or range_condition is not None:
                raise UsageError(
                    f"a collection query takes the hash key fields only, not "
                    f"{leftover or 'a range condition'}"
                )
            return " AND ".join(parts)

        position = {k.attribute: n for n, k in enumerate(index.range_keys)}
        by_field = {k.field: k for k in index.range_keys if k.field is not None}
        hash_fields = {k.field for k in index.hash_keys}
        conditions: dict[str, Condition] = {}

        def add(key: KeyAttribute, condition: Condition) -> None:
            if key.attribute in conditions:
                raise UsageError(
                    f"{where}: two conditions on the range attribute {_key_name(key)!r}; give "
                    "one condition for each (combine a range with between)"
                )
            conditions[key.attribute] = condition

        if range_condition is not None:
            for leaf in _leaves(as_condition(range_condition, "range_condition")):
                subject = _key_subject(leaf)
                if subject is None:
                    raise UsageError(
                        f"{where}: a range condition is == < <= > >= between or begins_with "
                        "on range attributes, joined with &; use filter= for anything else"
                    )
                if subject.nested or subject.root not in by_field:
                    hint = (
                        "it is a hash attribute: give its value as a hash value"
                        if subject.root in hash_fields
                        else "use filter= for other fields"
                    )
                    raise UsageError(
                        f"{where}: the range condition must be on the range attributes "
                        f"({range_names}), not on {subject}; {hint}"
                    )
                if any(path is not subject for path in paths_of(leaf)):
                    raise UsageError(f"{where}: the range condition compares with values only")
                add(by_field[subject.root], leaf)
        hash_used = set(used)
        for key in index.range_keys:  # keywords: equality on range attributes
            names = key.template.fields if key.template else (key.field,)
            if any(f in fields and f not in hash_used for f in names):
                av = self._key_value(key, fields, used, where, f"the range key ({range_names})")
                add(key, _compare(model, "=", key.attribute, av))
        leftover = sorted(set(fields) - used)
        if leftover:
            raise UsageError(
                f"{where}: {leftover[0]!r} is not an attribute of the index key "
                f"(hash: {hash_names}; range: {range_names}); use filter= for other fields"
            )
        ordered = sorted(conditions.items(), key=lambda entry: position[entry[0]])
        for number, (attribute, condition) in enumerate(ordered):
            key = index.range_keys[position[attribute]]
            if position[attribute] != number:
                missing = _key_name(index.range_keys[number])
                raise UsageError(
                    f"{where}: the condition on {_key_name(key)!r} needs an equality on "
                    f"{missing!r} first; range attributes are matched left to right "
                    f"({range_names})"
                )
            last = number == len(ordered) - 1
            if not last and not (isinstance(condition, Comparison) and condition.op == "="):
                following = _key_name(index.range_keys[number + 1])
                raise UsageError(
                    f"{where}: only the last range attribute of the query may take < <= > "
                    f">= between or begins_with; {_key_name(key)!r} is followed by "
                    f"{following!r}: make it an equality, or drop the condition on "
                    f"{following!r}"
                )
            _check_key_operands(condition, key, where)
            self._range_conditions[attribute] = condition
            parts.append(condition.render(renderer))
        return " AND ".join(parts)

    def _key_value(
        self, key: KeyAttribute, fields: dict[str, Any], used: set[str], where: str, role: str
    ) -> dict[str, Any]:
        """The value of one attribute of a multi-attribute key, from field values."""
        model = self.model
        hash_key = key.attribute not in {k.attribute for k in self.index.range_keys}  # type: ignore[union-attr]
        if key.template is None:
            assert key.field is not None
            if fields.get(key.field) is None:
                raise UsageError(
                    f"{where}: {role} needs a value for {key.field!r}; pass it ({key.field}=...)"
                )
            used.add(key.field)
            return keys.key_value(model, key.field, fields[key.field], hash_key=hash_key)
        missing = [f for f in key.template.fields if fields.get(f) is None]
        if missing:
            raise UsageError(
                f"{where}: the key attribute {key.attribute!r} needs "
                f"{', '.join(repr(m) for m in missing)} (template {key.template.template!r})"
            )
        text = keys.render(model, key.template, fields, validate=True)
        assert text is not None
        used.update(key.template.fields)
        av = {"S": text}
        keys.check_key_size(model, key.attribute, av, hash_key=hash_key)
        return av

    def _check_filter(self, condition: Condition) -> None:
        keys = {self.hash_key.field}
        if self.range_key is not None:
            keys.add(self.range_key.field)
        if self.index is not None:
            keys.update(k.field for k in self.index.keys)
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
            for key in self.index.keys:
                if key.attribute not in names:
                    names.append(key.attribute)
        return names

    def project(self, view: type[V]) -> Query[V]:
        """This query returning ``view`` instances: a Pydantic model whose field names are
        fields of the model. Only those attributes are read (a ProjectionExpression)."""
        if not (isinstance(view, type) and issubclass(view, BaseModel)):
            raise UsageError(f"{self.model.__name__}.project() takes a Pydantic model class")
        unknown = [name for name in view.model_fields if name not in self.model.model_fields]
        if unknown:
            raise UsageError(
                f"{self.model.__name__}.project({view.__name__}): {unknown[0]!r} is not a "
                f"field of {self.model.__name__}"
            )
        clone: Query[Any] = copy.copy(self)
        request = dict(self._request)
        renderer = Renderer()
        names = request.get("ExpressionAttributeNames", {})
        renderer.names = {attribute: placeholder for placeholder, attribute in names.items()}
        request["ProjectionExpression"] = self._projection(list(view.model_fields), renderer)
        request["ExpressionAttributeNames"] = renderer.attribute_names()
        clone._request = request
        clone.partial = True
        clone._view = view
        return clone

    # -- running

    def session(self) -> Connection:
        return current_connection(self._session)

    def _base(self, session: Connection) -> dict[str, Any]:
        request = dict(self._request)
        request["TableName"] = session.names.of(self.model)
        if self._expiry is not None:
            alive = "(attribute_not_exists(#dm_ttl) OR #dm_ttl > :dm_now)"
            existing = request.get("FilterExpression")
            request["FilterExpression"] = f"({existing}) AND {alive}" if existing else alive
            request["ExpressionAttributeNames"] = {
                **request.get("ExpressionAttributeNames", {}),
                "#dm_ttl": self._expiry,
            }
            request["ExpressionAttributeValues"] = {
                **request.get("ExpressionAttributeValues", {}),
                ":dm_now": {"N": str(int(time.time()))},
            }
        return request

    async def _pages(
        self,
        session: Connection,
        request: dict[str, Any],
        want: int | None,
        raw_binary: bool = False,
    ) -> AsyncGenerator[tuple[list[Item], Item | None], None]:
        """Raw pages: (items, LastEvaluatedKey), asking no more than ``want`` if given;
        ``raw_binary``: the items' binary values may be base64 text (``raw_loader``)."""
        table = request["TableName"]
        while True:
            if want is not None and not self.has_filter:
                request["Limit"] = want
            response = await session.call(
                self.operation,
                request,
                idempotent=True,
                table=table,
                rate_limit=self.rate_limit,
                raw_binary=raw_binary,
            )
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

    def _whole_item_loader(self) -> tuple[Callable[[Item], Any] | None, bool]:
        """What ``_load`` does for an item, in one call, when that is all it does: the
        model's one-call loader for whole items read without a view, and whether it takes
        items whose binary values are still base64 text (``raw_loader``: the pages are then
        not searched for binary values). None otherwise, and for a query that loads its own
        way (a collection's loads each item by the model its entity names)."""
        if self.partial or self._view is not None or type(self)._load is not Query._load:
            return None, False
        raw = raw_loader(self.model)
        if raw is not None:
            return raw, True
        return fast_loader(self.model), False

    def _load(self, session: Connection, item: Item) -> M | None:
        """The instance of a stored item; None when it does not fit the model and
        ``on_invalid="skip"``, else ``ItemInvalid`` whose cursor resumes after it."""
        try:
            instance: Any = load_checked(self.model, item, partial=self.partial)
            if self._view is None:
                loaded: M = instance
                return loaded
            values = instance.__dict__
            fields = self._view.model_fields
            view: M = self._view.model_validate({n: values[n] for n in fields if n in values})
            return view
        except ItemInvalid as error:
            if self.on_invalid == "skip":
                self.skipped += 1
                # The key's values go on the record (``dynamodm_key``), not in its text.
                logger.warning(
                    "%s.%s(): skipped an item that does not fit the model (fields %s); its "
                    "key (%s) is on the record as dynamodm_key",
                    self.model.__name__,
                    self.operation.lower(),
                    ", ".join(error.fields),
                    ", ".join(sorted(error.key or ())),
                    extra={"dynamodm_key": error.key},
                )
                return None
            if self.segments == 1:
                error.cursor = self._encode_cursor(item, session.cursor_key)
            raise

    async def __aiter__(self) -> AsyncGenerator[M, None]:
        session = self.session()
        # Page by page: one generator step per page, not per item. Every generator an
        # iteration opens is closed by it when it stops early (a limit, first(), a
        # break): left open, each would wait for the event loop to close it in a task
        # of its own, keeping its last page alive until then.
        # Whole items of a plain model load in one call; the others (and an item the
        # one-call loader leaves to validation) go through _load.
        fast, raw_binary = self._whole_item_loader()
        async with contextlib.aclosing(self._item_pages(session, raw_binary)) as pages:
            async for page in pages:
                for item in page:
                    if fast is not None:
                        try:
                            instance = fast(item)
                        except Mismatch:
                            instance = self._load(session, item)
                    else:
                        instance = self._load(session, item)
                    if instance is not None:
                        yield instance

    def raw(self) -> AsyncGenerator[Item, None]:
        """The matching items as DynamoDB returns them (AttributeValues, every attribute),
        without building models: for exports and tools."""
        return self._items(self.session())

    async def _items(self, session: Connection) -> AsyncGenerator[Item, None]:
        async with contextlib.aclosing(self._item_pages(session)) as pages:
            async for page in pages:
                for item in page:
                    yield item

    async def _item_pages(
        self, session: Connection, raw_binary: bool = False
    ) -> AsyncGenerator[list[Item], None]:
        """The matching items, a page at a time, cut at ``limit`` (``raw_binary``: as
        ``_pages``)."""
        if self.segments > 1:
            async with contextlib.aclosing(self._parallel_scan(session, raw_binary)) as scanned:
                async for page in scanned:
                    yield page
            return
        remaining = self.limit
        pages = self._pages(session, self._base(session), remaining, raw_binary)
        async with contextlib.aclosing(pages):
            async for page, _last in pages:
                if remaining is not None:
                    page = page[:remaining]
                    remaining -= len(page)
                if page:
                    yield page
                if remaining == 0:
                    return

    async def _parallel_scan(
        self, session: Connection, raw_binary: bool
    ) -> AsyncGenerator[list[Item], None]:
        # Pages read ahead: two a segment (each up to 1 MB), so memory stays bounded by
        # the segments, not the table, when the consumer is slower than the scan.
        queue: asyncio.Queue[list[Item] | BaseException | None] = asyncio.Queue(
            min(_SCAN_QUEUE, 2 * self.segments)
        )

        async def segment(number: int) -> None:
            request = self._base(session)
            request["Segment"] = number
            request["TotalSegments"] = self.segments
            try:
                pages = self._pages(session, request, None, raw_binary)
                async with contextlib.aclosing(pages):
                    async for items, _last in pages:
                        if items:
                            await queue.put(items)
            except asyncio.CancelledError:
                # The consumer stopped (a limit, a break, an error of another segment):
                # nobody reads the queue any more, so nothing more is put on it.
                raise
            except BaseException as error:  # handed to the consumer, which re-raises
                await queue.put(error)
                raise
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
                if remaining is not None:
                    got = got[:remaining]
                    remaining -= len(got)
                yield got
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
        found: list[M] = []
        try:
            async for item in self:
                found.append(item)
        except ItemInvalid as error:
            error.items = found
            raise
        return found

    async def first(self) -> M | None:
        """The first matching item, reading pages until one matches; None if none does."""
        if self.on_invalid == "skip":
            async with contextlib.aclosing(self.__aiter__()) as instances:
                async for instance in instances:
                    return instance
            return None
        session = self.session()
        async with contextlib.aclosing(self._pages(session, self._base(session), 1)) as pages:
            async for items, _last in pages:
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
        async with contextlib.aclosing(self._count_pages(session, request)) as pages:
            async for _items, _last in pages:
                total += _items
                if self.limit is not None and total >= self.limit:
                    return self.limit
        return total

    async def _count_pages(
        self, session: Connection, request: dict[str, Any]
    ) -> AsyncGenerator[tuple[int, Item | None], None]:
        table = request["TableName"]
        while True:
            response = await session.call(
                self.operation, request, idempotent=True, table=table, rate_limit=self.rate_limit
            )
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
        async with contextlib.aclosing(self._pages(session, request, size)) as pages:
            async for items, last in pages:
                for position, item in enumerate(items):
                    try:
                        instance = self._load(session, item)
                    except ItemInvalid as error:
                        error.items = results
                        raise
                    last_item = item
                    if instance is None:
                        continue
                    results.append(instance)
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
            "h": "" if self._key_condition is None else cursor.fingerprint(self._key_condition),
            "o": self.operation,
        }

    def _encode_cursor(self, item: Item, secret: bytes) -> str:
        key = {name: item[name] for name in self._key_attributes() if name in item}
        return cursor.encode(self._identity(), key, secret)

    def _decode_cursor(self, text: str, secret: bytes) -> Item:
        schema: TableSchema = self.model.__dm_schema__
        declared = [schema.hash_key, schema.range_key]
        if self.index is not None:
            declared += self.index.keys
        types = {k.attribute: k.type for k in declared if k is not None}
        start = cursor.decode(
            text,
            identity=self._identity(),
            key_types={a: types.get(a) for a in self._key_attributes()},
            secret=secret,
            model=self.model.__name__,
        )
        if self.hash_av is not None and start[self.hash_key.attribute] != self.hash_av:
            raise InvalidCursor(f"{self.model.__name__}: the cursor starts in another partition")
        if any(start[a] != av for a, av in self._hash_avs.items()):
            raise InvalidCursor(f"{self.model.__name__}: the cursor starts in another partition")
        if not all(_key_condition_holds(c, start[a]) for a, c in self._range_conditions.items()):
            raise InvalidCursor(
                f"{self.model.__name__}: the cursor starts outside the query's range condition"
            )
        if (
            self._range_condition is not None
            and self.range_key is not None
            and not _key_condition_holds(self._range_condition, start[self.range_key.attribute])
        ):
            # DynamoDB refuses such a start key (ValidationException), and some servers end
            # the listing silently: refuse it here, before sending.
            raise InvalidCursor(
                f"{self.model.__name__}: the cursor starts outside the query's range condition"
            )
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


def _ordered(av: dict[str, Any]) -> Any:
    """A key value in DynamoDB's order: numbers by value, strings by their UTF-8 bytes,
    binary by bytes."""
    ((kind, raw),) = av.items()
    if kind == "N":
        return Decimal(raw)
    if kind == "S":
        return raw.encode("utf-8", "surrogatepass")
    return bytes(raw)


def _key_condition_holds(condition: Condition, av: dict[str, Any]) -> bool:
    """Whether a range key value meets a key condition (the start key of a cursor)."""
    try:
        value = _ordered(av)
        if isinstance(condition, Comparison) and isinstance(condition.right, Value):
            other = _ordered(condition.right.av)
            holds: bool = {
                "=": value == other,
                "<": value < other,
                "<=": value <= other,
                ">": value > other,
                ">=": value >= other,
            }[condition.op]
            return holds
        if (
            isinstance(condition, Between)
            and isinstance(condition.low, Value)
            and isinstance(condition.high, Value)
        ):
            return bool(_ordered(condition.low.av) <= value <= _ordered(condition.high.av))
        if isinstance(condition, BeginsWith) and isinstance(condition.prefix, Value):
            prefix = _ordered(condition.prefix.av)
            return isinstance(value, bytes) and value.startswith(prefix)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return False
    return True


def _key_name(key: KeyAttribute) -> str:
    """A key attribute as the user declared it: its field, or the computed attribute."""
    return key.field or key.attribute


def _leaves(condition: Condition) -> list[Condition]:
    """The conditions joined by ``&``, in the order written."""
    if isinstance(condition, And):
        return [*_leaves(condition.left), *_leaves(condition.right)]
    return [condition]


def _key_subject(condition: Condition) -> Path[Any] | None:
    """The path a key condition (== < <= > >= between begins_with) is on, else None."""
    if isinstance(condition, Comparison) and condition.op in _KEY_OPERATORS:
        subject = condition.left
    elif isinstance(condition, Between):
        subject = condition.operand
    elif isinstance(condition, BeginsWith):
        subject = condition.path
    else:
        return None
    return subject if isinstance(subject, Path) else None


def _check_key_operands(condition: Condition, key: KeyAttribute, where: str) -> None:
    """Key condition values are non-empty scalars of the attribute's key type (S, N, B);
    begins_with needs a string or binary attribute."""
    name = _key_name(key)
    if isinstance(condition, BeginsWith) and key.type == "N":
        raise UsageError(
            f"{where}: begins_with needs a string or binary range attribute; {name!r} is "
            "stored as a number, so compare it instead"
        )
    if isinstance(condition, Comparison):
        operands = [condition.right]
    elif isinstance(condition, Between):
        operands = [condition.low, condition.high]
    elif isinstance(condition, BeginsWith):
        operands = [condition.prefix]
    else:
        operands = []
    for operand in operands:
        av = operand.av if isinstance(operand, Value) else {}
        kind = next(iter(av)) if len(av) == 1 else None
        if kind not in ("S", "N", "B"):
            raise UsageError(
                f"{where}: the condition on {name!r} compares with a value that is not a "
                f"scalar (string, number or bytes); key attributes hold {key.type} values"
            )
        if av[kind] in ("", b""):
            raise UsageError(f"{where}: the condition on {name!r} has an empty value")
        if kind != key.type:
            raise UsageError(
                f"{where}: the condition on {name!r} compares with a {kind} value; the "
                f"attribute is keyed as {key.type}"
            )


def _check_prefix_kind(condition: BeginsWith, key: KeyAttribute, where: str) -> None:
    """A key condition's begins_with prefix is of the key's own type: DynamoDB refuses a
    string prefix on a binary key (and bytes on a string key) with a ValidationException."""
    av = condition.prefix.av if isinstance(condition.prefix, Value) else {}
    kind = next(iter(av)) if len(av) == 1 else None
    if kind in ("S", "B") and kind != key.type:
        wanted = "bytes (b'...')" if key.type == "B" else "a string"
        raise UsageError(
            f"{where}: begins_with on {_key_name(key)!r}, keyed as {key.type}, needs {wanted} "
            f"as its prefix, not a {kind} value"
        )


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
        return condition.path, "begins_with", [condition.prefix.av.get("S")]  # None: not text
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
