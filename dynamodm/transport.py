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
import ssl
import time
import urllib.request
import zlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache
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
    SSLError,
)

from .errors import ServiceError, TransportError, is_clock_skew

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
            metadata = exc.response.get("ResponseMetadata", {})
            code = str(error.get("Code", "Unknown"))
            request_id = metadata.get("RequestId") or None
            raise ServiceError(
                f"{operation}: {code} (request id {request_id or 'unknown'})",
                code=code,
                service_message=str(error.get("Message", "")),
                status=int(metadata.get("HTTPStatusCode", 400)),
                response=exc.response,
                request_id=request_id,
                server_date=metadata.get("HTTPHeaders", {}).get("date"),
            ) from None
        except (
            EndpointConnectionError,
            ConnectTimeoutError,
            ProxyConnectionError,
            # The TLS handshake failed (an untrusted certificate), before any request.
            SSLError,
        ) as exc:
            raise TransportError(
                f"{type(exc).__name__}", sent=False, timeout=isinstance(exc, ConnectTimeoutError)
            ) from None
        except ReadTimeoutError:
            raise TransportError("read timeout", sent=True, timeout=True) from None
        except (HTTPClientError, aiohttp.ClientError) as exc:
            raise TransportError(type(exc).__name__, sent=True) from None
        except TimeoutError:
            raise TransportError("timeout", sent=True, timeout=True) from None
        # Only the request id is kept, as the fast transport does (see HttpTransport.send).
        metadata = response.get("ResponseMetadata")
        if metadata is not None:
            response["ResponseMetadata"] = {"RequestId": metadata.get("RequestId")}
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


def endpoint_parts(url: str) -> tuple[str, str, str]:
    """The URL to send to, the Host header aiohttp sends for it, and the path to sign.

    aiohttp sends the host lower-cased, without a trailing dot and without the scheme's
    default port; botocore signs the same way (bar the dot). The URL is rewritten to
    that spelling once, so that the signed host is the sent host however the endpoint
    was written (``https://DynamoDB.eu-west-1.amazonaws.com.:443``)."""
    parsed = urlparse(url)
    name = (parsed.hostname or "").rstrip(".")
    host = f"[{name}]" if ":" in name else name
    port = parsed.port
    if port is not None and port != {"http": 80, "https": 443}.get(parsed.scheme):
        host = f"{host}:{port}"
    path = parsed.path or "/"
    return f"{parsed.scheme}://{host}{path}", host, path


@cache
def user_agent() -> str:
    """``dynamodm/<version>`` (the version read once): the fast transport's User-Agent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"dynamodm/{version('dynamodm')}"
    except PackageNotFoundError:
        return "dynamodm/0"


def default_ca_bundle() -> str:
    """The CA bundle botocore trusts when none is configured: certifi's, else its own."""
    try:
        import certifi
    except ImportError:
        from botocore.httpsession import DEFAULT_CA_BUNDLE

        return str(DEFAULT_CA_BUNDLE)
    return str(certifi.where())


def ssl_context(verify: bool | str | None) -> ssl.SSLContext | bool:
    """The trust store botocore would use for ``verify``: False turns verification off, a
    path is a CA bundle (``ca_bundle`` in the profile, ``AWS_CA_BUNDLE``), and True or None
    is certifi's bundle, as botocore does (not the system store)."""
    if verify is False:
        return False
    bundle = verify if isinstance(verify, str) else default_ca_bundle()
    return ssl.create_default_context(cafile=bundle)


def _clock_offset(server_date: str | None, local: float) -> float | None:
    """Seconds to add to this machine's clock to read the service's, from an HTTP Date."""
    if not server_date:
        return None
    try:
        return float(parsedate_to_datetime(server_date).timestamp()) - local
    except (TypeError, ValueError):
        return None


