"""The embedded DynamoDB-compatible server: moto in server mode, on a loopback port.

For development and tests only. moto keeps its tables in this process's memory,
shared by every server started in the process, and gone when it exits.

moto's request handlers are not thread-safe, and its threaded server runs them side by
side: concurrent UpdateItems lose increments and version bumps, and a cancelled
transaction restores tables it copied, erasing writes made meanwhile. DynamoDB applies
each request atomically, and so does this server: connections are served on threads,
but moto handles one request at a time, for every server in the process, since they
share moto's state.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from werkzeug.serving import BaseWSGIServer

__all__ = ["LocalServer", "start_local_server"]

_MOTO_MISSING = "the embedded server needs moto: pip install 'dynamodm[local]'"
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_POLL_INTERVAL = 0.05
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})
# moto picks the service from the credential scope; it checks no signature.
_PROBE_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/"
    "aws4_request, SignedHeaders=host, Signature=0",
}

# One lock for the process: every embedded server shares moto's backends.
_MOTO_LOCK = threading.Lock()


class _OneRequestAtATime:
    """A WSGI app that lets `app` handle one request at a time.

    The request body is read before taking the lock and the response is sent after
    releasing it, so a slow or stalled client never holds up the others."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        environ["wsgi.input"] = io.BytesIO(_read_body(environ))
        with _MOTO_LOCK:
            response = self._app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                _close(response)


def _read_body(environ: WSGIEnvironment) -> bytes:
    """The whole request body: Content-Length bytes, or up to the end of a chunked body."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        body: bytes = stream.read()
        return body
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    return stream.read(length) if length > 0 else b""


def _close(response: Iterable[bytes]) -> None:
    close = getattr(response, "close", None)
    if close is not None:
        close()


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host:port` (port 0: a free one), or a clear OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno, f"the embedded server cannot listen on {host}:{port}: {exc.strerror}"
        ) from exc
    return sock


def _answers_dynamodb(url: str, timeout: float) -> bool:
    """Whether something at `url` answers a DynamoDB ListTables (any status), bypassing
    proxies.

    Asked while starting, it also loads moto's DynamoDB backend now, not at the first
    request of a caller that may have replaced sys.modules meanwhile (pytest's pytester
    restores it after each test, which left moto with two copies of its item classes)."""
    request = urllib.request.Request(url, data=b"{}", headers=_PROBE_HEADERS, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class LocalServer:
    """moto's DynamoDB on `host:port` (a free loopback port by default), applying each
    request atomically, as DynamoDB does."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        if host in _WILDCARD_HOSTS:
            raise ValueError(
                f"refusing to bind the embedded server to {host!r}: give a loopback "
                "address such as 127.0.0.1"
            )
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The address the server binds."""
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("the local server is not started: call start() first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """The URL to pass as `endpoint_url`, e.g. http://127.0.0.1:8000."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether start() has run and stop() has not."""
        return self._server is not None

    def start(self) -> LocalServer:
        """Start the server and wait (up to 10 s) until it answers HTTP."""
        if self._server is not None:
            return self
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server
        except ImportError as exc:
            raise ImportError(_MOTO_MISSING) from exc

        # werkzeug logs every request to stderr by default; keep the embedded server quiet.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        # Bind here rather than in werkzeug, which exits the process when it cannot.
        with _listen(self._host, self._requested_port or 0) as listening:
            port: int = listening.getsockname()[1]
            # A thread per connection. werkzeug closes every connection after its
            # response (its socket handling cannot keep one alive), as moto's servers do.
            server = make_server(
                self._host,
                port,
                app,
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=listening.fileno(),
            )
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"dynamodm-local-{port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread, self._port = server, thread, port
        deadline = time.monotonic() + _READY_TIMEOUT
        while not _answers_dynamodb(self.endpoint_url + "/", timeout=1.0):
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(
                    f"the embedded server on {self._host}:{port} did not answer HTTP "
                    f"within {_READY_TIMEOUT:g} s"
                )
            time.sleep(_POLL_INTERVAL)
        return self

    def stop(self) -> None:
        """Stop the server and free its port; does nothing if it is not running."""
        server, thread = self._server, self._thread
        self._server, self._thread, self._port = None, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(_STOP_TIMEOUT)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        where = self.endpoint_url if self._port is not None else "not started"
        return f"<LocalServer {where}>"


def start_local_server(host: str = "127.0.0.1", port: int | None = None) -> LocalServer:
    """Start the embedded server and return it; call stop() when done."""
    return LocalServer(host, port).start()
