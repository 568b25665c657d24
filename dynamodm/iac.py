"""Tables as code: the registry's tables as CloudFormation, SAM, Terraform JSON or CDK
``TableV2`` props, and a CloudFormation/SAM template compared with the models.

Everything is built from the CreateTable requests that ``create_tables`` sends
(``tables.create_request``), so a template cannot drift from what the library creates.
Pure: no I/O, no session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from .errors import DifferenceKind, TableDifference, UsageError
from .registry import Registry
from .schema import TableNames
from .tables import _group, create_request, guard_table

if TYPE_CHECKING:
    from .model import Model

TemplateFormat = Literal["cloudformation", "sam", "terraform", "cdk"]
TEMPLATE_FORMATS: tuple[str, ...] = get_args(TemplateFormat)
TABLE_TYPE = "AWS::DynamoDB::Table"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


@dataclass(frozen=True)
class _Definition:
    """One table to emit: its CreateTable request, TTL attribute and PITR, and the models
    it holds (for messages)."""

    request: dict[str, Any]
    ttl: str | None
    pitr: bool
    models: str


def _models_of(registry_or_models: Registry | Iterable[type[Model]]) -> list[type[Model]]:
    models = list(
        registry_or_models.models
        if isinstance(registry_or_models, Registry)
        else registry_or_models
    )
    concrete = [m for m in models if getattr(m, "__dm_schema__", None) is not None]
    if not concrete:
        raise UsageError(
            "table_definitions: no concrete models given; pass a dm.Registry holding models "
            "with a Meta.table, or the model classes"
        )
    return concrete


def _definitions(models: list[type[Model]], table_prefix: str) -> list[_Definition]:
    names = TableNames(table_prefix)
    found = [
        _Definition(
            create_request(table),
            table.ttl,
            table.schema.options.point_in_time_recovery,
            ", ".join(table.models),
        )
        for table in _group(names, models)
    ]
    guard = guard_table(names, models)
    if guard is not None:
        guarded = ", ".join(m.__name__ for m in models if m.__dm_schema__.unique)
        found.append(_Definition(guard[0], guard[1], False, f"unique guard of {guarded}"))
    return found


def table_definitions(
    registry_or_models: Registry | Iterable[type[Model]],
    *,
    format: TemplateFormat = "cloudformation",
    table_prefix: str = "",
) -> dict[str, Any]:
    """Every table of the registry (or of the models), and the uniqueness guard table
    when a model declares ``unique``, as infrastructure code: a CloudFormation or SAM
    template, Terraform JSON (``aws_dynamodb_table`` resources), or CDK ``TableV2`` props.

    The result is JSON-serialisable; table names are literal: ``table_prefix + Meta.table``.
    """
    if format not in TEMPLATE_FORMATS:
        raise UsageError(
            f"table_definitions: format={format!r}; use one of {', '.join(TEMPLATE_FORMATS)}"
        )
    definitions = _definitions(_models_of(registry_or_models), table_prefix)
    if format == "terraform":
        return _terraform(definitions)
    if format == "cdk":
        return _cdk(definitions)
    return _cloudformation(definitions, sam=format == "sam")


# ---------------------------------------------------------------- identifiers


def _logical_id(name: str, taken: set[str]) -> str:
    """A CloudFormation logical id (alphanumeric) for a table name: ``my-app-users`` ->
    ``MyAppUsersTable``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    base = "".join(w[:1].upper() + w[1:] for w in words) + "Table"
    if not base[0].isalpha():
        base = "T" + base
    return _unused(base[:250], taken)


