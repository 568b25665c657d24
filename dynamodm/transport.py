"""Transports send one DynamoDB request and return its response, behind one small interface.

A transport raises ``ServiceError`` for an error the service answered and
``TransportError`` for a request that got no answer; the session decides what
to retry and which library error to raise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import time
import urllib.request
import zlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlparse

import aiohttp
import orjson
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
)

from .errors import ServiceError, TransportError

Request = dict[str, Any]
Response = dict[str, Any]


LOCAL_CREDENTIALS = ("dynamodm-local", "dynamodm-local")


class Transport(Protocol):
    """Sends one DynamoDB operation (``"GetItem"``...) with its request body."""

    async def send(self, operation: str, request: Request) -> Response: ...

    async def close(self) -> None: ...


class BotocoreTransport:
    """The aioboto3 low-level client: botocore's serializer, signer and parser."""

    def __init__(self, client: Any, stack: AsyncExitStack) -> None:
        self.client = client
        self._stack = stack
        self._methods: dict[str, Callable[..., Awaitable[Response]]] = {}

    @classmethod
    async def open(
        cls,
        boto_session: Any,
        *,
        region: str,
        endpoint_url: str | None,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
    ) -> BotocoreTransport:
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
            parameter_validation=False,
        )
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            boto_session.client(
                "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
            )
        )
        return cls(client, stack)

    async def send(self, operation: str, request: Request) -> Response:
        method = self._methods.get(operation)
        if method is None:
            method = self._methods[operation] = getattr(self.client, xform_name(operation))
        try:
            response = await method(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            raise ServiceError(
                f"{operation}: {error.get('Code')}",
                code=str(error.get("Code", "Unknown")),
                service_message=str(error.get("Message", "")),
                status=int(status),
                response=exc.response,
            ) from None
        except (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError) as exc:
            raise TransportError(
                f"{type(exc).__name__}", sent=False, timeout=isinstance(exc, ConnectTimeoutError)
            ) from None
        except ReadTimeoutError:
            raise TransportError("read timeout", sent=True, timeout=True) from None
        except (HTTPClientError, aiohttp.ClientError) as exc:
            raise TransportError(type(exc).__name__, sent=True) from None
        except TimeoutError:
            raise TransportError("timeout", sent=True, timeout=True) from None
        response.pop("ResponseMetadata", None)
        return response

    async def close(self) -> None:
        await self._stack.aclose()


# ---------------------------------------------------------------- the fast transport

_TARGET = "DynamoDB_20120810."
_BINARY = re.compile(rb'"BS?"\s*:')  # a B or BS value somewhere in a response
_CONTENT_TYPE = "application/x-amz-json-1.0"
_SIGNED_PLAIN = "content-type;host;x-amz-date;x-amz-target"
_SIGNED_TOKEN = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"


def _b64_bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _decode_binary(node: Any) -> Any:
    """Turn the base64 text of B and BS AttributeValues into bytes, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "B" and isinstance(value, str) and len(node) == 1:
                node[key] = base64.b64decode(value)
            elif key == "BS" and isinstance(value, list) and len(node) == 1:
                node[key] = [base64.b64decode(v) for v in value]
            elif isinstance(value, dict | list):
                _decode_binary(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, dict | list):
                _decode_binary(value)
    return node


def _proxy_for(url: str) -> str | None:
    """HTTPS_PROXY / HTTP_PROXY / NO_PROXY as botocore reads them, resolved once (asking
    the environment on every request costs a thread hop in aiohttp)."""
    parsed = urlparse(url)
    if not parsed.hostname or urllib.request.proxy_bypass(parsed.hostname):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parsed.scheme) or None


class SigV4Signer:
    """AWS Signature Version 4 for DynamoDB's JSON POST, with the signing key cached per day."""

    def __init__(self, region: str, host: str, path: str = "/") -> None:
        self.region = region
        self.host = host
        self.path = path or "/"
        self._keys: dict[tuple[str, str], bytes] = {}
        self._second = -1
        self._amz_date = ""

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached = self._keys.get((secret, day))
        if cached is None:
            key = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, "dynamodb", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys.clear()
            cached = self._keys[(secret, day)] = key
        return cached

    def headers(
        self,
        target: str,
        body: bytes,
        access_key: str,
        secret: str,
        token: str | None,
        now: datetime | None = None,
    ) -> dict[str, str]:
        if now is None:
            second = int(time.time())
            if second != self._second:
                self._second = second
                self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            amz_date = self._amz_date
        else:
            amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        canonical = [
            f"content-type:{_CONTENT_TYPE}",
            f"host:{self.host}",
            f"x-amz-date:{amz_date}",
        ]
        if token:
            canonical.append(f"x-amz-security-token:{token}")
        canonical.append(f"x-amz-target:{target}")
        signed = _SIGNED_TOKEN if token else _SIGNED_PLAIN
        request = "\n".join(
            (
                "POST",
                self.path,
                "",
                "\n".join(canonical) + "\n",
                signed,
                hashlib.sha256(body).hexdigest(),
            )
        )
        scope = f"{day}/{self.region}/dynamodb/aws4_request"
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(request.encode()).hexdigest())
        )
        signature = hmac.new(
            self._signing_key(secret, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": _CONTENT_TYPE,
            "X-Amz-Date": amz_date,
            "X-Amz-Target": target,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers


class HttpTransport:
    """The fast transport: aioboto3's credentials (the whole chain, refreshed), a SigV4
    signer, one pooled keep-alive aiohttp session and orjson; DynamoDB's JSON protocol."""

    def __init__(
        self,
        *,
        client: Any,
        credentials: Any,
        endpoint_url: str,
        region: str,
        http: aiohttp.ClientSession,
        stack: AsyncExitStack,
    ) -> None:
        self.client = client
        self._credentials = credentials
        self._http = http
        self._stack = stack
        parsed = urlparse(endpoint_url)
        self.url = endpoint_url
        self._proxy = _proxy_for(endpoint_url)
        self._signer = SigV4Signer(region, parsed.netloc, parsed.path or "/")
        self._targets: dict[str, str] = {}

    @classmethod
    async def open(
        cls,
        boto_session: Any,
        *,
        region: str,
        endpoint_url: str | None,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        verify: bool | str | None = None,
    ) -> HttpTransport:
        stack = AsyncExitStack()
        try:
            # The aioboto3 client resolves the endpoint as botocore does (AWS_ENDPOINT_URL*
            # included) and stays available as db.client.
            client = await stack.enter_async_context(
                boto_session.client(
                    "dynamodb",
                    region_name=region,
                    endpoint_url=endpoint_url,
                    config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
                )
            )
            credentials = await boto_session.get_credentials()
            if credentials is None:
                from .errors import ConfigurationError

                raise ConfigurationError(
                    "no AWS credentials found: configure them (environment, profile, role) "
                    "or use a loopback endpoint_url for the local server"
                )
            ssl: Any = None
            bundle = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
            if verify is False:
                ssl = False
            elif bundle:
                import ssl as ssl_module

                ssl = ssl_module.create_default_context(cafile=bundle)
            connector = aiohttp.TCPConnector(
                limit=max_connections, ttl_dns_cache=300, keepalive_timeout=4.0, ssl=ssl
            )
            http = await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=connect_timeout, sock_read=read_timeout
                    ),
                    trust_env=False,
                    skip_auto_headers=("User-Agent", "Accept-Encoding"),
                    auto_decompress=False,
                )
            )
        except BaseException:
            await stack.aclose()
            raise
        return cls(
            client=client,
            credentials=credentials,
            endpoint_url=client.meta.endpoint_url,
            region=region,
            http=http,
            stack=stack,
        )

    async def send(self, operation: str, request: Request) -> Response:
        target = self._targets.get(operation)
        if target is None:
            target = self._targets[operation] = _TARGET + operation
        body = orjson.dumps(request, default=_b64_bytes)
        frozen = await self._credentials.get_frozen_credentials()
        headers = self._signer.headers(
            target, body, frozen.access_key, frozen.secret_key, frozen.token
        )
        try:
            async with self._http.post(
                self.url, data=body, headers=headers, proxy=self._proxy
            ) as answer:
                payload = await answer.read()
                status = answer.status
                crc = answer.headers.get("x-amz-crc32")
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(f"cannot connect: {exc.os_error}", sent=False) from None
        except aiohttp.ConnectionTimeoutError:
            raise TransportError("connect timeout", sent=False, timeout=True) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise TransportError("read timeout", sent=True, timeout=True) from None
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__, sent=True) from None
        if crc is not None and zlib.crc32(payload) != int(crc):
            raise TransportError("the response failed its CRC32 check", sent=True)
        try:
            data = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            # An HTML error page from a server or a load balancer: judged by its status.
            if status == 200:
                raise TransportError("the response was not DynamoDB JSON", sent=True)
            data = {}
        if _BINARY.search(payload):
            _decode_binary(data)
        if status == 200:
            result: Response = data
            return result
        kind = str(data.get("__type", "")).rpartition("#")[2] or f"HTTP{status}"
        message = data.get("message") or data.get("Message") or ""
        raise ServiceError(
            f"{operation}: {kind}",
            code=kind,
            service_message=str(message),
            status=status,
            response=data,
        )

    async def close(self) -> None:
        await self._stack.aclose()


