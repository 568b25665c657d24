"""Queries and scans through a real local server: key conditions on tables and indexes,
reverse, limits, filters, projections, first/count, cursor pages, the 1 MB page boundary,
parallel scans, and the mistakes refused before any request.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import pytest

import dynamodm as dm

REG = dm.Registry("query-tests")
T0 = datetime(2025, 12, 1, 9, tzinfo=UTC)


class Post(dm.Model):
    """Table range key ``slug``; LSI on ``score``; GSIs with datetime and bool keys."""

    class Meta:
        table = "posts"
        registry = REG
        indexes = (
            dm.LocalIndex("ByScore", range_key="score"),
            dm.GlobalIndex("ByAuthor", hash_key="author", range_key="published_at"),
            dm.GlobalIndex("ByPinned", hash_key="pinned", range_key="score"),
            dm.GlobalIndex("AuthorPinned", hash_key="author", range_key="pinned"),
            dm.GlobalIndex("AuthorKeys", hash_key="author", projection="KEYS_ONLY"),
            dm.GlobalIndex(
                "AuthorTitles", hash_key="author", range_key="score", projection=("title",)
            ),
        )

    owner: Annotated[str, dm.HashKey]
    slug: Annotated[str, dm.RangeKey]
    title: str = ""
    body: str = ""
    score: int = 0
    author: str = ""
    published_at: datetime = T0
    pinned: bool = False
    status: str = "draft"


class Reading(dm.Model):
    """A datetime range key on the table."""

    class Meta:
        table = "readings"
        registry = REG

    sensor: Annotated[str, dm.HashKey]
    at: Annotated[datetime, dm.RangeKey]
    value: float = 0.0


class Tag(dm.Model):
    """No range key."""

    class Meta:
        table = "tags"
        registry = REG

    name: Annotated[str, dm.HashKey]
    uses: int = 0


class Blob(dm.Model):
    """Items of ~10 KB, so that one partition spans several 1 MB pages."""

    class Meta:
        table = "blobs"
        registry = REG

    owner: Annotated[str, dm.HashKey]
    n: Annotated[int, dm.RangeKey]
    data: str = ""


class Article(dm.Model):
    """A Version field: a partial item must still update conditionally on it."""

    class Meta:
        table = "articles"
        registry = REG
        indexes = (dm.GlobalIndex("ByAuthor", hash_key="author", projection="KEYS_ONLY"),)

    id: Annotated[str, dm.HashKey]
    author: str
    title: str = ""
    body: str = ""
    version: Annotated[int, dm.Version] = 0


class Thing(dm.Model):
    class Meta:
        table = "things"
        registry = REG

    id: Annotated[str, dm.HashKey]
    group: int = 0


Sent = list[tuple[str, dict[str, Any]]]


@pytest.fixture
async def sent(db: dm.Session, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every request the session sends from now on, as (operation, request copy): a query
    reuses its request dict from page to page, so the shared spy's references would all
    show the last page."""
    requests: Sent = []
    transport = db.transport
    send: Callable[..., Awaitable[dict[str, Any]]] = transport.send

    async def spy(operation: str, request: dict[str, Any], **options: Any) -> dict[str, Any]:
        requests.append((operation, dict(request)))
        return await send(operation, request, **options)

    monkeypatch.setattr(transport, "send", spy)
    return requests


def slug(i: int) -> str:
    return f"p{i:02d}"


async def seed_posts(db: dm.Session) -> list[Post]:
    """ada: p00..p11 (scores 0..110, alternately pinned, authors x/y); bob: two posts."""
    await db.create_tables(Post)
    posts = [
        Post(
            owner="ada",
            slug=slug(i),
            title=f"title {i}",
            body=f"body {i}",
            score=i * 10,
            author="x" if i % 2 == 0 else "y",
            published_at=T0 + timedelta(hours=i),
            pinned=i % 2 == 1,
            status="ready" if i % 3 == 0 else "draft",
        )
        for i in range(12)
    ]
    posts += [
        Post(owner="bob", slug=slug(i), author="z", score=i, published_at=T0) for i in range(2)
    ]
    async with dm.batch_write() as batch:
        for post in posts:
            batch.put(post)
    return posts


def slugs(items: list[Post]) -> list[str]:
    return [p.slug for p in items]


