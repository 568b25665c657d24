"""OpenTelemetry tracing: one CLIENT span per DynamoDB request, ``DynamoDB.<Operation>``.

``dm.instrument()`` (or the ``dynamodm`` entry point of ``opentelemetry-instrument``)
adds a request hook that every session calls around each request: the span is started
when the request starts, is the current span while it is sent (so spans of lower
layers nest under it), gets one event per retry when it happens, and ends with the
request's ``dm.RequestEvent``. Spans carry the operation, tables, retries, outcome,
consumed capacity and request id, never item values or credentials.
``dm.uninstrument()`` removes the hook.

Needs ``pip install 'dynamodm[otel]'``; OpenTelemetry is imported by ``instrument()``,
never by ``import dynamodm``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .observe import RequestEvent, add_request_hook, remove_request_hook

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["instrument", "is_instrumented", "uninstrument"]

INSTRUMENTATION_NAME = "dynamodm"
_OK_OUTCOMES = frozenset({"ok", "dry-run"})


class _Tracing:
    """What ``instrument()`` set up: the tracer, and the hook it added."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.tracer = tracer
        self._trace = trace
        self._client = SpanKind.CLIENT
        self._status = Status
        self._error = StatusCode.ERROR

    @contextmanager
    def hook(self, connection: Any, operation: str, tables: str | None) -> Iterator[_SpanScope]:
        attributes: dict[str, Any] = {
            "rpc.system": "aws-api",
            "rpc.service": "DynamoDB",
            "db.system.name": "aws.dynamodb",
            "rpc.method": operation,
            "db.operation.name": operation,
        }
        region = getattr(connection, "region", None)
        if region:
            attributes["cloud.region"] = region
        attributes.update(_server(getattr(connection, "endpoint_url", None), region))
        if tables:
            names = [name.strip() for name in tables.split(",")]
            attributes["aws.dynamodb.table_names"] = names
            if len(names) == 1:
                attributes["db.collection.name"] = names[0]
        span = self.tracer.start_span(
            f"DynamoDB.{operation}", kind=self._client, attributes=attributes
        )
        scope = _SpanScope(span, self)
        with self._trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            try:
                yield scope
            except BaseException as error:
                scope.fail(type(error).__name__)
                raise
        scope.end()


class _SpanScope:
    """One request's span: its retries as events, its outcome at the end."""

    def __init__(self, span: Span, tracing: _Tracing) -> None:
        self.span = span
        self.tracing = tracing
        self.done = False

    def retried(self, attempt: int, reason: str) -> None:
        self.span.add_event(
            "dynamodm.retry", {"dynamodm.attempt": attempt, "dynamodm.reason": reason}
        )

    def finished(self, event: RequestEvent) -> None:
        span = self.span
        if event.request_id:
            span.set_attribute("aws.request_id", event.request_id)
        capacity = _capacity(event.consumed_capacity)
        if capacity:
            span.set_attribute("aws.dynamodb.consumed_capacity", capacity)
        span.set_attribute("dynamodm.retries", event.retries)
        if event.dry_run:
            span.set_attribute("dynamodm.dry_run", True)
        if event.outcome not in _OK_OUTCOMES:
            self.fail(event.outcome)
        self.end()

    def fail(self, outcome: str) -> None:
        if not self.done:
            self.span.set_attribute("error.type", outcome)
            self.span.set_status(self.tracing._status(self.tracing._error, outcome))
            self.end()

    def end(self) -> None:
        if not self.done:
            self.done = True
            self.span.end()


_tracing: _Tracing | None = None


def instrument(tracer_provider: TracerProvider | None = None) -> None:
    """Trace every DynamoDB request of every session as a CLIENT span on
    ``tracer_provider`` (default: the global one). Calling it again switches to the new
    provider."""
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
    _tracing = _Tracing(tracer)
    add_request_hook(_tracing.hook)


def _version() -> str | None:
    try:
        return metadata.version("dynamodm")
    except metadata.PackageNotFoundError:
        return None


def uninstrument() -> None:
    """Stop tracing: remove the hook ``instrument()`` added."""
    global _tracing
    tracing, _tracing = _tracing, None
    if tracing is not None:
        remove_request_hook(tracing.hook)


def is_instrumented() -> bool:
    return _tracing is not None


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
