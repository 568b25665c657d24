"""Table operations through a real local server: point-in-time recovery, backups, streams,
TTL state, and check_tables comparing live tables with the models.

dynalite has no point-in-time recovery, backups, streams or UpdateTimeToLive: those
tests run on moto, and a test per operation shows the clear error dynalite gives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from pydantic import Field
from servers import ServerHandle

import dynamodm as dm

REG = dm.Registry("table-ops-tests")
LIVE = dm.Registry("table-ops-live")  # the same tables, declared as they were deployed

NO_PITR = "dynalite has no point-in-time recovery (UpdateContinuousBackups)"
NO_BACKUPS = "dynalite has no on-demand backups (CreateBackup, ListBackups)"
NO_STREAMS = "dynalite has no DynamoDB Streams"
NO_TTL = "dynalite has no UpdateTimeToLive: TTL stays off"


class Account(dm.Model):
    class Meta:
        table = "accounts"
        registry = REG
        indexes = (
            dm.GlobalIndex("EmailIndex", hash_key="email"),
            dm.GlobalIndex("PlanIndex", hash_key="plan", projection="KEYS_ONLY"),
        )

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    email: str = ""
    plan: str = "free"


class Ledger(dm.Model):
    class Meta:
        table = "ledger"
        registry = REG
        indexes = (dm.LocalIndex("ByAmount", range_key="amount"),)

    account: Annotated[str, dm.HashKey]
    at: Annotated[datetime, dm.RangeKey]
    amount: int = 0


class Device(dm.Model):
    class Meta:
        table = "devices"
        registry = REG

    serial: Annotated[str, dm.HashKey]


class Token(dm.Model):
    class Meta:
        table = "tokens"
        registry = REG
        stream = "NEW_IMAGE"

    value: Annotated[str, dm.HashKey]
    expires_at: Annotated[datetime | None, dm.TTL] = Field(default=None, alias="expiresAt")


class Member(dm.Model):
    class Meta:
        table = "members"
        registry = REG
        unique = ("email",)

    id: Annotated[str, dm.HashKey]
    email: str


# How the live tables were deployed, before the models above changed.


class LiveAccount(dm.Model):
    class Meta:
        table = "accounts"
        registry = LIVE
        indexes = (dm.GlobalIndex("PlanIndex", hash_key="plan"),)  # ALL; no EmailIndex

    id: Annotated[str, dm.HashKey]
    plan: str = "free"


class LiveLedger(dm.Model):
    class Meta:
        table = "ledger"
        registry = LIVE

    account: Annotated[str, dm.HashKey]
    at: Annotated[int, dm.RangeKey]  # epoch numbers then, no local index


class LiveDevice(dm.Model):
    class Meta:
        table = "devices"
        registry = LIVE

    pk: Annotated[str, dm.HashKey]  # keyed on another attribute


class LiveToken(dm.Model):
    class Meta:
        table = "tokens"
        registry = LIVE

    value: Annotated[str, dm.HashKey]


class LiveMember(dm.Model):
    class Meta:
        table = "members"
        registry = LIVE

    id: Annotated[str, dm.HashKey]


def on(server: ServerHandle, name: str, reason: str) -> None:
    """Run the rest of the test on this server only (it shows that server's behaviour)."""
    if server.name != name:
        pytest.skip(reason)


# ---------------------------------------------------------------- point-in-time recovery


@pytest.mark.moto_only(reason=NO_PITR)
async def test_point_in_time_recovery_turns_on_and_off(db: dm.Session) -> None:
    await db.create_tables(Device)
    assert await db.enable_point_in_time_recovery(Device) is True
    raw = await db.client.describe_continuous_backups(TableName=db.table_name(Device))
    status = raw["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert status["PointInTimeRecoveryStatus"] == "ENABLED"
    assert await db.enable_point_in_time_recovery(Device) is True  # again: no change
    assert await db.enable_point_in_time_recovery(Device, enabled=False) is False
    raw = await db.client.describe_continuous_backups(TableName=db.table_name(Device))
    status = raw["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert status["PointInTimeRecoveryStatus"] == "DISABLED"


@pytest.mark.moto_only(reason=NO_PITR)
async def test_point_in_time_recovery_of_a_missing_table_is_table_not_found(
    db: dm.Session,
) -> None:
    with pytest.raises(dm.TableNotFound, match=db.table_name(Device)) as caught:
        await db.enable_point_in_time_recovery(Device)
    assert caught.value.code == "TableNotFoundException"


async def test_point_in_time_recovery_on_dynalite_is_a_clear_error(
    db: dm.Session, server: ServerHandle
) -> None:
    on(server, "dynalite", "moto supports point-in-time recovery")
    await db.create_tables(Device)
    with pytest.raises(
        dm.ConfigurationError, match="does not support UpdateContinuousBackups"
    ) as caught:
        await db.enable_point_in_time_recovery(Device)
    assert caught.value.code == "UnknownOperationException"


# ---------------------------------------------------------------- backups


@pytest.mark.moto_only(reason=NO_BACKUPS)
async def test_backups_are_created_and_listed(db: dm.Session) -> None:
    await db.create_tables(Device, Account)
    await Device(serial="d-1").save()
    before = datetime.now(UTC).replace(microsecond=0)
    first = await db.create_backup(Device, "before-migration")
    second = await db.create_backup(Device, "nightly.2025-12-01")
    await db.create_backup(Account, "accounts-only")

    assert first.name == "before-migration" and first.table == db.table_name(Device)
    assert first.arn.startswith("arn:aws:dynamodb:") and first.arn != second.arn
    assert first.status in ("CREATING", "AVAILABLE") and first.kind == "USER"
    assert first.created_at is not None and first.created_at >= before.replace(second=0)
    assert first.created_at.tzinfo is not None

    listed = await db.list_backups(Device)
    assert sorted(b.name for b in listed) == ["before-migration", "nightly.2025-12-01"]
    assert {b.arn for b in listed} == {first.arn, second.arn}
    assert all(b.table == db.table_name(Device) for b in listed)


@pytest.mark.moto_only(reason=NO_BACKUPS)
async def test_a_table_without_backups_lists_none(db: dm.Session) -> None:
    await db.create_tables(Device)
    assert await db.list_backups(Device) == []


@pytest.mark.moto_only(reason=NO_BACKUPS)
async def test_backup_of_a_missing_table_is_table_not_found(db: dm.Session) -> None:
    with pytest.raises(dm.TableNotFound, match=db.table_name(Device)):
        await db.create_backup(Device, "nothing-to-save")


@pytest.mark.parametrize("name", ["ab", "has space", "x" * 256, ""])
async def test_backup_names_are_checked_before_sending(db: dm.Session, name: str) -> None:
    with pytest.raises(dm.UsageError, match="backup name"):
        await db.create_backup(Device, name)


async def test_backups_on_dynalite_are_a_clear_error(db: dm.Session, server: ServerHandle) -> None:
    on(server, "dynalite", "moto supports on-demand backups")
    await db.create_tables(Device)
    with pytest.raises(dm.ConfigurationError, match="does not support CreateBackup"):
        await db.create_backup(Device, "nightly")
    with pytest.raises(dm.ConfigurationError, match="does not support ListBackups"):
        await db.list_backups(Device)


# ---------------------------------------------------------------- streams


@pytest.mark.moto_only(reason=NO_STREAMS)
async def test_enable_stream_turns_on_the_stream_of_an_existing_table(db: dm.Session) -> None:
    await db.create_tables(Device)
    assert (await db.describe_table(Device)).stream is None
    arn = await db.enable_stream(Device, view="KEYS_ONLY")
    assert arn is not None and arn.startswith("arn:aws:dynamodb:")
    assert f"table/{db.table_name(Device)}/stream/" in arn
    assert (await db.describe_table(Device)).stream == "KEYS_ONLY"
    assert await db.enable_stream(Device, view="KEYS_ONLY") == arn  # already on: no change


@pytest.mark.moto_only(reason=NO_STREAMS)
async def test_enable_stream_uses_the_view_of_meta_stream(db: dm.Session) -> None:
    await db.create_tables(LiveToken)  # the table as deployed, without a stream
    await db.enable_stream(Token)
    assert (await db.describe_table(Token)).stream == "NEW_IMAGE"


@pytest.mark.moto_only(reason=NO_STREAMS)
async def test_enable_stream_refuses_to_change_the_view(db: dm.Session) -> None:
    await db.create_tables(Token)
    with pytest.raises(dm.ConfigurationError, match=r"already streams NEW_IMAGE.*turn it off"):
        await db.enable_stream(Token, view="KEYS_ONLY")
    assert (await db.describe_table(Token)).stream == "NEW_IMAGE"


@pytest.mark.moto_only(reason=NO_STREAMS)
async def test_enable_stream_turns_the_stream_off(db: dm.Session) -> None:
    # moto 5.2.5 cannot write to a table whose stream was turned off (500 on PutItem),
    # nor turn a stream on again: this test writes nothing afterwards.
    await db.create_tables(Token)
    assert await db.enable_stream(Token, enabled=False) is None
    assert (await db.describe_table(Token)).stream is None
    assert await db.enable_stream(Token, enabled=False) is None  # already off


async def test_enable_stream_refuses_an_unknown_view(db: dm.Session) -> None:
    with pytest.raises(dm.UsageError, match="NEW_AND_OLD_IMAGES"):
        await db.enable_stream(Device, view="EVERYTHING")  # type: ignore[arg-type]


async def test_streams_on_dynalite_are_a_clear_error(db: dm.Session, server: ServerHandle) -> None:
    on(server, "dynalite", "moto supports streams")
    await db.create_tables(Device)
    with pytest.raises(dm.ConfigurationError, match="dynalite have no streams"):
        await db.enable_stream(Device)


# ---------------------------------------------------------------- TTL


@pytest.mark.moto_only(reason=NO_TTL)
async def test_describe_ttl_reports_the_attribute_create_tables_turned_on(
    db: dm.Session,
) -> None:
    await db.create_tables(Token)
    ttl = await db.describe_ttl(Token)
    assert ttl == dm.TimeToLive("ENABLED", "expiresAt") and ttl.enabled


async def test_describe_ttl_of_a_table_without_ttl(db: dm.Session) -> None:
    await db.create_tables(Device)
    ttl = await db.describe_ttl(Device)
    assert ttl.status == "DISABLED" and not ttl.enabled and ttl.attribute is None


async def test_describe_ttl_of_a_missing_table_is_table_not_found(db: dm.Session) -> None:
    with pytest.raises(dm.TableNotFound):
        await db.describe_ttl(Device)


# ---------------------------------------------------------------- check_tables


async def test_check_tables_passes_on_tables_create_tables_made(db: dm.Session) -> None:
    models = (Account, Ledger, Device, Member)
    await db.create_tables(*models)
    await db.check_tables(*models)


@pytest.mark.moto_only(reason=f"{NO_TTL}; {NO_STREAMS}")
async def test_check_tables_passes_with_ttl_and_stream(db: dm.Session) -> None:
    await db.create_tables(Token)
    await db.check_tables(Token)


async def test_check_tables_reports_every_difference_in_one_error(db: dm.Session) -> None:
    await db.create_tables(LiveAccount, LiveLedger, LiveDevice)  # no table for members
    with pytest.raises(dm.ConfigurationError) as caught:
        await db.check_tables(Account, Ledger, Device, Member)
    differences = caught.value.differences
    found = {(d.table.removeprefix(db.table_prefix), d.kind) for d in differences}
    assert found == {
        ("accounts", "missing_index"),  # EmailIndex
        ("accounts", "index"),  # PlanIndex projects ALL, the model KEYS_ONLY
        ("ledger", "attribute_type"),  # range key "at" is N, the model stores S
        ("ledger", "missing_index"),  # ByAmount, a local index
        ("devices", "key_schema"),  # keyed on pk, the model on serial
        ("members", "missing_table"),
        ("dynamodm-unique", "missing_table"),  # Member's unique guards
    }
    message = str(caught.value)
    assert message.startswith("7 difference(s) between the live tables and the models")
    for difference in differences:
        assert difference.message in message
        assert str(difference) == difference.message
    by_kind = {d.kind: d.message for d in differences}
    missing = " ".join(d.message for d in differences if d.kind == "missing_index")
    assert "'EmailIndex'" in missing and "UpdateTable" in missing
    assert "'ByAmount'" in missing and "a local index exists only from the table's" in missing
    assert "serial HASH" in by_kind["key_schema"] and "pk HASH" in by_kind["key_schema"]
    assert "KEYS_ONLY" in by_kind["index"] and "ALL" in by_kind["index"]
    assert "create_tables" in by_kind["missing_table"]


async def test_check_tables_names_the_models_of_each_table(db: dm.Session) -> None:
    with pytest.raises(dm.ConfigurationError, match=r"'.*devices' \(Device\): does not exist"):
        await db.check_tables(Device)


async def test_check_tables_ignores_the_kinds_asked(db: dm.Session) -> None:
    await db.create_tables(LiveAccount)
    await db.check_tables(Account, ignore={"missing_index", "index"})
    with pytest.raises(dm.ConfigurationError) as caught:
        await db.check_tables(Account, ignore={"index"})
    assert [d.kind for d in caught.value.differences] == ["missing_index"]


async def test_check_tables_refuses_unknown_kinds(db: dm.Session) -> None:
    with pytest.raises(dm.UsageError, match="missing_table"):
        await db.check_tables(Device, ignore={"colour"})


@pytest.mark.moto_only(reason=f"{NO_TTL}; {NO_STREAMS}")
async def test_check_tables_reports_ttl_off_and_no_stream(db: dm.Session) -> None:
    await db.create_tables(LiveToken)
    with pytest.raises(dm.ConfigurationError) as caught:
        await db.check_tables(Token)
    kinds = sorted(d.kind for d in caught.value.differences)
    assert kinds == ["stream", "ttl"]
    messages = " ".join(d.message for d in caught.value.differences)
    assert "'expiresAt'" in messages and "NEW_IMAGE" in messages
    await db.create_tables(Token)  # turns TTL and the stream on for the existing table
    await db.check_tables(Token)


async def test_check_tables_on_dynalite_reports_the_ttl_and_stream_it_lacks(
    db: dm.Session, server: ServerHandle
) -> None:
    on(server, "dynalite", "moto has TTL and streams")
    await db.create_tables(Token)
    with pytest.raises(dm.ConfigurationError) as caught:
        await db.check_tables(Token)
    assert sorted(d.kind for d in caught.value.differences) == ["stream", "ttl"]
    await db.check_tables(Token, ignore=("ttl", "stream"))


async def test_table_operations_in_a_dry_run_are_a_clear_error(db: dm.Session) -> None:
    await db.create_tables(Device)
    async with dm.dry_run() as captured:
        with pytest.raises(dm.UsageError, match="dry_run"):
            await db.check_tables(Device)
        with pytest.raises(dm.UsageError, match="dry_run"):
            await db.delete_tables(Device)
    assert [r.operation for r in captured.requests] == [
        "DescribeTable",
        "DeleteTable",
        "DescribeTable",
    ]
    await db.check_tables(Device)  # nothing was deleted


async def test_other_configuration_errors_have_no_differences() -> None:
    error: Any = dm.ConfigurationError("no session")
    assert error.differences == ()
