"""Conditions and update actions render to exact expressions, names and values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, Model
from dynamodm.expressions import Action, Condition, Renderer, render_update

REGISTRY = dm.Registry("unit-expressions")


class Step(BaseModel):
    status: str = "new"
    retries: int = 0
    dotted: int = Field(default=0, alias="a.b")


class Thing(Model):
    class Meta:
        table = "things"
        registry = REGISTRY
        indexes = (GlobalIndex("ActiveIndex", hash_key="active"),)

    id: Annotated[str, HashKey] = "t-1"
    status: str = ""
    name: str = ""
    date: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    size: int = 0
    score: int = 0
    ratio: float = 0.0
    done: bool = False
    active: bool = False
    odd: int = Field(default=0, alias="my.odd-name")
    tags: list[str] = []
    labels: set[str] = set()
    counts: set[int] = set()
    steps: dict[str, Step] = {}
    nested: Step = Step()
    mapping: dict[str, int] = {}
    payload: Any = None
    expires: Annotated[datetime | None, dm.TTL] = None


Rendered = tuple[str, dict[str, str], dict[str, Any]]


def render(condition: Condition) -> Rendered:
    r = Renderer()
    text = condition.render(r)
    return text, r.attribute_names(), r.values


def update(*actions: Action) -> Rendered:
    r = Renderer()
    text = render_update(actions, r)
    return text, r.attribute_names(), r.values


# ---------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    ("condition", "operator"),
    [
        (Thing.score == 5, "="),
        (Thing.score != 5, "<>"),
        (Thing.score < 5, "<"),
        (Thing.score <= 5, "<="),
        (Thing.score > 5, ">"),
        (Thing.score >= 5, ">="),
    ],
)
def test_comparisons_render_with_placeholders(condition: Condition, operator: str) -> None:
    assert render(condition) == (f"#n0 {operator} :v0", {"#n0": "score"}, {":v0": {"N": "5"}})


def test_value_on_the_left_is_reflected_onto_the_path() -> None:
    reflected = 5 < Thing.score  # noqa: SIM300
    assert render(reflected) == ("#n0 > :v0", {"#n0": "score"}, {":v0": {"N": "5"}})


def test_comparison_of_two_paths() -> None:
    assert render(Thing.score > Thing.size) == (
        "#n0 > #n1",
        {"#n0": "score", "#n1": "size"},
        {},
    )


def test_between() -> None:
    assert render(Thing.score.between(1, 10)) == (
        "#n0 BETWEEN :v0 AND :v1",
        {"#n0": "score"},
        {":v0": {"N": "1"}, ":v1": {"N": "10"}},
    )


def test_begins_with() -> None:
    assert render(Thing.name.begins_with("ad")) == (
        "begins_with(#n0, :v0)",
        {"#n0": "name"},
        {":v0": {"S": "ad"}},
    )


def test_contains_on_a_string_a_set_and_a_list() -> None:
    assert render(Thing.name.contains("da")) == (
        "contains(#n0, :v0)",
        {"#n0": "name"},
        {":v0": {"S": "da"}},
    )
    assert render(Thing.counts.contains(3)) == (
        "contains(#n0, :v0)",
        {"#n0": "counts"},
        {":v0": {"N": "3"}},
    )
    assert render(Thing.tags.contains("math"))[2] == {":v0": {"S": "math"}}


def test_is_in() -> None:
    assert render(Thing.status.is_in(["a", "b", "a"])) == (
        "#n0 IN (:v0, :v1, :v0)",
        {"#n0": "status"},
        {":v0": {"S": "a"}, ":v1": {"S": "b"}},
    )


def test_is_in_takes_up_to_one_hundred_values() -> None:
    text, _names, values = render(Thing.score.is_in(range(100)))
    assert text.count(":v") == 100
    assert len(values) == 100


def test_exists_and_not_exists() -> None:
    assert render(Thing.name.exists()) == ("attribute_exists(#n0)", {"#n0": "name"}, {})
    assert render(Thing.name.not_exists()) == ("attribute_not_exists(#n0)", {"#n0": "name"}, {})


def test_size_comparisons() -> None:
    assert render(Thing.tags.size() > 2) == (
        "size(#n0) > :v0",
        {"#n0": "tags"},
        {":v0": {"N": "2"}},
    )
    assert render(Thing.name.size().between(1, 3)) == (
        "size(#n0) BETWEEN :v0 AND :v1",
        {"#n0": "name"},
        {":v0": {"N": "1"}, ":v1": {"N": "3"}},
    )
    assert render(Thing.labels.size() == Thing.score)[0] == "size(#n0) = #n1"


def test_is_type() -> None:
    assert render(Thing.payload.is_type("M")) == (
        "attribute_type(#n0, :v0)",
        {"#n0": "payload"},
        {":v0": {"S": "M"}},
    )


def test_and_or_not_nest_with_parentheses() -> None:
    condition = ((Thing.status == "ok") & (Thing.name != "x")) | ~(Thing.size < 3)
    assert render(condition) == (
        "((#n0 = :v0) AND (#n1 <> :v1)) OR (NOT (#n2 < :v2))",
        {"#n0": "status", "#n1": "name", "#n2": "size"},
        {":v0": {"S": "ok"}, ":v1": {"S": "x"}, ":v2": {"N": "3"}},
    )


def test_compare_to_none_uses_null() -> None:
    assert render(Thing.payload == None)[2] == {":v0": {"NULL": True}}  # noqa: E711


# ---------------------------------------------------------------- names


def test_reserved_words_are_always_placeholders() -> None:
    condition = (
        (Thing.status == "a") & (Thing.name == "b") & (Thing.date.exists()) & (Thing.size > 1)
    )
    text, names, _values = render(condition)
    assert names == {"#n0": "status", "#n1": "name", "#n2": "date", "#n3": "size"}
    for word in ("status", "name", "date", "size"):
        assert word not in text


def test_alias_with_dots_and_dashes_is_one_name() -> None:
    assert render(Thing.odd > 3) == ("#n0 > :v0", {"#n0": "my.odd-name"}, {":v0": {"N": "3"}})
    assert render(Thing.nested.dotted == 1)[:2] == (
        "#n0.#n1 = :v0",
        {"#n0": "nested", "#n1": "a.b"},
    )


def test_nested_map_and_list_paths() -> None:
    assert render(Thing.steps["resize"].status == "done") == (
        "#n0.#n1.#n2 = :v0",
        {"#n0": "steps", "#n1": "resize", "#n2": "status"},
        {":v0": {"S": "done"}},
    )
    assert render(Thing.tags[0] == "a") == ("#n0[0] = :v0", {"#n0": "tags"}, {":v0": {"S": "a"}})
    assert render(Thing.mapping["k"] >= 2)[:2] == ("#n0.#n1 >= :v0", {"#n0": "mapping", "#n1": "k"})


def test_identical_names_share_a_placeholder() -> None:
    condition = (Thing.status == "a") | (Thing.status == "b") | Thing.steps["status"].exists()
    text, names, _values = render(condition)
    assert names == {"#n0": "status", "#n1": "steps"}
    assert text == "((#n0 = :v0) OR (#n0 = :v1)) OR (attribute_exists(#n1.#n0))"


def test_user_values_never_enter_the_expression() -> None:
    hostile = "x) OR attribute_exists(#n0"
    text, _names, values = render(Thing.name == hostile)
    assert text == "#n0 = :v0"
    assert values == {":v0": {"S": hostile}}


# ---------------------------------------------------------------- values


def test_equal_encoded_values_share_a_placeholder() -> None:
    condition = (Thing.score == 1) & (Thing.size == 1)
    assert render(condition)[0] == "(#n0 = :v0) AND (#n1 = :v0)"


def test_true_one_and_one_point_zero_are_never_merged() -> None:
    text, _names, values = render(Thing.payload.is_in([True, 1, 1.0]))
    assert text == "#n0 IN (:v0, :v1, :v2)"
    assert values == {":v0": {"BOOL": True}, ":v1": {"N": "1"}, ":v2": {"N": "1.0"}}


def test_one_text_of_different_types_never_shares_a_placeholder() -> None:
    values = ["1", 1, {"1"}, ["1"], {"k": "1"}, "1", 1]
    text, _names, rendered = render(Thing.payload.is_in(values))
    assert text == "#n0 IN (:v0, :v1, :v2, :v3, :v4, :v0, :v1)"
    assert rendered == {
        ":v0": {"S": "1"},
        ":v1": {"N": "1"},
        ":v2": {"SS": ["1"]},
        ":v3": {"L": [{"S": "1"}]},
        ":v4": {"M": {"k": {"S": "1"}}},
    }


def test_a_flat_value_and_its_frozen_form_are_two_values() -> None:
    r = Renderer()
    assert [r.value(av) for av in ({"S": "N"}, {"N": "S"}, {"S": "N"})] == [":v0", ":v1", ":v0"]
    assert r.value({"L": [{"S": "N"}]}) == ":v2"


def test_values_are_converted_to_the_field_type_before_encoding() -> None:
    assert render(Thing.ratio == 1)[2] == {":v0": {"N": "1.0"}}
    assert render((Thing.ratio == 1) & (Thing.score == 1))[2] == {
        ":v0": {"N": "1.0"},
        ":v1": {"N": "1"},
    }


def test_datetime_value_uses_the_fixed_width_utc_string() -> None:
    since = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert render(Thing.date >= since)[2] == {":v0": {"S": "2024-01-02T01:04:05.000000Z"}}
    assert render(Thing.date < datetime(2024, 1, 2))[2] == {
        ":v0": {"S": "2024-01-02T00:00:00.000000Z"}
    }


def test_bool_index_key_value_is_n_and_plain_bool_is_bool() -> None:
    assert render(Thing.active == True)[2] == {":v0": {"N": "1"}}  # noqa: E712
    assert render(Thing.done == True)[2] == {":v0": {"BOOL": True}}  # noqa: E712


def test_ttl_value_is_epoch_seconds() -> None:
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    assert render(Thing.expires < moment)[2] == {":v0": {"N": str(int(moment.timestamp()))}}


# ---------------------------------------------------------------- update actions


def test_set_and_remove() -> None:
    assert update(Thing.name.set("ada"), Thing.status.remove()) == (
        "SET #n0 = :v0 REMOVE #n1",
        {"#n0": "name", "#n1": "status"},
        {":v0": {"S": "ada"}},
    )


def test_add_and_delete() -> None:
    assert update(Thing.score.add(1), Thing.labels.add({"x"}), Thing.counts.delete({2})) == (
        "ADD #n0 :v0, #n1 :v1 DELETE #n2 :v2",
        {"#n0": "score", "#n1": "labels", "#n2": "counts"},
        {":v0": {"N": "1"}, ":v1": {"SS": ["x"]}, ":v2": {"NS": ["2"]}},
    )


def test_append_and_prepend() -> None:
    assert update(Thing.tags.append(["z"])) == (
        "SET #n0 = list_append(#n0, :v0)",
        {"#n0": "tags"},
        {":v0": {"L": [{"S": "z"}]}},
    )
    assert update(Thing.tags.prepend(["a"]))[0] == "SET #n0 = list_append(:v0, #n0)"


def test_set_if_not_exists() -> None:
    assert update(Thing.status.set_if_not_exists("new")) == (
        "SET #n0 = if_not_exists(#n0, :v0)",
        {"#n0": "status"},
        {":v0": {"S": "new"}},
    )


def test_arithmetic() -> None:
    assert update(Thing.score.set(Thing.score + 5)) == (
        "SET #n0 = #n0 + :v0",
        {"#n0": "score"},
        {":v0": {"N": "5"}},
    )
    assert update(Thing.score.set(Thing.size - 1))[0] == "SET #n0 = #n1 - :v0"
    assert update(Thing.score.set(10 - Thing.score))[0] == "SET #n0 = :v0 - #n0"
    assert update(Thing.nested.retries.set(Thing.nested.retries + 1))[0] == (
        "SET #n0.#n1 = #n0.#n1 + :v0"
    )


def test_clauses_come_in_dynamodb_order_whatever_the_call_order() -> None:
    text = update(
        Thing.counts.delete({1}),
        Thing.score.add(2),
        Thing.name.remove(),
        Thing.status.set("s"),
        Thing.size.set(3),
    )[0]
    assert text == "SET #n3 = :v2, #n4 = :v3 REMOVE #n2 ADD #n1 :v1 DELETE #n0 :v0"


def test_update_and_condition_share_one_renderer() -> None:
    r = Renderer()
    text = render_update([Thing.status.set("done")], r)
    condition = (Thing.status == "open").render(r)
    assert (text, condition) == ("SET #n0 = :v0", "#n0 = :v1")
    assert r.values == {":v0": {"S": "done"}, ":v1": {"S": "open"}}


def test_set_values_use_the_field_codec() -> None:
    moment = datetime(2024, 5, 6, tzinfo=UTC)
    assert update(Thing.date.set(moment))[2] == {":v0": {"S": "2024-05-06T00:00:00.000000Z"}}
    assert update(Thing.active.set(False))[2] == {":v0": {"N": "0"}}
    assert update(Thing.nested.set(Step(status="x")))[2] == {
        ":v0": {"M": {"status": {"S": "x"}, "retries": {"N": "0"}, "a.b": {"N": "0"}}}
    }


# ---------------------------------------------------------------- errors before any call


def test_add_on_a_nested_path_is_refused() -> None:
    with pytest.raises(dm.UsageError, match=r"Thing\.nested\.retries\.add\(\): .*top-level"):
        Thing.nested.retries.add(1)


def test_empty_begins_with_is_refused() -> None:
    with pytest.raises(dm.UsageError, match="needs a non-empty prefix"):
        Thing.name.begins_with("")


@pytest.mark.parametrize("count", [0, 101])
def test_is_in_with_zero_or_more_than_one_hundred_values_is_refused(count: int) -> None:
    with pytest.raises(dm.UsageError, match=rf"takes 1 to 100 values, got {count}"):
        Thing.score.is_in(range(count))


def test_and_or_not_keywords_on_conditions_are_refused() -> None:
    with pytest.raises(dm.UsageError, match=r"combine conditions with & \| ~"):
        _ = (Thing.score == 1) and (Thing.score == 2)
    with pytest.raises(dm.UsageError, match="no truth value"):
        _ = (Thing.score == 1) or (Thing.score == 2)
    with pytest.raises(dm.UsageError, match="no truth value"):
        _ = not (Thing.score == 1)  # noqa: SIM201


def test_combining_a_condition_with_a_non_condition_is_refused() -> None:
    with pytest.raises(dm.UsageError, match="takes a condition"):
        _ = (Thing.score == 1) & True


@pytest.mark.parametrize(
    "build",
    [
        lambda: Thing.score == "abc",
        lambda: Thing.score.set("x"),
        lambda: Thing.tags.append([1]),
        lambda: Thing.date >= "not a date",
        lambda: Thing.counts.add({"x"}),
        lambda: Thing.score + "x",
        lambda: Thing.steps["k"].status == 3,
    ],
)
def test_value_of_the_wrong_type_for_the_field_is_refused(build: Any) -> None:
    with pytest.raises(dm.UsageError, match="does not fit the field's type"):
        build()


def test_value_dynamodb_cannot_store_is_refused() -> None:
    with pytest.raises(dm.UsageError, match=r"Thing\.score: .*significant digits"):
        _ = Thing.score == 10**40 + 1
    with pytest.raises(dm.UsageError, match="an empty set cannot be used"):
        Thing.labels.add(set())


def test_invalid_attribute_type_and_size_operand_are_refused() -> None:
    with pytest.raises(dm.UsageError, match=r"is_type\('X'\)"):
        Thing.payload.is_type("X")
    with pytest.raises(dm.UsageError, match="compares with an int"):
        _ = Thing.tags.size() > "2"


def test_bad_path_elements_are_refused() -> None:
    with pytest.raises(dm.UsageError, match="list indexes start at 0"):
        _ = Thing.tags[-1]
    with pytest.raises(dm.UsageError, match="takes a map key"):
        _ = Thing.tags[True]
    with pytest.raises(dm.UsageError, match="Step has no field 'nope'"):
        _ = Thing.nested.nope


def test_set_none_on_a_field_that_cannot_be_none_is_refused() -> None:
    with pytest.raises(dm.UsageError, match="does not fit the field's type"):
        Thing.score.set(None)


def test_add_on_a_field_that_is_not_a_number_or_set_is_refused() -> None:
    with pytest.raises(dm.UsageError, match="ADD"):
        Thing.name.add("x")


def test_delete_on_a_field_that_is_not_a_set_is_refused() -> None:
    with pytest.raises(dm.UsageError, match="set"):
        Thing.tags.delete(["a"])


def test_a_field_path_is_made_once_per_class_and_stays_as_it_was() -> None:
    path = Thing.status
    assert Thing.status is path  # made on first use, then reused
    first = render(Thing.status == "a")
    built = (Thing.status == "b") & Thing.status.begins_with("c")  # never changes it
    inner = Thing.nested.status  # navigating makes another path
    assert inner is not path and inner.elements == ("nested", "status")
    assert render(built)[0] == "(#n0 = :v0) AND (begins_with(#n0, :v1))"
    assert render(Thing.status == "a") == first
    assert (path.root, path.elements) == ("status", ("status",))

    class Other(Model):
        class Meta:
            table = "others"
            registry = REGISTRY

        id: Annotated[str, HashKey]
        status: str = ""

    assert Other.status is not path and Other.status.model is Other
