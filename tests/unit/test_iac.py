"""Tables as code (dynamodm/iac.py): every format for the examples' registries and the test
models, CloudFormation and SAM through cfn-lint, Terraform and CDK names as documented,
and a template compared with the models."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field

import dynamodm as dm
from dynamodm.iac import check_template

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(REPO / "tests"))

import cli_models  # noqa: E402
import training_tracker  # noqa: E402
from study_circle.models import study_circle  # noqa: E402

FORMATS = ("cloudformation", "sam", "terraform", "cdk")
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"

EVERYTHING = dm.Registry("iac-everything")


class Post(dm.Model):
    """Every feature a table can have: LSI, GSIs with each projection, TTL, stream,
    unique fields, provisioned billing per index, and all options."""

    class Meta:
        table = "posts.v2"
        registry = EVERYTHING
        billing = dm.Provisioned(read=5, write=5)
        indexes = (
            dm.GlobalIndex("ByAuthor", hash_key="author", range_key="created_at"),
            dm.GlobalIndex(
                "BySlug",
                hash_key="slug",
                projection="KEYS_ONLY",
                billing=dm.Provisioned(read=2, write=1),
            ),
            dm.GlobalIndex("ByScore", hash_key="score", projection=("title", "author")),
            dm.LocalIndex("ByTitle", range_key="title", projection="KEYS_ONLY"),
        )
        unique = ("slug",)
        stream = "NEW_AND_OLD_IMAGES"
        table_class = "STANDARD_INFREQUENT_ACCESS"
        sse_kms_key = KMS_KEY
        tags = {"team": "blog", "env": "prod"}
        deletion_protection = True
        point_in_time_recovery = True

    blog: Annotated[str, dm.HashKey]
    id: Annotated[str, dm.RangeKey] = Field(default_factory=dm.new_id)
    author: str = ""
    slug: str = ""
    title: str = Field(default="", alias="Title")
    score: int = 0
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    expires_at: Annotated[datetime | None, dm.TTL] = Field(default=None, alias="expiresAt")


class Counter(dm.Model):
    class Meta:
        table = "2-counters"
        registry = EVERYTHING
        billing = dm.OnDemand(max_read=100, max_write=10)
        indexes = (dm.GlobalIndex("ByKind", hash_key="kind", billing=dm.OnDemand(max_read=5)),)

    name: Annotated[bytes, dm.HashKey]
    kind: str = ""


REGISTRIES = {
    "study_circle": study_circle,
    "training_tracker": training_tracker.tracker,
    "cli_models": cli_models.registry,
    "everything": EVERYTHING,
}


def _tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["TableName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::DynamoDB::Table"
    }


# ---------------------------------------------------------------- CloudFormation and SAM


def test_cloudformation_of_every_feature() -> None:
    template = dm.table_definitions(EVERYTHING, table_prefix="app-")
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert "Transform" not in template
    assert set(template["Resources"]) == {
        "AppPostsV2Table",
        "App2CountersTable",
        "AppDynamodmUniqueTable",
    }
    posts = template["Resources"]["AppPostsV2Table"]
    assert posts["DeletionPolicy"] == posts["UpdateReplacePolicy"] == "Retain"
    properties = posts["Properties"]
    assert properties["TableName"] == "app-posts.v2"
    assert properties["KeySchema"] == [
        {"AttributeName": "blog", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ]
    assert properties["BillingMode"] == "PROVISIONED"
    assert properties["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    gsis = {i["IndexName"]: i for i in properties["GlobalSecondaryIndexes"]}
    assert gsis["BySlug"]["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 2,
        "WriteCapacityUnits": 1,
    }
    assert gsis["ByScore"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["Title", "author"],
    }
    assert properties["LocalSecondaryIndexes"][0]["IndexName"] == "ByTitle"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": KMS_KEY,
    }
    assert properties["TableClass"] == "STANDARD_INFREQUENT_ACCESS"
    assert properties["Tags"] == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "blog"}]
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    counters = template["Resources"]["App2CountersTable"]["Properties"]
    assert counters["OnDemandThroughput"] == {
        "MaxReadRequestUnits": 100,
        "MaxWriteRequestUnits": 10,
    }
    assert counters["GlobalSecondaryIndexes"][0]["OnDemandThroughput"] == {"MaxReadRequestUnits": 5}
    assert counters["AttributeDefinitions"][0] == {"AttributeName": "name", "AttributeType": "B"}
    guard = template["Resources"]["AppDynamodmUniqueTable"]["Properties"]
    assert guard["TableName"] == "app-dynamodm-unique"
    # Post expires: its guards expire too, so the guard table has TTL.
    assert guard["TimeToLiveSpecification"] == {"AttributeName": "expires", "Enabled": True}


def test_sam_is_the_cloudformation_under_the_transform() -> None:
    sam = dm.table_definitions(study_circle, format="sam")
    cloudformation = dm.table_definitions(study_circle, format="cloudformation")
    assert sam.pop("Transform") == "AWS::Serverless-2016-10-31"
    assert sam == cloudformation


def test_study_circle_tables_and_guard_table() -> None:
    tables = _tables(dm.table_definitions(study_circle, table_prefix="ai-study-circle-"))
    assert sorted(tables) == [
        "ai-study-circle-content",
        "ai-study-circle-dynamodm-unique",
        "ai-study-circle-exams",
        "ai-study-circle-summaries",
        "ai-study-circle-templates",
        "ai-study-circle-users",
    ]
    templates = {
        i["IndexName"] for i in tables["ai-study-circle-templates"]["GlobalSecondaryIndexes"]
    }
    assert templates == {"CreatedByIndex", "TypeCategoryIndex", "PublicTemplatesIndex"}


def test_logical_ids_are_distinct_cloudformation_identifiers() -> None:
    shared = dm.Registry("iac-ids")

    class Dashes(dm.Model):
        class Meta:
            table = "a-b"
            registry = shared

        id: Annotated[str, dm.HashKey]

    class Dots(dm.Model):
        class Meta:
            table = "a.b"
            registry = shared

        id: Annotated[str, dm.HashKey]

    ids = list(dm.table_definitions(shared)["Resources"])
    assert ids == ["ABTable", "ABTable2"]
    terraform = dm.table_definitions(shared, format="terraform")
    assert list(terraform["resource"]["aws_dynamodb_table"]) == ["a_b", "a_b_2"]


def test_table_definitions_refuses_bad_arguments() -> None:
    with pytest.raises(dm.UsageError, match="format='yaml'"):
        dm.table_definitions(EVERYTHING, format="yaml")  # type: ignore[arg-type]
    with pytest.raises(dm.UsageError, match="no concrete models"):
        dm.table_definitions(dm.Registry("empty"))


@pytest.mark.parametrize("fmt", ["cloudformation", "sam"])
@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_cfn_lint_passes_without_error_or_warning(name: str, fmt: str, tmp_path: Path) -> None:
    template = dm.table_definitions(REGISTRIES[name], format=fmt, table_prefix="prod-")  # type: ignore[arg-type]
    path = tmp_path / f"{name}-{fmt}.json"
    path.write_text(json.dumps(template, indent=2))
    # cfn-lint is in the dev extra, next to this interpreter.
    linter = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or "cfn-lint"
    result = subprocess.run(
        [linter, "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------- Terraform


# The arguments of aws_dynamodb_table and its blocks, as the hashicorp/aws provider
# documents them (registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/
# dynamodb_table).
TF_TABLE = {
    "name",
    "billing_mode",
    "hash_key",
    "range_key",
    "read_capacity",
    "write_capacity",
    "attribute",
    "global_secondary_index",
    "local_secondary_index",
    "on_demand_throughput",
    "point_in_time_recovery",
    "server_side_encryption",
    "stream_enabled",
    "stream_view_type",
    "table_class",
    "tags",
    "ttl",
    "deletion_protection_enabled",
}
TF_BLOCKS = {
    "attribute": {"name", "type"},
    "global_secondary_index": {
        "name",
        "hash_key",
        "range_key",
        "projection_type",
        "non_key_attributes",
        "read_capacity",
        "write_capacity",
        "on_demand_throughput",
    },
    "local_secondary_index": {"name", "range_key", "projection_type", "non_key_attributes"},
    "ttl": {"attribute_name", "enabled"},
    "point_in_time_recovery": {"enabled"},
    "server_side_encryption": {"enabled", "kms_key_arn"},
    "on_demand_throughput": {"max_read_request_units", "max_write_request_units"},
}


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_terraform_uses_the_providers_argument_names(name: str) -> None:
    document = dm.table_definitions(REGISTRIES[name], format="terraform", table_prefix="prod-")
    assert document["terraform"]["required_providers"]["aws"]["source"] == "hashicorp/aws"
    tables = document["resource"]["aws_dynamodb_table"]
    assert tables
    for resource_name, table in tables.items():
        assert resource_name.replace("_", "a").isalnum() and not resource_name[0].isdigit()
        assert set(table) <= TF_TABLE, set(table) - TF_TABLE
        assert {"name", "hash_key", "attribute", "billing_mode"} <= set(table)
        for block, arguments in TF_BLOCKS.items():
            entries = table.get(block, [])
            for entry in entries if isinstance(entries, list) else [entries]:
                assert set(entry) <= arguments, (block, set(entry) - arguments)
                throughput = entry.get("on_demand_throughput", {})
                assert set(throughput) <= TF_BLOCKS["on_demand_throughput"]
        # Every key attribute has an attribute block, and only those.
        keyed = {table["hash_key"], table.get("range_key")} - {None}
        for index in table.get("global_secondary_index", []) + table.get(
            "local_secondary_index", []
        ):
            keyed |= {index.get("hash_key"), index.get("range_key")}
        keyed.discard(None)
        assert {a["name"] for a in table["attribute"]} == keyed


def test_terraform_of_every_feature() -> None:
    tables = dm.table_definitions(EVERYTHING, format="terraform")["resource"]["aws_dynamodb_table"]
    posts = tables["posts_v2"]
    assert posts["name"] == "posts.v2"
    assert (posts["billing_mode"], posts["read_capacity"], posts["write_capacity"]) == (
        "PROVISIONED",
        5,
        5,
    )
    assert (posts["hash_key"], posts["range_key"]) == ("blog", "id")
    assert posts["ttl"] == {"attribute_name": "expiresAt", "enabled": True}
    assert (posts["stream_enabled"], posts["stream_view_type"]) == (True, "NEW_AND_OLD_IMAGES")
    assert posts["point_in_time_recovery"] == {"enabled": True}
    assert posts["server_side_encryption"] == {"enabled": True, "kms_key_arn": KMS_KEY}
    assert posts["tags"] == {"env": "prod", "team": "blog"}
    assert posts["deletion_protection_enabled"] is True
    assert posts["table_class"] == "STANDARD_INFREQUENT_ACCESS"
    assert posts["local_secondary_index"] == [
        {"name": "ByTitle", "range_key": "Title", "projection_type": "KEYS_ONLY"}
    ]
    by_score = next(i for i in posts["global_secondary_index"] if i["name"] == "ByScore")
    assert by_score["non_key_attributes"] == ["Title", "author"]
    counters = tables["t_2_counters"]
    assert counters["on_demand_throughput"] == {
        "max_read_request_units": 100,
        "max_write_request_units": 10,
    }
    assert "dynamodm_unique" in tables


# ---------------------------------------------------------------- CDK


# TablePropsV2 and its index props, as the aws-cdk-lib aws_dynamodb reference names them.
CDK_TABLE = {
    "tableName",
    "partitionKey",
    "sortKey",
    "billing",
    "globalSecondaryIndexes",
    "localSecondaryIndexes",
    "timeToLiveAttribute",
    "dynamoStream",
    "tableClass",
    "encryption",
    "tags",
    "deletionProtection",
    "pointInTimeRecoverySpecification",
}
CDK_GSI = {
    "indexName",
    "partitionKey",
    "sortKey",
    "projectionType",
    "nonKeyAttributes",
    "readCapacity",
    "writeCapacity",
    "maxReadRequestUnits",
    "maxWriteRequestUnits",
}
CDK_LSI = {"indexName", "sortKey", "projectionType", "nonKeyAttributes"}


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_cdk_props_use_the_documented_names(name: str) -> None:
    tables = dm.table_definitions(REGISTRIES[name], format="cdk")["tables"]
    assert tables
    for props in tables.values():
        assert set(props) <= CDK_TABLE, set(props) - CDK_TABLE
        assert props["partitionKey"]["type"] in ("STRING", "NUMBER", "BINARY")
        assert set(props["billing"]) <= {"onDemand", "provisioned"}
        for index in props.get("globalSecondaryIndexes", []):
            assert set(index) <= CDK_GSI, set(index) - CDK_GSI
        for index in props.get("localSecondaryIndexes", []):
            assert set(index) <= CDK_LSI, set(index) - CDK_LSI


def test_cdk_of_every_feature() -> None:
    tables = dm.table_definitions(EVERYTHING, format="cdk")["tables"]
    posts = tables["PostsV2Table"]
    assert posts["partitionKey"] == {"name": "blog", "type": "STRING"}
    assert posts["sortKey"] == {"name": "id", "type": "STRING"}
    assert posts["billing"] == {
        "provisioned": {"readCapacity": {"fixed": 5}, "writeCapacity": {"fixed": 5}}
    }
    assert posts["timeToLiveAttribute"] == "expiresAt"
    assert posts["dynamoStream"] == "NEW_AND_OLD_IMAGES"
    assert posts["encryption"] == {"customerManagedKey": {"tableKey": KMS_KEY}}
    assert posts["tags"] == [{"key": "env", "value": "prod"}, {"key": "team", "value": "blog"}]
    assert posts["deletionProtection"] is True
    assert posts["pointInTimeRecoverySpecification"] == {"pointInTimeRecoveryEnabled": True}
    by_slug = next(i for i in posts["globalSecondaryIndexes"] if i["indexName"] == "BySlug")
    assert by_slug["readCapacity"] == {"fixed": 2}
    counters = tables["T2CountersTable"]
    assert counters["partitionKey"] == {"name": "name", "type": "BINARY"}
    assert counters["billing"] == {
        "onDemand": {"maxReadRequestUnits": 100, "maxWriteRequestUnits": 10}
    }
    assert counters["globalSecondaryIndexes"][0]["maxReadRequestUnits"] == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_json(fmt: str) -> None:
    for registry in REGISTRIES.values():
        document = dm.table_definitions(registry, format=fmt)  # type: ignore[arg-type]
        assert json.loads(json.dumps(document)) == document


# ---------------------------------------------------------------- a template against the models


def test_a_template_of_the_models_matches_them() -> None:
    for registry in REGISTRIES.values():
        for fmt in ("cloudformation", "sam"):
            template = dm.table_definitions(registry, format=fmt, table_prefix="p-")  # type: ignore[arg-type]
            assert check_template(registry, template, table_prefix="p-") == []


def test_check_template_reports_each_difference() -> None:
    template = dm.table_definitions(EVERYTHING)
    changed = copy.deepcopy(template)
    posts = changed["Resources"]["PostsV2Table"]["Properties"]
    posts["GlobalSecondaryIndexes"] = [
        i for i in posts["GlobalSecondaryIndexes"] if i["IndexName"] != "ByAuthor"
    ]
    posts["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "ALL"}
    del posts["TimeToLiveSpecification"]
    posts["StreamSpecification"] = {"StreamViewType": "NEW_IMAGE"}
    posts["ProvisionedThroughput"]["ReadCapacityUnits"] = 50
    posts["TableClass"] = "STANDARD"
    del posts["SSESpecification"]
    posts["Tags"] = [{"Key": "team", "Value": "ops"}]
    posts["DeletionProtectionEnabled"] = False
    del posts["PointInTimeRecoverySpecification"]
    posts["KeySchema"] = posts["KeySchema"][:1]
    posts["AttributeDefinitions"][0]["AttributeType"] = "N"
    del changed["Resources"]["T2CountersTable"]

    found = check_template(EVERYTHING, changed)
    kinds = sorted(d.kind for d in found)
    assert kinds == sorted(
        [
            "key_schema",
            "attribute_type",
            "missing_index",
            "index",
            "ttl",
            "stream",
            "billing",
            "table_class",
            "sse",
            "tags",
            "deletion_protection",
            "pitr",
            "missing_table",
        ]
    )
    text = "\n".join(map(str, found))
    assert "table '2-counters' (Counter): is not in the template" in text
    assert "table 'posts.v2' (Post): GSI 'ByAuthor'" in text
    assert '"team": "ops"' in text


def test_check_template_refuses_what_is_not_a_template() -> None:
    with pytest.raises(dm.UsageError, match="no Resources"):
        check_template(EVERYTHING, {"resource": {}})
