"""Where DynamoDB requests go: the endpoint URL and signing region for a region, resolved
as botocore's endpoint ruleset for DynamoDB (2012-08-10) resolves them, without loading
botocore.

The rules follow ``botocore/data/dynamodb/2012-08-10/endpoint-rule-set-1.json.gz``;
the partitions (aws, aws-cn, aws-us-gov, the ISO and sovereign clouds) are read from the
installed botocore's ``data/partitions.json``, so new regions and partitions arrive with
botocore. ``tests/unit/test_endpoints.py`` compares the two for every region.

The ruleset's ``ResourceArn`` rules (a table given by its ARN) do not apply: dynamodm
addresses tables by name.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .credentials import ensure_boolean
from .errors import ConfigurationError

ACCOUNT_ID_ENDPOINT_MODES = ("preferred", "disabled", "required")

_HOST_LABEL = re.compile(r"^(?!-)[a-zA-Z\d-]{1,63}(?<!-)$")  # the ruleset's isValidHostLabel
_REGION_NAME = re.compile(r"^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{,63}(?<!-)$")  # botocore's check
_FIPS_ACCOUNT = (
    "Invalid Configuration: AccountIdEndpointMode is required and FIPS is enabled, "
    "but FIPS account endpoints are not supported"
)


class ConfigSource(Protocol):
    """What endpoint resolution reads from a botocore session or a ``SharedConfig``."""

    def get_config_variable(self, logical_name: str) -> Any: ...

    def get_scoped_config(self) -> dict[str, Any]: ...

    @property
    def full_config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Partition:
    name: str
    dns_suffix: str
    dual_stack_dns_suffix: str
    supports_fips: bool
    supports_dual_stack: bool


@dataclass(frozen=True)
class Endpoint:
    """The URL requests are sent to and the region they are signed for."""

    url: str
    signing_region: str


@dataclass(frozen=True)
class EndpointSettings:
    """The inputs of the ruleset besides the region, as configured."""

    endpoint_url: str | None = None
    use_fips: bool = False
    use_dualstack: bool = False
    account_id_endpoint_mode: str = "preferred"


def _botocore_data() -> Path:
    spec = importlib.util.find_spec("botocore")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise ConfigurationError("botocore is not installed: install dynamodm's dependencies")
    return Path(spec.origin).parent / "data"


@functools.cache
def _partitions() -> tuple[tuple[re.Pattern[str], frozenset[str], Partition], ...]:
    data = json.loads((_botocore_data() / "partitions.json").read_bytes())
    partitions = []
    for entry in data["partitions"]:
        outputs = entry["outputs"]
        partition = Partition(
            name=entry["id"],
            dns_suffix=outputs["dnsSuffix"],
            dual_stack_dns_suffix=outputs["dualStackDnsSuffix"],
            supports_fips=bool(outputs["supportsFIPS"]),
            supports_dual_stack=bool(outputs["supportsDualStack"]),
        )
        partitions.append(
            (re.compile(entry["regionRegex"]), frozenset(entry["regions"]), partition)
        )
    return tuple(partitions)


def partition(region: str) -> Partition:
    """The partition of a region: the first that lists it or whose pattern it matches,
    else aws (the ruleset's ``aws.partition``)."""
    partitions = _partitions()
    for pattern, regions, found in partitions:
        if region in regions or pattern.match(region):
            return found
    return partitions[0][2]


def normalize_region(region: str) -> tuple[str, bool]:
    """The region without a FIPS pseudo-region's ``fips-``/``-fips``, and whether it had one
    (botocore then turns FIPS on). An invalid region name is a ``ConfigurationError``."""
    if not _REGION_NAME.match(region):
        raise ConfigurationError(
            f"region {region!r} is not a valid region name: use one like 'us-east-1'"
        )
    bare = region.replace("fips-", "").replace("-fips", "")
    return bare, bare != region


@functools.cache
def _legacy_partitions() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads((_botocore_data() / "endpoints.json").read_bytes())["partitions"])


