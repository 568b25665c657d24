"""Batch get and batch write against a scripted transport: the requests they build, what
they make of partial answers, how many requests they keep in flight, and that their work
per item does not grow with the number of items."""

from __future__ import annotations

import asyncio
import base64
import enum
import functools
import gc
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Context, Decimal
from types import FrameType
from typing import Annotated, Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import free_port

import dynamodm as dm
from dynamodm.codec import EncodedItem
from dynamodm.keys import from_values, identity_of, item_identity

REG = dm.Registry("unit-batch-requests")
Answer = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class Book(dm.Model):
    class Meta:
        table = "books"
        registry = REG

    shelf: Annotated[str, dm.HashKey]
    id: Annotated[str, dm.RangeKey]
    title: str = ""
    pages: int = 0
    tags: list[str] = []


class Scripted:
    """A transport whose answers a test writes; it records every request."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.answer: Answer | None = None

    async def send(self, operation: str, request: dict[str, Any], **options: Any) -> dict[str, Any]:
        self.sent.append((operation, request))
        assert self.answer is not None
        return await self.answer(operation, request)


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    transport = Scripted()
    async with dm.connect(
        endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1"
    ) as session:
        session.transport.send = transport.send  # type: ignore[method-assign]
        yield transport


def stored(book: int) -> dict[str, Any]:
    return {
        "shelf": {"S": "s"},
        "id": {"S": f"b{book:05d}"},
        "title": {"S": f"Title {book}"},
        "pages": {"N": str(book)},
    }


# ---------------------------------------------------------------- identity


def reference_identity(table: str, key: dict[str, Any]) -> str:
    """item_identity as it was written before its fast path (the texts must not change:
    they are compared across a batch and a transaction), string values that hold a
    separator taking the JSON form."""
    exact = Context(prec=60)

    def number(raw: str) -> str:
        value = Decimal(raw)
        return format(exact.normalize(value), "f") if value else "0"

    text = [table]
    for name in sorted(key):
        ((kind, value),) = key[name].items()
        if kind != "S" or "\x00" in value or "\x01" in value:
            canonical = {
                n: {
                    k: base64.b64encode(v).decode()
                    if isinstance(v, bytes)
                    else number(v)
                    if k == "N"
                    else v
                    for k, v in av.items()
                }
                for n, av in sorted(key.items())
            }
            return table + "\x00" + json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        text.append(f"{name}\x00S\x00{value}")
    return "\x01".join(text)


attribute_value = st.one_of(
    st.builds(lambda s: {"S": s}, st.text()),
    st.builds(lambda n: {"N": str(n)}, st.integers() | st.decimals(allow_nan=False, places=3)),
    st.builds(lambda b: {"B": b}, st.binary()),
)
key_strategy = st.dictionaries(st.sampled_from(["pk", "sk", "id", "a"]), attribute_value)


@given(
    table=st.text(),
    key=key_strategy.filter(bool),
    extra=st.dictionaries(st.text(), attribute_value),
)
def test_item_identity_and_its_in_place_form_give_the_reference_text(
    table: str, key: dict[str, Any], extra: dict[str, Any]
) -> None:
    expected = reference_identity(table, key)
    assert item_identity(table, key) == expected
    item = {**extra, **key}
    assert identity_of(table, sorted(key), item) == expected


key_part = st.none() | attribute_value | st.text(alphabet="ab\x00\x01S").map(lambda s: {"S": s})


@settings(max_examples=500)
@given(table=st.text(), pk=key_part, sk=key_part, extra=st.dictionaries(st.text(), attribute_value))
def test_the_identity_of_two_key_attributes_is_the_reference_text(
    table: str, pk: Any, sk: Any, extra: dict[str, Any]
) -> None:
    # identity_of unrolls two string attributes: every other case goes through its loop.
    key = {name: av for name, av in (("pk", pk), ("sk", sk)) if av is not None}
    item = {**{k: v for k, v in extra.items() if k not in ("pk", "sk")}, **key}
    assert identity_of(table, ["pk", "sk"], item) == reference_identity(table, key)


@given(
    st.dictionaries(st.sampled_from(["pk", "sk"]), st.text(alphabet="ab\x00\x01S"), min_size=2),
    st.dictionaries(st.sampled_from(["pk", "sk"]), st.text(alphabet="ab\x00\x01S"), min_size=2),
)
def test_two_string_keys_have_one_identity_only_when_equal(
    first: dict[str, str], second: dict[str, str]
) -> None:
    one = {name: {"S": value} for name, value in first.items()}
    two = {name: {"S": value} for name, value in second.items()}
    assert (item_identity("t", one) == item_identity("t", two)) == (one == two)
    assert (identity_of("t", ["pk", "sk"], one) == identity_of("t", ["pk", "sk"], two)) == (
        one == two
    )


def test_keys_whose_values_hold_the_separators_do_not_collide() -> None:
    # Found in review: joined as they were, these two keys gave one text, so a batch
    # write kept only the second put and a batch get could answer one for the other.
    one = {"pk": {"S": "p"}, "sk": {"S": "q\x01sk\x00S\x00r"}}
    two = {"pk": {"S": "p\x01sk\x00S\x00q"}, "sk": {"S": "r"}}
    assert item_identity("t", one) != item_identity("t", two)
    assert identity_of("t", ["pk", "sk"], one) != identity_of("t", ["pk", "sk"], two)


# ---------------------------------------------------------------- batch get


class Refused(Exception):
    """What the scripted transport raises for one request."""


async def test_batch_get_retries_unprocessed_keys_and_answers_in_the_order_asked(
    scripted: Scripted,
) -> None:
    held_back: set[str] = set()

    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        ((table, entry),) = request["RequestItems"].items()
        ids = [key["id"]["S"] for key in entry["Keys"]]
        # The first answer to each request leaves its first two keys for later, and the
        # items come back in another order than asked.
        later = [i for i in ids[:2] if i not in held_back]
        held_back.update(later)
        found = [stored(int(i[1:])) for i in ids if i not in later and i != "b00007"]
        response: dict[str, Any] = {"Responses": {table: found[::-1]}}
        if later:
            keys = [k for k in entry["Keys"] if k["id"]["S"] in later]
            response["UnprocessedKeys"] = {table: {"Keys": keys}}
        return response

    scripted.answer = answer
    asked = [("s", f"b{n:05d}") for n in range(230)] + [("s", "b00003")]
    books = await Book.batch_get(asked)

    expected = [i for _, i in asked if i != "b00007"]
    assert [b.id for b in books] == expected
    sizes = [len(next(iter(r["RequestItems"].values()))["Keys"]) for _, r in scripted.sent]
    assert sorted(sizes) == [2, 2, 2, 30, 100, 100]


async def test_batch_get_keeps_at_most_eight_requests_in_flight(scripted: Scripted) -> None:
    in_flight = 0
    most = 0

    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        ((table, entry),) = request["RequestItems"].items()
        return {"Responses": {table: [stored(int(k["id"]["S"][1:])) for k in entry["Keys"]]}}

    scripted.answer = answer
    books = await Book.batch_get([("s", f"b{n:05d}") for n in range(2_000)])

    assert len(books) == 2_000 and most == 8
    assert len(scripted.sent) == 20


async def test_batch_get_stops_the_other_requests_when_one_fails(scripted: Scripted) -> None:
    cancelled = 0

    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        nonlocal cancelled
        ((_table, entry),) = request["RequestItems"].items()
        if entry["Keys"][0]["id"]["S"] == "b00300":
            raise Refused
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return {}

    scripted.answer = answer
    with pytest.raises(Refused):
        await Book.batch_get([("s", f"b{n:05d}") for n in range(1_000)])
    # Eight requests left at once; the other seven were stopped, the last two never sent.
    assert cancelled == 7
    assert len(scripted.sent) == 8


# ---------------------------------------------------------------- batch write


async def test_batch_write_sends_each_item_as_sized_and_resends_the_unprocessed(
    scripted: Scripted,
) -> None:
    left_once: set[str] = set()

    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        ((table, requests),) = request["RequestItems"].items()
        first = requests[0]["PutRequest"]["Item"]
        if first["id"]["S"] in left_once:
            return {}
        left_once.add(first["id"]["S"])
        return {"UnprocessedItems": {table: [{"PutRequest": {"Item": dict(first)}}]}}

    scripted.answer = answer
    books = [Book(shelf="s", id=f"b{n:05d}", title=f"Title {n}", tags=["a"]) for n in range(60)]
    async with dm.batch_write() as batch:
        for book in books:
            await batch.put(book)

    assert batch.written == 60 and not batch.failed
    counts = [len(next(iter(r["RequestItems"].values()))) for _, r in scripted.sent]
    assert sorted(counts) == [1, 1, 1, 10, 25, 25]
    for _, request in scripted.sent:
        for put in next(iter(request["RequestItems"].values())):
            item = put["PutRequest"]["Item"]
            # Serialised once, when sized: the request carries that JSON.
            assert type(item) is EncodedItem and item.json is not None
            assert orjson.loads(item.json) == dict(item)


async def test_save_sends_the_sized_item_and_keeps_a_plain_copy(scripted: Scripted) -> None:
    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return {}

    scripted.answer = answer
    book = Book(shelf="s", id="b1", title="One")
    await book.save()

    ((operation, request),) = scripted.sent
    item = request["Item"]
    assert operation == "PutItem" and type(item) is EncodedItem and item.json is not None
    assert type(book._dm_stored) is dict and book._dm_stored == dict(item)


# ---------------------------------------------------------------- work per item


async def calls_per_item(action: Callable[[int], Awaitable[Any]], items: int) -> float:
    """The Python calls (and coroutine resumptions) that ``action(items)`` makes, per item."""
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        await action(items)
    finally:
        sys.setprofile(None)
    return count / items


async def test_batch_work_per_item_does_not_grow_with_the_number_of_items(
    scripted: Scripted,
) -> None:
    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        if operation == "BatchWriteItem":
            return {}
        ((table, entry),) = request["RequestItems"].items()
        return {"Responses": {table: [stored(int(k["id"]["S"][1:])) for k in entry["Keys"]]}}

    async def write(items: int) -> None:
        async with dm.batch_write() as batch:
            for n in range(items):
                await batch.put(Book(shelf="s", id=f"b{n:05d}", title="t", tags=["a", "b"]))

    async def get(items: int) -> None:
        assert len(await Book.batch_get([("s", f"b{n:05d}") for n in range(items)])) == items

    scripted.answer = answer
    for action in (write, get):
        await action(200)  # what is made once (per-model caches) is made here
        # The calls of the second half of each size, per item: fixed costs cancel out.
        # From 800 keys on, a batch get runs its full eight worker tasks, whose setup
        # would not cancel out between 200 and 400 keys (two and four tasks).
        small = 2 * await calls_per_item(action, 1_600) - await calls_per_item(action, 800)
        large = 2 * await calls_per_item(action, 20_000) - await calls_per_item(action, 10_000)
        assert large == pytest.approx(small, rel=0.02), action.__name__


@given(text=st.text() | st.text(min_size=250, max_size=1100) | st.sampled_from(["", "\ud800"]))
def test_a_string_key_is_stored_as_it_is_or_refused(text: str) -> None:
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        size = None
    if size is None or not text or size > 1024:  # the range key's limit
        with pytest.raises(dm.UsageError):
            from_values(Book, "s", text)
    else:
        assert from_values(Book, "s", text) == {"shelf": {"S": "s"}, "id": {"S": text}}


class Shelf(dm.Model):
    class Meta:
        table = "shelves"
        registry = REG

    shelf: Annotated[str, dm.HashKey]


class Dated(dm.Model):
    class Meta:
        table = "dated"
        registry = REG

    shelf: Annotated[str, dm.HashKey]
    number: Annotated[int, dm.RangeKey]


class Tone(str, enum.Enum):  # noqa: UP042 (a str mixin, as most apps declare them)
    LOW = "low"


_KEY_TEXT = (
    st.text(max_size=4)
    | st.text(min_size=250, max_size=1100)
    | st.sampled_from(["", "\ud800", "é", "\x00", Tone.LOW])
    | st.sampled_from([255, 256, 257, 1024, 1025, 2048, 2049]).map(lambda n: "k" * n)
)
_KEY_PART = _KEY_TEXT | st.integers(-3, 3) | st.none() | st.binary(max_size=3)


def _outcome(encode: Callable[[Any], Any], key: Any) -> Any:
    try:
        return encode(key)
    except dm.UsageError as error:
        return ("refused", str(error))


@given(
    key=_KEY_PART
    | st.tuples(_KEY_PART, _KEY_PART)
    | st.tuples(_KEY_PART)
    | st.tuples(_KEY_PART, _KEY_PART, _KEY_PART)
    | st.fixed_dictionaries({"shelf": _KEY_TEXT, "id": _KEY_TEXT})
)
def test_batch_gets_key_encoder_gives_what_from_any_gives(key: Any) -> None:
    from dynamodm.keys import from_any, key_encoder

    for model in (Book, Shelf, Dated):
        reference = functools.partial(from_any, model)
        assert _outcome(key_encoder(model), key) == _outcome(reference, key)


@given(
    hash_value=_KEY_PART
    | st.tuples(_KEY_PART, _KEY_PART)
    | st.fixed_dictionaries({"shelf": _KEY_TEXT}),
    range_value=_KEY_PART,
)
def test_a_positional_key_encodes_as_from_values_encodes_it(
    hash_value: Any, range_value: Any
) -> None:
    """``get(hash, range)`` and the other positional calls read a common key in place
    (``from_call``'s encoder); every key, common or not, gives what ``from_values`` gives
    or is refused with its message."""
    from dynamodm.keys import from_call, from_values

    for model in (Book, Shelf, Dated):

        def positional(values: tuple[Any, Any], model: type[dm.Model] = model) -> Any:
            return from_call(model, values[0], values[1], {})

        def reference(values: tuple[Any, Any], model: type[dm.Model] = model) -> Any:
            return from_values(model, values[0], values[1])

        pair = (hash_value, range_value)
        assert _outcome(positional, pair) == _outcome(reference, pair)
        alone = (hash_value, None)
        assert _outcome(positional, alone) == _outcome(reference, alone)


async def test_a_finished_batch_leaves_nothing_to_the_cyclic_collector(scripted: Scripted) -> None:
    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        if operation == "BatchWriteItem":
            return {}
        ((table, entry),) = request["RequestItems"].items()
        return {"Responses": {table: [stored(int(k["id"]["S"][1:])) for k in entry["Keys"]]}}

    scripted.answer = answer

    async def batches() -> None:
        async with dm.batch_write() as batch:
            for n in range(30):
                await batch.put(Book(shelf="s", id=f"b{n:05d}"))
        await Book.batch_get([("s", f"b{n:05d}") for n in range(30)])
        await Book.batch_get([("s", f"b{n:05d}") for n in range(250)])

    await batches()  # what is made once is made here
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            await batches()
        assert gc.collect() == 0  # every object was freed by its reference count
    finally:
        gc.enable()


# ---------------------------------------------------------------- the write record


class Noted(dm.Model):
    """A model with an after-save hook that reads the batch's record as it runs."""

    class Meta:
        table = "noted"
        registry = REG

    id: Annotated[str, dm.HashKey]
    seen: int = -1

    @dm.after("save")
    def note(self) -> None:
        batch = BATCHES[-1]
        self.seen = batch.written
        assert batch.written_items is not None
        SEEN.append((self.id, batch.written, len(batch.written_items)))


class Deferred(dm.Model):
    """A model with an async before-save hook (run just before the request is sent)."""

    class Meta:
        table = "deferred"
        registry = REG

    id: Annotated[str, dm.HashKey]
    stamp: str = ""

    @dm.before("save")
    async def stamp_it(self) -> None:
        self.stamp = "hooked"


BATCHES: list[dm.BatchWriter] = []
SEEN: list[tuple[str, int, int]] = []


async def test_a_batch_of_models_with_and_without_hooks_keeps_an_exact_record(
    scripted: Scripted,
) -> None:
    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return {}

    scripted.answer = answer
    SEEN.clear()
    books = [Book(shelf="s", id=f"b{n}") for n in range(30)]
    noted = [Noted(id=f"n{n}") for n in range(3)]
    async with dm.batch_write(keep_written=True) as batch:
        BATCHES.append(batch)
        # Requests of plain books only, then one with hooked items among the books.
        for book in books[:25]:
            batch.put(book)
        await asyncio.sleep(0)
        for n, book in enumerate(books[25:]):
            batch.put(book)
            if n < len(noted):
                batch.put(noted[n])
    assert batch.written == 33 and not batch.failed
    assert batch.written_items == [("put", b) for b in books[:25]] + [
        ("put", x) for pair in zip(books[25:28], noted, strict=True) for x in pair
    ] + [("put", b) for b in books[28:]]
    # Each after-hook ran once its item was counted and listed, before the next landed.
    assert SEEN == [("n0", 27, 27), ("n1", 29, 29), ("n2", 31, 31)]


async def test_a_deferred_put_replaced_by_a_plain_one_is_sent_as_the_plain_one(
    scripted: Scripted,
) -> None:
    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return {}

    scripted.answer = answer
    first, second = Deferred(id="d"), Deferred(id="d", stamp="mine")
    async with dm.batch_write() as batch:
        batch.put(first)
        batch.delete_key(Deferred, "d")
        batch.put(Book(shelf="s", id="b"))
    assert batch.written == 2
    ((_, request),) = scripted.sent
    assert request["RequestItems"]["deferred"] == [{"DeleteRequest": {"Key": {"id": {"S": "d"}}}}]
    assert first.stamp == ""  # replaced before it was sent: its hook never ran
    scripted.sent.clear()
    async with dm.batch_write() as batch:
        batch.delete_key(Deferred, "d")
        batch.put(second)
    ((_, request),) = scripted.sent
    (put,) = request["RequestItems"]["deferred"]
    assert put["PutRequest"]["Item"]["stamp"] == {"S": "hooked"} and second.stamp == "hooked"


async def test_keys_in_flight_are_written_again_in_order_and_released_when_answered(
    scripted: Scripted,
) -> None:
    release = asyncio.Event()

    async def answer(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {}

    scripted.answer = answer

    def ids(request: dict[str, Any]) -> list[str]:
        return [p["PutRequest"]["Item"]["id"]["S"] for p in request["RequestItems"]["books"]]

    async with dm.batch_write() as batch:
        for n in range(25):  # A: b0..b24
            batch.put(Book(shelf="s", id=f"b{n}", title="A"))
        for n in [*range(5), *range(25, 45)]:  # B: b0..b4 again, b25..b44
            batch.put(Book(shelf="s", id=f"b{n}", title="B"))
        for n in range(25):  # C: b0..b24 again (held by A and B)
            batch.put(Book(shelf="s", id=f"b{n}", title="C"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # Only A is sent: B and C wait for the requests that hold their keys.
        assert [ids(r) for _, r in scripted.sent] == [[f"b{n}" for n in range(25)]]
        assert len(batch._holding) == 45
        release.set()
    titles = [
        {p["PutRequest"]["Item"]["title"]["S"] for p in r["RequestItems"]["books"]}
        for _, r in scripted.sent
    ]
    assert titles == [{"A"}, {"B"}, {"C"}]
    assert batch.written == 75 and not batch._holding and not batch._inflight