def ops(sent: Sent, operation: str) -> list[dict[str, Any]]:
    return [request for op, request in sent if op == operation]


# ---------------------------------------------------------------- key conditions


async def test_query_returns_one_partition_in_range_key_order(db: dm.Session) -> None:
    posts = await seed_posts(db)

    got = await Post.query("ada", consistent=True).all()

    assert got == [p for p in posts if p.owner == "ada"]
    assert await Post.query("nobody", consistent=True).all() == []


async def test_range_conditions_on_the_table_range_key(db: dm.Session) -> None:
    await seed_posts(db)
    cases: list[tuple[dm.Condition, list[int]]] = [
        (Post.slug == "p03", [3]),
        (Post.slug < "p03", [0, 1, 2]),
        (Post.slug <= "p03", [0, 1, 2, 3]),
        (Post.slug > "p08", [9, 10, 11]),
        (Post.slug >= "p08", [8, 9, 10, 11]),
        (Post.slug.between("p02", "p04"), [2, 3, 4]),
        (Post.slug.begins_with("p1"), [10, 11]),
    ]
    for condition, expected in cases:
        got = await Post.query("ada", condition, consistent=True).all()
        assert slugs(got) == [slug(i) for i in expected], condition


async def test_range_conditions_on_a_datetime_range_key(db: dm.Session) -> None:
    await db.create_tables(Reading)
    for i in range(6):
        await Reading.create(sensor="s1", at=T0 + timedelta(days=i), value=i)
    await Reading.create(sensor="s2", at=T0, value=99)
    paris = timezone(timedelta(hours=1))
    cases: list[tuple[dm.Condition, list[int]]] = [
        (Reading.at == T0 + timedelta(days=2), [2]),
        # the same instant in another time zone compares as its UTC form
        (Reading.at == datetime(2025, 12, 3, 10, tzinfo=paris), [2]),
        (Reading.at < T0 + timedelta(days=2), [0, 1]),
        (Reading.at <= T0 + timedelta(days=2), [0, 1, 2]),
        (Reading.at > T0 + timedelta(days=3), [4, 5]),
        (Reading.at >= T0 + timedelta(days=3), [3, 4, 5]),
        (Reading.at.between(T0 + timedelta(days=1), T0 + timedelta(days=3)), [1, 2, 3]),
        (Reading.at.begins_with("2025-12-0"), [0, 1, 2, 3, 4, 5]),
        (Reading.at.begins_with("2025-12-04"), [3]),
    ]
    for condition, expected in cases:
        got = await Reading.query("s1", condition, consistent=True).all()
        assert [r.value for r in got] == expected, condition
        assert all(r.at.tzinfo is not None for r in got)


async def test_range_conditions_on_a_local_index(db: dm.Session, sent: Sent) -> None:
    await seed_posts(db)
    cases: list[tuple[dm.Condition, list[int]]] = [
        (Post.score == 30, [3]),
        (Post.score < 30, [0, 1, 2]),
        (Post.score <= 30, [0, 1, 2, 3]),
        (Post.score > 80, [9, 10, 11]),
        (Post.score >= 80, [8, 9, 10, 11]),
        (Post.score.between(15, 45), [2, 3, 4]),
    ]
    for condition, expected in cases:
        got = await Post.query("ada", condition, index="ByScore", consistent=True).all()
        assert slugs(got) == [slug(i) for i in expected], condition

    queries = ops(sent, "Query")
    assert all(q["IndexName"] == "ByScore" and q["ConsistentRead"] is True for q in queries)


async def test_range_conditions_on_a_global_index_datetime_range_key(db: dm.Session) -> None:
    await seed_posts(db)
    at = [T0 + timedelta(hours=i) for i in range(12)]
    cases: list[tuple[dm.Condition, list[int]]] = [
        (Post.published_at == at[4], [4]),
        (Post.published_at < at[4], [0, 2]),
        (Post.published_at <= at[4], [0, 2, 4]),
        (Post.published_at > at[6], [8, 10]),
        (Post.published_at >= at[6], [6, 8, 10]),
        (Post.published_at.between(at[3], at[7]), [4, 6]),
        (Post.published_at.begins_with("2025-12-01T1"), [2, 4, 6, 8, 10]),
    ]
    for condition, expected in cases:
        got = await Post.query("x", condition, index="ByAuthor").all()
        assert slugs(got) == [slug(i) for i in expected], condition


