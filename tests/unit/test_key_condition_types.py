"""begins_with in a key condition takes a prefix of the key's own type: DynamoDB answers a
string prefix on a binary key (or bytes on a string key) with a ValidationException
("Condition parameter type does not match schema type"), so it is refused before sending."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from hostile_models import offline_session

import dynamodm as dm

REGISTRY = dm.Registry("unit-key-condition-types")


class Blobby(dm.Model):
    class Meta:
        table = "blobby"
        registry = REGISTRY
        indexes = (
            dm.GlobalIndex("ByOwner", hash_key="owner", range_key="label"),
            dm.GlobalIndex("ByPair", hash_key=("owner", "region"), range_key=("label", "tag")),
        )

    id: Annotated[str, dm.HashKey]
    tag: Annotated[bytes, dm.RangeKey]
    owner: str = "o"
    region: str = "r"
    label: str = "l"


async def sent_values(query: dm.Query[Any]) -> list[dict[str, Any]]:
    async with dm.dry_run() as dry:
        await query.all()
    [request] = dry.requests
    return list(request.request["ExpressionAttributeValues"].values())


async def test_a_prefix_of_the_keys_type_is_sent() -> None:
    async with offline_session():
        assert {"B": b"\x00a"} in await sent_values(
            Blobby.query("x", Blobby.tag.begins_with(b"\x00a"))
        )
        assert {"S": "la"} in await sent_values(
            Blobby.query("o", Blobby.label.begins_with("la"), index="ByOwner")
        )
        on_pair = Blobby.query(
            ("o", "r"), (Blobby.label == "l") & Blobby.tag.begins_with(b"t"), index="ByPair"
        )
        assert {"B": b"t"} in await sent_values(on_pair)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            lambda: Blobby.query("x", Blobby.tag.begins_with("ab")),
            r"begins_with on 'tag', keyed as B, needs bytes \(b'...'\) as its prefix, not a S",
        ),
        (
            lambda: Blobby.query("o", Blobby.label.begins_with(b"ab"), index="ByOwner"),
            r"begins_with on 'label', keyed as S, needs a string as its prefix, not a B",
        ),
        (
            lambda: Blobby.query(
                ("o", "r"), (Blobby.label == "l") & Blobby.tag.begins_with("t"), index="ByPair"
            ),
            r"the condition on 'tag' compares with a S value; the attribute is keyed as B",
        ),
        (
            lambda: Blobby.query(("o", "r"), Blobby.label.begins_with(b"l"), index="ByPair"),
            r"the condition on 'label' compares with a B value; the attribute is keyed as S",
        ),
    ],
)
async def test_a_prefix_of_another_type_is_refused_before_sending(query: Any, message: str) -> None:
    async with offline_session(), dm.dry_run() as dry:
        with pytest.raises(dm.UsageError, match=message):
            await query().all()
        assert dry.requests == []


class Session(dm.Model):
    class Meta:
        table = "sessions"
        registry = REGISTRY
        hash_key = dm.Template("PK", "ATHLETE#{athlete_id}")
        range_key = dm.Template("SK", "SESSION#{session_id}")

    athlete_id: str
    session_id: str


async def test_begins_with_on_a_template_field_takes_text_only() -> None:
    async with offline_session(), dm.dry_run() as dry:
        query = Session.query(
            athlete_id="ada", range_condition=Session.session_id.begins_with("s1")
        )
        await query.all()
        [request] = dry.requests
        assert {"S": "SESSION#s1"} in request.request["ExpressionAttributeValues"].values()
        # A bytes prefix became "" before: begins_with(SK, "SESSION#"), every session.
        with pytest.raises(dm.UsageError, match=r"begins_with on 'session_id'.* needs a string"):
            await Session.query(
                athlete_id="ada", range_condition=Session.session_id.begins_with(b"s1")
            ).all()
        assert len(dry.requests) == 1