def _legacy_refusal(region: str, use_fips: bool, use_dualstack: bool) -> str | None:
    """Why botocore's older resolver (``data/endpoints.json``), which still runs when a
    client is created, refuses FIPS or dual-stack for DynamoDB in this region, if it does:
    the partition has no endpoint variant with those tags (dual-stack in aws-iso-e,
    aws-iso-f and aws-eusc today). It skips aws-iso and aws-iso-b for dual-stack."""
    tags = {"dualstack"} if use_dualstack else set()
    if use_fips:
        tags.add("fips")
    if not tags:
        return None
    for data in _legacy_partitions():
        if use_dualstack and data["partition"] in ("aws-iso", "aws-iso-b"):
            continue
        service = data["services"].get("dynamodb", {})
        known = service.get("endpoints", {})
        if not (
            region in known
            or region in data["regions"]
            or ("regionRegex" in data and re.match(data["regionRegex"], region))
        ):
            continue
        sources = (known.get(region, {}), service.get("defaults", {}), data.get("defaults", {}))
        if any(set(v["tags"]) == tags for s in sources for v in s.get("variants", [])):
            return None
        return (
            f"botocore has no {' and '.join(sorted(tags))} endpoint for DynamoDB in "
            f"{region} (partition {data['partition']}): turn use_dualstack_endpoint or "
            "use_fips_endpoint off"
        )
    return None


def resolve(
    region: str,
    *,
    endpoint_url: str | None = None,
    use_fips: bool = False,
    use_dualstack: bool = False,
    account_id: str | None = None,
    account_id_endpoint_mode: str = "preferred",
) -> Endpoint:
    """DynamoDB's endpoint for a region, as a botocore client resolves it: the endpoint
    ruleset, after the check botocore's older resolver makes when the client is created
    (``_legacy_refusal``).

    An ``endpoint_url`` is used as given (botocore turns FIPS and dual-stack off when one
    is set). Account-based endpoints (``https://<account>.ddb.<region>.amazonaws.com``)
    are used in the aws partition, without FIPS, when the mode is not ``disabled`` and the
    credentials name their account; with the account unknown, ``preferred`` falls back to
    the regional endpoint and ``required`` is an error, as in botocore. What the ruleset
    calls an error is a ``ConfigurationError`` carrying the ruleset's message.
    """
    refusal = _legacy_refusal(region, use_fips, use_dualstack)
    if refusal is not None:
        raise ConfigurationError(refusal)
    if endpoint_url:
        use_fips = use_dualstack = False
    return ruleset_endpoint(
        region,
        endpoint_url=endpoint_url,
        use_fips=use_fips,
        use_dualstack=use_dualstack,
        account_id=account_id,
        account_id_endpoint_mode=account_id_endpoint_mode,
    )