async def test_bool_global_index_keys_are_stored_as_numbers(db: dm.Session) -> None:
    await seed_posts(db)
    raw = await db.client.get_item(
        TableName=db.table_name(Post),
        Key={"owner": {"S": "ada"}, "slug": {"S": "p01"}},
        ConsistentRead=True,
    )
    assert raw["Item"]["pinned"] == {"N": "1"}

    pinned = await Post.query(True, index="ByPinned").all()
    assert slugs(pinned) == [slug(i) for i in (1, 3, 5, 7, 9, 11)]
    assert all(p.pinned is True for p in pinned)
    high = await Post.query(False, Post.score >= 60, index="ByPinned").all()
    assert [p.score for p in high] == [60, 80, 100]
    assert all(p.pinned is False for p in high)

    # a bool range key: == on its stored number
    y_pinned = await Post.query("y", Post.pinned == True, index="AuthorPinned").all()  # noqa: E712
    assert sorted(slugs(y_pinned)) == [slug(i) for i in (1, 3, 5, 7, 9, 11)]
    x_not = await Post.query("x", Post.pinned < True, index="AuthorPinned").all()
    assert sorted(slugs(x_not)) == [slug(i) for i in (0, 2, 4, 6, 8, 10)]


# ---------------------------------------------------------------- order, limits, filters


async def test_reverse_reads_in_descending_range_key_order(db: dm.Session, sent: Sent) -> None:
    await seed_posts(db)

    table = await Post.query("ada", Post.slug <= "p04", reverse=True, consistent=True).all()
    gsi = await Post.query("y", index="ByAuthor", reverse=True).all()

    assert slugs(table) == ["p04", "p03", "p02", "p01", "p00"]
    assert slugs(gsi) == ["p11", "p09", "p07", "p05", "p03", "p01"]
    table_request, gsi_request = ops(sent, "Query")
    assert table_request["ScanIndexForward"] is False
    assert gsi_request["ScanIndexForward"] is False
    assert table_request["ConsistentRead"] is True
    assert "ConsistentRead" not in gsi_request


async def test_limit_counts_returned_items(db: dm.Session) -> None:
    await seed_posts(db)

    assert slugs(await Post.query("ada", limit=5, consistent=True).all()) == [
        slug(i) for i in range(5)
    ]
    reverse = await Post.query("ada", limit=2, reverse=True, consistent=True).all()
    assert slugs(reverse) == ["p11", "p10"]
    # the filter drops items DynamoDB evaluated: the limit still counts matches
    ready = await Post.query("ada", filter=Post.status == "ready", limit=3, consistent=True).all()
    assert slugs(ready) == ["p00", "p03", "p06"]
    assert len(await Post.query("ada", limit=100, consistent=True).all()) == 12
    assert len(await Post.scan(limit=7, consistent=True).all()) == 7


async def test_filter_on_a_query_and_a_scan(db: dm.Session) -> None:
    await seed_posts(db)

    ready = await Post.query("ada", filter=Post.status == "ready", consistent=True).all()
    assert slugs(ready) == ["p00", "p03", "p06", "p09"]
    both = await Post.query(
        "ada",
        Post.slug >= "p05",
        filter=(Post.status == "ready") & (Post.score > 60),
        consistent=True,
    ).all()
    assert slugs(both) == ["p09"]
    on_gsi = await Post.query("x", index="ByAuthor", filter=Post.status == "ready").all()
    assert slugs(on_gsi) == ["p00", "p06"]
    scanned = await Post.scan(filter=Post.author == "z", consistent=True).all()
    assert sorted((p.owner, p.slug) for p in scanned) == [("bob", "p00"), ("bob", "p01")]
    # the table's keys are not the index's: an index query may filter on them
    late_x = await Post.query("x", index="ByAuthor", filter=Post.slug >= "p05").all()
    assert slugs(late_x) == ["p06", "p08", "p10"]
    late_high = await Post.query(
        "ada", Post.score >= 50, index="ByScore", filter=Post.slug < "p08", consistent=True
    ).all()
    assert slugs(late_high) == ["p05", "p06", "p07"]
    key_scan = await Post.scan(filter=Post.owner == "bob", consistent=True).all()
    assert len(key_scan) == 2  # a scan has no key condition: keys filter


