"""Cancelling the task that runs a ``batch_write`` block, at seeded random points, leaves a
precise record: every item in ``batch.written`` is stored with the content written, no
item reached the table without being reported, no key holds content other than its last
written one, and the note on the CancelledError counts what was not written.

The proxy throttles and splits batches, so that cancellation finds requests waiting,
in flight, and half answered."""

from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Annotated, Any

import pytest
from faultproxy import FaultProxy
from servers import ServerHandle

import dynamodm as dm

REG = dm.Registry("cancellation-tests")
SEED = 20251208
TRIALS = 16
KEYS = 100  # fresh keys per trial; the first REWRITTEN are written twice
REWRITTEN = 40
DELETED = 10  # items stored before the batch and deleted by it
NOTE = re.compile(
    r"dynamodm: batch_write wrote (\d+) items before the error(?:, (\d+) failed)?; "
    r"(\d+) items not yet sent were not written"
)


class Slot(dm.Model):
    class Meta:
        table = "slots"
        registry = REG

    id: Annotated[str, dm.HashKey]
    content: str = ""


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session, fault_proxy: FaultProxy) -> None:
    await db.create_tables(Slot)
    fault_proxy.key_schema[db.table_name(Slot)] = ("id",)


def plan(trial: int) -> list[tuple[str, str, str | None]]:
    """(kind, id, content) in the order given to the batch: puts of fresh keys, deletes of
    stored items, and later puts of the first keys again with other content (a later
    request, which waits for the first one: the last written wins)."""
    ops: list[tuple[str, str, str | None]] = []
    for n in range(KEYS):
        ops.append(("put", f"t{trial}-k{n:03d}", f"first #{n} :v0 \u2603"))
        if n % (KEYS // DELETED) == 0:
            ops.append(("delete", f"t{trial}-old{n:03d}", None))
    ops.extend(("put", f"t{trial}-k{n:03d}", f"second #{n}") for n in range(REWRITTEN))
    return ops


async def stored(db: dm.Session, trial: int) -> dict[str, str]:
    items = await Slot.scan(filter=Slot.id.begins_with(f"t{trial}-"), consistent=True).all()
    return {item.id: item.content for item in items}


async def run_trial(
    db: dm.Session, proxied: dm.Session, proxy: FaultProxy, trial: int, rng: random.Random
) -> dict[str, Any]:
    ops = plan(trial)
    for kind, key, _ in ops:
        if kind == "delete":
            await Slot(id=key, content="stored before").save(session=db)
    before = await stored(db, trial)
    proxy.log.clear()

    record: dict[str, Any] = {"added": 0, "notes": []}
    batches: list[dm.BatchWriter] = []
    body_done = asyncio.Event()
    reached = asyncio.Event()

    async def block() -> None:
        try:
            async with dm.batch_write(session=proxied, keep_written=True) as batch:
                batches.append(batch)
                for kind, key, content in ops:
                    if kind == "put":
                        batch.put(Slot(id=key, content=content or ""))
                    else:
                        batch.delete_key(Slot, key)
                    record["added"] += 1
                    if record["added"] == record.get("target"):
                        reached.set()
                    await asyncio.sleep(0)  # requests leave while the block goes on
                body_done.set()
        except asyncio.CancelledError as error:
            record["notes"] = list(getattr(error, "__notes__", []))
            raise

    task = asyncio.ensure_future(block())
    mode = rng.choice(["body", "exit", "time"])
    if mode == "time":
        await asyncio.sleep(rng.uniform(0, 0.1))
    else:
        # body: once the block has given the batch a random number of entries;
        # exit: a random number of loop turns after the block's last statement.
        target = reached if mode == "body" else body_done
        record["target"] = rng.randrange(1, len(ops))
        waiter = asyncio.ensure_future(target.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for _ in range(0 if mode == "body" else rng.randrange(60)):
            await asyncio.sleep(0)
    record["cancelled in"] = "exit" if body_done.is_set() else "body"
    task.cancel()
    try:
        await asyncio.wait_for(task, 30)
        record["cancelled in"] = "nothing (finished first)"
    except asyncio.CancelledError:
        assert task.cancelled()

    batch = batches[0]
    after = await stored(db, trial)
    landed = {(kind, json.loads(key)["id"]["S"]) for _, kind, key in proxy.landed_writes()}
    record.update(mode=mode, before=before, after=after, batch=batch, ops=ops, landed=landed)
    return record


def identity(kind: str, target: Any) -> tuple[str, str, str | None]:
    return (kind, target.id, target.content) if kind == "put" else (kind, target, None)


def check(record: dict[str, Any]) -> list[str]:
    """What is wrong with the record a cancelled batch left; empty when it is precise."""
    problems: list[str] = []
    batch: dm.BatchWriter = record["batch"]
    before: dict[str, str] = record["before"]
    after: dict[str, str] = record["after"]
    finished = record["cancelled in"].startswith("nothing")

    # What each key must hold: its last written content, else what it held before.
    expected = dict(before)
    for kind, target in batch.written_items or []:
        if kind == "put":
            expected[target.id] = target.content
        else:
            expected.pop(target, None)
    if after != expected:
        wrong = sorted(k for k in set(after) | set(expected) if after.get(k) != expected.get(k))
        problems.append(f"{len(wrong)} keys differ from the record, e.g. {wrong[:3]}")

    written = [identity(kind, target) for kind, target in batch.written_items or []]
    if len(set(written)) != len(written):
        problems.append("an entry is reported written twice")
    failed = {identity(kind, target) for kind, target in batch.failed}
    reported = {(kind, key) for kind, key, _ in [*written, *failed]}
    unreported = {(kind.lower(), key) for kind, key in record["landed"]} - reported
    if unreported:
        problems.append(f"{len(unreported)} writes reached the server unreported: {unreported}")
    if finished:
        if len(written) != len(record["ops"]) or batch.failed:
            problems.append(f"finished, but wrote {len(written)} of {len(record['ops'])}")
        return problems

    notes = [n for n in record["notes"] if n.startswith("dynamodm:")]
    match = NOTE.fullmatch(notes[0]) if len(notes) == 1 else None
    if match is None:
        problems.append(f"no note says what was not written: {record['notes']}")
        return problems
    counted, lost, dropped = int(match[1]), int(match[2] or 0), int(match[3])
    if counted != len(written) or lost != len(batch.failed):
        problems.append(f"the note says {match[0]!r}; written={len(written)}")
    if counted + lost + dropped != record["added"]:
        problems.append(f"the note accounts for {counted + lost + dropped} of {record['added']}")
    return problems


async def test_a_cancelled_batch_write_leaves_a_precise_record(
    db: dm.Session,
    proxied: dm.Session,
    fault_proxy: FaultProxy,
    server: ServerHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fault_proxy.add("throttle", "BatchWriteItem", rate=0.3)
    fault_proxy.add("unprocessed", "BatchWriteItem", rate=0.3)
    rng = random.Random(SEED)
    problems: dict[int, list[str]] = {}
    phases: dict[str, int] = {}
    for trial in range(TRIALS):
        record = await run_trial(db, proxied, fault_proxy, trial, rng)
        phases[record["cancelled in"]] = phases.get(record["cancelled in"], 0) + 1
        found = check(record)
        if found:
            problems[trial] = [f"{record['mode']}/{record['cancelled in']}", *found]
    with capsys.disabled():
        print(f"\n[cancellation, {server.name}] {TRIALS} trials, cancelled in: {phases}")
    assert problems == {}, "\n".join(
        f"trial {trial} ({found[0]}): " + "; ".join(p[:150] for p in found[1:])
        for trial, found in problems.items()
    )
    assert phases.get("body") and phases.get("exit")
