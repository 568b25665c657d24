"""Endpoint resolution equals botocore's: the ruleset for every region of every partition,
and the settings (environment, profile, FIPS pseudo-regions, configured endpoint URLs)
read the way a botocore client reads them. botocore is the oracle here; dynamodm's own
code loads none of it to resolve an endpoint."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.endpoint_provider import EndpointProvider
from botocore.exceptions import BotoCoreError, EndpointResolutionError
from botocore.loaders import create_loader

import dynamodm as dm
from dynamodm import endpoints
from dynamodm.credentials import SharedConfig, environment_credentials
from dynamodm.transport import HttpTransport, endpoint_parts, open_transport

LOADER = create_loader()
RULESET = LOADER.load_service_model("dynamodb", "endpoint-rule-set-1")
PARTITIONS = LOADER.load_data("partitions")
PROVIDER = EndpointProvider(ruleset_data=RULESET, partition_data=PARTITIONS)
ACCOUNT = "123456789012"
ERROR = "error"
MODES = ("preferred", "disabled", "required")


def _unlisted_region(partition: dict[str, Any]) -> str:
    """A region the partition does not list but whose pattern it matches (a future one)."""
    prefix = {
        "aws": "us-west-9",
        "aws-cn": "cn-south-9",
        "aws-us-gov": "us-gov-north-9",
        "aws-iso": "us-iso-north-9",
        "aws-iso-b": "us-isob-north-9",
        "aws-iso-e": "eu-isoe-north-9",
        "aws-iso-f": "us-isof-north-9",
        "aws-eusc": "eusc-de-north-9",
    }.get(partition["id"])
    if prefix is None:  # a partition newer than this test: derive nothing, use a listed one
        return sorted(partition["regions"])[-1]
    assert re.match(partition["regionRegex"], prefix), (partition["id"], prefix)
    return prefix


REGIONS = sorted(
    {region for partition in PARTITIONS["partitions"] for region in partition["regions"]}
    | {_unlisted_region(partition) for partition in PARTITIONS["partitions"]}
    | {"local", "xx-nowhere-1"}
)


def botocore_endpoint(**params: Any) -> tuple[str, str] | str:
    """The ruleset's URL and signing region, as botocore's own rules engine resolves them."""
    try:
        found = PROVIDER.resolve_endpoint(**params)
    except EndpointResolutionError:
        return ERROR
    schemes = found.properties.get("authSchemes") or [{}]
    return found.url, schemes[0].get("signingRegion", params["Region"])


def dynamodm_endpoint(region: str, **kwargs: Any) -> tuple[str, str] | str:
    try:
        found = endpoints.ruleset_endpoint(region, **kwargs)
    except dm.ConfigurationError:
        return ERROR
    return found.url, found.signing_region


@pytest.mark.parametrize("region", REGIONS)
def test_every_region_resolves_as_botocore_ruleset(region: str) -> None:
    compared = 0
    for fips in (False, True):
        for dualstack in (False, True):
            for mode in MODES:
                for account in (None, ACCOUNT, "not a host label"):
                    expected = botocore_endpoint(
                        Region=region,
                        UseFIPS=fips,
                        UseDualStack=dualstack,
                        AccountId=account,
                        AccountIdEndpointMode=mode,
                    )
                    actual = dynamodm_endpoint(
                        region,
                        use_fips=fips,
                        use_dualstack=dualstack,
                        account_id=account,
                        account_id_endpoint_mode=mode,
                    )
                    assert actual == expected, (region, fips, dualstack, mode, account)
                    compared += 1
    assert compared == 36


@pytest.mark.parametrize("region", ["us-east-1", "cn-north-1", "us-gov-west-1", "local"])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "https://proxy.example.com/dynamodb",
        "https://dynamodb.{region}.api.aws",  # the dual-stack URL itself: botocore refuses it
        "https://dynamodb.{region}.api.amazonwebservices.com.cn",
    ],
)
def test_an_endpoint_url_is_used_as_botocore_uses_it(region: str, url: str) -> None:
    url = url.format(region=region)
    expected = botocore_endpoint(Region=region, Endpoint=url, UseFIPS=False, UseDualStack=False)
    assert dynamodm_endpoint(region, endpoint_url=url) == expected


def test_the_endpoint_for_the_common_regions() -> None:
    assert endpoints.resolve("eu-west-1").url == "https://dynamodb.eu-west-1.amazonaws.com"
    assert endpoints.resolve("cn-north-1").url == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    gov = endpoints.resolve("us-gov-west-1", use_fips=True)
    assert gov.url == "https://dynamodb.us-gov-west-1.amazonaws.com"  # FIPS already
    assert endpoints.resolve("us-east-1", account_id=ACCOUNT) == endpoints.Endpoint(
        f"https://{ACCOUNT}.ddb.us-east-1.amazonaws.com", "us-east-1"
    )
    assert endpoints.resolve("local") == endpoints.Endpoint("http://localhost:8000", "us-east-1")


def test_required_account_endpoints_without_an_account_say_so() -> None:
    with pytest.raises(dm.ConfigurationError, match="no AccountID"):
        endpoints.resolve("us-east-1", account_id_endpoint_mode="required")
    with pytest.raises(dm.ConfigurationError, match="not supported in this partition"):
        endpoints.resolve("cn-north-1", account_id=ACCOUNT, account_id_endpoint_mode="required")


def test_invalid_region_names_are_refused_as_botocore_refuses_them() -> None:
    for name in ("us_east_1", "-us-east-1", "123", "a" * 64, "us-east-1/x"):
        with pytest.raises(dm.ConfigurationError, match="not a valid region name"):
            endpoints.normalize_region(name)
    assert endpoints.normalize_region("us-east-1-fips") == ("us-east-1", True)
    assert endpoints.normalize_region("fips-us-gov-west-1") == ("us-gov-west-1", True)


# ---------------------------------------------------------------- settings, as a client reads them


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No AWS setting from the machine: empty config files, an access key in the environment."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    yield monkeypatch


class Sent(Exception):
    """Raised from botocore's before-send: the request was built and signed, not sent."""

    def __init__(self, url: str, authorization: str) -> None:
        super().__init__(url)
        self.url = url
        self.authorization = authorization


