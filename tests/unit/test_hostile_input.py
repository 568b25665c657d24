"""Hostile and bad input, without a server: each case is refused with the library's own
error before any request, or becomes exactly the request it should (a dry run captures
it). Attribute names and values with ``# : . [`` spaces, unicode, emoji and NUL; values
that look like placeholders; items of 400 KB +- 1 byte; 38- and 39-digit numbers; NaN
and infinities; empty strings and sets in keys and other attributes; nesting past 32
levels; lists of 10,000 elements; tampered, truncated, foreign, forged and replayed
cursors.

The session points at a loopback port nobody listens on, and its transport fails the
test if anything reaches it; dry runs capture requests before the transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from expression_grammar import check
from hostile_models import (
    ACCEPTED_NUMBERS,
    HOSTILE,
    ODD_TEXT_FIELDS,
    REFUSED_NUMBERS,
    Blob,
    ByBytes,
    Doc,
    Figures,
    Odd,
    Pages,
    blob_at,
    nested,
    odd,
    offline_session,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from servers import free_port

import dynamodm as dm
from dynamodm.codec import MAX_ITEM_SIZE
from dynamodm.cursor import DEFAULT_CURSOR_KEY, _b64, _sign

# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture
async def offline() -> AsyncIterator[dm.Session]:
    async with offline_session() as session:
        yield session


async def captured(action: Callable[[], Awaitable[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The requests ``action`` makes, captured by a dry run; every expression checked."""
    async with dm.dry_run() as dry:
        await action()
    requests = [(r.operation, r.request) for r in dry.requests]
    for _operation, request in requests:
        check(request)
    return requests


async def refused(error: type[BaseException], action: Callable[[], Awaitable[Any]]) -> str:
    """``action`` raises ``error`` and sends nothing (not even in a dry run); its message."""
    async with dm.dry_run() as dry:
        with pytest.raises(error) as caught:
            await action()
    assert dry.requests == [], [r.operation for r in dry.requests]
    return str(caught.value)


# ---------------------------------------------------------------- names and values


async def test_hostile_attribute_names_only_travel_as_placeholders(
    offline: dm.Session,
) -> None:
    item = odd(label="L", count=1, **{f: f for f in ODD_TEXT_FIELDS})
    requests = await captured(item.save)
    requests += await captured(lambda: item.save(condition=Odd.placeholder == "#n1"))
    requests += await captured(
        lambda: item.update(
            dm.attr(Odd.count).add(1),
            condition=(Odd.nul == ":v0") & Odd.emoji.exists() & (Odd.dot != "a.b"),
            **{f: f"{f}-new" for f in ODD_TEXT_FIELDS},
        )
    )
    requests += await captured(
        lambda: Odd.query(
            "L",
            Odd.count.between(0, 9),
            index="ByLabel",
            filter=Odd.bracket.begins_with("a[") | Odd.accented.contains("\u00e9"),
            attributes=["hash_sign", "colon"],
        ).all()
    )
    requests += await captured(lambda: Odd.query("#id:v0", Odd.sort >= ":v").count())
    aliases = {info.alias for info in Odd.model_fields.values() if info.alias}
    assert set(requests[0][1]["Item"]) == aliases | {"data"}  # the names, exactly
    named: set[str] = set()
    for _operation, request in requests:
        named |= set(request.get("ExpressionAttributeNames", {}).values())
    assert aliases <= named  # every one of them went through a #n placeholder
    assert {"S": "#n1"} in requests[1][1]["ExpressionAttributeValues"].values()
    assert {"S": ":v0"} in requests[2][1]["ExpressionAttributeValues"].values()


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_values_and_map_keys_are_sent_exactly(offline: dm.Session, text: str) -> None:
    item = odd(
        label=text, **{f: text for f in ODD_TEXT_FIELDS}, data={text: {text: [text]}}, tags={text}
    )
    [(operation, request)] = await captured(item.save)
    assert operation == "PutItem"
    sent = request["Item"]
    for field in ODD_TEXT_FIELDS:
        assert sent[Odd.model_fields[field].alias] == {"S": text}
    assert sent["data"] == {"M": {text: {"M": {text: {"L": [{"S": text}]}}}}}
    assert sent["tags"] == {"SS": [text]}
    assert offline.load(Odd, sent) == item  # nothing lost on the way back either

    [(_, request)] = await captured(
        lambda: item.update(dm.attr(Odd.data)[text][text].set([text, text]), nul=text)
    )
    assert text in request["ExpressionAttributeNames"].values()
    assert {"L": [{"S": text}, {"S": text}]} in request["ExpressionAttributeValues"].values()


async def test_a_lone_surrogate_is_refused_before_sending(offline: dm.Session) -> None:
    message = await refused(dm.UsageError, odd(nul="\ud800").save)
    assert "surrogate" in message and "\ud800" not in message