async def test_scan_reads_an_index(db: dm.Session) -> None:
    await seed_posts(db)

    pinned = await Post.scan(index="ByPinned", filter=Post.score > 50).all()

    assert sorted(slugs(pinned)) == [slug(i) for i in range(6, 12)]


# ---------------------------------------------------------------- projections


async def test_attributes_load_a_partial_item(db: dm.Session) -> None:
    await seed_posts(db)

    post = await Post.query(
        "ada", Post.slug == "p03", attributes=["title"], consistent=True
    ).first()

    assert post is not None
    assert post.is_partial
    assert (post.owner, post.slug, post.title) == ("ada", "p03", "title 3")
    assert "body" not in post.model_fields_set
    with pytest.raises(dm.UsageError, match="update"):
        await post.save()

    await post.update(title="new title")

    assert not post.is_partial
    assert post.title == "new title"
    assert post.body == "body 3"  # refreshed from the stored item: nothing was lost
    stored = await Post.get("ada", "p03", consistent=True)
    assert (stored.title, stored.body, stored.score) == ("new title", "body 3", 30)


async def test_a_partial_versioned_item_updates_and_deletes(db: dm.Session) -> None:
    await db.create_tables(Article)
    await Article.create(id="a1", author="ada", title="t", body="b")
    await Article.create(id="a2", author="ada", title="t", body="b")

    partial = await Article.query("a1", attributes=["title"], consistent=True).first()
    other = await Article.query("a2", attributes=["title"], consistent=True).first()

    assert partial is not None and other is not None
    assert partial.version == 1  # the version travels with every projection
    await partial.update(title="new")
    assert (partial.version, partial.body) == (2, "b")
    stored = await Article.get("a1", consistent=True)
    assert (stored.title, stored.body, stored.version) == ("new", "b", 2)

    stale = other.model_copy()
    await other.delete()
    assert await Article.get_or_none("a2", consistent=True) is None
    with pytest.raises(dm.NotFound):
        await stale.update(title="late")


async def test_a_versioned_item_from_a_keys_only_index_updates(db: dm.Session) -> None:
    await db.create_tables(Article)
    await Article.create(id="a1", author="ada", title="t", body="b")

    keys = await Article.query("ada", index="ByAuthor").all()
    assert [a.id for a in keys] == ["a1"]
    await keys[0].update(title="new")

    stored = await Article.get("a1", consistent=True)
    assert (stored.title, stored.body, stored.version) == ("new", "b", 2)


async def test_a_field_not_loaded_is_not_read_as_its_default(db: dm.Session) -> None:
    await seed_posts(db)

    post = await Post.query("ada", Post.slug == "p03", attributes=["title"]).first()

    assert post is not None
    with pytest.raises(AttributeError):
        _ = post.score


async def test_attributes_on_a_scan(db: dm.Session) -> None:
    await seed_posts(db)

    got = await Post.scan(attributes=["score"], consistent=True).all()

    assert len(got) == 14
    assert all(p.is_partial for p in got)
    assert sorted(p.score for p in got if p.owner == "ada") == [i * 10 for i in range(12)]


async def test_keys_only_and_include_index_projections(db: dm.Session) -> None:
    await seed_posts(db)

    keys = await Post.query("x", index="AuthorKeys").all()
    titles = await Post.query("x", Post.score > 50, index="AuthorTitles").all()

    assert sorted(slugs(keys)) == [slug(i) for i in (0, 2, 4, 6, 8, 10)]
    assert all(p.is_partial and p.owner == "ada" and p.author == "x" for p in keys)
    assert all("title" not in p.model_fields_set for p in keys)
    assert [(p.slug, p.title, p.score) for p in titles] == [
        ("p06", "title 6", 60),
        ("p08", "title 8", 80),
        ("p10", "title 10", 100),
    ]
    assert all(p.is_partial and "body" not in p.model_fields_set for p in titles)
    with pytest.raises(dm.UsageError):
        await titles[0].save()


# ---------------------------------------------------------------- first, count


