"""A user service's document store (seed 002): `_id`-keyed collections on DynamoDB.

Each collection is a model whose hash key is the field ``id``, stored as ``_id``
(``Field(alias="_id")``), the key every table of the seed uses. The seed's store, and
what it becomes here:

| the seed's store                          | here                                             |
|-------------------------------------------|--------------------------------------------------|
| tables created on first access            | ``dm.connect(auto_create_tables=True)``: a table |
|                                           | is created when DynamoDB answers that it is      |
|                                           | missing, never by a DescribeTable per call       |
| floats converted to Decimal by hand       | floats and nested data round-trip as they are    |
| ``save`` / ``get`` / ``delete``           | ``save()``, ``get_or_none()``, ``delete_key()``  |
| ``list_all`` following LastEvaluatedKey   | ``scan().all()``, or ``scan().page()`` cursors   |
| batch get and batch write                 | ``Model.batch_get``, ``dm.batch_write()``        |
| migration from another store              | a JSON export validated line by line, written    |
|                                           | with ``dm.batch_write()``, counts verified       |

Run it against the embedded server (default) or any endpoint in DYNAMODB_ENDPOINT_URL.
"""

import asyncio
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

import dynamodm as dm
from dynamodm import HashKey, Model
from dynamodm.local import LocalServer

store = dm.Registry("document-store")


class Document(Model):
    """A document of any collection: keyed by ``_id``."""

    class Meta:
        abstract = True

    id: Annotated[str, HashKey] = Field(alias="_id")


class Agent(Document):
    class Meta:
        registry = store
        table = "agents"

    name: str
    code: str = ""
    usage_count: float = 0.0
    config: dict[str, Any] = {}
    weights: list[float] = []
    tags: list[str] = []


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    text: str
    tokens: int
    latency_ms: float | None = None


class Conversation(Document):
    class Meta:
        registry = store
        table = "conversations"

    agent_id: str
    title: str
    messages: list[Message]
    scores: dict[str, float] = {}
    metadata: dict[str, Any] = {}
    created_at: datetime


# Floats that a Decimal(str(x)) conversion, or a careless codec, would not keep exactly.
AWKWARD_FLOATS = [42.5, 0.1, 0.1 + 0.2, 1 / 3, 2.5e-8, 6.02214076e23, 1e16 + 2, 5.0]


def check(ok: bool, wrong: str) -> None:
    """Stop the run when a result is not the expected one."""
    if not ok:
        raise SystemExit(f"document_store FAILED: {wrong}")


def step(name: str, text: str) -> None:
    print(f"  {name:<16} {text}")


def write_export(path: Path, count: int) -> None:
    """Another store's JSON export (one document per line, as mongoexport writes it)."""
    started = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as file:
        for n in range(count):
            document = {
                "_id": f"conv-{n:03d}",
                "agent_id": f"agent-{n % 5:02d}",
                "title": f"Conversation {n}",
                "messages": [
                    {"role": "user", "text": f"Question {n}?", "tokens": 5 + n},
                    {"role": "assistant", "text": "An answer.", "tokens": 40, "latency_ms": 812.25},
                ],
                "scores": {"helpfulness": 0.8 + n / 1000, "toxicity": 1.5e-5},
                "metadata": {"client": {"name": "web", "version": [2, 4, n]}, "rated": n % 3 == 0},
                "created_at": (started + timedelta(minutes=n)).isoformat(),
            }
            file.write(json.dumps(document) + "\n")


async def run(endpoint_url: str, workdir: Path) -> None:
    prefix = f"docstore-{dm.new_id()[:6]}-"
    async with dm.connect(
        endpoint_url=endpoint_url, table_prefix=prefix, auto_create_tables=True
    ) as db:
        try:
            await flows(db, workdir)
        finally:
            deleted = await db.delete_tables(*store.models)
        check(not await db.list_tables(), "the collections' tables should be gone")
        step("delete_tables", ", ".join(deleted))