# ---------------------------------------------------------------- 400 KB


@pytest.mark.parametrize("unit", ["a", "\u00e9", "\U0001f600"])
async def test_an_item_of_exactly_400_kb_is_sent_and_one_byte_more_is_not(
    offline: dm.Session, unit: str
) -> None:
    at_limit = blob_at(MAX_ITEM_SIZE, unit)
    [(_, request)] = await captured(at_limit.save)
    assert request["Item"]["\U0001f600body"]["S"] == at_limit.body  # not truncated
    await captured(lambda: Blob.create(id="b2", body=at_limit.body))

    over = blob_at(MAX_ITEM_SIZE + 1, unit)
    message = await refused(dm.ItemTooLarge, over.save)
    assert "409601 bytes" in message and unit * 3 not in message
    await refused(dm.ItemTooLarge, lambda: Blob.create(id="b1", body=over.body))

    async def in_a_batch() -> None:
        async with dm.batch_write() as batch:
            batch.put(over)

    await refused(dm.ItemTooLarge, in_a_batch)

    async def in_a_transaction() -> None:
        async with dm.transaction() as tx:
            tx.put(over)

    await refused(dm.ItemTooLarge, in_a_transaction)


async def test_lists_of_10000_elements_are_sent_whole_or_refused_whole(
    offline: dm.Session,
) -> None:
    numbers = list(range(-5000, 5000))
    [(_, request)] = await captured(Blob(id="b", numbers=numbers).save)
    assert request["Item"]["numbers"] == {"L": [{"N": str(n)} for n in numbers]}
    [(_, request)] = await captured(
        lambda: Blob(id="b").update(dm.attr(Blob.numbers).append(numbers))
    )
    assert {"L": [{"N": str(n)} for n in numbers]} in request["ExpressionAttributeValues"].values()
    words = [f"{n:040d}" for n in range(10_000)]  # about 440 KB
    await refused(dm.ItemTooLarge, Blob(id="b", words=words).save)


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("number", ACCEPTED_NUMBERS, ids=str)
async def test_numbers_within_dynamodbs_38_digits_are_sent_exactly(
    offline: dm.Session, number: int | Decimal
) -> None:
    values: dict[str, Any] = {"exact": Decimal(number), "anything": number}
    if isinstance(number, int):
        values |= {"n": number, "big": number}
    item = Figures(id="f", **values)
    [(_, request)] = await captured(item.save)
    for attribute in values:
        assert Decimal(request["Item"][attribute]["N"]) == Decimal(number)
    loaded = offline.load(Figures, request["Item"])
    # An Any field reads a number back by its value (int, float or Decimal): the same
    # number, in the type that holds it exactly.
    assert Decimal(str(loaded.anything)) == Decimal(number)
    assert loaded.model_copy(update={"anything": number}) == item


@pytest.mark.parametrize("number", REFUSED_NUMBERS, ids=str)
async def test_numbers_dynamodb_cannot_hold_are_refused_before_sending(
    offline: dm.Session, number: int | Decimal
) -> None:
    item = Figures(id="f")
    await refused(dm.UsageError, Figures(id="f", anything=number).save)
    await refused(dm.UsageError, lambda: item.update(anything=number))
    await refused(dm.UsageError, lambda: Figures.scan(filter=Figures.anything == number).all())
    if isinstance(number, int):
        await refused(dm.UsageError, Figures(id="f", big=number).save)
        await refused(dm.UsageError, lambda: Figures.get("f", number))
        await refused(dm.UsageError, lambda: Figures.query("f", Figures.n > number).all())
        await refused(dm.UsageError, lambda: item.update(dm.attr(Figures.big).add(number)))
        await refused(dm.UsageError, lambda: Figures.batch_get([("f", number)]))
    else:
        with pytest.raises((ValidationError, dm.UsageError)):
            await Figures(id="f", exact=number).save()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=str)
async def test_nan_and_infinities_never_reach_a_request(offline: dm.Session, bad: float) -> None:
    with pytest.raises(ValidationError):
        Figures(id="f", ratio=bad)
    item = Figures(id="f")
    with pytest.raises(ValidationError):
        item.ratio = bad
    with pytest.raises(ValidationError):
        Figures(id="f", ratios={1.0, bad})
    with pytest.raises(ValidationError):
        await item.update(ratio=bad)
    await refused(dm.UsageError, lambda: item.update(dm.attr(Figures.ratio).add(bad)))
    await refused(dm.UsageError, lambda: Figures.scan(filter=Figures.ratio < bad).all())
    await refused(dm.UsageError, Figures(id="f", anything=bad).save)
    await refused(dm.UsageError, Figures(id="f", anything={"deep": [1, {bad}]}).save)
    await refused(dm.UsageError, lambda: item.update(anything=[bad]))
    assert item == Figures(id="f")  # nothing half applied on the instance