class SigV4Signer:
    """AWS Signature Version 4 for DynamoDB's JSON POST, with the signing key cached per day.

    ``host`` is the Host header as sent (``endpoint_parts``) and is returned among the
    headers, so what is signed is what is sent. ``offset`` is added to this machine's
    clock: the transport sets it when the service refuses the request's time."""

    def __init__(self, region: str, host: str, path: str = "/", service: str = "dynamodb") -> None:
        self.region = region
        self.host = host
        self.path = path or "/"
        self.service = service
        self.offset = 0.0
        self._keys: dict[tuple[str, str], bytes] = {}
        self._second = -1
        self._amz_date = ""

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached = self._keys.get((secret, day))
        if cached is None:
            key = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys.clear()
            cached = self._keys[(secret, day)] = key
        return cached

    def string_to_sign(self, amz_date: str, canonical_request: str) -> str:
        """SigV4's string to sign for a canonical request signed at ``amz_date``."""
        return (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{amz_date[:8]}/{self.region}/{self.service}/"
            f"aws4_request\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )

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
            second = int(time.time() + self.offset)
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
        signature = hmac.new(
            self._signing_key(secret, day),
            self.string_to_sign(amz_date, request).encode(),
            hashlib.sha256,
        ).hexdigest()
        headers = {
            "Host": self.host,
            "Content-Type": _CONTENT_TYPE,
            "X-Amz-Date": amz_date,
            "X-Amz-Target": target,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={access_key}/{day}/{self.region}/"
                f"{self.service}/aws4_request, SignedHeaders={signed}, Signature={signature}"
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
        verify: bool | str | None = None,
    ) -> None:
        self.client = client
        self._credentials = credentials
        self._http = http
        self._stack = stack
        self.url, host, path = endpoint_parts(endpoint_url)
        self._proxy = _proxy_for(self.url)
        self._signer = SigV4Signer(region, host, path)
        self._targets: dict[str, str] = {}
        if verify is None:
            # The trust store botocore resolved for the same session: verify=, then
            # AWS_CA_BUNDLE, the profile's ca_bundle, REQUESTS_CA_BUNDLE, then certifi.
            endpoint = getattr(client, "_endpoint", None)
            verify = getattr(getattr(endpoint, "http_session", None), "_verify", None)
        self._ssl: ssl.SSLContext | bool = (
            ssl_context(verify) if self.url.startswith("https:") else True
        )
        self._user_agent = user_agent()

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
        """Send one request. A successful response carries the answer's request id as
        ``response["ResponseMetadata"]["RequestId"]``, as botocore's do."""
        target = self._targets.get(operation)
        if target is None:
            target = self._targets[operation] = _TARGET + operation
        body = orjson.dumps(request, default=_b64_bytes)
        corrected = False
        while True:
            frozen = await self._credentials.get_frozen_credentials()
            headers = self._signer.headers(
                target, body, frozen.access_key, frozen.secret_key, frozen.token
            )
            headers["User-Agent"] = self._user_agent
            try:
                async with self._http.post(
                    self.url, data=body, headers=headers, proxy=self._proxy, ssl=self._ssl
                ) as answer:
                    payload = await answer.read()
                    status = answer.status
                    answer_headers = answer.headers
            except aiohttp.ClientHttpProxyError as exc:
                # The proxy refused the CONNECT tunnel (407, 403...): nothing reached DynamoDB.
                raise TransportError(
                    f"the proxy refused the tunnel (HTTP {exc.status}); check HTTPS_PROXY "
                    "and its credentials",
                    sent=False,
                ) from None
            except aiohttp.ClientConnectorError as exc:
                raise TransportError(f"cannot connect: {exc.os_error}", sent=False) from None
            except aiohttp.ConnectionTimeoutError:
                raise TransportError("connect timeout", sent=False, timeout=True) from None
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise TransportError("read timeout", sent=True, timeout=True) from None
            except aiohttp.ClientError as exc:
                raise TransportError(type(exc).__name__, sent=True) from None
            crc = answer_headers.get("x-amz-crc32")
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
            request_id = answer_headers.get("x-amzn-RequestId")
            if status == 200:
                # A new key on the parsed dict: the id travels without copying the body.
                if request_id is not None:
                    data["ResponseMetadata"] = {"RequestId": request_id}
                result: Response = data
                return result
            kind = str(data.get("__type", "")).rpartition("#")[2] or f"HTTP{status}"
            message = str(data.get("message") or data.get("Message") or "")
            server_date = answer_headers.get("Date")
            if not corrected and is_clock_skew(kind, message):
                # DynamoDB refuses a request signed more than 5 minutes away from its clock,
                # having done nothing. Its Date gives the offset: sign again with the
                # corrected clock, once, and keep the offset for later requests.
                offset = _clock_offset(server_date, time.time())
                if offset is not None:
                    self._signer.offset = offset
                    corrected = True
                    continue
            raise ServiceError(
                f"{operation}: {kind} (request id {request_id or 'unknown'})",
                code=kind,
                service_message=message,
                status=status,
                response=data,
                request_id=request_id,
                server_date=server_date,
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
