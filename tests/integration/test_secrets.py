"""Credentials, session tokens and item values never reach dynamodm's logs, error messages,
exception reprs or request events (botocore's own DEBUG logs are outside this promise)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

import aioboto3
import pytest
from servers import ServerHandle

import dynamodm as dm

REG = dm.Registry("secret-tests")
ACCESS_KEY = "AKIAPROBEACCESSKEY01"
SECRET_KEY = "probe-secret-key-0123456789"
TOKEN = "probe-session-token-abcdef"
VALUE = "probe-item-value-\u00e9\u2603"


class Vault(dm.Model):
    class Meta:
        table = "vault"
        registry = REG
        indexes = (dm.GlobalIndex("ByOwner", hash_key="owner"),)

    id: Annotated[str, dm.HashKey]
    owner: str = "o"
    secret: str = ""
    count: int = 0
    version: Annotated[int, dm.Version] = 0


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.parametrize("transport", ["http", "botocore"])
async def test_nothing_secret_in_logs_errors_or_events(
    server: ServerHandle, transport: str
) -> None:
    capture = Capture()
    capture.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    library = logging.getLogger("dynamodm")
    library.addHandler(capture)
    level = library.level
    library.setLevel(logging.DEBUG)
    texts: list[str] = []
    events: list[dm.RequestEvent] = []
    boto = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=TOKEN,
        region_name="us-east-1",
    )
    try:
        async with dm.connect(
            endpoint_url=server.endpoint_url,
            boto_session=boto,
            table_prefix="sec-",
            transport=transport,  # type: ignore[arg-type]
        ) as db:
            db.add_listener(events.append)
            await db.create_tables(Vault)
            vault = await Vault.create(id=VALUE, secret=VALUE, owner=VALUE)
            failures: list[BaseException] = []
            attempts: list[Callable[[], Awaitable[object]]] = [
                lambda: Vault.create(id=VALUE, secret=VALUE),  # AlreadyExists
                lambda: vault.update(condition=Vault.secret == "other", count=1),  # failed
                lambda: Vault.get(VALUE + "-missing"),  # NotFound
                lambda: Vault.query(VALUE, Vault.secret == VALUE).all(),  # UsageError
            ]
            for attempt in attempts:
                try:
                    await attempt()
                except dm.DynamoDMError as error:
                    failures.append(error)
            stale = await Vault.get(VALUE)
            await vault.update(count=2)
            try:
                await stale.save()
            except dm.VersionConflict as error:
                failures.append(error)
            assert len(failures) >= 4
            texts.extend(str(f) for f in failures)
            texts.extend(repr(f) for f in failures)
            await db.delete_tables(Vault)
    finally:
        library.removeHandler(capture)
        library.setLevel(level)
    texts.extend(capture.lines)
    texts.extend(repr(e) for e in events)
    assert capture.lines, "the request log at DEBUG was empty"
    assert events
    for text in texts:
        for probe in (ACCESS_KEY, SECRET_KEY, TOKEN, VALUE, "probe-item-value"):
            assert probe not in text, f"{probe!r} leaked into: {text[:200]}"
