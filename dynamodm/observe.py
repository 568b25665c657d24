"""Observability and dry runs: one event per request, and requests captured unsent.

Events and logs carry the operation, table, latency, retries, outcome and consumed
capacity; never item values or credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

logger = logging.getLogger("dynamodm.requests")


@dataclass(frozen=True)
class RequestEvent:
    """What one request did: ``outcome`` is "ok", the service's error code, or the
    exception's class name; ``latency`` is in seconds and spans every retry."""

    operation: str
    table: str | None
    latency: float
    retries: int
    outcome: str
    consumed_capacity: Any = None
    dry_run: bool = False
    request_id: str | None = None  # the x-amzn-RequestId of the last answer, if any


Listener = Callable[[RequestEvent], None]


class RequestScope(Protocol):
    """What a request hook follows through one request: its retries as they happen, and
    its event at the end."""

    def retried(self, attempt: int, reason: str) -> None: ...

    def finished(self, event: RequestEvent) -> None: ...


RequestHook = Callable[[Any, str, "str | None"], AbstractContextManager[RequestScope]]
"""``hook(connection, operation, tables)``: a context manager entered around the whole
request (retries included, in the caller's context) that yields its RequestScope. Used
by ``dm.instrument()``; the library's own hooks only, the public way is a listener."""

request_hooks: list[RequestHook] = []


def add_request_hook(hook: RequestHook) -> None:
    request_hooks.append(hook)


def remove_request_hook(hook: RequestHook) -> None:
    if hook in request_hooks:
        request_hooks.remove(hook)


def log_event(event: RequestEvent) -> None:
    logger.debug(
        "%s %s %.2f ms retries=%d outcome=%s%s",
        event.operation,
        event.table or "-",
        event.latency * 1000,
        event.retries,
        event.outcome,
        f" capacity={event.consumed_capacity}" if event.consumed_capacity else "",
    )


# ---------------------------------------------------------------- dry runs

_EMPTY_RESPONSES: dict[str, dict[str, Any]] = {
    "Query": {"Items": [], "Count": 0, "ScannedCount": 0},
    "Scan": {"Items": [], "Count": 0, "ScannedCount": 0},
    "BatchGetItem": {"Responses": {}, "UnprocessedKeys": {}},
    "BatchWriteItem": {"UnprocessedItems": {}},
    "TransactGetItems": {"Responses": []},
}


@dataclass(frozen=True)
class CapturedRequest:
    """A request a dry run did not send: the operation and the exact request body."""

    operation: str
    request: dict[str, Any]


@dataclass
class DryRun:
    """``async with dm.dry_run() as captured:`` — requests are recorded, not sent.

    Reads answer as if nothing were found; writes as if they succeeded.
    """

    requests: list[CapturedRequest] = field(default_factory=list)
    _token: Token[DryRun | None] | None = field(default=None, repr=False)

    def answer(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(CapturedRequest(operation, request))
        response = _EMPTY_RESPONSES.get(operation, {})
        if operation == "TransactGetItems":
            return {"Responses": [{} for _ in request.get("TransactItems", [])]}
        return dict(response)

    def __enter__(self) -> DryRun:
        self._token = active_dry_run.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            active_dry_run.reset(self._token)
            self._token = None

    async def __aenter__(self) -> DryRun:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


active_dry_run: ContextVar[DryRun | None] = ContextVar("dynamodm_dry_run", default=None)


def dry_run() -> DryRun:
    """Capture every request made inside the block instead of sending it."""
    return DryRun()
