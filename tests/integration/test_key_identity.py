"""Two keys are one item only when DynamoDB takes them for one: batches and
transactions de-duplicate by a key's identity, which must not merge keys whose string
values happen to hold the characters the identity joins with."""

from __future__ import annotations

from typing import Annotated

import dynamodm as dm

REG = dm.Registry("key-identity-tests")


class Pair(dm.Model):
    class Meta:
        table = "pairs"
        registry = REG

    pk: Annotated[str, dm.HashKey]
    sk: Annotated[str, dm.RangeKey]
    n: int = 0


# Found in review: joined without escaping, these two keys gave one identity.
ONE = ("p", "q\x01sk\x00S\x00r")
TWO = ("p\x01sk\x00S\x00q", "r")


async def test_a_batch_keeps_two_keys_that_only_look_alike(db: dm.Session) -> None:
    await db.create_tables(Pair)
    async with dm.batch_write() as batch:
        batch.put(Pair(pk=ONE[0], sk=ONE[1], n=1))
        batch.put(Pair(pk=TWO[0], sk=TWO[1], n=2))
    assert (await Pair.get(*ONE)).n == 1
    assert (await Pair.get(*TWO)).n == 2
    found = await Pair.batch_get([TWO, ONE])
    assert [(p.pk, p.sk, p.n) for p in found] == [(*TWO, 2), (*ONE, 1)]
