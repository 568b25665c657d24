"""Soak: a mixed workload through the fault proxy, then every write checked against a ledger.

The proxy throttles 10% of requests and drops 1% of connections before forwarding and 1%
after (the write happened, its answer is lost). Workers create, read, update with
conditions, save with versions, delete, page through queries, batch-write, batch-read
and commit transactions, and note in a ledger every acknowledged write with its value,
every definite failure and every ``OutcomeUnknown``. At the end, consistent reads
straight from the server (not through the proxy) must find every acknowledged write
with its last value, nothing a definite failure would have changed, each
``OutcomeUnknown`` write whole or not at all (a transaction on every item or on none),
versions without gaps, no item the ledger does not know, the process's open sockets
back to where they were, and its memory steady once the first tenth of the run has
warmed up connection pools and buffers.

The test command runs 5,000 operations at concurrency 32; ``DYNAMODM_SOAK=full`` runs
50,000 at concurrency 64. Either way the figures are printed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import string
import subprocess
import sys
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from faultproxy import FaultProxy
from servers import answers_http, free_port

import dynamodm as dm

FULL = os.environ.get("DYNAMODM_SOAK", "").lower() == "full"
OPERATIONS = 50_000 if FULL else 5_000
CONCURRENCY = 64 if FULL else 32
TIME_LIMIT = 1200.0 if FULL else 90.0  # no operation starts after this many seconds
OPERATION_TIMEOUT = 60.0  # one operation, retries included
SEED = 20251208
THROTTLE, DROP_BEFORE, DROP_AFTER = 0.10, 0.01, 0.01
ACCOUNTS_PER_WORKER = 10  # live accounts a worker keeps (creates and deletes keep it near)
EVENT_SLOTS = 40  # range key values per worker partition
COUNTERS = 8  # items every worker increments: the contended ones
SOCKET_SLACK = 2
MEMORY_SLACK = 20 * 1024 * 1024  # growth after the first tenth of the run (the warm-up)

REG = dm.Registry("soak-tests")


class Account(dm.Model):
    """Private to one worker: every write on it is ordered, so the ledger is exact."""

    class Meta:
        table = "soak-accounts"
        registry = REG

    id: Annotated[str, dm.HashKey]
    owner: str
    balance: int = 0
    note: str = ""
    status: Literal["open", "frozen"] = "open"
    version: Annotated[int, dm.Version] = 0


class Counter(dm.Model):
    """Shared by every worker: read, then incremented under its version."""

    class Meta:
        table = "soak-counters"
        registry = REG

    id: Annotated[str, dm.HashKey]
    hits: int = 0
    version: Annotated[int, dm.Version] = 0


class Event(dm.Model):
    """One partition per worker, written in batches and read in pages."""

    class Meta:
        table = "soak-events"
        registry = REG

    pk: Annotated[str, dm.HashKey]
    sk: Annotated[int, dm.RangeKey]
    payload: str = ""
    amount: int = 0


Snapshot = tuple[Any, ...] | None  # the values the ledger compares; None: no item
Key = tuple[str, str]  # ("account", id) or ("event", "pk/sk")


def account_snapshot(account: Account) -> Snapshot:
    return (account.owner, account.balance, account.note, account.status, account.version)


def event_snapshot(event: Event) -> Snapshot:
    return (event.payload, event.amount)


def event_key(pk: str, sk: int) -> Key:
    return ("event", f"{pk}/{sk}")


# ---------------------------------------------------------------- the ledger


@dataclass
class Unknown:
    """One OutcomeUnknown: the items it wrote, each with its value before and after."""

    operation: str
    changes: list[tuple[Key, Snapshot, Snapshot]]
    certain_before: bool


@dataclass
class CounterLog:
    acknowledged: list[int] = field(default_factory=list)  # versions acknowledged
    unknown: int = 0
    conflicts: int = 0


@dataclass
class Ledger:
    # What each item may hold: one value when certain; after an OutcomeUnknown, the
    # value before and the value after.
    expected: dict[Key, list[Snapshot]] = field(default_factory=dict)
    origin: dict[Key, str] = field(default_factory=dict)  # the last write: "ack", "unknown"
    last_unknown: dict[Key, int] = field(default_factory=dict)
    unknowns: list[Unknown] = field(default_factory=list)
    counters: dict[str, CounterLog] = field(default_factory=dict)
    figures: Tally[str] = field(default_factory=Tally)
    problems: list[str] = field(default_factory=list)

    def current(self, key: Key) -> Snapshot:
        candidates = self.expected.get(key, [None])
        assert len(candidates) == 1, f"{key} is uncertain; workers leave such items alone"
        return candidates[0]

    def acknowledged(self, key: Key, value: Snapshot) -> None:
        self.expected[key] = [value]
        self.origin[key] = "ack"
        self.figures["item writes acknowledged"] += 1

    def failed(self, key: Key) -> None:
        """A definite failure: the item must still hold what it held."""
        self.expected.setdefault(key, [None])
        self.figures["item writes failed"] += 1

    def unknown(self, operation: str, changes: list[tuple[Key, Snapshot]]) -> None:
        """An OutcomeUnknown: each item holds its value before or after, all the same way."""
        recorded: list[tuple[Key, Snapshot, Snapshot]] = []
        certain = True
        for key, value in changes:
            candidates = self.expected.setdefault(key, [None])
            certain = certain and len(candidates) == 1
            recorded.append((key, candidates[0], value))
            if value not in candidates:
                candidates.append(value)
            self.origin[key] = "unknown"
            self.last_unknown[key] = len(self.unknowns)
            self.figures["item writes outcome-unknown"] += 1
        self.unknowns.append(Unknown(operation, recorded, certain))

    def problem(self, text: str) -> None:
        self.problems.append(text)


# ---------------------------------------------------------------- the workload


class Worker:
    def __init__(self, number: int, session: dm.Session, ledger: Ledger) -> None:
        self.number = number
        self.name = f"w{number:02d}"
        self.session = session
        self.ledger = ledger
        self.random = random.Random(SEED * 1000 + number)
        self.accounts: dict[str, Account] = {}  # live and certain
        self.created = 0

    def text(self) -> str:
        alphabet = string.ascii_letters + "#:.[ \u00e9\u2603"
        return "".join(self.random.choice(alphabet) for _ in range(self.random.randint(0, 24)))

    def pick(self) -> Callable[[], Awaitable[str]]:
        live = len(self.accounts)
        if live < 3:
            return self.create_account
        choices: list[tuple[Callable[[], Awaitable[str]], int]] = [
            (self.get_account, 14),
            (self.update_account, 14),
            (self.save_account, 14),
            (self.hit_counter, 8),
            (self.page_events, 10),
            (self.batch_write_events, 12),
            (self.batch_get_events, 6),
            (self.transfer, 10),
        ]
        if live < ACCOUNTS_PER_WORKER:
            choices.append((self.create_account, 8))
        if live > 4:
            choices.append((self.delete_account, 4))
        operations, weights = zip(*choices, strict=True)
        return self.random.choices(operations, weights)[0]

    def any_account(self) -> Account:
        return self.accounts[self.random.choice(sorted(self.accounts))]

    def retire(self, *accounts: Account) -> None:
        """An account whose state is uncertain is left alone until the final check."""
        for account in accounts:
            self.accounts.pop(account.id, None)

    # -- accounts

    async def create_account(self) -> str:
        self.created += 1
        values = {
            "id": f"{self.name}-a{self.created:05d}",
            "owner": self.name,
            "balance": self.random.randint(0, 1000),
            "note": self.text(),
        }
        key: Key = ("account", values["id"])
        after = (values["owner"], values["balance"], values["note"], "open", 1)
        try:
            account = await Account.create(session=self.session, **values)
        except dm.OutcomeUnknown:
            self.ledger.unknown("create", [(key, after)])
            return "unknown"
        if account_snapshot(account) != after:
            self.ledger.problem(f"create {key}: the instance holds {account_snapshot(account)}")
        self.ledger.acknowledged(key, account_snapshot(account))
        self.accounts[account.id] = account
        return "ack"

    async def get_account(self) -> str:
        account = self.any_account()
        key: Key = ("account", account.id)
        got = await Account.get(account.id, consistent=True, session=self.session)
        if account_snapshot(got) != self.ledger.current(key):
            self.ledger.problem(f"get {key}: read {account_snapshot(got)}")
        self.ledger.figures["reads verified"] += 1
        return "ack"

    async def update_account(self) -> str:
        account = self.any_account()
        key: Key = ("account", account.id)
        before = account_snapshot(account)
        change = self.random.randint(-50, 50)
        holds = self.random.random() >= 0.2
        floor = account.balance - self.random.randint(0, 50) if holds else account.balance + 1
        note = self.text()
        after = (account.owner, account.balance + change, note, account.status, account.version + 1)
        try:
            await account.update(
                dm.attr(Account.balance).add(change),
                condition=(Account.balance >= floor) & (Account.status == "open"),
                session=self.session,
                note=note,
            )
        except dm.ConditionFailed:
            if holds:
                self.ledger.problem(f"update {key}: a condition that held failed")
            if account_snapshot(account) != before:
                self.ledger.problem(f"update {key}: a failed update changed the instance")
            self.ledger.failed(key)
            return "failed"
        except dm.OutcomeUnknown:
            self.ledger.unknown("update", [(key, after)])
            self.retire(account)
            return "unknown"
        if not holds:
            self.ledger.problem(f"update {key}: a condition that did not hold passed")
        if account_snapshot(account) != after:
            self.ledger.problem(f"update {key}: ALL_NEW gave {account_snapshot(account)}")
        self.ledger.acknowledged(key, account_snapshot(account))
        return "ack"

    async def save_account(self) -> str:
        account = self.any_account()
        key: Key = ("account", account.id)
        copy = account.model_copy(deep=True)
        stale = account.version >= 2 and self.random.random() < 0.1
        if stale:
            copy.version = account.version - 1  # read before the last write: must conflict
        copy.balance = self.random.randint(0, 1000)
        copy.note = self.text()
        after = (copy.owner, copy.balance, copy.note, copy.status, account.version + 1)
        try:
            await copy.save(session=self.session)
        except dm.VersionConflict:
            if not stale:
                self.ledger.problem(f"save {key}: a current version conflicted")
            self.ledger.failed(key)
            return "failed"
        except dm.OutcomeUnknown:
            self.ledger.unknown("save", [(key, after)])
            self.retire(account)
            return "unknown"
        if stale:
            self.ledger.problem(f"save {key}: a stale version overwrote a newer one")
        if account_snapshot(copy) != after:
            self.ledger.problem(f"save {key}: the instance holds {account_snapshot(copy)}")
        self.ledger.acknowledged(key, account_snapshot(copy))
        self.accounts[copy.id] = copy
        return "ack"

    async def delete_account(self) -> str:
        account = self.any_account()
        key: Key = ("account", account.id)
        try:
            await account.delete(session=self.session)
        except dm.OutcomeUnknown:
            self.ledger.unknown("delete", [(key, None)])
            self.retire(account)
            return "unknown"
        self.ledger.acknowledged(key, None)
        self.retire(account)
        return "ack"

    async def transfer(self) -> str:
        """A transaction: two updates, and a create or a delete of a third account."""
        if len(self.accounts) < 2:
            return await self.create_account()
        payer, payee = (self.accounts[i] for i in self.random.sample(sorted(self.accounts), 2))
        amount = self.random.randint(1, 50)
        note = self.text()
        changes: list[tuple[Key, Snapshot]] = [
            (
                ("account", payer.id),
                (payer.owner, payer.balance - amount, note, payer.status, payer.version + 1),
            ),
            (
                ("account", payee.id),
                (payee.owner, payee.balance + amount, payee.note, payee.status, payee.version + 1),
            ),
        ]
        born: Account | None = None
        doomed: Account | None = None
        others = sorted(set(self.accounts) - {payer.id, payee.id})
        extra = self.random.random()
        if extra < 0.3 and len(self.accounts) < ACCOUNTS_PER_WORKER:
            self.created += 1
            born = Account(id=f"{self.name}-a{self.created:05d}", owner=self.name, balance=amount)
            changes.append((("account", born.id), (self.name, amount, "", "open", 1)))
        elif extra > 0.8 and others and len(self.accounts) > 4:
            doomed = self.accounts[self.random.choice(others)]
            changes.append((("account", doomed.id), None))
        try:
            async with dm.transaction(session=self.session) as tx:
                tx.update(payer, balance=payer.balance - amount, note=note)
                tx.update(payee, balance=payee.balance + amount)
                if born is not None:
                    tx.create(born)
                if doomed is not None:
                    tx.delete(doomed)
        except dm.TransactionCanceled as error:
            self.ledger.problem(f"transfer {self.name}: cancelled ({error})")
            for key, _ in changes:
                self.ledger.failed(key)
            return "failed"
        except dm.OutcomeUnknown:
            self.ledger.unknown("transaction", changes)
            self.retire(payer, payee, *(a for a in (born, doomed) if a is not None))
            return "unknown"
        for key, value in changes:
            self.ledger.acknowledged(key, value)
        for account in (payer, payee, born):
            if account is not None:
                if account_snapshot(account) != self.ledger.current(("account", account.id)):
                    self.ledger.problem(f"transfer {account.id}: the instance was not updated")
                self.accounts[account.id] = account
        if doomed is not None:
            self.retire(doomed)
        return "ack"

    # -- the contended counters

    async def hit_counter(self) -> str:
        name = f"c{self.random.randrange(COUNTERS)}"
        log = self.ledger.counters[name]
        counter = await Counter.get(name, consistent=True, session=self.session)
        try:
            await counter.update(dm.attr(Counter.hits).add(1), session=self.session)
        except dm.VersionConflict:
            log.conflicts += 1
            self.ledger.figures["item writes failed"] += 1
            return "failed"
        except dm.OutcomeUnknown:
            log.unknown += 1
            self.ledger.figures["item writes outcome-unknown"] += 1
            return "unknown"
        if counter.hits != counter.version - 1:
            self.ledger.problem(f"counter {name}: hits {counter.hits} at version {counter.version}")
        log.acknowledged.append(counter.version)
        self.ledger.figures["item writes acknowledged"] += 1
        return "ack"

    # -- events: batches and pages

    async def batch_write_events(self) -> str:
        intents: dict[int, Snapshot] = {}
        for _ in range(self.random.randint(1, 40)):
            slot = self.random.randrange(EVENT_SLOTS)
            if self.random.random() < 0.25:
                intents[slot] = None
            else:
                intents[slot] = (self.text(), self.random.randint(-(10**6), 10**6))
        try:
            async with dm.batch_write(session=self.session, keep_written=True) as batch:
                for slot, value in intents.items():
                    if value is None:
                        batch.delete_key(Event, (self.name, slot))
                    else:
                        batch.put(Event(pk=self.name, sk=slot, payload=value[0], amount=value[1]))
        except dm.BatchWriteError as error:
            uncertain = isinstance(error.__cause__, dm.OutcomeUnknown)
            self.note_batch(batch.written_items or [], intents)
            for _kind, target in error.items:
                slot = target.sk if isinstance(target, Event) else target[1]
                key = event_key(self.name, slot)
                if uncertain:
                    self.ledger.unknown("batch write", [(key, intents[slot])])
                else:
                    self.ledger.failed(key)
            return "unknown" if uncertain else "failed"
        self.note_batch(batch.written_items or [], intents)
        if batch.written != len(intents):
            self.ledger.problem(f"batch {self.name}: {batch.written} of {len(intents)}")
        return "ack"

    def note_batch(self, written: list[tuple[str, Any]], intents: dict[int, Snapshot]) -> None:
        for _kind, target in written:
            slot = target.sk if isinstance(target, Event) else target[1]
            self.ledger.acknowledged(event_key(self.name, slot), intents[slot])

    async def batch_get_events(self) -> str:
        slots = self.random.sample(range(EVENT_SLOTS), self.random.randint(1, 20))
        found = await Event.batch_get(
            [(self.name, slot) for slot in slots], consistent=True, session=self.session
        )
        got = {event.sk: event_snapshot(event) for event in found}
        for slot in slots:
            candidates = self.ledger.expected.get(event_key(self.name, slot), [None])
            if got.get(slot) not in candidates:
                self.ledger.problem(f"batch_get {self.name}/{slot}: read {got.get(slot)}")
        if [event.sk for event in found] != [s for s in slots if s in got]:
            self.ledger.problem(f"batch_get {self.name}: items out of the order asked")
        self.ledger.figures["reads verified"] += len(slots)
        return "ack"

    async def page_events(self) -> str:
        size = self.random.randint(3, 15)
        reverse = self.random.random() < 0.3
        low, high = 0, EVENT_SLOTS - 1
        condition = None
        if self.random.random() < 0.4:
            low = self.random.randrange(EVENT_SLOTS)
            high = self.random.randrange(low, EVENT_SLOTS)
            condition = dm.attr(Event.sk).between(low, high)
        query = Event.query(
            self.name, condition, consistent=True, reverse=reverse, session=self.session
        )
        items: list[Event] = []
        cursor: str | None = None
        for _ in range(EVENT_SLOTS + 2):
            page = await query.page(cursor=cursor, size=size)
            self.ledger.figures["pages read"] += 1
            items.extend(page.items)
            cursor = page.cursor
            if cursor is None:
                break
        else:
            self.ledger.problem(f"pages {self.name}: the cursor never ended")
        order = [event.sk for event in items]
        if order != sorted(set(order), reverse=reverse):
            self.ledger.problem(f"pages {self.name}: items repeated or out of order: {order}")
        got = {event.sk: event_snapshot(event) for event in items}
        for slot in range(low, high + 1):
            candidates = self.ledger.expected.get(event_key(self.name, slot), [None])
            if got.get(slot) not in candidates:
                self.ledger.problem(f"pages {self.name}/{slot}: read {got.get(slot)}")
        self.ledger.figures["reads verified"] += high - low + 1
        return "ack"


# ---------------------------------------------------------------- process figures


def open_sockets() -> int:
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(entry).startswith("socket:")
        except OSError:
            continue  # closed while listing
    return count


def resident_bytes() -> int:
    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


async def settled_sockets(limit: int) -> int:
    """Open sockets, once they fall to ``limit`` (closing ones take a moment) or after 5 s."""
    count = open_sockets()
    for _ in range(50):
        if count <= limit:
            break
        await asyncio.sleep(0.1)
        count = open_sockets()
    return count


async def drain_log(proxy: FaultProxy, actions: Tally[str], stop: asyncio.Event) -> None:
    """Count what the proxy did and forget its log, so the log's growth is not measured."""
    pending: list[Any] = []
    while True:
        fresh, proxy.log = proxy.log, []
        waiting = []
        for exchange in pending + fresh:
            if exchange.answered is not None or exchange.action in ("drop_before", "drop_after"):
                actions[exchange.action] += 1
            else:
                waiting.append(exchange)  # not answered yet: its action may still change
        pending = waiting
        if stop.is_set():
            actions.update(exchange.action for exchange in pending + proxy.log)
            proxy.log = []
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


