"""Typing that catches mistakes (API.md section 14): keyword checking of Model(...) and
create(...), marker fields declared as the docs show, a TypedDict splat, nested paths.
Checked by mypy --strict and pyright; never run (see test_api_typing.py)."""

from datetime import datetime
from typing import Annotated, Any, TypedDict, assert_type

from pydantic import BaseModel, Field

import dynamodm as dm

CHECKS = dm.Registry("typing-checks")


class Address(BaseModel):
    city: str
    street: str = ""


class Member(dm.Model):
    class Meta:
        table = "members"
        registry = CHECKS

    id: Annotated[str, dm.HashKey]
    name: str
    address: Address | None = None
    created_at: Annotated[datetime, dm.CreatedAt] = Field()  # filled by the library
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")
    version: Annotated[int, dm.Version] = 0


class MemberFields(TypedDict):
    id: str
    name: str


def keywords_are_checked() -> None:
    Member(id="m-1", name="Ada")  # CreatedAt/UpdatedAt/Version need no value
    Member(id="m-1", name="Ada", updated_at=datetime.now())  # the Python name, not the alias
    Member(id="m-1")  # type: ignore[call-arg]
    Member(id="m-1", nmae="Ada")  # type: ignore[call-arg]
    Member(id="m-1", name=3)  # type: ignore[arg-type]


async def create_and_splats(fields: MemberFields) -> None:
    member = await Member.create(**fields)
    assert_type(member, Member)
    assert_type(await Member.create(**fields, session=None), Member)


def nested_paths() -> None:
    city = dm.attr(Member.address)["city"]
    assert_type(city, dm.Path[Any])
    condition = dm.attr(Member.address)["city"] == "Paris"
    assert_type(condition, dm.Condition)
