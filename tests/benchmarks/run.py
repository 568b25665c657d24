"""dynamodm's benchmark suite: every client, one dynalite server, one table, one run.

    pip install -e '.[bench]'
    python tests/benchmarks/run.py            # the full suite (5-10 minutes on 2 cores)
    python tests/benchmarks/run.py --quick    # smaller sizes, for development
    python tests/benchmarks/run.py --json results.json
    python tests/benchmarks/run.py --cold     # cold start and warm Lambda invocations
    python tests/benchmarks/run.py --instructions get,batch_write  # callgrind counts

It starts dynalite on a free loopback port (installing it with npm if missing),
loads the table, then runs each client in a process of its own, once per
repetition, and prints the medians: client-process CPU per operation and per item,
throughput and peak RSS, with ratios to the floor and to the raw aioboto3 client.
See docs/benchmarks.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(HERE), str(REPO / "tests"), str(REPO)]

import cold  # noqa: E402
import instructions  # noqa: E402
from clients import CLIENTS, Floor, missing_requirement  # noqa: E402
from servers import DYNALITE_DIR, DYNALITE_VERSION, start_dynalite  # noqa: E402
from workload import FULL, QUICK, TABLE_DEFINITION, Sizes, chunks, row  # noqa: E402

T = TypeVar("T")
WORKER = HERE / "worker.py"
WORKER_TIMEOUT = 600.0
SCALING_CLIENTS = ("floor", "dynamodm-http")
SCALING_LIMIT = 1.3  # a quadratic path would make 20,000 items cost ~200x 100 items
SCALING_VERDICTS = ("query, GC paused", "batch write, GC paused", "batch get, GC paused")
ORDER = tuple(CLIENTS)
PER_ITEM = ("query", "batch_write", "batch_get", "scan")
TITLES = {
    "put": "put (PutItem of one ~1 KB item)",
    "get": "get (GetItem)",
    "update": "update (UpdateItem: one SET + one ADD, ALL_NEW)",
    "query": "query (100-item pages)",
    "batch_write": "batch write (25 puts per request, 2,000 items)",
    "batch_get": "batch get (100 keys per request, 2,000 keys)",
    "scan": "scan (the whole table; 16 = 16 segments)",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- server and data


def ensure_dynalite() -> None:
    if (DYNALITE_DIR / "cli.js").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("dynalite is not installed and npm is not on PATH (install Node.js)")
    log(f"installing dynalite {DYNALITE_VERSION} into .dynalite")
    subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            ".dynalite",
            "--no-audit",
            "--no-fund",
            f"dynalite@{DYNALITE_VERSION}",
        ],
        cwd=REPO,
        check=True,
    )


async def load(endpoint: str, first: int, last: int, create: bool) -> None:
    """Write items ``first..last-1`` with the floor client, 16 requests in flight."""
    floor = Floor()
    await floor.open(endpoint)
    try:
        if create:
            await floor.call("CreateTable", TABLE_DEFINITION)
        pending = chunks(list(range(first, last)), 25)
        position = iter(pending)

        async def writer() -> None:
            for numbers in position:
                await floor.batch_write([row(n) for n in numbers])

        await asyncio.gather(*(writer() for _ in range(16)))
    finally:
        await floor.close()


# ---------------------------------------------------------------- workers


def run_worker(arguments: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(WORKER), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"worker {' '.join(arguments[:2])} failed:\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each number over the repetitions of one client."""
    cells = sorted({cell for run in runs for cell in run["results"]})
    results: dict[str, dict[str, Any]] = {}
    for cell in cells:
        values = [run["results"][cell] for run in runs if cell in run["results"]]
        results[cell] = {
            metric: median([v[metric] for v in values])
            for metric in ("cpu_us_per_op", "cpu_us_per_item", "ops_per_s", "items_per_s")
        }
        results[cell]["repetitions"] = [v["cpu_us_per_op"] for v in values]
    combined: dict[str, Any] = {
        "results": results,
        "skipped": runs[0]["skipped"],
        "peak_rss_mb": median([run["peak_rss_mb"] for run in runs]),
        "rss_after_open_mb": median([run["rss_after_open_mb"] for run in runs]),
    }
    if "scaling" in runs[0]:
        combined["scaling"] = {
            operation: {
                size: median([run["scaling"][operation].get(size) for run in runs])
                for size in runs[0]["scaling"][operation]
            }
            for operation in runs[0]["scaling"]
        }
    return combined


