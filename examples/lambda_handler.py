"""AWS Lambda handlers with dynamodm, run locally as Lambda would run them.

Two functions, as you would deploy them (``handler = "lambda_handler.get_order"``):

- ``get_order``: an API Gateway handler. ``@dm.lambda_handler`` makes the ``async def``
  the sync function Lambda calls; its first invocation opens one session, and every
  later invocation of the same container reuses it and its warm connections.
- ``invoice_new_orders``: a DynamoDB Streams handler. ``@dm.stream_handler`` parses each
  record into a typed change and, if one fails, answers with Lambda's partial batch
  response so that Lambda retries from that record on.

Run it with ``python examples/lambda_handler.py``: it starts the embedded server
(unless ``DYNAMODB_ENDPOINT_URL`` names one), sets the environment a Lambda function
would have, calls the handlers as Lambda's runtime does (plain sync calls), and checks
that the second invocation opened no new connection. Everything here is sync, as in a
Lambda function: no ``asyncio.run`` anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from typing import Annotated, Any

from pydantic import Field

import dynamodm as dm
from dynamodm.local import LocalServer

# -- the function's module: what runs once per container, at cold start


class Order(dm.Model):
    class Meta:
        table = "orders"
        stream = "NEW_IMAGE"

    id: Annotated[str, dm.HashKey]
    customer: str
    total: int = Field(ge=0)  # cents


class Invoice(dm.Model):
    class Meta:
        table = "invoices"

    order_id: Annotated[str, dm.HashKey]
    amount: int


# No keywords: the endpoint, region and table prefix come from the environment
# (DYNAMODB_ENDPOINT_URL, AWS_REGION, DYNAMODB_TABLE_PREFIX), read at the first
# invocation. Decorating opens nothing: the cold start stays short.
@dm.lambda_handler
async def get_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    order = await Order.get_or_none(event["pathParameters"]["id"])
    if order is None:
        return {"statusCode": 404, "body": json.dumps({"message": "no such order"})}
    return {"statusCode": 200, "body": order.model_dump_json()}


@dm.stream_handler(Order)
async def invoice_new_orders(change: dm.StreamChange) -> None:
    if change.operation == "INSERT" and isinstance(change.new, Order):
        # Lambda may deliver a record again: a second create of the invoice is refused.
        with contextlib.suppress(dm.AlreadyExists):
            await Invoice.create(order_id=change.new.id, amount=change.new.total)


# -- the demo: Lambda's part, played locally


def check(ok: bool, wrong: str) -> None:
    if not ok:
        raise SystemExit(f"lambda_handler example FAILED: {wrong}")


def step(name: str, text: str) -> None:
    print(f"  {name:<14} {text}")


def stream_record(table: str, sequence: str, order: dict[str, Any]) -> dict[str, Any]:
    """An INSERT record as Lambda hands it to a DynamoDB Streams function."""
    image = {
        "id": {"S": order["id"]},
        "customer": {"S": order["customer"]},
        "total": {"N": str(order["total"])},
    }
    return {
        "eventID": f"event-{sequence}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"id": image["id"]},
            "NewImage": image,
            "SequenceNumber": sequence,
            "SizeBytes": 64,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": (
            f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2025-12-01T00:00:00.000"
        ),
    }


def demo(endpoint_url: str) -> None:
    prefix = f"lambda-{dm.new_id()[:8]}-"
    front = dm.run(FrontEnd(endpoint_url).start())
    # The environment Lambda would give the function (set in its configuration).
    os.environ["DYNAMODB_ENDPOINT_URL"] = front.endpoint_url
    os.environ["DYNAMODB_TABLE_PREFIX"] = prefix
    os.environ.setdefault("AWS_REGION", "us-east-1")
    step("front end", f"{front.endpoint_url} -> {endpoint_url}, counting client connections")

    async def tables(create: bool) -> None:
        async with dm.connect(endpoint_url=endpoint_url) as db:  # not through the front end
            if create:
                await db.create_tables(Order, Invoice)
                await Order.create(id="o-1", customer="ada", total=1250)
            else:
                await db.delete_tables(Order, Invoice)

    dm.run(tables(create=True))
    step("tables", f"{prefix}orders, {prefix}invoices; order o-1 stored")
    try:
        # -- two invocations of the API handler in one container
        first = get_order({"pathParameters": {"id": "o-1"}}, None)
        check(first["statusCode"] == 200, f"first invocation answered {first}")
        check(json.loads(first["body"])["total"] == 1250, f"wrong body {first['body']}")
        session, connections = get_order.session, front.connections
        step("invocation 1", f"200 {first['body']}; {connections} connection(s) opened")
        second = get_order({"pathParameters": {"id": "nope"}}, None)
        check(second["statusCode"] == 404, f"second invocation answered {second}")
        check(get_order.session is session, "the second invocation opened another session")
        check(
            front.connections == connections == 1,
            f"the second invocation opened a connection: {front.connections} in all",
        )
        step("invocation 2", f"404, same session, still {front.connections} connection")

        # -- a stream batch with a record that does not validate in the middle
        table = f"{prefix}orders"
        batch = {
            "Records": [
                stream_record(table, "101", {"id": "o-2", "customer": "grace", "total": 800}),
                stream_record(table, "102", {"id": "o-3", "customer": "alan", "total": -5}),
                stream_record(table, "103", {"id": "o-4", "customer": "edsger", "total": 90}),
            ]
        }
        answer = invoice_new_orders(batch, None)
        check(
            answer == {"batchItemFailures": [{"itemIdentifier": "102"}]},
            f"the stream handler answered {answer}",
        )
        step("stream batch", f"{answer}: Lambda retries from record 102")
        invoiced = dm.run(Invoice.scan().all())
        check([i.order_id for i in invoiced] == ["o-2"], f"invoices: {invoiced}")
        step("invoices", "o-2 only: o-4 waits behind the failed record, in order")
    finally:
        dm.run(tables(create=False))
        dm.run(front.stop())


# -- a stand-in for DynamoDB's front end


class FrontEnd:
    """An HTTP relay on 127.0.0.1 that keeps client connections alive, as DynamoDB's
    endpoint does, and counts the connections clients open. (The embedded server
    closes its connection after every response, so counting there would say nothing
    about the client's pool.) It runs on dm.run's loop, next to the handlers."""

    def __init__(self, upstream: str) -> None:
        found = re.fullmatch(r"http://([\d.]+):(\d+)/?", upstream)
        if found is None:
            raise ValueError(f"the front end relays to http://<loopback ip>:<port>, not {upstream}")
        self.upstream = (found[1], int(found[2]))
        self.connections = 0
        self.endpoint_url = ""
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> FrontEnd:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.endpoint_url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for client in self._clients:
                client.close()  # each relay ends as its client's connection does
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._clients.add(writer)
        try:
            for _ in range(10_000):  # requests on one kept-alive connection
                request = await _message(reader)
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
                try:
                    upstream_writer.write(request)
                    answer = await _message(upstream_reader)
                finally:
                    upstream_writer.close()
                writer.write(re.sub(rb"(?im)^connection: *close\r\n", b"", answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its connection
        finally:
            self._clients.discard(writer)
            writer.close()


async def _message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP message (head and Content-Length body), within 30 seconds."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    body = await asyncio.wait_for(reader.readexactly(int(length[1]) if length else 0), 30)
    return head + body


def main() -> None:
    # Lambda sends what a function logs to CloudWatch; here, to stdout with the rest.
    logging.basicConfig(stream=sys.stdout, format="  %(name)-14s %(levelname)s: %(message)s")
    print("dynamodm Lambda handlers")
    endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if endpoint_url:
        step("server", f"{endpoint_url} (from DYNAMODB_ENDPOINT_URL)")
        demo(endpoint_url)
    else:
        with LocalServer() as server:
            step("server", f"embedded moto at {server.endpoint_url}")
            demo(server.endpoint_url)
    print("all checks passed")


if __name__ == "__main__":
    main()
