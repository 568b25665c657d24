"""Migrating a table's items to the model's current schema version in place: a parallel
scan, and for each older item a put conditional on the version it was read at, so a
concurrent writer always wins. Checkpointed per segment, so an interrupted run resumes.
Used by ``dynamodm migrate``; runs on a Connection.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .codec import Item
from .connection import Connection, current_connection
from .cursor import from_jsonable, jsonable
from .errors import ConditionFailed, ItemInvalid, NotFound, UsageError
from .execute import run_write
from .instances import load_checked
from .migrations import stored_version
from .query import Query
from .writes import plan_put

if TYPE_CHECKING:
    from .model import Model


@dataclass
class MigrationReport:
    """What a migration run did. ``failed`` lists ``(key, reason)`` of the items that
    could not be migrated (no value in the reasons)."""

    scanned: int = 0
    migrated: int = 0
    skipped: int = 0  # already at the current version
    lost_race: int = 0  # rewritten by another writer since it was read: theirs stands
    failed: list[tuple[Item, str]] = field(default_factory=list)


class Migrator:
    """``await Migrator(User, segments=4, checkpoint=Path("users.ckpt")).run()``."""

    def __init__(
        self,
        model: type[Model],
        *,
        session: Connection | None = None,
        segments: int = 1,
        dry_run: bool = False,
        checkpoint: Path | None = None,
        on_progress: Callable[[MigrationReport], None] | None = None,
    ) -> None:
        if model.__dm_schema_version__ is None:
            raise UsageError(f"migrate {model.__name__}: the model has no Meta.schema_version")
        if not 1 <= segments <= 1000:
            raise UsageError("migrate: segments is 1 to 1,000")
        self.model = model
        self.session = session
        self.segments = segments
        self.dry_run = dry_run
        self.checkpoint = checkpoint
        self.on_progress = on_progress
        self.report = MigrationReport()
        self._state: dict[str, Any] = {}

    async def run(self) -> MigrationReport:
        conn = current_connection(self.session)
        self._state = self._load_checkpoint()
        await asyncio.gather(*(self._segment(conn, n) for n in range(self.segments)))
        return self.report

    def _load_checkpoint(self) -> dict[str, Any]:
        if self.checkpoint is None or not self.checkpoint.exists():
            return {"model": self.model.__name__, "segments": self.segments, "done": {}}
        state: dict[str, Any] = json.loads(self.checkpoint.read_text())
        if state.get("model") != self.model.__name__ or state.get("segments") != self.segments:
            raise UsageError(
                f"migrate: the checkpoint {self.checkpoint} is of another run (model "
                f"{state.get('model')}, {state.get('segments')} segments); remove it or match it"
            )
        return state

    def _save_checkpoint(self) -> None:
        if self.checkpoint is None or self.dry_run:
            return
        temporary = self.checkpoint.with_suffix(self.checkpoint.suffix + ".tmp")
        temporary.write_text(json.dumps(self._state))
        os.replace(temporary, self.checkpoint)  # never half-written

    async def _segment(self, conn: Connection, number: int) -> None:
        done: dict[str, Any] = self._state["done"]
        position = done.get(str(number))
        if position is True:
            return
        request = Query(self.model, "Scan", include_expired=True, session=conn)._base(conn)
        if self.segments > 1:
            request["Segment"] = number
            request["TotalSegments"] = self.segments
        if position:
            request["ExclusiveStartKey"] = from_jsonable(position)
        table = request["TableName"]
        while True:
            page = await conn.call("Scan", request, idempotent=True, table=table)
            for item in page.get("Items", []):
                await self._one(conn, item)
            last = page.get("LastEvaluatedKey")
            done[str(number)] = jsonable(last) if last else True
            self._save_checkpoint()
            if self.on_progress is not None:
                self.on_progress(self.report)
            if not last:
                return
            request["ExclusiveStartKey"] = last

    async def _one(self, conn: Connection, item: Item) -> None:
        report = self.report
        report.scanned += 1
        current = self.model.__dm_schema_version__
        assert current is not None
        if stored_version(item) >= current:
            report.skipped += 1
            return
        try:
            instance = load_checked(self.model, item)
        except ItemInvalid as error:
            report.failed.append((error.key, str(error)))
            return
        if self.dry_run:
            report.migrated += 1
            return
        write = plan_put(conn.names, instance, create=False, condition=None)
        try:
            await run_write(conn, write)
        except (ConditionFailed, NotFound):
            report.lost_race += 1  # rewritten or deleted since it was read: leave it
            return
        report.migrated += 1
