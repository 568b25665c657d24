"""Single-table design on both servers: key templates, entity types, overloaded indexes,
collections, and the template edge cases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm import GlobalIndex, Template

from .conftest import Sent

REG = dm.Registry("single-table-tests")


class Athlete(dm.Model):
    class Meta:
        table = "tracker"
        registry = REG
        entity = "ATHLETE"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "ATHLETE#{athlete_id}")
        indexes = (
            GlobalIndex(
                "GSI1",
                hash_key=Template("GSI1PK", "ATHLETE"),
                range_key=Template("GSI1SK", "{name}#{athlete_id}"),
            ),
        )

    athlete_id: str = Field(default_factory=dm.new_id)
    name: str


class Session_(dm.Model):
    class Meta:
        table = "tracker"
        registry = REG
        entity = "SESSION"
        hash_key = Template("PK", "ATHLETE#{athlete_id}")
        range_key = Template("SK", "SESSION#{session_id}")
        indexes = (
            GlobalIndex(
                "GSI1",
                hash_key=Template("GSI1PK", "SESSION"),
                range_key=Template("GSI1SK", "{day}#{session_id}"),
            ),
            GlobalIndex("GSI2", hash_key=Template("GSI2PK", "SESSION#{session_id}")),
        )

    session_id: str = Field(default_factory=dm.new_id)
    athlete_id: str
    day: dt.date
    minutes: float
    coach: str | None = None


@pytest.fixture(autouse=True)
async def tables(db: dm.Session) -> Any:
    await db.create_tables(Athlete, Session_)
    yield


async def raw(db: dm.Session, pk: str, sk: str) -> dict[str, Any] | None:
    answer = await db.client.get_item(
        TableName=db.table_name(Athlete),
        Key={"PK": {"S": pk}, "SK": {"S": sk}},
        ConsistentRead=True,
    )
    item: dict[str, Any] | None = answer.get("Item")
    return item


async def seed() -> None:
    await Athlete.create(athlete_id="ada", name="Ada")
    await Athlete.create(athlete_id="bob", name="Bob")
    for number, (who, day) in enumerate(
        [("ada", 1), ("ada", 3), ("bob", 2), ("ada", 5), ("bob", 6)], start=1
    ):
        await Session_.create(
            session_id=f"s{number}", athlete_id=who, day=dt.date(2025, 3, day), minutes=30.0
        )


async def test_computed_keys_and_the_entity_are_written(db: dm.Session) -> None:
    await seed()
    item = await raw(db, "ATHLETE#ada", "SESSION#s1")
    assert item is not None
    assert item["GSI1PK"] == {"S": "SESSION"}
    assert item["GSI1SK"] == {"S": "2025-03-01#s1"}
    assert item["GSI2PK"] == {"S": "SESSION#s1"}
    assert item["_type"] == {"S": "SESSION"}
    assert item["day"] == {"S": "2025-03-01"}
    athlete = await raw(db, "ATHLETE#ada", "ATHLETE#ada")
    assert athlete is not None and athlete["_type"] == {"S": "ATHLETE"}
    loaded = await Session_.get(athlete_id="ada", session_id="s1")
    assert loaded.extra_attributes == {}  # computed attributes are not kept as extras


async def test_every_access_pattern(db: dm.Session, sent: Sent) -> None:
    await seed()
    sent.clear()
    assert [a.name for a in await Athlete.query(index="GSI1").all()] == ["Ada", "Bob"]
    assert sent[-1][0] == "Query"  # all athletes: a query of the entity, not a scan
    assert (await Athlete.get(athlete_id="bob")).name == "Bob"
    assert [s.session_id for s in await Session_.query(athlete_id="ada").all()] == [
        "s1",
        "s2",
        "s4",
    ]
    request = sent[-1][1]
    assert "begins_with" in request["KeyConditionExpression"]
    assert ":v1" in request["ExpressionAttributeValues"]
    assert {"S": "SESSION#"} in request["ExpressionAttributeValues"].values()
    newest = await Session_.query(index="GSI1", reverse=True).all()
    assert [s.session_id for s in newest] == ["s5", "s4", "s2", "s3", "s1"]
    by_id = await Session_.query(index="GSI2", session_id="s3").all()
    assert [(s.session_id, s.athlete_id) for s in by_id] == [("s3", "bob")]
    assert sent[-1][0] == "Query"
    window = await Session_.query(
        index="GSI1",
        range_condition=dm.attr(Session_.day).between(dt.date(2025, 3, 2), dt.date(2025, 3, 5)),
    ).all()
    assert [s.session_id for s in window] == ["s3", "s2", "s4"]  # the end date included


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (lambda: dm.attr(Session_.day) == dt.date(2025, 3, 3), ["s2"]),
        (lambda: dm.attr(Session_.day) < dt.date(2025, 3, 3), ["s1", "s3"]),
        (lambda: dm.attr(Session_.day) <= dt.date(2025, 3, 3), ["s1", "s3", "s2"]),
        (lambda: dm.attr(Session_.day) > dt.date(2025, 3, 3), ["s4", "s5"]),
        (lambda: dm.attr(Session_.day) >= dt.date(2025, 3, 3), ["s2", "s4", "s5"]),
    ],
    ids=["eq", "lt", "le", "gt", "ge"],
)
async def test_range_conditions_on_a_template_field(
    db: dm.Session, condition: Any, expected: list[str]
) -> None:
    await seed()
    found = await Session_.query(index="GSI1", range_condition=condition()).all()
    assert [s.session_id for s in found] == expected


async def test_values_with_hash_and_braces_round_trip(db: dm.Session) -> None:
    odd = await Athlete.create(athlete_id="a#1{x}", name="Odd {name} #1")
    assert (await Athlete.get(athlete_id="a#1{x}")).name == odd.name
    item = await raw(db, "ATHLETE#a#1{x}", "ATHLETE#a#1{x}")
    assert item is not None and item["GSI1SK"] == {"S": "Odd {name} #1#a#1{x}"}
    await Session_.create(session_id="s#9", athlete_id="a#1{x}", day=dt.date(2025, 1, 1), minutes=1)
    assert [s.session_id for s in await Session_.query(athlete_id="a#1{x}").all()] == ["s#9"]


async def test_a_missing_template_field_is_a_clear_error(db: dm.Session, sent: Sent) -> None:
    sent.clear()
    with pytest.raises(dm.UsageError, match="session_id"):
        await Session_.get(athlete_id="ada")
    with pytest.raises(dm.UsageError, match="athlete_id"):
        await Session_.query(index=None).all()
    with pytest.raises(dm.UsageError, match="pass them by name"):
        await Session_.get("ada", "s1")
    with pytest.raises(dm.UsageError, match="not part of the key"):
        Session_.query(athlete_id="ada", coach="x")
    assert sent == []


async def test_an_update_of_a_template_field_rewrites_the_computed_key(db: dm.Session) -> None:
    await seed()
    session = await Session_.get(athlete_id="ada", session_id="s1")
    await session.update(day=dt.date(2025, 4, 1))
    item = await raw(db, "ATHLETE#ada", "SESSION#s1")
    assert item is not None and item["GSI1SK"] == {"S": "2025-04-01#s1"}
    assert (await Session_.query(index="GSI1", reverse=True).first()) == session
    with pytest.raises(dm.UsageError, match="table key"):
        await session.update(athlete_id="bob")
    with pytest.raises(dm.UsageError, match="keyword"):
        await session.update(dm.attr(Session_.day).set(dt.date(2025, 1, 1)))


async def test_a_none_field_leaves_its_index_attribute_out(db: dm.Session) -> None:
    class Sparse(dm.Model):
        class Meta:
            table = "sparse"
            registry = dm.Registry("sparse")
            hash_key = Template("PK", "S#{id}")
            indexes = (GlobalIndex("ByCoach", hash_key=Template("CPK", "COACH#{coach}")),)

        id: str
        coach: str | None = None

    await db.create_tables(Sparse)
    item = await Sparse.create(id="1")
    raw_item = await db.client.get_item(
        TableName=db.table_name(Sparse), Key={"PK": {"S": "S#1"}}, ConsistentRead=True
    )
    assert "CPK" not in raw_item["Item"]
    await item.update(coach="kim")
    assert [s.id for s in await Sparse.query(index="ByCoach", coach="kim").all()] == ["1"]
    await item.update(coach=None)
    assert await Sparse.query(index="ByCoach", coach="kim").all() == []


async def test_reads_dispatch_by_entity(db: dm.Session) -> None:
    await seed()
    everything = await dm.Collection(Athlete, Session_).query(athlete_id="ada").all()
    assert [type(x).__name__ for x in everything] == ["Athlete", "Session_", "Session_", "Session_"]
    assert await Athlete.scan().count() == 2  # the entity filter keeps sessions out
    assert await Session_.scan().count() == 5


async def test_a_collection_pages_across_requests(db: dm.Session) -> None:
    await seed()
    collection = dm.Collection(Athlete, Session_)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await collection.query(athlete_id="ada").page(cursor=cursor, size=1)
        seen.extend(type(x).__name__ for x in page.items)
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == ["Athlete", "Session_", "Session_", "Session_"]
    grouped = await collection.query(athlete_id="bob").grouped()
    assert {m.__name__: len(v) for m, v in grouped.items()} == {"Athlete": 1, "Session_": 2}


async def test_keyword_keys_everywhere(db: dm.Session) -> None:
    await seed()
    pairs = [{"athlete_id": "ada", "session_id": "s1"}, {"athlete_id": "bob", "session_id": "s3"}]
    assert [s.session_id for s in await Session_.batch_get(pairs)] == ["s1", "s3"]
    await Session_.delete_key(athlete_id="ada", session_id="s1")
    assert await Session_.get_or_none(athlete_id="ada", session_id="s1") is None
    made = await Session_.upsert(
        {"athlete_id": "ada", "session_id": "s9"}, day=dt.date(2025, 5, 5), minutes=5.0
    )
    assert made.athlete_id == "ada"
    assert [s.session_id for s in await Session_.query(index="GSI2", session_id="s9").all()] == [
        "s9"
    ]


def test_conflicting_index_definitions_are_refused() -> None:
    shared = dm.Registry("conflict")

    class One(dm.Model):
        class Meta:
            table = "shared"
            registry = shared
            hash_key = Template("PK", "ONE#{id}")
            indexes = (GlobalIndex("GSI1", hash_key=Template("GSI1PK", "X")),)

        id: str

    class Two(dm.Model):
        class Meta:
            table = "shared"
            registry = shared
            hash_key = Template("PK", "TWO#{id}")
            indexes = (
                GlobalIndex("GSI1", hash_key=Template("GSI1PK", "Y"), projection="KEYS_ONLY"),
            )

        id: str

    from dynamodm.schema import TableNames
    from dynamodm.tables import _group

    with pytest.raises(dm.UsageError, match="GSI1"):
        _group(TableNames(""), [One, Two])