async def test_first_reads_until_an_item_matches(db: dm.Session) -> None:
    await seed_posts(db)

    first = await Post.query("ada", consistent=True).first()
    last = await Post.query("ada", reverse=True, consistent=True).first()
    matching = await Post.query(
        "ada", filter=Post.score > 95, consistent=True
    ).first()  # a match far into the partition
    none = await Post.query("ada", filter=Post.status == "gone", consistent=True).first()

    assert first is not None and first.slug == "p00"
    assert last is not None and last.slug == "p11"
    assert matching is not None and matching.slug == "p10"
    assert none is None
    assert await Post.query("nobody").first() is None


async def test_count_sends_select_count(db: dm.Session, sent: Sent) -> None:
    await seed_posts(db)

    assert await Post.query("ada", consistent=True).count() == 12
    assert await Post.query("ada", Post.slug < "p05", consistent=True).count() == 5
    assert await Post.query("ada", filter=Post.status == "ready", consistent=True).count() == 4
    assert await Post.query("ada", attributes=["title"], consistent=True).count() == 12
    assert await Post.query("y", index="ByAuthor").count() == 6
    assert await Post.scan(consistent=True).count() == 14
    assert await Post.scan(filter=Post.author == "z", consistent=True).count() == 2
    assert await Post.query("nobody").count() == 0

    requests = [r for op, r in sent if op in ("Query", "Scan")]
    assert len(requests) == 8
    assert all(r["Select"] == "COUNT" for r in requests)
    assert all("ProjectionExpression" not in r for r in requests)
    for r in requests:  # DynamoDB refuses unused placeholders
        used = r.get("KeyConditionExpression", "") + " " + r.get("FilterExpression", "")
        assert all(p in used for p in r.get("ExpressionAttributeNames", {}))


async def test_count_stops_at_the_limit(db: dm.Session) -> None:
    await seed_posts(db)

    assert await Post.query("ada", limit=5, consistent=True).count() == 5
    assert await Post.query("ada", limit=50, consistent=True).count() == 12


# ---------------------------------------------------------------- pages and cursors


async def collect_pages(query: dm.Query[Any], size: int) -> list[dm.Page[Any]]:
    pages = [await query.page(size=size)]
    while pages[-1].cursor is not None:
        assert len(pages) < 50, "cursor never ended"
        pages.append(await query.page(cursor=pages[-1].cursor, size=size))
    return pages


async def test_pages_return_every_item_once(db: dm.Session) -> None:
    await seed_posts(db)

    pages = await collect_pages(Post.query("ada", consistent=True), 5)

    assert [len(p.items) for p in pages] == [5, 5, 2]
    assert pages[-1].cursor is None
    assert [s for p in pages for s in slugs(p.items)] == [slug(i) for i in range(12)]
    for page in pages[:-1]:
        assert page.cursor is not None
        assert all(c.isalnum() or c in "-_." for c in page.cursor)  # URL-safe


async def test_pages_with_a_filter_and_reverse(db: dm.Session) -> None:
    await seed_posts(db)

    query = Post.query("ada", filter=Post.status == "draft", reverse=True, consistent=True)
    pages = await collect_pages(query, 3)

    got = [s for p in pages for s in slugs(p.items)]
    assert got == ["p11", "p10", "p08", "p07", "p05", "p04", "p02", "p01"]
    assert all(len(p.items) <= 3 for p in pages)
    assert pages[-1].cursor is None


async def test_pages_on_a_global_index(db: dm.Session) -> None:
    await seed_posts(db)
    # equal GSI range key values: the cursor must hold the table key too
    async with dm.batch_write() as batch:
        for i in range(7):
            batch.put(Post(owner="cy", slug=slug(i), author="w", published_at=T0))

    pages = await collect_pages(Post.query("w", index="ByAuthor"), 2)

    got = [p.slug for page in pages for p in page.items]
    assert sorted(got) == [slug(i) for i in range(7)]
    assert pages[-1].cursor is None
    filtered = await collect_pages(
        Post.query("x", index="ByAuthor", filter=Post.status == "draft"), 2
    )
    assert [p.slug for page in filtered for p in page.items] == ["p02", "p04", "p08", "p10"]


