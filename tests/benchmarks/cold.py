"""Cold start: what a fresh process pays before its first item, and what a warm Lambda
invocation adds. Run by ``run.py --cold``; this file is also the child process.

A sample is one fresh interpreter (one subprocess) that imports a library, connects
and reads one item, timing each phase with a wall clock:

- import: the library's modules, as its documentation imports them;
- connect: declaring the model and creating the client or session;
- first get: the first GetItem, with the TCP connection and whatever the library loads
  lazily on first use.

Credentials and region come from the environment, as on Lambda. The warm overhead of
``@dm.lambda_handler`` is the client-process CPU of a warm invocation (a get through the
handler: a hop to the loop's thread and back) minus the same get awaited in a
long-running event loop, each measured over many calls in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SAMPLE_TIMEOUT = 120.0
WARM_CALLS = 2000
HEAVY = ("boto3", "botocore", "aioboto3", "aiobotocore")

# Library modules imported in the import phase, as each library's users import them.
IMPORTS: dict[str, tuple[str, ...]] = {
    "dynamodm": ("dynamodm",),
    "dynamodm-lambda": ("dynamodm",),
    "boto3": ("boto3",),
    "aioboto3": ("aioboto3", "botocore.config"),
    "aiodynamo": (
        "aiodynamo.client",
        "aiodynamo.credentials",
        "aiodynamo.expressions",
        "aiodynamo.http.aiohttp",
        "aiodynamo.models",
    ),
    "pydynox": ("pydynox", "pydynox.attributes"),
    "pynamodb": ("pynamodb.models", "pynamodb.attributes"),
}
LABELS = {
    "dynamodm": "dynamodm (`dm.connect`, `await db.open()`)",
    "dynamodm-lambda": "dynamodm (`@dm.lambda_handler`)",
    "boto3": "boto3 client, raw AttributeValues (reference)",
    "aioboto3": "aioboto3 client, raw AttributeValues",
    "aiodynamo": "aiodynamo",
    "pydynox": "pydynox Model",
    "pynamodb": "PynamoDB Model",
}
REQUIRES = {
    "dynamodm": (),
    "dynamodm-lambda": (),
    "boto3": ("boto3",),
    "aioboto3": ("aioboto3",),
    "aiodynamo": ("aiodynamo",),
    "pydynox": ("pydynox",),
    "pynamodb": ("pynamodb",),
}


def child_environment() -> dict[str, str]:
    """Lambda's environment: static credentials and a region, no profile or config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DYNAMODB_"))}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


# ---------------------------------------------------------------- in the child process


def _milliseconds(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def sample(name: str, endpoint: str) -> dict[str, Any]:
    """Import, connect and first get of one client, in this fresh process."""
    import importlib

    cpu = time.process_time()
    started = time.perf_counter()
    for module in IMPORTS[name]:
        importlib.import_module(module)
    result: dict[str, Any] = {"import_ms": _milliseconds(started)}
    cpu_used = time.process_time() - cpu
    result["heavy_after_import"] = sorted(m for m in HEAVY if m in sys.modules)
    result["modules_after_import"] = len(sys.modules)

    # Untimed: the benchmark's own helpers, and an event loop for the async clients.
    import asyncio

    sys.path[:0] = [str(HERE), str(REPO / "tests")]
    from clients import CLIENTS, _dynamodm_model
    from workload import PARTITION, REGION, TABLE, sort_key

    key = (PARTITION, sort_key(0))
    loop = asyncio.new_event_loop()
    connect: Callable[[], Any]
    first_get: Callable[[], Any]
    if name == "dynamodm":
        import dynamodm as dm

        def connect() -> Any:
            model = _dynamodm_model()
            session = dm.connect(endpoint_url=endpoint, region=REGION)
            loop.run_until_complete(session.open())
            return model, session

        def first_get() -> Any:
            model, session = opened
            return loop.run_until_complete(model.get(*key, session=session))

    elif name == "dynamodm-lambda":
        import dynamodm as dm

        def connect() -> Any:
            model = _dynamodm_model()

            @dm.lambda_handler(endpoint_url=endpoint, region=REGION)
            async def handler(event: dict[str, Any], context: Any) -> Any:
                return await model.get(event["pk"], event["sk"])

            return handler

        def first_get() -> Any:
            return opened({"pk": key[0], "sk": key[1]}, None)

    elif name == "boto3":
        import boto3

        def connect() -> Any:
            return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)

        def first_get() -> Any:
            request = {"pk": {"S": key[0]}, "sk": {"S": key[1]}}
            return opened.get_item(TableName=TABLE, Key=request)

    else:
        client = CLIENTS[name]()

        def connect() -> Any:
            loop.run_until_complete(client.open(endpoint))
            return client

        def first_get() -> Any:
            if client.blocking:
                return client.get_sync(key)  # type: ignore[attr-defined]
            return loop.run_until_complete(client.get(key))

    cpu = time.process_time()
    started = time.perf_counter()
    opened = connect()
    result["connect_ms"] = _milliseconds(started)
    started = time.perf_counter()
    found = first_get()
    result["get_ms"] = _milliseconds(started)
    result["cpu_ms"] = (cpu_used + time.process_time() - cpu) * 1000
    if found is None:
        raise SystemExit(f"{name}: the first get found no item")
    result["heavy_after_get"] = sorted(m for m in HEAVY if m in sys.modules)
    return result


