"""The dynamodm command, run in-process with Typer's CliRunner against each local server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from cli_models import Ledger, Member, Record
from servers import ServerHandle, answers_http, free_port
from typer.testing import CliRunner, Result

import dynamodm as dm
from dynamodm.cli import app

T = TypeVar("T")

REGISTRY = "cli_models:registry"
TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
EXACT = Decimal("1.2345678901234567890123456789012345678")  # 38 significant digits
BINARY = b"\x00\xff\xfe binary"


def cli(*args: object, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], input=input, env=env)


class Target:
    """One server and one table prefix: the CLI's options and a library session."""

    def __init__(self, server: ServerHandle) -> None:
        self.endpoint_url = server.endpoint_url
        self.prefix = f"cli{uuid4().hex[:8]}-"
        self.options = [
            "--endpoint-url",
            self.endpoint_url,
            "--region",
            "us-east-1",
            "--prefix",
            self.prefix,
        ]

    def run(self, work: Callable[[dm.Session], Awaitable[T]]) -> T:
        async def go() -> T:
            async with dm.connect(
                endpoint_url=self.endpoint_url, region="us-east-1", table_prefix=self.prefix
            ) as db:
                return await work(db)

        return asyncio.run(go())

    def tables(self) -> list[str]:
        return self.run(lambda db: db.list_tables())

    def create_tables(self) -> None:
        result = cli("tables", "create", REGISTRY, *self.options)
        assert result.exit_code == 0, result.output

    def raw_items(self, model: type[dm.Model]) -> dict[str, dict[str, Any]]:
        """Every stored item by its key, sets sorted (DynamoDB keeps no set order)."""

        async def scan(db: dm.Session) -> list[dict[str, Any]]:
            response = await db.client.scan(TableName=db.table_name(model), ConsistentRead=True)
            items: list[dict[str, Any]] = response["Items"]
            return items

        keys = [k.attribute for k in model.__dm_schema__.table_keys]
        return {
            "/".join(str(next(iter(item[k].values()))) for k in keys): _sorted_sets(item)
            for item in self.run(scan)
        }


def _sorted_sets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: sorted(v) if k in ("SS", "NS", "BS") else _sorted_sets(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_sorted_sets(v) for v in value]
    return value


@pytest.fixture
def target(server: ServerHandle) -> Target:
    return Target(server)


@pytest.fixture
def source_and_copy(server: ServerHandle) -> tuple[Target, Target]:
    """Two prefixes on one server, their tables created: export one, import the other."""
    source, copy = Target(server), Target(server)
    source.create_tables()
    copy.create_tables()
    return source, copy


def seed_records(target: Target) -> None:
    """Two records written by the library, one of them with attributes no model declares."""

    async def seed(db: dm.Session) -> None:
        await Record.create(
            id="r1",
            owner="ada",
            amount=EXACT,
            count=12345678901234567890,
            ratio=0.1,
            tags={"red", "green"},
            scores={1, 2, 3},
            blob=BINARY,
            blobs={b"\x01", b"\x02\xff"},
            meta={"a": 1},
            created_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
            session=db,
        )
        await Record.create(id="r2", note="plain", session=db)
        await db.client.update_item(
            TableName=db.table_name(Record),
            Key={"id": {"S": "r1"}},
            UpdateExpression="SET legacy = :legacy, flags = :flags",
            ExpressionAttributeValues={
                ":legacy": {
                    "M": {
                        "big": {"N": "-9.8765432109876543210987654321098765432E+100"},
                        "raw": {"BS": [b"\x00", b"\xff"]},
                        "list": {"L": [{"NULL": True}, {"BOOL": False}]},
                    }
                },
                ":flags": {"NS": ["1.50", "2"]},
            },
        )

    target.run(seed)


# ---------------------------------------------------------------- usage


def test_python_dash_m_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dynamodm", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    for command in ("local", "tables", "export", "import"):
        assert command in result.stdout


