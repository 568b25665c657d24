"""Items that do not fit the model (written by an older model, or around the library):
one such item never breaks a listing, names no value, and can be skipped."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel

import dynamodm as dm

REG = dm.Registry("evolution-tests")
BAD = (3, 6, 8)


class Reading(dm.Model):
    class Meta:
        table = "readings"
        registry = REG

    account: Annotated[str, dm.HashKey]
    at: Annotated[int, dm.RangeKey]
    amount: int = 0


@pytest.fixture
async def drifted(db: dm.Session) -> dm.Session:
    """Ten readings of account "a"; three of them hold a text where the model wants an int."""
    await db.create_tables(Reading)
    for at in range(10):
        await Reading(account="a", at=at, amount=at).save()
    for at in BAD:
        await db.client.put_item(
            TableName=db.table_name(Reading),
            Item={"account": {"S": "a"}, "at": {"N": str(at)}, "amount": {"S": "secret-9"}},
        )
    return db


async def test_a_bad_item_names_model_field_and_key_but_no_value(drifted: dm.Session) -> None:
    with pytest.raises(dm.ItemInvalid) as caught:
        await Reading.get("a", 3)
    error = caught.value
    assert error.model == "Reading" and error.fields == ("amount",)
    assert error.key == {"account": {"S": "a"}, "at": {"N": "3"}}
    assert "Reading" in str(error) and "amount" in str(error)
    assert "secret-9" not in str(error) and "secret-9" not in repr(error.errors)
    assert error.__cause__ is None and error.__suppress_context__


async def test_iteration_delivers_the_good_items_and_a_cursor_past_the_bad_one(
    drifted: dm.Session,
) -> None:
    seen: list[int] = []
    query = Reading.query("a")
    with pytest.raises(dm.ItemInvalid) as caught:
        async for reading in query:
            seen.append(reading.at)
    assert seen == [0, 1, 2]
    assert caught.value.cursor is not None
    # Page by page, resuming after each bad item: every good item is reached.
    good: list[int] = []
    bad: list[int] = []
    cursor: str | None = None
    for _ in range(20):
        try:
            page = await query.page(cursor=cursor, size=4)
        except dm.ItemInvalid as error:
            good += [r.at for r in error.items]
            bad.append(int(error.key["at"]["N"]))
            cursor = error.cursor
            continue
        good += [r.at for r in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert good == [0, 1, 2, 4, 5, 7, 9]
    assert bad == list(BAD)


async def test_all_carries_the_items_read_before_the_bad_one(drifted: dm.Session) -> None:
    with pytest.raises(dm.ItemInvalid) as caught:
        await Reading.query("a").all()
    assert [r.at for r in caught.value.items] == [0, 1, 2]


async def test_on_invalid_skip_skips_counts_and_logs_the_keys(
    drifted: dm.Session, caplog: pytest.LogCaptureFixture
) -> None:
    query = Reading.query("a", on_invalid="skip")
    with caplog.at_level("WARNING", logger="dynamodm"):
        assert [r.at for r in await query.all()] == [0, 1, 2, 4, 5, 7, 9]
    assert query.skipped == 3
    skipped = [r for r in caplog.records if "does not fit" in r.getMessage()]
    assert len(skipped) == 3
    assert all("secret-9" not in r.getMessage() for r in caplog.records)
    # The key's values are on the record, never in its text (keys can be e-mails).
    assert sorted(int(r.dynamodm_key["at"]["N"]) for r in skipped) == sorted(BAD)
    for record in skipped:
        assert "key (account, at)" in record.getMessage()
        assert "'N'" not in record.getMessage() and "'S'" not in record.getMessage()
    scan = Reading.scan(on_invalid="skip")
    assert len(await scan.all()) == 7
    assert (await Reading.query("a", on_invalid="skip").first()) is not None
    caplog.clear()
    with caplog.at_level("WARNING", logger="dynamodm"):
        await Reading.batch_get([("a", at) for at in range(10)], on_invalid="skip")
    skipped = [r for r in caplog.records if "does not fit" in r.getMessage()]
    assert sorted(int(r.dynamodm_key["at"]["N"]) for r in skipped) == sorted(BAD)
    assert all("'N'" not in r.getMessage() and "'S'" not in r.getMessage() for r in skipped)


async def test_batch_get_returns_the_good_items_and_reports_the_bad_keys(
    drifted: dm.Session,
) -> None:
    keys = [("a", at) for at in range(10)]
    with pytest.raises(dm.ItemInvalid) as caught:
        await Reading.batch_get(keys)
    assert [r.at for r in caught.value.items] == [0, 1, 2, 4, 5, 7, 9]
    assert sorted(int(k["at"]["N"]) for k in caught.value.keys) == list(BAD)
    assert "secret-9" not in str(caught.value)
    skipped = await Reading.batch_get(keys, on_invalid="skip")
    assert [r.at for r in skipped] == [0, 1, 2, 4, 5, 7, 9]


class AtOnly(BaseModel):
    at: int


class Amounts(BaseModel):
    at: int
    amount: int


async def test_a_typed_projection_reads_only_its_fields(drifted: dm.Session) -> None:
    # The drifted field is not read, so every item fits the view.
    views = await Reading.query("a").project(AtOnly).all()
    assert [v.at for v in views] == list(range(10))
    assert all(type(v) is AtOnly for v in views)
    first = await Reading.query("a", Reading.at >= 5).project(AtOnly).first()
    assert first == AtOnly(at=5)
    page = await Reading.scan().project(AtOnly).page(size=4)
    assert len(page.items) == 4 and page.cursor is not None
    amounts = await Reading.query("a", on_invalid="skip").project(Amounts).all()
    assert [(v.at, v.amount) for v in amounts] == [(i, i) for i in (0, 1, 2, 4, 5, 7, 9)]


async def test_a_projection_of_unknown_fields_is_refused(drifted: dm.Session) -> None:
    class Other(BaseModel):
        colour: str

    with pytest.raises(dm.UsageError, match="'colour' is not a field of Reading"):
        Reading.query("a").project(Other)
