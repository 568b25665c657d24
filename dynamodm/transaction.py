"""Transactions: ``async with dm.transaction() as tx:`` commits all or nothing on exit;
``dm.transact_get`` reads several items at one point in time."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import unique, writes
from .errors import UsageError
from .expressions import Action, ConditionLike

if TYPE_CHECKING:
    from .model import Model
    from .session import Session

MAX_GET_ITEMS = 100


class Transaction:
    """Collects writes; commits them in one TransactWriteItems when the block exits.

    Each call plans its write at once (so bad input fails inside the block, before
    anything is sent). If the block raises, nothing is sent.
    """

    def __init__(self, session: Session | None = None) -> None:
        self._explicit = session
        self._session: Session | None = None
        self._writes: list[writes.Write] = []
        self.committed = False

    @property
    def session(self) -> Session:
        if self._session is None:
            from .session import current_session

            self._session = current_session(self._explicit)
        return self._session

    def _add(self, write: writes.Write) -> None:
        if self.committed:
            raise UsageError("this transaction was committed already; open a new one")
        self._writes.append(write)

    def put(self, instance: Model, *, condition: ConditionLike | None = None) -> None:
        """Store the whole item (honours Version, unique fields and ``condition``)."""
        self._add(writes.plan_put(self.session, instance, create=False, condition=condition))

    def create(self, instance: Model) -> None:
        """Store a new item; the transaction is cancelled if the key exists."""
        self._add(writes.plan_put(self.session, instance, create=True, condition=None))

    def update(
        self,
        instance: Model,
        *actions: Action,
        condition: ConditionLike | None = None,
        **sets: Any,
    ) -> None:
        """Change an existing item. Keyword values are applied to the instance on commit;
        the effect of actions such as ``add`` is not (read the item again)."""
        self._add(writes.plan_update(self.session, instance, actions, sets, condition=condition))

    def delete(self, instance: Model, *, condition: ConditionLike | None = None) -> None:
        """Delete the item (honours Version, unique fields and ``condition``)."""
        model = type(instance)
        schema = model.__dm_schema__
        version = getattr(instance, schema.version) if schema.version else None
        self._add(
            writes.plan_delete(
                self.session,
                model,
                self.session.instance_key(instance),
                version=version,
                stored=unique.stored_values(instance),
                condition=condition,
                instance=instance,
            )
        )

    def check(self, model: type[Model], key: Any, *, condition: ConditionLike) -> None:
        """Require ``condition`` to hold on another item for the transaction to commit."""
        self._add(
            writes.plan_check(self.session, model, self.session.split_key(model, key), condition)
        )

    def __len__(self) -> int:
        return len(self._writes)

    async def commit(self) -> None:
        """Send the transaction (the ``async with`` block does this on exit)."""
        if self.committed:
            raise UsageError("this transaction was committed already")
        self.committed = True
        await writes.run_transaction(self.session, self._writes)

    async def __aenter__(self) -> Transaction:
        _ = self.session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            if self._writes:
                exc.add_note(
                    f"dynamodm: the transaction's {len(self._writes)} actions were not sent"
                )
            return
        await self.commit()


def transaction(*, session: Session | None = None) -> Transaction:
    """``async with dm.transaction() as tx:`` — all of the block's tx calls, or none."""
    return Transaction(session)


async def transact_get(
    keys: Sequence[tuple[type[Model], Any]], *, session: Session | None = None
) -> list[Any]:
    """Read up to 100 items in one TransactGetItems; the result is aligned with ``keys``,
    None for a missing item."""
    from .session import current_session

    db = current_session(session)
    if len(keys) > MAX_GET_ITEMS:
        raise UsageError(f"transact_get reads at most {MAX_GET_ITEMS} items; got {len(keys)}")
    requests = []
    models = []
    for entry in keys:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise UsageError("transact_get takes a list of (Model, key) pairs")
        model, key = entry
        requests.append(
            {"Get": {"TableName": db.table_name(model), "Key": db.split_key(model, key)}}
        )
        models.append(model)
    if not requests:
        return []
    response = await db.call("TransactGetItems", {"TransactItems": requests}, idempotent=True)
    results: list[Any] = []
    for model, answer in zip(models, response.get("Responses", []), strict=True):
        item = answer.get("Item")
        results.append(db.load(model, item) if item else None)
    return results
