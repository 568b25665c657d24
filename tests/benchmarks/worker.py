"""Measure one client in a process of its own, and print the results as JSON.

Run by run.py, once per client and repetition, so that every client starts from a
fresh interpreter and its peak RSS is its own. ``--memory`` runs the memory check
instead (iterate a whole-table scan and sample the RSS as it goes), and ``--profile``
samples the stack of one measured loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from clients import CLIENTS, Client, Unsupported
from workload import (
    FULL,
    PARTITION,
    QUICK,
    Key,
    Measurement,
    Probe,
    Sizes,
    chunks,
    measure_async,
    measure_threads,
    row,
    sort_key,
)

OPERATIONS = ("put", "get", "update", "query", "batch_write", "batch_get", "scan")
CONCURRENCY = (1, 16)
QUERY_PAGE = 100
WRITE_CHUNK = 25
GET_CHUNK = 100
STRIDE = 7919  # a prime: consecutive op numbers address items spread over the table


def spread(number: int, table_items: int) -> int:
    return number * STRIDE % table_items


def key_of(number: int, table_items: int) -> Key:
    return (PARTITION, sort_key(spread(number, table_items)))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Runner:
    """Runs each operation of one client at one concurrency, bounded in count and time."""

    def __init__(
        self, client: Client, sizes: Sizes, probe: Probe | None = None, scans: int = 1
    ) -> None:
        self.client = client
        self.sizes = sizes
        self.probe = probe
        self.scans = scans

    def _call(self, operation: str) -> Callable[..., Any]:
        if self.client.blocking:
            return getattr(self.client, operation + "_sync")  # type: ignore[no-any-return]
        return getattr(self.client, operation)  # type: ignore[no-any-return]

    async def measure(
        self,
        operation: str,
        units: list[Any],
        handled: Callable[[Any, Any], int],
        concurrency: int,
        warmup: int,
    ) -> Measurement:
        """``units[n]`` are the arguments of call n; the first ``warmup`` are not measured."""
        call = self._call(operation)
        budget = self.sizes.budget
        measured = len(units) - warmup
        if self.client.blocking:

            def sync_unit(number: int) -> int:
                args = units[number - measured] if number >= measured else units[warmup + number]
                return handled(args, call(*args))

            return measure_threads(sync_unit, measured, concurrency, budget, warmup, self.probe)

        async def unit(number: int) -> int:
            args = units[number - measured] if number >= measured else units[warmup + number]
            return handled(args, await call(*args))

        return await measure_async(unit, measured, concurrency, budget, warmup, self.probe)

    async def operation(self, operation: str, concurrency: int) -> Measurement:
        sizes = self.sizes
        table = sizes.table_items
        single = sizes.single_ops * (1 if concurrency == 1 else 2)
        warm = 10 if concurrency == 1 else 32
        one: Callable[[Any, Any], int] = lambda _args, _result: 1  # noqa: E731
        units: list[tuple[Any, ...]]
        if operation == "put":
            base = 0 if concurrency == 1 else 50_000
            units = [(row(spread(base + n, table)),) for n in range(warm + single)]
            return await self.measure("put", units, one, concurrency, warm)
        if operation == "get":
            units = [(key_of(n, table),) for n in range(warm + single)]
            return await self.measure("get", units, one, concurrency, warm)
        if operation == "update":
            base = 0 if concurrency == 1 else single
            keys = [key_of(base + n, table) for n in range(warm + single)]
            await self._load(keys)
            units = [(key, f"Name {n} updated") for n, key in enumerate(keys)]
            return await self.measure("update", units, one, concurrency, warm)
        if operation == "query":
            pages = sizes.query_pages * (1 if concurrency == 1 else 2)
            warm = 2 if concurrency == 1 else 16
            units = [(QUERY_PAGE,)] * (warm + pages)
            return await self.measure("query", units, lambda _a, found: found, concurrency, warm)
        if operation == "batch_write":
            rows = [row(spread(n, table)) for n in range(2 * sizes.batch_items)]
            units = [(chunk,) for chunk in chunks(rows, WRITE_CHUNK)]
            warm = 1 if concurrency == 1 else 16
            units = units[:warm] + units
            return await self.measure(
                "batch_write", units, lambda args, _r: len(args[0]), concurrency, warm
            )
        if operation == "batch_get":
            keys = [key_of(n, table) for n in range(2 * sizes.batch_items)]
            units = [(chunk,) for chunk in chunks(keys, GET_CHUNK)]
            warm = 1 if concurrency == 1 else 16
            units = units[:warm] + units
            return await self.measure(
                "batch_get", units, lambda _a, found: found, concurrency, warm
            )
        if operation == "scan":
            units = [(concurrency, None)] * self.scans
            return await self.measure("scan", units, lambda _a, found: found, 1, 0)
        raise ValueError(operation)

    async def _load(self, keys: list[Key]) -> None:
        for chunk in chunks(keys, GET_CHUNK):
            if self.client.blocking:
                self.client.load_for_update_sync(chunk)  # type: ignore[attr-defined]
            else:
                await self.client.load_for_update(chunk)

    async def scaling(self) -> dict[str, dict[str, float]]:
        """CPU µs per item of query and scan at each size: flat means no quadratic path.
        Query is measured again with the cyclic GC paused, which separates the library's
        own cost from CPython's collections (they grow with the page size). A mapper's
        batch write and batch get take any number of items in one call: they are measured
        at each size too (the floor's calls are one request each, flat by construction)."""
        result: dict[str, dict[str, float]] = {"query": {}, "scan": {}, "query, GC paused": {}}
        batches = self.client.name.startswith("dynamodm")
        if batches:
            for name in ("batch write", "batch get"):
                result.update({name: {}, f"{name}, GC paused": {}})
        table = self.sizes.table_items
        found: Callable[[Any, Any], int] = lambda _a, n: n  # noqa: E731
        written: Callable[[Any, Any], int] = lambda args, _r: len(args[0])  # noqa: E731
        for size in self.sizes.scaling:
            if size > table:
                continue
            repeat = max(1, 2_000 // size)
            warm = 1 if size <= 1_000 else 0
            cells: list[tuple[str, str, tuple[Any, ...], Callable[[Any, Any], int]]] = [
                ("query", "query", (size,), found),
                ("scan", "scan", (1, size), found),
                ("query, GC paused", "query", (size,), found),
            ]
            if batches:
                rows = [row(spread(n, table)) for n in range(size)]
                keys = [key_of(n, table) for n in range(size)]
                for paused in ("", ", GC paused"):
                    cells += [
                        (f"batch write{paused}", "batch_write", (rows,), written),
                        (f"batch get{paused}", "batch_get", (keys,), found),
                    ]
            for name, operation, args, handled in cells:
                units = [args] * (repeat + warm)
                paused = name.endswith("paused")
                if paused:
                    gc.disable()
                try:
                    measured = await self.measure(operation, units, handled, 1, warm)
                finally:
                    gc.enable()
                result[name][str(size)] = measured.to_json()["cpu_us_per_item"]
        return result


async def run_client(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    client = CLIENTS[args.client]()
    await client.open(args.endpoint)
    output: dict[str, Any] = {
        "client": client.name,
        "results": {},
        "skipped": {},
        "seconds": {},
        "rss_after_open_mb": current_rss_mb(),
    }
    runner = Runner(client, sizes)
    try:
        operations = args.only.split(",") if args.only else OPERATIONS
        for operation in operations:
            for concurrency in CONCURRENCY:
                cell = f"{operation}@{concurrency}"
                started = time.perf_counter()
                try:
                    measured = await runner.operation(operation, concurrency)
                except Unsupported as reason:
                    output["skipped"][cell] = str(reason)
                    continue
                output["results"][cell] = measured.to_json()
                output["seconds"][cell] = round(time.perf_counter() - started, 2)
        # The peak of the operations: the cost-per-item cells after them hold up to
        # 20,000 items at once, with the cyclic collector paused for some.
        output["peak_rss_mb"] = peak_rss_mb()
        if args.scaling:
            started = time.perf_counter()
            output["scaling"] = await runner.scaling()
            output["seconds"]["scaling"] = round(time.perf_counter() - started, 2)
    finally:
        await client.close()
    output.setdefault("peak_rss_mb", peak_rss_mb())
    return output


# ---------------------------------------------------------------- memory


async def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Scan the whole table with dynamodm, iterating (or collecting with ``.all()``),
    sampling the RSS every 1,000 items."""
    client = CLIENTS["dynamodm-http"]()
    await client.open(args.endpoint)
    model = client.model  # type: ignore[attr-defined]
    samples: list[tuple[int, float]] = []
    started = time.perf_counter()
    try:
        before = current_rss_mb()
        if args.memory == "all":
            items = await model.scan().all()
            count = len(items)
            samples.append((count, current_rss_mb()))
            del items
        else:
            count = 0
            async for _item in model.scan():
                count += 1
                if count % 1_000 == 0:
                    samples.append((count, current_rss_mb()))
            samples.append((count, current_rss_mb()))
    finally:
        await client.close()

    def at(fraction: float) -> float | None:
        if args.memory == "all":
            return None
        return next(rss for n, rss in samples if n >= fraction * count)

    return {
        "mode": args.memory,
        "items": count,
        "seconds": time.perf_counter() - started,
        "rss_before_mb": before,
        "rss_at_10_percent_mb": at(0.1),
        "rss_at_50_percent_mb": at(0.5),
        "rss_at_end_mb": samples[-1][1],
        "peak_rss_mb": peak_rss_mb(),
        "growth_after_10_percent_mb": (
            None
            if args.memory == "all"
            else max(rss for n, rss in samples if n >= 0.1 * count) - (at(0.1) or 0.0)
        ),
        "samples": samples,
    }


# ---------------------------------------------------------------- profile


class CpuSampler(Probe):
    """Samples the Python stack every millisecond of process CPU time (SIGPROF).

    Only CPU time is sampled, unlike a wall-clock sampler, which here also counts the
    time the loop waits in epoll or is descheduled while dynalite runs. Time spent in a
    C function (orjson, a socket send) counts as the self time of its Python caller.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.samples: dict[tuple[CodeType, ...], int] = {}

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        codes = []
        while frame is not None:
            codes.append(frame.f_code)
            frame = frame.f_back
        key = tuple(codes)
        self.samples[key] = self.samples.get(key, 0) + 1

    def stacks(self) -> list[tuple[list[str], int]]:
        """Each sampled stack, outermost frame first, as "function (file)"."""
        names: dict[CodeType, str] = {}
        for codes in self.samples:
            for code in codes:
                if code not in names:
                    names[code] = f"{code.co_qualname} ({_short(code.co_filename)})"
        return [([names[c] for c in reversed(k)], n) for k, n in self.samples.items()]

    def start(self) -> None:
        self._previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, self._previous)


def _short(path: str) -> str:
    """A file's path from its package: dynamodm/session.py, aiohttp/client.py, stdlib/..."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    repo = str(Path(__file__).resolve().parent.parent.parent) + "/"
    if path.startswith(repo):
        return path[len(repo) :]
    if "/lib/python3." in path:
        return "stdlib/" + path.split("/lib/python3.", 1)[1].split("/", 1)[-1]
    return path


def summarise(stacks: list[tuple[list[str], int]], top: int = 25) -> dict[str, Any]:
    """Self and inclusive share of the samples per function, and self share per package."""
    total = sum(count for _frames, count in stacks) or 1
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    packages: dict[str, int] = {}
    for frames, count in stacks:
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        package = _package(leaf)
        packages[package] = packages.get(package, 0) + count

    def share(table: dict[str, int], n: int) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda pair: -pair[1])[:n]
        return [(name, round(100 * count / total, 1)) for name, count in ranked]

    dynamodm_inclusive = {k: v for k, v in inclusive.items() if "dynamodm/" in k}
    return {
        "samples": total,
        "self": share(own, top),
        "packages": share(packages, 12),
        "dynamodm_inclusive": share(dynamodm_inclusive, top),
    }


def _package(frame: str) -> str:
    """dynamodm by module, everything else by package."""
    where = frame.rsplit(" (", 1)[-1].rstrip(")")
    parts = where.split("/")
    if parts[0] == "dynamodm":
        return where
    if parts[0] == "stdlib" and len(parts) > 1:
        return "stdlib/" + parts[1].removesuffix(".py")
    return parts[0].removesuffix(".py")


async def run_profile(args: argparse.Namespace) -> dict[str, Any]:
    """One cell of one client, sampled for ``--seconds`` of its loop."""
    operation, _, concurrency = args.profile.partition("@")
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        **{
            **base.to_json(),
            "single_ops": 20_000,
            "query_pages": 10_000,
            "batch_items": 10_000,
            "budget": args.seconds,
        }
    )
    client = CLIENTS[args.client]()
    await client.open(args.endpoint)
    sampler = CpuSampler()
    try:
        runner = Runner(client, sizes, sampler, scans=1_000)
        measured = await runner.operation(operation, int(concurrency or 1))
    finally:
        await client.close()
    stacks = sampler.stacks()
    return {
        "client": args.client,
        "cell": args.profile,
        "measurement": measured.to_json(),
        **summarise(stacks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=sorted(CLIENTS))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--only", help="comma list of operations")
    parser.add_argument("--memory", choices=("iterate", "all"))
    parser.add_argument("--profile", metavar="OPERATION@CONCURRENCY")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    job: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]
    job = run_memory if args.memory else run_profile if args.profile else run_client
    result = asyncio.run(job(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
