"""Multi-attribute GSI keys without a server: declarations checked at class definition,
the key conditions a query sends, every query that cannot be valid refused before
sending (naming the model, the index, the attribute and the fix, never a value), cursors,
and the tables as CreateTable, CloudFormation (through cfn-lint), Terraform and CDK."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pytest

import dynamodm as dm
from dynamodm.iac import check_template
from dynamodm.schema import MAX_KEY_ATTRIBUTES

REG = dm.Registry("multi-key-unit")
SECRET = b"k" * 32


class Shop(dm.Model):
    class Meta:
        table = "shops"
        registry = REG
        indexes = (
            dm.GlobalIndex(
                "ByPlace",
                hash_key=("tenant_id", "region"),
                range_key=("country", "city", "opened"),
            ),
            dm.GlobalIndex("ByRank", hash_key="tenant_id", range_key=("rank", "name", "open")),
            dm.GlobalIndex(
                "ByCategory",
                hash_key=("tenant_id", dm.Template("CategoryKey", "CAT#{category}")),
                range_key=("rank", dm.Template("Label", "L#{name}")),
            ),
        )

    id: Annotated[str, dm.HashKey]
    tenant_id: str
    region: str = "eu"
    country: str | None = None
    city: str | None = None
    opened: date | None = None
    rank: int = 0
    name: str = "n"
    open: bool = True
    category: str = "shoes"
    tags: list[str] = []


def declare(**meta: Any) -> type[dm.Model]:
    """A model of the Shop fields with these Meta settings."""
    namespace: dict[str, Any] = {
        "__annotations__": {
            "id": Annotated[str, dm.HashKey],
            "tenant_id": str,
            "region": str,
            "country": str,
            "city": str,
            "tags": list[str],
        },
        "Meta": type("Meta", (), {"table": "shops", "registry": dm.Registry("decl"), **meta}),
    }
    return type("Decl", (dm.Model,), namespace)


# ---------------------------------------------------------------- declaration


def test_the_index_schema_holds_every_attribute_in_order() -> None:
    schema = Shop.__dm_schema__
    place = schema.indexes["ByPlace"]
    assert [k.attribute for k in place.hash_keys] == ["tenant_id", "region"]
    assert [k.attribute for k in place.range_keys] == ["country", "city", "opened"]
    assert [k.type for k in place.keys] == ["S", "S", "S", "S", "S"]
    assert place.multi_attribute
    rank = schema.indexes["ByRank"]
    assert [k.type for k in rank.range_keys] == ["N", "S", "N"]  # a bool key is stored as N
    category = schema.indexes["ByCategory"]
    assert category.hash_keys[1].template == dm.Template("CategoryKey", "CAT#{category}")
    # Writes check every index key attribute: present ones non-empty and within limits.
    assert {"region", "country", "city", "opened", "rank", "name", "open"} <= set(
        schema.key_attributes()
    )
    assert {"country", "city", "opened", "name", "Label"} <= schema.range_attributes
    assert "region" not in schema.range_attributes
    assert {"CategoryKey", "Label"} <= schema.computed_attributes


def test_a_single_attribute_tuple_is_an_ordinary_key() -> None:
    model = declare(indexes=(dm.GlobalIndex("ByCity", hash_key=("city",), range_key=("country",)),))
    index = model.__dm_schema__.indexes["ByCity"]
    assert not index.multi_attribute
    assert (index.hash_key.attribute, index.range_key and index.range_key.attribute) == (
        "city",
        "country",
    )


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (
            dm.GlobalIndex("ByFive", hash_key=("tenant_id", "region", "country", "city", "id")),
            r"^Decl: index 'ByFive': hash_key has 5 attributes; DynamoDB allows up to 4 .*"
            r"combine them in a dm.Template",
        ),
        (
            dm.GlobalIndex(
                "ByFive", hash_key="id", range_key=("tenant_id", "region", "country", "city", "id")
            ),
            r"^Decl: index 'ByFive': range_key has 5 attributes",
        ),
        (
            dm.GlobalIndex("ByPlace", hash_key=("tenant_id", "nowhere")),
            r"^Decl: hash key attribute 2 of 2 of index 'ByPlace' names unknown field 'nowhere'",
        ),
        (
            dm.GlobalIndex("ByPlace", hash_key="tenant_id", range_key=("country", "tags")),
            r"^Decl: field 'tags' is used as range key attribute 2 of 2 of index 'ByPlace', "
            r"but DynamoDB keys must be strings, numbers or bytes",
        ),
        (
            dm.GlobalIndex("ByPlace", hash_key=("tenant_id", "region"), range_key=("region",)),
            r"^Decl: index 'ByPlace' names attribute 'region' twice in its key",
        ),
        (
            dm.GlobalIndex("ByPlace", hash_key=("tenant_id", "tenant_id")),
            r"^Decl: index 'ByPlace' names attribute 'tenant_id' twice",
        ),
        (
            dm.GlobalIndex("ByPlace", hash_key=()),
            r"^Decl: index 'ByPlace': hash_key is empty; name at least one field",
        ),
        (
            dm.GlobalIndex("ByPlace", hash_key=("tenant_id", 3)),  # type: ignore[arg-type]
            r"^Decl: index 'ByPlace': hash_key takes a field name, a dm.Template, or a tuple",
        ),
    ],
    ids=[
        "five-hash",
        "five-range",
        "unknown-field",
        "unkeyable-type",
        "hash-and-range",
        "twice-in-hash",
        "empty",
        "not-a-name",
    ],
)
def test_declarations_that_cannot_be_keyed_are_refused(index: dm.GlobalIndex, message: str) -> None:
    with pytest.raises(dm.InvalidModel, match=message):
        declare(indexes=(index,))


def test_a_local_index_takes_one_range_key() -> None:
    with pytest.raises(dm.InvalidModel, match="a LocalIndex takes one range key"):
        declare(
            indexes=(dm.LocalIndex("ByPlace", range_key=("country", "city")),),  # type: ignore[arg-type]
        )


def test_four_attributes_each_are_allowed() -> None:
    assert MAX_KEY_ATTRIBUTES == 4
    model = declare(
        indexes=(
            dm.GlobalIndex(
                "ByAll",
                hash_key=("tenant_id", "region", "country", "city"),
                range_key=(
                    "id",
                    dm.Template("A", "A#{city}"),
                    dm.Template("B", "B#{region}"),
                    dm.Template("C", "C#{country}"),
                ),
            ),
        )
    )
    index = model.__dm_schema__.indexes["ByAll"]
    assert (len(index.hash_keys), len(index.range_keys)) == (4, 4)


# ---------------------------------------------------------------- queries


def expression(query: Any) -> str:
    """The KeyConditionExpression with names and values put back, for reading."""
    request = query._request
    text: str = request["KeyConditionExpression"]
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    for placeholder in sorted({**names, **values}, key=len, reverse=True):
        if placeholder in names:
            text = text.replace(placeholder, names[placeholder])
        else:
            text = text.replace(placeholder, json.dumps(values[placeholder], sort_keys=True))
    return text


def test_a_query_sends_every_hash_attribute_and_the_range_run() -> None:
    query = Shop.query(
        ("t1", "eu"),
        Shop.city.begins_with("Pa") & (Shop.country == "FR"),
        index="ByPlace",
    )
    assert expression(query) == (
        'tenant_id = {"S": "t1"} AND region = {"S": "eu"} AND country = {"S": "FR"} AND '
        'begins_with(city, {"S": "Pa"})'
    )
    assert query._request["IndexName"] == "ByPlace"


def test_hash_and_range_attributes_by_keyword() -> None:
    query = Shop.query(index="ByPlace", region="eu", tenant_id="t1", country="FR", city="Lyon")
    assert expression(query) == (
        'tenant_id = {"S": "t1"} AND region = {"S": "eu"} AND country = {"S": "FR"} AND '
        'city = {"S": "Lyon"}'
    )
    ranked = Shop.query("t1", (Shop.rank == 2) & Shop.name.between("a", "m"), index="ByRank")
    assert expression(ranked) == (
        'tenant_id = {"S": "t1"} AND rank = {"N": "2"} AND name BETWEEN {"S": "a"} AND {"S": "m"}'
    )
    on_bool = Shop.query("t1", index="ByRank", rank=2, name="a", open=True)
    assert expression(on_bool).endswith('open = {"N": "1"}')


def test_templated_attributes_take_their_fields_by_keyword() -> None:
    query = Shop.query(index="ByCategory", tenant_id="t1", category="hats", rank=3, name="x")
    assert expression(query) == (
        'tenant_id = {"S": "t1"} AND CategoryKey = {"S": "CAT#hats"} AND rank = {"N": "3"} '
        'AND Label = {"S": "L#x"}'
    )


def test_a_date_range_attribute_is_compared_as_stored() -> None:
    query = Shop.query(
        ("t1", "eu"),
        (Shop.country == "FR") & (Shop.city == "Paris") & (Shop.opened > date(2020, 1, 1)),
        index="ByPlace",
    )
    assert expression(query).endswith('opened > {"S": "2020-01-01"}')


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: Shop.query("t1", index="ByPlace"),
            r"index 'ByPlace': the hash key has 2 attribute\(s\) \(tenant_id, region\), got 1 "
            r"value\(s\); pass a tuple",
        ),
        (
            lambda: Shop.query(("t1", "eu", "FR", "Paris", "x"), index="ByPlace"),
            r"the hash key has 2 attribute\(s\) \(tenant_id, region\), got 5 value\(s\)",
        ),
        (
            lambda: Shop.query(index="ByPlace", tenant_id="t1"),
            r"^Shop.query\(\) on index 'ByPlace': the hash key \(tenant_id, region\) needs a "
            r"value for 'region'; pass it \(region=...\)",
        ),
        (
            lambda: Shop.query(("t1", "eu"), index="ByPlace", region="us"),
            r"'region' is given both in the hash tuple and by keyword",
        ),
        (
            lambda: Shop.query(("t1", "eu"), Shop.city == "Paris", index="ByPlace"),
            r"the condition on 'city' needs an equality on 'country' first; range attributes "
            r"are matched left to right \(country, city, opened\)",
        ),
        (
            lambda: Shop.query(
                ("t1", "eu"),
                (Shop.country == "FR") & (Shop.opened > date(2020, 1, 1)),
                index="ByPlace",
            ),
            r"the condition on 'opened' needs an equality on 'city' first",
        ),
        (
            lambda: Shop.query(
                ("t1", "eu"), (Shop.country > "A") & (Shop.city == "Paris"), index="ByPlace"
            ),
            r"only the last range attribute of the query may take < <= > >= between or "
            r"begins_with; 'country' is followed by 'city': make it an equality",
        ),
        (
            lambda: Shop.query(
                ("t1", "eu"),
                (Shop.country >= "A") & Shop.city.begins_with("P"),
                index="ByPlace",
            ),
            r"only the last range attribute .* 'country' is followed by 'city'",
        ),
        (
            lambda: Shop.query(("t1", "eu"), Shop.region == "eu", index="ByPlace"),
            r"must be on the range attributes \(country, city, opened\), not on Shop.region; "
            r"it is a hash attribute",
        ),
        (
            lambda: Shop.query(("t1", "eu"), Shop.rank == 1, index="ByPlace"),
            r"not on Shop.rank; use filter= for other fields",
        ),
        (
            lambda: Shop.query(
                ("t1", "eu"), (Shop.country == "FR") & (Shop.country == "DE"), index="ByPlace"
            ),
            r"two conditions on the range attribute 'country'; give one condition for each",
        ),
        (
            lambda: Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace", country="DE"),
            r"two conditions on the range attribute 'country'",
        ),
        (
            lambda: Shop.query(
                ("t1", "eu"), (Shop.country == "FR") | (Shop.country == "DE"), index="ByPlace"
            ),
            r"a range condition is == < <= > >= between or begins_with on range attributes, "
            r"joined with &",
        ),
        (
            lambda: Shop.query(("t1", "eu"), Shop.country != "FR", index="ByPlace"),
            r"joined with &; use filter= for anything else",
        ),
        (
            lambda: Shop.query("t1", Shop.rank.begins_with("1"), index="ByRank"),
            r"begins_with needs a string or binary range attribute; 'rank' is stored as a number",
        ),
        (
            lambda: Shop.query(("t1", "eu"), Shop.country == None, index="ByPlace"),  # noqa: E711
            r"the condition on 'country' compares with a value that is not a scalar",
        ),
        (
            lambda: Shop.query(("t1", "eu"), Shop.country == "", index="ByPlace"),
            r"the condition on 'country' has an empty value",
        ),
        (
            lambda: Shop.query(("t1", "eu"), index="ByPlace", status="x"),
            r"'status' is not an attribute of the index key \(hash: tenant_id, region; range: "
            r"country, city, opened\); use filter= for other fields",
        ),
        (
            lambda: Shop.query(("t1", "shoes"), index="ByCategory"),
            r"the hash attribute 'CategoryKey' is computed from category; pass the hash values "
            r"by keyword",
        ),
        (
            lambda: Shop.query(index="ByCategory", tenant_id="t1"),
            r"the key attribute 'CategoryKey' needs 'category' \(template 'CAT#\{category\}'\)",
        ),
        (
            lambda: Shop.query(("t1", "eu"), index="ByPlace", filter=Shop.city == "Paris"),
            r"the filter uses the key attribute 'city', which DynamoDB refuses",
        ),
        (
            lambda: Shop.query(("t1", ""), index="ByPlace"),
            r"the key field 'region' cannot be empty",
        ),
    ],
    ids=[
        "scalar-for-two",
        "five-values",
        "missing-hash",
        "hash-twice",
        "gap",
        "gap-later",
        "two-non-equalities",
        "non-equality-then-begins",
        "condition-on-hash",
        "not-a-key",
        "duplicate",
        "duplicate-keyword",
        "or",
        "not-equal",
        "begins-with-number",
        "not-scalar",
        "empty",
        "unknown-keyword",
        "template-by-position",
        "template-missing-field",
        "filter-on-key",
        "empty-hash",
    ],
)
def test_queries_that_cannot_be_valid_are_refused_before_sending(call: Any, message: str) -> None:
    with pytest.raises(dm.UsageError, match=message) as caught:
        call()
    assert "Shop" in str(caught.value)


def test_refusals_never_contain_the_values() -> None:
    secret = "s3cr3t-value"
    with pytest.raises(dm.UsageError) as caught:
        Shop.query(("t1", secret), Shop.city == secret, index="ByPlace")
    assert secret not in str(caught.value)
    with pytest.raises(dm.UsageError) as caught:
        Shop.query(index="ByPlace", region=secret)
    assert secret not in str(caught.value)


def test_a_collection_on_a_multi_attribute_index_takes_the_hash_fields() -> None:
    collection = dm.Collection(Shop, index="ByCategory")
    query = collection.query(tenant_id="t1", category="hats")
    assert expression(query) == 'tenant_id = {"S": "t1"} AND CategoryKey = {"S": "CAT#hats"}'
    with pytest.raises(dm.UsageError, match="a collection query takes the hash key fields only"):
        collection.query(tenant_id="t1", category="hats", rank=1)


# ---------------------------------------------------------------- cursors


def start_item(**values: Any) -> dict[str, Any]:
    item = {
        "id": {"S": "s1"},
        "tenant_id": {"S": "t1"},
        "region": {"S": "eu"},
        "country": {"S": "FR"},
        "city": {"S": "Paris"},
        "opened": {"S": "2020-01-01"},
    }
    item.update(values)
    return item


def test_a_cursor_carries_every_key_attribute_of_the_index() -> None:
    query = Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace")
    text = query._encode_cursor(start_item(rank={"N": "1"}), SECRET)
    start = query._decode_cursor(text, SECRET)
    assert start == start_item()


@pytest.mark.parametrize(
    ("item", "other"),
    [
        (start_item(region={"S": "us"}), "another partition"),
        (start_item(country={"S": "DE"}), "outside the query's range condition"),
    ],
)
def test_a_cursor_outside_the_key_condition_is_refused(item: dict[str, Any], other: str) -> None:
    # A signed cursor of this very query whose start key lies in another partition or
    # outside the range condition: DynamoDB refuses such a start key, so the library does.
    query = Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace")
    text = query._encode_cursor(item, SECRET)
    with pytest.raises(dm.InvalidCursor, match=other):
        query._decode_cursor(text, SECRET)


def test_a_cursor_of_another_query_is_refused() -> None:
    query = Shop.query(("t1", "eu"), Shop.country == "FR", index="ByPlace")
    text = query._encode_cursor(start_item(), SECRET)
    other = Shop.query(("t1", "eu"), Shop.country == "DE", index="ByPlace")
    with pytest.raises(dm.InvalidCursor):
        other._decode_cursor(text, SECRET)


# ---------------------------------------------------------------- tables as code


def test_create_table_lists_every_hash_then_every_range_element() -> None:
    template = dm.table_definitions([Shop])
    properties = template["Resources"]["ShopsTable"]["Properties"]
    indexes = {i["IndexName"]: i["KeySchema"] for i in properties["GlobalSecondaryIndexes"]}
    assert indexes["ByPlace"] == [
        {"AttributeName": "tenant_id", "KeyType": "HASH"},
        {"AttributeName": "region", "KeyType": "HASH"},
        {"AttributeName": "country", "KeyType": "RANGE"},
        {"AttributeName": "city", "KeyType": "RANGE"},
        {"AttributeName": "opened", "KeyType": "RANGE"},
    ]
    types = {d["AttributeName"]: d["AttributeType"] for d in properties["AttributeDefinitions"]}
    assert types == {
        "id": "S",
        "tenant_id": "S",
        "region": "S",
        "country": "S",
        "city": "S",
        "opened": "S",
        "rank": "N",
        "name": "S",
        "open": "N",
        "CategoryKey": "S",
        "Label": "S",
    }
    assert check_template([Shop], template) == []
    swapped = json.loads(json.dumps(template))
    place = swapped["Resources"]["ShopsTable"]["Properties"]["GlobalSecondaryIndexes"][0]
    place["KeySchema"][2:4] = place["KeySchema"][3:1:-1]
    differences = check_template([Shop], swapped)
    assert [d.kind for d in differences] == ["index"]
    assert "GSI 'ByPlace' KeySchema" in differences[0].message


def test_cfn_lint_accepts_the_multi_attribute_key_schema(tmp_path: Path) -> None:
    path = tmp_path / "shops.json"
    path.write_text(json.dumps(dm.table_definitions([Shop], format="cloudformation")))
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


def test_terraform_writes_key_schema_blocks_for_a_multi_attribute_key() -> None:
    table = dm.table_definitions([Shop], format="terraform")["resource"]["aws_dynamodb_table"][
        "shops"
    ]
    indexes = {i["name"]: i for i in table["global_secondary_index"]}
    assert "hash_key" not in indexes["ByPlace"] and "range_key" not in indexes["ByPlace"]
    assert indexes["ByPlace"]["key_schema"] == [
        {"attribute_name": "tenant_id", "key_type": "HASH"},
        {"attribute_name": "region", "key_type": "HASH"},
        {"attribute_name": "country", "key_type": "RANGE"},
        {"attribute_name": "city", "key_type": "RANGE"},
        {"attribute_name": "opened", "key_type": "RANGE"},
    ]
    assert indexes["ByRank"]["key_schema"][0] == {"attribute_name": "tenant_id", "key_type": "HASH"}
    assert table["hash_key"] == "id"  # the table key keeps its arguments
    keyed = {a["name"] for a in table["attribute"]}
    assert keyed == {"id"} | {
        k["attribute_name"] for i in indexes.values() for k in i["key_schema"]
    }


def test_cdk_writes_partition_keys_and_sort_keys_lists() -> None:
    props = dm.table_definitions([Shop], format="cdk")["tables"]["ShopsTable"]
    indexes = {i["indexName"]: i for i in props["globalSecondaryIndexes"]}
    assert indexes["ByPlace"]["partitionKeys"] == [
        {"name": "tenant_id", "type": "STRING"},
        {"name": "region", "type": "STRING"},
    ]
    assert [k["name"] for k in indexes["ByPlace"]["sortKeys"]] == ["country", "city", "opened"]
    assert "partitionKey" not in indexes["ByPlace"] and "sortKey" not in indexes["ByPlace"]
    # A single hash attribute with a multi-attribute range key: partitionKey and sortKeys.
    assert indexes["ByRank"]["partitionKey"] == {"name": "tenant_id", "type": "STRING"}
    assert [k["type"] for k in indexes["ByRank"]["sortKeys"]] == ["NUMBER", "STRING", "NUMBER"]
    assert props["partitionKey"] == {"name": "id", "type": "STRING"}
