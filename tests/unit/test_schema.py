"""Declarations: mistakes fail at class creation; good ones resolve into a TableSchema."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, LocalIndex, Model, RangeKey
from dynamodm.expressions import Renderer

REGISTRY = dm.Registry("unit-schema")


_META_SETTINGS = frozenset({"table", "indexes", "unique", "billing", "stream"})


def declare(name: str, **declarations: Any) -> type[Model]:
    """A model class built at run time, so that test parameters can be field types.

    Meta settings are passed by name; a field is ``name=annotation`` or
    ``name=(annotation, default)``. The table is "things" unless given.
    """
    meta: dict[str, Any] = {"table": "things", "registry": REGISTRY}
    namespace: dict[str, Any] = {"__module__": __name__, "__annotations__": {}}
    for key, value in declarations.items():
        if key in _META_SETTINGS:
            meta[key] = value
        elif isinstance(value, tuple):
            namespace["__annotations__"][key], namespace[key] = value
        else:
            namespace["__annotations__"][key] = value
    namespace["Meta"] = type("Meta", (), meta)
    return type(name, (Model,), namespace)


def rendered(path: Any) -> tuple[str, dict[str, str]]:
    r = Renderer()
    return path.render(r), r.attribute_names()


class Address(BaseModel):
    city: str = ""
    zip_code: str = Field(default="", alias="zip-code")


class User(Model):
    class Meta:
        table = "users"
        registry = REGISTRY
        indexes = (
            GlobalIndex("EmailIndex", hash_key="email"),
            GlobalIndex(
                "RoleIndex", hash_key="role", range_key="created_at", projection="KEYS_ONLY"
            ),
        )
        unique = ("email",)

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    email: str = ""
    role: Literal["student", "teacher", "admin"] = "student"
    logins: int = 0
    tags: list[str] = []
    mapping: dict[str, int] = {}
    address: Address = Address()
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")
    version: Annotated[int, dm.Version]
    expires_at: Annotated[datetime | None, dm.TTL] = None


class Attendance(Model):
    class Meta:
        table = "attendance"
        registry = REGISTRY
        indexes = (LocalIndex("ByStatus", range_key="status", projection=["note"]),)

    student: Annotated[str, HashKey]
    at: Annotated[datetime, RangeKey]
    status: str = "present"
    note: str = ""


# ---------------------------------------------------------------- declaration mistakes


def test_model_without_hash_key_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^NoHash: no field is marked HashKey"):

        class NoHash(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            id: str


def test_model_with_two_hash_keys_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^TwoHash: 2 fields are marked HashKey \(a, b\)"):

        class TwoHash(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey]
            b: Annotated[str, HashKey]


def test_model_with_two_range_keys_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^TwoRange: 2 fields are marked RangeKey \(b, c\)"):

        class TwoRange(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey]
            b: Annotated[str, RangeKey]
            c: Annotated[int, RangeKey]


def test_field_cannot_be_hash_and_range_key() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^Both: field 'a' cannot be both HashKey and Range"):

        class Both(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey, RangeKey]


@pytest.mark.parametrize(
    ("index", "role"),
    [
        (GlobalIndex("ByNope", hash_key="nope"), "hash key of index 'ByNope'"),
        (GlobalIndex("ByNope", hash_key="a", range_key="nope"), "range key of index 'ByNope'"),
        (LocalIndex("ByNope", range_key="nope"), "range key of index 'ByNope'"),
    ],
)
def test_index_on_unknown_field_is_refused(index: GlobalIndex | LocalIndex, role: str) -> None:
    with pytest.raises(dm.InvalidModel, match=rf"^Indexed: {role} names unknown field 'nope'"):

        class Indexed(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                indexes = (index,)

            a: Annotated[str, HashKey]
            b: Annotated[str, RangeKey]


@pytest.mark.parametrize(
    "annotation", [list[str], dict[str, int], set[str], Any, int | str, Address, timedelta]
)
def test_table_key_of_a_type_dynamodb_cannot_key_on_is_refused(annotation: Any) -> None:
    with pytest.raises(
        dm.InvalidModel, match=r"^BadKey: field 'a' is used as the table's hash key, .*change"
    ):
        declare("BadKey", a=Annotated[annotation, HashKey])


@pytest.mark.parametrize("annotation", [list[int], dict[str, str], Address])
def test_index_key_of_a_type_dynamodb_cannot_key_on_is_refused(annotation: Any) -> None:
    with pytest.raises(
        dm.InvalidModel, match=r"^BadIndexKey: field 'b' is used as hash key of index 'ByB'"
    ):
        declare(
            "BadIndexKey",
            indexes=(GlobalIndex("ByB", hash_key="b"),),
            a=Annotated[str, HashKey],
            b=annotation,
        )


class Shade(enum.StrEnum):
    DARK = "dark"


@pytest.mark.parametrize(
    ("annotation", "key_type"),
    [
        (str, "S"),
        (int, "N"),
        (float, "N"),
        (Decimal, "N"),
        (bool, "N"),
        (bytes, "B"),
        (datetime, "S"),
        (date, "S"),
        (uuid.UUID, "S"),
        (Shade, "S"),
        (Literal["x", "y"], "S"),
        (Literal[1, 2], "N"),
    ],
)
def test_keys_of_scalar_types_resolve_to_their_attribute_type(
    annotation: Any, key_type: str
) -> None:
    keyed = declare(
        "Keyed",
        indexes=(GlobalIndex("ByB", hash_key="b"),),
        a=Annotated[annotation, HashKey],
        b=(annotation | None, None),
    )
    schema = keyed.__dm_schema__
    assert schema.hash_key.type == key_type
    assert schema.indexes["ByB"].hash_key.type == key_type


def test_optional_table_key_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^OptionalKey: key field 'b' cannot be optional"):

        class OptionalKey(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey]
            b: Annotated[str | None, RangeKey] = None


def test_optional_index_key_makes_a_sparse_index() -> None:
    class Sparse(Model):
        class Meta:
            table = "things"
            registry = REGISTRY
            indexes = (GlobalIndex("ByB", hash_key="b"),)

        a: Annotated[str, HashKey]
        b: str | None = None

    assert Sparse.__dm_schema__.indexes["ByB"].hash_key.attribute == "b"
    assert "b" not in Sparse.__dm_codec__.encode_fields(Sparse(a="1"))


def test_local_index_on_a_table_without_range_key_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^NoRange: index 'ByB' is a LocalIndex, .*RangeKey"):

        class NoRange(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                indexes = (LocalIndex("ByB", range_key="b"),)

            a: Annotated[str, HashKey]
            b: str = ""


def _gsis(count: int) -> tuple[GlobalIndex, ...]:
    return tuple(GlobalIndex(f"Index{n:02d}", hash_key="b") for n in range(count))


def test_twenty_global_indexes_are_accepted() -> None:
    class Twenty(Model):
        class Meta:
            table = "things"
            registry = REGISTRY
            indexes = _gsis(20)

        a: Annotated[str, HashKey]
        b: str = ""

    assert len(Twenty.__dm_schema__.indexes) == 20


def test_more_than_twenty_global_indexes_are_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^TooMany: 21 global indexes declared; .*20"):

        class TooMany(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                indexes = _gsis(21)

            a: Annotated[str, HashKey]
            b: str = ""


def test_more_than_five_local_indexes_are_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^TooManyLocal: 6 local indexes; .*5"):

        class TooManyLocal(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                indexes = tuple(LocalIndex(f"Local{n}", range_key="c") for n in range(6))

            a: Annotated[str, HashKey]
            b: Annotated[str, RangeKey]
            c: str = ""


def test_duplicate_index_names_are_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^Twice: index 'ByB' is declared twice"):

        class Twice(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                indexes = (GlobalIndex("ByB", hash_key="b"), GlobalIndex("ByB", hash_key="a"))

            a: Annotated[str, HashKey]
            b: str = ""


@pytest.mark.parametrize("name", ["ab", "By B", "x" * 256, "Índice"])
def test_index_name_dynamodb_refuses_is_refused(name: str) -> None:
    with pytest.raises(dm.InvalidModel, match=r"^BadName: index .*3 to 255 characters"):

        class BadName(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                indexes = (GlobalIndex(name, hash_key="b"),)

            a: Annotated[str, HashKey]
            b: str = ""


@pytest.mark.parametrize("field_name", ["session", "condition"])
def test_reserved_field_names_are_refused(field_name: str) -> None:
    with pytest.raises(dm.InvalidModel, match=rf"^Reserved: field '{field_name}' is reserved"):
        declare("Reserved", a=Annotated[str, HashKey], **{field_name: (str, "")})


def test_reserved_name_is_fine_as_an_alias() -> None:
    class AliasedSession(Model):
        class Meta:
            table = "things"
            registry = REGISTRY

        a: Annotated[str, HashKey]
        session_name: str = Field(default="", alias="session")

    item = AliasedSession.__dm_codec__.encode_fields(AliasedSession(a="1", session_name="s"))
    assert item["session"] == {"S": "s"}


def test_missing_meta_table_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^NoTable: Meta.table is missing"):

        class NoTable(Model):
            class Meta:
                registry = REGISTRY

            a: Annotated[str, HashKey]


@pytest.mark.parametrize("table", ["", "ab", "my table", "x" * 256])
def test_table_name_dynamodb_refuses_is_refused(table: str) -> None:
    with pytest.raises(dm.InvalidModel, match=r"^BadTable: Meta.table"):
        declare("BadTable", table=table, a=Annotated[str, HashKey])


def test_unique_on_unknown_field_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^Uniq: Meta.unique names unknown field 'mail'"):

        class Uniq(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                unique = ("mail",)

            a: Annotated[str, HashKey]
            email: str = ""


def test_unique_on_the_key_field_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^UniqKey: Meta.unique names the key field 'a'"):

        class UniqKey(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                unique = "a"

            a: Annotated[str, HashKey]


def test_version_field_that_is_not_an_int_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^Ver\.version: a Version field must be an int"):

        class Ver(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey]
            version: Annotated[str, dm.Version] = "0"


@pytest.mark.parametrize("marker", [dm.CreatedAt, dm.UpdatedAt])
def test_timestamp_field_that_is_not_a_datetime_is_refused(marker: Any) -> None:
    with pytest.raises(dm.InvalidModel, match=r"^Stamp\.stamp: CreatedAt/UpdatedAt .* datetime"):
        declare("Stamp", a=Annotated[str, HashKey], stamp=Annotated[date, marker])


def test_ttl_field_of_a_non_time_type_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^Ttl\.expires: a TTL field must be a datetime"):

        class Ttl(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey]
            expires: Annotated[str, dm.TTL] = ""


def test_two_ttl_fields_are_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^TwoTtl: 2 fields are marked TTL \(x, y\)"):

        class TwoTtl(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey]
            x: Annotated[datetime | None, dm.TTL] = None
            y: Annotated[datetime | None, dm.TTL] = None


def test_two_fields_stored_as_one_attribute_are_refused() -> None:
    with pytest.raises(
        dm.InvalidModel, match=r"^Clash: fields 'x' and 'y' are both stored as attribute 'y'"
    ):

        class Clash(Model):
            class Meta:
                table = "things"
                registry = REGISTRY

            a: Annotated[str, HashKey]
            x: int = Field(default=0, alias="y")
            y: int = 0


def test_projection_of_unknown_field_is_refused() -> None:
    with pytest.raises(dm.InvalidModel, match=r"^Proj: index 'ByB': projection names unknown"):

        class Proj(Model):
            class Meta:
                table = "things"
                registry = REGISTRY
                indexes = (GlobalIndex("ByB", hash_key="b", projection=["nope"]),)

            a: Annotated[str, HashKey]
            b: str = ""


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("billing", "ON_DEMAND", "Meta.billing must be"),
        ("stream", "NEW", "Meta.stream must be"),
        ("indexes", ("ByB",), "Meta.indexes holds 'ByB'"),
    ],
)
def test_bad_meta_settings_are_refused(setting: str, value: Any, message: str) -> None:
    with pytest.raises(dm.InvalidModel, match=rf"^Settings: {message}"):
        declare("Settings", **{setting: value}, a=Annotated[str, HashKey])


# ---------------------------------------------------------------- resolved schema


def test_schema_resolves_keys_indexes_and_markers_to_wire_names() -> None:
    schema = User.__dm_schema__
    assert schema.model_name == "User"
    assert schema.table == "users"
    assert (schema.hash_key.field, schema.hash_key.attribute, schema.hash_key.type) == (
        "id",
        "id",
        "S",
    )
    assert schema.range_key is None
    role_index = schema.indexes["RoleIndex"]
    assert role_index.kind == "GSI"
    assert role_index.range_key is not None
    assert (role_index.range_key.field, role_index.range_key.attribute) == (
        "created_at",
        "createdAt",
    )
    assert role_index.projection == "KEYS_ONLY"
    assert schema.indexes["EmailIndex"].projection == "ALL"
    assert schema.unique == ("email",)
    assert schema.billing == dm.OnDemand()
    assert (schema.version, schema.created_at, schema.updated_at) == (
        "version",
        "created_at",
        "updated_at",
    )
    assert (schema.ttl, schema.ttl_attribute) == ("expires_at", "expires_at")


def test_local_index_shares_the_table_hash_key_and_projects_included_fields() -> None:
    schema = Attendance.__dm_schema__
    local = schema.indexes["ByStatus"]
    assert local.kind == "LSI"
    assert local.hash_key == schema.hash_key
    assert local.range_key is not None
    assert local.range_key.attribute == "status"
    assert (local.projection, local.include) == ("INCLUDE", ("note",))
    assert schema.key_fields == ("student", "at")


def test_created_and_updated_at_default_to_utc_now() -> None:
    before = datetime.now(UTC)
    user = User()
    after = datetime.now(UTC)
    assert before <= user.created_at <= after
    assert before <= user.updated_at <= after
    assert user.created_at.utcoffset() == timedelta(0)


def test_version_defaults_to_zero() -> None:
    assert User().version == 0
    assert User.model_fields["version"].is_required() is False


def test_models_register_in_their_meta_registry() -> None:
    assert User in REGISTRY
    assert Attendance in REGISTRY
    assert User not in dm.registry
    assert REGISTRY.get("User") is User
    assert REGISTRY.by_table("attendance") == [Attendance]
    assert User.__dm_schema__.registry is REGISTRY


def test_models_without_meta_registry_register_in_the_default_registry() -> None:
    class Defaulted(Model):
        class Meta:
            table = "defaulted"

        a: Annotated[str, HashKey]

    try:
        assert Defaulted in dm.registry
        assert Defaulted.__dm_schema__.registry is dm.registry
    finally:
        dm.registry.unregister(Defaulted)
    assert Defaulted not in dm.registry


def test_first_model_registers_in_its_empty_private_registry() -> None:
    private = dm.Registry("fresh")

    class First(Model):
        class Meta:
            table = "first"
            registry = private

        a: Annotated[str, HashKey]

    try:
        assert First in private
        assert First not in dm.registry
    finally:
        dm.registry.unregister(First)


def test_model_declared_in_a_function_resolves_its_local_annotations() -> None:
    class Local(BaseModel):
        x: int = 0

    class Holder(Model):
        class Meta:
            table = "holders"
            registry = REGISTRY

        id: Annotated[str, HashKey]
        local: Local = Local()

    assert Holder.__pydantic_complete__
    assert Holder(id="h").local == Local()


# ---------------------------------------------------------------- inheritance


class Stamped(Model):
    class Meta:
        abstract = True
        registry = REGISTRY

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    created_at: Annotated[datetime, dm.CreatedAt]


class Note(Stamped):
    class Meta:
        table = "notes"
        registry = REGISTRY
        indexes = (GlobalIndex("ByText", hash_key="text"),)

    text: str = ""


class DraftNote(Note):
    draft: bool = True


class ArchivedNote(Note):
    class Meta:
        table = "archived-notes"
        registry = REGISTRY


def test_abstract_model_has_no_table_and_is_not_registered() -> None:
    assert Stamped.__dm_schema__ is None
    assert Stamped not in REGISTRY


def test_fields_of_an_abstract_model_are_inherited() -> None:
    assert list(Note.model_fields) == ["id", "created_at", "text"]
    assert Note.__dm_schema__.hash_key.field == "id"
    assert Note.__dm_schema__.created_at == "created_at"
    assert isinstance(Note().created_at, datetime)
    assert Note in REGISTRY


def test_meta_is_not_inherited_so_a_subclass_without_meta_has_no_table() -> None:
    assert DraftNote.__dm_schema__ is None
    assert DraftNote not in REGISTRY
    assert list(DraftNote.model_fields) == ["id", "created_at", "text", "draft"]


def test_subclass_with_its_own_meta_does_not_inherit_the_parents_indexes() -> None:
    assert ArchivedNote.__dm_schema__.table == "archived-notes"
    assert ArchivedNote.__dm_schema__.indexes == {}
    assert Note.__dm_schema__.table == "notes"


# ---------------------------------------------------------------- paths and validation


def test_class_attribute_of_a_field_is_a_path() -> None:
    assert isinstance(User.email, dm.Path)
    assert rendered(User.email) == ("#n0", {"#n0": "email"})
    assert rendered(User.created_at) == ("#n0", {"#n0": "createdAt"})


def test_nested_list_and_map_paths() -> None:
    assert rendered(User.address.zip_code) == ("#n0.#n1", {"#n0": "address", "#n1": "zip-code"})
    assert rendered(User.tags[0]) == ("#n0[0]", {"#n0": "tags"})
    assert rendered(User.mapping["k"]) == ("#n0.#n1", {"#n0": "mapping", "#n1": "k"})


def test_path_to_an_unknown_nested_field_is_a_usage_error() -> None:
    with pytest.raises(dm.UsageError, match="Address has no field 'street'"):
        _ = User.address.street


def test_attr_returns_the_same_path() -> None:
    path = dm.attr(User.logins)
    assert isinstance(path, dm.Path)
    assert (path.model, path.elements) == (User, ("logins",))
    assert rendered(path) == rendered(User.logins)


def test_attr_of_a_plain_value_is_a_usage_error() -> None:
    with pytest.raises(dm.UsageError, match=r"dm.attr\(\) takes a model attribute path"):
        dm.attr(3)


def test_path_has_no_truth_value() -> None:
    with pytest.raises(dm.UsageError, match="is an attribute path, not a value"):
        bool(User.email)


def test_assignment_is_validated() -> None:
    user = User()
    with pytest.raises(ValidationError):
        user.role = 123  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        user.role = "owner"  # type: ignore[assignment]
    user.role = "admin"
    assert user.role == "admin"


def test_fields_validate_by_name_and_by_alias() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    assert User(created_at=moment).created_at == moment
    assert User.model_validate({"createdAt": moment}).created_at == moment