# ---------------------------------------------------------------- the test


# moto runs in its own process, so that the memory measured is the client's, with two
# changes. Its handlers are not thread-safe, and its server runs one thread per request:
# a transaction deep-copies each table it touches while other requests change it (a
# 500), and restores that copy when it is cancelled, erasing writes made meanwhile.
# DynamoDB applies each request atomically; so does this moto, one request at a time.
# And moto keeps every object it ever made (for its dashboard), the deep copies of
# every transaction included: this one forgets them, or its memory grows without end.
MOTO = """
import sys, threading
from moto.core.common_models import BaseModel
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

lock = threading.Lock()
call_action = DynamoHandler.call_action

def one_at_a_time(self):
    with lock:
        return call_action(self)

DynamoHandler.call_action = one_at_a_time
BaseModel.__new__ = staticmethod(lambda cls, *args, **kwargs: object.__new__(cls))
main(["--host", "127.0.0.1", "--port", sys.argv[1]])
"""


@pytest.fixture
def moto_process() -> Iterator[str]:
    """A moto server in a child process on a free loopback port; its endpoint URL."""
    if "moto" not in os.environ.get("DYNAMODM_TEST_SERVERS", "moto"):
        pytest.skip("moto is not among DYNAMODM_TEST_SERVERS")
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("the soak counts open sockets and resident memory through /proc")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", MOTO, str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not answers_http(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto did not start on {url}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_mixed_workload_under_faults_loses_nothing(
    moto_process: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        FaultProxy(moto_process, seed=SEED) as fault_proxy,
        dm.connect(endpoint_url=moto_process, table_prefix="soak-") as db,
    ):
        await soak(db, fault_proxy, capsys)


