"""Transactions: ``async with dm.transaction() as tx:`` commits all or nothing on exit;
``dm.transact_get`` reads several items at one point in time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import hooks, writes
from .connection import Connection, current_connection
from .errors import CancellationReason, TransactionCanceled, UsageError, retryable_cancellation
from .execute import run_transaction
from .expressions import Action, ConditionLike
from .instances import entity_class, expired, load_checked, stored_values
from .keys import from_any as _key_of
from .keys import from_instance, item_identity

if TYPE_CHECKING:
    from .model import Model

MAX_GET_ITEMS = 100


@dataclass
class _Action:
    """One user action: its planned write, and what hooks need to re-plan it."""

    write: writes.Write
    instance: Model | None = None
    event: hooks.Event | None = None
    plan: Callable[[], writes.Write] | None = None
    deferred: bool = False


class Transaction:
    """Collects writes; commits them in one TransactWriteItems when the block exits.

    Each call plans its write at once (so bad input fails inside the block, before
    anything is sent). If the block raises, nothing is sent. Sync before-hooks run at
    the call; async ones run at commit, before anything is sent (the write is then
    planned again); after-hooks run once the transaction is committed.
    """

    def __init__(self, session: Connection | None = None) -> None:
        self._explicit = session
        self._session: Connection | None = None
        self._entries: list[_Action] = []
        self.committed = False

    @property
    def session(self) -> Connection:
        if self._session is None:
            self._session = current_connection(self._explicit)
        return self._session

    def _add(
        self,
        plan: Callable[[], writes.Write],
        instance: Model | None = None,
        event: hooks.Event | None = None,
    ) -> None:
        if self.committed:
            raise UsageError("this transaction was committed already; open a new one")
        deferred = False
        if instance is not None and event is not None and hooks.has(instance, "before", event):
            if hooks.is_async(type(instance), "before", event):
                deferred = True
            else:
                for name in type(instance).__dm_hooks__[("before", event)]:
                    getattr(instance, name)()
        self._entries.append(_Action(plan(), instance, event, plan, deferred))

    def put(self, instance: Model, *, condition: ConditionLike | None = None) -> None:
        """Store the whole item (honours Version, unique fields and ``condition``)."""
        self._add(
            lambda: writes.plan_put(
                self.session.names, instance, create=False, condition=condition
            ),
            instance,
            "save",
        )

    def create(self, instance: Model) -> None:
        """Store a new item; the transaction is cancelled if the key exists."""
        self._add(
            lambda: writes.plan_put(self.session.names, instance, create=True, condition=None),
            instance,
            "create",
        )

    def update(
        self,
        instance: Model,
        *actions: Action,
        condition: ConditionLike | None = None,
        **sets: Any,
    ) -> None:
        """Change an existing item. Keyword values are applied to the instance on commit;
        the effect of actions such as ``add`` is not (read the item again)."""
        self._add(
            lambda: writes.plan_update(
                self.session.names, instance, actions, sets, condition=condition
            ),
            instance,
            "update",
        )

    def delete(self, instance: Model, *, condition: ConditionLike | None = None) -> None:
        """Delete the item (honours Version, unique fields and ``condition``)."""
        model = type(instance)
        schema = model.__dm_schema__

        def plan() -> writes.Write:
            version = getattr(instance, schema.version, None) if schema.version else None
            return writes.plan_delete(
                self.session.names,
                model,
                from_instance(instance),
                version=version,
                stored=stored_values(instance),
                condition=condition,
                instance=instance,
            )

        self._add(plan, instance, "delete")

    def check(self, model: type[Model], key: Any, *, condition: ConditionLike) -> None:
        """Require ``condition`` to hold on another item for the transaction to commit."""
        encoded = _key_of(model, key)
        self._add(lambda: writes.plan_check(self.session.names, model, encoded, condition))

    def __len__(self) -> int:
        return len(self._entries)

    async def commit(self) -> None:
        """Send the transaction (the ``async with`` block does this on exit)."""
        if self.committed:
            raise UsageError("this transaction was committed already")
        self.committed = True
        for entry in self._entries:
            if entry.deferred and entry.instance is not None and entry.event and entry.plan:
                await hooks.run(entry.instance, "before", entry.event)
                entry.write = entry.plan()
        await run_transaction(self.session, [e.write for e in self._entries])
        for entry in self._entries:
            instance, event = entry.instance, entry.event
            if instance is not None and event is not None and hooks.has(instance, "after", event):
                await hooks.run(instance, "after", event)

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
            if self._entries:
                exc.add_note(
                    f"dynamodm: the transaction's {len(self._entries)} actions were not sent"
                )
            return
        await self.commit()


def transaction(*, session: Connection | None = None) -> Transaction:
    """``async with dm.transaction() as tx:`` — all of the block's tx calls, or none."""
    return Transaction(session)


