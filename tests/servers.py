"""Start and stop the DynamoDB-compatible servers the tests run against."""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dynamodm.local import LocalServer

REPO = Path(__file__).resolve().parent.parent
DYNALITE_VERSION = "4.0.0"
DYNALITE_DIR = REPO / ".dynalite" / "node_modules" / "dynalite"
READY_TIMEOUT = 10.0
HOST = "127.0.0.1"


class ServerHandle:
    """A running server: its name, its endpoint URL, and how to stop it."""

    def __init__(self, name: str, endpoint_url: str, stop: Callable[[], None]) -> None:
        self.name = name
        self.endpoint_url = endpoint_url
        self._stop: Callable[[], None] | None = stop

    def stop(self) -> None:
        """Stop the server; later calls do nothing."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __repr__(self) -> str:
        return f"<ServerHandle {self.name} {self.endpoint_url}>"


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def answers_http(url: str, timeout: float = 1.0) -> bool:
    """Whether `url` answers HTTP at all (any status), bypassing proxies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s; reaps the process."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_moto() -> ServerHandle:
    """moto in server mode, in this process (dynamodm.local), which applies each request
    atomically, as DynamoDB does (moto's own threaded server does not)."""
    server = LocalServer(HOST).start()
    return ServerHandle("moto", server.endpoint_url, server.stop)


def start_dynalite() -> ServerHandle:
    """dynalite (Node.js, in memory) in a child process on a free loopback port."""
    cli = DYNALITE_DIR / "cli.js"
    if not cli.is_file():
        raise RuntimeError(
            f"dynalite is not installed (no {DYNALITE_DIR}): run "
            f"`npm install --prefix .dynalite --no-audit --no-fund dynalite@{DYNALITE_VERSION}` "
            "in the repository root (scripts/test does it), or set DYNAMODM_TEST_SERVERS=moto"
        )
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("dynalite needs Node.js: `node` is not on PATH")

    port = free_port()
    url = f"http://{HOST}:{port}"
    # A file, not a pipe: a pipe nobody reads would block dynalite once full.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
    args = ["--host", HOST, "--port", str(port)]
    args += ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
    proc = subprocess.Popen(
        [node, str(cli), *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )

    def stop() -> None:
        atexit.unregister(stop)
        _terminate(proc)
        log.close()

    atexit.register(stop)  # in case the session ends without the fixture's teardown

    deadline = time.monotonic() + READY_TIMEOUT
    while not answers_http(url):
        if proc.poll() is not None or time.monotonic() >= deadline:
            exited = proc.poll()
            reason = (
                f"exited with code {exited}"
                if exited is not None
                else f"did not answer HTTP within {READY_TIMEOUT:g} s"
            )
            _terminate(proc)
            log.seek(0)
            output = log.read().decode(errors="replace").strip()
            stop()
            raise RuntimeError(
                f"dynalite on {HOST}:{port} {reason}; its output:\n{output or '(none)'}"
            )
        time.sleep(0.05)
    return ServerHandle("dynalite", url, stop)
