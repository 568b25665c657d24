"""Export dynamodm's request events as OpenTelemetry spans and metrics.

``OpenTelemetryListener`` is a request listener (``db.add_listener``): after every
request it records one CLIENT span (named like the botocore instrumentation's,
``DynamoDB.GetItem``, with its attributes) and three metrics: the request duration,
the retries, and the consumed capacity. A ``dm.RequestEvent`` carries no item values
and no credentials, so neither can reach a span or a metric.

Copy the class into your app; install OpenTelemetry with ``pip install 'dynamodm[otel]'``
(or opentelemetry-api and an SDK/exporter of your choice) and configure it as usual.

Run it as a demo with ``python examples/otel_listener.py``: it starts the embedded
server (unless ``DYNAMODB_ENDPOINT_URL`` names one), makes a few requests, and checks
the spans and metrics the SDK's in-memory exporter received. Without OpenTelemetry it
says so and exits with status 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

import dynamodm as dm
from dynamodm.local import LocalServer

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the demo explains how to install it
    OTEL_INSTALLED = False
else:
    OTEL_INSTALLED = True

AttributeValue = str | bool | int | float | Sequence[str]


class OpenTelemetryListener:
    """A dynamodm request listener that records OpenTelemetry spans and metrics.

    Spans are CLIENT spans named ``DynamoDB.<Operation>``, children of the span that is
    current when the request is made; their start is the request's start (the event
    arrives when the request is over, retries included). Metrics:
    ``db.client.operation.duration`` (s), ``dynamodm.request.retries`` and
    ``dynamodm.consumed_capacity`` (when the session asks for it:
    ``dm.connect(consumed_capacity="TOTAL")``).
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("dynamodm", dm.__version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("dynamodm", dm.__version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of DynamoDB requests made by dynamodm, retries included",
        )
        self._retries = meter.create_counter(
            "dynamodm.request.retries",
            unit="{retry}",
            description="Requests dynamodm sent again (throttling, transient errors)",
        )
        self._capacity = meter.create_counter(
            "dynamodm.consumed_capacity",
            unit="{capacity_unit}",
            description="Capacity units DynamoDB reported as consumed",
        )

    def __call__(self, event: dm.RequestEvent) -> None:
        end = time.time_ns()
        failed = event.outcome not in ("ok", "dry-run")
        common: dict[str, AttributeValue] = {
            "db.system": "dynamodb",
            "db.operation.name": event.operation,
        }
        if event.table:
            common["db.collection.name"] = event.table
        if failed:
            common["error.type"] = event.outcome

        attributes: dict[str, AttributeValue] = {
            **common,
            "rpc.system": "aws-api",
            "rpc.service": "DynamoDB",
            "rpc.method": event.operation,
            "dynamodm.retries": event.retries,
            "dynamodm.outcome": event.outcome,
        }
        if event.table:
            attributes["aws.dynamodb.table_names"] = [event.table]
        if event.dry_run:
            attributes["dynamodm.dry_run"] = True
        capacity = _capacity_entries(event.consumed_capacity)
        if capacity:
            # Table and index names and unit counts only: what DynamoDB reports.
            attributes["aws.dynamodb.consumed_capacity"] = [
                json.dumps(dict(c), sort_keys=True) for c in capacity
            ]

        span = self._tracer.start_span(
            f"DynamoDB.{event.operation}",
            kind=SpanKind.CLIENT,
            start_time=end - int(event.latency * 1e9),
            attributes=attributes,
        )
        if failed:
            span.set_status(Status(StatusCode.ERROR, event.outcome))
        span.end(end_time=end)

        if event.dry_run:
            return
        self._duration.record(event.latency, attributes=common)
        if event.retries:
            self._retries.add(event.retries, attributes=common)
        units = sum(float(c.get("CapacityUnits", 0)) for c in capacity)
        if units:
            self._capacity.add(units, attributes=common)


def _capacity_entries(consumed: Any) -> list[Mapping[str, Any]]:
    """ConsumedCapacity is one entry for single-item calls, a list for batches."""
    if isinstance(consumed, Mapping):
        return [consumed]
    if isinstance(consumed, list):
        return [c for c in consumed if isinstance(c, Mapping)]
    return []


# ---------------------------------------------------------------- the demo

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
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    listener = OpenTelemetryListener(tracer_provider, meter_provider)
    tracer = tracer_provider.get_tracer("otel-demo")

    prefix = f"otel-{dm.new_id()[:8]}-"
    async with dm.connect(
        endpoint_url=endpoint_url, table_prefix=prefix, consumed_capacity="TOTAL"
    ) as db:
        db.add_listener(listener)
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
            async with dm.dry_run():
                await Note(owner="ada", text=SECRET).save()
        finally:
            await db.delete_tables(Note)

    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    for name in ("DynamoDB.CreateTable", "DynamoDB.PutItem", "DynamoDB.GetItem"):
        check(name in by_name, f"no {name} span among {sorted(by_name)}")

    put = by_name["DynamoDB.PutItem"][0]
    parent_context = parent.get_span_context()
    check(
        put.parent is not None and put.parent.span_id == parent_context.span_id,
        "the PutItem span should be a child of the span current when it was sent",
    )
    check(put.kind == SpanKind.CLIENT, f"PutItem span kind {put.kind}")
    attributes = dict(put.attributes or {})
    check(
        attributes.get("db.collection.name") == f"{prefix}notes"
        and attributes.get("rpc.method") == "PutItem"
        and attributes.get("dynamodm.outcome") == "ok",
        f"PutItem span attributes {attributes}",
    )
    check(
        put.end_time is not None and put.start_time is not None and put.end_time > put.start_time,
        "a span lasts as long as its request",
    )
    print(f"  {len(spans)} spans: {', '.join(sorted(by_name))}")
    print(f"  PutItem span: {attributes}")

    failed = [s for s in by_name["DynamoDB.GetItem"] if not s.status.is_ok]
    check(len(failed) == 1, "the GetItem on a missing table should be the one failed span")
    check(
        dict(failed[0].attributes or {}).get("error.type") == "ResourceNotFoundException",
        f"failed span attributes {failed[0].attributes}",
    )
    print(f"  failed span: {failed[0].name} {failed[0].status.description}")

    dry = [s for s in by_name["DynamoDB.PutItem"] if (s.attributes or {}).get("dynamodm.dry_run")]
    check(len(dry) == 1, "the dry run's PutItem should be a span marked dynamodm.dry_run")

    data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    check("db.client.operation.duration" in points, f"no duration metric among {sorted(points)}")
    operations = {
        p.attributes.get("db.operation.name") for p in points["db.client.operation.duration"]
    }
    check({"PutItem", "GetItem"} <= operations, f"durations recorded for {operations}")
    print(f"  metrics: {', '.join(sorted(points))}")

    telemetry = repr([(s.name, s.attributes, s.events) for s in spans]) + repr(points)
    check(SECRET not in telemetry, "an item value reached the telemetry")
    print("  no item value in any span or metric")


async def main() -> None:
    print("dynamodm OpenTelemetry listener")
    if not OTEL_INSTALLED:
        print(
            "  OpenTelemetry is not installed; nothing to show. Install it with\n"
            "  pip install 'dynamodm[otel]'   (opentelemetry-api and opentelemetry-sdk)"
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