# ---------------------------------------------------------------- report


def metric_of(operation: str) -> str:
    return "cpu_us_per_item" if operation in PER_ITEM else "cpu_us_per_op"


def value(data: dict[str, Any], client: str, cell: str, metric: str) -> float | None:
    found = data.get(client, {}).get("results", {}).get(cell)
    return None if found is None else found.get(metric)


def fmt(number: float | None, digits: int = 0) -> str:
    if number is None:
        return "-"
    return f"{number:,.{digits}f}"


def ratio(number: float | None, base: float | None) -> str:
    if number is None or not base:
        return "-"
    return f"{number / base:.2f}x"


def operation_table(data: dict[str, Any], operation: str) -> list[str]:
    per_item = operation in PER_ITEM
    metric = metric_of(operation)
    unit = "µs/item" if per_item else "µs/op"
    rate = "items_per_s" if per_item else "ops_per_s"
    rate_name = "items/s" if per_item else "ops/s"
    header = ["client"]
    for concurrency in (1, 16):
        header += [f"c={concurrency} CPU {unit}", "x floor", "x aioboto3", rate_name]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for client in data:
        cells = [client]
        for concurrency in (1, 16):
            cell = f"{operation}@{concurrency}"
            number = value(data, client, cell, metric)
            skipped = data[client].get("skipped", {}).get(cell)
            if number is None and skipped:
                cells += ["n/a", "", "", ""]
                continue
            cells += [
                fmt(number, 1 if per_item else 0),
                ratio(number, value(data, "floor", cell, metric)),
                ratio(number, value(data, "aioboto3", cell, metric)),
                fmt(value(data, client, cell, rate)),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_table(data: dict[str, Any]) -> list[str]:
    header = [
        "client",
        "get µs/op (1 / 16)",
        "put µs/op (1 / 16)",
        "update µs/op (1 / 16)",
        "query µs/item (1 / 16)",
        "batch write µs/item (1 / 16)",
        "batch get µs/item (1 / 16)",
        "scan µs/item (1 / 16)",
        "peak RSS MB",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for client in data:
        cells = [client]
        for operation in OPERATIONS_ORDER:
            metric = metric_of(operation)
            digits = 1 if operation in PER_ITEM else 0
            pair = [fmt(value(data, client, f"{operation}@{c}", metric), digits) for c in (1, 16)]
            cells.append(" / ".join(pair))
        cells.append(fmt(data[client].get("peak_rss_mb")))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


OPERATIONS_ORDER = ("get", "put", "update", "query", "batch_write", "batch_get", "scan")


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 15's targets (issue 7's for the botocore transport), checked on this run's
    medians: reads at most the floor's cost per item, Pydantic instances included;
    batch write and single-item operations at most 1.1x; every bulk operation below
    pydynox and aiodynamo."""
    checks: list[dict[str, Any]] = []

    def check(name: str, cell: str, metric: str, limit: float, base: str, peer: bool) -> None:
        ours = value(
            data, "dynamodm-http" if base != "aioboto3" else "dynamodm-botocore", cell, metric
        )
        reference = value(data, base, cell, metric)
        if ours is None or reference is None:
            return
        measured = ours / reference
        met = measured < limit if peer else measured <= limit
        checks.append(
            {"target": name, "cell": cell, "ratio": round(measured, 3), "limit": limit, "met": met}
        )

    for operation in OPERATIONS_ORDER:
        metric = metric_of(operation)
        per = "" if operation in ("get", "put", "update") else " per item"
        limit = 1.0 if operation in ("query", "scan", "batch_get") else 1.1
        for concurrency in (1, 16):
            cell = f"{operation}@{concurrency}"
            check(f"{operation}: ≤ {limit}x floor{per}", cell, metric, limit, "floor", False)
            for peer in ("pydynox", "aiodynamo"):
                check(f"{operation}: below {peer}{per}", cell, metric, 1.0, peer, True)
            check(
                f"botocore transport {operation}: ≤ 1.1x raw aioboto3",
                cell,
                metric,
                1.1,
                "aioboto3",
                False,
            )
    # CPython's cyclic GC costs more per item as pages and batches grow (the floor too): the
    # verdicts are on the runs with the collector paused, the library's own cost.
    scaling = data.get("dynamodm-http", {}).get("scaling", {})
    for operation in SCALING_VERDICTS:
        by_size = scaling.get(operation, {})
        numbers = [n for n in by_size.values() if n]
        if len(numbers) > 1:
            spread = max(numbers) / min(numbers)
            checks.append(
                {
                    "target": f"cost per item constant, {operation}: largest ÷ smallest",
                    "cell": f"{min(by_size, key=int)}..{max(by_size, key=int)} items",
                    "ratio": round(spread, 3),
                    "limit": SCALING_LIMIT,
                    "met": spread <= SCALING_LIMIT,
                }
            )
    return checks


def targets_table(checks: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | cell | dynamodm ÷ reference | met |", "|---|---|---|---|"]
    for check in checks:
        lines.append(
            f"| {check['target']} | {check['cell']} | {check['ratio']:.2f} | "
            f"{'yes' if check['met'] else '**no**'} |"
        )
    return lines


def scaling_table(data: dict[str, Any]) -> list[str]:
    sizes = sorted(
        {int(s) for c in data.values() for op in c.get("scaling", {}).values() for s in op}
    )
    if not sizes:
        return []
    header = ["client", "operation", *(f"{s:,} items" for s in sizes), "largest ÷ smallest"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for client, combined in data.items():
        for operation, by_size in combined.get("scaling", {}).items():
            numbers = [by_size.get(str(s)) for s in sizes]
            present = [n for n in numbers if n]
            spread = max(present) / min(present) if len(present) > 1 else None
            lines.append(
                "| "
                + " | ".join([client, operation, *(fmt(n, 1) for n in numbers), fmt(spread, 2)])
                + " |"
            )
    return lines


def memory_lines(memory: dict[str, Any]) -> list[str]:
    lines = [
        "| scan of the whole table | items | RSS before MB | at 10% | at 50% | at the end "
        "| process peak | growth after the first 10% |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, result in memory.items():
        what = (
            "`async for item in Model.scan()`"
            if mode == "iterate"
            else ("`await Model.scan().all()` (for contrast)")
        )
        tenth, growth = result["rss_at_10_percent_mb"], result["growth_after_10_percent_mb"]
        lines.append(
            f"| {what} | {result['items']:,} | {fmt(result['rss_before_mb'])} | {fmt(tenth)} | "
            f"{fmt(result['rss_at_50_percent_mb'])} | {fmt(result['rss_at_end_mb'])} | "
            f"{fmt(result['peak_rss_mb'])} | {fmt(growth, 1)} |"
        )
    return lines


def revision() -> str:
    """The commit measured, and whether dynamodm/ had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "dynamodm"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{commit or 'unknown'}{' + uncommitted changes in dynamodm/' if dirty else ''}"


def report(data: dict[str, Any], memory: dict[str, Any], sizes: Sizes) -> str:
    lines = [
        f"dynamodm {revision()}; Python {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; {sizes.table_items:,} items in the table.",
        f"Median of {sizes.repetitions} repetitions; CPU is client-process CPU "
        "(user + system, all threads) per operation or per item; dynalite runs in another "
        "process.",
        "",
        "Summary:",
        "",
        *summary_table(data),
    ]
    for operation in OPERATIONS_ORDER:
        lines += ["", f"{TITLES[operation]}:", "", *operation_table(data, operation)]
    skipped = [
        f"- {client} {cell}: {reason}"
        for client, combined in data.items()
        for cell, reason in combined.get("skipped", {}).items()
    ]
    if skipped:
        lines += ["", "Not measured:", "", *skipped]
    lines += ["", "Cost per item by size (CPU µs per item):", "", *scaling_table(data)]
    if memory:
        lines += ["", "Memory of a whole-table scan:", "", *memory_lines(memory)]
    lines += ["", "Targets (issue 15):", "", *targets_table(targets(data))]
    return "\n".join(lines)


def profile_lines(result: dict[str, Any]) -> list[str]:
    measured = result["measurement"]
    lines = [
        f"{result['client']} {result['cell']}: {result['samples']:,} samples of 1 ms CPU; "
        f"{fmt(measured['cpu_us_per_op'])} µs CPU per op, "
        f"{fmt(measured['cpu_us_per_item'], 1)} per item while sampled",
        "",
        "| where (self time) | % of CPU |",
        "|---|---|",
        *(f"| {name} | {share} |" for name, share in result["packages"]),
        "",
        "| function (self time) | % of CPU |",
        "|---|---|",
        *(f"| `{name}` | {share} |" for name, share in result["self"]),
    ]
    if result["dynamodm_inclusive"]:
        lines += [
            "",
            "| dynamodm function (including what it calls) | % of CPU |",
            "|---|---|",
            *(f"| `{name}` | {share} |" for name, share in result["dynamodm_inclusive"]),
        ]
    return lines


# ---------------------------------------------------------------- main


def profile(args: argparse.Namespace) -> None:
    sizes = QUICK if args.quick else FULL
    ensure_dynalite()
    server = start_dynalite()
    try:
        asyncio.run(load(server.endpoint_url, 0, sizes.table_items, create=True))
        common = ["--endpoint", server.endpoint_url, *(["--quick"] if args.quick else [])]
        for name in (args.clients or "dynamodm-http").split(","):
            for cell in args.profile.split(","):
                result = run_worker(
                    [
                        "--client",
                        name,
                        *common,
                        "--profile",
                        cell,
                        "--seconds",
                        str(args.seconds),
                    ]
                )
                print("\n".join(profile_lines(result)) + "\n", flush=True)
    finally:
        server.stop()


def cold_start(args: argparse.Namespace) -> None:
    """Cold start in fresh processes (cold.py) against one dynalite server and one item."""
    names = args.clients.split(",") if args.clients else list(cold.IMPORTS)
    unknown = sorted(set(names) - set(cold.IMPORTS))
    if unknown:
        raise SystemExit(f"unknown clients {unknown}; choose from {', '.join(cold.IMPORTS)}")
    measured = []
    for name in names:
        reason = cold.available(name)
        if reason:
            log(f"skipping {name}: {reason}")
        else:
            measured.append(name)
    repetitions = max(5, args.repetitions or 7)
    started = time.perf_counter()
    data = on_dynalite(1, lambda endpoint: cold.measure(endpoint, measured, repetitions, log))
    finish(cold.report(data), started, args, data)


def on_dynalite(items: int, job: Callable[[str], T]) -> T:
    """``job(endpoint)`` against a fresh dynalite whose table holds ``items`` items."""
    ensure_dynalite()
    server = start_dynalite()
    try:
        asyncio.run(load(server.endpoint_url, 0, items, create=True))
        return job(server.endpoint_url)
    finally:
        server.stop()


def finish(text: str, started: float, args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Print a report and the run's footer; write its data as JSON when asked."""
    print(text)
    print(
        f"\n({time.perf_counter() - started:.0f} s; Python {platform.python_version()}, "
        f"{platform.machine()}, revision {revision()})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"revision": revision(), **data}, indent=1))


def instruction_counts(args: argparse.Namespace) -> None:
    """Instructions per operation under callgrind (instructions.py), against one dynalite."""
    reason = instructions.available()
    if reason:
        raise SystemExit(f"--instructions: {reason}")
    operations = args.instructions.split(",")
    unknown = sorted(set(operations) - set(instructions.OPERATIONS))
    if unknown:
        raise SystemExit(f"unknown operations {unknown}; choose from {instructions.OPERATIONS}")
    names = args.clients.split(",") if args.clients else ["floor", "dynamodm-http"]
    started = time.perf_counter()
    results = on_dynalite(
        QUICK.table_items,
        lambda endpoint: instructions.measure(endpoint, names, operations, log),
    )
    finish(instructions.report(results), started, args, results)


def main() -> None:
    parser = argparse.ArgumentParser(description="dynamodm's benchmark suite")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for development")
    parser.add_argument("--json", metavar="FILE", help="also write every number as JSON")
    parser.add_argument("--clients", help=f"comma list (default: all of {', '.join(ORDER)})")
    parser.add_argument("--repetitions", type=int, help="default 5 (3 with --quick)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    parser.add_argument(
        "--profile",
        metavar="CELLS",
        help="instead of the suite: profile cells (e.g. get@1,query@16) of each client given by "
        "--clients (default dynamodm-http), sampling the stack every 1 ms of CPU",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="profile length")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="instead of the suite: cold start (import, connect, first get) in fresh "
        "processes and the warm overhead of @dm.lambda_handler; --clients from "
        + ", ".join(cold.IMPORTS),
    )
    parser.add_argument(
        "--instructions",
        metavar="OPERATIONS",
        help="instead of the suite: instructions per operation under valgrind's callgrind "
        f"(repeatable where CPU time is not), for operations from {instructions.OPERATIONS} "
        "and --clients (default floor,dynamodm-http); a few minutes per client and operation",
    )
    args = parser.parse_args()
    if args.instructions:
        instruction_counts(args)
        return
    if args.cold:
        cold_start(args)
        return
    if args.profile:
        profile(args)
        return
    sizes = QUICK if args.quick else FULL
    if args.repetitions:
        sizes = Sizes(**{**sizes.to_json(), "repetitions": max(1, args.repetitions)})
    names = args.clients.split(",") if args.clients else list(ORDER)
    unknown = sorted(set(names) - set(CLIENTS))
    if unknown:
        raise SystemExit(f"unknown clients {unknown}; choose from {', '.join(ORDER)}")

    clients: list[str] = []
    unavailable: dict[str, str] = {}
    for name in names:
        reason = missing_requirement(CLIENTS[name])
        if reason:
            unavailable[name] = reason
            log(f"skipping {name}: {reason}")
        else:
            clients.append(name)

    ensure_dynalite()
    started = time.perf_counter()
    server = start_dynalite()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    failures: dict[str, str] = {}
    memory: dict[str, Any] = {}
    try:
        endpoint = server.endpoint_url
        log(f"dynalite at {endpoint}: loading {sizes.table_items:,} items")
        asyncio.run(load(endpoint, 0, sizes.table_items, create=True))
        common = ["--endpoint", endpoint, *(["--quick"] if args.quick else [])]
        for repetition in range(sizes.repetitions):
            turn = repetition % len(clients) if clients else 0
            for name in clients[turn:] + clients[:turn]:
                if name in failures:
                    continue
                log(f"repetition {repetition + 1}/{sizes.repetitions}: {name}")
                extra = ["--scaling"] if name in SCALING_CLIENTS else []
                try:
                    began = time.perf_counter()
                    runs[name].append(run_worker(["--client", name, *common, *extra]))
                    log(f"  {time.perf_counter() - began:.0f} s: {runs[name][-1]['seconds']}")
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    failures[name] = str(error)
                    log(str(error))
        if not args.no_memory:
            log(f"memory: loading up to {sizes.memory_items:,} items")
            asyncio.run(load(endpoint, sizes.table_items, sizes.memory_items, create=False))
            for mode in ("iterate", "all"):
                log(f"memory: {mode}")
                memory[mode] = run_worker(["--memory", mode, *common])
    finally:
        server.stop()

    data = {name: combine(runs[name]) for name in clients if runs[name]}
    text = report(data, memory, sizes)
    print(text)
    for name, reason in {**unavailable, **failures}.items():
        print(f"\n{name} was not measured: {reason}")
    print(
        f"\n({time.perf_counter() - started:.0f} s; Python {platform.python_version()}, "
        f"{platform.machine()})"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "revision": revision(),
                    "sizes": sizes.to_json(),
                    "python": platform.python_version(),
                    "clients": data,
                    "runs": runs,
                    "unavailable": {**unavailable, **failures},
                    "memory": memory,
                    "targets": targets(data),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
