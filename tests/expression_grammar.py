"""What the expressions of a captured request may contain: ``#n0`` and ``:v0``
placeholders, list indexes, operators, keywords and DynamoDB's function names, and
nothing else. Every placeholder used is defined, and every one defined is used.

Shared by the injection and hostile-input tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

EXPRESSIONS = (
    "KeyConditionExpression",
    "FilterExpression",
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
)
NAME = re.compile(r"#n\d+")
VALUE = re.compile(r":v\d+")
TOKEN = re.compile(
    r"""
      \s+
    | \#n\d+ | :v\d+
    | \[\d+\]
    | <> | <= | >= | [=<>+\-(),.]
    | (?:AND|OR|NOT|BETWEEN|IN|SET|REMOVE|ADD|DELETE)(?![\w#:])
    | (?:attribute_exists|attribute_not_exists|attribute_type|begins_with|contains|size
        |if_not_exists|list_append)(?=\()
    """,
    re.VERBOSE,
)


def bodies(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The request, or each action of a TransactWriteItems / TransactGetItems request."""
    yield request
    for action in request.get("TransactItems") or ():
        yield from action.values()


def tokens(expression: str) -> list[str]:
    """The expression's tokens; AssertionError at the first character outside the grammar."""
    found: list[str] = []
    position = 0
    while position < len(expression):
        match = TOKEN.match(expression, position)
        assert match is not None, (
            f"{expression[position : position + 40]!r} is not expression syntax"
        )
        if not match.group().isspace():
            found.append(match.group())
        position = match.end()
    return found


def check(request: dict[str, Any]) -> list[str]:
    """Check every expression of a request; return them (a request's structure)."""
    shapes: list[str] = []
    for body in bodies(request):
        names = body.get("ExpressionAttributeNames") or {}
        values = body.get("ExpressionAttributeValues") or {}
        assert all(NAME.fullmatch(p) for p in names), sorted(names)
        assert all(VALUE.fullmatch(p) for p in values), sorted(values)
        used: set[str] = set()
        for field in EXPRESSIONS:
            if field in body:
                used.update(t for t in tokens(body[field]) if t[0] in "#:")
                shapes.append(f"{field}: {body[field]}")
        assert used == set(names) | set(values), (used, sorted(names), sorted(values))
    return shapes
