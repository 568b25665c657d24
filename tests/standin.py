"""A stand-in for the real DynamoDB service: how the project learns what DynamoDB would say.

moto and dynalite verify no signature and answer errors in their own words. The
stand-in listens on 127.0.0.1 (a free port, plain HTTP or TLS under a throw-away CA)
and behaves as the real service does at its edges:

- every request's SigV4 signature is recomputed from the bytes and headers received,
  with the credentials the stand-in knows; a mismatch is answered as DynamoDB answers
  it (``InvalidSignatureException`` with the canonical string and string to sign it
  expected), and so are unknown keys, expired session tokens and requests signed more
  than 5 minutes away from its clock (which can be skewed; its ``Date`` header tells
  the skewed time);
- errors carry DynamoDB's exact bodies (``__type`` with the service's namespaces,
  ``message``) and headers (``x-amzn-RequestId``, ``x-amz-crc32``, ``Date``,
  ``application/x-amz-json-1.0``);
- a small in-memory store serves CreateTable, DescribeTable, ListTables, GetItem,
  PutItem, UpdateItem (``SET`` of whole attributes) and DeleteItem, with simple
  conditions (``attribute_exists``, ``attribute_not_exists``, ``=``, ``AND``);
- it can throttle the next N requests or for T seconds, drop connections (before or
  after doing the work), answer any error once, and act as an HTTP proxy: requests in
  absolute form are served, and CONNECT either opens a tunnel to itself or is refused
  (407 by default when refused);
- every request received is recorded (``requests``) for assertions.

It is not DynamoDB: expressions beyond the ones above are refused with a
ValidationException that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import hashlib
import hmac
import ipaddress
import json
import random
import re
import ssl
import string
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

HOST = "127.0.0.1"
REGION = "us-east-1"
SERVICE = "dynamodb"
ACCESS_KEY = "AKIDSTANDINEXAMPLE"
SECRET_KEY = "standin/Secret+Key/wJalrXUtnFEMIEXAMPLE"
JSON_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "DynamoDB_20120810."
MAX_SKEW = dt.timedelta(minutes=5)
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
MAX_REQUESTS_PER_CONNECTION = 10_000
IDLE_TIMEOUT = 30.0

# The namespaces DynamoDB puts before an error code in ``__type``.
DYNAMODB_NS = "com.amazonaws.dynamodb.v20120810#"
CORAL_NS = "com.amazon.coral.service#"
VALIDATE_NS = "com.amazon.coral.validate#"
AVAILABILITY_NS = "com.amazon.coral.availability#"
NAMESPACES = {
    "ValidationException": VALIDATE_NS,
    "ThrottlingException": AVAILABILITY_NS,
    "UnrecognizedClientException": CORAL_NS,
    "InvalidSignatureException": CORAL_NS,
    "IncompleteSignatureException": CORAL_NS,
    "MissingAuthenticationTokenException": CORAL_NS,
    "ExpiredTokenException": CORAL_NS,
    "AccessDeniedException": CORAL_NS,
    "SerializationException": CORAL_NS,
    "UnknownOperationException": CORAL_NS,
}

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
THROTTLE_MESSAGES = {
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API."
    ),
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "RequestLimitExceeded": (
        "Throughput exceeds the current throughput limit for your account. "
        "Please contact AWS Support at https://aws.amazon.com/support request a limit increase"
    ),
}

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# ---------------------------------------------------------------- SigV4, from what was received


def _uri_encode(text: str, *, keep_slash: bool) -> str:
    return quote(text, safe="-_.~/" if keep_slash else "-_.~")


def canonical_uri(path: str) -> str:
    """The path, normalised and URI-encoded twice as every service but S3 does."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalised = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalised += "/"
    return _uri_encode(_uri_encode(normalised, keep_slash=True), keep_slash=True)


def canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append(
            (
                _uri_encode(unquote(name), keep_slash=False),
                _uri_encode(unquote(value), keep_slash=False),
            )
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_request(
    method: str, target: str, headers: list[tuple[str, str]], signed: list[str], body: bytes
) -> str:
    """SigV4's canonical request, from the request line's target and the headers as received
    (all values of a repeated header, trimmed, inner runs of spaces made one)."""
    parts = urlsplit(target)
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    lines = "".join(f"{name}:{','.join(values.get(name, []))}\n" for name in signed)
    return "\n".join(
        (
            method,
            canonical_uri(parts.path or "/"),
            canonical_query(parts.query),
            lines,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        )
    )


def string_to_sign(amz_date: str, scope: str, creq: str) -> str:
    digest = hashlib.sha256(creq.encode()).hexdigest()
    return f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret: str, scope: str, sts: str) -> str:
    day, region, service, _ = scope.split("/")
    return hmac.new(
        signing_key(secret, day, region, service), sts.encode(), hashlib.sha256
    ).hexdigest()


_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]+)$"
)


# ---------------------------------------------------------------- a throw-away CA


class ThrowawayCA:
    """A certificate authority made at test time, and a server certificate it signed for
    127.0.0.1, localhost and ``hosts``. ``ca_file`` is the PEM a client must trust."""

    def __init__(self, directory: Path, hosts: tuple[str, ...] = ()) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dynamodm stand-in test CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.DNSName(host) for host in hosts]
        names.append(x509.IPAddress(ipaddress.ip_address(HOST)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / "standin-ca.pem"
        self.cert_file = directory / "standin-server.pem"
        self.key_file = directory / "standin-server.key"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


# ---------------------------------------------------------------- what was received


@dataclass
class Received:
    """One request as it arrived, and how the stand-in answered it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    status: int | None = None  # None: the connection was dropped instead
    code: str | None = None
    request_id: str | None = None
    answer: bytes = b""  # the body answered

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    @property
    def operation(self) -> str | None:
        target = self.header("x-amz-target") or ""
        return target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ServiceFault(Exception):
    """An error answer: DynamoDB's status, code and message."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> bytes:
        namespace = NAMESPACES.get(self.code, DYNAMODB_NS)
        payload: dict[str, Any] = {"__type": namespace + self.code}
        if self.message:
            payload["message"] = self.message
        payload.update(self.extra)
        return json.dumps(payload, separators=(",", ":")).encode()


class _Drop(Exception):
    """Close the connection without answering."""


# ---------------------------------------------------------------- the tiny store


@dataclass
class _Table:
    description: dict[str, Any]
    key: tuple[str, ...]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def identity(self, item: dict[str, Any], what: str = "key") -> str:
        if what == "key" and set(item) != set(self.key):
            raise ServiceFault(
                "ValidationException", "The provided key element does not match the schema"
            )
        try:
            return json.dumps([item[name] for name in self.key], sort_keys=True)
        except KeyError as missing:
            raise ServiceFault(
                "ValidationException",
                f"One or more parameter values were invalid: Missing the key {missing.args[0]} "
                "in the item",
            ) from None


_CONDITION = re.compile(
    r"^\s*(?:(?P<fn>attribute_exists|attribute_not_exists)\s*\(\s*(?P<path>[#\w]+)\s*\)"
    r"|(?P<left>[#\w]+)\s*=\s*(?P<right>:\w+))\s*$"
)
_SET = re.compile(r"^\s*(?P<path>[#\w]+)\s*=\s*(?P<value>:\w+)\s*$")


def _name(path: str, names: dict[str, str]) -> str:
    if path.startswith("#"):
        if path not in names:
            raise ServiceFault(
                "ValidationException",
                "Value provided in ExpressionAttributeNames unused in expressions: "
                f"An expression attribute name used in the document path is not defined; "
                f"attribute name: {path}",
            )
        return names[path]
    return path


def _value(token: str, values: dict[str, Any]) -> Any:
    if token not in values:
        raise ServiceFault(
            "ValidationException",
            "Invalid ConditionExpression: An expression attribute value used in expression "
            f"is not defined; attribute value: {token}",
        )
    return values[token]


def _unwrap(text: str) -> str:
    """``(a)`` -> ``a``, as often as the whole text is one parenthesised group."""
    text = text.strip()
    for _ in range(len(text)):
        if not (text.startswith("(") and text.endswith(")")):
            break
        depth = 0
        for position, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and position < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def _holds(condition: str | None, item: dict[str, Any] | None, request: dict[str, Any]) -> bool:
    if not condition:
        return True
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    current = item or {}
    for clause in re.split(r"\s+AND\s+", _unwrap(condition), flags=re.IGNORECASE):
        match = _CONDITION.match(_unwrap(clause))
        if match is None:
            raise ServiceFault(
                "ValidationException",
                "Invalid ConditionExpression: the stand-in evaluates attribute_exists, "
                "attribute_not_exists and = joined by AND",
            )
        if match["fn"]:
            present = _name(match["path"], names) in current
            if present != (match["fn"] == "attribute_exists"):
                return False
        elif current.get(_name(match["left"], names)) != _value(match["right"], values):
            return False
    return True


class _Store:
    def __init__(self, region: str) -> None:
        self.region = region
        self.tables: dict[str, _Table] = {}

    def table(self, request: dict[str, Any], describe: bool = False) -> _Table:
        name = request.get("TableName")
        table = self.tables.get(str(name))
        if table is None:
            suffix = f": Table: {name} not found" if describe else ""
            raise ServiceFault("ResourceNotFoundException", f"Requested resource not found{suffix}")
        return table

    def __call__(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, operation, None)
        if handler is None:
            raise ServiceFault("ValidationException", f"The stand-in does not serve {operation}")
        result: dict[str, Any] = handler(request)
        return result

    def CreateTable(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("TableName", ""))
        if name in self.tables:
            raise ServiceFault("ResourceInUseException", f"Table already exists: {name}")
        key = tuple(
            part["AttributeName"]
            for kind in ("HASH", "RANGE")
            for part in request.get("KeySchema", [])
            if part.get("KeyType") == kind
        )
        if not key:
            raise ServiceFault(
                "ValidationException", "1 validation error detected: Value null at 'keySchema'"
            )
        description = {
            "TableName": name,
            "TableArn": f"arn:aws:dynamodb:{self.region}:123456789012:table/{name}",
            "TableId": "00000000-0000-4000-8000-000000000000",
            "KeySchema": request["KeySchema"],
            "AttributeDefinitions": request.get("AttributeDefinitions", []),
            "TableStatus": "CREATING",
            "CreationDateTime": time.time(),
            "ItemCount": 0,
            "TableSizeBytes": 0,
            "BillingModeSummary": {"BillingMode": request.get("BillingMode", "PROVISIONED")},
            "ProvisionedThroughput": {
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": request.get("ProvisionedThroughput", {}).get(
                    "ReadCapacityUnits", 0
                ),
                "WriteCapacityUnits": request.get("ProvisionedThroughput", {}).get(
                    "WriteCapacityUnits", 0
                ),
            },
            "DeletionProtectionEnabled": False,
        }
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if request.get(kind):
                description[kind] = [
                    {**index, "IndexStatus": "ACTIVE", "ItemCount": 0} for index in request[kind]
                ]
        self.tables[name] = _Table(description, key)
        return {"TableDescription": dict(description)}

    def DescribeTable(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request, describe=True)
        table.description["TableStatus"] = "ACTIVE"
        table.description["ItemCount"] = len(table.items)
        return {"Table": dict(table.description)}

    def ListTables(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"TableNames": sorted(self.tables)}

    def GetItem(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request)
        item = table.items.get(table.identity(request.get("Key", {})))
        return {"Item": item} if item is not None else {}

    def PutItem(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request)
        item = request.get("Item", {})
        identity = table.identity(item, what="item")
        old = table.items.get(identity)
        self._check(request, old)
        table.items[identity] = item
        return {"Attributes": old} if old and request.get("ReturnValues") == "ALL_OLD" else {}

    def UpdateItem(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request)
        key = request.get("Key", {})
        identity = table.identity(key)
        old = table.items.get(identity)
        self._check(request, old)
        expression = str(request.get("UpdateExpression", "")).strip()
        if not expression.upper().startswith("SET "):
            raise ServiceFault(
                "ValidationException",
                "Invalid UpdateExpression: the stand-in serves SET of whole attributes only",
            )
        names = request.get("ExpressionAttributeNames", {})
        values = request.get("ExpressionAttributeValues", {})
        new = dict(old or key)
        for action in expression[4:].split(","):
            match = _SET.match(action)
            if match is None:
                raise ServiceFault(
                    "ValidationException",
                    "Invalid UpdateExpression: the stand-in serves SET of whole attributes only",
                )
            new[_name(match["path"], names)] = _value(match["value"], values)
        table.items[identity] = new
        wanted = request.get("ReturnValues", "NONE")
        if wanted == "ALL_NEW":
            return {"Attributes": new}
        if wanted == "ALL_OLD" and old:
            return {"Attributes": old}
        return {}

    def DeleteItem(self, request: dict[str, Any]) -> dict[str, Any]:
        table = self.table(request)
        identity = table.identity(request.get("Key", {}))
        old = table.items.get(identity)
        self._check(request, old)
        table.items.pop(identity, None)
        return {"Attributes": old} if old and request.get("ReturnValues") == "ALL_OLD" else {}

    @staticmethod
    def _check(request: dict[str, Any], old: dict[str, Any] | None) -> None:
        if not _holds(request.get("ConditionExpression"), old, request):
            extra: dict[str, Any] = {}
            if old and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
                extra["Item"] = old
            raise ServiceFault(
                "ConditionalCheckFailedException", "The conditional request failed", **extra
            )


# ---------------------------------------------------------------- the server


def _amz(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


class StandIn:
    """``async with StandIn() as service:`` — then point a session at ``service.endpoint_url``
    with ``service.credentials()``; ``service.requests`` records what arrived."""

    def __init__(
        self,
        *,
        region: str = REGION,
        tls: ThrowawayCA | None = None,
        seed: int = 20261206,
    ) -> None:
        self.region = region
        self.tls = tls
        self.keys: dict[str, str] = {ACCESS_KEY: SECRET_KEY}
        self.tokens: dict[str, str] = {}  # access key -> the session token it requires
        self.expired_tokens: set[str] = set()
        self.requests: list[Received] = []
        self.tunnels: list[str] = []  # CONNECT targets received
        self.skew = 0.0  # seconds added to the real clock
        self.connect_status = 200  # the answer to CONNECT: 200 opens a tunnel to itself
        self.store = _Store(region)
        self._random = random.Random(seed)
        self._throttle_count = 0
        self._throttle_until = 0.0
        self._throttle_code = "ProvisionedThroughputExceededException"
        self._drops: list[bool] = []  # one entry per request to drop: True = after the work
        self._faults: list[ServiceFault] = []
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0
        self.proxy_port = 0

    # -- lifecycle

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

    @property
    def proxy_url(self) -> str:
        """The stand-in as a plain HTTP proxy on a port of its own: requests in absolute
        form are served, CONNECT opens a tunnel to the stand-in (TLS inside when it serves
        TLS) or is refused with ``connect_status``."""
        return f"http://{HOST}:{self.proxy_port}"

    def credentials(self, access_key: str = ACCESS_KEY) -> dict[str, str]:
        """Keyword arguments for ``aioboto3.Session`` that the stand-in accepts."""
        found = {
            "aws_access_key_id": access_key,
            "aws_secret_access_key": self.keys[access_key],
            "region_name": self.region,
        }
        if access_key in self.tokens:
            found["aws_session_token"] = self.tokens[access_key]
        return found

    def add_key(self, access_key: str, secret: str, token: str | None = None) -> None:
        self.keys[access_key] = secret
        if token is not None:
            self.tokens[access_key] = token

    async def start(self) -> StandIn:
        context = self.tls.server_context() if self.tls is not None else None
        service = await asyncio.start_server(
            self._serve,
            HOST,
            0,
            limit=MAX_HEAD,
            ssl=context,
            ssl_handshake_timeout=IDLE_TIMEOUT if context is not None else None,
        )
        proxy = await asyncio.start_server(self._serve, HOST, 0, limit=MAX_HEAD)
        self._servers = [service, proxy]
        self.port = service.sockets[0].getsockname()[1]
        self.proxy_port = proxy.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in servers:
            await server.wait_closed()

    async def __aenter__(self) -> StandIn:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what tests tell it

    def now(self) -> dt.datetime:
        """The stand-in's clock (skewed by ``skew`` seconds), to the second as AWS's."""
        return dt.datetime.fromtimestamp(int(time.time() + self.skew), dt.UTC)

    def throttle(
        self,
        count: int = 0,
        *,
        seconds: float = 0.0,
        code: str = "ProvisionedThroughputExceededException",
    ) -> None:
        """Throttle the next ``count`` requests, or every request for ``seconds``."""
        self._throttle_count = count
        self._throttle_until = time.monotonic() + seconds if seconds else 0.0
        self._throttle_code = code

    def drop(self, count: int = 1, *, after: bool = False) -> None:
        """Close the connection instead of answering the next ``count`` requests; with
        ``after``, do the work first (the answer, not the request, is lost)."""
        self._drops.extend([after] * count)

    def fail(self, code: str, message: str, *, status: int = 400, count: int = 1) -> None:
        """Answer the next ``count`` authenticated requests with this error."""
        self._faults.extend(ServiceFault(code, message, status) for _ in range(count))

    def received(self, operation: str | None = None) -> list[Received]:
        return [r for r in self.requests if operation in (None, r.operation)]

    # -- serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                    return
                method, target, headers = _parse_head(head)
                if method == "CONNECT":
                    await self._connect(target, reader, writer)
                    return
                length = int(_first(headers, "content-length") or 0)
                if length > MAX_BODY:
                    await _write(writer, 413, b"", {})
                    return
                body = await asyncio.wait_for(reader.readexactly(length), IDLE_TIMEOUT)
                received = Received(method, target, headers, body)
                self.requests.append(received)
                try:
                    status, payload, extra = self._answer(received)
                except _Drop:
                    return
                await _write(writer, status, payload, extra)
                if (_first(headers, "connection") or "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            return
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _connect(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer CONNECT: refuse it, or relay the tunnel to the stand-in's own port,
        whatever host was asked for (TLS, when served, runs end to end inside)."""
        self.tunnels.append(target)
        if self.connect_status != 200:
            extra = {"Proxy-Authenticate": 'Basic realm="stand-in"'}
            await _write(writer, self.connect_status, b"", extra, json_type=False)
            return
        up_reader, up_writer = await asyncio.open_connection(HOST, self.port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_relay(reader, up_writer), _relay(up_reader, writer))
        finally:
            up_writer.close()

    def _answer(self, received: Received) -> tuple[int, bytes, dict[str, str]]:
        request_id = "".join(self._random.choices(string.ascii_uppercase + string.digits, k=52))
        received.request_id = request_id
        extra = {"x-amzn-RequestId": request_id, "Date": http_date(self.now())}
        if self._drops and not self._drops[0]:
            self._drops.pop(0)
            raise _Drop
        try:
            result = self._dispatch(received)
        except ServiceFault as fault:
            received.status, received.code = fault.status, fault.code
            received.answer = fault.body()
            return fault.status, received.answer, extra
        if self._drops:
            self._drops.pop(0)
            raise _Drop
        received.status = 200
        received.answer = json.dumps(result, separators=(",", ":")).encode()
        return 200, received.answer, extra

    def _dispatch(self, received: Received) -> dict[str, Any]:
        if received.method != "POST":
            raise ServiceFault("UnknownOperationException", "", status=400)
        self._authenticate(received)
        if self._faults:
            raise self._faults.pop(0)
        if self._throttle_count > 0 or time.monotonic() < self._throttle_until:
            self._throttle_count = max(self._throttle_count - 1, 0)
            code = self._throttle_code
            raise ServiceFault(code, THROTTLE_MESSAGES.get(code, "Throttled"))
        operation = received.operation
        if operation is None:
            raise ServiceFault("UnknownOperationException", "")
        try:
            request = json.loads(received.body or b"{}")
        except ValueError:
            raise ServiceFault("SerializationException", "") from None
        if not isinstance(request, dict):
            raise ServiceFault("SerializationException", "Start of list found where not expected")
        return self.store(operation, request)

    def _authenticate(self, received: Received) -> None:
        """DynamoDB's checks, in its order and words."""
        authorization = received.header("authorization")
        if not authorization:
            raise ServiceFault(
                "MissingAuthenticationTokenException", "Request is missing Authentication Token"
            )
        match = _AUTHORIZATION.match(authorization.strip())
        if match is None:
            raise ServiceFault(
                "IncompleteSignatureException",
                f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                f"parameters. Authorization={authorization.split(' ', 1)[0]}",
            )
        access_key, _, scope = match["credential"].partition("/")
        secret = self.keys.get(access_key)
        if secret is None:
            raise ServiceFault(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        token = received.header("x-amz-security-token")
        if token is not None and token in self.expired_tokens:
            raise ServiceFault(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        if token != self.tokens.get(access_key):
            raise ServiceFault(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        amz_date = received.header("x-amz-date") or ""
        try:
            signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            raise ServiceFault(
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header.",
            ) from None
        now = self.now()
        if signed_at < now - MAX_SKEW:
            raise ServiceFault(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than {_amz(now - MAX_SKEW)} "
                f"({_amz(now)} - 5 min.)",
            )
        if signed_at > now + MAX_SKEW:
            raise ServiceFault(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than "
                f"{_amz(now + MAX_SKEW)} ({_amz(now)} + 5 min.)",
            )
        day, region, service, terminal = ([*scope.split("/"), "", "", "", ""])[:4]
        if day != amz_date[:8]:
            raise ServiceFault(
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{day}' != '{amz_date[:8]}', from 'x-amz-date'.",
            )
        if region != self.region:
            raise ServiceFault(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{region}'. ",
            )
        if service != SERVICE or terminal != "aws4_request":
            raise ServiceFault(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{SERVICE}'. ",
            )
        signed = match["signed"].split(";")
        if "host" not in signed:
            raise ServiceFault(
                "InvalidSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            )
        creq = canonical_request(
            received.method, received.target, received.headers, signed, received.body
        )
        sts = string_to_sign(amz_date, scope, creq)
        if not hmac.compare_digest(signature(secret, scope, sts), match["signature"]):
            raise ServiceFault(
                "InvalidSignatureException",
                f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have "
                f"been\n'{creq}'\n\nThe String-to-Sign should have been\n'{sts}'\n",
            )


async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy bytes until end of file or ``IDLE_TIMEOUT`` without any."""
    for _ in range(MAX_REQUESTS_PER_CONNECTION * 16):
        chunk = await asyncio.wait_for(source.read(65536), IDLE_TIMEOUT)
        if not chunk:
            break
        sink.write(chunk)
        await sink.drain()
    with contextlib.suppress(OSError):
        sink.write_eof()


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return method, target, headers


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


async def _write(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    extra: dict[str, str],
    *,
    json_type: bool = True,
) -> None:
    """One HTTP/1.1 answer with DynamoDB's headers (``Date`` from the stand-in's clock)."""
    headers = {
        "Server": "Server",
        "Date": extra.pop("Date", None) or http_date(dt.datetime.now(dt.UTC)),
        **({"Content-Type": JSON_TYPE} if json_type else {}),
        "Content-Length": str(len(body)),
        "Connection": "keep-alive",
        **extra,
    }
    if json_type:
        headers["x-amz-crc32"] = str(zlib.crc32(body))
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
