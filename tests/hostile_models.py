"""Models and values shared by the hostile-input tests (unit and integration): attribute
names that DynamoDB's expression syntax would misread, numbers at DynamoDB's limits,
items sized to the byte, values nested to any depth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field
from servers import free_port

import dynamodm as dm
from dynamodm.codec import item_size

REG = dm.Registry("hostile-tests")
HOSTILE = [
    "a#b",
    "a:b",
    "a.b",
    "a[0]",
    "a b",
    "\u00e9t\u00e9",
    "\U0001f600",
    "a\x00b",
    ":v0",
    "#n1",
    "#n0.#n1",
    ":v0) OR (:v1",
    "x = :v0 AND attribute_exists(#n0",
    "\u202eevil",
    " ",
]


class Odd(dm.Model):
    """Every attribute name is one DynamoDB's expression syntax would misread."""

    class Meta:
        table = "odd-names"
        registry = REG
        indexes = (dm.GlobalIndex("ByLabel", hash_key="label", range_key="count"),)

    id: Annotated[str, dm.HashKey] = Field(alias="#id")
    sort: Annotated[str, dm.RangeKey] = Field(alias=":sort.key[0]")
    label: str | None = Field(None, alias="label with spaces")
    count: int = Field(0, alias="#count:n")  # moto takes "#n1" here for a placeholder
    name1: str = Field("", alias="#n1")
    hash_sign: str = Field("", alias="a#b")
    colon: str = Field("", alias="a:b")
    dot: str = Field("", alias="a.b")
    bracket: str = Field("", alias="a[0]")
    accented: str = Field("", alias="\u00e9t\u00e9")
    emoji: str = Field("", alias="\U0001f600")
    nul: str = Field("", alias="a\x00b")
    placeholder: str = Field("", alias=":v0")
    data: dict[str, Any] = {}
    tags: set[str] = set()


ODD_TEXT_FIELDS = [
    "hash_sign",
    "colon",
    "dot",
    "bracket",
    "accented",
    "emoji",
    "nul",
    "placeholder",
    "name1",
]


class Blob(dm.Model):
    class Meta:
        table = "blobs"
        registry = REG

    id: Annotated[str, dm.HashKey]
    body: str = Field("", alias="\U0001f600body")
    numbers: list[int] = []
    words: list[str] = []


class Figures(dm.Model):
    class Meta:
        table = "figures"
        registry = REG

    id: Annotated[str, dm.HashKey]
    n: Annotated[int, dm.RangeKey] = 0
    big: int = 0
    exact: Decimal = Decimal(0)
    ratio: float = 0.0
    anything: Any = None
    ratios: set[float] = set()


class ByBytes(dm.Model):
    class Meta:
        table = "by-bytes"
        registry = REG

    id: Annotated[bytes, dm.HashKey]


class Doc(dm.Model):
    class Meta:
        table = "docs"
        registry = REG

    id: Annotated[str, dm.HashKey]
    anything: Any = None
    tree: dict[str, Any] = {}
    rows: list[Any] = []


class Pages(dm.Model):
    class Meta:
        table = "pages"
        registry = REG
        indexes = (dm.GlobalIndex("ByOwner", hash_key="owner", range_key="n"),)

    id: Annotated[str, dm.HashKey]
    n: Annotated[int, dm.RangeKey]
    owner: str = "o"


ACCEPTED_NUMBERS = [
    10**38 - 1,
    -(10**38 - 1),
    10**38,  # 39 digits, one of them significant
    Decimal("9.9999999999999999999999999999999999999E+125"),
    Decimal("-9.9999999999999999999999999999999999999E+125"),
    Decimal("1E-130"),
    Decimal("0.00000000000000000000000000000000000001"),
    Decimal("12345678901234567890123456789012345678"),
]
REFUSED_NUMBERS = [
    10**38 + 1,
    -(10**38 + 1),
    Decimal("123456789012345678901234567890123456789"),
    Decimal("1E+126"),
    Decimal("1E-131"),
    Decimal("NaN"),
    Decimal("Infinity"),
]


def nested(levels: int, leaf: Any = "leaf", kind: str = "map") -> Any:
    """A value that spans ``levels`` levels once stored: maps (or lists) around a leaf."""
    value = leaf
    for _ in range(levels - 1):
        value = {"k": value} if kind == "map" else [value]
    return value


def odd(**values: Any) -> Odd:
    return Odd(**{"id": "#id:v0", "sort": ":v1.#n2[0]", **values})


def blob_at(size: int, unit: str = "a") -> Blob:
    """A Blob whose item is exactly ``size`` bytes by DynamoDB's rules."""
    blob = Blob(id="b1")
    room = size - item_size(Blob.__dm_codec__.encode_fields(blob))
    width = len(unit.encode())
    blob.body = unit * (room // width) + "a" * (room % width)
    assert item_size(Blob.__dm_codec__.encode_fields(blob)) == size
    return blob


@asynccontextmanager
async def offline_session() -> AsyncIterator[dm.Session]:
    """A session on a loopback port nobody listens on, whose transport fails the test if
    any request reaches it (dry runs capture requests before the transport)."""
    reached: list[str] = []
    async with dm.connect(
        endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1"
    ) as session:

        async def refuse(operation: str, request: dict[str, Any], **options: Any) -> dict[str, Any]:
            reached.append(operation)
            raise AssertionError(f"{operation} was sent")

        session.transport.send = refuse  # type: ignore[method-assign]
        yield session
    assert reached == [], f"requests reached the transport: {reached}"