async def transact_get(
    keys: Sequence[tuple[type[Model], Any]],
    *,
    include_expired: bool = False,
    session: Connection | None = None,
) -> list[Any]:
    """Read up to 100 items in one TransactGetItems; the result is aligned with ``keys``,
    None for a missing (or expired) item. A transaction conflict is retried within the
    retry budget."""
    db = current_connection(session)
    # DynamoDB refuses two reads of one item in a transaction: each is asked once.
    positions: dict[str, int] = {}
    requests: list[dict[str, Any]] = []
    asked: list[tuple[type[Model], int]] = []
    for entry in keys:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise UsageError("transact_get takes a list of (Model, key) pairs")
        model, key = entry
        table, encoded = db.names.of(model), _key_of(model, key)
        identity = item_identity(table, encoded)
        if identity not in positions:
            positions[identity] = len(requests)
            requests.append({"Get": {"TableName": table, "Key": encoded}})
        asked.append((model, positions[identity]))
    if len(requests) > MAX_GET_ITEMS:
        raise UsageError(f"transact_get reads at most {MAX_GET_ITEMS} items; got {len(requests)}")
    if not requests:
        return []
    started = db.retry.clock()
    attempt = 0
    while True:
        try:
            response = await db.call(
                "TransactGetItems", {"TransactItems": requests}, idempotent=True
            )
            break
        except TransactionCanceled as error:
            reasons = error.reasons or []
            attempt += 1
            if retryable_cancellation(reasons) and await db.retry.pause(attempt, started):
                continue
            raise _get_cancellation(error, requests, asked) from None
    answers = response.get("Responses", [])
    results: list[Any] = []
    for model, position in asked:
        item = answers[position].get("Item")
        alive = (
            item
            and (include_expired or not expired(model, item))
            and (model.__dm_family__ is None or entity_class(model, item) is not None)
        )
        results.append(load_checked(model, item) if alive else None)
    return results


def _get_cancellation(
    error: TransactionCanceled,
    requests: list[dict[str, Any]],
    asked: list[tuple[type[Model], int]],
) -> TransactionCanceled:
    """The cancellation of a TransactGetItems, its reasons as ``dm.CancellationReason``."""
    models: dict[int, str] = {}
    for model, position in asked:
        models.setdefault(position, model.__name__)
    reasons = []
    for index, reason in enumerate(error.reasons or []):
        raw = reason if isinstance(reason, dict) else {}
        reasons.append(
            CancellationReason(
                index,
                "get",
                models.get(index, ""),
                str(raw.get("Code") or "None"),
                str(raw.get("Message") or ""),
            )
        )
    failed = ", ".join(f"#{r.index} get {r.model}: {r.code}" for r in reasons if r.code != "None")
    return TransactionCanceled(
        f"transact_get was cancelled ({failed or 'no reason given'})",
        reasons=reasons,
        code=error.code,
        service_message=error.service_message,
    )
