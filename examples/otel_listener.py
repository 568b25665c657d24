"""Trace dynamodm's requests with OpenTelemetry: ``dm.instrument()``.

After ``dm.instrument()`` every request of every session becomes one CLIENT span named
``DynamoDB.<Operation>`` (``DynamoDB.PutItem``...), a child of the span that is current
when the request is made, with OpenTelemetry's attributes for DynamoDB (``rpc.system``,
``rpc.method``, ``aws.dynamodb.table_names``, ``aws.request_id``, consumed capacity...).
Retries are span events, failures the span's status. Spans carry no item values.

Install it with ``pip install 'dynamodm[otel]'`` plus an SDK and exporter of your choice;
``opentelemetry-instrument`` finds dynamodm through its entry point.

Run it as a demo with ``python examples/otel_listener.py``: it starts the embedded
server (unless ``DYNAMODB_ENDPOINT_URL`` names one), makes a few requests, and checks
the spans the SDK's in-memory exporter received. Without OpenTelemetry it says so and
exits with status 0.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

from pydantic import Field

import dynamodm as dm
from dynamodm.local import LocalServer

try:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode
except ImportError:  # the demo explains how to install it
    OTEL_INSTALLED = False
else:
    OTEL_INSTALLED = True

demo = dm.Registry("otel-demo")
SECRET = "s3cr3t-note-text"  # must never show up in telemetry


class Note(dm.Model):
    class Meta:
        table = "notes"
        registry = demo

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    owner: str
    text: str


class Missing(dm.Model):
    class Meta:
        table = "never-created"
        registry = demo

    id: Annotated[str, dm.HashKey]


def check(ok: bool, wrong: str) -> None:
    if not ok:
        raise SystemExit(f"otel_listener FAILED: {wrong}")


async def run(endpoint_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    dm.instrument(tracer_provider=provider)  # or the global provider: dm.instrument()
    tracer = provider.get_tracer("otel-demo")

    prefix = f"otel-{dm.new_id()[:8]}-"
    async with dm.connect(
        endpoint_url=endpoint_url, table_prefix=prefix, consumed_capacity="TOTAL"
    ) as db:
        await db.create_tables(Note)
        try:
            with tracer.start_as_current_span("add a note") as parent:
                note = await Note.create(owner="ada", text=SECRET)
                check(await Note.get(note.id) == note, "the note should read back")
            try:
                await Missing.get("x")
            except dm.TableNotFound:
                pass
            else:
                raise SystemExit("otel_listener FAILED: a missing table must raise TableNotFound")
        finally:
            await db.delete_tables(Note)
    dm.uninstrument()

    spans = exporter.get_finished_spans()
    names = sorted({span.name for span in spans})
    print(f"  {len(spans)} spans: {', '.join(names)}")
    put = next(s for s in spans if s.name == "DynamoDB.PutItem")
    check(put.kind == SpanKind.CLIENT, f"PutItem span kind {put.kind}")
    check(
        put.parent is not None and put.parent.span_id == parent.get_span_context().span_id,
        "the PutItem span should be a child of the span current when it was sent",
    )
    attributes = dict(put.attributes or {})
    check(
        attributes.get("rpc.system") == "aws-api"
        and attributes.get("rpc.method") == "PutItem"
        and tuple(attributes.get("aws.dynamodb.table_names", ())) == (f"{prefix}notes",)
        and bool(attributes.get("aws.dynamodb.consumed_capacity")),
        f"PutItem span attributes {attributes}",
    )
    print(f"  PutItem span: {attributes}")

    # Failed: the GetItem on the missing table, and delete_tables' last DescribeTable
    # (how it learns the table is gone).
    failed = [s for s in spans if s.status.status_code == StatusCode.ERROR]
    get = [s for s in failed if s.name == "DynamoDB.GetItem"]
    check(
        len(get) == 1 and get[0].status.description == "ResourceNotFoundException",
        f"the GetItem on a missing table should fail: {[(s.name, s.status) for s in failed]}",
    )
    print(f"  failed span: {get[0].name} {get[0].status.description}")

    telemetry = repr([(s.name, s.attributes, s.events, s.status.description) for s in spans])
    check(SECRET not in telemetry, "an item value reached a span")
    print("  no item value in any span")


async def main() -> None:
    print("dynamodm OpenTelemetry tracing")
    if not OTEL_INSTALLED:
        print(
            "  OpenTelemetry is not installed; nothing to show. Install it with\n"
            "  pip install 'dynamodm[otel]' opentelemetry-sdk"
        )
        return
    endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if endpoint_url:
        await run(endpoint_url)
    else:
        async with LocalServer() as server:
            await run(server.endpoint_url)
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