async def test_pages_on_a_scan(db: dm.Session) -> None:
    await seed_posts(db)

    pages = await collect_pages(Post.scan(consistent=True), 4)

    keys = [(p.owner, p.slug) for page in pages for p in page.items]
    assert len(keys) == 14
    assert len(set(keys)) == 14
    assert pages[-1].cursor is None


async def test_a_page_of_everything_has_no_cursor(db: dm.Session) -> None:
    await seed_posts(db)

    page = await Post.query("ada", consistent=True).page(size=50)
    empty = await Post.query("nobody", consistent=True).page(size=50)

    assert len(page.items) == 12
    assert page.cursor is None
    assert empty == dm.Page([], None)


async def test_a_page_holds_no_more_than_the_limit(db: dm.Session) -> None:
    await seed_posts(db)
    query = Post.query("ada", limit=3, consistent=True)

    first = await query.page(size=20)
    second = await query.page(cursor=first.cursor, size=20)

    assert slugs(first.items) == ["p00", "p01", "p02"]
    assert slugs(second.items) == ["p03", "p04", "p05"]


def flip_payload_byte(cursor: str) -> str:
    body, signature = cursor.split(".")
    payload = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[len(payload) // 2] ^= 0x01
    return base64.urlsafe_b64encode(bytes(payload)).rstrip(b"=").decode() + "." + signature


async def test_altered_cursors_are_refused(db: dm.Session, sent: Sent) -> None:
    await seed_posts(db)
    query = Post.query("ada", consistent=True)
    cursor = (await query.page(size=3)).cursor
    assert cursor is not None
    body, signature = cursor.split(".")
    before = len(sent)

    altered = [
        flip_payload_byte(cursor),
        body + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B"),
        cursor[:-4],
        cursor[: len(cursor) // 2],
        body,
        "",
        "not a cursor",
    ]
    for bad in altered:
        with pytest.raises(dm.InvalidCursor):
            await query.page(cursor=bad, size=3)
    assert len(sent) == before


async def test_cursors_of_other_queries_are_refused(db: dm.Session, sent: Sent) -> None:
    await seed_posts(db)
    await db.create_tables(Reading)
    for i in range(3):
        await Reading.create(sensor="ada", at=T0 + timedelta(days=i))
    table = (await Post.query("ada", consistent=True).page(size=2)).cursor
    lsi = (await Post.query("ada", index="ByScore", consistent=True).page(size=2)).cursor
    other_model = (await Reading.query("ada", consistent=True).page(size=2)).cursor
    assert table and lsi and other_model
    before = len(sent)

    with pytest.raises(dm.InvalidCursor):  # foreign hash value
        await Post.query("bob", consistent=True).page(cursor=table, size=2)
    with pytest.raises(dm.InvalidCursor):  # foreign index
        await Post.query("ada", index="ByScore", consistent=True).page(cursor=table, size=2)
    with pytest.raises(dm.InvalidCursor):  # foreign index, the other way
        await Post.query("ada", consistent=True).page(cursor=lsi, size=2)
    with pytest.raises(dm.InvalidCursor):  # foreign model
        await Post.query("ada", consistent=True).page(cursor=other_model, size=2)
    with pytest.raises(dm.InvalidCursor):  # a query's cursor on a scan
        await Post.scan(consistent=True).page(cursor=table, size=2)
    with pytest.raises(dm.InvalidCursor):  # another range condition: outside its bounds
        await Post.query("ada", Post.slug > "p08", consistent=True).page(cursor=table, size=2)
    assert len(sent) == before

    # the cursor still works where it belongs
    page = await Post.query("ada", consistent=True).page(cursor=table, size=2)
    assert slugs(page.items) == ["p02", "p03"]


# ---------------------------------------------------------------- the 1 MB page boundary


async def seed_blobs(db: dm.Session, count: int = 130) -> None:
    await db.create_tables(Blob)
    async with dm.batch_write() as batch:
        for n in range(count):
            batch.put(Blob(owner="big", n=n, data=f"{n:04d}" + "x" * 10_000))


async def test_queries_follow_the_1mb_page_boundary(db: dm.Session, sent: Sent) -> None:
    await seed_blobs(db)

    everything = await Blob.query("big", consistent=True).all()
    queries = len(ops(sent, "Query"))
    limited = await Blob.query("big", limit=120, consistent=True).all()
    matching = await Blob.query(
        "big", filter=Blob.data.begins_with("00") | Blob.data.begins_with("01"), consistent=True
    ).all()
    late_limited = await Blob.query(
        "big", filter=Blob.data.begins_with("01"), limit=25, consistent=True
    ).all()

    assert [b.n for b in everything] == list(range(130))
    assert all(len(b.data) == 10_004 for b in everything)
    assert queries >= 2  # more than one page was read
    assert [b.n for b in limited] == list(range(120))
    assert [b.n for b in matching] == list(range(130))
    assert [b.n for b in late_limited] == list(range(100, 125))
    assert await Blob.query("big", consistent=True).count() == 130
    assert await Blob.scan(consistent=True).count() == 130


async def test_pages_and_scans_cross_the_1mb_page_boundary(db: dm.Session) -> None:
    await seed_blobs(db)

    pages = await collect_pages(Blob.query("big", consistent=True), 120)
    # the first DynamoDB page (1 MB) holds no match: the page goes on to the next one
    late = await collect_pages(
        Blob.query("big", filter=Blob.data.begins_with("01"), consistent=True), 20
    )
    scanned = await Blob.scan(consistent=True).all()
    parallel = await Blob.scan(segments=4, consistent=True).all()

    assert [len(page.items) for page in pages] == [120, 10]
    assert [b.n for page in pages for b in page.items] == list(range(130))
    assert [len(page.items) for page in late] == [20, 10]
    assert [b.n for page in late for b in page.items] == list(range(100, 130))
    assert sorted(b.n for b in scanned) == list(range(130))
    assert sorted(b.n for b in parallel) == list(range(130))


# ---------------------------------------------------------------- parallel scan


async def seed_things(db: dm.Session, count: int = 60) -> None:
    await db.create_tables(Thing)
    async with dm.batch_write() as batch:
        for i in range(count):
            batch.put(Thing(id=f"t{i:03d}", group=i % 3))


async def test_parallel_scan_returns_each_item_once(db: dm.Session, sent: Sent) -> None:
    await seed_things(db)

    got = await Thing.scan(segments=4, consistent=True).all()
    filtered = await Thing.scan(filter=Thing.group == 1, segments=4, consistent=True).all()
    limited = await Thing.scan(segments=4, limit=10, consistent=True).all()

    assert sorted(t.id for t in got) == [f"t{i:03d}" for i in range(60)]
    assert sorted(t.id for t in filtered) == [f"t{i:03d}" for i in range(1, 60, 3)]
    assert len(limited) == 10
    assert len({t.id for t in limited}) == 10
    segments = {r["Segment"] for r in ops(sent, "Scan")}
    assert segments == {0, 1, 2, 3}
    assert {r["TotalSegments"] for r in ops(sent, "Scan")} == {4}


async def test_parallel_scan_yields_items_as_segments_answer(
    db: dm.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_things(db)
    transport = db.transport
    send: Callable[..., Awaitable[dict[str, Any]]] = transport.send
    segment_of: dict[str, int] = {}
    answered: set[int] = set()

    async def slow_segment_zero(
        operation: str, request: dict[str, Any], **options: Any
    ) -> dict[str, Any]:
        if request.get("Segment") == 0:
            await asyncio.sleep(1.0)
        response = await send(operation, request, **options)
        for item in response.get("Items", []):
            segment_of[item["id"]["S"]] = request["Segment"]
        answered.add(request["Segment"])
        return response

    monkeypatch.setattr(transport, "send", slow_segment_zero)

    order: list[str] = []
    segment_zero_answered_at_first_item: bool | None = None
    async for thing in Thing.scan(segments=4, consistent=True):
        if segment_zero_answered_at_first_item is None:
            segment_zero_answered_at_first_item = 0 in answered
        order.append(thing.id)

    assert segment_zero_answered_at_first_item is False  # no waiting for the slow segment
    assert sorted(order) == [f"t{i:03d}" for i in range(60)]
    arrival = [segment_of[i] for i in order]
    assert 0 in arrival
    assert len(set(arrival)) > 1, "the test needs items in more than one segment"
    first_zero = arrival.index(0)
    assert all(s == 0 for s in arrival[first_zero:]), arrival
    assert first_zero > 0


async def test_a_failing_segment_fails_the_parallel_scan(
    db: dm.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_things(db, 20)
    transport = db.transport
    send: Callable[..., Awaitable[dict[str, Any]]] = transport.send
    started: list[int] = []

    async def segment_two_fails(
        operation: str, request: dict[str, Any], **options: Any
    ) -> dict[str, Any]:
        started.append(request["Segment"])
        if request["Segment"] == 2:
            raise dm.UsageError("segment 2 failed")
        return await send(operation, request, **options)

    monkeypatch.setattr(transport, "send", segment_two_fails)

    with pytest.raises(dm.UsageError, match="segment 2 failed"):
        await asyncio.wait_for(Thing.scan(segments=4, consistent=True).all(), 10)
    assert sorted(started) == [0, 1, 2, 3]


# ---------------------------------------------------------------- mistakes, before any request


async def test_mistakes_are_refused_before_any_request(db: dm.Session, sent: Sent) -> None:
    await db.create_tables(Post, Tag)
    before = len(sent)
    mistakes: list[Callable[[], Any]] = [
        # a range condition on the wrong attribute
        lambda: Post.query("ada", Post.title == "x"),
        lambda: Post.query("ada", Post.score > 3),  # the LSI's key, not the table's
        lambda: Post.query("ada", Post.slug > "p", index="ByScore"),
        lambda: Post.query("ada", Post.owner == "ada"),  # the hash key
        lambda: Post.query("ada", Post.slug.contains("p")),  # not a key condition
        lambda: Post.query("ada", Post.slug != "p01"),
        lambda: Post.query("ada", (Post.slug > "a") & (Post.slug < "z")),
        lambda: Post.query("ada", Post.score.begins_with("1"), index="ByScore"),  # a number
        # a hash value of the wrong type
        lambda: Post.query(["ada"]),
        lambda: Post.query("x", index="ByPinned"),
        lambda: Reading.query("s1", Reading.at > "yesterday"),
        # a filter on a key attribute
        lambda: Post.query("ada", filter=Post.slug == "p01"),
        lambda: Post.query("ada", filter=Post.owner == "ada"),
        lambda: Post.query("x", index="ByAuthor", filter=Post.published_at > T0),
        lambda: Post.query("ada", index="ByScore", filter=Post.score > 3),
        # consistent reads on a GSI
        lambda: Post.query("x", index="ByAuthor", consistent=True),
        lambda: Post.scan(index="ByAuthor", consistent=True),
        # unknown index
        lambda: Post.query("ada", index="Nope"),
        lambda: Post.scan(index="Nope"),
        # limit 0 (and other non-positive limits)
        lambda: Post.query("ada", limit=0),
        lambda: Post.scan(limit=0),
        lambda: Post.query("ada", limit=-1),
        # a range condition on a table without range key
        lambda: Tag.query("python", Tag.name == "python"),
        lambda: Tag.query("python", Tag.uses > 1),
    ]
    for number, mistake in enumerate(mistakes):
        with pytest.raises(dm.UsageError):
            query = mistake()
            await query.all()
            pytest.fail(f"mistake {number} was sent")
    with pytest.raises(dm.UsageError):
        await Post.query("ada").page(size=0)

    assert len(sent) == before


async def test_usage_errors_name_the_model_and_the_fix(db: dm.Session) -> None:
    with pytest.raises(dm.UsageError, match=r"Post.*'slug'"):
        Post.query("ada", Post.title == "x")
    with pytest.raises(dm.UsageError, match=r"Post.*consistent.*'ByAuthor'"):
        Post.query("x", index="ByAuthor", consistent=True)
    with pytest.raises(dm.UsageError, match=r"Post.*'Nope'.*ByScore"):
        Post.query("ada", index="Nope")
    with pytest.raises(dm.UsageError, match=r"Post.*filter.*'slug'"):
        Post.query("ada", filter=Post.slug == "p01")
    with pytest.raises(dm.UsageError, match=r"Tag.*no range key"):
        Tag.query("python", Tag.name == "python")
    with pytest.raises(dm.UsageError, match=r"Post.*limit"):
        Post.query("ada", limit=0)
    with pytest.raises(dm.UsageError, match=r"Post.*'owner'"):
        Post.query(["ada"])
