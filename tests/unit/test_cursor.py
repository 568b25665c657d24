"""Cursors: signed, bound to their query, refused when altered or foreign."""

from __future__ import annotations

import pytest

import dynamodm as dm
from dynamodm import cursor

IDENTITY = {"m": "User", "t": "users", "i": "", "h": "abc", "o": "Query"}
TYPES = {"pk": "S", "sk": "N"}
KEY = {"pk": {"S": "p"}, "sk": {"N": "5"}}


def decode(text: str, **changes: object) -> dict[str, object]:
    options: dict[str, object] = {
        "identity": IDENTITY,
        "key_types": TYPES,
        "secret": b"s",
        "model": "User",
    }
    options.update(changes)
    return cursor.decode(text, **options)  # type: ignore[arg-type]


def test_a_cursor_reads_back_to_its_key() -> None:
    assert decode(cursor.encode(IDENTITY, KEY, b"s")) == KEY


def test_binary_keys_survive() -> None:
    key = {"pk": {"S": "p"}, "sk": {"B": b"\x00\xff"}}
    assert decode(cursor.encode(IDENTITY, key, b"s"), key_types={"pk": "S", "sk": "B"}) == key


def test_another_secret_or_an_edit_is_refused() -> None:
    text = cursor.encode(IDENTITY, KEY, b"s")
    with pytest.raises(dm.InvalidCursor, match="altered"):
        decode(text, secret=b"t")
    with pytest.raises(dm.InvalidCursor, match="altered"):
        decode(text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1])
    with pytest.raises(dm.InvalidCursor):
        decode("no-dot")


def test_a_cursor_of_another_query_is_refused() -> None:
    text = cursor.encode({**IDENTITY, "h": "other"}, KEY, b"s")
    with pytest.raises(dm.InvalidCursor, match="another query"):
        decode(text)


def test_a_key_of_the_wrong_shape_is_refused() -> None:
    text = cursor.encode(IDENTITY, {"pk": {"S": "p"}, "sk": {"S": "five"}}, b"s")
    with pytest.raises(dm.InvalidCursor, match="this query's key"):
        decode(text)
    text = cursor.encode(IDENTITY, {"pk": {"S": "p"}}, b"s")
    with pytest.raises(dm.InvalidCursor, match="this query's key"):
        decode(text)


def test_the_fingerprint_is_stable_and_short() -> None:
    one = cursor.fingerprint(["#a = :a", {":a": {"S": "x"}}])
    assert one == cursor.fingerprint(["#a = :a", {":a": {"S": "x"}}]) and len(one) == 16
    assert one != cursor.fingerprint(["#a = :a", {":a": {"S": "y"}}])
