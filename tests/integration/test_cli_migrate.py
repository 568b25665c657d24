"""`dynamodm migrate`: rewrites older items, counts a dry run, and survives being killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from migrate_models import Person
from servers import ServerHandle
from typer.testing import CliRunner

import dynamodm as dm
from dynamodm.cli import app

TESTS = Path(__file__).resolve().parent.parent
MODEL = "migrate_models:Person"


class People:
    def __init__(self, server: ServerHandle, tmp_path: Path) -> None:
        self.endpoint_url = server.endpoint_url
        self.prefix = f"mig{uuid4().hex[:8]}-"
        self.checkpoint = tmp_path / "people.ckpt"
        self.options = [
            "--endpoint-url",
            self.endpoint_url,
            "--region",
            "us-east-1",
            "--prefix",
            self.prefix,
            "--checkpoint",
            str(self.checkpoint),
        ]

    def run(self, work: Any) -> Any:
        async def go() -> Any:
            async with dm.connect(
                endpoint_url=self.endpoint_url, region="us-east-1", table_prefix=self.prefix
            ) as db:
                return await work(db)

        return asyncio.run(go())

    def seed(self, old: int) -> None:
        async def work(db: dm.Session) -> None:
            await db.create_tables(Person)
            client = db.client
            for i in range(old):
                await client.put_item(
                    TableName=db.table_name(Person),
                    Item={"id": {"S": f"p{i:04d}"}, "name": {"S": f"First{i} Last{i}"}},
                )
            await Person(id="current", first="New").save(session=db)

        self.run(work)

    def versions(self) -> dict[str, str]:
        async def work(db: dm.Session) -> dict[str, str]:
            found: dict[str, str] = {}
            async for item in Person.scan(session=db).raw():
                found[item["id"]["S"]] = item.get("_sv", {}).get("N", "1")
            return found

        result: dict[str, str] = self.run(work)
        return result


@pytest.fixture
def people(server: ServerHandle, tmp_path: Path) -> People:
    return People(server, tmp_path)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_migrate_rewrites_older_items_and_a_dry_run_writes_nothing(people: People) -> None:
    people.seed(30)
    dry = cli("migrate", MODEL, "--dry-run", *people.options)
    assert dry.exit_code == 0, dry.output
    assert "would migrate 30" in dry.stderr and "1 already current" in dry.stderr
    assert sorted(set(people.versions().values())) == ["1", "3"]
    done = cli("migrate", MODEL, "--segments", "3", *people.options)
    assert done.exit_code == 0, done.output
    assert "migrated 30" in done.stderr
    assert set(people.versions().values()) == {"3"}
    assert not people.checkpoint.exists()
    again = cli("migrate", MODEL, *people.options)
    assert again.exit_code == 0 and "migrated 0, 31 already current" in again.stderr


def test_migrate_killed_halfway_resumes_and_loses_nothing(people: People) -> None:
    people.seed(400)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynamodm", "migrate", MODEL, *people.options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            migrated = sum(v == "3" for v in people.versions().values())
            if migrated > 20:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=30)
    partial = people.versions()
    assert len(partial) == 401
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert "1" in partial.values() and "3" in partial.values()  # killed halfway
    resumed = cli("migrate", MODEL, "--resume", *people.options)
    assert resumed.exit_code == 0, resumed.output
    final = people.versions()
    assert len(final) == 401 and set(final.values()) == {"3"}

    async def read(db: dm.Session) -> list[Person]:
        return await Person.batch_get([f"p{i:04d}" for i in range(0, 400, 37)], session=db)

    sample = people.run(read)
    assert [(p.first, p.last) for p in sample] == [
        (f"First{i}", f"Last{i}") for i in range(0, 400, 37)
    ]


def test_an_unfinished_run_needs_resume(people: People) -> None:
    people.seed(3)
    people.checkpoint.write_text('{"model": "Person", "segments": 1, "done": {}}')
    refused = cli("migrate", MODEL, *people.options)
    assert refused.exit_code == 1 and "--resume" in refused.stderr
