"""User code written against API.md section 14 (writes without a read, old values, typed
projections, reads that do not fit), checked by ``mypy --strict``.

The async functions below are never called: they exist to be type-checked (see
test_api_typing.py). A ``# type: ignore[code]`` marks a line mypy must reject.
"""

from datetime import datetime
from typing import Annotated, Any, assert_type

from pydantic import BaseModel, Field

import dynamodm as dm

EVOLUTION = dm.Registry("typing-evolution")


class Post(dm.Model):
    class Meta:
        table = "posts"
        registry = EVOLUTION

    id: Annotated[str, dm.HashKey]
    title: str = ""
    views: int = 0
    version: Annotated[int, dm.Version] = 0
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field()


class Card(BaseModel):
    id: str
    title: str


async def writes_without_a_read() -> None:
    post = await Post.update_key("p-1", dm.attr(Post.views).add(1), touch=False)
    assert_type(post, Post)
    assert_type(await Post.update_key("p-1", if_version=3, title="t"), Post)
    await Post(id="p-2").insert()
    await post.save(replace=True)
    await Post.update_key("p-1", if_version="3")  # type: ignore[arg-type]


async def old_values() -> None:
    assert_type(await Post.delete_key("p-1"), None)
    assert_type(await Post.delete_key("p-1", returning=True), Post | None)
    post = await Post.get("p-1")
    assert_type(await post.delete(returning=True), Post | None)
    assert_type(await post.delete(), None)


async def projections_and_drift() -> None:
    cards = await Post.scan().project(Card).all()
    assert_type(cards, list[Card])
    page = await Post.query("p-1").project(Card).page(size=10)
    assert_type(page.items, list[Card])
    assert_type(await Post.query("p-1", on_invalid="skip").first(), Post | None)
    Post.query("p-1", on_invalid="ignore")  # type: ignore[arg-type]
    try:
        await Post.batch_get(["p-1"], include_expired=True)
    except dm.ItemInvalid as error:
        assert_type(error.key, Any)
        assert_type(error.fields, tuple[str, ...])