# ---------------------------------------------------------------- opening


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def is_loopback(endpoint_url: str | None) -> bool:
    """Whether an endpoint URL names this machine (the embedded or a local server)."""
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def open_transport(
    kind: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    boto_session: Any,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
) -> tuple[Transport, str]:
    """Open a transport (``"http"`` or ``"botocore"``) and return it with the region used.

    Against a loopback endpoint with no credentials configured, dummy credentials and
    us-east-1 are used so that the embedded server works on a fresh machine.
    """
    import aioboto3

    local = is_loopback(endpoint_url)
    # Precedence as in every AWS SDK: region=, the region of a session passed in, then
    # AWS_REGION, AWS_DEFAULT_REGION and the profile.
    if boto_session is not None:
        region = region or boto_session.region_name
    region = region or _env("AWS_REGION", "AWS_DEFAULT_REGION")
    if boto_session is None:
        if local and not (_env("AWS_ACCESS_KEY_ID") or _env("AWS_PROFILE")):
            key, secret = LOCAL_CREDENTIALS
            boto_session = aioboto3.Session(aws_access_key_id=key, aws_secret_access_key=secret)
        else:
            boto_session = aioboto3.Session()
    region = region or boto_session.region_name or ("us-east-1" if local else None)
    if region is None:
        from .errors import ConfigurationError

        raise ConfigurationError("no AWS region: pass dm.connect(region=...) or set AWS_REGION")
    opener = HttpTransport if kind == "http" else BotocoreTransport
    transport = await opener.open(
        boto_session,
        region=region,
        endpoint_url=endpoint_url,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_connections=max_connections,
    )
    return transport, region