def _resource_name(name: str, taken: set[str]) -> str:
    """A Terraform resource name for a table name: ``my-app.users`` -> ``my_app_users``."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "table"
    if not (base[0].isalpha() or base[0] == "_"):
        base = "t_" + base
    return _unused(base, taken, separator="_")


def _unused(base: str, taken: set[str], separator: str = "") -> str:
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}{separator}{number}", number + 1
    taken.add(candidate)
    return candidate


# ---------------------------------------------------------------- CloudFormation and SAM


def _cfn_properties(definition: _Definition) -> dict[str, Any]:
    """AWS::DynamoDB::Table properties: CreateTable's names, except where CFN differs."""
    request = definition.request
    properties: dict[str, Any] = {}
    for name, value in request.items():
        if name == "StreamSpecification":
            properties[name] = {"StreamViewType": value["StreamViewType"]}
        elif name == "SSESpecification":
            properties[name] = {
                "SSEEnabled": True,
                "SSEType": value["SSEType"],
                "KMSMasterKeyId": value["KMSMasterKeyId"],
            }
        else:
            properties[name] = value
    if definition.ttl:
        properties["TimeToLiveSpecification"] = {"AttributeName": definition.ttl, "Enabled": True}
    if definition.pitr:
        properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    return properties


def _cloudformation(definitions: list[_Definition], *, sam: bool) -> dict[str, Any]:
    taken: set[str] = set()
    resources = {
        _logical_id(d.request["TableName"], taken): {
            "Type": TABLE_TYPE,
            # Tables hold data: a stack deleted or a table replaced keeps it.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": _cfn_properties(d),
        }
        for d in definitions
    }
    template: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09"}
    if sam:
        template["Transform"] = SAM_TRANSFORM
    template["Description"] = "DynamoDB tables of the dynamodm models (dynamodm tables emit)"
    template["Resources"] = resources
    template["Outputs"] = {
        f"{logical_id}Name": {"Description": "Table name", "Value": {"Ref": logical_id}}
        for logical_id in resources
    }
    return template


# ---------------------------------------------------------------- Terraform JSON


def _key_names(key_schema: list[dict[str, str]]) -> dict[str, Any]:
    """``hash_key``/``range_key``; a multi-attribute GSI key as ``key_schema`` blocks, the
    provider's spelling of it (its index ``hash_key``/``range_key`` take one name each)."""
    if len(key_schema) > 2 or (len(key_schema) == 2 and key_schema[1]["KeyType"] == "HASH"):
        return {
            "key_schema": [
                {"attribute_name": k["AttributeName"], "key_type": k["KeyType"]} for k in key_schema
            ]
        }
    found = {"hash_key": key_schema[0]["AttributeName"]}
    if len(key_schema) > 1:
        found["range_key"] = key_schema[1]["AttributeName"]
    return found


