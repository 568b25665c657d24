"""Keys and item identity: one text per item, however its numbers are written."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dynamodm as dm
from dynamodm import HashKey, Model, RangeKey
from dynamodm.keys import from_any, from_instance, item_identity, key_from_text, key_text

REGISTRY = dm.Registry("unit-keys")


class Reading(Model):
    class Meta:
        table = "readings"
        registry = REGISTRY

    sensor: Annotated[str, HashKey]
    at: Annotated[Decimal, RangeKey]


def test_from_any_takes_a_tuple_and_validates_through_the_field_types() -> None:
    assert from_any(Reading, ("s-1", "2.50")) == {"sensor": {"S": "s-1"}, "at": {"N": "2.50"}}
    with pytest.raises(dm.UsageError, match="a key tuple is"):
        from_any(Reading, ("s-1", 1, 2))
    with pytest.raises(dm.UsageError, match="cannot be empty"):
        from_any(Reading, ("", 1))


def test_from_instance_is_the_instance_key() -> None:
    reading = Reading(sensor="s-1", at=Decimal("7"))
    assert from_instance(reading) == {"sensor": {"S": "s-1"}, "at": {"N": "7"}}


@pytest.mark.parametrize("text", ["1.5", "1.50", "15E-1", "0.15e1"])
def test_equal_numbers_give_one_identity(text: str) -> None:
    base = item_identity("t", {"sensor": {"S": "s"}, "at": {"N": "1.5"}})
    assert item_identity("t", {"sensor": {"S": "s"}, "at": {"N": text}}) == base


def test_identity_differs_by_table_and_type() -> None:
    key = {"id": {"S": "1"}}
    assert item_identity("a", key) != item_identity("b", key)
    assert item_identity("a", key) != item_identity("a", {"id": {"N": "1"}})


@given(
    st.dictionaries(
        st.sampled_from(["pk", "sk"]),
        st.one_of(
            st.builds(lambda s: {"S": s}, st.text(min_size=1)),
            st.builds(lambda n: {"N": str(n)}, st.integers()),
            st.builds(lambda b: {"B": b}, st.binary(min_size=1)),
        ),
        min_size=1,
    )
)
def test_key_text_reads_back(key: dict[str, dict[str, object]]) -> None:
    back = key_from_text(key_text(key))  # type: ignore[arg-type]
    assert item_identity("t", back) == item_identity("t", key)  # type: ignore[arg-type]
