"""Against the stand-in for the real service (tests/standin.py): what DynamoDB would say.

Every request here is signed and verified; errors come with DynamoDB's bodies and
headers. Both transports run every test where the point applies to them.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Literal

import aioboto3
import aiohttp
import pytest
from standin import (
    ACCESS_KEY,
    AVAILABILITY_NS,
    DYNAMODB_NS,
    THROTTLE_MESSAGES,
    StandIn,
    ThrowawayCA,
)

import dynamodm as dm
from dynamodm.transport import user_agent

REG = dm.Registry("standin-tests")

Kind = Literal["http", "botocore"]
TRANSPORTS = pytest.mark.parametrize("transport", ["http", "botocore"])
FAST = dm.RetryPolicy(base_delay=0.001, max_delay=0.01, max_attempts=4, budget=5.0)
REQUEST_ID = re.compile(r"^[A-Z0-9]{52}$")
BIRTH_DATE = "1987-03-14"


class Patient(dm.Model):
    class Meta:
        table = "patients"
        registry = REG

    id: Annotated[str, dm.HashKey]
    name: str = ""
    born: str = ""


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy, CA bundle, profile or key from the machine running the tests."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
        "AWS_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "DYNAMODM_TRANSPORT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@asynccontextmanager
async def session(
    service: StandIn,
    transport: Kind,
    *,
    endpoint_url: str | None = None,
    access_key: str = ACCESS_KEY,
    secret: str | None = None,
    retry: dm.RetryPolicy = FAST,
) -> AsyncIterator[dm.Session]:
    credentials = service.credentials(access_key)
    if secret is not None:
        credentials["aws_secret_access_key"] = secret
    async with dm.connect(
        endpoint_url=endpoint_url or service.endpoint_url,
        boto_session=aioboto3.Session(**credentials),
        transport=transport,
        retry=retry,
    ) as db:
        yield db


def make_table(service: StandIn) -> None:
    """The patients table, created in the stand-in's store without a request."""
    service.store.CreateTable(
        {
            "TableName": "patients",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
    )


# ---------------------------------------------------------------- the stand-in itself


async def test_standin_answers_with_dynamodb_error_bodies_and_headers(standin: StandIn) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            standin.endpoint_url,
            data=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
            },
        ) as answer,
    ):
        body = await answer.read()
        headers = answer.headers
    assert answer.status == 400
    assert body == (
        b'{"__type":"com.amazon.coral.service#MissingAuthenticationTokenException",'
        b'"message":"Request is missing Authentication Token"}'
    )
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert REQUEST_ID.match(headers["x-amzn-RequestId"])
    assert int(headers["x-amz-crc32"]) == zlib.crc32(body)
    assert parsedate_to_datetime(headers["Date"]).tzinfo is not None
    assert standin.requests[0].request_id == headers["x-amzn-RequestId"]


@TRANSPORTS
async def test_create_get_update_delete_through_the_standin(
    standin: StandIn, transport: Kind
) -> None:
    async with session(standin, transport) as db:
        await db.create_tables(Patient)
        await Patient.create(id="p-1", name="Ann", session=db)
        patient = await Patient.get("p-1", session=db)
        await patient.update(name="Bob")
        assert (await Patient.get("p-1", session=db)).name == "Bob"
        await patient.delete()
        assert await Patient.get_or_none("p-1", session=db) is None
    operations = [r.operation for r in standin.requests]
    assert operations[:2] == ["CreateTable", "DescribeTable"]
    assert operations[2:] == [
        "PutItem",
        "GetItem",
        "UpdateItem",
        "GetItem",
        "DeleteItem",
        "GetItem",
    ]
    assert all(r.status == 200 for r in standin.requests)  # every signature verified
    assert all(r.header("authorization") for r in standin.requests)