def test_version_option_prints_the_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"dynamodm {dm.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ["tables", "create"],
        ["tables", "drop", REGISTRY],
        ["tables", "list", "no_such_module_here:registry"],
        ["tables", "create", "cli_models:Record"],
        ["export", "cli_models:NoSuchModel", "out.jsonl"],
        ["export", "cli_models:registry", "out.jsonl"],
        ["export", "cli_models:Record", "out.jsonl", "--format", "xml"],
        ["import", "cli_models:Record", "no-such-file.jsonl"],
        ["local", "--port", "70000"],
        ["local", "--host", "0.0.0.0"],
    ],
)
def test_bad_usage_exits_with_2(args: list[str]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_unknown_module_is_named_in_the_usage_error() -> None:
    result = cli("tables", "list", "no_such_module_here:registry")
    assert result.exit_code == 2
    assert "no module named 'no_such_module_here'" in result.stderr


# ---------------------------------------------------------------- tables


def test_tables_create_list_describe_delete(target: Target) -> None:
    names = [f"{target.prefix}{t}" for t in ("records", "ledgers", "members")]

    created = cli("tables", "create", REGISTRY, *target.options)
    assert created.exit_code == 0, created.output
    for name in names:
        assert f"{name}: ACTIVE" in created.stdout
    assert set(names) <= set(target.tables())

    listed = cli("tables", "list", REGISTRY, *target.options)
    assert listed.exit_code == 0, listed.output
    for name in names:
        assert name in listed.stdout
    assert " no " not in listed.stdout

    everything = cli("tables", "list", *target.options)
    assert everything.exit_code == 0, everything.output
    assert set(names) <= set(everything.stdout.split())

    described = cli("tables", "describe", REGISTRY, *target.options)
    assert described.exit_code == 0, described.output
    assert "ACTIVE" in described.stdout
    assert "ByOwner" in described.stdout

    refused = cli("tables", "delete", REGISTRY, *target.options)
    assert refused.exit_code == 1
    assert "--yes" in refused.stderr
    assert set(names) <= set(target.tables())

    declined = cli("tables", "delete", REGISTRY, *target.options, input="n\n")
    assert declined.exit_code == 1
    assert set(names) <= set(target.tables())

    deleted = cli("tables", "delete", REGISTRY, "--yes", *target.options)
    assert deleted.exit_code == 0, deleted.output
    assert target.tables() == []  # the unique-guard table went with the last unique model

    missing = cli("tables", "describe", REGISTRY, *target.options)
    assert missing.exit_code == 1
    assert "MISSING" in missing.stdout
    assert "dynamodm tables create" in missing.stderr


def test_environment_variables_work_like_connect(target: Target) -> None:
    env = {
        "DYNAMODB_ENDPOINT_URL": "",
        "DYNAMODB_ENDPOINT": target.endpoint_url,
        "AWS_REGION": "",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DYNAMODB_TABLE_PREFIX": target.prefix,
    }
    created = cli("tables", "create", REGISTRY, env=env)
    assert created.exit_code == 0, created.output
    assert f"{target.prefix}records" in target.tables()

    listed = cli("tables", "list", env=env)
    assert listed.exit_code == 0, listed.output
    assert f"{target.prefix}records" in listed.stdout.split()


def test_a_failure_is_one_error_line_and_exit_code_1(target: Target, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    result = cli("export", "cli_models:Record", out, *target.options)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "does not exist" in lines[0]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- export and import


def test_dynamodb_json_round_trip_keeps_sets_bytes_numbers_and_unknown_attributes(
    source_and_copy: tuple[Target, Target], tmp_path: Path
) -> None:
    source, copy = source_and_copy
    seed_records(source)
    out = tmp_path / "records.jsonl"

    exported = cli("export", "cli_models:Record", out, *source.options)
    assert exported.exit_code == 0, exported.output
    assert "exported 2 items" in exported.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    first = next(line for line in lines if line["id"] == {"S": "r1"})
    assert first["amount"] == {"N": str(EXACT)}
    assert first["count"] == {"N": "12345678901234567890"}
    assert first["blob"] == {"B": base64.b64encode(BINARY).decode()}
    assert sorted(first["tags"]["SS"]) == ["green", "red"]
    # DynamoDB normalises number text ("1.50" reads back as "1.5"); values stay exact.
    assert sorted(map(Decimal, first["flags"]["NS"])) == [Decimal("1.5"), 2]
    big = Decimal(first["legacy"]["M"]["big"]["N"])
    assert big == Decimal("-9.8765432109876543210987654321098765432E+100")
    assert sorted(first["legacy"]["M"]["raw"]["BS"]) == ["/w==", "AA=="]

    imported = cli("import", "cli_models:Record", out, *copy.options)
    assert imported.exit_code == 0, imported.output
    assert "imported 2 items" in imported.stderr

    assert copy.raw_items(Record) == source.raw_items(Record)
    r1 = copy.run(lambda db: Record.get("r1", session=db))
    assert r1.amount == EXACT
    assert r1.blob == BINARY
    assert r1.blobs == {b"\x01", b"\x02\xff"}
    assert sorted(map(Decimal, r1.extra_attributes["flags"]["NS"])) == [Decimal("1.5"), 2]


def test_plain_json_round_trip_keeps_sets_bytes_and_numbers(
    source_and_copy: tuple[Target, Target], tmp_path: Path
) -> None:
    source, copy = source_and_copy
    seed_records(source)
    out = tmp_path / "records.jsonl"

    exported = cli("export", "cli_models:Record", out, "--format", "plain", *source.options)
    assert exported.exit_code == 0, exported.output
    lines = {line["id"]: line for line in map(json.loads, out.read_text().splitlines())}
    assert lines["r1"]["amount"] == str(EXACT)
    assert sorted(lines["r1"]["tags"]) == ["green", "red"]
    assert "createdAt" in lines["r1"]  # by alias
    assert "legacy" not in lines["r1"]  # plain JSON is the model's own view

    imported = cli("import", "cli_models:Record", out, "-f", "plain", *copy.options)
    assert imported.exit_code == 0, imported.output

    async def both(db: dm.Session) -> list[Record]:
        return await Record.batch_get(["r1", "r2"], session=db)

    assert [r.model_dump() for r in copy.run(both)] == [r.model_dump() for r in source.run(both)]
    r1 = copy.run(lambda db: Record.get("r1", session=db))
    assert (r1.amount, r1.count, r1.blob) == (EXACT, 12345678901234567890, BINARY)
    assert r1.scores == {1, 2, 3}
    assert r1.extra_attributes == {}


def test_import_reports_bad_lines_by_number_and_imports_the_good_ones(target: Target) -> None:
    target.create_tables()
    lines = [
        json.dumps({"id": {"S": "good-1"}, "amount": {"N": "2.50"}}),
        "{not json",
        json.dumps({"id": {"S": "bad-type"}, "count": {"S": "twelve"}}),
        "",
        json.dumps({"id": {"S": "good-2"}, "blob": {"B": "AP8="}}),
        json.dumps({"id": {"S": "bad-base64"}, "blob": {"B": "***"}}),
        json.dumps({"id": {"X": "bad-kind"}}),
        json.dumps({"count": {"N": "1"}}),
        json.dumps(["not", "an", "object"]),
    ]
    result = cli("import", "cli_models:Record", "-", *target.options, input="\n".join(lines) + "\n")

    assert result.exit_code == 1
    reported = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in reported] == [
        "line 2",
        "line 3",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
    ]
    assert "count" in reported[1]
    assert "id" in reported[4]
    assert "7 lines were not imported" not in result.stderr
    assert "6 lines were not imported" in result.stderr
    stored = target.raw_items(Record)
    assert sorted(stored) == ["good-1", "good-2"]
    assert Decimal(stored["good-1"]["amount"]["N"]) == Decimal("2.5")
    assert stored["good-2"]["blob"] == {"B": b"\x00\xff"}


def test_plain_import_reports_lines_that_do_not_fit_the_model(
    target: Target, tmp_path: Path
) -> None:
    target.create_tables()
    source = tmp_path / "plain.jsonl"
    source.write_text(
        '{"id": "p1", "scores": [3, 1]}\n{"owner": "no id"}\n{"id": "p2", "ratio": "x"}\n'
    )
    result = cli("import", "cli_models:Record", source, "--format", "plain", *target.options)
    assert result.exit_code == 1
    assert "line 2: id: Field required" in result.stderr
    assert "line 3: ratio:" in result.stderr
    p1 = target.run(lambda db: Record.get("p1", session=db))
    assert p1.scores == {1, 3}


def test_versioned_model_imports_through_conditional_creates(
    source_and_copy: tuple[Target, Target], tmp_path: Path
) -> None:
    source, copy = source_and_copy

    async def seed(db: dm.Session) -> None:
        entry = await Ledger.create(account="acme", entry=1, amount=EXACT, session=db)
        await entry.update(amount=Decimal("10.5"), session=db)
        await Ledger.create(account="acme", entry=2, amount=Decimal("-3"), session=db)

    source.run(seed)
    out = tmp_path / "ledgers.jsonl"
    assert cli("export", "cli_models:Ledger", out, *source.options).exit_code == 0

    first = cli("import", "cli_models:Ledger", out, *copy.options)
    assert first.exit_code == 0, first.output
    # The versions the file holds are kept, and so is everything else.
    assert copy.raw_items(Ledger) == source.raw_items(Ledger)
    assert copy.raw_items(Ledger)["acme/1"]["version"] == {"N": "2"}

    again = cli("import", "cli_models:Ledger", out, *copy.options)
    assert again.exit_code == 1
    assert "line 1: create Ledger: an item with this key already exists" in again.stderr
    assert "line 2: create Ledger" in again.stderr
    assert copy.raw_items(Ledger) == source.raw_items(Ledger)


@pytest.mark.moto_only(reason="dynalite has no transactions, which unique guards need")
def test_unique_model_import_reports_a_taken_value(target: Target, tmp_path: Path) -> None:
    target.create_tables()
    source = tmp_path / "members.jsonl"
    source.write_text(
        '{"id": "m1", "email": "ada@example.com"}\n'
        '{"id": "m2", "email": "bob@example.com"}\n'
        '{"id": "m3", "email": "ada@example.com"}\n'
    )
    result = cli("import", "cli_models:Member", source, "--format", "plain", *target.options)
    assert result.exit_code == 1
    # Conditional creates run concurrently: line 1 or line 3 takes the email first, and
    # the other is reported by its line number.
    stored = sorted(target.raw_items(Member))
    assert stored in (["m1", "m2"], ["m2", "m3"])
    refused = "line 3:" if stored == ["m1", "m2"] else "line 1:"
    assert refused in result.stderr
    assert "unique field 'email'" in result.stderr
    ada = target.run(lambda db: Member.get_by(email="ada@example.com", session=db))
    assert ada.id in stored and ada.id != "m2"


def test_export_with_segments_writes_every_item_once(target: Target, tmp_path: Path) -> None:
    target.create_tables()

    async def seed(db: dm.Session) -> None:
        async with dm.batch_write(session=db) as batch:
            for n in range(60):
                batch.put(Record(id=f"s{n:02d}", count=n))

    target.run(seed)
    out = tmp_path / "records.jsonl"
    result = cli("export", "cli_models:Record", out, "--segments", "4", *target.options)
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"]["S"] for line in out.read_text().splitlines()]
    assert sorted(ids) == [f"s{n:02d}" for n in range(60)]


# ---------------------------------------------------------------- local


def test_local_serves_until_sigterm() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynamodm", "local", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while not answers_http(url):
            assert proc.poll() is None, proc.communicate(timeout=5)
            assert time.monotonic() < deadline, "dynamodm local did not answer within 30 s"
            time.sleep(0.1)

        async def names() -> list[str]:
            async with dm.connect(endpoint_url=url, region="us-east-1") as db:
                return await db.list_tables()

        assert asyncio.run(names()) == []
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"export DYNAMODB_ENDPOINT_URL={url}" in stdout.decode()
    assert "export AWS_REGION=" in stdout.decode()
    assert not answers_http(url)


def test_tables_check_reports_every_difference(target: Target, server: ServerHandle) -> None:
    missing = cli("tables", "check", REGISTRY, *target.options)
    assert missing.exit_code == 1
    assert "differences between the tables and the models" in missing.stderr
    assert missing.stdout.count("\n") >= 3  # one line per missing table
    target.create_tables()
    checked = cli("tables", "check", REGISTRY, *target.options)
    if server.name == "dynalite":
        # dynalite cannot turn TTL on, so a model with a TTL field shows that difference
        assert checked.exit_code in (0, 1), checked.output
        assert all("ttl" in line.lower() for line in checked.stdout.splitlines()[:-1])
    else:
        assert checked.exit_code == 0, checked.output
        assert "every table matches" in checked.stdout


@pytest.mark.moto_only(reason="dynalite has no point-in-time recovery or backups")
def test_tables_pitr_and_backups(target: Target) -> None:
    target.create_tables()
    turned_on = cli("tables", "pitr", REGISTRY, *target.options)
    assert turned_on.exit_code == 0, turned_on.output
    assert "point-in-time recovery on" in turned_on.stdout
    made = cli("tables", "backup", "cli_models:Record", "nightly", *target.options)
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("nightly: ")
    listed = cli("tables", "backup", "cli_models:Record", *target.options)
    assert listed.exit_code == 0, listed.output
    assert "nightly" in listed.stdout