def _stop(request: Any, **_: Any) -> None:
    raise Sent(request.url, request.headers["Authorization"].decode())


def botocore_client_target(
    region: str, *, session: Any = None, endpoint_url: str | None = None
) -> tuple[str, str] | str:
    """Where a real botocore client sends ListTables and the region it signs for."""
    session = session or botocore.session.get_session()
    try:
        client = session.create_client("dynamodb", region_name=region, endpoint_url=endpoint_url)
        client.meta.events.register("before-send.dynamodb.ListTables", _stop)
        client.list_tables()
    except Sent as sent:
        scope = sent.authorization.split("Credential=")[1].split(",")[0]
        return sent.url, scope.split("/")[2]
    except (BotoCoreError, ValueError):
        return ERROR
    raise AssertionError("the request was not sent")


async def dynamodm_target(region: str, endpoint_url: str | None = None) -> tuple[str, str] | str:
    """Where the fast transport, opened as dm.connect opens it, sends and signs."""
    try:
        transport, _ = await open_transport(
            "http",
            region=region,
            endpoint_url=endpoint_url,
            boto_session=None,
            connect_timeout=1,
            read_timeout=1,
            max_connections=1,
        )
    except dm.ConfigurationError:
        return ERROR
    assert isinstance(transport, HttpTransport)
    try:
        return transport.url, transport._signer.region
    finally:
        await transport.close()


@pytest.mark.parametrize("region", REGIONS)
async def test_every_region_is_sent_where_a_botocore_client_sends_it(
    aws_env: pytest.MonkeyPatch, region: str
) -> None:
    """FIPS and dual-stack from the environment, the account id from AWS_ACCOUNT_ID."""
    aws_env.setenv("AWS_ACCOUNT_ID", ACCOUNT)
    session = botocore.session.get_session()
    for fips in ("false", "true"):
        for dualstack in ("false", "true"):
            aws_env.setenv("AWS_USE_FIPS_ENDPOINT", fips)
            aws_env.setenv("AWS_USE_DUALSTACK_ENDPOINT", dualstack)
            expected = botocore_client_target(region, session=session)
            assert await dynamodm_target(region) == expected, (region, fips, dualstack)


