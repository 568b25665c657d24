"""DynamoDB's request limits, checked before sending (the emulators enforce few of them):
key sizes, lone surrogates, expression sizes, transaction totals."""

from __future__ import annotations

import functools
import operator
from decimal import Decimal
from typing import Annotated, Any

import pytest

import dynamodm as dm
from dynamodm import HashKey, Model, RangeKey
from dynamodm.keys import from_any, from_values
from dynamodm.schema import TableNames
from dynamodm.writes import check_transaction, plan_put, plan_update, validate_sets

REGISTRY = dm.Registry("unit-limits")
NAMES = TableNames("")
LONE = "\ud800"


class Doc(Model):
    class Meta:
        table = "docs"
        registry = REGISTRY
        indexes = (dm.GlobalIndex("ByTag", hash_key="tag", range_key="label"),)

    owner: Annotated[str, HashKey]
    name: Annotated[str, RangeKey]
    tag: str | None = None
    label: str | None = None
    body: str = ""
    data: dict[str, Any] = {}


class Blob(Model):
    class Meta:
        table = "blobs"
        registry = REGISTRY

    id: Annotated[bytes, HashKey]


# ---------------------------------------------------------------- key sizes


def test_a_partition_key_over_2048_bytes_is_refused_on_reads_and_writes() -> None:
    from_values(Doc, "x" * 2048, "n")  # at the limit
    with pytest.raises(dm.UsageError, match=r"Doc\.owner: a partition \(hash\) key .* 2048"):
        from_values(Doc, "x" * 2049, "n")
    with pytest.raises(dm.UsageError, match="partition"):
        plan_put(NAMES, Doc(owner="é" * 1025, name="n"), create=True, condition=None)
    with pytest.raises(dm.UsageError, match="partition"):
        from_any(Blob, b"\x01" * 2049)


def test_a_sort_key_over_1024_bytes_is_refused() -> None:
    from_values(Doc, "o", "x" * 1024)
    with pytest.raises(dm.UsageError, match=r"Doc\.name: a sort \(range\) key .* 1024"):
        from_values(Doc, "o", "x" * 1025)
    with pytest.raises(dm.UsageError, match="sort"):
        plan_put(NAMES, Doc(owner="o", name="€" * 342), create=True, condition=None)


def test_index_key_sizes_are_checked_on_the_item() -> None:
    with pytest.raises(dm.UsageError, match=r"tag: a partition"):
        plan_put(NAMES, Doc(owner="o", name="n", tag="t" * 2049), create=True, condition=None)
    with pytest.raises(dm.UsageError, match=r"label: a sort"):
        plan_put(NAMES, Doc(owner="o", name="n", label="l" * 1025), create=True, condition=None)


# ---------------------------------------------------------------- lone surrogates


def test_lone_surrogates_are_usage_errors_everywhere_before_sending() -> None:
    with pytest.raises(dm.UsageError, match=r"Doc\.owner: .*surrogate"):
        from_values(Doc, LONE, "n")
    with pytest.raises(dm.UsageError, match="surrogate"):
        plan_put(NAMES, Doc(owner="o", name="n", body=LONE), create=True, condition=None)
    with pytest.raises(dm.UsageError, match="surrogate"):
        plan_put(NAMES, Doc(owner="o", name="n", data={LONE: 1}), create=True, condition=None)
    with pytest.raises(dm.UsageError, match="surrogate"):
        Doc.body == LONE  # noqa: B015  (a condition value)
    with pytest.raises(dm.UsageError, match="surrogate"):
        Doc.query("o", filter=dm.attr(Doc.data)[LONE].exists())
    with pytest.raises(dm.UsageError, match="surrogate"):
        Doc.query("o", Doc.name.begins_with(LONE))


def test_a_lone_surrogate_in_get_by_or_batch_get_is_a_usage_error() -> None:
    with pytest.raises(dm.UsageError, match="surrogate"):
        from_any(Doc, (LONE, "n"))


# ---------------------------------------------------------------- expressions


def test_an_expression_over_4_kb_is_refused() -> None:
    """A 7.5 KB filter hangs dynalite until it restarts; DynamoDB refuses it."""
    conditions = [Doc.body == f"value-{i:05d}" for i in range(500)]
    with pytest.raises(dm.UsageError, match=r"FilterExpression is .* at most 4096"):
        Doc.query("o", filter=functools.reduce(operator.or_, conditions))
    Doc.query("o", filter=functools.reduce(operator.or_, conditions[:50]))


def test_an_attribute_name_over_64_kb_is_refused() -> None:
    with pytest.raises(dm.UsageError, match=r"attribute name is .* at most 65535"):
        Doc.query("o", filter=dm.attr(Doc.data)["k" * 70000].exists())


# ---------------------------------------------------------------- transactions


def test_update_values_count_toward_the_4_mb_of_a_transaction() -> None:
    big = "x" * 350_000
    writes = []
    for i in range(12):
        doc = Doc(owner="o", name=f"n{i}")
        writes.append(plan_update(NAMES, doc, (), {"body": big}, condition=None))
    with pytest.raises(dm.UsageError, match="at most 4 MB"):
        check_transaction(writes)


def test_one_key_written_as_1_0_and_1_00_is_one_item_in_a_transaction() -> None:
    class Reading(Model):
        class Meta:
            table = "readings"
            registry = REGISTRY

        sensor: Annotated[str, HashKey]
        at: Annotated[Decimal, RangeKey]

    one = plan_put(NAMES, Reading(sensor="s", at=Decimal("1.0")), create=False, condition=None)
    two = plan_put(NAMES, Reading(sensor="s", at=Decimal("1.00")), create=False, condition=None)
    with pytest.raises(dm.UsageError, match="two actions on the same Reading item"):
        check_transaction([one, two])


def test_validated_sets_follow_the_models_validators() -> None:
    assert validate_sets(Doc, {"tag": "t"}, "update", base=None) == {"tag": "t"}
