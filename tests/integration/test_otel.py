"""Tracing (dynamodm/otel.py) against each local server, exported by the OpenTelemetry
SDK's in-memory exporter: span names, kind, semantic-convention attributes, parents,
error status, retries as events, and no item value anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Annotated, Any

import pytest
from faultproxy import FaultProxy
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import Field
from servers import ServerHandle

import dynamodm as dm

REG = dm.Registry("otel-tests")
SECRET = "s3cr3t-value-7f2c"  # an item value: must never reach a span
NO_TRANSACTIONS = "dynalite has no transactions"


class Note(dm.Model):
    class Meta:
        table = "notes"
        registry = REG
        indexes = (dm.GlobalIndex("ByOwner", hash_key="owner"),)

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    owner: str
    text: str = ""


class Missing(dm.Model):
    class Meta:
        table = "never-created"
        registry = REG

    id: Annotated[str, dm.HashKey]


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    dm.instrument(tracer_provider=provider)
    try:
        yield memory, provider
    finally:
        dm.uninstrument()


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def _no_values(spans: tuple[ReadableSpan, ...]) -> None:
    for span in spans:
        text = repr(
            (
                span.name,
                dict(span.attributes or {}),
                [(e.name, dict(e.attributes or {})) for e in span.events],
                span.status.description,
            )
        )
        assert SECRET not in text, span.name


async def test_one_client_span_per_request_under_the_callers_span(
    db: dm.Session, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    memory, provider = exporter
    await db.create_tables(Note)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("handle request") as parent:
        note = await Note.create(owner="ada", text=SECRET)
        assert await Note.get(note.id) == note
        assert [n.id for n in await Note.query("ada", index="ByOwner").all()] == [note.id]
    spans = memory.get_finished_spans()
    by_name = _by_name(spans)
    for name in ("DynamoDB.CreateTable", "DynamoDB.PutItem", "DynamoDB.GetItem", "DynamoDB.Query"):
        assert name in by_name, sorted(by_name)
    context = parent.get_span_context()
    for name in ("DynamoDB.PutItem", "DynamoDB.GetItem", "DynamoDB.Query"):
        (span,) = by_name[name]
        assert span.kind == SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == context.span_id
        assert span.context.trace_id == context.trace_id
        assert span.status.status_code == StatusCode.UNSET
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time < span.end_time
        attributes = dict(span.attributes or {})
        operation = name.split(".", 1)[1]
        assert attributes["rpc.system"] == "aws-api"
        assert attributes["rpc.service"] == "DynamoDB"
        assert attributes["rpc.method"] == operation
        assert attributes["db.system.name"] == "aws.dynamodb"
        assert attributes["db.operation.name"] == operation
        assert tuple(attributes["aws.dynamodb.table_names"]) == (db.table_name(Note),)
        assert attributes["cloud.region"] == "us-east-1"
        assert attributes["server.address"] == "127.0.0.1"
        assert isinstance(attributes["server.port"], int)
        assert isinstance(attributes["aws.request_id"], str) and attributes["aws.request_id"]
        assert attributes["dynamodm.retries"] == 0
    # The table set-up ran outside the parent span: a root span of its own trace.
    (create,) = by_name["DynamoDB.CreateTable"]
    assert create.parent is None
    _no_values(spans)


async def test_failures_set_the_error_status_and_type(
    db: dm.Session, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    memory, _provider = exporter
    with pytest.raises(dm.TableNotFound):
        await Missing.get(SECRET)
    (span,) = _by_name(memory.get_finished_spans())["DynamoDB.GetItem"]
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ResourceNotFoundException"
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "ResourceNotFoundException"
    assert tuple(attributes["aws.dynamodb.table_names"]) == (db.table_name(Missing),)
    _no_values(memory.get_finished_spans())


async def test_consumed_capacity_is_an_attribute(
    server: ServerHandle, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    memory, _provider = exporter
    # A session opened after dm.instrument() is traced too.
    async with dm.connect(
        endpoint_url=server.endpoint_url,
        region="us-east-1",
        table_prefix=f"otel{dm.new_id()[:8]}-",
        consumed_capacity="TOTAL",
    ) as db:
        await db.create_tables(Note)
        await Note.create(owner="ada", text=SECRET)
        await db.delete_tables(Note)
    (put,) = _by_name(memory.get_finished_spans())["DynamoDB.PutItem"]
    capacity = dict(put.attributes or {})["aws.dynamodb.consumed_capacity"]
    assert len(capacity) == 1 and '"TableName"' in capacity[0] and "CapacityUnits" in capacity[0]
    _no_values(memory.get_finished_spans())


async def test_retries_are_span_events(
    db: dm.Session,
    proxied: dm.Session,
    fault_proxy: FaultProxy,
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    memory, _provider = exporter
    await db.create_tables(Note)
    memory.clear()
    fault_proxy.add("throttle", "PutItem", times=2)
    await Note.create(owner="ada", text=SECRET, session=proxied)
    (put,) = _by_name(memory.get_finished_spans())["DynamoDB.PutItem"]
    assert dict(put.attributes or {})["dynamodm.retries"] == 2
    assert [(e.name, dict(e.attributes or {})) for e in put.events] == [
        (
            "dynamodm.retry",
            {"dynamodm.attempt": 2, "dynamodm.reason": "ProvisionedThroughputExceededException"},
        ),
        (
            "dynamodm.retry",
            {"dynamodm.attempt": 3, "dynamodm.reason": "ProvisionedThroughputExceededException"},
        ),
    ]
    # Each retry is an event at the time it happened, within the span.
    times = [e.timestamp for e in put.events]
    assert put.start_time is not None and put.end_time is not None
    assert put.start_time < times[0] < times[1] < put.end_time
    assert put.status.status_code == StatusCode.UNSET
    _no_values(memory.get_finished_spans())


@pytest.mark.moto_only(reason=NO_TRANSACTIONS)
async def test_a_transaction_is_one_span_naming_its_tables(
    db: dm.Session, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    memory, provider = exporter
    await db.create_tables(Note)
    memory.clear()
    with provider.get_tracer("test").start_as_current_span("checkout") as parent:
        async with dm.transaction() as tx:
            tx.create(Note(owner="ada", text=SECRET))
            tx.create(Note(owner="bob", text=SECRET))
    spans = memory.get_finished_spans()
    (commit,) = _by_name(spans)["DynamoDB.TransactWriteItems"]
    assert commit.parent is not None
    assert commit.parent.span_id == parent.get_span_context().span_id
    _no_values(spans)


def _children(memory: InMemorySpanExporter, parent: Any) -> list[str]:
    """Names of the finished spans under ``parent`` (other sessions' spans left out)."""
    span_id = parent.get_span_context().span_id
    return [
        s.name
        for s in memory.get_finished_spans()
        if s.parent is not None and s.parent.span_id == span_id
    ]


async def test_uninstrument_stops_tracing(
    db: dm.Session, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    memory, provider = exporter
    tracer = provider.get_tracer("test")
    dm.uninstrument()
    with tracer.start_as_current_span("untraced") as untraced:
        await db.list_tables()
    assert _children(memory, untraced) == []
    dm.instrument(tracer_provider=provider)
    with tracer.start_as_current_span("traced") as traced:
        await db.list_tables()
    # One span per page: a server that holds many tables answers ListTables in pages.
    assert set(_children(memory, traced)) == {"DynamoDB.ListTables"}


async def test_the_instrumentor_entry_point(db: dm.Session) -> None:
    (entry,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "dynamodm"]
    instrumentor_class: Any = entry.load()
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor = instrumentor_class()
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert dm.otel.is_instrumented()
        with provider.get_tracer("test").start_as_current_span("probe") as probe:
            await db.list_tables()
    finally:
        instrumentor.uninstrument()
    assert not dm.otel.is_instrumented()
    assert set(_children(memory, probe)) == {"DynamoDB.ListTables"}


async def test_the_span_is_current_while_the_request_runs(
    db: dm.Session, exporter: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    """Spans of lower layers (an HTTP client's instrumentation) nest under the request's."""
    from opentelemetry import trace

    await db.create_tables(Note)
    seen: list[str] = []

    def current(event: dm.RequestEvent) -> None:
        span = trace.get_current_span()
        seen.append(getattr(span, "name", ""))

    db.add_listener(current)
    await Note.get_or_none("missing")
    db.remove_listener(current)
    assert seen == ["DynamoDB.GetItem"]
