"""Models for the CLI tests, in their own registry: ``cli_models:registry``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import ConfigDict, Field

import dynamodm as dm

registry = dm.Registry("cli-tests")


class Record(dm.Model):
    """No Version, no unique fields: imported through dm.batch_write()."""

    # Plain JSON carries bytes as base64 (pydantic's default is UTF-8 text).
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    class Meta:
        table = "records"
        registry = registry
        indexes = (dm.GlobalIndex("ByOwner", hash_key="owner", range_key="created_at"),)

    id: Annotated[str, dm.HashKey]
    owner: str = "nobody"
    amount: Decimal = Decimal(0)
    count: int = 0
    ratio: float = 0.0
    tags: set[str] = set()
    scores: set[int] = set()
    blob: bytes = b""
    blobs: set[bytes] = set()
    meta: dict[str, int] = {}
    note: str | None = None
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")


class Ledger(dm.Model):
    """A Version field: imported through conditional creates."""

    class Meta:
        table = "ledgers"
        registry = registry

    account: Annotated[str, dm.HashKey]
    entry: Annotated[int, dm.RangeKey]
    amount: Decimal
    version: Annotated[int, dm.Version] = 0


class Member(dm.Model):
    """A unique field: imported through conditional creates that write guards."""

    class Meta:
        table = "members"
        registry = registry
        unique = ("email",)

    id: Annotated[str, dm.HashKey]
    email: str
