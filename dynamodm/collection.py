"""Collections: the mixed items of one partition in a shared table, as typed instances."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .codec import Item
from .errors import UsageError
from .instances import load_checked
from .query import Query

if TYPE_CHECKING:
    from .connection import Connection as Session
    from .model import Model
    from .schema import TableSchema, Template


class Collection:
    """Models that share a table and a hash key, read together:

    ``tracker = dm.Collection(Athlete, TrainingSession)`` then
    ``await tracker.query(athlete_id="a-1").grouped()``.
    """

    def __init__(self, *models: type[Model], index: str | None = None) -> None:
        if not models:
            raise UsageError("dm.Collection() needs at least one model")
        first = models[0].__dm_schema__
        self.models = models
        self.index = index
        self.by_entity: dict[str, type[Model]] = {}
        for model in models:
            schema = model.__dm_schema__
            if schema is None or schema.entity is None:
                raise UsageError(
                    f"{model.__name__} has no entity type; collections read single-table "
                    "models (templated keys or Meta.entity)"
                )
            if (schema.table, schema.entity_attribute) != (first.table, first.entity_attribute):
                raise UsageError(
                    f"{model.__name__} is not in table {first.table!r} with entity attribute "
                    f"{first.entity_attribute!r} like {models[0].__name__}"
                )
            if _hash_keys(schema, index) != _hash_keys(first, index):
                raise UsageError(
                    f"{model.__name__} and {models[0].__name__} do not share the hash key "
                    f"of {'index ' + repr(index) if index else 'the table'}"
                )
            other = self.by_entity.setdefault(schema.entity, model)
            if other is not model:
                raise UsageError(f"{model.__name__} and {other.__name__} share entity type")

    def query(
        self,
        *,
        reverse: bool = False,
        limit: int | None = None,
        consistent: bool = False,
        include_expired: bool = False,
        session: Session | None = None,
        **fields: Any,
    ) -> CollectionQuery:
        """Every item of the partition the hash key fields name, of the collection's models
        (items past their TTL left out unless ``include_expired``)."""
        return CollectionQuery(
            self,
            reverse=reverse,
            limit=limit,
            consistent=consistent,
            session=session,
            fields=fields,
            include_expired=include_expired,
        )


class CollectionQuery(Query[Any]):
    """A query whose items are instances of several models (by their entity attribute)."""

    def __init__(
        self,
        collection: Collection,
        *,
        reverse: bool,
        limit: int | None,
        consistent: bool,
        session: Session | None,
        fields: dict[str, Any],
        include_expired: bool = False,
    ) -> None:
        self.collection = collection
        super().__init__(
            collection.models[0],
            "Query",
            index=collection.index,
            limit=limit,
            reverse=reverse,
            consistent=consistent,
            session=session,
            fields=fields,
            entities=list(collection.by_entity),
            include_expired=include_expired,
        )
        self._entity_attribute = collection.models[0].__dm_schema__.entity_attribute
        if not include_expired and self._expiry is None:
            # The table's one TTL attribute, whichever of its models declares it.
            ttl = [m.__dm_schema__.ttl_attribute for m in collection.models]
            self._expiry = next((a for a in ttl if a), None)
            self.has_filter = self.has_filter or self._expiry is not None

    def _load(self, session: Session, item: Item) -> Any:
        entity = item.get(self._entity_attribute, {}).get("S", "")
        model = self.collection.by_entity.get(entity)
        if model is None:
            raise UsageError(f"an item of entity type {entity!r} is not in this collection")
        return load_checked(model, item, partial=self.partial)

    def _identity(self) -> dict[str, Any]:
        identity = super()._identity()
        identity["m"] = "+".join(sorted(self.collection.by_entity))
        return identity

    async def grouped(self) -> dict[type[Model], list[Any]]:
        """Every item, grouped by model (each model present, possibly with no items)."""
        groups: dict[type[Model], list[Any]] = defaultdict(list)
        for model in self.collection.models:
            groups[model] = []
        async for item in self:
            groups[type(item)].append(item)
        return dict(groups)


def _hash_keys(schema: TableSchema, index: str | None) -> list[tuple[str, Template | None]]:
    """The hash key attributes of the table or of an index, and how each is computed."""
    keys = schema.indexes[index].hash_keys if index else (schema.hash_key,)
    return [(key.attribute, key.template) for key in keys]
