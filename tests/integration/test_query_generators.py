"""Reads that stop early close what they opened.

A query or scan reads pages through async generators. When it stops before the last
page (a limit, first(), count() at its limit, page(), a loop that breaks), each
generator it opened must be closed by the read itself. Left open, Python hands it to
the event loop's finalizer, which closes it later in a task of its own: one more task
per read, and the last page (up to 1 MB of items) kept alive until that task runs.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import Annotated, Any

import pytest

import dynamodm as dm
import dynamodm.query as query_module

REG = dm.Registry("query-generator-tests")


class Entry(dm.Model):
    class Meta:
        table = "entries"
        registry = REG
        indexes = (dm.GlobalIndex("ByKind", hash_key="kind", range_key="n"),)

    owner: Annotated[str, dm.HashKey]
    n: Annotated[int, dm.RangeKey]
    kind: str = "k"


@pytest.fixture
async def entries(db: dm.Session) -> None:
    await db.create_tables(Entry)
    async with dm.batch_write() as batch:
        for n in range(12):
            batch.put(Entry(owner="o", n=n))


@contextmanager
def left_open() -> Iterator[list[str]]:
    """The library's async generators that reach the event loop's finalizer unclosed.

    Set inside the test itself: each run of the loop (a fixture's, the test's) installs
    asyncio's hooks anew and restores the previous ones when it ends."""
    firstiter, finalizer = sys.get_asyncgen_hooks()
    assert finalizer is not None  # asyncio's, installed by the running loop
    found: list[str] = []

    def watch(agen: Any) -> None:
        if "dynamodm" in agen.ag_code.co_filename:
            found.append(agen.ag_code.co_qualname)
        finalizer(agen)

    sys.set_asyncgen_hooks(firstiter, watch)
    try:
        yield found
    finally:
        sys.set_asyncgen_hooks(firstiter, finalizer)


async def _loop_limited() -> Any:
    return [entry async for entry in Entry.query("o", limit=3)]


async def _loop_broken_closed() -> Any:
    # The documented way to stop an iteration early without leaving it open.
    async with aclosing(aiter(Entry.query("o"))) as entries:
        async for entry in entries:
            if entry.n == 4:
                return entry.n
    return None


READS: dict[str, Callable[[], Awaitable[Any]]] = {
    "query limit all": lambda: Entry.query("o", limit=3).all(),
    "query limit loop": _loop_limited,
    "query first": lambda: Entry.query("o").first(),
    "query first skip": lambda: Entry.query("o", on_invalid="skip").first(),
    "query count limit": lambda: Entry.query("o", limit=2).count(),
    "query page": lambda: Entry.query("o").page(size=5),
    "index query limit": lambda: Entry.query("k", index="ByKind", limit=4).all(),
    "scan limit": lambda: Entry.scan(limit=5).all(),
    "parallel scan limit": lambda: Entry.scan(segments=3, limit=2).all(),
    "raw limit": lambda: _raw(Entry.query("o", limit=3)),
    "loop break, closed": _loop_broken_closed,
}


async def _raw(query: Any) -> list[Any]:
    return [item async for item in query.raw()]


@pytest.mark.usefixtures("entries")
@pytest.mark.parametrize("read", sorted(READS))
async def test_a_read_that_stops_early_closes_its_generators(db: dm.Session, read: str) -> None:
    with left_open() as found:
        result = await READS[read]()
        gc.collect()
    assert result is not None
    assert found == [], f"{read}: left open {found}"


async def _stop_parallel_scan_early(stop: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``stop`` (a parallel scan that stops before its segments are done) in a task;
    fail, rather than hang the suite, if it does not end."""
    task = asyncio.ensure_future(stop())
    done, _pending = await asyncio.wait({task}, timeout=10)
    if not done:
        for _attempt in range(50):  # the old code swallowed cancellations while it waited
            task.cancel()
            await asyncio.sleep(0.01)
            if task.done():
                break
        pytest.fail("the parallel scan did not end after it stopped early")
    return task.result()


async def _break_after_first(query: Any) -> Any:
    async with aclosing(aiter(query)) as entries:
        async for entry in entries:
            return entry
    return None


@pytest.mark.usefixtures("entries")
@pytest.mark.parametrize("how", ["limit", "break"])
async def test_a_parallel_scan_stopped_while_segments_wait_ends(
    db: dm.Session, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Segments blocked on a full queue when the consumer stops are cancelled and end:
    before, each one put its cancellation on the queue nobody read any more, and waited
    there for ever (the consumer with it)."""
    monkeypatch.setattr(query_module, "_SCAN_QUEUE", 1)  # one page read ahead at most
    if how == "limit":
        found = await _stop_parallel_scan_early(lambda: Entry.scan(segments=4, limit=1).all())
        assert len(found) == 1
    else:
        found = await _stop_parallel_scan_early(lambda: _break_after_first(Entry.scan(segments=4)))
        assert found is not None
    left = [  # all_tasks(): the tasks not done yet
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").endswith("_parallel_scan.<locals>.segment")
    ]
    assert left == []