# ---------------------------------------------------------------- empty strings and sets


async def test_empty_keys_are_refused_before_sending(offline: dm.Session) -> None:
    await refused(dm.UsageError, lambda: Odd.get("", "s"))
    await refused(dm.UsageError, lambda: Odd.get("i", ""))
    await refused(dm.UsageError, odd(id="").save)
    await refused(dm.UsageError, lambda: Odd.create(id="i", sort=""))
    await refused(dm.UsageError, odd(label="").save)  # an index key
    await refused(dm.UsageError, lambda: Odd.query("").all())
    await refused(dm.UsageError, lambda: Odd.query("", index="ByLabel").all())
    await refused(dm.UsageError, lambda: Odd.delete_key("", "s"))
    await refused(dm.UsageError, lambda: Odd.batch_get([("", "s")]))
    await refused(dm.UsageError, lambda: dm.transact_get([(Odd, ("i", ""))]))
    await refused(dm.UsageError, lambda: ByBytes.get(b""))
    await refused(dm.UsageError, ByBytes(id=b"").save)

    async def in_a_batch() -> None:
        async with dm.batch_write() as batch:
            batch.delete_key(Odd, ("", "s"))

    await refused(dm.UsageError, in_a_batch)


async def test_empty_strings_and_sets_outside_keys_are_kept_or_omitted(
    offline: dm.Session,
) -> None:
    item = odd(**{f: "" for f in ODD_TEXT_FIELDS}, data={"": ""}, tags=set())
    [(_, request)] = await captured(item.save)
    sent = request["Item"]
    assert all(sent[Odd.model_fields[f].alias] == {"S": ""} for f in ODD_TEXT_FIELDS)
    assert sent["data"] == {"M": {"": {"S": ""}}}
    assert "tags" not in sent and "label with spaces" not in sent  # no empty set, no index key
    assert offline.load(Odd, sent) == item

    [(_, request)] = await captured(lambda: item.update(tags=set(), nul=""))
    assert (
        request["UpdateExpression"].startswith("SET ") and " REMOVE " in request["UpdateExpression"]
    )
    await refused(dm.UsageError, lambda: Odd.scan(filter=Odd.tags == set()).all())
    await refused(dm.UsageError, lambda: Odd.scan(filter=Odd.nul.begins_with("")).all())
    await refused(dm.UsageError, lambda: item.update(dm.attr(Odd.tags).add(set())))


# ---------------------------------------------------------------- nesting


@pytest.mark.parametrize("kind", ["map", "list"])
async def test_nesting_up_to_32_levels_is_sent_and_deeper_is_refused(
    offline: dm.Session, kind: str
) -> None:
    deepest = nested(32, kind=kind)
    [(_, request)] = await captured(Doc(id="d", anything=deepest).save)
    assert offline.load(Doc, request["Item"]).anything == deepest
    await captured(lambda: Doc(id="d").update(anything=deepest))
    await captured(lambda: Doc(id="d").update(dm.attr(Doc.tree)["a"].set(nested(31, kind=kind))))

    for levels in (33, 40, 400, 5_000, 50_000):
        too_deep = nested(levels, kind=kind)
        message = await refused(dm.UsageError, Doc(id="d", anything=too_deep).save)
        assert "nested" in message and "leaf" not in message
        await refused(dm.UsageError, lambda v=too_deep: Doc(id="d").update(anything=v))
        await refused(dm.UsageError, lambda v=too_deep: Doc.scan(filter=Doc.anything == v).all())

        async def in_a_batch(v: Any = too_deep) -> None:
            async with dm.batch_write() as batch:
                batch.put(Doc(id="d", rows=[v]))

        await refused(dm.UsageError, in_a_batch)
    # Under a nested path, the path's own levels count.
    await refused(
        dm.UsageError,
        lambda: Doc(id="d").update(dm.attr(Doc.tree)["a"].set(nested(32, kind=kind))),
    )


# ---------------------------------------------------------------- cursors


def cursor_for(session: dm.Session, query: dm.Query[Pages], item: Pages) -> str:
    """The cursor ``query.page()`` returns after ``item`` (the session's key signs it)."""
    return query._encode_cursor(Pages.__dm_codec__.encode_fields(item), session.cursor_key)


