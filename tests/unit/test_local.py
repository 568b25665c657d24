"""dynamodm.local: the embedded moto server (loopback only)."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from dynamodm.local import LocalServer, start_local_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _can_bind(host: str, port: int) -> bool:
    """Whether a server could listen there now (connections left in TIME_WAIT by the
    stopped server do not count, as for any server that sets SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def test_binds_loopback_on_the_chosen_port_and_stop_frees_it() -> None:
    port = _free_port()
    server = LocalServer(port=port).start()
    try:
        assert server.running
        assert server.port == port
        assert server.endpoint_url == f"http://127.0.0.1:{port}"
        assert _accepts(port)
        assert not _can_bind("127.0.0.1", port)
        if sys.platform == "linux":  # all of 127/8 is loopback: a wildcard bind would clash
            assert _can_bind("127.0.0.2", port)
    finally:
        server.stop()
    assert not server.running
    assert _can_bind("127.0.0.1", port)
    server.stop()  # stopping twice is harmless


def test_picks_a_free_port_when_none_is_given() -> None:
    with start_local_server() as server:
        port = server.port
        assert server.endpoint_url == f"http://127.0.0.1:{port}"
        assert _accepts(port)
    assert _can_bind("127.0.0.1", port)


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = LocalServer(port=port)
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1"):
            server.start()
        assert not server.running


async def test_async_context_manager() -> None:
    async with LocalServer() as server:
        port = server.port
        assert _accepts(port)
    assert _can_bind("127.0.0.1", port)


def test_endpoint_url_needs_a_started_server() -> None:
    server = LocalServer()
    assert "not started" in repr(server)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.endpoint_url


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_refuses_wildcard_addresses(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalServer(host)


def test_missing_moto_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.moto_server.werkzeug_app", None)
    with pytest.raises(ImportError, match=r"pip install 'dynamodm\[local\]'"):
        LocalServer().start()


def test_a_client_stalled_mid_body_does_not_hold_up_others() -> None:
    with (
        LocalServer() as server,
        socket.create_connection(("127.0.0.1", server.port), 5) as stalled,
    ):
        # Headers promise 100 bytes; only 10 come. moto must not wait for them under its lock.
        stalled.sendall(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 100\r\n\r\n{}        "
        )
        started = time.monotonic()
        request = urllib.request.Request(
            server.endpoint_url + "/",
            data=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Authorization": "AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/dynamodb/"
                "aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            assert "TableNames" in json.loads(response.read())
        assert time.monotonic() - started < 5


def test_importing_dynamodm_and_its_pytest_plugin_does_not_load_moto() -> None:
    code = (
        "import sys, dynamodm, dynamodm.testing, dynamodm.local\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'werkzeug'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# Run in a fresh interpreter: the modules moto loads at its first DynamoDB request are
# dropped from sys.modules, as pytest's pytester does after a test, and moto must not be
# left with two copies of its classes (binary values then came back encoded twice).
SYS_MODULES_RESTORED = """
import json, sys, urllib.request
from dynamodm.local import LocalServer

HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0",
}

def call(url, operation, body):
    headers = {**HEADERS, "X-Amz-Target": "DynamoDB_20120810." + operation}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())

def round_trip(url, table):
    call(url, "CreateTable", {
        "TableName": table,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    })
    call(url, "PutItem", {"TableName": table, "Item": {"id": {"S": "1"}, "b": {"B": "AP8="}}})
    return call(url, "GetItem", {"TableName": table, "Key": {"id": {"S": "1"}}})["Item"]["b"]

with LocalServer() as server:
    before = set(sys.modules)
    first = round_trip(server.endpoint_url, "first")
    for name in set(sys.modules) - before:
        del sys.modules[name]
    second = round_trip(server.endpoint_url, "second")
    print(json.dumps([first, second]))
"""


def test_binary_values_survive_sys_modules_being_restored_after_the_first_request() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SYS_MODULES_RESTORED],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == [{"B": "AP8="}, {"B": "AP8="}]
