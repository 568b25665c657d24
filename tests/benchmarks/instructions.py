"""Instructions per operation and per item, counted by valgrind's callgrind.

CPU time on a shared 2-core VM moves by 5-10 % from run to run, more than most of the
changes it is asked to judge. Instructions do not: callgrind counts the instructions a
process executes, the same for the same code and inputs whatever else the machine does
(it does not count cache misses or stalls, which CPU time includes). ``run.py
--instructions`` runs each (client, operation) twice under callgrind, ``LOW`` and
``HIGH`` operations after the same warm-up, against one dynalite, and reports the
difference divided by the extra operations: start-up, imports and warm-up cancel out.

This module is also the child process: ``python instructions.py CLIENT ENDPOINT OP N``
runs N operations (after a warm-up) and exits.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OPERATIONS = ("get", "put", "update", "query", "batch_write", "batch_get")
LOW, HIGH = 20, 100
WARM = 3
PER_UNIT = {"query": 100, "batch_write": 25, "batch_get": 100}  # items per operation

# Where the instructions go, by the file or library callgrind names for each function.
CATEGORIES = (
    ("Python bytecode", ("ceval.c", "frame.c")),
    ("dicts", ("dictobject.c",)),
    ("memory (allocation, GC)", ("obmalloc.c", "gcmodule.c", "_traverse", "malloc")),
    ("orjson", ("orjson",)),
    ("Pydantic", ("pydantic_core",)),
    ("SigV4 (hashlib, hmac)", ("libcrypto", "sha256", "hmac")),
    ("response checks (CRC32, regular expressions)", ("crc32", "_sre")),
    ("aiohttp, yarl, multidict", ("aiohttp", "yarl", "multidict", "propcache")),
)


def _category(function: str) -> str:
    for category, needles in CATEGORIES:
        if any(needle in function for needle in needles):
            return category
    return "other"


def available() -> str | None:
    """Why the count cannot run here, or None."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (Debian: apt install valgrind)"
    if shutil.which("callgrind_annotate") is None:
        return "callgrind_annotate is not on PATH (it comes with valgrind)"
    return None


# ---------------------------------------------------------------- the child


async def _child(client_name: str, endpoint: str, operation: str, count: int) -> None:
    sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent)]
    from clients import CLIENTS
    from workload import PARTITION, chunks, row, sort_key

    client = CLIENTS[client_name]()
    await client.open(endpoint)
    keys = [(PARTITION, sort_key(n * 7)) for n in range(100)]
    rows = [row(n * 7) for n in range(25 * 8)]
    if operation == "update":
        await client.load_for_update(keys)

    async def one(n: int) -> None:
        if operation == "get":
            await client.get(keys[n % len(keys)])
        elif operation == "put":
            await client.put(rows[n % len(rows)])
        elif operation == "update":
            await client.update(keys[n % len(keys)], f"name {n}")
        elif operation == "query":
            await client.query(PER_UNIT["query"])
        elif operation == "batch_write":
            await client.batch_write(chunks(rows, 25)[n % 8])
        elif operation == "batch_get":
            await client.batch_get(keys)
        else:
            raise SystemExit(f"unknown operation {operation!r}")

    for n in range(WARM):
        await one(n)
    # What start-up made (imports, a boto3 session for some clients) leaves the cyclic
    # collector's view: otherwise whether a full collection falls among the LOW or the
    # HIGH operations, and how big the heap it walks is, would move the difference.
    gc.collect()
    gc.freeze()
    for n in range(count):
        await one(n)
    await client.close()


# ---------------------------------------------------------------- the parent


def _functions(path: Path) -> dict[str, int]:
    """Instructions by function (self cost) from a callgrind output file."""
    text = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if match:
            name = match.group(2).strip()
            found[name] = found.get(name, 0) + int(match.group(1).replace(",", ""))
    return found


def _count(client: str, endpoint: str, operation: str, count: int, scratch: Path) -> dict[str, int]:
    out = scratch / f"{client}.{operation}.{count}"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            client,
            endpoint,
            operation,
            str(count),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same hashing in both runs
    )
    return _functions(out)


def measure(
    endpoint: str, clients: list[str], operations: list[str], log: Any
) -> dict[str, dict[str, dict[str, float]]]:
    """{client: {operation: {"total": per op, category: per op, ...}}}."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dynamodm-callgrind-") as directory:
        scratch = Path(directory)
        for client in clients:
            for operation in operations:
                log(f"callgrind: {client} {operation} ({LOW} and {HIGH} operations)")
                low = _count(client, endpoint, operation, LOW, scratch)
                high = _count(client, endpoint, operation, HIGH, scratch)
                per_op = {
                    name: (high.get(name, 0) - low.get(name, 0)) / (HIGH - LOW)
                    for name in set(low) | set(high)
                }
                total = per_op.pop("PROGRAM TOTALS", 0.0)
                row = {"total": total, **{c: 0.0 for c, _ in CATEGORIES}, "other": 0.0}
                for name, value in per_op.items():
                    # Each function in the first category that names it, else "other".
                    row[_category(name)] += value
                results.setdefault(client, {})[operation] = row
    return results


def report(results: dict[str, dict[str, dict[str, float]]]) -> str:
    clients = list(results)
    operations = [op for op in OPERATIONS if any(op in results[c] for c in clients)]
    base = "floor" if "floor" in results else clients[0]
    lines = [
        "Instructions per operation (per item for query, batch write and batch get), "
        f"callgrind, {HIGH - LOW} operations after {WARM + LOW}:",
        "",
        "| client | " + " | ".join(operations) + " |",
        "|---|" + "---|" * len(operations),
    ]
    for client in clients:
        cells = []
        for op in operations:
            row = results[client].get(op)
            if row is None:
                cells.append("-")
                continue
            per = row["total"] / PER_UNIT.get(op, 1)
            reference = results[base].get(op)
            ratio = f" ({row['total'] / reference['total']:.2f}x)" if reference else ""
            cells.append(f"{per / 1000:,.1f}k{ratio if client != base else ''}")
        lines.append(f"| {client} | " + " | ".join(cells) + " |")
    for op in operations:
        lines += ["", f"Where the instructions of {op} go (thousands per operation):", ""]
        lines += ["| category | " + " | ".join(clients) + " |", "|---|" + "---|" * len(clients)]
        for category in [c for c, _ in CATEGORIES] + ["other"]:
            values = [results[c].get(op, {}).get(category) for c in clients]
            lines.append(
                f"| {category} | "
                + " | ".join("-" if v is None else f"{v / 1000:,.1f}" for v in values)
                + " |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