async def test_fast_transport_sends_its_user_agent(standin: StandIn) -> None:
    make_table(standin)
    async with session(standin, "http") as db:
        await Patient.get_or_none("p-1", session=db)
    assert re.fullmatch(r"dynamodm/\S+", user_agent())
    assert standin.requests[-1].header("user-agent") == user_agent()


async def test_botocore_transport_adds_our_user_agent(standin: StandIn) -> None:
    make_table(standin)
    async with session(standin, "botocore") as db:
        await Patient.get_or_none("p-1", session=db)
    assert user_agent() in (standin.requests[-1].header("user-agent") or "").split()


# ---------------------------------------------------------------- signatures and credentials


@TRANSPORTS
async def test_a_wrong_secret_is_refused_with_dynamodb_signature_error(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    async with session(standin, transport, secret="not-the-secret") as db:
        with pytest.raises(dm.ConfigurationError) as caught:
            await Patient.get_or_none("p-1", session=db)
    error = caught.value
    assert error.code == "InvalidSignatureException"
    assert error.service_message is not None
    assert error.service_message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    assert "The Canonical String for this request should have been" in error.service_message
    assert error.request_id == standin.requests[-1].request_id
    assert "credentials" in str(error)
    # The service's text quotes the canonical request: never in the message.
    assert "Canonical" not in str(error)
    assert "not-the-secret" not in str(error) + repr(error)


@TRANSPORTS
async def test_an_unknown_key_is_an_unrecognized_client(standin: StandIn, transport: Kind) -> None:
    make_table(standin)
    async with dm.connect(
        endpoint_url=standin.endpoint_url,
        boto_session=aioboto3.Session(
            aws_access_key_id="AKIDOTHER", aws_secret_access_key="x", region_name="us-east-1"
        ),
        transport=transport,
        retry=FAST,
    ) as db:
        with pytest.raises(dm.ConfigurationError, match="refused the credentials") as caught:
            await Patient.get_or_none("p-1", session=db)
    assert caught.value.code == "UnrecognizedClientException"
    assert caught.value.request_id == standin.requests[-1].request_id


@TRANSPORTS
async def test_an_expired_session_token_is_named(standin: StandIn, transport: Kind) -> None:
    make_table(standin)
    standin.add_key("ASIATEMPORARY", "temporary-secret", token="session-token-1")
    standin.expired_tokens.add("session-token-1")
    async with session(standin, transport, access_key="ASIATEMPORARY") as db:
        with pytest.raises(dm.ConfigurationError, match=r"session token .* has expired") as caught:
            await Patient.get_or_none("p-1", session=db)
    assert caught.value.code == "ExpiredTokenException"
    assert caught.value.request_id == standin.requests[-1].request_id
    assert standin.requests[-1].body  # it reached the service, which refused it
    assert "session-token-1" not in str(caught.value)


# ---------------------------------------------------------------- request ids


@TRANSPORTS
async def test_successful_responses_carry_their_request_id(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    async with session(standin, transport) as db:
        response = await db.transport.send(
            "GetItem", {"TableName": "patients", "Key": {"id": {"S": "p-1"}}}
        )
    assert response == {"ResponseMetadata": {"RequestId": standin.requests[-1].request_id}}


@TRANSPORTS
async def test_table_not_found_carries_the_request_id(standin: StandIn, transport: Kind) -> None:
    async with session(standin, transport) as db:
        with pytest.raises(dm.TableNotFound) as caught:
            await Patient.get_or_none("p-1", session=db)
    error = caught.value
    assert error.request_id is not None
    assert error.request_id == standin.requests[-1].request_id
    assert error.request_id in str(error)
    assert "ResourceNotFoundException" in str(error)


@TRANSPORTS
async def test_throttled_carries_the_last_attempts_request_id(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    standin.throttle(100)
    async with session(standin, transport) as db:
        with pytest.raises(dm.Throttled) as caught:
            await Patient.get_or_none("p-1", session=db)
    assert len(standin.requests) == FAST.max_attempts
    assert caught.value.request_id == standin.requests[-1].request_id
    assert {r.code for r in standin.requests} == {"ProvisionedThroughputExceededException"}


@TRANSPORTS
async def test_a_failed_condition_carries_the_request_id(standin: StandIn, transport: Kind) -> None:
    make_table(standin)
    async with session(standin, transport) as db:
        await Patient.create(id="p-1", session=db)
        with pytest.raises(dm.ConditionFailed) as caught:
            await Patient.create(id="p-1", session=db)
    assert caught.value.request_id == standin.requests[-1].request_id
    assert standin.requests[-1].code == "ConditionalCheckFailedException"


@TRANSPORTS
async def test_not_found_carries_the_request_id_of_the_empty_answer(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    async with session(standin, transport) as db:
        with pytest.raises(dm.NotFound) as caught:
            await Patient.get("p-1", session=db)
    assert caught.value.request_id == standin.requests[-1].request_id


@TRANSPORTS
async def test_outcome_unknown_from_a_5xx_carries_the_request_id(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    standin.fail("InternalServerError", "Internal server error", status=500)
    async with session(standin, transport) as db:
        with pytest.raises(dm.OutcomeUnknown) as caught:
            await Patient.create(id="p-1", session=db)
    assert caught.value.request_id == standin.requests[-1].request_id


# ---------------------------------------------------------------- service messages stay out


@TRANSPORTS
async def test_a_service_message_quoting_a_value_stays_out_of_the_error_text(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    quoted = (
        "One or more parameter values were invalid: Type mismatch for attribute to update "
        f"born, value {BIRTH_DATE}"
    )
    standin.fail("ValidationException", quoted)
    async with session(standin, transport) as db:
        with pytest.raises(dm.ServiceError) as caught:
            await Patient.create(id="p-1", born=BIRTH_DATE, session=db)
    error = caught.value
    assert error.code == "ValidationException"
    assert error.service_message == quoted
    assert error.request_id == standin.requests[-1].request_id
    for text in (str(error), repr(error)):
        assert BIRTH_DATE not in text
        assert "ValidationException" in text
    assert error.request_id in str(error)
    assert standin.requests[-1].json()["Item"]["born"] == {"S": BIRTH_DATE}


@TRANSPORTS
async def test_a_condition_message_quoting_a_value_stays_out_of_the_error_text(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    standin.fail("ConditionalCheckFailedException", f"The conditional request failed: {BIRTH_DATE}")
    async with session(standin, transport) as db:
        with pytest.raises(dm.ConditionFailed) as caught:
            await Patient.create(id="p-1", born=BIRTH_DATE, session=db)
    assert caught.value.service_message is not None
    assert BIRTH_DATE in caught.value.service_message
    assert BIRTH_DATE not in str(caught.value) + repr(caught.value)


# ---------------------------------------------------------------- throttling and dropped answers


@TRANSPORTS
@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
async def test_throttling_is_retried_until_it_stops(
    standin: StandIn, transport: Kind, code: str
) -> None:
    make_table(standin)
    standin.throttle(2, code=code)
    async with session(standin, transport) as db:
        assert await Patient.get_or_none("p-1", session=db) is None
    assert [r.code for r in standin.requests] == [code, code, None]
    namespace = AVAILABILITY_NS if code == "ThrottlingException" else DYNAMODB_NS
    assert standin.requests[0].status == 400
    assert json.loads(standin.requests[0].answer) == {
        "__type": namespace + code,
        "message": THROTTLE_MESSAGES[code],
    }


async def test_throttling_for_a_time_then_recovering(standin: StandIn) -> None:
    make_table(standin)
    patient_policy = dm.RetryPolicy(base_delay=0.05, max_delay=0.1, max_attempts=40, budget=8.0)
    async with session(standin, "http", retry=patient_policy) as db:
        standin.throttle(seconds=0.4)
        started = asyncio.get_running_loop().time()
        assert await Patient.get_or_none("p-1", session=db) is None
        assert asyncio.get_running_loop().time() - started >= 0.35
    codes = [r.code for r in standin.requests]
    assert codes[-1] is None
    assert len(codes) >= 2
    assert set(codes[:-1]) == {"ProvisionedThroughputExceededException"}


@TRANSPORTS
async def test_a_dropped_read_is_retried(standin: StandIn, transport: Kind) -> None:
    make_table(standin)
    standin.drop(1)
    async with session(standin, transport) as db:
        assert await Patient.get_or_none("p-1", session=db) is None
    assert [r.status for r in standin.requests] == [None, 200]


@TRANSPORTS
async def test_a_create_whose_answer_is_dropped_is_outcome_unknown(
    standin: StandIn, transport: Kind
) -> None:
    make_table(standin)
    standin.drop(1, after=True)
    async with session(standin, transport) as db:
        with pytest.raises(dm.OutcomeUnknown):
            await Patient.create(id="p-1", session=db)
    assert len(standin.received("PutItem")) == 1
    assert standin.store.tables["patients"].items  # it happened; its answer was lost


# ---------------------------------------------------------------- clock skew


@pytest.mark.parametrize("skew", [-900.0, 900.0])
async def test_a_skewed_clock_is_learnt_and_the_request_signed_again(
    standin: StandIn, skew: float
) -> None:
    make_table(standin)
    standin.skew = skew
    async with session(standin, "http") as db:
        assert await Patient.get_or_none("p-1", session=db) is None
        await Patient.create(id="p-1", session=db)
    first, second, third = standin.requests
    assert first.code == "InvalidSignatureException"
    assert (second.operation, second.status) == ("GetItem", 200)
    assert (third.operation, third.status) == ("PutItem", 200)  # the offset was kept


@TRANSPORTS
async def test_a_clock_that_stays_wrong_is_named(standin: StandIn, transport: Kind) -> None:
    make_table(standin)
    message = "Signature expired: 20261206T024000Z is now earlier than 20261206T024500Z"
    standin.fail("InvalidSignatureException", message, count=2)
    async with session(standin, transport) as db:
        with pytest.raises(dm.ConfigurationError, match="clock") as caught:
            await Patient.get_or_none("p-1", session=db)
    assert "credentials" not in str(caught.value)
    assert caught.value.request_id == standin.requests[-1].request_id
    assert len(standin.requests) == (2 if transport == "http" else 1)


async def test_the_standin_refuses_a_request_signed_too_long_ago(standin: StandIn) -> None:
    make_table(standin)
    standin.skew = 3600.0
    async with session(standin, "botocore") as db:
        with pytest.raises(dm.ConfigurationError, match="clock") as caught:
            await Patient.get_or_none("p-1", session=db)
    assert caught.value.service_message is not None
    assert re.fullmatch(
        r"Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z "
        r"\(\d{8}T\d{6}Z - 5 min\.\)",
        caught.value.service_message,
    )


# ---------------------------------------------------------------- the host that is signed


@pytest.mark.parametrize(
    ("transport", "endpoint"),
    [
        ("http", "http://DynamoDB.StandIn.TEST:80"),
        ("http", "http://dynamodb.standin.test:80/"),
        ("botocore", "http://DynamoDB.StandIn.TEST:80"),
        ("botocore", "http://dynamodb.standin.test:80/"),
    ],
)
async def test_the_signed_host_is_the_sent_host(
    standin: StandIn, transport: Kind, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through the stand-in as an HTTP proxy: the name need not resolve, and the stand-in
    # verifies the signature against the Host header it received.
    monkeypatch.setenv("HTTP_PROXY", standin.proxy_url)
    make_table(standin)
    async with session(standin, transport, endpoint_url=endpoint) as db:
        assert await Patient.get_or_none("p-1", session=db) is None
    (received,) = standin.requests
    assert received.status == 200
    assert received.header("host") == "dynamodb.standin.test"


@pytest.mark.parametrize("transport", ["http"])
async def test_a_trailing_dot_is_signed_as_sent(
    standin: StandIn, transport: Kind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", standin.proxy_url)
    make_table(standin)
    async with session(standin, transport, endpoint_url="http://dynamodb.standin.test.") as db:
        assert await Patient.get_or_none("p-1", session=db) is None
    assert standin.requests[-1].status == 200


@pytest.mark.parametrize(
    ("transport", "endpoint"),
    [
        ("http", "https://DynamoDB.StandIn.Test:443"),
        ("http", "https://dynamodb.standin.test:443/"),
        ("botocore", "https://DynamoDB.StandIn.Test:443"),
        ("botocore", "https://dynamodb.standin.test:443/"),
    ],
)
async def test_the_default_https_port_through_a_tunnel(
    standin_ca: ThrowawayCA, transport: Kind, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(standin_ca.ca_file))
    async with StandIn(tls=standin_ca) as service:
        monkeypatch.setenv("HTTPS_PROXY", service.proxy_url)
        make_table(service)
        async with session(service, transport, endpoint_url=endpoint) as db:
            assert await Patient.get_or_none("p-1", session=db) is None
        assert service.tunnels == ["dynamodb.standin.test:443"]
        (received,) = service.requests
    assert received.status == 200
    assert received.header("host") == "dynamodb.standin.test"


# ---------------------------------------------------------------- TLS and its trust store


@pytest.fixture
def profile_with_ca_bundle(
    standin_ca: ThrowawayCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    config = tmp_path / "config"
    config.write_text(f"[default]\nregion = us-east-1\nca_bundle = {standin_ca.ca_file}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    yield config


@TRANSPORTS
async def test_the_profiles_ca_bundle_is_trusted(
    standin_tls: StandIn, transport: Kind, profile_with_ca_bundle: Path
) -> None:
    make_table(standin_tls)
    async with session(standin_tls, transport) as db:
        assert await Patient.get_or_none("p-1", session=db) is None
    assert standin_tls.endpoint_url.startswith("https://")
    assert standin_tls.requests[-1].status == 200


@TRANSPORTS
async def test_an_unknown_ca_is_not_trusted(standin_tls: StandIn, transport: Kind) -> None:
    # No ca_bundle anywhere: certifi's bundle (as botocore), which lacks the throw-away CA.
    make_table(standin_tls)
    async with session(standin_tls, transport) as db:
        with pytest.raises(dm.ConnectionFailed):
            await Patient.get_or_none("p-1", session=db)
    assert standin_tls.requests == []


# ---------------------------------------------------------------- a proxy that refuses


@TRANSPORTS
@pytest.mark.parametrize("status", [407, 403])
async def test_a_proxy_refusing_the_tunnel_is_a_connection_failure(
    standin: StandIn, transport: Kind, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.connect_status = status
    monkeypatch.setenv("HTTPS_PROXY", standin.proxy_url)
    async with session(standin, transport, endpoint_url="https://dynamodb.standin.test") as db:
        with pytest.raises(dm.ConnectionFailed):
            # A create is not safe to repeat: anything that may have been sent would be
            # OutcomeUnknown. Nothing was.
            await Patient.create(id="p-1", session=db)
    assert standin.requests == []
    assert standin.tunnels == ["dynamodb.standin.test:443"] * FAST.max_attempts


async def test_every_request_is_recorded_with_its_headers_and_body(standin: StandIn) -> None:
    make_table(standin)
    async with session(standin, "http") as db:
        await Patient.create(id="p-1", name="Ann", session=db)
    (received,) = standin.requests
    assert received.operation == "PutItem"
    assert received.header("X-Amz-Target") == "DynamoDB_20120810.PutItem"
    assert received.json()["Item"]["name"] == {"S": "Ann"}
    assert received.header("content-type") == "application/x-amz-json-1.0"


async def test_standin_stops_with_connections_open(standin: StandIn) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", standin.port)
    await standin.stop()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
