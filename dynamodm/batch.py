"""Batches: BatchGetItem and BatchWriteItem for any number of keys and items.

Requests are split into the service limits (100 keys, 25 writes), run concurrently
(bounded), and what DynamoDB leaves unprocessed is retried with backoff. Whatever
remains after the retry budget is raised, listed: nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from . import hooks, keys
from .codec import Item, check_item_size, format_datetime, utcnow
from .connection import Connection, current_connection
from .errors import BatchWriteError, ItemInvalid, Throttled, UsageError
from .instances import entity_class, expired, load_checked
from .keys import item_identity
from .ratelimit import RateLimit
from .writes import encode_for_put

if TYPE_CHECKING:
    from .model import Model

logger = logging.getLogger("dynamodm")

MAX_GET_KEYS = 100
MAX_WRITES = 25
MAX_WRITE_BYTES = 16 * 1024 * 1024
CONCURRENCY = 8
# Requests a batch writer holds at most, queued or in flight, before ``await batch.put``
# waits: memory stays bounded however many items pass through.
MAX_QUEUED = 2 * CONCURRENCY


def _before_hooks(instance: Model, event: hooks.Event) -> bool:
    """Run the sync before-hooks now; True when async ones must run before sending."""
    if not hooks.has(instance, "before", event):
        return False
    if hooks.is_async(type(instance), "before", event):
        return True
    for name in type(instance).__dm_hooks__[("before", event)]:
        getattr(instance, name)()
    return False


def _key_names(model: type[Model]) -> list[str]:
    return [k.attribute for k in model.__dm_schema__.table_keys]


# ---------------------------------------------------------------- batch get


async def batch_get(
    session: Connection,
    pairs: Sequence[tuple[type[Model], Any]],
    *,
    consistent: bool = False,
    on_invalid: Literal["raise", "skip"] = "raise",
    include_expired: bool = False,
) -> list[Any]:
    """The found items in the order of the keys asked, missing keys left out. Items that
    do not fit their model raise one ``ItemInvalid`` at the end (the good items on
    ``.items``, the bad keys on ``.keys``), or are skipped with ``on_invalid="skip"``."""
    if on_invalid not in ("raise", "skip"):
        raise UsageError(f"batch_get: on_invalid is 'raise' or 'skip', not {on_invalid!r}")
    wanted: list[tuple[type[Model], str, Item]] = []
    unique_keys: dict[str, tuple[type[Model], str, Item]] = {}
    for model, key in pairs:
        table = session.names.of(model)
        encoded = keys.from_any(model, key)
        fingerprint = item_identity(table, encoded)
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
    bad: list[ItemInvalid] = []
    for model, fingerprint, _key in wanted:
        item = found.get(fingerprint)
        if (
            item is not None
            and (include_expired or not expired(model, item))
            and (model.__dm_family__ is None or entity_class(model, item) is not None)
        ):
            try:
                results.append(load_checked(model, item))
            except ItemInvalid as error:
                if on_invalid == "skip":
                    logger.warning(
                        "batch_get: skipped a %s item that does not fit the model (fields %s), "
                        "key %s",
                        model.__name__,
                        ", ".join(error.fields),
                        error.key,
                    )
                    continue
                bad.append(error)
    if bad:
        models = ", ".join(dict.fromkeys(e.model for e in bad))
        fields = ", ".join(dict.fromkeys(f for e in bad for f in e.fields))
        raise ItemInvalid(
            f"batch_get: {len(bad)} stored items do not fit their model ({models}; fields: "
            f"{fields}); the {len(results)} good items are on error.items, the bad keys on "
            "error.keys",
            model=bad[0].model,
            key=bad[0].key,
            fields=tuple(dict.fromkeys(f for e in bad for f in e.fields)),
            errors=[d for e in bad for d in e.errors],
            items=results,
            keys=[e.key for e in bad],
        )
    return results


async def _get_chunk(
    session: Connection,
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
                found[item_identity(table, key)] = item
        request_items = response.get("UnprocessedKeys") or {}
        if request_items:
            attempt += 1
            if not await session.retry.pause(attempt, started):
                left = sum(len(v.get("Keys", [])) for v in request_items.values())
                raise Throttled(
                    f"batch_get: {left} keys were still unprocessed when the retry budget ran "
                    "out; nothing was skipped silently: retry them or raise capacity",
                    code="UnprocessedKeys",
                )


# ---------------------------------------------------------------- batch write


@dataclass
class _Queued:
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


class Room:
    """What ``batch.put``/``delete``/``delete_key`` return: awaiting it waits until the
    batch has room (fewer than 16 requests queued or in flight); not awaiting it is fine
    for a few items."""

    __slots__ = ("_batch",)

    def __init__(self, batch: BatchWriter) -> None:
        self._batch = batch

    def __await__(self) -> Generator[Any, None, None]:
        return self._batch._wait_for_room().__await__()


@dataclass
class _Request:
    """One BatchWriteItem request of up to 25 entries, sent by its own task."""

    entries: list[_Queued]
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

    def __init__(
        self,
        session: Connection | None = None,
        *,
        keep_written: bool = False,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._explicit = session
        self.rate_limit = rate_limit
        self._session: Connection | None = None
        self._buffer: dict[str, _Queued] = {}
        self._inflight: list[_Request] = []
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self.written = 0
        self.written_items: list[tuple[str, Any]] | None = [] if keep_written else None
        self.failed: list[tuple[str, Any]] = []
        self._errors: list[BaseException] = []

    @property
    def session(self) -> Connection:
        if self._session is None:
            self._session = current_connection(self._explicit)
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

    def put(self, instance: Model) -> Room:
        """Store the whole item (unconditionally, like save() without a condition).

        Sync before-save hooks run now; async ones just before the request is sent (the
        item is then encoded again). After-save hooks run once the item is written.

        In a loop over many items, ``await batch.put(item)``: it returns at once while
        the batch holds fewer than 16 requests, and otherwise waits for one to be
        answered, so memory stays bounded however many items pass through."""
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
        return Room(self)

    def _put_entry(self, instance: Model) -> _Queued:
        model = type(instance)
        item = encode_for_put(instance, "batch put")
        schema = model.__dm_schema__
        now = None
        if schema.updated_at:
            now = utcnow()
            attribute = model.__dm_codec__.by_name[schema.updated_at].attribute
            item[attribute] = {"S": format_datetime(now)}
        size = check_item_size(item, model.__name__, "batch put")
        session = self.session
        table = session.names.of(model)
        key = {name: item[name] for name in _key_names(model)}

        def apply() -> None:
            if now is not None and schema.updated_at:
                instance.__dict__[schema.updated_at] = now

        return _Queued(
            "put",
            model,
            instance,
            {"PutRequest": {"Item": item}},
            table,
            item_identity(table, key),
            size,
            list(key),
            apply,
            "save",
        )

    def delete(self, instance: Model) -> Room:
        """Delete the item of this instance (awaitable, as ``put``)."""
        model = type(instance)
        self._check_model(model, "delete")
        deferred = _before_hooks(instance, "delete")
        self._delete(model, keys.from_instance(instance), instance, "delete", deferred)
        return Room(self)

    def delete_key(self, model: type[Model], key: Any) -> Room:
        """Delete by key: a hash value or a ``(hash, range)`` tuple (awaitable, as ``put``)."""
        self._check_model(model, "delete")
        if hooks.has(model, "before", "delete") or hooks.has(model, "after", "delete"):
            raise UsageError(
                f"batch delete_key {model.__name__}: the model has delete hooks, which need "
                "the instance; use batch.delete(instance)"
            )
        self._delete(model, keys.from_any(model, key), key, None)
        return Room(self)

    def _delete(
        self,
        model: type[Model],
        key: Item,
        target: Any,
        event: hooks.Event | None,
        deferred: bool = False,
    ) -> None:
        table = self.session.names.of(model)
        self._add(
            _Queued(
                "delete",
                model,
                target,
                {"DeleteRequest": {"Key": key}},
                table,
                item_identity(table, key),
                0,
                list(key),
                event=event,
                deferred=deferred,
            )
        )

    async def _wait_for_room(self) -> None:
        """Wait while the batch holds MAX_QUEUED requests, queued or in flight."""
        while True:
            active = [r.task for r in self._inflight if r.task is not None and not r.task.done()]
            if len(active) < MAX_QUEUED:
                return
            # wait(), not gather(): a cancelled caller must not cancel the requests.
            await asyncio.wait(active, return_when=asyncio.FIRST_COMPLETED)

    def _add(self, entry: _Queued) -> None:
        self._buffer.pop(entry.fingerprint, None)
        self._buffer[entry.fingerprint] = entry
        if len(self._buffer) >= MAX_WRITES:
            self._flush()

    def _flush(self) -> None:
        self._inflight = [r for r in self._inflight if r.task is None or not r.task.done()]
        while self._buffer:
            chunk: list[_Queued] = []
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

    async def _write_chunk(self, pending: dict[str, _Queued]) -> None:
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
                "BatchWriteItem",
                {"RequestItems": request_items},
                idempotent=True,
                rate_limit=self.rate_limit,
            )
            left: set[str] = set()
            for table, requests in (response.get("UnprocessedItems") or {}).items():
                for request in requests:
                    if "DeleteRequest" in request:
                        key = request["DeleteRequest"]["Key"]
                    else:
                        item = request["PutRequest"]["Item"]
                        key = {name: item[name] for name in key_names[table]}
                    left.add(item_identity(table, key))
            for fingerprint in [f for f in pending if f not in left]:
                entry = pending.pop(fingerprint)
                if entry.apply is not None:
                    entry.apply()
                self.written += 1
                if self.written_items is not None:
                    self.written_items.append((entry.kind, entry.target))
                if entry.event and hooks.has(entry.target, "after", entry.event):
                    await hooks.run(entry.target, "after", entry.event)
            if pending:
                attempt += 1
                if not await session.retry.pause(attempt, started):
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
                f"{self.written} were",
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
            f"dynamodm: batch_write wrote {self.written} items before the error"
            f"{failed}; {dropped} items not yet sent were not written"
        )


def batch_write(
    *,
    session: Connection | None = None,
    keep_written: bool = False,
    rate_limit: RateLimit | None = None,
) -> BatchWriter:
    """``async with dm.batch_write() as batch: await batch.put(...); batch.delete(...)``.

    ``batch.written`` counts the items written and ``batch.failed`` lists those that were
    not; ``keep_written=True`` also lists what was written, as ``(kind, target)`` pairs in
    ``batch.written_items`` (memory then grows with the number of items).
    ``rate_limit=dm.RateLimit(write=...)`` paces this batch's requests."""
    return BatchWriter(session, keep_written=keep_written, rate_limit=rate_limit)