async def soak(db: dm.Session, fault_proxy: FaultProxy, capsys: pytest.CaptureFixture[str]) -> None:
    await db.create_tables(Account, Counter, Event)
    ledger = Ledger()
    for number in range(COUNTERS):
        await Counter.create(id=f"c{number}", session=db)
        ledger.counters[f"c{number}"] = CounterLog()

    fault_proxy.add("throttle", rate=THROTTLE)
    fault_proxy.add("drop_before", rate=DROP_BEFORE / (1 - THROTTLE))
    fault_proxy.add("drop_after", rate=DROP_AFTER / (1 - THROTTLE - DROP_BEFORE))
    actions: Tally[str] = Tally()
    stop = asyncio.Event()
    drainer = asyncio.create_task(drain_log(fault_proxy, actions, stop))
    policy = dm.RetryPolicy(base_delay=0.002, max_delay=0.1, max_attempts=25, budget=30.0)
    sockets_before = open_sockets()
    memory_before = resident_bytes()

    started = time.monotonic()
    deadline = started + TIME_LIMIT
    outcomes: Tally[str] = Tally()
    attempted = 0
    memory_samples: list[int] = []

    async with dm.connect(
        endpoint_url=fault_proxy.endpoint_url,
        table_prefix=db.table_prefix,
        retry=policy,
        read_timeout=20.0,
        max_connections=CONCURRENCY,
    ) as session:
        workers = [Worker(number, session, ledger) for number in range(CONCURRENCY)]

        async def run(worker: Worker) -> None:
            nonlocal attempted
            while attempted < OPERATIONS and time.monotonic() < deadline:
                attempted += 1
                operation = worker.pick()
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    outcome = await operation()
                outcomes[outcome] += 1
                outcomes[f"{operation.__name__} {outcome}"] += 1
                if sum(outcomes[k] for k in ("ack", "failed", "unknown")) % (OPERATIONS // 10) == 0:
                    memory_samples.append(resident_bytes())  # every tenth of the run

        async with asyncio.TaskGroup() as group:
            for worker in workers:
                group.create_task(run(worker))
    elapsed = time.monotonic() - started
    stop.set()
    await drainer

    sockets_after = await settled_sockets(sockets_before + SOCKET_SLACK)
    memory_after = resident_bytes()

    # -- the final check, with consistent reads straight from the server
    stored_accounts = {
        ("account", a.id): account_snapshot(a)
        for a in await Account.scan(consistent=True, session=db).all()
    }
    stored_events = {
        event_key(e.pk, e.sk): event_snapshot(e)
        for e in await Event.scan(consistent=True, session=db).all()
    }
    stored = {**stored_accounts, **stored_events}
    verified = lost = 0
    for key, candidates in ledger.expected.items():
        final = stored.get(key)
        verified += 1
        if final not in candidates:
            ledger.problem(f"{key}: stored {final}, expected one of {candidates}")
            lost += ledger.origin.get(key) == "ack"
    for key in sorted(set(stored) - set(ledger.expected)):
        ledger.problem(f"{key}: stored {stored[key]}, but no write of it was attempted")

    applied = absent = 0
    for position, unknown in enumerate(ledger.unknowns):
        if not unknown.certain_before or any(
            ledger.origin[key] != "unknown" or ledger.last_unknown[key] != position
            for key, _, _ in unknown.changes
        ):
            continue  # an event written again since: the later write decides
        finals = [stored.get(key) for key, _, _ in unknown.changes]
        if finals == [after for _, _, after in unknown.changes]:
            applied += 1
        elif finals == [before for _, before, _ in unknown.changes]:
            absent += 1
        else:
            ledger.problem(f"{unknown.operation} {unknown.changes}: half applied ({finals})")

    for name, log in ledger.counters.items():
        counter = await Counter.get(name, consistent=True, session=db)
        verified += 1
        versions = sorted(log.acknowledged)
        if len(set(versions)) != len(versions):
            ledger.problem(f"counter {name}: one version acknowledged twice: {versions}")
        if counter.hits != counter.version - 1:
            ledger.problem(f"counter {name}: {counter.hits} hits at version {counter.version}")
        gaps = set(range(2, counter.version + 1)) - set(versions)
        if versions and max(versions) > counter.version:
            ledger.problem(f"counter {name}: version {max(versions)} acknowledged, now lower")
        if len(gaps) > log.unknown:
            ledger.problem(
                f"counter {name}: versions {sorted(gaps)} were written by no acknowledged "
                f"write and only {log.unknown} outcomes are unknown"
            )
        lost += max(0, len(versions) - (counter.version - 1))

    figures = ledger.figures
    unknown_operations = outcomes["unknown"]
    with capsys.disabled():
        print(
            f"\n[soak figures, moto] operations attempted={attempted} "
            f"acknowledged={outcomes['ack']} failed={outcomes['failed']} "
            f"outcome-unknown={unknown_operations} (applied={applied} absent={absent}) "
            f"verified={verified} lost={lost} problems={len(ledger.problems)}\n"
            f"  item writes acknowledged={figures['item writes acknowledged']} "
            f"failed={figures['item writes failed']} "
            f"outcome-unknown={figures['item writes outcome-unknown']}; "
            f"reads verified during the run={figures['reads verified']} "
            f"pages={figures['pages read']}\n"
            f"  requests={sum(actions.values())} throttled={actions['throttle']} "
            f"dropped before={actions['drop_before']} after={actions['drop_after']} "
            f"replayed={actions['replayed']}; concurrency={CONCURRENCY} "
            f"{elapsed:.1f} s ({attempted / elapsed:.0f} ops/s)\n"
            f"  sockets {sockets_before} -> {sockets_after}; "
            f"RSS {memory_before / 2**20:.1f} -> {memory_after / 2**20:.1f} MB, after the "
            f"first tenth: {(memory_after - memory_samples[0]) / 2**20:+.1f} MB "
            f"(each tenth: {', '.join(f'{m / 2**20:.1f}' for m in memory_samples)})\n"
            f"  by operation: "
            + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()) if " " in k)
        )

    assert attempted == OPERATIONS, f"only {attempted} operations started in {TIME_LIMIT:g} s"
    assert ledger.problems == [], "\n".join(ledger.problems[:30])
    assert lost == 0
    assert actions["throttle"] and actions["drop_before"] and actions["drop_after"]
    assert sockets_after <= sockets_before + SOCKET_SLACK, (sockets_before, sockets_after)
    # The first tenth fills connection pools, buffers and the ledger; a leak would go on
    # growing after it.
    assert memory_after - memory_samples[0] <= MEMORY_SLACK, (memory_samples, memory_after)