def _tf_projection(projection: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"projection_type": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        found["non_key_attributes"] = list(projection["NonKeyAttributes"])
    return found


def _tf_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    provisioned = spec.get("ProvisionedThroughput")
    if provisioned:
        found["read_capacity"] = provisioned["ReadCapacityUnits"]
        found["write_capacity"] = provisioned["WriteCapacityUnits"]
    on_demand = spec.get("OnDemandThroughput")
    if on_demand:
        found["on_demand_throughput"] = {
            name: on_demand[key]
            for name, key in (
                ("max_read_request_units", "MaxReadRequestUnits"),
                ("max_write_request_units", "MaxWriteRequestUnits"),
            )
            if key in on_demand
        }
    return found


def _tf_table(definition: _Definition) -> dict[str, Any]:
    request = definition.request
    table: dict[str, Any] = {
        "name": request["TableName"],
        "billing_mode": request["BillingMode"],
        **_key_names(request["KeySchema"]),
        **_tf_throughput(request),
        "attribute": [
            {"name": a["AttributeName"], "type": a["AttributeType"]}
            for a in request["AttributeDefinitions"]
        ],
    }
    gsis = [
        {
            "name": index["IndexName"],
            **_key_names(index["KeySchema"]),
            **_tf_projection(index["Projection"]),
            **_tf_throughput(index),
        }
        for index in request.get("GlobalSecondaryIndexes", [])
    ]
    if gsis:
        table["global_secondary_index"] = gsis
    lsis = [
        {
            "name": index["IndexName"],
            "range_key": index["KeySchema"][1]["AttributeName"],
            **_tf_projection(index["Projection"]),
        }
        for index in request.get("LocalSecondaryIndexes", [])
    ]
    if lsis:
        table["local_secondary_index"] = lsis
    if definition.ttl:
        table["ttl"] = {"attribute_name": definition.ttl, "enabled": True}
    if "StreamSpecification" in request:
        table["stream_enabled"] = True
        table["stream_view_type"] = request["StreamSpecification"]["StreamViewType"]
    if definition.pitr:
        table["point_in_time_recovery"] = {"enabled": True}
    if "SSESpecification" in request:
        table["server_side_encryption"] = {
            "enabled": True,
            "kms_key_arn": request["SSESpecification"]["KMSMasterKeyId"],
        }
    if "TableClass" in request:
        table["table_class"] = request["TableClass"]
    if request.get("DeletionProtectionEnabled"):
        table["deletion_protection_enabled"] = True
    if "Tags" in request:
        table["tags"] = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    return table


def _terraform(definitions: list[_Definition]) -> dict[str, Any]:
    taken: set[str] = set()
    return {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws"}}},
        "resource": {
            "aws_dynamodb_table": {
                _resource_name(d.request["TableName"], taken): _tf_table(d) for d in definitions
            }
        },
    }


# ---------------------------------------------------------------- CDK TableV2 props

_CDK_TYPES = {"S": "STRING", "N": "NUMBER", "B": "BINARY"}


def _cdk_keys(key_schema: list[dict[str, str]], types: dict[str, str]) -> dict[str, Any]:
    """``partitionKey``/``sortKey``; a key of several attributes (a multi-attribute GSI
    key) as the ``partitionKeys``/``sortKeys`` lists instead."""
    found: dict[str, Any] = {}
    for kind, prop in (("HASH", "partitionKey"), ("RANGE", "sortKey")):
        attributes = [
            {"name": k["AttributeName"], "type": _CDK_TYPES[types[k["AttributeName"]]]}
            for k in key_schema
            if k["KeyType"] == kind
        ]
        if len(attributes) == 1:
            found[prop] = attributes[0]
        elif attributes:
            found[prop + "s"] = attributes
    return found


def _cdk_projection(projection: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"projectionType": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        found["nonKeyAttributes"] = list(projection["NonKeyAttributes"])
    return found


def _cdk_limits(spec: dict[str, Any]) -> dict[str, Any]:
    limits = spec.get("OnDemandThroughput") or {}
    return {
        name: limits[key]
        for name, key in (
            ("maxReadRequestUnits", "MaxReadRequestUnits"),
            ("maxWriteRequestUnits", "MaxWriteRequestUnits"),
        )
        if key in limits
    }


def _cdk_capacity(spec: dict[str, Any]) -> dict[str, Any]:
    """``Capacity.fixed(n)`` as ``{"fixed": n}``."""
    units = spec.get("ProvisionedThroughput")
    if not units:
        return {}
    return {
        "readCapacity": {"fixed": units["ReadCapacityUnits"]},
        "writeCapacity": {"fixed": units["WriteCapacityUnits"]},
    }


def _cdk_table(definition: _Definition) -> dict[str, Any]:
    request = definition.request
    types = {a["AttributeName"]: a["AttributeType"] for a in request["AttributeDefinitions"]}
    props: dict[str, Any] = {
        "tableName": request["TableName"],
        **_cdk_keys(request["KeySchema"], types),
        # Billing.onDemand(props) / Billing.provisioned(props), as {factory: props}.
        "billing": (
            {"provisioned": _cdk_capacity(request)}
            if request["BillingMode"] == "PROVISIONED"
            else {"onDemand": _cdk_limits(request)}
        ),
    }
    gsis = [
        {
            "indexName": index["IndexName"],
            **_cdk_keys(index["KeySchema"], types),
            **_cdk_projection(index["Projection"]),
            **_cdk_capacity(index),
            **_cdk_limits(index),
        }
        for index in request.get("GlobalSecondaryIndexes", [])
    ]
    if gsis:
        props["globalSecondaryIndexes"] = gsis
    lsis = [
        {
            "indexName": index["IndexName"],
            "sortKey": _cdk_keys(index["KeySchema"], types)["sortKey"],
            **_cdk_projection(index["Projection"]),
        }
        for index in request.get("LocalSecondaryIndexes", [])
    ]
    if lsis:
        props["localSecondaryIndexes"] = lsis
    if definition.ttl:
        props["timeToLiveAttribute"] = definition.ttl
    if "StreamSpecification" in request:
        props["dynamoStream"] = request["StreamSpecification"]["StreamViewType"]
    if "TableClass" in request:
        props["tableClass"] = request["TableClass"]
    if "SSESpecification" in request:
        # TableEncryptionV2.customerManagedKey(tableKey), the key given by its ARN.
        props["encryption"] = {
            "customerManagedKey": {"tableKey": request["SSESpecification"]["KMSMasterKeyId"]}
        }
    if "Tags" in request:
        props["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in request["Tags"]]
    if request.get("DeletionProtectionEnabled"):
        props["deletionProtection"] = True
    if definition.pitr:
        props["pointInTimeRecoverySpecification"] = {"pointInTimeRecoveryEnabled": True}
    return props


def _cdk(definitions: list[_Definition]) -> dict[str, Any]:
    taken: set[str] = set()
    return {
        "tables": {_logical_id(d.request["TableName"], taken): _cdk_table(d) for d in definitions}
    }


# ---------------------------------------------------------------- a template against the models


def check_template(
    registry_or_models: Registry | Iterable[type[Model]],
    template: dict[str, Any],
    *,
    table_prefix: str = "",
) -> list[TableDifference]:
    """Every way a CloudFormation or SAM template's ``AWS::DynamoDB::Table`` resources
    differ from the models: missing tables, keys, attribute types, indexes, TTL, stream,
    billing and the table options. Tables are matched by their literal ``TableName``."""
    resources = template.get("Resources") if isinstance(template, dict) else None
    if not isinstance(resources, dict):
        raise UsageError("the template has no Resources: is it a CloudFormation or SAM template?")
    declared: dict[str, dict[str, Any]] = {}
    for resource in resources.values():
        if isinstance(resource, dict) and resource.get("Type") == TABLE_TYPE:
            properties = resource.get("Properties") or {}
            if isinstance(properties.get("TableName"), str):
                declared[properties["TableName"]] = properties
    found: list[TableDifference] = []
    for definition in _definitions(_models_of(registry_or_models), table_prefix):
        wanted = _cfn_properties(definition)
        name = wanted["TableName"]

        where = f"table {name!r} ({definition.models})"
        properties = declared.get(name)
        if properties is None:
            message = "is not in the template (no AWS::DynamoDB::Table of that TableName)"
            found.append(TableDifference(name, "missing_table", f"{where}: {message}"))
            continue
        found.extend(
            TableDifference(
                name,
                kind,
                f"{where}: {what}: the template has {_text(live)}, the models {_text(model)}",
            )
            for kind, what, live, model in _compare(properties, wanted)
        )
    return found


def _text(value: Any) -> str:
    return "nothing" if value is None else json.dumps(value, sort_keys=True)


def _indexes(properties: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {str(i.get("IndexName")): i for i in properties.get(key) or [] if isinstance(i, dict)}


def _projection(index: dict[str, Any]) -> Any:
    projection = dict(index.get("Projection") or {})
    if "NonKeyAttributes" in projection:
        projection["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return projection


def _billing(spec: dict[str, Any], mode: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"BillingMode": mode or "PROVISIONED"}
    if found["BillingMode"] == "PROVISIONED":
        found["ProvisionedThroughput"] = spec.get("ProvisionedThroughput")
    elif spec.get("OnDemandThroughput"):
        found["OnDemandThroughput"] = spec["OnDemandThroughput"]
    return found


def _compare(
    template: dict[str, Any], wanted: dict[str, Any]
) -> list[tuple[DifferenceKind, str, Any, Any]]:
    """(kind, what, template's value, models' value) for every property that differs."""
    found: list[tuple[DifferenceKind, str, Any, Any]] = []

    def check(kind: DifferenceKind, what: str, live: Any, model: Any) -> None:
        if live != model:
            found.append((kind, what, live, model))

    check("key_schema", "KeySchema", template.get("KeySchema"), wanted["KeySchema"])
    types = {
        d.get("AttributeName"): d.get("AttributeType")
        for d in template.get("AttributeDefinitions") or []
        if isinstance(d, dict)
    }
    for definition in wanted["AttributeDefinitions"]:
        attribute = definition["AttributeName"]
        check(
            "attribute_type",
            f"attribute {attribute!r}",
            types.get(attribute),
            definition["AttributeType"],
        )
    mode = template.get("BillingMode")
    for key, kind_name in (("GlobalSecondaryIndexes", "GSI"), ("LocalSecondaryIndexes", "LSI")):
        live_indexes = _indexes(template, key)
        for index_name, index in _indexes(wanted, key).items():
            live = live_indexes.get(index_name)
            if live is None:
                found.append(("missing_index", f"{kind_name} {index_name!r}", None, "declared"))
                continue
            what = f"{kind_name} {index_name!r}"
            check("index", f"{what} KeySchema", live.get("KeySchema"), index["KeySchema"])
            check("index", f"{what} Projection", _projection(live), _projection(index))
            if kind_name == "GSI":
                check(
                    "billing",
                    f"{what} throughput",
                    _billing(live, mode),
                    _billing(index, wanted["BillingMode"]),
                )
    check("billing", "billing", _billing(template, mode), _billing(wanted, wanted["BillingMode"]))
    check(
        "ttl",
        "TimeToLiveSpecification",
        template.get("TimeToLiveSpecification"),
        wanted.get("TimeToLiveSpecification"),
    )
    stream = template.get("StreamSpecification") or {}
    check(
        "stream",
        "StreamSpecification",
        stream.get("StreamViewType"),
        (wanted.get("StreamSpecification") or {}).get("StreamViewType"),
    )
    check(
        "table_class",
        "TableClass",
        template.get("TableClass", "STANDARD"),
        wanted.get("TableClass", "STANDARD"),
    )
    sse = template.get("SSESpecification") or {}
    live_key = (
        sse.get("KMSMasterKeyId")
        if sse.get("SSEEnabled") and sse.get("SSEType", "KMS") == "KMS"
        else None
    )
    check(
        "sse",
        "SSESpecification KMS key",
        live_key,
        (wanted.get("SSESpecification") or {}).get("KMSMasterKeyId"),
    )
    live_tags = {
        t.get("Key"): t.get("Value") for t in template.get("Tags") or [] if isinstance(t, dict)
    }
    wanted_tags = {t["Key"]: t["Value"] for t in wanted.get("Tags", [])}
    check("tags", "Tags", {k: live_tags.get(k) for k in wanted_tags} or None, wanted_tags or None)
    check(
        "deletion_protection",
        "DeletionProtectionEnabled",
        bool(template.get("DeletionProtectionEnabled", False)),
        bool(wanted.get("DeletionProtectionEnabled", False)),
    )
    pitr = template.get("PointInTimeRecoverySpecification") or {}
    check(
        "pitr",
        "PointInTimeRecoveryEnabled",
        bool(pitr.get("PointInTimeRecoveryEnabled", False)),
        "PointInTimeRecoverySpecification" in wanted,
    )
    return found