def forged(query: dm.Query[Pages], payload: Any) -> str:
    """A cursor signed with the default key, which is public: anyone can make one."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _b64(body) + "." + _b64(_sign(body, DEFAULT_CURSOR_KEY))


async def start_key(query: dm.Query[Pages], cursor: str) -> dict[str, Any]:
    [(_, request)] = await captured(lambda: query.page(cursor=cursor, size=2))
    key: dict[str, Any] = request["ExclusiveStartKey"]
    return key


async def test_a_genuine_cursor_resumes_where_it_stopped_however_often(
    offline: dm.Session,
) -> None:
    query = Pages.query("p", Pages.n >= 3)
    cursor = cursor_for(offline, query, Pages(id="p", n=7))
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor
    first = await start_key(query, cursor)
    assert first == {"id": {"S": "p"}, "n": {"N": "7"}}
    assert await start_key(query, cursor) == first  # replayed: the same page again
    assert await start_key(Pages.query("p", Pages.n >= 3), cursor) == first  # rebuilt query


async def test_tampered_and_truncated_cursors_are_refused_before_sending(
    offline: dm.Session,
) -> None:
    query = Pages.query("p")
    cursor = cursor_for(offline, query, Pages(id="p", n=7))
    for position in range(len(cursor)):
        for replacement in {"A", "_", "."} - {cursor[position]}:
            tampered = cursor[:position] + replacement + cursor[position + 1 :]
            await refused(dm.InvalidCursor, lambda c=tampered: query.page(cursor=c))
    for length in range(len(cursor)):
        await refused(dm.InvalidCursor, lambda c=cursor[:length]: query.page(cursor=c))
    for junk in [cursor + "A", cursor + ".", "." + cursor, cursor * 2, "A" * 100_000 + ".AA"]:
        await refused(dm.InvalidCursor, lambda c=junk: query.page(cursor=c))
    for wrong_type in [7, b"a.b", ["a", "b"], {"k": "v"}]:
        await refused(dm.InvalidCursor, lambda c=wrong_type: query.page(cursor=c))  # type: ignore[arg-type]


async def test_foreign_cursors_are_refused_before_sending(offline: dm.Session) -> None:
    item = Pages(id="p", n=7, owner="o")
    mine = Pages.query("p")
    cursor = cursor_for(offline, mine, item)
    others = [
        Pages.query("q"),  # another partition
        Pages.query("p", Pages.n > 1),  # another range condition
        Pages.query("o", index="ByOwner"),  # an index
        Pages.scan(),  # a scan
        Doc.query("p"),  # another model
    ]
    for other in others:
        await refused(dm.InvalidCursor, lambda q=other: q.page(cursor=cursor))
    async with dm.connect(
        endpoint_url=f"http://127.0.0.1:{free_port()}", cursor_secret="another secret"
    ):
        await refused(dm.InvalidCursor, lambda: mine.page(cursor=cursor))


async def test_signed_cursors_cannot_be_forged_with_the_public_key(
    offline: dm.Session,
) -> None:
    query = Pages.query("p")
    identity = query._identity()
    genuine_payload = {**identity, "k": {"id": {"S": "p"}, "n": {"N": "7"}}}
    async with dm.connect(
        endpoint_url=f"http://127.0.0.1:{free_port()}", cursor_secret="s3cret"
    ) as signed:
        await refused(dm.InvalidCursor, lambda: query.page(cursor=forged(query, genuine_payload)))
        cursor = cursor_for(signed, query, Pages(id="p", n=7))
        assert (await start_key(query, cursor))["n"] == {"N": "7"}
    # Without a secret the default key is public: a forged cursor must still hold a key
    # of this query's types, or nothing is sent.
    assert (await start_key(query, forged(query, genuine_payload)))["n"] == {"N": "7"}
    bad_keys: list[Any] = [
        {"id": {"S": "p"}, "n": "7"},
        {"id": {"S": "p"}, "n": {"S": "7"}},
        {"id": {"S": "p"}, "n": {"N": "7", "S": "7"}},
        {"id": {"S": "p"}, "n": {"N": "NaN"}},
        {"id": {"S": "p"}, "n": {"N": "1" * 39}},
        {"id": {"S": "p"}, "n": {"N": ""}},
        {"id": {"S": "p"}, "n": {"N": 7}},
        {"id": {"S": "p"}, "n": {"$b": "!!"}},
        {"id": {"S": "q"}, "n": {"N": "7"}},  # another partition
        {"id": {"S": "p"}},
        {"id": {"S": "p"}, "n": {"N": "7"}, "owner": {"S": "o"}},
        [],
        "k",
    ]
    for key in bad_keys:
        cursor = forged(query, {**identity, "k": key})
        await refused(dm.InvalidCursor, lambda c=cursor: query.page(cursor=c))
    for payload in [b"[1, 2]", b"\xff\xfe", b"null", b'"text"', b"{", b"1e999999"]:
        cursor = forged(query, payload)
        await refused(dm.InvalidCursor, lambda c=cursor: query.page(cursor=c))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cursor=st.text() | st.from_regex(r"[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{0,30}"))
async def test_any_text_as_a_cursor_is_refused_before_sending(
    offline: dm.Session, cursor: str
) -> None:
    await refused(dm.InvalidCursor, lambda: Pages.query("p").page(cursor=cursor))
