"""No user value and no key value can change the structure of an expression.

Conditions, updates, key conditions, filters and projections are built from arbitrary
strings (values, key values, map keys in nested paths); the exact requests are captured
with ``dm.dry_run()``. Each expression may only hold ``#n``/``:v`` placeholders,
operators, keywords and function names, and every request must equal, outside its
value maps, the request built from harmless strings with the same pattern of equality:
the user's strings travel only in ExpressionAttributeValues, ExpressionAttributeNames,
Key and Item."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import pytest
from expression_grammar import check
from hostile_models import offline_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dynamodm as dm

REG = dm.Registry("injection-tests")
VALUE_MAPS = ("ExpressionAttributeValues", "ExpressionAttributeNames", "Key", "Item")
NOISE = ("ClientRequestToken",)  # random per commit
TRICKS = [
    ":v0",
    ":v1",
    "#n0",
    "#n1.#n2",
    ":v0 OR :v1",
    ") OR (",
    "AND",
    "SET #n0 = :v0",
    "REMOVE #n0",
    "a.b",
    "a[0]",
    "[0]",
    " ",
    "\x00",
    "size(#n0)",
    "attribute_exists(#n0)",
    "title",  # the name of a field: a map key may equal it
    "meta",
]
strings = st.one_of(st.sampled_from(TRICKS), st.text(min_size=1, max_size=30))


class Target(dm.Model):
    class Meta:
        table = "targets"
        registry = REG
        indexes = (dm.GlobalIndex("ByOwner", hash_key="owner", range_key="title"),)

    id: Annotated[str, dm.HashKey]
    sort: Annotated[str, dm.RangeKey]
    owner: str = "o"
    title: str = ""
    tags: set[str] = set()
    notes: list[str] = []
    meta: dict[str, Any] = {}
    score: int = 0
    version: Annotated[int, dm.Version] = 0


NAMES = {spec.attribute for spec in Target.__dm_codec__.fields}


@pytest.fixture
async def offline() -> AsyncIterator[dm.Session]:
    async with offline_session() as session:
        yield session


def operations(values: list[str], keys: list[str]) -> list[Callable[[], Awaitable[Any]]]:
    """Every kind of request that carries an expression, built from the given strings."""
    a, b, c = values
    k1, k2 = keys
    item = Target(id=a, sort=b, owner=c, title=a, version=3)
    meta = dm.attr(Target.meta)
    title = dm.attr(Target.title)

    async def transaction() -> None:
        async with dm.transaction() as tx:
            tx.update(item, meta[k1].set(b), condition=title.contains(c), title=c)
            # Other items of the same strings (one action per item in a transaction).
            tx.check(Target, (a, b + "+1"), condition=(Target.owner == a) | meta[k2].exists())
            tx.delete(Target(id=a, sort=b + "+2", version=1), condition=~(Target.title == c))

    return [
        lambda: Target.get_or_none(a, b),
        lambda: item.save(condition=(Target.title == a) | meta[k1][k2].begins_with(b)),
        lambda: item.update(
            meta[k1][k2].set(a),
            dm.attr(Target.notes).append([b, c]),
            dm.attr(Target.tags).add({a, c}),
            condition=meta[k1].exists() & (Target.owner != b) & title.is_in([a, b, c]),
            title=c,
        ),
        lambda: item.update(meta[k1].remove(), dm.attr(Target.tags).delete({b})),
        lambda: item.delete(condition=~(Target.owner == a) & (meta[k2][k1] < c)),
        lambda: Target.upsert((a, b), meta[k1].set_if_not_exists(c), owner=b, title=a),
        lambda: Target.query(
            a,
            Target.sort.begins_with(b),
            filter=(meta[k1] == c) & (title.size() > 3),
            attributes=["title", "meta", "owner"],
        ).all(),
        lambda: Target.query(a, Target.sort.between(b, c), reverse=True).count(),
        lambda: Target.query(c, title >= a, index="ByOwner").first(),
        lambda: Target.scan(filter=meta[k1][k2].contains(a) | title.between(b, c)).all(),
        transaction,
    ]


async def capture(values: list[str], keys: list[str]) -> list[tuple[str, dict[str, Any]]]:
    requests: list[tuple[str, dict[str, Any]]] = []
    for operation in operations(values, keys):
        async with dm.dry_run() as dry:
            await operation()
        requests.extend((r.operation, r.request) for r in dry.requests)
    return requests


def harmless(strings: list[str], prefix: str, keep: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Plain strings with the same pattern of equality (and the same equalities with
    ``keep``, the names the model itself uses)."""
    chosen: dict[str, str] = {}
    for text in strings:
        if text not in chosen:
            chosen[text] = text if text in keep else f"{prefix}{len(chosen)}"
    return [chosen[text] for text in strings]


def outside_value_maps(request: dict[str, Any]) -> dict[str, Any]:
    """The request without the maps that carry the user's values and names."""
    stripped: dict[str, Any] = {}
    for field, value in request.items():
        if field in VALUE_MAPS or field in NOISE:
            continue
        if field == "TransactItems":
            value = [
                {kind: outside_value_maps(body) for kind, body in action.items()}
                for action in value
            ]
        stripped[field] = value
    return stripped


def strings_in(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*(strings_in(k) | strings_in(v) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(strings_in(v) for v in node))
    return set()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.lists(strings, min_size=3, max_size=3), keys=st.lists(strings, min_size=2, max_size=2)
)
async def test_no_string_changes_the_structure_of_a_request(
    offline: dm.Session, values: list[str], keys: list[str]
) -> None:
    hostile = await capture(values, keys)
    plain = await capture(harmless(values, "value"), harmless(keys, "key", NAMES))
    assert [operation for operation, _ in hostile] == [operation for operation, _ in plain]
    user = set(values) | set(keys)
    for (operation, request), (_, reference) in zip(hostile, plain, strict=True):
        assert check(request) == check(reference), operation
        remainder = outside_value_maps(request)
        assert remainder == outside_value_maps(reference), operation
        # A user string is in the request only inside the value maps (unless it is also
        # a word the request holds anyway, such as a table name or "ALL_NEW").
        assert not (strings_in(remainder) & user) - strings_in(outside_value_maps(reference))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(key=strings, value=strings)
async def test_a_map_key_is_always_one_name_and_a_value_always_one_value(
    offline: dm.Session, key: str, value: str
) -> None:
    item = Target(id="i", sort="s")
    async with dm.dry_run() as dry:
        await item.update(
            dm.attr(Target.meta)[key][key].set(value), condition=dm.attr(Target.meta)[key] == value
        )
    request = dry.requests[0].request
    names = request["ExpressionAttributeNames"]
    values = request["ExpressionAttributeValues"]
    meta, entry = (
        next(p for p, n in names.items() if n == "meta"),
        next(p for p, n in names.items() if n == key),
    )
    condition = f"{meta}.{entry} = "
    assert condition in request["ConditionExpression"]
    assert f"SET {meta}.{entry}.{entry} = " in request["UpdateExpression"]
    assert [v for v in values.values() if v == {"S": value}] == [{"S": value}]
