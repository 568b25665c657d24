"""``dynamodm tables emit`` and ``dynamodm tables check --template``, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

import dynamodm as dm
from dynamodm.cli import app

REGISTRY = "cli_models:registry"


def cli(*args: object, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.mark.parametrize("fmt", ["cloudformation", "sam", "terraform", "cdk"])
def test_emit_writes_the_table_definitions(fmt: str) -> None:
    import cli_models

    result = cli("tables", "emit", REGISTRY, "--format", fmt, "--prefix", "prod-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == dm.table_definitions(
        cli_models.registry,
        format=fmt,  # type: ignore[arg-type]
        table_prefix="prod-",
    )


def test_emit_to_a_file_and_the_prefix_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tables.json"
    result = cli(
        "tables", "emit", REGISTRY, "--output", path, env={"DYNAMODB_TABLE_PREFIX": "env-"}
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    template = json.loads(path.read_text())
    names = {r["Properties"]["TableName"] for r in template["Resources"].values()}
    assert names == {"env-records", "env-ledgers", "env-members", "env-dynamodm-unique"}


def test_emit_refuses_an_unknown_format() -> None:
    result = cli("tables", "emit", REGISTRY, "--format", "pulumi")
    assert result.exit_code == 2
    assert "pulumi" in result.output


def test_check_accepts_the_emitted_template(tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    assert cli("tables", "emit", REGISTRY, "--prefix", "p-", "--output", path).exit_code == 0
    result = cli("tables", "check", REGISTRY, "--prefix", "p-", "--template", path)
    assert result.exit_code == 0, result.output
    assert "the template matches" in result.stdout


def test_check_lists_every_difference_and_exits_1(tmp_path: Path) -> None:
    template = json.loads(cli("tables", "emit", REGISTRY, "--format", "sam").stdout)
    resources = template["Resources"]
    records = next(r for r in resources.values() if r["Properties"]["TableName"] == "records")
    records["Properties"]["BillingMode"] = "PROVISIONED"
    records["Properties"]["ProvisionedThroughput"] = {
        "ReadCapacityUnits": 1,
        "WriteCapacityUnits": 1,
    }
    del records["Properties"]["GlobalSecondaryIndexes"]
    ledgers = next(k for k, r in resources.items() if r["Properties"]["TableName"] == "ledgers")
    del resources[ledgers]
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    result = cli("tables", "check", REGISTRY, "--template", path)
    assert result.exit_code == 1
    assert "table 'records' (Record): billing: the template has" in result.stdout
    assert "table 'records' (Record): GSI 'ByOwner'" in result.stdout
    assert "table 'ledgers' (Ledger): is not in the template" in result.stdout
    assert "error: 3 differences between the template and the models" in result.stderr


def test_check_reads_yaml_with_short_form_tags(tmp_path: Path) -> None:
    template = json.loads(cli("tables", "emit", REGISTRY).stdout)
    text = yaml.safe_dump(template, sort_keys=False)
    text += "Parameters:\n  Stage: !Sub '${AWS::StackName}-stage'\n"
    path = tmp_path / "template.yaml"
    path.write_text(text)
    result = cli("tables", "check", REGISTRY, "--template", path)
    assert result.exit_code == 0, result.output


def test_check_explains_a_file_that_is_not_a_template(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("- just\n- a list\n")
    result = cli("tables", "check", REGISTRY, "--template", path)
    assert result.exit_code == 1
    assert "is not a template" in result.stderr
    missing = cli("tables", "check", REGISTRY, "--template", tmp_path / "absent.json")
    assert missing.exit_code != 0