async def flows(db: dm.Session, workdir: Path) -> None:
    agents_table = db.table_name(Agent)

    # -- a table created on first use: no create_tables anywhere in this script
    check(await db.list_tables() == [], "a fresh prefix starts without tables")
    agent = Agent(
        id="agent-1",
        name="My Agent",
        code="print('hello')",
        usage_count=42.5,
        config={
            "temperature": 0.7,
            "limits": {"max_tokens": 4096, "top_p": 0.95, "stop": ["\n\n", "END"]},
            "enabled": True,
            "fallback": None,
        },
        weights=AWKWARD_FLOATS,
        tags=["demo"],
    )
    await agent.save()
    check(await db.list_tables() == [agents_table], "the first write created the agents table")
    step("first use", f"save() created {agents_table}")

    # -- floats and nested data round-trip exactly, as plain Python types
    fetched = await Agent.get_or_none("agent-1", consistent=True)
    check(fetched == agent, f"the agent reads back equal: {fetched!r}")
    assert fetched is not None
    weights = fetched.weights
    check(weights == AWKWARD_FLOATS, f"floats round-trip exactly: {weights}")
    check(all(type(w) is float for w in weights), "numbers read back as float, not Decimal")
    check(type(fetched.config["temperature"]) is float, "a float in a map reads back as float")
    check(type(fetched.config["limits"]["max_tokens"]) is int, "an int in a map reads back as int")
    check(fetched.config["fallback"] is None, "None in a map round-trips")
    raw = await db.client.get_item(TableName=agents_table, Key={"_id": {"S": "agent-1"}})
    check(raw["Item"]["usage_count"] == {"N": "42.5"}, f"usage_count on the wire: {raw['Item']}")
    step("round trip", f"usage_count {fetched.usage_count}, weights {weights[:4]}...")
    check(await Agent.get_or_none("agent-404") is None, "a missing document is None")

    # -- batch write and batch get
    batch_agents = [
        Agent(id=f"agent-{n:02d}", name=f"Agent {n}", usage_count=n / 4, tags=[f"t{n % 3}"])
        for n in range(30)
    ]
    async with dm.batch_write() as batch:
        for item in batch_agents:
            batch.put(item)
    check(batch.written == 30, f"batch_write wrote {batch.written} of 30")
    wanted = ["agent-07", "agent-404", "agent-01", "agent-29", "agent-1"]
    found = await Agent.batch_get(wanted)
    check(
        [a.id for a in found] == ["agent-07", "agent-01", "agent-29", "agent-1"],
        f"batch_get returns the found items in the order asked: {[a.id for a in found]}",
    )
    check(found[0].usage_count == 1.75, f"agent-07's usage_count: {found[0].usage_count}")
    step("batch", "30 agents written; batch_get of 5 keys -> 4 found, in the order asked")

    # -- paginated listing: scan pages with cursors (the seed's list_all)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await Agent.scan().page(size=7, cursor=cursor)
        check(len(page.items) <= 7, f"a page holds at most 7 items, got {len(page.items)}")
        pages.append([a.id for a in page.items])
        cursor = page.cursor
        if cursor is None:
            break
    listed = [agent_id for ids in pages for agent_id in ids]
    check(len(listed) == 31 and len(set(listed)) == 31, f"31 agents once each: {len(listed)}")
    check(sorted(listed) == sorted(["agent-1", *(a.id for a in batch_agents)]), "every agent")
    step("list pages", f"{len(pages)} pages of at most 7: {[len(p) for p in pages]}")
    check(len(await Agent.scan().all()) == 31, "scan().all() follows every page")

    # -- delete
    await Agent.delete_key("agent-1")
    check(await Agent.get_or_none("agent-1", consistent=True) is None, "agent-1 is deleted")
    step("delete", "agent-1")

    # -- migration from another store's JSON export into a new collection
    export = workdir / "conversations.jsonl"
    write_export(export, 40)
    lines = export.read_text(encoding="utf-8").splitlines()
    conversations = [Conversation.model_validate_json(line) for line in lines]
    # The conversations table does not exist yet: the first BatchWriteItem is answered
    # ResourceNotFoundException, the table is created and the request sent again.
    async with dm.batch_write() as batch:
        for conversation in conversations:
            batch.put(conversation)
    check(batch.written == len(lines), f"batch_write wrote {batch.written}")
    stored = await Conversation.scan().count()
    check(stored == len(lines), f"{stored} conversations stored, {len(lines)} exported")
    check(
        await db.list_tables() == sorted([agents_table, db.table_name(Conversation)]),
        "the conversations table was created on first use",
    )
    sample = await Conversation.get("conv-017", consistent=True)
    original = json.loads(lines[17])
    check(sample == conversations[17], f"conv-017 reads back as exported: {sample!r}")
    check(
        sample.scores == original["scores"] and sample.metadata == original["metadata"],
        f"conv-017's floats and nested data: {sample.scores}, {sample.metadata}",
    )
    per_agent = await Conversation.scan(filter=Conversation.agent_id == "agent-02").count()
    check(per_agent == 8, f"agent-02 has {per_agent} conversations, expected 8")
    step("migration", f"{len(lines)} documents from {export.name} -> {stored} stored")


async def main() -> None:
    print("document store")
    with tempfile.TemporaryDirectory(prefix="document-store-") as workdir:
        endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL")
        if endpoint_url:
            step("server", f"{endpoint_url} (from DYNAMODB_ENDPOINT_URL)")
            await run(endpoint_url, Path(workdir))
        else:
            async with LocalServer() as server:
                step("server", f"embedded moto at {server.endpoint_url}")
                await run(server.endpoint_url, Path(workdir))
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
