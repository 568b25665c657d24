"""The first example of docs/batches.md, checked by ``mypy --strict``.

Keep ``example`` in step with the page: it is the page's code block, with the
instances it uses as parameters. The function is never called, and its name does not
start with ``test_``, so pytest imports this module (declarations only, no I/O)
without collecting it. The models declare their own registry so that they stay out
of ``dm.registry``.
"""

from datetime import datetime
from typing import Annotated, Any, Literal, assert_type

from pydantic import Field

import dynamodm as dm
from dynamodm import HashKey, Model

DOCS = dm.Registry("docs-batches")


class User(Model):
    class Meta:
        table = "users"
        registry = DOCS

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    username: str
    email: str
    role: Literal["student", "teacher", "admin"] = "student"


class Content(Model):
    class Meta:
        table = "content"
        registry = DOCS

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    owner: str
    summary_count: int = 0
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")


async def example(content: Content, old_content: Content, summary: Content) -> None:
    users = await User.batch_get(["u-1", "u-2", "u-3"])  # any number of keys
    async with dm.batch_write() as batch:  # any number of items, any models
        batch.put(content)
        batch.delete(old_content)
    async with dm.transaction() as tx:  # all or nothing, on exit
        tx.create(summary)
        tx.update(content, dm.attr(Content.summary_count).add(1))
        tx.check(User, "u-1", condition=User.role == "teacher")
    pair = await dm.transact_get([(User, "u-1"), (Content, "c-9")])

    assert_type(users, list[User])
    assert_type(batch, dm.BatchWriter)
    assert_type(tx, dm.Transaction)
    assert_type(pair, list[Any])


async def the_page_as_written(content: Content) -> None:
    async with dm.transaction() as tx:
        # What the page said before: a plain class attribute is the field's type to mypy.
        tx.update(content, Content.summary_count.add(1))  # type: ignore[attr-defined]
