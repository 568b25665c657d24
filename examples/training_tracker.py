"""Training tracker: athletes and their training sessions in one table (single-table design).

Every access pattern of the app is a GetItem or a Query; none is a Scan:

| pattern                      | how                                                   |
|------------------------------|-------------------------------------------------------|
| all athletes                 | Query GSI1, GSI1PK = "ATHLETE" (sorted by name)       |
| athlete by id                | GetItem PK = SK = "ATHLETE#<id>"                      |
| an athlete's sessions        | Query PK = "ATHLETE#<id>", begins_with(SK, "SESSION#")|
| all sessions, newest first   | Query GSI1, GSI1PK = "SESSION", descending            |
| a session by id              | Query GSI2, GSI2PK = "SESSION#<id>"                   |
| sessions between two dates   | Query GSI1 with a range on the date part of GSI1SK    |
| an athlete with its sessions | one Query of the partition (a collection)             |

Run it against the embedded server (default) or any endpoint in DYNAMODB_ENDPOINT_URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Annotated
from uuid import uuid4

from pydantic import Field

import dynamodm as dm
from dynamodm import GlobalIndex, Model, Template
from dynamodm.local import LocalServer

TABLE = os.environ.get("DYNAMODB_TABLE_NAME", "training-tracker")
tracker = dm.Registry("training-tracker")


class Athlete(Model):
    class Meta:
        table = TABLE
        registry = tracker
        entity = "ATHLETE"
        entity_attribute = "Type"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "ATHLETE#{athlete_id}")
        indexes = (
            GlobalIndex(
                "GSI1",
                hash_key=Template("GSI1PK", "ATHLETE"),
                range_key=Template("GSI1SK", "{name}#{athlete_id}"),
            ),
        )

    athlete_id: str = Field(default_factory=dm.new_id, alias="AthleteId")
    name: str = Field(alias="Name")


class TrainingSession(Model):
    class Meta:
        table = TABLE
        registry = tracker
        entity = "SESSION"
        entity_attribute = "Type"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "SESSION#{session_id}")
        indexes = (
            GlobalIndex(
                "GSI1",
                hash_key=Template("GSI1PK", "SESSION"),
                range_key=Template("GSI1SK", "{date}#{session_id}"),
            ),
            GlobalIndex("GSI2", hash_key=Template("GSI2PK", "SESSION#{session_id}")),
        )

    session_id: str = Field(default_factory=dm.new_id, alias="SessionId")
    athlete_id: str = Field(alias="AthleteId")
    athlete_name: str = Field(alias="AthleteName")
    date: dt.date = Field(alias="Date")
    duration: float = Field(alias="Duration")  # minutes
    distance: float = Field(alias="Distance")  # kilometres
    notes: str = Field("", alias="Notes")
    created_at: Annotated[dt.datetime, dm.CreatedAt] = Field(alias="CreatedAt")
    updated_at: Annotated[dt.datetime, dm.UpdatedAt] = Field(alias="UpdatedAt")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"training_tracker: wrong result: {message}")


async def run(endpoint_url: str) -> None:
    prefix = f"demo-{uuid4().hex[:6]}-"
    async with dm.connect(endpoint_url=endpoint_url, table_prefix=prefix) as db:
        created = await db.create_tables(*tracker.models)
        print(f"created {created} for {', '.join(m.__name__ for m in tracker.models)}")

        ada = await Athlete.create(name="Ada", athlete_id="ada")
        bob = await Athlete.create(name="Bob", athlete_id="bob")
        plan = [
            (ada, dt.date(2025, 3, 1), 45.0, 10.2),
            (ada, dt.date(2025, 3, 3), 30.0, 6.5),
            (bob, dt.date(2025, 3, 2), 60.0, 12.0),
            (ada, dt.date(2025, 3, 5), 50.0, 11.1),
            (bob, dt.date(2025, 3, 6), 20.0, 4.0),
        ]
        sessions = [
            await TrainingSession.create(
                session_id=f"s{n}",
                athlete_id=who.athlete_id,
                athlete_name=who.name,
                date=day,
                duration=minutes,
                distance=km,
            )
            for n, (who, day, minutes, km) in enumerate(plan, start=1)
        ]
        print(f"recorded {len(sessions)} sessions")

        everyone = await Athlete.query(index="GSI1").all()
        print("all athletes:", [a.name for a in everyone])
        check([a.name for a in everyone] == ["Ada", "Bob"], "all athletes by name")

        found = await Athlete.get(athlete_id="bob")
        check(found.name == "Bob", "athlete by id")

        ada_sessions = await TrainingSession.query(athlete_id="ada").all()
        print("Ada's sessions:", [s.session_id for s in ada_sessions])
        check([s.session_id for s in ada_sessions] == ["s1", "s2", "s4"], "an athlete's sessions")

        newest = await TrainingSession.query(index="GSI1", reverse=True).all()
        print("all sessions, newest first:", [str(s.date) for s in newest])
        check([s.session_id for s in newest] == ["s5", "s4", "s2", "s3", "s1"], "newest first")

        one = await TrainingSession.query(index="GSI2", session_id="s3").first()
        check(one is not None and one.athlete_name == "Bob", "session by id")

        window = await TrainingSession.query(
            index="GSI1",
            range_condition=dm.attr(TrainingSession.date).between(
                dt.date(2025, 3, 2), dt.date(2025, 3, 5)
            ),
        ).all()
        print("sessions 2 to 5 March:", [s.session_id for s in window])
        check([s.session_id for s in window] == ["s3", "s2", "s4"], "date range, end inclusive")

        partition = await dm.Collection(Athlete, TrainingSession).query(athlete_id="ada").grouped()
        check(len(partition[Athlete]) == 1 and len(partition[TrainingSession]) == 3, "collection")
        print(
            "Ada with her sessions in one query:",
            {m.__name__: len(v) for m, v in partition.items()},
        )

        page = await TrainingSession.query(index="GSI1").page(size=2)
        pages = [[s.session_id for s in page.items]]
        while page.cursor:
            page = await TrainingSession.query(index="GSI1").page(cursor=page.cursor, size=2)
            pages.append([s.session_id for s in page.items])
        print("sessions in pages of two:", pages)
        check(
            [s for page_ids in pages for s in page_ids] == ["s1", "s3", "s2", "s4", "s5"], "pages"
        )

        moved = sessions[0]
        await moved.update(date=dt.date(2025, 3, 7), notes="moved to Friday")
        latest = await TrainingSession.query(index="GSI1", reverse=True).first()
        check(latest is not None and latest.session_id == "s1", "GSI1SK follows the date")

        await db.delete_tables(*tracker.models)
    print("training tracker: every access pattern checked")


async def main() -> None:
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if endpoint:
        await run(endpoint)
        return
    with LocalServer() as server:
        await run(server.endpoint_url)


if __name__ == "__main__":
    asyncio.run(main())
