"""Binary values through the readers that leave them to the loader.

The fast transport does not search a GetItem, Query, Scan, BatchGetItem or UpdateItem
answer for binary values when every model read takes none (``instances.raw_loader``):
the items keep their base64 text, the loader decodes the undeclared attributes it keeps,
and an item whose declared attribute holds one goes down the general path decoded. Every
reader must give what the botocore transport (which always decodes) gives, bytes
included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import pytest
from pydantic import BaseModel
from servers import ServerHandle

import dynamodm as dm
from dynamodm import transport as transport_module

REG = dm.Registry("binary-reads-tests")


class Place(BaseModel):
    city: str
    lines: list[str] = []


class Plain(dm.Model):
    """No field takes a binary value: its reads leave them to the loader."""

    class Meta:
        table = "plain"
        registry = REG

    part: Annotated[str, dm.HashKey]
    id: Annotated[str, dm.RangeKey]
    name: str = ""
    tags: list[str] = []
    place: Place | None = None
    counts: dict[str, int] = {}


class Blob(dm.Model):
    """Fields that take binary values: its reads ask the transport for bytes."""

    class Meta:
        table = "blob"
        registry = REG

    part: Annotated[str, dm.HashKey]
    id: Annotated[bytes, dm.RangeKey]
    data: bytes = b""
    pieces: set[bytes] = set()


LEGACY: dict[str, Any] = {
    "legacyB": {"B": b"\x00\xff"},
    "legacyBS": {"BS": [b"\x01", b"\x02\x03"]},
    "legacyMap": {"M": {"inner": {"B": b"\x04"}, "list": {"L": [{"B": b"\x05"}, {"S": "x"}]}}},
    "legacyS": {"S": "text"},
}


def normal(extra: dict[str, Any]) -> dict[str, Any]:
    """Extra attributes with each binary set as a set (servers may reorder sets)."""
    return {k: {"BS": set(v["BS"])} if "BS" in v else v for k, v in extra.items()}


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(Plain, Blob)


@pytest.fixture
async def boto(db: dm.Session, server: ServerHandle) -> AsyncIterator[dm.Session]:
    """A session on the same tables through the botocore transport (it always decodes)."""
    async with dm.connect(
        endpoint_url=server.endpoint_url,
        region="us-east-1",
        table_prefix=db.table_prefix,
        transport="botocore",
    ) as session:
        yield session


async def seed(db: dm.Session, count: int = 6) -> None:
    """Items saved by the library; the even ones get the undeclared LEGACY attributes."""
    for n in range(count):
        await Plain(part="p", id=f"i{n}", name=f"n{n}", tags=["a"], place=Place(city="Oslo")).save()
        if n % 2 == 0:
            names = {f"#a{i}": name for i, name in enumerate(LEGACY)}
            await db.client.update_item(
                TableName=db.table_name(Plain),
                Key={"part": {"S": "p"}, "id": {"S": f"i{n}"}},
                UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(LEGACY))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":v{i}": v for i, v in enumerate(LEGACY.values())},
            )


async def stored_item(db: dm.Session, item_id: str) -> dict[str, Any]:
    """The item as stored, read around the library."""
    response = await db.client.get_item(
        TableName=db.table_name(Plain),
        Key={"part": {"S": "p"}, "id": {"S": item_id}},
        ConsistentRead=True,
    )
    item: dict[str, Any] = response["Item"]
    return item


async def put_binary_in_tags(db: dm.Session, item_id: str) -> None:
    """Store a binary value in the declared list of str ``tags``, around the library."""
    await db.client.update_item(
        TableName=db.table_name(Plain),
        Key={"part": {"S": "p"}, "id": {"S": item_id}},
        UpdateExpression="SET #t = :l",
        ExpressionAttributeNames={"#t": "tags"},
        ExpressionAttributeValues={":l": {"L": [{"B": b"\x00"}]}},
    )


Reader = Callable[[dm.Session], Awaitable[list[Plain]]]


async def by_query(session: dm.Session) -> list[Plain]:
    return await Plain.query("p", consistent=True, session=session).all()


async def by_limited_query(session: dm.Session) -> list[Plain]:
    found = []
    async for item in Plain.query("p", limit=3, consistent=True, session=session):
        found.append(item)
    return found


async def by_scan(session: dm.Session) -> list[Plain]:
    return sorted(await Plain.scan(consistent=True, session=session).all(), key=lambda p: p.id)


async def by_parallel_scan(session: dm.Session) -> list[Plain]:
    found = await Plain.scan(segments=3, consistent=True, session=session).all()
    return sorted(found, key=lambda p: p.id)


async def by_batch_get(session: dm.Session) -> list[Plain]:
    return await Plain.batch_get([("p", f"i{n}") for n in range(6)], session=session)


async def by_first(session: dm.Session) -> list[Plain]:
    found = await Plain.query("p", consistent=True, session=session).first()
    return [found] if found is not None else []


async def by_page(session: dm.Session) -> list[Plain]:
    return (await Plain.query("p", consistent=True, session=session).page(size=6)).items


async def by_get(session: dm.Session) -> list[Plain]:
    found = [await Plain.get("p", f"i{n}", consistent=True, session=session) for n in range(6)]
    return [item for item in found if item is not None]


READERS = [
    by_get,
    by_query,
    by_limited_query,
    by_scan,
    by_parallel_scan,
    by_batch_get,
    by_first,
    by_page,
]


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
async def test_undeclared_binary_values_read_as_bytes_as_botocore_reads_them(
    db: dm.Session, boto: dm.Session, reader: Reader
) -> None:
    await seed(db)

    fast = await reader(db)
    decoded = await reader(boto)

    assert fast == decoded
    assert [normal(p.extra_attributes) for p in fast] == [
        normal(p.extra_attributes) for p in decoded
    ]
    assert normal(fast[0].extra_attributes) == normal(LEGACY)
    assert fast[0].extra_attributes["legacyMap"]["M"]["inner"] == {"B": b"\x04"}


async def test_the_pages_of_a_model_without_binary_fields_are_not_searched(
    db: dm.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(db)

    class Refuse:
        def search(self, payload: bytes) -> None:
            raise AssertionError("the answer was searched for binary values")

    monkeypatch.setattr(transport_module, "_BINARY", Refuse())

    assert len(await Plain.query("p", consistent=True).all()) == 6
    assert len(await Plain.scan(segments=2, consistent=True).all()) == 6
    assert len(await Plain.batch_get([("p", "i0"), ("p", "i1")])) == 2
    item = await Plain.get("p", "i0")
    assert item is not None
    await item.update(name="refreshed")  # the ALL_NEW answer is not searched either
    assert normal(item.extra_attributes) == normal(LEGACY)
    with pytest.raises(AssertionError, match="searched"):
        await Blob.query("p").all()  # a model with binary fields: the answer is searched


async def test_a_save_after_the_read_keeps_the_undeclared_binary_values(
    db: dm.Session, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    await seed(db)
    item = (await Plain.query("p", consistent=True).all())[0]
    sent.clear()

    await item.save()
    assert sent == []  # nothing changed, nothing sent

    item.name = "renamed"
    await item.save()
    stored = await stored_item(db, "i0")
    assert stored["name"] == {"S": "renamed"}
    assert normal({k: stored[k] for k in LEGACY}) == normal(LEGACY)

    await item.save(replace=True)  # a full put sends the undeclared attributes back
    stored = await stored_item(db, "i0")
    assert normal({k: stored[k] for k in LEGACY}) == normal(LEGACY)


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
async def test_a_binary_value_in_a_declared_attribute_loads_as_botocore_loads_it(
    db: dm.Session, boto: dm.Session, reader: Reader
) -> None:
    await seed(db)
    await db.client.update_item(
        TableName=db.table_name(Plain),
        Key={"part": {"S": "p"}, "id": {"S": "i0"}},
        UpdateExpression="SET #n = :b, #t = :l",
        ExpressionAttributeNames={"#n": "name", "#t": "tags"},
        ExpressionAttributeValues={":b": {"B": b"hi"}, ":l": {"L": [{"B": b"\x00"}]}},
    )

    outcomes = []
    for session in (db, boto):
        try:
            outcomes.append(("loaded", await reader(session)))
        except dm.ItemInvalid as error:
            outcomes.append(("invalid", (error.model, error.fields, error.key)))

    # Pydantic's lax validation makes text of the bytes, through either transport.
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "loaded"


async def test_binary_in_a_declared_list_loads_as_botocore_loads_it(
    db: dm.Session, boto: dm.Session
) -> None:
    await seed(db)
    await put_binary_in_tags(db, "i2")

    fast = await Plain.query("p", consistent=True, on_invalid="skip", session=db).all()
    decoded = await Plain.query("p", consistent=True, on_invalid="skip", session=boto).all()

    assert [p.id for p in fast] == [f"i{n}" for n in range(6)]
    assert fast == decoded
    assert fast[2].tags == decoded[2].tags == ["\x00"]


async def test_models_with_binary_fields_read_bytes_from_every_reader(db: dm.Session) -> None:
    for n in range(4):
        await Blob(part="p", id=bytes([n]), data=b"\x00" * n, pieces={b"a", bytes([n])}).save()

    queried = await Blob.query("p", consistent=True).all()
    scanned = await Blob.scan(segments=2, consistent=True).all()
    got = await Blob.batch_get([("p", bytes([n])) for n in range(4)])

    assert [b.id for b in queried] == [bytes([n]) for n in range(4)]
    assert sorted(scanned, key=lambda b: b.id) == queried == got
    assert queried[3].data == b"\x00\x00\x00"
    assert queried[3].pieces == {b"a", b"\x03"}


async def test_the_rest_of_a_raw_answer_is_decoded(db: dm.Session) -> None:
    """LastEvaluatedKey (and UnprocessedKeys) are decoded even when the items are not."""
    for n in range(3):
        await Blob(part="p", id=bytes([n]), data=b"\x07").save()
    request = {
        "TableName": db.table_name(Blob),
        "KeyConditionExpression": "#p = :p",
        "ExpressionAttributeNames": {"#p": "part"},
        "ExpressionAttributeValues": {":p": {"S": "p"}},
        "Limit": 1,
        "ConsistentRead": True,
    }

    raw = await db.transport.send("Query", request, raw_binary=True)  # type: ignore[call-arg]
    decoded = await db.transport.send("Query", request)

    assert raw["Items"][0]["data"] == {"B": "Bw=="}
    assert raw["LastEvaluatedKey"] == {"part": {"S": "p"}, "id": {"B": b"\x00"}}
    assert decoded["Items"][0]["data"] == {"B": b"\x07"}
    assert decoded["LastEvaluatedKey"] == raw["LastEvaluatedKey"]


async def test_an_update_refreshes_undeclared_binary_values_as_botocore_does(
    db: dm.Session, boto: dm.Session
) -> None:
    await seed(db)
    await put_binary_in_tags(db, "i2")
    refreshed = []
    for session, name in ((db, "fast"), (boto, "botocore")):
        for n in (0, 2):  # undeclared binary values; a binary value in a declared list
            item = await Plain.get("p", f"i{n}", consistent=True, session=session)
            assert item is not None
            await item.update(name=name, session=session)
            refreshed.append(item)

    fast, decoded = refreshed[:2], refreshed[2:]
    assert [p.model_dump(exclude={"name"}) for p in fast] == [
        p.model_dump(exclude={"name"}) for p in decoded
    ]
    assert [normal(p.extra_attributes) for p in fast] == [
        normal(p.extra_attributes) for p in decoded
    ]
    assert normal(fast[0].extra_attributes) == normal(LEGACY)
    assert fast[1].tags == ["\x00"]
