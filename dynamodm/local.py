"""The embedded DynamoDB-compatible server: moto in server mode, on a loopback port.

For development and tests only. moto keeps its tables in this process's memory,
shared by every server started in the process, and gone when it exits.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

__all__ = ["LocalServer", "start_local_server"]

_MOTO_MISSING = "the embedded server needs moto: pip install 'dynamodm[local]'"
_READY_TIMEOUT = 10.0
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})


def _free_port(host: str) -> int:
    """A port on `host` that nothing listens on right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _check_bindable(host: str, port: int) -> None:
    """Raise a clear OSError now if `host:port` cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(
                exc.errno, f"the embedded server cannot listen on {host}:{port}: {exc.strerror}"
            ) from exc


def _answers_http(url: str, timeout: float) -> bool:
    """Whether something at `url` answers HTTP at all (any status), bypassing proxies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class LocalServer:
    """moto's DynamoDB on `host:port` (a free loopback port by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        if host in _WILDCARD_HOSTS:
            raise ValueError(
                f"refusing to bind the embedded server to {host!r}: give a loopback "
                "address such as 127.0.0.1"
            )
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: ThreadedMotoServer | None = None

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
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ImportError(_MOTO_MISSING) from exc

        port = self._requested_port
        if port is None:
            port = _free_port(self._host)
        else:
            _check_bindable(self._host, port)
        # werkzeug logs every request to stderr by default; keep the embedded server quiet.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self._host, port=port, verbose=False)
        deadline = time.monotonic() + _READY_TIMEOUT
        # ThreadedMotoServer.start() waits forever if its thread cannot bind:
        # call it from a helper thread so the wait is bounded.
        starter = threading.Thread(target=server.start, name="dynamodm-local-start", daemon=True)
        starter.start()
        starter.join(_READY_TIMEOUT)
        if starter.is_alive():
            raise RuntimeError(
                f"the embedded server could not listen on {self._host}:{port} "
                f"within {_READY_TIMEOUT:g} s (is the port in use?)"
            )
        self._server, self._port = server, port
        while not _answers_http(self.endpoint_url + "/", timeout=1.0):
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(
                    f"the embedded server on {self._host}:{port} did not answer HTTP "
                    f"within {_READY_TIMEOUT:g} s"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server and free its port; does nothing if it is not running."""
        server, self._server, self._port = self._server, None, None
        if server is not None:
            server.stop()

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
