"""Items serialised once: the JSON that measured an item's size is the JSON sent.

``sized_item`` returns an ``EncodedItem`` (a dict carrying its JSON); the fast
transport writes that JSON into the request body instead of serialising the item
again. The body must be byte for byte what serialising the plain request gives, a
changed item must never be sent with its old JSON, and other subclasses of str, int,
dict and list must be written as before the transport asked orjson to pass them on.
"""

from __future__ import annotations

import base64
import copy
import enum
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamodm.codec import (
    MAX_ITEM_SIZE,
    EncodedItem,
    ItemTooLarge,
    check_item_size,
    request_json,
    sized_item,
)


def plain_body(request: Any) -> bytes:
    """The body as the transport wrote it before items carried their JSON."""

    def b64(value: Any) -> Any:
        if isinstance(value, bytes | bytearray | memoryview):
            return base64.b64encode(value).decode()
        raise TypeError(type(value).__name__)

    return orjson.dumps(request, default=b64)


def body(request: Any) -> bytes:
    return request_json(request)


names = st.text(min_size=1, max_size=8)
scalars = st.one_of(
    st.text(max_size=20).map(lambda s: {"S": s}),
    st.integers(-(10**20), 10**20).map(lambda n: {"N": str(n)}),
    st.binary(max_size=20).map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(st.binary(min_size=1, max_size=5), min_size=1, max_size=3).map(lambda v: {"BS": v}),
    st.lists(st.text(max_size=5), min_size=1, max_size=3).map(lambda v: {"SS": v}),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(names, children, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)
items = st.dictionaries(names, values, min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(items, min_size=1, max_size=5))
def test_a_request_of_sized_items_is_the_plain_request_byte_for_byte(
    batch: list[dict[str, Any]],
) -> None:
    sized = [sized_item(item, "M", "batch put") for item in batch]
    for (encoded, size), item in zip(sized, batch, strict=True):
        assert type(encoded) is EncodedItem
        assert encoded == item
        assert encoded.json == plain_body(item)
        assert size == check_item_size(item, "M", "batch put") == len(plain_body(item))
    request = {"RequestItems": {"T": [{"PutRequest": {"Item": e}} for e, _ in sized]}}
    plain = {"RequestItems": {"T": [{"PutRequest": {"Item": i}} for i in batch]}}
    assert body(request) == plain_body(plain)
    assert orjson.loads(body(request)) == orjson.loads(plain_body(plain))


@pytest.mark.parametrize(
    "change",
    [
        lambda item: item.__setitem__("name", {"S": "changed"}),
        lambda item: item.__delitem__("name"),
        lambda item: item.pop("name"),
        lambda item: item.popitem(),
        lambda item: item.setdefault("extra", {"N": "1"}),
        lambda item: item.update(extra={"N": "1"}),
        lambda item: item.update({"name": {"S": "changed"}}),
        lambda item: item.clear(),
        lambda item: item.__ior__({"name": {"S": "changed"}}),
    ],
)
def test_a_changed_item_is_never_sent_with_its_old_json(change: Any) -> None:
    encoded, _size = sized_item({"pk": {"S": "a"}, "name": {"S": "old"}}, "M", "put")
    change(encoded)
    assert encoded.json is None
    assert orjson.loads(body({"Item": encoded})) == {"Item": dict(encoded)}


def test_copies_of_an_encoded_item_are_plain_dicts() -> None:
    encoded, _size = sized_item({"pk": {"S": "a"}, "b": {"B": b"\x00\x01"}}, "M", "put")
    for other in (
        copy.copy(encoded),
        copy.deepcopy(encoded),
        pickle.loads(pickle.dumps(encoded)),
        encoded.copy(),
        {**encoded},
    ):
        assert type(other) is dict
        assert other == encoded


class Colour(str, enum.Enum):  # noqa: UP042 (str() of it is not its value)
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Text(str):
    pass


class Count(int):
    pass


class Mapping(dict[str, Any]):
    pass


class Sequence(list[Any]):
    pass


def test_other_subclasses_are_written_as_before() -> None:
    request = {
        "TableName": Text("t"),
        "Item": Mapping(
            {
                "a": {"S": Colour.RED},
                "b": {"N": Text("12")},
                "c": {"L": Sequence([{"S": Text("x")}, {"N": Count(5)}])},
                "d": Mapping({"M": Mapping({"e": {"N": Level.HIGH}})}),
                "f": {"BOOL": True},
                "g": {"B": bytearray(b"\x01\x02")},
            }
        ),
    }
    assert body(request) == plain_body(request)


def test_the_json_measured_is_the_item_size_bound_and_large_items_are_refused() -> None:
    big = {"pk": {"S": "a"}, "blob": {"S": "x" * (MAX_ITEM_SIZE + 1)}}
    with pytest.raises(ItemTooLarge) as raised:
        sized_item(big, "Big", "put")
    assert "x" * 10 not in str(raised.value)
    # Just over the bound in JSON but within DynamoDB's exact size: sized, still sendable.
    near = {"pk": {"S": "a"}, "blob": {"S": "x" * (MAX_ITEM_SIZE - 20)}}
    encoded, size = sized_item(near, "Near", "put")
    assert size <= MAX_ITEM_SIZE
    assert orjson.loads(body({"Item": encoded})) == {"Item": near}


@settings(max_examples=300, deadline=None)
@given(items)
def test_an_item_of_bounded_attributes_is_sized_as_the_full_check_sizes_it(
    item: dict[str, Any],
) -> None:
    # Every attribute bounded: sized_item's one-dump path, which must give what the
    # measured path gives (the check of nesting then has nothing to walk).
    bounded = frozenset(item)
    encoded, size = sized_item(item, "M", "batch put", bounded)
    assert type(encoded) is EncodedItem and encoded == item
    assert encoded.json == plain_body(item)
    assert size == check_item_size(item, "M", "batch put", bounded) == len(plain_body(item))
    encoded["extra"] = {"N": "1"}
    assert encoded.json is None


def test_bounded_items_near_and_over_the_limit_are_sized_exactly_or_refused() -> None:
    big = {"pk": {"S": "a"}, "blob": {"S": "x" * (MAX_ITEM_SIZE + 1)}}
    with pytest.raises(ItemTooLarge):
        sized_item(big, "Big", "put", frozenset(big))
    # Over the bound in JSON (quotes and names) but within DynamoDB's exact size.
    near = {"pk": {"S": "a"}, "blob": {"S": "x" * (MAX_ITEM_SIZE - 20)}}
    encoded, size = sized_item(near, "Near", "put", frozenset(near))
    assert size == check_item_size(near, "Near", "put") <= MAX_ITEM_SIZE
    assert orjson.loads(body({"Item": encoded})) == {"Item": near}
