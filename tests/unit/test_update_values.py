"""Keyword values of update(), upsert() and update_key() go through the model's own
validation before they are encoded, whatever the model's config: a model that turns
validate_assignment off still sends only what its fields accept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from hostile_models import offline_session
from pydantic import BaseModel, ConfigDict, ValidationError

import dynamodm as dm

REGISTRY = dm.Registry("unit-update-values")


class Leaf(BaseModel):
    x: int


class Loose(dm.Model):
    model_config = ConfigDict(validate_assignment=False)

    class Meta:
        table = "loose"
        registry = REGISTRY

    id: Annotated[str, dm.HashKey]
    count: int = 0
    when: datetime | None = None
    leaf: Leaf | None = None


async def sent(action: Any) -> dict[str, Any]:
    async with dm.dry_run() as dry:
        await action()
    [request] = dry.requests
    values: dict[str, Any] = request.request["ExpressionAttributeValues"]
    return values


@pytest.mark.parametrize("call", ["update_key", "upsert", "update"])
async def test_values_are_validated_even_without_validate_assignment(call: str) -> None:
    def action(**values: Any) -> Any:
        if call == "update":
            return lambda: Loose.model_construct(id="a").update(**values)
        return lambda: getattr(Loose, call)("a", **values)

    async with offline_session():
        assert {"N": "5"} in (await sent(action(count="5"))).values()
        assert {"N": "1"} in (await sent(action(count=True))).values()
        stamp = {"S": datetime(2024, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        assert stamp in (await sent(action(when="2024-01-01T00:00:00Z"))).values()
        assert {"M": {"x": {"N": "1"}}} in (await sent(action(leaf={"x": 1}))).values()
        async with dm.dry_run() as dry:
            with pytest.raises(ValidationError):
                await action(count=1.7)()
        assert dry.requests == []
