"""Batches: BatchGetItem and BatchWriteItem for any number of keys and items.

Requests are split into the service limits (100 keys, 25 writes), run concurrently
(bounded), and what DynamoDB leaves unprocessed is retried with backoff. Whatever
remains after the retry budget is raised, listed: nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from . import hooks, keys
from .codec import MAX_ITEM_SIZE, Item, Mismatch, format_datetime, sized_item, utcnow
from .connection import Connection, current_connection
from .errors import BatchWriteError, ItemInvalid, Throttled, UsageError
from .instances import entity_class, expired, load_checked, raw_loader
from .keys import identity_of, item_identity
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


def _table_key(model: type[Model]) -> tuple[str, ...]:
    """The table key's attributes of a model, sorted (as ``identity_of`` reads them)."""
    return model.__dm_schema__.table_key_attributes


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
    names = session.names
    wanted: list[tuple[type[Model], str]] = []
    # Each key once, in requests of MAX_GET_KEYS built as the keys come.
    requested: set[str] = set()
    chunks: list[_GetChunk] = []
    chunk: _GetChunk | None = None
    plans: dict[type[Model], tuple[str, Callable[[Any], Item], tuple[str, ...]]] = {}
    # The one-call loaders of models that take no binary values: when every model of the
    # call has one, the answers' items keep their binary values as base64 text (no search
    # of each answer for them; the loaders decode what they keep: instances.raw_loader).
    loaders: dict[type[Model], Callable[[Item], Any] | None] = {}
    for model, key in pairs:
        plan = plans.get(model)
        if plan is None:
            plan = plans[model] = (
                names.of(model),
                keys.key_encoder(model),
                _table_key(model),
            )
            loaders[model] = raw_loader(model)
        table, encode, attributes = plan
        encoded = encode(key)
        identity = identity_of(table, attributes, encoded)
        wanted.append((model, identity))
        if identity in requested:
            continue
        requested.add(identity)
        if chunk is None or chunk.count == MAX_GET_KEYS:
            chunk = _GetChunk()
            chunks.append(chunk)
        chunk.add(table, encoded, consistent)
    found: dict[str, Item] = {}
    raw_binary = None not in loaders.values()
    if len(chunks) == 1:
        await _get_chunk(session, chunks[0], found, raw_binary)
    elif chunks:
        await _get_chunks(session, chunks, found, raw_binary)
    # Models whose found items need a look before loading: an expiry to check, or a
    # family to tell its classes apart.
    checked = {
        model
        for model in loaders
        if model.__dm_family__ is not None
        or (not include_expired and model.__dm_schema__.ttl_attribute is not None)
    }
    results: list[Any] = []
    bad: list[ItemInvalid] = []
    for model, fingerprint in wanted:
        item = found.get(fingerprint)
        if item is None:
            continue
        if model in checked and (
            (
                not include_expired
                and model.__dm_schema__.ttl_attribute is not None
                and expired(model, item)
            )
            or (model.__dm_family__ is not None and entity_class(model, item) is None)
        ):
            continue
        load = loaders[model] if raw_binary else None
        if load is not None:
            try:
                results.append(load(item))
                continue
            except Mismatch:
                pass  # load_checked decodes the item and validates it in full
        try:
            results.append(load_checked(model, item))
        except ItemInvalid as error:
            if on_invalid == "skip":
                # The key's values go on the record (``dynamodm_key``), not in its text.
                logger.warning(
                    "batch_get: skipped a %s item that does not fit the model (fields %s); "
                    "its key (%s) is on the record as dynamodm_key",
                    model.__name__,
                    ", ".join(error.fields),
                    ", ".join(sorted(error.key or ())),
                    extra={"dynamodm_key": error.key},
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


class _GetChunk:
    """The RequestItems of one BatchGetItem, and the sorted key attributes of its tables
    (to know the items of the answer by their key)."""

    __slots__ = ("count", "key_attributes", "request_items")

    def __init__(self) -> None:
        self.count = 0
        self.request_items: dict[str, dict[str, Any]] = {}
        self.key_attributes: dict[str, list[str]] = {}

    def add(self, table: str, key: Item, consistent: bool) -> None:
        entry = self.request_items.get(table)
        if entry is None:
            entry = self.request_items[table] = {"Keys": []}
            if consistent:
                entry["ConsistentRead"] = True
            self.key_attributes[table] = sorted(key)
        entry["Keys"].append(key)
        self.count += 1


async def _get_chunks(
    session: Connection, chunks: list[_GetChunk], found: dict[str, Item], raw_binary: bool
) -> None:
    """The chunks' requests, CONCURRENCY at a time, in order."""
    queue = iter(chunks)

    async def fetch() -> None:
        for chunk in queue:
            await _get_chunk(session, chunk, found, raw_binary)

    tasks = [asyncio.ensure_future(fetch()) for _ in range(min(CONCURRENCY, len(chunks)))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # One chunk failed (or the caller was cancelled): stop the others too.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _get_chunk(
    session: Connection, chunk: _GetChunk, found: dict[str, Item], raw_binary: bool
) -> None:
    key_attributes = chunk.key_attributes
    request_items = chunk.request_items
    started = session.retry.clock()
    attempt = 0
    while request_items:
        response = await session.call(
            "BatchGetItem", {"RequestItems": request_items}, idempotent=True, raw_binary=raw_binary
        )
        for table, items in response.get("Responses", {}).items():
            attributes = key_attributes[table]
            for item in items:
                found[identity_of(table, attributes, item)] = item
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


@dataclass(slots=True, frozen=True)
class _PutPlan:
    """What the puts of one model in one batch share."""

    table: str
    name: str  # the model's, for errors
    key_names: tuple[str, ...]
    bounded: frozenset[str]  # attributes whose nesting the size check need not walk
    updated_at: tuple[str, str] | None  # the UpdatedAt attribute and field, set on each put
    hooks: bool  # the model has hooks


@dataclass(slots=True)
class _Queued:
    kind: str  # "put" or "delete"
    model: type[Model]
    target: Any  # the instance, or the key for delete_key
    request: dict[str, Any]
    table: str
    fingerprint: str
    size: int
    key_names: Sequence[str]
    apply: Callable[[], None] | None = None
    event: hooks.Event | None = None
    deferred: bool = False  # async before-hooks still to run (just before sending)


class Room:
    """What ``batch.put``/``delete``/``delete_key`` return: awaiting it waits until the
    batch has room (fewer than 16 requests queued or in flight); not awaiting it is fine
    for a few items."""

    __slots__ = ("_batch",)

    def __init__(self, batch: BatchWriter) -> None:
        # A weak reference: the batch holds its Room, and a strong one both ways would
        # leave every finished batch to the cyclic collector.
        self._batch = weakref.ref(batch)

    def __await__(self) -> Generator[Any, None, None]:
        batch = self._batch()
        if batch is None:  # the batch is gone: there is nothing to wait for
            return asyncio.sleep(0).__await__()
        return batch._wait_for_room().__await__()


@dataclass(eq=False)
class _Request:
    """One BatchWriteItem request of up to 25 entries, sent by its own task."""

    entries: dict[str, _Queued]  # by fingerprint; written ones leave it as they land
    keys: list[str]
    deferred: bool  # some entries may have async before-hooks still to run
    hooked: bool  # some entries may be of a model with hooks
    task: asyncio.Task[None] | None = None
    started: bool = False  # True once it may have reached DynamoDB
    # How many keys of ``BatchWriter._holding`` name this request (-1: unknown, after
    # _abandon cleared them): when that is all of them, answering it clears them at once.
    held: int = 0


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
        # Whether an entry of the buffer may have async before-hooks still to run, or be
        # of a model with hooks: kept until the buffer is sent whole, so a replaced entry
        # can only leave them set (which costs a look at each entry, nothing more).
        self._deferred = False
        self._hooked = False
        # Requests sent and not yet answered, and the last of them that holds each key:
        # a request leaves both when it is answered (so work per request stays constant
        # however many are queued).
        self._inflight: set[_Request] = set()
        self._holding: dict[str, _Request] = {}
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self.written = 0
        self.written_items: list[tuple[str, Any]] | None = [] if keep_written else None
        self.failed: list[tuple[str, Any]] = []
        self._errors: list[BaseException] = []
        self._room = Room(self)  # stateless: one serves every call
        self._plans: dict[type[Model], _PutPlan] = {}

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
        plan = self._plans.get(model)
        if plan is None:
            plan = self._plan(model)
        if instance._dm_partial:
            raise UsageError(
                f"batch put {model.__name__}: a partially loaded instance cannot be put whole"
            )
        deferred = False
        if plan.hooks:
            # Sync before-hooks run first: they may change what is encoded.
            self._hooked = True
            deferred = _before_hooks(instance, "save")
        entry = self._put_entry(instance, plan)
        if deferred:
            entry.deferred = self._deferred = True
        self._add(entry)
        return self._room

    def _plan(self, model: type[Model]) -> _PutPlan:
        """What every put of ``model`` in this batch shares, checked once."""
        self._check_model(model, "put")
        schema = model.__dm_schema__
        codec = model.__dm_codec__
        plan = _PutPlan(
            self.session.names.of(model),
            model.__name__,
            _table_key(model),
            codec.bounded,
            (
                (codec.by_name[schema.updated_at].attribute, schema.updated_at)
                if schema.updated_at
                else None
            ),
            bool(model.__dm_hooks__),
        )
        self._plans[model] = plan
        return plan

    def _put_entry(self, instance: Model, plan: _PutPlan) -> _Queued:
        item = encode_for_put(instance, "batch put")
        apply = None
        if plan.updated_at is not None:
            attribute, field = plan.updated_at
            now = utcnow()
            item[attribute] = {"S": format_datetime(now)}

            def apply() -> None:
                instance.__dict__[field] = now

        # From here on the item is only read: it carries the JSON it is sent as.
        item, size = sized_item(item, plan.name, "batch put", plan.bounded)
        return _Queued(
            "put",
            type(instance),
            instance,
            {"PutRequest": {"Item": item}},
            plan.table,
            identity_of(plan.table, plan.key_names, item),
            size,
            plan.key_names,
            apply,
            "save",
        )

    def delete(self, instance: Model) -> Room:
        """Delete the item of this instance (awaitable, as ``put``)."""
        model = type(instance)
        self._check_model(model, "delete")
        deferred = _before_hooks(instance, "delete")
        self._delete(model, keys.from_instance(instance), instance, "delete", deferred)
        return self._room

    def delete_key(self, model: type[Model], key: Any) -> Room:
        """Delete by key: a hash value or a ``(hash, range)`` tuple (awaitable, as ``put``)."""
        self._check_model(model, "delete")
        if hooks.has(model, "before", "delete") or hooks.has(model, "after", "delete"):
            raise UsageError(
                f"batch delete_key {model.__name__}: the model has delete hooks, which need "
                "the instance; use batch.delete(instance)"
            )
        self._delete(model, keys.from_any(model, key), key, None)
        return self._room

    def _delete(
        self,
        model: type[Model],
        key: Item,
        target: Any,
        event: hooks.Event | None,
        deferred: bool = False,
    ) -> None:
        table = self.session.names.of(model)
        if model.__dm_hooks__:
            self._hooked = True
        if deferred:
            self._deferred = True
        self._add(
            _Queued(
                "delete",
                model,
                target,
                {"DeleteRequest": {"Key": key}},
                table,
                item_identity(table, key),
                0,
                _table_key(model),
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
        """Buffer an entry: the last operation on a key wins (and goes last)."""
        buffer = self._buffer
        fingerprint = entry.fingerprint
        if fingerprint in buffer:
            del buffer[fingerprint]
        buffer[fingerprint] = entry
        if len(buffer) >= MAX_WRITES:
            self._flush()

    def _flush(self) -> None:
        holding = self._holding
        while self._buffer:
            chunk: dict[str, _Queued]
            if len(self._buffer) <= MAX_WRITES and MAX_WRITES * MAX_ITEM_SIZE <= MAX_WRITE_BYTES:
                # The whole buffer is one request (the usual case): no entry is over
                # MAX_ITEM_SIZE (sized_item refuses them), so MAX_WRITES fit the limit.
                chunk, self._buffer = self._buffer, {}
                deferred, hooked = self._deferred, self._hooked
                self._deferred = self._hooked = False
            else:
                chunk = {}
                size = 0
                deferred = hooked = False
                for fingerprint, entry in self._buffer.items():
                    if len(chunk) == MAX_WRITES or size + entry.size > MAX_WRITE_BYTES:
                        break
                    chunk[fingerprint] = entry
                    size += entry.size
                    deferred = deferred or entry.deferred
                    hooked = hooked or bool(entry.model.__dm_hooks__)
                if len(chunk) == len(self._buffer):
                    self._buffer = {}
                    self._deferred = self._hooked = False
                else:
                    for fingerprint in chunk:
                        del self._buffer[fingerprint]
            request = _Request(chunk, list(chunk), deferred, hooked)
            # A key still in flight is written again only after that request is answered
            # (which itself waited for the one before), so the last operation on it wins.
            before: set[asyncio.Task[None]] = set()
            if holding:
                for fingerprint in holding.keys() & chunk.keys():
                    holder = holding[fingerprint]
                    holder.held -= 1
                    if holder.task is not None:
                        before.add(holder.task)
            holding.update(dict.fromkeys(chunk, request))
            request.held = len(chunk)
            request.task = asyncio.get_running_loop().create_task(self._send(request, before))
            self._inflight.add(request)
            if len(self._buffer) < MAX_WRITES:
                return

    async def _send(self, request: _Request, before: set[asyncio.Task[None]]) -> None:
        try:
            if before:
                # wait(), not gather(): cancelling this request must not cancel the earlier
                # ones, which may be in flight.
                await asyncio.wait(before)
            pending = request.entries
            async with self._limit:
                request.started = True
                try:
                    if request.deferred:
                        for fingerprint, entry in list(pending.items()):
                            if entry.deferred:
                                await hooks.run(entry.target, "before", entry.event or "save")
                                if entry.kind == "put":
                                    pending[fingerprint] = self._put_entry(
                                        entry.target, self._plans[entry.model]
                                    )
                                entry.deferred = False
                    await self._write_chunk(pending, request.hooked)
                except Exception as error:  # reported on exit with the items it concerns
                    self._errors.append(error)
                    self.failed.extend((e.kind, e.target) for e in pending.values())
        finally:
            self._inflight.discard(request)
            holding = self._holding
            if request.held == len(holding):
                holding.clear()  # every key held is this request's
            else:
                for fingerprint in request.keys:
                    if holding.get(fingerprint) is request:
                        del holding[fingerprint]

    async def _write_chunk(self, pending: dict[str, _Queued], hooked: bool = True) -> None:
        """Write until nothing is pending; written entries leave ``pending`` as they land.
        ``hooked`` False: no entry is of a model with hooks."""
        session = self.session
        started = session.retry.clock()
        attempt = 0
        while pending:
            request_items: dict[str, list[dict[str, Any]]] = {}
            table = None
            requests: list[dict[str, Any]] = []
            for entry in pending.values():
                # Entries of one model share their table's str: one look-up per run.
                if entry.table is not table:
                    table = entry.table
                    found = request_items.get(table)
                    if found is None:
                        found = request_items[table] = []
                    requests = found
                requests.append(entry.request)
            response = await session.call(
                "BatchWriteItem",
                {"RequestItems": request_items},
                idempotent=True,
                rate_limit=self.rate_limit,
            )
            unprocessed = response.get("UnprocessedItems")
            if unprocessed:
                left = _identities(unprocessed, pending)
                landed = [f for f in pending if f not in left]
            elif not hooked:
                # All landed and no hooks to run: nothing can look at the record between
                # two entries (apply only sets a field), so it is updated at once.
                for entry in pending.values():
                    if entry.apply is not None:
                        entry.apply()
                self.written += len(pending)
                if self.written_items is not None:
                    self.written_items.extend((e.kind, e.target) for e in pending.values())
                pending.clear()
                return
            else:
                landed = list(pending)
            for fingerprint in landed:
                entry = pending.pop(fingerprint)
                if entry.apply is not None:
                    entry.apply()
                self.written += 1
                if self.written_items is not None:
                    self.written_items.append((entry.kind, entry.target))
                if (
                    entry.event
                    and entry.model.__dm_hooks__
                    and hooks.has(entry.target, "after", entry.event)
                ):
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
            # wait(), not gather(): a cancelled caller leaves the requests in flight to
            # __aexit__, which waits for those that may have reached DynamoDB, so that the
            # record is exact. (Requests report their errors on the batch, not by raising;
            # answered ones leave _inflight themselves.)
            await asyncio.wait(tasks)

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
        requests, self._inflight = self._inflight, set()
        self._holding.clear()
        tasks = []
        for request in requests:
            request.held = -1
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


def _identities(unprocessed: dict[str, list[dict[str, Any]]], sent: dict[str, _Queued]) -> set[str]:
    """The fingerprints of the writes that DynamoDB left unprocessed."""
    key_names = {entry.table: entry.key_names for entry in sent.values()}
    left: set[str] = set()
    for table, requests in unprocessed.items():
        for request in requests:
            if "DeleteRequest" in request:
                left.add(item_identity(table, request["DeleteRequest"]["Key"]))
            else:
                left.add(identity_of(table, key_names[table], request["PutRequest"]["Item"]))
    return left


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
