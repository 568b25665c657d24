"""A model at schema version 3 with its migrations, for the CLI's migrate command."""

from __future__ import annotations

from typing import Annotated, Any

import dynamodm as dm

registry = dm.Registry("cli-migrate")


class Person(dm.Model):
    class Meta:
        table = "people"
        registry = registry
        schema_version = 3

    id: Annotated[str, dm.HashKey]
    first: str
    last: str = ""
    tags: list[str] = []


@dm.migration(Person, from_version=1)
def split_name(raw: dict[str, Any]) -> dict[str, Any]:
    first, _, last = str(raw.pop("name", "")).partition(" ")
    return {**raw, "first": first, "last": last}


@dm.migration(Person, from_version=2)
def tags_from_role(raw: dict[str, Any]) -> dict[str, Any]:
    role = raw.pop("role", None)
    return {**raw, "tags": [role] if role else []}
