"""Each test server answers a signed-looking DynamoDB JSON request."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from servers import ServerHandle


def _call(server: ServerHandle, operation: str, body: dict[str, object]) -> tuple[int, object]:
    request = urllib.request.Request(
        server.endpoint_url + "/",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=x/20200101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=x"
            ),
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_list_tables(server: ServerHandle) -> None:
    assert server.endpoint_url.startswith("http://127.0.0.1:")
    status, payload = _call(server, "ListTables", {})
    assert status == 200
    assert isinstance(payload, dict)
    assert isinstance(payload["TableNames"], list)


@pytest.mark.moto_only(reason="checks that moto_only skips on dynalite")
def test_moto_only_marker_skips_other_servers(server: ServerHandle) -> None:
    assert server.name == "moto"
