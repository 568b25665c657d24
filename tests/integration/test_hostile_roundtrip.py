"""Hostile and bad input against real servers: what the library accepts makes a correct
round trip (read back through dynamodm and through the raw client), and what it refuses
is refused before any request. The unit tests (tests/unit/test_hostile_input.py) check
the requests themselves; these check what the servers store and answer."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hostile_models import (
    ACCEPTED_NUMBERS,
    HOSTILE,
    ODD_TEXT_FIELDS,
    REFUSED_NUMBERS,
    Blob,
    Doc,
    Figures,
    Odd,
    Pages,
    blob_at,
    nested,
    odd,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import ServerHandle

import dynamodm as dm
from dynamodm.codec import MAX_ITEM_SIZE

Sent = list[tuple[str, dict[str, Any]]]


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(Odd, Blob, Figures, Doc, Pages)


async def raw(db: dm.Session, model: type[dm.Model], *key: Any) -> dict[str, Any] | None:
    response = await db.client.get_item(
        TableName=db.table_name(model), Key=db.key_of(model, *key), ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


# ---------------------------------------------------------------- names and values


async def test_hostile_names_and_values_round_trip(db: dm.Session) -> None:
    for position, text in enumerate(HOSTILE):
        item = odd(
            id=f"{text}#id",
            sort=text,
            label=text,
            count=position,
            data={text: {}},
            tags={text, ":v0"},
            **{field: text for field in ODD_TEXT_FIELDS},
        )
        await item.save()
        assert await Odd.get(item.id, text, consistent=True) == item
        stored = await raw(db, Odd, item.id, text)
        assert stored is not None
        for field in ODD_TEXT_FIELDS:
            assert stored[Odd.model_fields[field].alias] == {"S": text}  # NUL and all
        assert stored["#id"] == {"S": f"{text}#id"} and stored[":sort.key[0]"] == {"S": text}

        found = await Odd.query(
            item.id,
            Odd.sort == text,
            filter=(Odd.placeholder == text) & (Odd.nul == text) & Odd.tags.contains(":v0"),
            consistent=True,
        ).all()
        assert found == [item]
        assert await Odd.query(text, Odd.count == position, index="ByLabel").all() == [item]

        # Values that look like placeholders are compared as values, never substituted.
        await item.update(
            dm.attr(Odd.data)[text][text].set([text, ":v0", "#n0"]),
            condition=(Odd.placeholder == text) & (Odd.colon == text),
            colon=":v1",
        )
        with pytest.raises(dm.ConditionFailed):
            await item.update(condition=Odd.colon == ":v0", colon="changed")
        stored_item = await Odd.get(item.id, text, consistent=True)
        assert stored_item.colon == ":v1"
        assert stored_item.data == {text: {text: [text, ":v0", "#n0"]}}


async def test_empty_strings_and_sets_outside_keys_round_trip(
    db: dm.Session, sent: Sent, server: ServerHandle
) -> None:
    # moto answers a map key "" as the map's own type tag ({"M": {"S": ""}}): not on moto.
    data = {} if server.name == "moto" else {"": ""}
    item = odd(**{field: "" for field in ODD_TEXT_FIELDS}, data=data, tags=set())
    await item.save()
    assert await Odd.get(item.id, item.sort, consistent=True) == item
    await item.update(tags={"x"})
    await item.update(tags=set(), nul="")
    stored = await raw(db, Odd, item.id, item.sort)
    assert stored is not None and "tags" not in stored and stored["a\x00b"] == {"S": ""}
    assert (await Odd.get(item.id, item.sort, consistent=True)).tags == set()

    sent.clear()
    with pytest.raises(dm.UsageError):
        await odd(id="").save()
    with pytest.raises(dm.UsageError):
        await odd(label="").save()
    with pytest.raises(dm.UsageError):
        await Odd.get("", "s")
    assert sent == []


# ---------------------------------------------------------------- 400 KB


async def test_an_item_of_exactly_400_kb_is_stored_and_one_byte_more_never_sent(
    db: dm.Session, sent: Sent, server: ServerHandle
) -> None:
    at_limit = blob_at(MAX_ITEM_SIZE, "\U0001f600")
    if server.name == "moto":
        # moto refuses items over 405,000 bytes by its own count, short of DynamoDB's
        # 409,600: its refusal still arrives as the library's ItemTooLarge.
        with pytest.raises(dm.ItemTooLarge):
            await at_limit.save()
    else:
        await at_limit.save()
        stored = await Blob.get("b1", consistent=True)
        assert stored.body == at_limit.body  # every one of the 409,592 bytes

    sent.clear()
    over = blob_at(MAX_ITEM_SIZE + 1, "\U0001f600")
    with pytest.raises(dm.ItemTooLarge) as caught:
        await over.save()
    assert caught.value.size == MAX_ITEM_SIZE + 1
    assert sent == []


async def test_an_update_past_400_kb_is_refused_by_the_service_and_changes_nothing(
    db: dm.Session,
) -> None:
    # The whole item is known to DynamoDB alone, so this one is caught there.
    item = blob_at(300_000)
    item.id = "grows"
    await item.save()
    with pytest.raises(dm.ItemTooLarge):
        await item.update(words=["x" * 1000] * 150)
    assert await Blob.get("grows", consistent=True) == item


async def test_lists_of_10000_elements_round_trip(db: dm.Session) -> None:
    numbers = list(range(-5000, 5000))
    item = Blob(id="long", numbers=numbers)
    await item.save()
    assert (await Blob.get("long", consistent=True)).numbers == numbers
    await item.update(dm.attr(Blob.numbers).append(numbers))
    assert item.numbers == numbers * 2
    assert (await Blob.get("long", consistent=True)).numbers == numbers * 2


# ---------------------------------------------------------------- numbers and nesting


async def test_numbers_at_dynamodbs_limits_round_trip_exactly(db: dm.Session, sent: Sent) -> None:
    integers = [n for n in ACCEPTED_NUMBERS if isinstance(n, int)]
    for position, number in enumerate(ACCEPTED_NUMBERS):
        values: dict[str, Any] = {"exact": Decimal(number), "anything": number}
        if isinstance(number, int):
            values |= {"n": number, "big": number}
        item = Figures(id=f"f{position}", **values)
        await item.save()
        stored = await Figures.get(item.id, item.n, consistent=True)
        assert stored.exact == Decimal(number) and stored.big == item.big
        assert Decimal(str(stored.anything)) == Decimal(number)
    for number in integers:
        await Figures(id="range", n=number).save()
    low, high = min(integers), max(integers)
    found = await Figures.query("range", Figures.n.between(low, high), consistent=True).all()
    assert [f.n for f in found] == sorted(integers)

    near = Figures(id="near", big=10**38 - 2)
    await near.save()
    await near.update(dm.attr(Figures.big).add(1))
    assert near.big == 10**38 - 1  # exact: no float on the way

    sent.clear()
    for number in REFUSED_NUMBERS:
        with pytest.raises(dm.UsageError):
            await Figures(id="f", anything=number).save()
        with pytest.raises(dm.UsageError):
            await near.update(anything=number)
    assert sent == []


@pytest.mark.parametrize("kind", ["map", "list"])
async def test_32_levels_of_nesting_round_trip_and_33_are_never_sent(
    db: dm.Session, sent: Sent, kind: str
) -> None:
    deepest = nested(32, kind=kind)
    item = Doc(id=f"deep-{kind}", anything=deepest, tree={"a": {}})
    await item.save()
    assert (await Doc.get(item.id, consistent=True)).anything == deepest
    await item.update(dm.attr(Doc.tree)["a"]["b"].set(nested(30, kind=kind)))
    assert (await Doc.get(item.id, consistent=True)).tree == {"a": {"b": nested(30, kind=kind)}}

    sent.clear()
    for levels in (33, 1000):
        with pytest.raises(dm.UsageError, match="nested"):
            await Doc(id="too-deep", anything=nested(levels, kind=kind)).save()
        with pytest.raises(dm.UsageError, match="nested"):
            await item.update(anything=nested(levels, kind=kind))
    assert sent == []
    assert await Doc.get_or_none("too-deep", consistent=True) is None


# ---------------------------------------------------------------- cursors


async def test_cursors_resume_replay_and_refuse_what_was_not_issued(
    db: dm.Session, sent: Sent, server: ServerHandle
) -> None:
    async with dm.batch_write() as batch:
        for n in range(25):
            batch.put(Pages(id="p", n=n))
            batch.put(Pages(id="q", n=n))
    query = Pages.query("p", consistent=True)
    first = await query.page(size=10)
    assert [p.n for p in first.items] == list(range(10)) and first.cursor
    second = await query.page(cursor=first.cursor, size=10)
    assert [p.n for p in second.items] == list(range(10, 20))
    replayed = await Pages.query("p", consistent=True).page(cursor=first.cursor, size=10)
    assert replayed == second  # the same cursor, the same page
    last = await query.page(cursor=second.cursor, size=10)
    assert [p.n for p in last.items] == list(range(20, 25)) and last.cursor is None

    cursor = first.cursor
    position = random.Random(server.name).randrange(len(cursor))
    flipped = cursor[:position] + ("B" if cursor[position] == "A" else "A") + cursor[position + 1 :]
    sent.clear()
    for bad in [flipped, cursor[:-1], cursor[: len(cursor) // 2], cursor + "A", "", "."]:
        with pytest.raises(dm.InvalidCursor):
            await query.page(cursor=bad, size=10)
    for other in [Pages.query("q", consistent=True), Pages.query("p", Pages.n > 3), Pages.scan()]:
        with pytest.raises(dm.InvalidCursor):
            await other.page(cursor=cursor, size=10)
    assert sent == []

    async with dm.connect(
        endpoint_url=server.endpoint_url, table_prefix=db.table_prefix, cursor_secret="s3cret"
    ) as signed:
        signed_first = await query.page(size=10)
        assert signed_first.cursor and signed_first.cursor != cursor
        resumed = await query.page(cursor=signed_first.cursor, size=10)
        assert resumed.items == second.items
        with pytest.raises(dm.InvalidCursor):
            await query.page(cursor=cursor, size=10)  # issued without the secret
        assert signed is not db
    with pytest.raises(dm.InvalidCursor):
        await query.page(cursor=signed_first.cursor, size=10)  # issued with it


# ---------------------------------------------------------------- any text


texts = st.text(min_size=1, max_size=40) | st.sampled_from(HOSTILE)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=texts, value=texts, name=texts)
async def test_any_text_round_trips_as_key_value_and_map_key(
    db: dm.Session, key: str, value: str, name: str
) -> None:
    item = odd(id=key, sort=value, label=value, nul=value, data={name: [value, {name: value}]})
    await item.save()
    assert await Odd.get(key, value, consistent=True) == item
    found = await Odd.query(
        key,
        Odd.sort.begins_with(value),
        filter=dm.attr(Odd.data)[name][1][name] == value,
        consistent=True,
    ).all()
    assert found == [item]
    await Odd.delete_key(key, value)
