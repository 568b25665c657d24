"""Face attendance records (seed 000): one table, user_id + ISO timestamp.

| pattern                              | how                                               |
|--------------------------------------|---------------------------------------------------|
| log an event                         | PutItem (``Attendance.create``)                   |
| last event of a user                 | Query user_id, descending, first item             |
| a user's records                     | Query user_id                                     |
| a user's records between two dates   | Query user_id AND timestamp BETWEEN               |
| everyone's records between two dates | Scan with a filter (the seed has no index for it) |
| table information                    | DescribeTable                                     |
| import the CSV log                   | validate each row, BatchWriteItem                 |

The range key is a ``datetime``: dynamodm stores it as a fixed-width UTC ISO 8601
string (``2025-12-01T09:03:00.000000Z``), so string order is time order and the seed's
date-range queries are key conditions. The CSV import validates every row through the
model, reports the bad ones with their line numbers, and writes the good ones with
``dm.batch_write()`` (25 items per request, sent concurrently, retried until written).

Run it against the embedded server (default) or any endpoint in DYNAMODB_ENDPOINT_URL.
"""

import asyncio
import csv
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator

import dynamodm as dm
from dynamodm import HashKey, Model, RangeKey
from dynamodm.local import LocalServer

attendance = dm.Registry("attendance")


class Attendance(Model):
    class Meta:
        registry = attendance
        table = os.environ.get("DYNAMODB_TABLE_NAME", "attendance_records")

    user_id: Annotated[str, HashKey] = Field(min_length=1)
    timestamp: Annotated[datetime, RangeKey]
    source: Literal["camera", "web-ui", "manual"] = "camera"

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """The CSV log writes naive timestamps, in UTC."""
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


USERS = ("john_doe", "jane_roe", "sam_lee")
FIRST_DAY = date(2025, 12, 1)
DAYS = 20


def check(ok: bool, wrong: str) -> None:
    """Stop the run when a result is not the expected one."""
    if not ok:
        raise SystemExit(f"attendance FAILED: {wrong}")


def step(name: str, text: str) -> None:
    print(f"  {name:<14} {text}")


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


# -- the CSV log


def write_csv(path: Path) -> dict[int, str]:
    """Write the CSV log: one check-in per user per day, and a few bad lines.

    Returns the line numbers of the bad lines, with what is wrong with each.
    """
    lines = ["user_id,timestamp,source"]
    bad: dict[int, str] = {}
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        for n, user in enumerate(USERS):
            checked_in = datetime(day.year, day.month, day.day, 9, 3 * n + offset % 7)
            lines.append(f"{user},{checked_in.isoformat()},{'camera' if n else 'web-ui'}")
        if offset == 4:
            lines.append("sam_lee,yesterday,camera")
            bad[len(lines)] = "timestamp"
        if offset == 9:
            lines.append(",2025-12-10T09:30:00,camera")
            bad[len(lines)] = "user_id"
        if offset == 12:
            lines.append("jane_roe,2025-12-13T09:31:00,badge-reader")
            bad[len(lines)] = "source"
            lines.append("john_doe,2025-12-13T09:32:00")
            bad[len(lines)] = "source"  # a missing column: the row has no source
        if offset == 15:
            lines.append(lines[-2])
            bad[len(lines)] = "duplicate"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad


@dataclass
class Parsed:
    records: list[Attendance]
    bad: dict[int, str]  # line number -> what is wrong


def parse_csv(path: Path) -> Parsed:
    """Every row validated through the model; bad rows kept aside with their line number."""
    records: list[Attendance] = []
    bad: dict[int, str] = {}
    seen: dict[tuple[str, datetime], int] = {}
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file, restval=None)
        for row in reader:
            line = reader.line_num
            if None in row:
                bad[line] = "too many columns"
                continue
            if row.get("source") is None:
                row.pop("source", None)
                bad[line] = "source: the column is missing"
                continue
            try:
                record = Attendance.model_validate(row)
            except ValidationError as error:
                first = error.errors()[0]
                bad[line] = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
                continue
            key = (record.user_id, record.timestamp)
            if key in seen:
                bad[line] = f"duplicate of line {seen[key]}"
                continue
            seen[key] = line
            records.append(record)
    return Parsed(records, bad)


async def import_csv(path: Path) -> Parsed:
    parsed = parse_csv(path)
    async with dm.batch_write() as batch:
        for record in parsed.records:
            batch.put(record)
    check(
        batch.written == len(parsed.records),
        f"batch_write wrote {batch.written} of {len(parsed.records)} records",
    )
    return parsed


# -- the flows


async def run(endpoint_url: str, workdir: Path) -> None:
    prefix = f"attendance-{dm.new_id()[:6]}-"
    async with dm.connect(endpoint_url=endpoint_url, table_prefix=prefix) as db:
        created = await db.create_tables(*attendance.models)
        check(created == [db.table_name(Attendance)], f"create_tables returned {created}")
        step("create_tables", ", ".join(created))
        try:
            await flows(db, workdir)
        finally:
            await db.delete_tables(*attendance.models)
        check(not await db.list_tables(), "the table should be gone")
        step("delete_tables", ", ".join(created))


