"""The pytest plugin users get with dynamodm: an endpoint and a fresh session per test."""

from __future__ import annotations

import pytest
from servers import ServerHandle

APP_MODELS = """
from typing import Annotated
from pydantic import Field
import dynamodm as dm

class Note(dm.Model):
    class Meta:
        table = "notes"
    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    text: str
"""

APP_TESTS = """
import dynamodm as dm
from app_models import Note

async def test_first(dynamodm_session: dm.Session) -> None:
    await Note.create(text="one")
    assert await Note.scan().count() == 1

async def test_second_starts_empty(dynamodm_session: dm.Session) -> None:
    assert await Note.scan().count() == 0
    assert dynamodm_session.table_name(Note).endswith("notes")

def test_endpoint(dynamodm_endpoint: str) -> None:
    assert dynamodm_endpoint.startswith("http://127.0.0.1:")
"""


def test_the_plugin_gives_every_test_its_own_tables(
    pytester: pytest.Pytester, server: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", server.endpoint_url)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(app_models=APP_MODELS, test_app=APP_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_without_an_endpoint_the_plugin_starts_the_embedded_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(app_models=APP_MODELS, test_app=APP_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
