"""Multi-attribute GSI keys through a real local server: tables created and checked with
them, queries on every hash attribute and a leading run of range attributes, DynamoDB's
order (range attributes in sequence), sparse items, cursors and their start keys.

DynamoDB accepts up to four HASH and four RANGE elements in a GSI key schema (November
2025). moto 5.2.6 creates and queries them; dynalite 4.0.0 refuses such a key schema
(at most 2 KeySchema elements per index), so these tests run on moto only.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import pytest

import dynamodm as dm

pytestmark = pytest.mark.moto_only(
    reason="dynalite 4.0.0 has no multi-attribute GSI keys: its CreateTable validation "
    "allows at most 2 KeySchema elements per index (ValidationException)"
)

REG = dm.Registry("multi-key-tests")


class Shop(dm.Model):
    class Meta:
        table = "shops"
        registry = REG
        indexes = (
            dm.GlobalIndex(
                "ByPlace",
                hash_key=("tenant_id", "region"),
                range_key=("country", "city", "opened"),
            ),
            dm.GlobalIndex("ByRank", hash_key="tenant_id", range_key=("rank", "name")),
            dm.GlobalIndex(
                "ByCategory",
                hash_key=("tenant_id", dm.Template("CategoryKey", "CAT#{category}")),
                range_key=("rank", "name"),
                projection="KEYS_ONLY",
            ),
        )

    id: Annotated[str, dm.HashKey]
    tenant_id: str
    region: str = "eu"
    country: str | None = None
    city: str | None = None
    opened: date | None = None
    rank: int = 0
    name: str = "n"
    category: str = "shoes"


SHOPS = [
    # id, region, country, city, opened, rank, name
    ("s1", "eu", "FR", "Paris", date(2020, 1, 1), 10, "b"),
    ("s2", "eu", "FR", "Paris", date(2019, 5, 1), 2, "a"),
    ("s3", "eu", "FR", "Lyon", date(2021, 3, 1), 2, "c"),
    ("s4", "eu", "DE", "Berlin", date(2018, 1, 1), 7, "d"),
    ("s5", "eu", "FR", "Pau", date(2022, 1, 1), 1, "e"),
    ("s6", "us", "US", "Boston", date(2020, 1, 1), 3, "f"),
    ("s7", "eu", "FR", None, None, 4, "g"),  # no city: not in ByPlace
]


@pytest.fixture
async def shops(db: dm.Session) -> dm.Session:
    await db.create_tables(Shop)
    for shop_id, region, country, city, opened, rank, name in SHOPS:
        await Shop(
            id=shop_id,
            tenant_id="t1",
            region=region,
            country=country,
            city=city,
            opened=opened,
            rank=rank,
            name=name,
        ).save()
    await Shop(id="x1", tenant_id="t2", country="FR", city="Paris", opened=date(2020, 1, 1)).save()
    return db


def ids(items: list[Shop]) -> list[str]:
    return [item.id for item in items]


async def test_create_tables_makes_the_multi_attribute_key_schema(db: dm.Session) -> None:
    await db.create_tables(Shop)
    described = await db.client.describe_table(TableName=db.table_name(Shop))
    table = described["Table"]
    indexes = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
    assert indexes["ByPlace"] == [
        {"AttributeName": "tenant_id", "KeyType": "HASH"},
        {"AttributeName": "region", "KeyType": "HASH"},
        {"AttributeName": "country", "KeyType": "RANGE"},
        {"AttributeName": "city", "KeyType": "RANGE"},
        {"AttributeName": "opened", "KeyType": "RANGE"},
    ]
    assert indexes["ByCategory"][:2] == [
        {"AttributeName": "tenant_id", "KeyType": "HASH"},
        {"AttributeName": "CategoryKey", "KeyType": "HASH"},
    ]
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert types["rank"] == "N" and types["opened"] == "S" and types["CategoryKey"] == "S"
    await db.check_tables(Shop)  # raises ConfigurationError on any difference


async def test_check_tables_reports_a_multi_attribute_key_in_another_order(
    db: dm.Session,
) -> None:
    other = dm.Registry("multi-key-other-order")

    class Swapped(dm.Model):
        class Meta:
            table = "shops"
            registry = other
            indexes = (
                dm.GlobalIndex(
                    "ByPlace",
                    hash_key=("region", "tenant_id"),
                    range_key=("country", "city", "opened"),
                ),
            )

        id: Annotated[str, dm.HashKey]
        tenant_id: str
        region: str
        country: str | None = None
        city: str | None = None
        opened: date | None = None

    await db.create_tables(Swapped)
    with pytest.raises(dm.ConfigurationError) as caught:
        await db.check_tables(Shop)
    differences = [d for d in caught.value.differences if d.kind == "index"]
    assert len(differences) == 1
    message = differences[0].message
    assert "ByPlace" in message and "region HASH, tenant_id HASH, country RANGE" in message
    assert "tenant_id HASH, region HASH, country RANGE" in message


async def test_query_orders_by_the_range_attributes_in_sequence(shops: dm.Session) -> None:
    found = await Shop.query(("t1", "eu"), index="ByPlace").all()
    # country, then city, then opened (s7 has no city: not in the index).
    assert ids(found) == ["s4", "s3", "s2", "s1", "s5"]
    backwards = await Shop.query(tenant_id="t1", region="eu", index="ByPlace", reverse=True).all()
    assert ids(backwards) == ["s5", "s1", "s2", "s3", "s4"]


async def test_query_with_equality_on_a_leading_run(shops: dm.Session) -> None:
    paris = await Shop.query(
        ("t1", "eu"), (Shop.city == "Paris") & (Shop.country == "FR"), index="ByPlace"
    ).all()
    assert ids(paris) == ["s2", "s1"]
    by_keyword = await Shop.query(("t1", "eu"), index="ByPlace", country="FR", city="Paris").all()
    assert ids(by_keyword) == ["s2", "s1"]
    france = await Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace").all()
    assert ids(france) == ["s3", "s2", "s1", "s5"]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Shop.city.begins_with("Pa"), ["s2", "s1", "s5"]),
        (Shop.city.between("Lyon", "Paris"), ["s3", "s2", "s1"]),
        (Shop.city > "Lyon", ["s2", "s1", "s5"]),
        (Shop.city >= "Pau", ["s5"]),
        (Shop.city < "Paris", ["s3"]),
        (Shop.city <= "Paris", ["s3", "s2", "s1"]),
    ],
    ids=["begins_with", "between", "gt", "ge", "lt", "le"],
)
async def test_any_key_condition_on_the_attribute_after_the_run(
    shops: dm.Session, condition: dm.Condition, expected: list[str]
) -> None:
    found = await Shop.query(
        ("t1", "eu"), (Shop.country == "FR") & condition, index="ByPlace"
    ).all()
    assert ids(found) == expected


async def test_a_condition_on_the_last_range_attribute(shops: dm.Session) -> None:
    found = await Shop.query(
        ("t1", "eu"),
        (Shop.country == "FR")
        & (Shop.city == "Paris")
        & Shop.opened.between(date(2019, 1, 1), date(2019, 12, 31)),
        index="ByPlace",
    ).all()
    assert ids(found) == ["s2"]
    first_range = await Shop.query(("t1", "eu"), Shop.country < "FR", index="ByPlace").all()
    assert ids(first_range) == ["s4"]


async def test_number_range_attributes_order_by_value(shops: dm.Session) -> None:
    found = await Shop.query("t1", index="ByRank").all()
    # rank 1, 2 (a, c), 3, 4, 7, 10: numbers by value, then name.
    assert ids(found) == ["s5", "s2", "s3", "s6", "s7", "s4", "s1"]
    twos = await Shop.query("t1", Shop.rank == 2, index="ByRank").all()
    assert ids(twos) == ["s2", "s3"]
    ranked = await Shop.query("t1", (Shop.rank == 2) & (Shop.name > "a"), index="ByRank").all()
    assert ids(ranked) == ["s3"]


async def test_a_templated_hash_attribute_is_given_by_keyword(shops: dm.Session) -> None:
    found = await Shop.query(tenant_id="t1", category="shoes", index="ByCategory", rank=2).all()
    assert ids(found) == ["s2", "s3"]
    assert await Shop.query(tenant_id="t1", category="hats", index="ByCategory").all() == []


async def test_items_missing_a_key_attribute_are_not_in_the_index(shops: dm.Session) -> None:
    everything = await Shop.query(("t1", "eu"), index="ByPlace").all()
    assert "s7" not in ids(everything)
    # Given the missing attribute, the item enters the index.
    shop = await Shop.get("s7")
    await shop.update(city="Nice", opened=date(2023, 1, 1))
    found = await Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace").all()
    assert ids(found) == ["s3", "s7", "s2", "s1", "s5"]
    # Removing one attribute takes it out again.
    await shop.update(opened=None)
    found = await Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace").all()
    assert "s7" not in ids(found)


async def test_pages_follow_the_multi_attribute_start_key(
    shops: dm.Session, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    query = Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await query.page(cursor=cursor, size=1)
        seen += ids(page.items)
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == ["s3", "s2", "s1", "s5"]
    starts = [
        r["ExclusiveStartKey"] for op, r in sent if op == "Query" and "ExclusiveStartKey" in r
    ]
    assert starts
    # Every key attribute of the index and of the table.
    assert all(
        set(start) == {"id", "tenant_id", "region", "country", "city", "opened"} for start in starts
    )


async def test_pages_backwards_follow_the_start_key(shops: dm.Session) -> None:
    query = Shop.query(("t1", "eu"), index="ByPlace", reverse=True)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await query.page(cursor=cursor, size=2)
        seen += ids(page.items)
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == ["s5", "s1", "s2", "s3", "s4"]


async def test_limit_count_and_first_on_a_multi_attribute_index(shops: dm.Session) -> None:
    query = Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace", limit=2)
    assert ids(await query.all()) == ["s3", "s2"]
    assert await query.count() == 2
    assert await Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace").count() == 4
    first = await Shop.query(("t1", "eu"), index="ByPlace", reverse=True).first()
    assert first is not None and first.id == "s5"


async def test_a_cursor_is_refused_by_another_partition_or_range(shops: dm.Session) -> None:
    page = await Shop.query(("t1", "eu"), index="ByPlace").page(size=1)
    assert page.cursor is not None
    with pytest.raises(dm.InvalidCursor):
        await Shop.query(("t1", "us"), index="ByPlace").page(cursor=page.cursor)
    with pytest.raises(dm.InvalidCursor):
        await Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace").page(
            cursor=page.cursor
        )


async def test_writes_refuse_empty_and_oversized_index_key_values(shops: dm.Session) -> None:
    with pytest.raises(dm.UsageError, match=r"Shop\.city: an empty value"):
        await Shop(id="e1", tenant_id="t1", country="FR", city="").save()
    with pytest.raises(dm.UsageError, match=r"Shop\.city: a sort \(range\) key value is at most"):
        await Shop(id="e2", tenant_id="t1", country="FR", city="x" * 1025).save()
    with pytest.raises(dm.UsageError, match=r"Shop\.region: a partition \(hash\) key value"):
        await Shop(id="e3", tenant_id="t1", region="x" * 2049).save()
    assert await Shop.get_or_none("e1") is None
