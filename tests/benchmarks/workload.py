"""What every client of the benchmark stores, reads and is measured on.

One table, one partition (``pk = "bench"``), items of ~1 KB with 11 attributes:
strings, numbers (int and float), a bool, a list and a nested map. Every client
gets the same plain Python rows and keys and must send the same requests.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

TABLE = "dynamodm_bench"
PARTITION = "bench"
REGION = "us-east-1"
ACCESS_KEY = "bench"
SECRET_KEY = "bench"

Row = dict[str, Any]
Key = tuple[str, str]

_BIO = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. " * 12)[:700]


def sort_key(index: int) -> str:
    return f"item-{index:07d}"


def row(index: int, partition: str = PARTITION) -> Row:
    """The item number ``index`` as plain Python values (~1 KB stored)."""
    return {
        "pk": partition,
        "sk": sort_key(index),
        "name": f"Name {index}",
        "email": f"user{index}@example.com",
        "age": 20 + index % 60,
        "score": (index * 37 % 10_000) / 100,
        "active": index % 2 == 0,
        "tags": ["alpha", "beta", f"t{index % 10}"],
        "address": {
            "street": f"{index} Main Street",
            "city": "Springfield",
            "zip": f"{index % 100_000:05d}",
        },
        "visits": index,
        "bio": _BIO,
    }


def attribute_values(item: Row) -> dict[str, Any]:
    """The hand-built AttributeValues of a row, for the clients without a mapper."""
    address = item["address"]
    return {
        "pk": {"S": item["pk"]},
        "sk": {"S": item["sk"]},
        "name": {"S": item["name"]},
        "email": {"S": item["email"]},
        "age": {"N": str(item["age"])},
        "score": {"N": repr(item["score"])},
        "active": {"BOOL": item["active"]},
        "tags": {"L": [{"S": tag} for tag in item["tags"]]},
        "address": {
            "M": {
                "street": {"S": address["street"]},
                "city": {"S": address["city"]},
                "zip": {"S": address["zip"]},
            }
        },
        "visits": {"N": str(item["visits"])},
        "bio": {"S": item["bio"]},
    }


def key_values(key: Key) -> dict[str, Any]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}


# The update every client sends: one SET and one ADD, only on an existing item,
# answering the item as stored (dynamodm's update() and PynamoDB's do exactly this).
UPDATE_EXPRESSION = "SET #name = :name ADD #visits :one"
UPDATE_CONDITION = "attribute_exists(#pk)"
UPDATE_NAMES = {"#name": "name", "#visits": "visits", "#pk": "pk"}


def update_values(name: str) -> dict[str, Any]:
    return {":name": {"S": name}, ":one": {"N": "1"}}


TABLE_DEFINITION: dict[str, Any] = {
    "TableName": TABLE,
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


# ---------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does; every loop also stops at ``budget`` seconds."""

    table_items: int  # items in the table, all scanned by "scan"
    single_ops: int  # put, get, update at concurrency 1 (x2 at 16)
    query_pages: int  # 100-item query pages at concurrency 1 (x2 at 16)
    batch_items: int  # items per batch write / batch get measurement
    scaling: tuple[int, ...]  # query/scan sizes for the cost-per-item check
    memory_items: int  # items iterated by the memory check
    repetitions: int
    budget: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes(
    table_items=20_000,
    single_ops=300,
    query_pages=40,
    batch_items=1_000,
    scaling=(100, 1_000, 5_000, 20_000),
    memory_items=100_000,
    repetitions=5,
    budget=20.0,
)
QUICK = Sizes(
    table_items=5_000,
    single_ops=100,
    query_pages=15,
    batch_items=1_000,
    scaling=(100, 1_000, 5_000),
    memory_items=20_000,
    repetitions=3,
    budget=8.0,
)


# ---------------------------------------------------------------- measuring


@dataclass
class Measurement:
    """One measured loop: client-process CPU (every thread of it) and wall time."""

    ops: int
    items: int
    cpu: float
    wall: float

    def to_json(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "items": self.items,
            "cpu_us_per_op": 1e6 * self.cpu / self.ops if self.ops else None,
            "cpu_us_per_item": 1e6 * self.cpu / self.items if self.items else None,
            "ops_per_s": self.ops / self.wall if self.wall else None,
            "items_per_s": self.items / self.wall if self.wall else None,
        }


AsyncUnit = Callable[[int], Awaitable[int]]
SyncUnit = Callable[[int], int]


class Probe:
    """Started right before a measured loop and stopped right after it (a profiler)."""

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


def _start(probe: Probe | None) -> tuple[float, float]:
    gc.collect()
    if probe is not None:
        probe.start()
    return time.process_time(), time.perf_counter()


def _stop(ops: int, items: int, cpu: float, wall: float, probe: Probe | None) -> Measurement:
    measured = Measurement(ops, items, time.process_time() - cpu, time.perf_counter() - wall)
    if probe is not None:
        probe.stop()
    return measured


async def measure_async(
    unit: AsyncUnit,
    count: int,
    concurrency: int,
    budget: float,
    warmup: int = 0,
    probe: Probe | None = None,
) -> Measurement:
    """Run ``unit(n)`` for n in 0..count-1 with ``concurrency`` tasks; each call returns
    how many items it handled. Stops early (counting what ran) after ``budget`` s."""
    if warmup:
        await _run_async(unit, warmup, min(concurrency, warmup), budget, offset=count)
    cpu, wall = _start(probe)
    ops, items = await _run_async(unit, count, concurrency, budget)
    return _stop(ops, items, cpu, wall, probe)


async def _run_async(
    unit: AsyncUnit, count: int, concurrency: int, budget: float, offset: int = 0
) -> tuple[int, int]:
    numbers = iter(range(offset, offset + count))
    deadline = time.perf_counter() + budget
    totals = [0, 0]

    async def worker() -> None:
        for number in numbers:
            handled = await unit(number)  # awaited before the sum: tasks interleave
            totals[0] += 1
            totals[1] += handled
            if time.perf_counter() > deadline:
                return

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return totals[0], totals[1]


def measure_threads(
    unit: SyncUnit,
    count: int,
    concurrency: int,
    budget: float,
    warmup: int = 0,
    probe: Probe | None = None,
) -> Measurement:
    """As ``measure_async`` for a blocking client: the calling thread alone at
    concurrency 1, else ``concurrency`` threads."""
    if warmup:
        _run_threads(unit, warmup, min(concurrency, warmup), budget, offset=count)
    cpu, wall = _start(probe)
    ops, items = _run_threads(unit, count, concurrency, budget)
    return _stop(ops, items, cpu, wall, probe)


def _run_threads(
    unit: SyncUnit, count: int, concurrency: int, budget: float, offset: int = 0
) -> tuple[int, int]:
    numbers = iter(range(offset, offset + count))
    lock = threading.Lock()
    deadline = time.perf_counter() + budget
    totals = [0, 0]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                handled = unit(number)
                with lock:
                    totals[0] += 1
                    totals[1] += handled
                if time.perf_counter() > deadline:
                    return
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    if concurrency == 1:
        worker()
    else:
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return totals[0], totals[1]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def cycle_keys(count: int, table_items: int, start: int = 0) -> list[Key]:
    """``count`` keys spread over the table, wrapping around."""
    step = max(1, table_items // max(count, 1))
    return [
        (PARTITION, sort_key((start + n * step) % table_items))
        for n in itertools.islice(itertools.count(), count)
    ]