def ruleset_endpoint(
    region: str,
    *,
    endpoint_url: str | None = None,
    use_fips: bool = False,
    use_dualstack: bool = False,
    account_id: str | None = None,
    account_id_endpoint_mode: str = "preferred",
) -> Endpoint:
    """The endpoint botocore's ruleset for DynamoDB gives for these inputs (its
    ``EndpointProvider.resolve_endpoint``)."""
    found = partition(region)
    if endpoint_url:
        if endpoint_url == f"https://dynamodb.{region}.{found.dual_stack_dns_suffix}":
            raise ConfigurationError(
                "Endpoint override is not supported for dual-stack endpoints. Please enable "
                "dual-stack functionality by enabling the configuration (use_dualstack_endpoint "
                "or AWS_USE_DUALSTACK_ENDPOINT) instead of setting this endpoint_url"
            )
        return Endpoint(endpoint_url, region)
    if region == "local":
        if use_fips:
            raise ConfigurationError(
                "Invalid Configuration: FIPS and local endpoint are not supported"
            )
        if use_dualstack:
            raise ConfigurationError(
                "Invalid Configuration: Dualstack and local endpoint are not supported"
            )
        return Endpoint("http://localhost:8000", "us-east-1")
    required = account_id_endpoint_mode == "required"
    if use_fips and use_dualstack:
        if not (found.supports_fips and found.supports_dual_stack):
            raise ConfigurationError(
                "FIPS and DualStack are enabled, but this partition does not support one or both"
            )
        if required:
            raise ConfigurationError(_FIPS_ACCOUNT)
        return Endpoint(f"https://dynamodb-fips.{region}.{found.dual_stack_dns_suffix}", region)
    if use_fips:
        if not found.supports_fips:
            raise ConfigurationError("FIPS is enabled but this partition does not support FIPS")
        if required:
            raise ConfigurationError(_FIPS_ACCOUNT)
        # DynamoDB's GovCloud endpoints are FIPS endpoints already.
        name = "dynamodb" if found.name == "aws-us-gov" else "dynamodb-fips"
        return Endpoint(f"https://{name}.{region}.{found.dns_suffix}", region)
    if use_dualstack and not found.supports_dual_stack:
        raise ConfigurationError(
            "DualStack is enabled but this partition does not support DualStack"
        )
    suffix = found.dual_stack_dns_suffix if use_dualstack else found.dns_suffix
    if account_id_endpoint_mode != "disabled" and found.name == "aws" and account_id:
        if not _HOST_LABEL.match(account_id):
            raise ConfigurationError("Credentials-sourced account ID parameter is invalid")
        return Endpoint(f"https://{account_id}.ddb.{region}.{suffix}", region)
    if required:
        if found.name == "aws":
            raise ConfigurationError(
                "AccountIdEndpointMode is required but no AccountID was provided or able to "
                "be loaded"
            )
        raise ConfigurationError(
            "Invalid Configuration: AccountIdEndpointMode is required but account endpoints "
            "are not supported in this partition"
        )
    return Endpoint(f"https://dynamodb.{region}.{suffix}", region)


def uses_account_id(region: str, settings: EndpointSettings) -> bool:
    """Whether the endpoint depends on the credentials' account id (so that it is worth
    asking the credential chain for it)."""
    return (
        not settings.endpoint_url
        and not settings.use_fips
        and settings.account_id_endpoint_mode != "disabled"
        and region != "local"
        and partition(region).name == "aws"
    )


def configured_endpoint_url(config: ConfigSource) -> str | None:
    """The endpoint URL configured outside the code, in botocore's order:
    ``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, ``endpoint_url`` under
    ``dynamodb`` in the profile's ``services`` section, the profile's ``endpoint_url``;
    none of them when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` (or the profile's
    ``ignore_configured_endpoint_urls``) is true."""
    if ensure_boolean(config.get_config_variable("ignore_configured_endpoint_urls")):
        return None
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name]
    scoped = config.get_scoped_config()
    if "services" in scoped:
        section = config.full_config.get("services", {}).get(scoped["services"])
        if not section:
            raise ConfigurationError(
                f"the AWS profile names the services section {scoped['services']!r}, "
                "which the AWS config file does not have"
            )
        service = section.get("dynamodb")
        if isinstance(service, dict) and service.get("endpoint_url"):
            return str(service["endpoint_url"])
    value = scoped.get("endpoint_url")
    return str(value) if value else None


def settings_from(
    config: ConfigSource, endpoint_url: str | None, *, fips_region: bool = False
) -> EndpointSettings:
    """The ruleset's inputs from a botocore session or a ``SharedConfig``: the endpoint URL
    given or configured, FIPS (also on for a FIPS pseudo-region), dual-stack and the
    account id endpoint mode (``AWS_ACCOUNT_ID_ENDPOINT_MODE`` or the profile's)."""
    url = endpoint_url or configured_endpoint_url(config)
    mode = config.get_config_variable("account_id_endpoint_mode")
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in ACCOUNT_ID_ENDPOINT_MODES:
        raise ConfigurationError(
            f"account_id_endpoint_mode {mode!r} (AWS_ACCOUNT_ID_ENDPOINT_MODE or the profile) "
            f"is not one of {', '.join(ACCOUNT_ID_ENDPOINT_MODES)}"
        )
    return EndpointSettings(
        url,
        use_fips=fips_region or ensure_boolean(config.get_config_variable("use_fips_endpoint")),
        use_dualstack=ensure_boolean(config.get_config_variable("use_dualstack_endpoint")),
        account_id_endpoint_mode=mode,
    )