# ---------------------------------------------------------------- what the soak found


class Canned:
    """127.0.0.1:PORT answering every request with one fixed HTTP response."""

    def __init__(self, status: str, content_type: str, body: bytes) -> None:
        self.head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.body = body
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await asyncio.wait_for(reader.readexactly(length), 5)
            self.requests += 1
            writer.write(self.head + self.body)
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


ERROR_PAGE = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
QUICK = dm.RetryPolicy(base_delay=0.001, max_delay=0.01, max_attempts=3)


@pytest.mark.parametrize("transport", ["http", "botocore"])
async def test_an_html_error_page_is_a_server_error_not_a_crash(transport: str) -> None:
    """moto answered a 500 with an HTML page when a handler crashed; the fast transport
    raised orjson's JSONDecodeError instead of a 5xx the retry policy understands."""
    canned = Canned("500 Internal Server Error", "text/html", ERROR_PAGE)
    async with (
        canned as url,
        dm.connect(endpoint_url=url, retry=QUICK, transport=transport) as session,  # type: ignore[arg-type]
    ):
        with pytest.raises(dm.ServiceError) as caught:
            await Account.get("a-1", session=session)
        assert canned.requests == 3  # a read is retried
        assert "<html>" not in str(caught.value)
        canned.requests = 0
        with pytest.raises(dm.OutcomeUnknown):
            await Account.create(id="a-1", owner="o", session=session)
        assert canned.requests == 1  # a create is not: it may have happened


async def test_a_200_answer_that_is_not_json_is_never_taken_for_success() -> None:
    canned = Canned("200 OK", "text/html", b"<html>maintenance</html>")
    async with canned as url, dm.connect(endpoint_url=url, retry=QUICK) as session:
        with pytest.raises(dm.ConnectionFailed):
            await Account.get("a-1", session=session)
        with pytest.raises(dm.OutcomeUnknown):
            await Account.create(id="a-1", owner="o", session=session)
