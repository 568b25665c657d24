"""A fault-injecting HTTP proxy between a DynamoDB client and a local server.

The proxy listens on 127.0.0.1 (a free port), forwards DynamoDB JSON requests to a
local server's endpoint, and, by rule and at a seeded random rate, answers in the
server's place: a throttling error, a 500, a batch with part of its keys or items
left unprocessed, or a dropped connection (before forwarding: nothing happened;
after forwarding: the write happened and its answer is lost).

Every request is logged with what the proxy did, so tests check "exactly once"
against what reached the server, not only by counting rows afterwards.

DynamoDB makes TransactWriteItems idempotent through ClientRequestToken; moto and
dynalite ignore the token. The proxy plays DynamoDB's part: a repeated token with
the same items is answered from the first success without reaching the server, a
repeated token with other items gets IdempotentParameterMismatchException.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import aiohttp

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024
MAX_BODY = 20 * 1024 * 1024
MAX_REQUESTS_PER_CONNECTION = 100_000
IDLE_TIMEOUT = 30.0
UPSTREAM_TIMEOUT = 30.0
JSON_TYPE = "application/x-amz-json-1.0"
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"

# Headers that describe one hop, or the body the proxy may rewrite: never copied.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
        "x-amz-crc32",
        "date",
        "server",
    }
)

Action = Literal["throttle", "error500", "unprocessed", "drop_before", "drop_after", "cancel"]
WriteKey = tuple[str, str, str]  # (table, "Put" | "Delete", canonical key)


@dataclass
class Rule:
    """Answer ``action`` to requests of ``operation`` (every operation when None) at ``rate``,
    at most ``times`` times. ``code`` is the cancellation reason for ``cancel``."""

    action: Action
    operation: str | None = None
    rate: float = 1.0
    times: int | None = None
    code: str = "TransactionConflict"
    used: int = 0


@dataclass
class Exchange:
    """One request and what the proxy did with it."""

    arrived: int  # position on the proxy's clock when the request arrived
    operation: str
    request: dict[str, Any]
    action: str = "forward"  # "forward", "replayed", "mismatch" or a Rule action
    status: int | None = None  # what the client got; None when the connection was dropped
    answered: int | None = None  # position on the clock when the answer was sent
    forwarded: bool = False  # the request (or part of it) reached the server
    writes: list[WriteKey] = field(default_factory=list)  # batch writes that reached it
    unprocessed: int = 0  # keys or items the proxy reported unprocessed
    returned: int = 0  # items a BatchGetItem answer carried

    @property
    def token(self) -> str | None:
        token = self.request.get("ClientRequestToken")
        return str(token) if token is not None else None

    def write_requests(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """(table, PutRequest/DeleteRequest) pairs of a BatchWriteItem request."""
        for table, requests in (self.request.get("RequestItems") or {}).items():
            for request in requests:
                yield table, request


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class FaultProxy:
    """``async with FaultProxy(endpoint_url, seed=1) as proxy:`` — then point a client at
    ``proxy.endpoint_url`` and add rules with ``proxy.add(...)``."""

    def __init__(self, upstream: str, *, seed: int = 0, emulate_tokens: bool = True) -> None:
        if not upstream.startswith(f"http://{HOST}:"):
            raise ValueError(f"the fault proxy only forwards to http://{HOST}:<port>")
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.log: list[Exchange] = []
        self.key_schema: dict[str, tuple[str, ...]] = {}
        self.emulate_tokens = emulate_tokens
        self._random = random.Random(seed)
        self._clock = itertools.count(1)
        self._tokens: dict[str, tuple[str, int, bytes]] = {}
        self._server: asyncio.Server | None = None
        self._client: aiohttp.ClientSession | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.connections = 0  # client connections accepted (fewer than requests: keep-alive)
        self.port = 0

    # -- lifecycle

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> FaultProxy:
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64),
            timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT),
            auto_decompress=False,
        )
        self._server = await asyncio.start_server(self._serve, HOST, 0, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- rules and log

    def add(
        self,
        action: Action,
        operation: str | None = None,
        *,
        rate: float = 1.0,
        times: int | None = None,
        code: str = "TransactionConflict",
    ) -> Rule:
        """Add a rule; rules are tried in the order added, the first that fires wins."""
        rule = Rule(action, operation, rate, times, code)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule and forget the log."""
        self.rules.clear()
        self.log.clear()

    def seed(self, seed: int) -> None:
        self._random.seed(seed)

    def exchanges(self, operation: str | None = None, action: str | None = None) -> list[Exchange]:
        return [
            e
            for e in self.log
            if (operation is None or e.operation == operation)
            and (action is None or e.action == action)
        ]

    def landed_writes(self) -> Counter[WriteKey]:
        """How many times each batch-written item reached the server."""
        return Counter(key for e in self.log for key in e.writes)

    def resent_after_ack(self) -> list[WriteKey]:
        """Batch writes that a request carried after the server's acknowledgement of that
        same item had reached the client (an acknowledged item sent again)."""
        acknowledged: dict[WriteKey, int] = {}
        for e in self.log:
            if e.answered is not None and e.status == 200:
                for key in e.writes:
                    acknowledged.setdefault(key, e.answered)
        resent = []
        for e in self.log:
            if e.operation != "BatchWriteItem":
                continue
            for table, request in e.write_requests():
                key = self.write_key(table, request)
                if key in acknowledged and e.arrived > acknowledged[key]:
                    resent.append(key)
        return resent

    def write_key(self, table: str, request: dict[str, Any]) -> WriteKey:
        """(table, kind, key) of one BatchWriteItem request entry."""
        if "DeleteRequest" in request:
            return table, "Delete", canonical(request["DeleteRequest"]["Key"])
        item = request["PutRequest"]["Item"]
        names = self.key_schema.get(table)
        key = {name: item[name] for name in names} if names else item
        return table, "Put", canonical(key)

    # -- serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections += 1
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                    return
                method, path, headers = _parse_head(head)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    await _answer(writer, 501, b'{"message":"chunked bodies not supported"}')
                    return
                length = int(headers.get("content-length") or 0)
                if length > MAX_BODY:
                    await _answer(writer, 413, b'{"message":"body too large"}')
                    return
                body = await asyncio.wait_for(reader.readexactly(length), IDLE_TIMEOUT)
                keep = await self._handle(method, path, headers, body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            return
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _pick(self, operation: str) -> Rule | None:
        for rule in self.rules:
            if rule.operation not in (None, operation):
                continue
            if rule.times is not None and rule.used >= rule.times:
                continue
            if self._random.random() < rule.rate:
                rule.used += 1
                return rule
        return None

    async def _handle(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False when the connection is to be dropped."""
        operation = headers.get("x-amz-target", "").rpartition(".")[2]
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = {}
        exchange = Exchange(next(self._clock), operation, request)
        self.log.append(exchange)
        if operation == "CreateTable":
            self._learn_keys(request)
        rule = self._pick(operation)
        action = rule.action if rule is not None else "forward"
        if action == "unprocessed" and _entry_count(operation, request) == 0:
            action = "forward"  # not a batch: nothing to leave out
        exchange.action = action

        if action == "throttle":
            return await self._reply(
                exchange, writer, 400, _error("ProvisionedThroughputExceededException")
            )
        if action == "error500":
            return await self._reply(exchange, writer, 500, _error("InternalServerError"))
        if action == "cancel":
            assert rule is not None
            count = len(request.get("TransactItems") or [])
            reasons = [{"Code": rule.code, "Message": "injected"}] + [
                {"Code": "None"} for _ in range(count - 1)
            ]
            payload = _error("TransactionCanceledException", CancellationReasons=reasons)
            return await self._reply(exchange, writer, 400, payload)
        if action == "drop_before":
            return False

        token = exchange.token if operation == "TransactWriteItems" else None
        fingerprint = ""
        if token is not None and self.emulate_tokens:
            fingerprint = hashlib.sha256(canonical(request["TransactItems"]).encode()).hexdigest()
        if token is not None and self.emulate_tokens and token in self._tokens:
            first, status, answer = self._tokens[token]
            if first != fingerprint:
                exchange.action = "mismatch"
                answer = _error("IdempotentParameterMismatchException")
                return await self._reply(exchange, writer, 400, answer)
            if action == "drop_after":
                return False  # answered from the first success, and that answer is lost
            exchange.action = "replayed"
            return await self._reply(exchange, writer, status, answer)

        moved: dict[str, list[dict[str, Any]]] = {}
        sent = body
        if action == "unprocessed" and operation == "BatchWriteItem":
            request_items, moved = self._split_writes(request["RequestItems"])
            exchange.unprocessed = sum(len(v) for v in moved.values())
            if not request_items:  # everything left out: nothing reaches the server
                answer = json.dumps({"UnprocessedItems": moved}).encode()
                return await self._reply(exchange, writer, 200, answer)
            sent = json.dumps({**request, "RequestItems": request_items}).encode()
        try:
            status, upstream_headers, answer = await self._forward(method, path, headers, sent)
        except (aiohttp.ClientError, TimeoutError):
            exchange.action = "upstream-failed"  # the server may have received it
            exchange.forwarded = True
            await self._reply(exchange, writer, 502, _error("ServiceUnavailable"))
            return False
        exchange.forwarded = True
        if operation == "BatchWriteItem" and status == 200:
            forwarded = json.loads(sent)["RequestItems"]
            exchange.writes = [
                self.write_key(table, entry)
                for table, entries in forwarded.items()
                for entry in entries
            ]
        if action == "unprocessed" and status == 200:
            answer = self._mark_unprocessed(operation, request, answer, moved, exchange)
        if operation == "BatchGetItem" and status == 200:
            responses = json.loads(answer).get("Responses") or {}
            exchange.returned = sum(len(items) for items in responses.values())
        if token is not None and self.emulate_tokens and status == 200:
            self._tokens[token] = (fingerprint, status, answer)
        if action == "drop_after":
            return False
        content_type = next(
            (v for k, v in upstream_headers.items() if k.lower() == "content-type"), JSON_TYPE
        )
        return await self._reply(exchange, writer, status, answer, content_type, upstream_headers)

    async def _reply(
        self,
        exchange: Exchange,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = JSON_TYPE,
        extra: dict[str, str] | None = None,
    ) -> bool:
        exchange.status = status
        await _answer(writer, status, body, content_type, extra)
        exchange.answered = next(self._clock)
        return True

    async def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._client is not None
        forward = {k: v for k, v in headers.items() if k not in _HOP_HEADERS}
        forward["Accept-Encoding"] = "identity"
        async with self._client.request(
            method, self.upstream + path, data=body, headers=forward
        ) as response:
            answer = await response.read()
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
            return response.status, kept, answer

    def _learn_keys(self, request: dict[str, Any]) -> None:
        table = request.get("TableName")
        schema = request.get("KeySchema") or []
        if table and schema:
            self.key_schema[table] = tuple(k["AttributeName"] for k in schema)

    def _choose(self, count: int) -> set[int]:
        """A random part of ``count`` entries: at least one, at most all."""
        return set(self._random.sample(range(count), self._random.randint(1, count)))

    def _split_writes(
        self, request_items: dict[str, list[dict[str, Any]]]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        """(what reaches the server, what is reported unprocessed)."""
        flat = [(table, entry) for table, entries in request_items.items() for entry in entries]
        chosen = self._choose(len(flat))
        kept: dict[str, list[dict[str, Any]]] = {}
        moved: dict[str, list[dict[str, Any]]] = {}
        for index, (table, entry) in enumerate(flat):
            (moved if index in chosen else kept).setdefault(table, []).append(entry)
        return kept, moved

    def _mark_unprocessed(
        self,
        operation: str,
        request: dict[str, Any],
        answer: bytes,
        moved: dict[str, list[dict[str, Any]]],
        exchange: Exchange,
    ) -> bytes:
        data = json.loads(answer)
        if operation == "BatchWriteItem":
            unprocessed = data.setdefault("UnprocessedItems", {})
            for table, entries in moved.items():
                unprocessed.setdefault(table, []).extend(entries)
        elif operation == "BatchGetItem":
            asked = request.get("RequestItems") or {}
            flat = [(table, key) for table, spec in asked.items() for key in spec.get("Keys", [])]
            chosen = self._choose(len(flat))
            unprocessed_keys = data.setdefault("UnprocessedKeys", {})
            responses = data.setdefault("Responses", {})
            for index in sorted(chosen):
                table, key = flat[index]
                spec = unprocessed_keys.setdefault(
                    table, {k: v for k, v in asked[table].items() if k != "Keys"} | {"Keys": []}
                )
                spec["Keys"].append(key)
                responses[table] = [
                    item
                    for item in responses.get(table, [])
                    if any(item.get(name) != value for name, value in key.items())
                ]
            exchange.unprocessed = len(chosen)
        return json.dumps(data).encode()


def _entry_count(operation: str, request: dict[str, Any]) -> int:
    items = request.get("RequestItems") or {}
    if operation == "BatchWriteItem":
        return sum(len(entries) for entries in items.values())
    if operation == "BatchGetItem":
        return sum(len(spec.get("Keys", [])) for spec in items.values())
    return 0


def _error(code: str, **extra: Any) -> bytes:
    return json.dumps(
        {"__type": ERROR_PREFIX + code, "message": "injected by the fault proxy", **extra}
    ).encode()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


_REASONS = {
    200: "OK",
    400: "Bad Request",
    413: "Payload Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
}


async def _answer(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = JSON_TYPE,
    extra: dict[str, str] | None = None,
) -> None:
    """Write one HTTP/1.1 response with a correct Content-Length and x-amz-crc32."""
    own = {"content-type", "content-length", "x-amz-crc32", "connection"}
    headers = {
        **{k: v for k, v in (extra or {}).items() if k.lower() not in own},
        "Content-Type": content_type,
        "Content-Length": str(len(body)),
        "x-amz-crc32": str(zlib.crc32(body)),
        "Connection": "keep-alive",
    }
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
