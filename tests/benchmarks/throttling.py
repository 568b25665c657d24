"""Throttling figures against the stand-in for the real service (tests/standin.py), with
the default RetryPolicy: how long a call rides out throttling, how many attempts and
pauses it makes, and how the retry quota bounds the load of a long outage.

    .venv/bin/python tests/benchmarks/throttling.py

Real time: about two minutes. Prints a markdown table (docs/reliability.md quotes it).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import aioboto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from standin import StandIn

import dynamodm as dm

REG = dm.Registry("throttling-figures")


class Item(dm.Model):
    class Meta:
        table = "items"
        registry = REG

    id: Annotated[str, dm.HashKey]


class Recorder:
    """The policy's sleep, recording each pause."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        await asyncio.sleep(seconds)


@dataclass
class Call:
    outcome: str
    seconds: float
    attempts: int
    longest_pause: float


async def one_call(service: StandIn, throttle_for: float) -> Call:
    recorder = Recorder()
    policy = dm.RetryPolicy(sleep=recorder)
    async with dm.connect(
        endpoint_url=service.endpoint_url,
        boto_session=aioboto3.Session(**service.credentials()),
        retry=policy,
    ):
        await Item(id="a").save()
        before = len(service.received("GetItem"))
        service.throttle(seconds=throttle_for)
        started = time.monotonic()
        try:
            await Item.get("a")
            outcome = "ok"
        except dm.Throttled:
            outcome = "Throttled"
        elapsed = time.monotonic() - started
        service.throttle(0)
    attempts = len(service.received("GetItem")) - before
    return Call(outcome, elapsed, attempts, max(recorder.pauses, default=0.0))


async def outage(service: StandIn, tasks: int, quota: int | None) -> dict[str, float]:
    policy = dm.RetryPolicy(quota=quota)
    async with dm.connect(
        endpoint_url=service.endpoint_url,
        boto_session=aioboto3.Session(**service.credentials()),
        retry=policy,
    ):
        await Item(id="a").save()
        before = len(service.received("GetItem"))
        service.throttle(seconds=40.0)
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(Item.get("a") for _ in range(tasks)), return_exceptions=True
        )
        elapsed = time.monotonic() - started
        service.throttle(0)
    failed = sum(isinstance(o, dm.Throttled) for o in outcomes)
    return {
        "calls": tasks,
        "failed": failed,
        "requests sent": len(service.received("GetItem")) - before,
        "seconds": elapsed,
    }


async def main() -> None:
    async with StandIn() as service:
        service.store.CreateTable(
            {
                "TableName": "items",
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            }
        )
        print("| throttled for | outcome | call took (s) | attempts | longest pause (s) |")
        print("|---|---|---|---|---|")
        for throttle_for in (5.0, 15.0, 60.0):
            runs = [await one_call(service, throttle_for) for _ in range(3)]
            outcomes = ", ".join(sorted({r.outcome for r in runs}))
            took = statistics.median(r.seconds for r in runs)
            attempts = statistics.median(r.attempts for r in runs)
            pause = max(r.longest_pause for r in runs)
            print(
                f"| {throttle_for:.0f} s | {outcomes} | {took:.1f} | {attempts:.0f} | {pause:.2f} |"
            )
        print()
        print("| 40 s outage, 50 concurrent calls | calls failed | requests sent | took (s) |")
        print("|---|---|---|---|")
        for quota in (500, None):
            figures = await outage(service, 50, quota)
            label = f"quota={quota}" if quota is not None else "no quota"
            print(
                f"| {label} | {figures['failed']} | {figures['requests sent']} | "
                f"{figures['seconds']:.1f} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
