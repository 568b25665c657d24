"""Batches: BatchGetItem and BatchWriteItem for any number of keys and items.

Requests are split into the service limits (100 keys, 25 writes), run concurrently
(bounded), and what DynamoDB leaves unprocessed is retried with backoff. Whatever
remains after the retry budget is raised, listed: nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import hooks
from .codec import Item, check_item_size, format_datetime
from .errors import BatchWriteError, Throttled, UsageError
from .unique import owner_text
from .writes import encode_for_put

if TYPE_CHECKING:
    from .model import Model
    from .session import Session

MAX_GET_KEYS = 100
MAX_WRITES = 25
MAX_WRITE_BYTES = 16 * 1024 * 1024
CONCURRENCY = 8


def _before_hooks(instance: Model, event: hooks.Event) -> bool:
    """Run the sync before-hooks now; True when async ones must run before sending."""
    if not hooks.has(instance, "before", event):
        return False
    if hooks.is_async(type(instance), "before", event):
        return True
    for name in type(instance).__dm_hooks__[("before", event)]:
        getattr(instance, name)()
    return False


def _fingerprint(table: str, key: Item) -> str:
    """One text per item: numbers compare as DynamoDB compares them ("1.50" is "1.5")."""
    text = [table]
    for name in sorted(key):
        ((kind, value),) = key[name].items()
        if kind == "S":
            text.append(f"{name}\x00S\x00{value}")
        else:
            return table + "\x00" + owner_text(key)
    return "\x01".join(text)


def _key_names(model: type[Model]) -> list[str]:
    return [k.attribute for k in model.__dm_schema__.table_keys]


async def _backoff(session: Session, attempt: int, started: float) -> bool:
    """Sleep before retry ``attempt``; False when the retry budget is spent."""
    policy = session.retry
    pause = policy.delay(attempt)
    if attempt >= policy.max_attempts or policy.clock() - started + pause > policy.budget:
        return False
    await policy.sleep(pause)
    return True


# ---------------------------------------------------------------- batch get


async def batch_get(
    session: Session, pairs: Sequence[tuple[type[Model], Any]], *, consistent: bool = False
) -> list[Any]:
    """The found items in the order of the keys asked, missing keys left out."""
    wanted: list[tuple[type[Model], str, Item]] = []
    unique_keys: dict[str, tuple[type[Model], str, Item]] = {}
    for model, key in pairs:
        table = session.table_name(model)
        encoded = session.split_key(model, key)
        fingerprint = _fingerprint(table, encoded)
        wanted.append((model, fingerprint, encoded))
        unique_keys.setdefault(fingerprint, (model, table, encoded))
    entries = list(unique_keys.items())
    chunks = [entries[i : i + MAX_GET_KEYS] for i in range(0, len(entries), MAX_GET_KEYS)]
    found: dict[str, Item] = {}
    limit = asyncio.Semaphore(CONCURRENCY)

    async def fetch(chunk: list[tuple[str, tuple[type[Model], str, Item]]]) -> None:
        async with limit:
            await _get_chunk(session, chunk, consistent, found)

    tasks = [asyncio.ensure_future(fetch(chunk)) for chunk in chunks]
    try:
        await asyncio.gather(*tasks)
    finally:
        # One chunk failed (or the caller was cancelled): stop the others too.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    results: list[Any] = []
    for model, fingerprint, _key in wanted:
        item = found.get(fingerprint)
        if item is not None:
            results.append(session.load(model, item))
    return results


async def _get_chunk(
    session: Session,
    chunk: list[tuple[str, tuple[type[Model], str, Item]]],
    consistent: bool,
    found: dict[str, Item],
) -> None:
    key_attributes: dict[str, list[str]] = {}
    request_items: dict[str, dict[str, Any]] = {}
    for _fp, (_model, table, key) in chunk:
        entry = request_items.setdefault(table, {"Keys": []})
        if consistent:
            entry["ConsistentRead"] = True
        entry["Keys"].append(key)
        key_attributes[table] = list(key)
    started = session.retry.clock()
    attempt = 0
    while request_items:
        response = await session.call(
            "BatchGetItem", {"RequestItems": request_items}, idempotent=True
        )
        for table, items in response.get("Responses", {}).items():
            for item in items:
                key = {a: item[a] for a in key_attributes[table] if a in item}
                found[_fingerprint(table, key)] = item
        request_items = response.get("UnprocessedKeys") or {}
        if request_items:
            attempt += 1
            if not await _backoff(session, attempt, started):
                left = sum(len(v.get("Keys", [])) for v in request_items.values())
                raise Throttled(
                    f"batch_get: {left} keys were still unprocessed when the retry budget ran "
                    "out; nothing was skipped silently: retry them or raise capacity",
                    code="UnprocessedKeys",
                )


# ---------------------------------------------------------------- batch write


@dataclass
class _Entry:
    kind: str  # "put" or "delete"
    model: type[Model]
    target: Any  # the instance, or the key for delete_key
    request: dict[str, Any]
    table: str
    fingerprint: str
    size: int
    key_names: list[str]
    apply: Callable[[], None] | None = None
    event: hooks.Event | None = None
    deferred: bool = False  # async before-hooks still to run (just before sending)


@dataclass
class _Request:
    """One BatchWriteItem request of up to 25 entries, sent by its own task."""

    entries: list[_Entry]
    keys: set[str]
    task: asyncio.Task[None] | None = None
    started: bool = False  # True once it may have reached DynamoDB


class BatchWriter:
    """``async with dm.batch_write() as batch:`` — puts and deletes of any models.

    A request of 25 is sent as soon as it fills (it leaves when the block next awaits);
    the rest on exit. The last operation on a key wins. If the block raises, nothing
    that had not been sent yet is written (the exception's note says how much); what
    was sent before stays written.
    """

    def __init__(self, session: Session | None = None) -> None:
        self._explicit = session
        self._session: Session | None = None
        self._buffer: dict[str, _Entry] = {}
        self._inflight: list[_Request] = []
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self.written: list[tuple[str, Any]] = []
        self.failed: list[tuple[str, Any]] = []
        self._errors: list[BaseException] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            from .session import current_session

            self._session = current_session(self._explicit)
        return self._session

    def _check_model(self, model: type[Model], operation: str) -> None:
        schema = model.__dm_schema__
        if schema is None:
            raise UsageError(f"batch {operation}: {model.__name__} has no table")
        if schema.version or schema.unique:
            raise UsageError(
                f"batch {operation} {model.__name__}: models with a Version or unique fields "
                "need conditional writes, which BatchWriteItem cannot make; use save() or "
                "dm.transaction()"
            )

    def put(self, instance: Model) -> None:
        """Store the whole item (unconditionally, like save() without a condition).

        Sync before-save hooks run now; async ones just before the request is sent (the
        item is then encoded again). After-save hooks run once the item is written."""
        model = type(instance)
        self._check_model(model, "put")
        if instance._dm_partial:
            raise UsageError(
                f"batch put {model.__name__}: a partially loaded instance cannot be put whole"
            )
        deferred = _before_hooks(instance, "save")
        entry = self._put_entry(instance)
        entry.deferred = deferred
        self._add(entry)

    def _put_entry(self, instance: Model) -> _Entry:
        model = type(instance)
        item = encode_for_put(instance, "batch put")
        schema = model.__dm_schema__
        now = None
        if schema.updated_at:
            from .model import utcnow

            now = utcnow()
            attribute = model.__dm_codec__.by_name[schema.updated_at].attribute
            item[attribute] = {"S": format_datetime(now)}
        size = check_item_size(item, model.__name__, "batch put")
        session = self.session
        table = session.table_name(model)
        key = {name: item[name] for name in _key_names(model)}

        def apply() -> None:
            if now is not None and schema.updated_at:
                instance.__dict__[schema.updated_at] = now

        return _Entry(
            "put",
            model,
            instance,
            {"PutRequest": {"Item": item}},
            table,
            _fingerprint(table, key),
            size,
            list(key),
            apply,
            "save",
        )

    def delete(self, instance: Model) -> None:
        """Delete the item of this instance."""
        model = type(instance)
        self._check_model(model, "delete")
        deferred = _before_hooks(instance, "delete")
        self._delete(model, self.session.instance_key(instance), instance, "delete", deferred)

    def delete_key(self, model: type[Model], key: Any) -> None:
        """Delete by key: a hash value or a ``(hash, range)`` tuple."""
        self._check_model(model, "delete")
        if hooks.has(model, "before", "delete") or hooks.has(model, "after", "delete"):
            raise UsageError(
                f"batch delete_key {model.__name__}: the model has delete hooks, which need "
                "the instance; use batch.delete(instance)"
            )
        self._delete(model, self.session.split_key(model, key), key, None)

    def _delete(
        self,
        model: type[Model],
        key: Item,
        target: Any,
        event: hooks.Event | None,
        deferred: bool = False,
    ) -> None:
        table = self.session.table_name(model)
        self._add(
            _Entry(
                "delete",
                model,
                target,
                {"DeleteRequest": {"Key": key}},
                table,
                _fingerprint(table, key),
                0,
                list(key),
                event=event,
                deferred=deferred,
            )
        )

    def _add(self, entry: _Entry) -> None:
        self._buffer.pop(entry.fingerprint, None)
        self._buffer[entry.fingerprint] = entry
        if len(self._buffer) >= MAX_WRITES:
            self._flush()

    def _flush(self) -> None:
        self._inflight = [r for r in self._inflight if r.task is None or not r.task.done()]
        while self._buffer:
            chunk: list[_Entry] = []
            size = 0
            for fingerprint in list(self._buffer):
                entry = self._buffer[fingerprint]
                if len(chunk) == MAX_WRITES or size + entry.size > MAX_WRITE_BYTES:
                    break
                chunk.append(self._buffer.pop(fingerprint))
                size += entry.size
            request = _Request(chunk, {e.fingerprint for e in chunk})
            # A key still in flight is written again only after that request is answered,
            # so the last operation on it wins.
            before = [r.task for r in self._inflight if r.task and r.keys & request.keys]
            request.task = asyncio.get_running_loop().create_task(self._send(request, before))
            self._inflight.append(request)
            if len(self._buffer) < MAX_WRITES:
                return

    async def _send(self, request: _Request, before: list[asyncio.Task[None]]) -> None:
        if before:
            # wait(), not gather(): cancelling this request must not cancel the earlier
            # ones, which may be in flight.
            await asyncio.wait(before)
        pending = {e.fingerprint: e for e in request.entries}
        async with self._limit:
            request.started = True
            try:
                for fingerprint, entry in list(pending.items()):
                    if entry.deferred:
                        await hooks.run(entry.target, "before", entry.event or "save")
                        if entry.kind == "put":
                            pending[fingerprint] = self._put_entry(entry.target)
                        entry.deferred = False
                await self._write_chunk(pending)
            except Exception as error:  # reported on exit with the items it concerns
                self._errors.append(error)
                self.failed.extend((e.kind, e.target) for e in pending.values())

    async def _write_chunk(self, pending: dict[str, _Entry]) -> None:
        """Write until nothing is pending; written entries leave ``pending`` as they land."""
        session = self.session
        started = session.retry.clock()
        attempt = 0
        while pending:
            request_items: dict[str, list[dict[str, Any]]] = {}
            key_names: dict[str, list[str]] = {}
            for entry in pending.values():
                request_items.setdefault(entry.table, []).append(entry.request)
                key_names[entry.table] = entry.key_names
            response = await session.call(
                "BatchWriteItem", {"RequestItems": request_items}, idempotent=True
            )
            left: set[str] = set()
            for table, requests in (response.get("UnprocessedItems") or {}).items():
                for request in requests:
                    if "DeleteRequest" in request:
                        key = request["DeleteRequest"]["Key"]
                    else:
                        item = request["PutRequest"]["Item"]
                        key = {name: item[name] for name in key_names[table]}
                    left.add(_fingerprint(table, key))
            for fingerprint in [f for f in pending if f not in left]:
                entry = pending.pop(fingerprint)
                if entry.apply is not None:
                    entry.apply()
                self.written.append((entry.kind, entry.target))
                if entry.event and hooks.has(entry.target, "after", entry.event):
                    await hooks.run(entry.target, "after", entry.event)
            if pending:
                attempt += 1
                if not await _backoff(session, attempt, started):
                    raise Throttled(
                        f"batch_write: {len(pending)} items were still unprocessed when the "
                        "retry budget ran out",
                        code="UnprocessedItems",
                    )

    async def flush(self) -> None:
        """Send everything buffered and wait for every request to be answered."""
        self._flush()
        tasks = [r.task for r in self._inflight if r.task is not None]
        if tasks:
            # Shielded: a cancelled caller leaves the requests in flight to __aexit__, which
            # waits for those that may have reached DynamoDB, so that the record is exact.
            await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        self._inflight = [r for r in self._inflight if r.task not in tasks]

    async def __aenter__(self) -> BatchWriter:
        _ = self.session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            await self._abandon(exc)
            return
        try:
            await self.flush()
        except asyncio.CancelledError as cancelled:
            await self._abandon(cancelled)
            raise
        if self.failed:
            raise BatchWriteError(
                f"batch_write: {len(self.failed)} items were not written (listed in .items); "
                f"{len(self.written)} were",
                items=list(self.failed),
            ) from (self._errors[0] if self._errors else None)

    async def _abandon(self, exc: BaseException) -> None:
        """Stop after an error or a cancellation, and note on it what was written.

        Requests not yet sent are dropped with the buffer; one that may have reached
        DynamoDB is waited for, so that what was written is known."""
        dropped = len(self._buffer)
        self._buffer.clear()
        requests, self._inflight = self._inflight, []
        tasks = []
        for request in requests:
            if request.task is None:
                continue
            if not request.started:
                request.task.cancel()
                dropped += len(request.entries)
            tasks.append(request.task)
        if tasks:
            await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        failed = f", {len(self.failed)} failed" if self.failed else ""
        exc.add_note(
            f"dynamodm: batch_write wrote {len(self.written)} items before the error"
            f"{failed}; {dropped} items not yet sent were not written"
        )


def batch_write(*, session: Session | None = None) -> BatchWriter:
    """``async with dm.batch_write() as batch: batch.put(...); batch.delete(...)``."""
    return BatchWriter(session)