def warm(mode: str, endpoint: str, calls: int) -> dict[str, Any]:
    """CPU and wall time per get: through a warm ``@dm.lambda_handler`` invocation
    (``mode="handler"``) or awaited in a long-running loop (``mode="loop"``)."""
    import asyncio

    sys.path[:0] = [str(HERE), str(REPO / "tests")]
    from clients import _dynamodm_model
    from workload import PARTITION, REGION, sort_key

    import dynamodm as dm

    model = _dynamodm_model()
    event = {"pk": PARTITION, "sk": sort_key(0)}
    if mode == "handler":

        @dm.lambda_handler(endpoint_url=endpoint, region=REGION)
        async def handler(event: dict[str, Any], context: Any) -> Any:
            return await model.get(event["pk"], event["sk"])

        for _ in range(50):  # warm: the session open, its connection made
            handler(event, None)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            handler(event, None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    else:

        async def loop() -> tuple[float, float]:
            async with dm.connect(endpoint_url=endpoint, region=REGION):
                for _ in range(50):
                    await model.get(event["pk"], event["sk"])
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(calls):
                    await model.get(event["pk"], event["sk"])
                return time.process_time() - cpu, time.perf_counter() - wall

        cpu, wall = asyncio.run(loop())
    return {"cpu_us": cpu / calls * 1e6, "wall_us": wall / calls * 1e6}


# ---------------------------------------------------------------- in run.py's process


def available(name: str) -> str | None:
    import importlib.util

    for module in REQUIRES[name]:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[bench]')"
    return None


def _child(arguments: list[str]) -> tuple[dict[str, Any], float]:
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=SAMPLE_TIMEOUT, env=child_environment()
    )
    process_ms = _milliseconds(started)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"cold sample {' '.join(arguments[:2])} failed:\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, process_ms


def measure(
    endpoint: str, names: list[str], repetitions: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Medians of ``repetitions`` fresh processes per client (after one untimed process
    that warms the OS's file cache), and the warm overhead of ``@dm.lambda_handler``."""
    clients: dict[str, Any] = {}
    for name in names:
        log(f"cold start: {name} ({repetitions} processes)")
        _child(["--sample", name, "--endpoint", endpoint])
        runs = []
        for _ in range(repetitions):
            result, process_ms = _child(["--sample", name, "--endpoint", endpoint])
            runs.append({**result, "process_ms": process_ms})
        clients[name] = {
            metric: statistics.median(run[metric] for run in runs)
            for metric in ("import_ms", "connect_ms", "get_ms", "cpu_ms", "process_ms")
        }
        clients[name]["total_ms"] = sum(
            clients[name][m] for m in ("import_ms", "connect_ms", "get_ms")
        )
        clients[name]["heavy_after_import"] = runs[-1]["heavy_after_import"]
        clients[name]["heavy_after_get"] = runs[-1]["heavy_after_get"]
        clients[name]["runs"] = runs
    warm_results: dict[str, Any] = {}
    for mode in ("handler", "loop"):
        log(f"warm invocation: {mode} ({repetitions} processes of {WARM_CALLS:,} gets)")
        runs = [
            _child(["--warm", mode, "--endpoint", endpoint, "--calls", str(WARM_CALLS)])[0]
            for _ in range(repetitions)
        ]
        warm_results[mode] = {
            "cpu_us": statistics.median(run["cpu_us"] for run in runs),
            "wall_us": statistics.median(run["wall_us"] for run in runs),
            "runs": runs,
        }
    return {"clients": clients, "warm": warm_results, "repetitions": repetitions}


def report(data: dict[str, Any]) -> str:
    lines = [
        f"Cold start (medians of {data['repetitions']} fresh processes; ms of wall time)",
        "",
        "| client | import | connect | first get | sum | CPU of the sum | whole process "
        "| loaded by import |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, found in data["clients"].items():
        heavy = ", ".join(found["heavy_after_import"]) or "none of boto3/botocore/aioboto3"
        lines.append(
            f"| {LABELS[name]} | {found['import_ms']:.0f} | {found['connect_ms']:.0f} | "
            f"{found['get_ms']:.0f} | {found['total_ms']:.0f} | {found['cpu_ms']:.0f} | "
            f"{found['process_ms']:.0f} | "
            f"{heavy} |"
        )
    handler, loop = data["warm"]["handler"], data["warm"]["loop"]
    lines += [
        "",
        f"Warm invocation (medians of {data['repetitions']} processes of {WARM_CALLS:,} gets)",
        "",
        "| one get | client CPU µs | wall µs |",
        "|---|---|---|",
        f"| awaited in a long-running loop | {loop['cpu_us']:.0f} | {loop['wall_us']:.0f} |",
        f"| through a warm `@dm.lambda_handler` | {handler['cpu_us']:.0f} | "
        f"{handler['wall_us']:.0f} |",
        f"| overhead of the handler | {handler['cpu_us'] - loop['cpu_us']:.0f} | "
        f"{handler['wall_us'] - loop['wall_us']:.0f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="a cold-start sample (run by run.py --cold)")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--sample", choices=sorted(IMPORTS))
    parser.add_argument("--warm", choices=("handler", "loop"))
    parser.add_argument("--calls", type=int, default=WARM_CALLS)
    args = parser.parse_args()
    if args.sample:
        result = sample(args.sample, args.endpoint)
    elif args.warm:
        result = warm(args.warm, args.endpoint, args.calls)
    else:
        raise SystemExit("give --sample CLIENT or --warm MODE")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
