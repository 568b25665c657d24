"""Keyword values of update(), upsert() and update_key() go through the model's own
validation before they are encoded, whatever the model's config: a model that turns
validate_assignment off still sends only what its fields accept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from hostile_models import offline_session
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

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


class Range(dm.Model):
    class Meta:
        table = "ranges"
        registry = REGISTRY

    id: Annotated[str, dm.HashKey]
    low: int = 0
    high: int = 10
    label: str = ""
    _seen: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("label")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if " " in value:
            raise ValueError("no spaces")
        return value.upper()

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        self._seen = (*self._seen, "checked")
        if self.low > self.high:
            raise ValueError("low above high")
        return self


async def test_update_runs_the_models_validators_on_a_copy() -> None:
    item = Range.model_construct(id="a", low=2, high=5, label="")
    item._seen = ("mine",)
    async with offline_session():
        async with dm.dry_run() as dry:
            await item.update(label="x")
            for bad in ({"label": "a b"}, {"high": 1}):
                with pytest.raises(ValidationError):
                    await item.update(**bad)
        assert len(dry.requests) == 1
        assert {"S": "X"} in dry.requests[0].request["ExpressionAttributeValues"].values()
    # The model validator ran on the copy, which saw the instance's other fields and
    # private values; the instance itself is as it was.
    assert (item.low, item.high, item.label) == (2, 5, "")
    assert item._seen == ("mine",)
    assert item.model_fields_set == {"id", "low", "high", "label"}