async def flows(db: dm.Session, workdir: Path) -> None:
    # -- import the CSV log
    path = workdir / "attendance.csv"
    expected_bad = write_csv(path)
    parsed = await import_csv(path)
    for line, problem in sorted(parsed.bad.items()):
        step("bad row", f"line {line}: {problem}")
    check(
        sorted(parsed.bad) == sorted(expected_bad),
        f"bad lines {sorted(parsed.bad)}, expected {sorted(expected_bad)}",
    )
    for line, field in expected_bad.items():
        check(parsed.bad[line].startswith(field), f"line {line}: {parsed.bad[line]}")
    check(len(parsed.records) == len(USERS) * DAYS, f"{len(parsed.records)} good rows")
    step("import", f"{len(parsed.records)} records from {path.name}, {len(parsed.bad)} bad rows")
    total = await Attendance.scan().count()
    check(total == len(USERS) * DAYS, f"{total} records stored")
    for user in USERS:
        count = await Attendance.query(user).count()
        check(count == DAYS, f"{user} has {count} records, expected {DAYS}")
    step("count", f"{total} stored, {DAYS} per user")

    # -- log new events, then the last event per user
    logged = await Attendance.create(user_id="john_doe", timestamp=datetime.now(UTC))
    check(logged.source == "camera", "the default source")
    step("log", f"john_doe at {logged.timestamp:%Y-%m-%d %H:%M:%S} from {logged.source}")
    last = await Attendance.query("john_doe", reverse=True).first()
    check(last == logged, f"john_doe's last event: {last!r}")
    last_jane = await Attendance.query("jane_roe", reverse=True).first()
    jane_day = FIRST_DAY + timedelta(days=DAYS - 1)
    check(
        last_jane is not None and last_jane.timestamp == utc(jane_day, 9, 3 + (DAYS - 1) % 7),
        f"jane_roe's last event: {last_jane!r}",
    )
    step("last event", f"john_doe {logged.timestamp:%d %b %H:%M}, jane_roe {jane_day:%d %b}")
    nobody = await Attendance.query("nobody", reverse=True).first()
    check(nobody is None, "a user without records has no last event")
    fetched = await Attendance.get("john_doe", logged.timestamp, consistent=True)
    check(fetched == logged, "get by user_id and timestamp")

    # -- date ranges (the seed's start_date=2025-12-01T00:00:00, end_date=2025-12-02T23:59:59)
    start, end = utc(date(2025, 12, 1), 0), datetime(2025, 12, 2, 23, 59, 59, tzinfo=UTC)
    in_range = dm.attr(Attendance.timestamp).between(start, end)
    johns = await Attendance.query("john_doe", in_range).all()
    check(
        [r.timestamp.date() for r in johns] == [date(2025, 12, 1), date(2025, 12, 2)],
        f"john_doe on 1-2 Dec: {johns}",
    )
    check(all(r.source == "web-ui" for r in johns), "john_doe checks in from the web UI")
    step("date range", f"john_doe, 1-2 Dec: {len(johns)} records (Query, key condition)")
    everyone = await Attendance.scan(filter=in_range).all()
    check(len(everyone) == 2 * len(USERS), f"everyone on 1-2 Dec: {len(everyone)} records")
    check({r.user_id for r in everyone} == set(USERS), "every user on 1-2 Dec")
    step("date range", f"everyone, 1-2 Dec: {len(everyone)} records (Scan, filter)")
    week = await Attendance.query(
        "sam_lee", dm.attr(Attendance.timestamp) >= utc(date(2025, 12, 14), 0), reverse=True
    ).all()
    check(len(week) == DAYS - 13, f"sam_lee since 14 Dec: {len(week)}")
    check(week == sorted(week, key=lambda r: r.timestamp, reverse=True), "newest first")

    # -- the raw item: the seed's schema, ISO timestamps as strings
    raw = await db.client.get_item(
        TableName=db.table_name(Attendance),
        Key={"user_id": {"S": "john_doe"}, "timestamp": {"S": "2025-12-01T09:00:00.000000Z"}},
    )
    check(
        raw.get("Item", {}).get("source") == {"S": "web-ui"},
        f"the raw item of john_doe on 1 Dec: {raw.get('Item')}",
    )
    step("on the wire", "timestamp = 2025-12-01T09:00:00.000000Z (S), source = web-ui")

    info = await db.describe_table(Attendance)
    check(info.status == "ACTIVE", f"table status {info.status}")
    # AWS refreshes item_count about every six hours; local servers count live.
    step("table info", f"{info.name}: {info.status}, {info.item_count} items")


async def main() -> None:
    print("attendance")
    with tempfile.TemporaryDirectory(prefix="attendance-") as workdir:
        endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL")
        if endpoint_url:
            step("server", f"{endpoint_url} (from DYNAMODB_ENDPOINT_URL)")
            await run(endpoint_url, Path(workdir))
        else:
            async with LocalServer() as server:
                step("server", f"embedded moto at {server.endpoint_url}")
                await run(server.endpoint_url, Path(workdir))
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