CONFIG = """
[default]
region = eu-west-1

[profile fips]
use_fips_endpoint = true
region = us-gov-east-1

[profile dual]
use_dualstack_endpoint = TRUE

[profile pinned]
endpoint_url = http://127.0.0.1:8111

[profile routed]
services = local-ddb

[services local-ddb]
dynamodb =
  endpoint_url = http://127.0.0.1:8222

[profile routed-elsewhere]
services = local-s3

[services local-s3]
s3 =
  endpoint_url = http://127.0.0.1:8333

[profile accounts]
account_id_endpoint_mode = required

[profile ignoring]
endpoint_url = http://127.0.0.1:8111
ignore_configured_endpoint_urls = true
"""

CREDENTIALS = """
[fromcreds]
aws_access_key_id = AKIDOTHER
aws_secret_access_key = other
use_fips_endpoint = true
"""


@pytest.mark.parametrize(
    ("environment", "region"),
    [
        ({}, "us-east-1"),
        ({"AWS_PROFILE": "fips"}, "us-east-1"),
        ({"AWS_PROFILE": "fips"}, "us-gov-west-1"),
        ({"AWS_PROFILE": "dual"}, "ap-southeast-2"),
        ({"AWS_PROFILE": "dual", "AWS_USE_DUALSTACK_ENDPOINT": "false"}, "ap-southeast-2"),
        ({"AWS_PROFILE": "pinned"}, "us-east-1"),
        ({"AWS_PROFILE": "routed"}, "us-east-1"),
        ({"AWS_PROFILE": "routed-elsewhere"}, "us-east-1"),
        ({"AWS_PROFILE": "ignoring"}, "us-east-1"),
        ({"AWS_PROFILE": "pinned", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "us-east-1"),
        ({"AWS_PROFILE": "accounts"}, "us-east-1"),
        ({"AWS_PROFILE": "accounts", "AWS_ACCOUNT_ID": ACCOUNT}, "us-east-1"),
        ({"AWS_PROFILE": "fromcreds"}, "us-east-1"),
        ({"AWS_DEFAULT_PROFILE": "fips", "AWS_PROFILE": "dual"}, "us-east-1"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:8444"}, "us-east-1"),
        ({"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8555/"}, "us-east-1"),
        (
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:8444",
                "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8555",
                "AWS_PROFILE": "routed",
            },
            "us-east-1",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:8444", "AWS_USE_FIPS_ENDPOINT": "true"},
            "us-east-1",
        ),
        ({"AWS_ACCOUNT_ID": ACCOUNT}, "eu-central-1"),
        ({"AWS_ACCOUNT_ID": ACCOUNT, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}, "eu-central-1"),
        ({"AWS_ACCOUNT_ID": ACCOUNT, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "Required"}, "us-east-1"),
        ({"AWS_ACCOUNT_ID_ENDPOINT_MODE": "required"}, "us-east-1"),
        ({"AWS_ACCOUNT_ID_ENDPOINT_MODE": "sometimes"}, "us-east-1"),
        ({"AWS_ACCOUNT_ID": ACCOUNT, "AWS_USE_FIPS_ENDPOINT": "true"}, "us-east-1"),
        ({"AWS_ACCOUNT_ID": ACCOUNT}, "cn-northwest-1"),
        ({}, "us-east-1-fips"),
        ({}, "fips-us-gov-west-1"),
        ({"AWS_USE_DUALSTACK_ENDPOINT": "true"}, "fips-ca-central-1"),
        ({}, "local"),
        ({}, "not_a_region"),
        ({"AWS_PROFILE": "missing"}, "us-east-1"),
    ],
)
async def test_settings_are_read_as_a_botocore_client_reads_them(
    aws_env: pytest.MonkeyPatch, tmp_path: Path, environment: dict[str, str], region: str
) -> None:
    (tmp_path / "config").write_text(CONFIG)
    (tmp_path / "credentials").write_text(CREDENTIALS)
    for name, value in environment.items():
        aws_env.setenv(name, value)
    expected = botocore_client_target(region)
    assert await dynamodm_target(region) == expected


@pytest.mark.parametrize("endpoint_url", ["http://127.0.0.1:8666", "https://Ddb.Example.com:443/"])
async def test_an_endpoint_url_given_wins_over_the_configured_ones(
    aws_env: pytest.MonkeyPatch, tmp_path: Path, endpoint_url: str
) -> None:
    (tmp_path / "config").write_text(CONFIG)
    aws_env.setenv("AWS_PROFILE", "pinned")
    aws_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8555")
    url, signing = botocore_client_target("us-west-2", endpoint_url=endpoint_url)
    # The fast transport spells the host as it is sent (lower case, no default port).
    assert await dynamodm_target("us-west-2", endpoint_url) == (endpoint_parts(url)[0], signing)
    assert signing == "us-west-2"


# ---------------------------------------------------------------- the files and the environment


def test_shared_config_reads_the_files_as_botocore_does(
    aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text(CONFIG + "\n[profile default]\nregion = eu-north-1\n")
    (tmp_path / "credentials").write_text(CREDENTIALS)
    ours = SharedConfig()
    theirs = botocore.session.get_session()
    full = theirs.full_config
    assert ours.full_config["profiles"] == full["profiles"]
    assert ours.full_config["services"] == full["services"]
    for profile in (None, "fips", "dual", "routed", "fromcreds", "accounts"):
        if profile is not None:
            aws_env.setenv("AWS_PROFILE", profile)
        ours, theirs = SharedConfig(), botocore.session.get_session()
        assert ours.get_scoped_config() == theirs.get_scoped_config()
        for name in (
            "profile",
            "region",
            "use_fips_endpoint",
            "use_dualstack_endpoint",
            "account_id_endpoint_mode",
            "ignore_configured_endpoint_urls",
            "ca_bundle",
        ):
            assert ours.get_config_variable(name) == theirs.get_config_variable(name), name


def test_environment_credentials_are_botocores_first_choice(
    aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "credentials").write_text(CREDENTIALS)
    aws_env.setenv("AWS_PROFILE", "fromcreds")  # a profile with its own key
    aws_env.setenv("AWS_SESSION_TOKEN", "token")
    aws_env.setenv("AWS_ACCOUNT_ID", ACCOUNT)
    theirs = botocore.session.get_session().get_credentials()
    ours = environment_credentials()
    assert theirs.method == "env"
    assert ours is not None
    assert (ours.access_key, ours.secret_key, ours.token, ours.account_id) == (
        theirs.access_key,
        theirs.secret_key,
        theirs.token,
        theirs.account_id,
    )
    assert "secret" not in repr(ours) and "token" not in repr(ours)


def test_environment_credentials_leave_refreshing_and_partial_keys_to_botocore(
    aws_env: pytest.MonkeyPatch,
) -> None:
    aws_env.setenv("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z")
    assert environment_credentials() is None
    aws_env.delenv("AWS_CREDENTIAL_EXPIRATION")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    assert environment_credentials() is None
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    aws_env.setenv("AWS_SECURITY_TOKEN", "old-name")
    aws_env.setenv("AWS_SESSION_TOKEN", "new-name")
    found = environment_credentials()
    assert found is not None and found.token == "old-name"  # botocore reads the old name first


def test_partitions_come_from_the_installed_botocore() -> None:
    names = [partition["id"] for partition in PARTITIONS["partitions"]]
    assert [endpoints.partition(_unlisted_region(p)).name for p in PARTITIONS["partitions"]] == (
        names
    )
    assert endpoints.partition("xx-nowhere-1").name == "aws"


@pytest.mark.parametrize("mode", MODES)
async def test_the_account_of_a_boto_session_gives_the_endpoint_as_in_botocore(
    aws_env: pytest.MonkeyPatch, mode: str
) -> None:
    """Credentials from a session passed in (the chain's path) name their account."""
    import aioboto3

    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    aws_env.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", mode)
    keys = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}
    theirs = botocore.session.get_session()
    theirs.set_credentials("AKIDEXAMPLE", "secret", account_id=ACCOUNT)
    expected = botocore_client_target("us-east-1", session=theirs)
    boto_session = aioboto3.Session(**keys, aws_account_id=ACCOUNT, region_name="us-east-1")
    transport, _ = await open_transport(
        "http",
        region=None,
        endpoint_url=None,
        boto_session=boto_session,
        connect_timeout=1,
        read_timeout=1,
        max_connections=1,
    )
    assert isinstance(transport, HttpTransport)
    try:
        assert (transport.url, transport._signer.region) == expected
    finally:
        await transport.close()
    if mode != "disabled":
        assert expected[0] == f"https://{ACCOUNT}.ddb.us-east-1.amazonaws.com/"
