"""Transactions through a real local server: all or nothing, reasons mapped back to the
user's actions, limits checked before sending, one client request token per commit."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from faultproxy import FaultProxy
from pydantic import Field

import dynamodm as dm

Sent = list[tuple[str, dict[str, Any]]]
REG = dm.Registry("transaction-tests")
NO_TRANSACTIONS = "dynalite has no transactions"
pytestmark = pytest.mark.moto_only(reason=NO_TRANSACTIONS)


class Account(dm.Model):
    class Meta:
        table = "accounts"
        registry = REG

    id: Annotated[str, dm.HashKey]
    owner: str = ""
    balance: int = 0
    version: Annotated[int, dm.Version] = 0


class Entry(dm.Model):
    class Meta:
        table = "entries"
        registry = REG

    account: Annotated[str, dm.HashKey]
    n: Annotated[int, dm.RangeKey]
    amount: int = 0
    note: str = ""


class Profile(dm.Model):
    class Meta:
        table = "profiles"
        registry = REG
        unique = ("email",)

    id: Annotated[str, dm.HashKey] = Field(default_factory=dm.new_id)
    email: str
    name: str = ""


@pytest.fixture(autouse=True)
async def _tables(db: dm.Session) -> None:
    await db.create_tables(Account, Entry, Profile)


def transact_writes(sent: Sent) -> list[dict[str, Any]]:
    return [request for operation, request in sent if operation == "TransactWriteItems"]


async def raw(db: dm.Session, model: type[dm.Model], **key: Any) -> dict[str, Any] | None:
    encoded = db.key_of(model, *key.values())
    response = await db.client.get_item(
        TableName=db.table_name(model), Key=encoded, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


# ---------------------------------------------------------------- commit


async def test_transaction_commits_every_action_on_exit(db: dm.Session, sent: Sent) -> None:
    payer = await Account.create(id="payer", balance=100)
    await Account.create(id="bank", owner="central")
    old = Entry(account="payer", n=0, amount=1)
    await old.save()
    sent.clear()

    async with dm.transaction() as tx:
        tx.create(Account(id="payee"))
        tx.update(payer, dm.attr(Account.balance).add(-30), owner="ada")
        tx.put(Entry(account="payer", n=1, amount=-30))
        tx.delete(old)
        tx.check(Account, "bank", condition=Account.owner == "central")
        assert len(tx) == 5 and sent == []  # nothing leaves before the block ends

    (request,) = transact_writes(sent)
    kinds = [next(iter(action)) for action in request["TransactItems"]]
    assert kinds == ["Put", "Update", "Put", "Delete", "ConditionCheck"]
    assert (await Account.get("payee")).version == 1
    stored = await Account.get("payer")
    assert (stored.balance, stored.owner, stored.version) == (70, "ada", 2)
    assert (payer.owner, payer.version) == ("ada", 2)
    assert (await Entry.get("payer", 1)).amount == -30
    assert await Entry.get_or_none("payer", 0) is None


async def test_conditions_join_every_action(db: dm.Session) -> None:
    account = await Account.create(id="a", balance=10)
    entry = Entry(account="a", n=1, amount=5)
    await entry.save()
    await Account.create(id="bank", owner="central")

    async with dm.transaction() as tx:
        tx.update(account, condition=Account.balance >= 10, balance=0)
        tx.put(Entry(account="a", n=2), condition=dm.attr(Entry.n).not_exists())
        tx.delete(entry, condition=Entry.amount == 5)
        tx.check(Account, "bank", condition=dm.attr(Account.owner).begins_with("cen"))

    assert (await Account.get("a")).balance == 0
    assert await Entry.get_or_none("a", 1) is None
    assert await Entry.get_or_none("a", 2) is not None


async def test_a_failed_condition_writes_nothing(db: dm.Session) -> None:
    account = await Account.create(id="a", balance=10)
    before = await raw(db, Account, id="a")

    with pytest.raises(dm.TransactionCanceled) as caught:
        async with dm.transaction() as tx:
            tx.update(account, balance=99)
            tx.put(Entry(account="a", n=1))
            tx.check(Account, "a-missing", condition=dm.attr(Account.id).exists())

    assert [r.code for r in caught.value.reasons] == ["None", "None", "ConditionalCheckFailed"]
    assert await raw(db, Account, id="a") == before
    assert await raw(db, Entry, account="a", n=1) is None
    assert account.balance == 10 and account.version == 1  # the instance is untouched


async def test_nothing_is_sent_when_the_block_raises(db: dm.Session, sent: Sent) -> None:
    account = await Account.create(id="a")
    sent.clear()

    with pytest.raises(KeyError) as caught:
        async with dm.transaction() as tx:
            tx.update(account, balance=5)
            tx.create(Account(id="b"))
            raise KeyError("stop")

    assert sent == []
    assert caught.value.__notes__ == ["dynamodm: the transaction's 2 actions were not sent"]
    assert await Account.get_or_none("b") is None
    assert (await Account.get("a")).balance == 0


async def test_a_transaction_commits_once(db: dm.Session) -> None:
    async with dm.transaction() as tx:
        tx.create(Account(id="a"))
    with pytest.raises(dm.UsageError, match="committed already"):
        await tx.commit()
    with pytest.raises(dm.UsageError, match="committed already"):
        tx.create(Account(id="b"))


# ---------------------------------------------------------------- cancellation reasons


async def test_cancellation_gives_one_reason_per_user_action(db: dm.Session) -> None:
    await Account.create(id="taken", owner="first")
    await Account.create(id="bank", owner="central")

    with pytest.raises(dm.TransactionCanceled) as caught:
        async with dm.transaction() as tx:
            tx.create(Account(id="taken"))
            tx.create(Profile(email="new@example.com"))  # adds a guard action
            tx.put(Entry(account="x", n=1))
            tx.check(Account, "bank", condition=Account.owner == "elsewhere")

    reasons = caught.value.reasons
    assert all(isinstance(r, dm.CancellationReason) for r in reasons)
    assert [(r.index, r.operation, r.model, r.code) for r in reasons] == [
        (0, "create", "Account", "ConditionalCheckFailed"),
        (1, "create", "Profile", "None"),
        (2, "save", "Entry", "None"),
        (3, "check", "Account", "ConditionalCheckFailed"),
    ]
    assert isinstance(reasons[0].item, Account) and reasons[0].item.owner == "first"
    message = str(caught.value)
    assert "#0 create Account: ConditionalCheckFailed" in message
    assert "#3 check Account: ConditionalCheckFailed" in message
    assert await Profile.scan().count() == 0


async def test_a_single_action_maps_to_the_single_write_error(db: dm.Session) -> None:
    await Account.create(id="taken")

    with pytest.raises(dm.AlreadyExists):
        async with dm.transaction() as tx:
            tx.create(Account(id="taken"))


async def test_a_taken_unique_value_raises_unique_violation(db: dm.Session) -> None:
    await Profile.create(email="ada@example.com")

    with pytest.raises(dm.UniqueViolation) as caught:
        async with dm.transaction() as tx:
            tx.put(Entry(account="x", n=1))
            tx.create(Profile(email="ada@example.com"))

    assert (caught.value.field, caught.value.value) == ("email", "ada@example.com")
    assert await Entry.get_or_none("x", 1) is None


# ---------------------------------------------------------------- limits


async def test_more_than_100_actions_are_refused_before_sending(db: dm.Session, sent: Sent) -> None:
    with pytest.raises(dm.UsageError, match="at most 100 actions; this one has 101"):
        async with dm.transaction() as tx:
            for i in range(101):
                tx.put(Entry(account="a", n=i))
    assert sent == []


async def test_unique_guards_count_towards_the_100_actions(db: dm.Session, sent: Sent) -> None:
    async with dm.transaction() as tx:
        for i in range(50):
            tx.create(Profile(email=f"p{i}@example.com"))  # 50 items + 50 guards
    assert len(transact_writes(sent)[0]["TransactItems"]) == 100
    sent.clear()

    with pytest.raises(dm.UsageError, match="102"):
        async with dm.transaction() as tx:
            for i in range(51):
                tx.create(Profile(email=f"q{i}@example.com"))
    assert sent == []


async def test_two_actions_on_one_item_are_refused_before_sending(
    db: dm.Session, sent: Sent
) -> None:
    account = await Account.create(id="a")
    sent.clear()

    with pytest.raises(dm.UsageError, match="one action per item"):
        async with dm.transaction() as tx:
            tx.update(account, balance=1)
            tx.check(Account, "a", condition=Account.balance == 0)
    assert sent == []


async def test_more_than_4_mb_is_refused_before_sending(db: dm.Session, sent: Sent) -> None:
    with pytest.raises(dm.UsageError, match="4 MB"):
        async with dm.transaction() as tx:
            for i in range(11):
                tx.put(Entry(account="big", n=i, note="x" * 390_000))
    assert sent == []
    assert await Entry.get_or_none("big", 0) is None


# ---------------------------------------------------------------- versions


async def test_versions_are_honoured_inside_transactions(db: dm.Session) -> None:
    fresh = await Account.create(id="a")
    stale = await Account.get("a")
    await fresh.update(balance=1)

    with pytest.raises(dm.VersionConflict):
        async with dm.transaction() as tx:
            tx.update(stale, balance=2)

    with pytest.raises(dm.TransactionCanceled) as caught:
        async with dm.transaction() as tx:
            tx.put(Entry(account="a", n=1))
            tx.delete(stale)
    assert [r.code for r in caught.value.reasons] == ["None", "ConditionalCheckFailed"]

    async with dm.transaction() as tx:
        tx.put(fresh)
    assert fresh.version == 3 and (await Account.get("a")).version == 3
    async with dm.transaction() as tx:
        tx.delete(fresh)
    assert await Account.get_or_none("a") is None


async def test_a_new_versioned_item_requires_that_the_key_be_free(db: dm.Session) -> None:
    await Account.create(id="a", owner="first")

    with pytest.raises(dm.VersionConflict):
        async with dm.transaction() as tx:
            tx.put(Account(id="a", owner="second"))  # version 0: must not exist
    assert (await Account.get("a")).owner == "first"


# ---------------------------------------------------------------- transact_get


async def test_transact_get_is_aligned_with_the_keys_and_none_for_missing(
    db: dm.Session,
) -> None:
    await Account.create(id="a", balance=7)
    await Entry(account="a", n=3, amount=4).save()

    found = await dm.transact_get([(Account, "a"), (Account, "none"), (Entry, ("a", 3))])

    assert isinstance(found[0], Account) and found[0].balance == 7
    assert found[1] is None
    assert isinstance(found[2], Entry) and found[2].amount == 4
    assert await dm.transact_get([]) == []
    with pytest.raises(dm.UsageError, match="at most 100"):
        await dm.transact_get([(Account, f"a{i}") for i in range(101)])


async def test_transact_get_reads_a_repeated_key_once(db: dm.Session, sent: Sent) -> None:
    await Account.create(id="a", balance=7)
    sent.clear()

    found = await dm.transact_get([(Account, "a"), (Entry, ("a", 1)), (Account, "a")])

    assert [f.balance if f else None for f in found] == [7, None, 7]
    ((operation, request),) = sent
    assert operation == "TransactGetItems" and len(request["TransactItems"]) == 2


# ---------------------------------------------------------------- retries


async def test_a_lost_commit_answer_is_retried_with_the_same_token(
    proxied: dm.Session, fault_proxy: FaultProxy, proxied_sent: Sent
) -> None:
    account = await Account.create(id="a", balance=10)
    fault_proxy.add("drop_after", "TransactWriteItems", times=1)

    async with dm.transaction() as tx:
        tx.update(account, dm.attr(Account.balance).add(5))  # not idempotent by itself
        tx.put(Entry(account="a", n=1, amount=5))

    first, second = transact_writes(proxied_sent)
    assert first["ClientRequestToken"] == second["ClientRequestToken"]
    log = fault_proxy.exchanges("TransactWriteItems")
    assert [(e.action, e.forwarded) for e in log] == [("drop_after", True), ("replayed", False)]
    assert log[0].token == log[1].token
    stored = await Account.get("a")
    assert (stored.balance, stored.version) == (15, 2)  # applied once


async def test_a_transaction_conflict_is_retried(
    proxied: dm.Session, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add("cancel", "TransactWriteItems", times=2, code="TransactionConflict")

    async with dm.transaction() as tx:
        tx.create(Account(id="a"))
        tx.put(Entry(account="a", n=1))

    log = fault_proxy.exchanges("TransactWriteItems")
    assert [e.action for e in log] == ["cancel", "cancel", "forward"]
    # A cancelled commit wrote nothing; its retry is a new commit with a new token.
    assert len({e.token for e in log}) == 3
    assert (await Account.get("a")).version == 1


async def test_transaction_conflicts_stop_at_the_retry_budget(
    db: dm.Session, fault_proxy: FaultProxy
) -> None:
    pauses: list[float] = []

    async def sleep(pause: float) -> None:
        pauses.append(pause)

    policy = dm.RetryPolicy(base_delay=0.001, max_attempts=3, sleep=sleep)
    async with dm.connect(
        endpoint_url=fault_proxy.endpoint_url, table_prefix=db.table_prefix, retry=policy
    ):
        fault_proxy.add("cancel", "TransactWriteItems", code="TransactionConflict")
        with pytest.raises(dm.TransactionCanceled) as caught:
            async with dm.transaction() as tx:
                tx.create(Account(id="a"))
                tx.put(Entry(account="a", n=1))

    assert len(fault_proxy.exchanges("TransactWriteItems")) == 3
    assert len(pauses) == 2  # the policy's own sleep, between the three attempts
    assert [r.code for r in caught.value.reasons] == ["TransactionConflict", "None"]
    assert await Account.get_or_none("a") is None


async def test_a_commit_whose_every_answer_is_lost_raises_outcome_unknown(
    db: dm.Session, fault_proxy: FaultProxy
) -> None:
    policy = dm.RetryPolicy(base_delay=0.001, max_attempts=2)
    fault_proxy.add("drop_after", "TransactWriteItems")
    async with dm.connect(
        endpoint_url=fault_proxy.endpoint_url, table_prefix=db.table_prefix, retry=policy
    ):
        with pytest.raises(dm.OutcomeUnknown):
            async with dm.transaction() as tx:
                tx.create(Account(id="a"))
                tx.put(Entry(account="a", n=1))


@pytest.mark.parametrize("code", ["ThrottlingError", "ProvisionedThroughputExceeded"])
async def test_a_transaction_cancelled_for_throttling_is_retried(
    proxied: dm.Session, fault_proxy: FaultProxy, code: str
) -> None:
    """DynamoDB wrote nothing and asks to try again shortly, as for a throttled write."""
    fault_proxy.add("cancel", "TransactWriteItems", times=2, code=code)

    async with dm.transaction() as tx:
        tx.create(Account(id="a"))
        tx.put(Entry(account="a", n=1))

    log = fault_proxy.exchanges("TransactWriteItems")
    assert [e.action for e in log] == ["cancel", "cancel", "forward"]
    assert (await Account.get("a")).version == 1


async def test_transact_get_retries_a_conflict(
    proxied: dm.Session, fault_proxy: FaultProxy
) -> None:
    await Account.create(id="a")
    fault_proxy.add("cancel", "TransactGetItems", times=2, code="TransactionConflict")
    (found,) = await dm.transact_get([(Account, "a")])
    assert found is not None and found.id == "a"
    assert [e.action for e in fault_proxy.exchanges("TransactGetItems")] == [
        "cancel",
        "cancel",
        "forward",
    ]


async def test_transact_get_cancellation_reasons_are_cancellation_reasons(
    proxied: dm.Session, fault_proxy: FaultProxy
) -> None:
    await Account.create(id="a")
    fault_proxy.add("cancel", "TransactGetItems", code="ValidationError")
    with pytest.raises(dm.TransactionCanceled) as caught:
        await dm.transact_get([(Account, "a"), (Account, "b")])
    reasons = caught.value.reasons
    assert all(isinstance(r, dm.CancellationReason) for r in reasons)
    assert [(r.code, r.model) for r in reasons] == [
        ("ValidationError", "Account"),
        ("None", "Account"),
    ]
