"""Pagination cursors: the last key of a page, signed, with the identity of the query
that made it (model, table, index, key condition), so that a cursor is only ever read
back by the query that produced it. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from .codec import EncodeError, Item, check_number
from .errors import InvalidCursor

DEFAULT_CURSOR_KEY = b"dynamodm cursor integrity"


def fingerprint(value: Any) -> str:
    """A short digest of a JSON-like value holding AttributeValues (a key condition)."""
    data = json.dumps(jsonable(value), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def encode(identity: Mapping[str, str], key: Item, secret: bytes) -> str:
    """The cursor of a page that ended at ``key``."""
    payload = json.dumps(
        {**identity, "k": {name: jsonable(av) for name, av in key.items()}},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return _b64(payload) + "." + _b64(_sign(payload, secret))


def decode(
    cursor: str,
    *,
    identity: Mapping[str, str],
    key_types: Mapping[str, str | None],
    secret: bytes,
    model: str,
) -> Item:
    """The start key a cursor holds, after checking its signature, that it belongs to the
    query with this ``identity``, and that it holds one value of the right type for each
    attribute of ``key_types``; ``InvalidCursor`` otherwise."""
    if not isinstance(cursor, str) or cursor.count(".") != 1:
        raise InvalidCursor(f"{model}: the cursor is not one this query produced")
    body, signature = cursor.split(".")
    try:
        payload = _unb64(body)
        valid = hmac.compare_digest(_unb64(signature), _sign(payload, secret))
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise InvalidCursor(f"{model}: the cursor was altered or truncated")
    # Signed with the default key (public), a cursor can be forged: read it as untrusted.
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidCursor(f"{model}: the cursor is not one this query produced")
    if any(data.get(k) != v for k, v in identity.items()):
        raise InvalidCursor(
            f"{model}: the cursor belongs to another query (model, index, hash value or "
            "range condition)"
        )
    key = data.get("k")
    if not isinstance(key, dict) or set(key) != set(key_types):
        raise InvalidCursor(f"{model}: the cursor does not hold this query's key")
    try:
        start = {k: from_jsonable(v) for k, v in key.items()}
    except ValueError:  # base64 of bytes that does not decode
        start = {}
    if not start or not all(_fits(start[a], key_types.get(a)) for a in start):
        raise InvalidCursor(f"{model}: the cursor does not hold this query's key")
    return start


def _sign(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jsonable(av: Any) -> Any:
    """An AttributeValue (or a structure of them) as JSON: bytes as {"$b": base64}."""
    if isinstance(av, bytes):
        return {"$b": base64.b64encode(av).decode()}
    if isinstance(av, dict):
        return {k: jsonable(v) for k, v in av.items()}
    if isinstance(av, list):
        return [jsonable(v) for v in av]
    return av


def _fits(value: Any, kind: str | None) -> bool:
    """Whether a start key value read from a cursor is one non-empty scalar of its type."""
    if not isinstance(value, dict) or len(value) != 1 or kind not in value:
        return False
    raw = value[kind]
    if kind == "B":
        return isinstance(raw, bytes) and bool(raw)
    if not isinstance(raw, str) or not raw:
        return False
    if kind == "N":
        try:
            check_number(raw)
        except EncodeError:
            return False
    return True


def from_jsonable(value: Any) -> Any:
    """What ``jsonable`` wrote, read back."""
    if isinstance(value, dict):
        if set(value) == {"$b"}:
            return base64.b64decode(value["$b"])
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value
