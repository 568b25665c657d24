"""OpenTelemetry tracing: one CLIENT span per DynamoDB request, ``DynamoDB.<Operation>``.

``dm.instrument()`` (or the ``dynamodm`` entry point of ``opentelemetry-instrument``)
adds a request listener to every session that is open or opens later (it wraps
``Connection.open`` for those; ``dm.uninstrument()`` restores it). Each span is
built from the session's ``dm.RequestEvent``: it carries the operation, tables,
latency, retries, outcome, consumed capacity and request id, never item values or
credentials, so neither can reach a span.

Needs ``pip install 'dynamodm[otel]'``; OpenTelemetry is imported by ``instrument()``,
never by ``import dynamodm``.
"""

from __future__ import annotations

import contextlib
import json
import time
import weakref
from collections.abc import Callable, Collection, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .connection import Connection, _open
from .observe import RequestEvent

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

__all__ = ["instrument", "is_instrumented", "uninstrument"]

INSTRUMENTATION_NAME = "dynamodm"
_OK_OUTCOMES = frozenset({"ok", "dry-run"})


class _Tracing:
    """What ``instrument()`` set up: the tracer, the sessions it listens to, and the
    original ``Connection.open``."""

    def __init__(self, tracer: Tracer, original_open: Callable[..., Any]) -> None:
        self.tracer = tracer
        self.original_open = original_open
        self.listeners: weakref.WeakKeyDictionary[Connection, SpanListener] = (
            weakref.WeakKeyDictionary()
        )

    def attach(self, connection: Connection) -> None:
        if connection not in self.listeners:
            listener = SpanListener(self.tracer, connection)
            self.listeners[connection] = listener
            connection.add_listener(listener)

    def detach_all(self) -> None:
        for connection, listener in list(self.listeners.items()):
            with contextlib.suppress(ValueError):  # the user removed it already
                connection.remove_listener(listener)
        self.listeners.clear()


_tracing: _Tracing | None = None


def instrument(tracer_provider: TracerProvider | None = None) -> None:
    """Trace every DynamoDB request of every session, open now or later, as a CLIENT
    span on ``tracer_provider`` (default: the global one). Calling it again switches
    to the new provider."""
    global _tracing
    from opentelemetry import trace

    if _tracing is not None:
        uninstrument()
    tracer = trace.get_tracer(
        INSTRUMENTATION_NAME,
        _version(),
        tracer_provider=tracer_provider,
        schema_url="https://opentelemetry.io/schemas/1.30.0",
    )
    original_open = Connection.open
    tracing = _Tracing(tracer, original_open)

    async def open_traced(self: Connection) -> Connection:
        opened = await original_open(self)
        tracing.attach(self)
        return opened

    Connection.open = open_traced  # type: ignore[method-assign]
    _tracing = tracing
    for connection in list(_open):
        tracing.attach(connection)


def _version() -> str | None:
    try:
        return metadata.version("dynamodm")
    except metadata.PackageNotFoundError:
        return None


def uninstrument() -> None:
    """Stop tracing: remove the listeners ``instrument()`` added."""
    global _tracing
    tracing, _tracing = _tracing, None
    if tracing is None:
        return
    Connection.open = tracing.original_open  # type: ignore[method-assign]
    tracing.detach_all()


def is_instrumented() -> bool:
    return _tracing is not None


class SpanListener:
    """A request listener that records one span per ``dm.RequestEvent`` of a session.

    The event arrives when the request is over, retries included, in the caller's
    context: the span is a child of the caller's current span, starts ``latency``
    before the event and ends at it.
    """

    def __init__(self, tracer: Tracer, connection: Connection) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._client = SpanKind.CLIENT
        self._status = Status
        self._error = StatusCode.ERROR
        self._common: dict[str, Any] = {
            "rpc.system": "aws-api",
            "rpc.service": "DynamoDB",
            "db.system.name": "aws.dynamodb",
        }
        if connection.region:
            self._common["cloud.region"] = connection.region
        self._common.update(_server(connection.endpoint_url, connection.region))

    def __call__(self, event: RequestEvent) -> None:
        end = time.time_ns()
        failed = event.outcome not in _OK_OUTCOMES
        attributes = dict(self._common)
        attributes["rpc.method"] = event.operation
        attributes["db.operation.name"] = event.operation
        if event.table:
            names = [name.strip() for name in event.table.split(",")]
            attributes["aws.dynamodb.table_names"] = names
            if len(names) == 1:
                attributes["db.collection.name"] = names[0]
        if event.request_id:
            attributes["aws.request_id"] = event.request_id
        capacity = _capacity(event.consumed_capacity)
        if capacity:
            attributes["aws.dynamodb.consumed_capacity"] = capacity
        attributes["dynamodm.retries"] = event.retries
        if event.dry_run:
            attributes["dynamodm.dry_run"] = True
        if failed:
            attributes["error.type"] = event.outcome
        span = self._tracer.start_span(
            f"DynamoDB.{event.operation}",
            kind=self._client,
            start_time=end - int(event.latency * 1e9),
            attributes=attributes,
        )
        # The event reports how many retries there were, not when: each is an event at
        # the end of the span, numbered by its attempt.
        for attempt in range(2, event.retries + 2):
            span.add_event("dynamodm.retry", {"dynamodm.attempt": attempt}, timestamp=end)
        if failed:
            span.set_status(self._status(self._error, event.outcome))
        span.end(end_time=end)


def _server(endpoint_url: str | None, region: str | None) -> dict[str, Any]:
    """server.address and server.port of the endpoint (DynamoDB's regional one when
    none is set)."""
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        found: dict[str, Any] = {}
        if parts.hostname:
            found["server.address"] = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found["server.port"] = port
        return found
    if region:
        return {"server.address": f"dynamodb.{region}.amazonaws.com", "server.port": 443}
    return {}


def _capacity(consumed: Any) -> list[str]:
    """ConsumedCapacity (one entry, or a list for batches and transactions) as the JSON
    strings the semantic conventions ask for: table and index names and unit counts."""
    entries = [consumed] if isinstance(consumed, Mapping) else consumed
    if not isinstance(entries, list):
        return []
    return [json.dumps(dict(e), sort_keys=True) for e in entries if isinstance(e, Mapping)]


# ---------------------------------------------------------------- the instrumentor


def _instrumentor_class() -> type[Any]:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )

    class DynamoDMInstrumentor(BaseInstrumentor):  # type: ignore[misc]
        """``opentelemetry-instrument`` entry point: ``DynamoDMInstrumentor().instrument(
        tracer_provider=...)`` is ``dm.instrument(tracer_provider)``."""

        def instrumentation_dependencies(self) -> Collection[str]:
            return ()

        def _instrument(self, **kwargs: Any) -> None:
            instrument(kwargs.get("tracer_provider"))

        def _uninstrument(self, **kwargs: Any) -> None:
            uninstrument()

    DynamoDMInstrumentor.__module__ = __name__
    return DynamoDMInstrumentor


_classes: dict[str, type[Any]] = {}


def __getattr__(name: str) -> Any:
    """``DynamoDMInstrumentor`` is built on first access, so that importing this module
    (and ``import dynamodm``) does not import OpenTelemetry."""
    if name == "DynamoDMInstrumentor":
        if name not in _classes:
            _classes[name] = _instrumentor_class()
        return _classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
