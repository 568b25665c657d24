"""``import dynamodm`` loads no AWS SDK, CLI or server library; a session on the fast
transport with an access key in the environment never loads botocore; a profile loads
botocore's credential chain and works as before. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
HEAVY = ("boto3", "botocore", "aioboto3", "aiobotocore", "moto", "typer", "rich")

# Runs in the child: a stand-in service (tests/standin.py, signatures verified) in
# eu-west-1, a session opened as an application opens it, a model round trip, and
# db.client. Prints what it saw as JSON.
SESSION_SCRIPT = """
import asyncio, json, sys
from typing import Annotated
sys.path.insert(0, {tests!r})
import dynamodm as dm
from standin import StandIn

HEAVY = {heavy!r}

class Note(dm.Model):
    class Meta:
        table = "notes"
    id: Annotated[str, dm.HashKey]
    text: str = ""

async def main():
    seen = {{}}
    async with StandIn(region="eu-west-1") as service:
        service.add_key("AKIDPROFILEEXAMPLE", "profile/secret")
        async with dm.connect(endpoint_url=service.endpoint_url, table_prefix="lean-") as db:
            seen["after_open"] = [m for m in HEAVY if m in sys.modules]
            await db.create_tables(Note)
            await Note.create(id="n-1", text="hello")
            seen["text"] = (await Note.get("n-1", consistent=True)).text
            seen["region"] = db.client.meta.region_name
            seen["after_model_calls"] = [m for m in HEAVY if m in sys.modules]
            raw = await db.client.get_item(
                TableName=db.table_name(Note), Key={{"id": {{"S": "n-1"}}}}
            )
            seen["raw"] = raw["Item"]["text"]["S"]
            seen["after_client"] = [m for m in HEAVY if m in sys.modules]
        seen["statuses"] = sorted({{r.status for r in service.requests}})
        seen["credentials"] = sorted(
            {{r.header("Authorization").split("Credential=")[1].split("/")[0]
             for r in service.requests}}
        )
        seen["scopes"] = sorted(
            {{r.header("Authorization").split("Credential=")[1].split("/")[2]
             for r in service.requests}}
        )
    print(json.dumps(seen))

asyncio.run(main())
"""


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """The parent's environment without AWS settings, with config files that do not exist."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    env.pop("DYNAMODB_ENDPOINT", None)
    env.pop("DYNAMODB_TABLE_PREFIX", None)
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def run_python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_dynamodm_loads_no_heavy_library(tmp_path: Path) -> None:
    out = run_python(
        f"import sys, json, dynamodm; print(json.dumps([m for m in {HEAVY!r} "
        "if m in sys.modules]))",
        clean_environment(tmp_path),
    )
    assert json.loads(out) == []


def test_the_public_names_load_no_heavy_library(tmp_path: Path) -> None:
    """Touching every public name (as ``from dynamodm import *`` does) loads nothing more."""
    out = run_python(
        "import sys, json, dynamodm\n"
        "from dynamodm import *\n"
        "names = [getattr(dynamodm, name) for name in dynamodm.__all__]\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))",
        clean_environment(tmp_path),
    )
    assert json.loads(out) == []


def session_script() -> str:
    return textwrap.dedent(SESSION_SCRIPT).format(tests=str(TESTS), heavy=HEAVY)


def test_environment_credentials_never_load_botocore(tmp_path: Path) -> None:
    from standin import ACCESS_KEY, SECRET_KEY

    env = clean_environment(tmp_path)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION="eu-west-1",
    )
    seen = json.loads(run_python(session_script(), env))
    assert seen["after_open"] == []
    assert seen["after_model_calls"] == []  # nor does db.client.meta before a call
    assert seen["text"] == "hello"
    assert seen["region"] == "eu-west-1"
    # db.client is created on its first call, on the same key and region
    assert seen["raw"] == "hello"
    assert "botocore" in seen["after_client"]
    assert seen["statuses"] == [200]  # every signature verified by the stand-in
    assert seen["credentials"] == [ACCESS_KEY]
    assert seen["scopes"] == ["eu-west-1"]


@pytest.mark.parametrize("with_env_key", [False, True])
def test_a_profile_loads_the_credential_chain_and_works(tmp_path: Path, with_env_key: bool) -> None:
    """AWS_PROFILE names a profile with its own key and region. Without a key in the
    environment, botocore's chain is loaded and signs with the profile's key; with one,
    the environment's key wins, as in botocore (whose chain tries it first)."""
    from standin import ACCESS_KEY, SECRET_KEY

    env = clean_environment(tmp_path)
    (tmp_path / "no-config").write_text("[profile dev]\nregion = eu-west-1\n")
    (tmp_path / "no-credentials").write_text(
        "[dev]\naws_access_key_id = AKIDPROFILEEXAMPLE\naws_secret_access_key = profile/secret\n"
    )
    env["AWS_PROFILE"] = "dev"
    if with_env_key:
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    seen = json.loads(run_python(session_script(), env))
    assert seen["text"] == "hello" and seen["raw"] == "hello"
    assert seen["statuses"] == [200]
    assert seen["scopes"] == ["eu-west-1"]  # the profile's region
    if with_env_key:
        assert seen["after_model_calls"] == []
        assert seen["credentials"] == [ACCESS_KEY]
    else:
        assert "botocore" in seen["after_open"]
        assert seen["credentials"] == ["AKIDPROFILEEXAMPLE"]


async def test_db_client_is_created_on_first_need_and_closed_with_the_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from standin import ACCESS_KEY, SECRET_KEY, StandIn

    import dynamodm as dm

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in clean_environment(tmp_path).items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    async with StandIn() as service:
        async with dm.connect(endpoint_url=service.endpoint_url, region="us-east-1") as db:
            lazy = db.client
            assert lazy.meta.endpoint_url == service.endpoint_url
            with pytest.raises(dm.UsageError, match=r"await db\.client"):
                lazy.get_paginator("list_tables")
            assert service.requests == []  # nothing created, nothing sent
            client = await lazy
            assert client is await db.client
            assert client.meta.region_name == "us-east-1"
            pages = [page async for page in lazy.get_paginator("list_tables").paginate()]
            assert pages == [pages[0]] and pages[0]["TableNames"] == []
        with pytest.raises(dm.ConfigurationError, match="closed"):
            await lazy.list_tables()
    assert [request.status for request in service.requests] == [200]
