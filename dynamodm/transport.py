"""Transports send one DynamoDB request and return its response, behind one small interface.

A transport raises ``ServiceError`` for an error the service answered and
``TransportError`` for a request that got no answer; the session decides what
to retry and which library error to raise.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
import re
import ssl
import time
import urllib.request
import zlib
from collections.abc import Awaitable, Callable, Generator
from contextlib import AsyncExitStack
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, Protocol
from urllib.parse import urlparse

import aiohttp
import orjson

from . import endpoints
from .codec import decode_binary, request_json
from .credentials import SharedConfig, StaticCredentials, environment_credentials
from .endpoints import ConfigSource
from .errors import ConfigurationError, ServiceError, TransportError, UsageError, is_clock_skew

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
        from botocore.config import Config

        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
            parameter_validation=False,
            user_agent_extra=user_agent(),
        )
        if endpoint_url is not None:
            # Sent as botocore signs it: lower-cased, no default port, no trailing dot.
            endpoint_url = endpoint_parts(endpoint_url)[0]
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
            from botocore import xform_name

            method = self._methods[operation] = getattr(self.client, xform_name(operation))
        try:
            response = await method(**request)
        except Exception as exc:
            failure = _botocore_failure(operation, exc)
            if failure is None:
                raise
            raise failure from None
        # Only the request id is kept, as the fast transport does (see HttpTransport.send).
        metadata = response.get("ResponseMetadata")
        if metadata is not None:
            response["ResponseMetadata"] = {"RequestId": metadata.get("RequestId")}
        return response

    async def close(self) -> None:
        await self._stack.aclose()


def _botocore_failure(operation: str, exc: Exception) -> Exception | None:
    """The library's error for what the aioboto3 client raised, or None to let it through.

    botocore is imported here, not at module level (it is loaded by then: the client
    raised it), so that ``import dynamodm`` does not load it."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        ProxyConnectionError,
        ReadTimeoutError,
        SSLError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code", "Unknown"))
        request_id = metadata.get("RequestId") or None
        return ServiceError(
            f"{operation}: {code} (request id {request_id or 'unknown'})",
            code=code,
            service_message=str(error.get("Message", "")),
            status=int(metadata.get("HTTPStatusCode", 400)),
            response=exc.response,
            request_id=request_id,
            server_date=metadata.get("HTTPHeaders", {}).get("date"),
        )
    if isinstance(
        exc, EndpointConnectionError | ConnectTimeoutError | ProxyConnectionError | SSLError
    ):
        # SSLError: the TLS handshake failed (an untrusted certificate), before any request.
        return TransportError(
            f"{type(exc).__name__}", sent=False, timeout=isinstance(exc, ConnectTimeoutError)
        )
    if isinstance(exc, ReadTimeoutError):
        return TransportError("read timeout", sent=True, timeout=True)
    if isinstance(exc, HTTPClientError | aiohttp.ClientError):
        return TransportError(type(exc).__name__, sent=True)
    if isinstance(exc, TimeoutError):
        return TransportError("timeout", sent=True, timeout=True)
    return None


# ---------------------------------------------------------------- the fast transport

_TARGET = "DynamoDB_20120810."
_BINARY = re.compile(rb'"BS?"\s*:')  # a B or BS value somewhere in a response
_ITEMS = {
    "GetItem": "Item",
    "Query": "Items",
    "Scan": "Items",
    "BatchGetItem": "Responses",
    "UpdateItem": "Attributes",
}
_CONTENT_TYPE = "application/x-amz-json-1.0"
_SIGNED_PLAIN = "content-type;host;x-amz-date;x-amz-target"
_SIGNED_TOKEN = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"


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
        # ``verify`` as botocore takes it (open resolves verify=, AWS_CA_BUNDLE, the
        # profile's ca_bundle, REQUESTS_CA_BUNDLE); True or None: certifi's bundle.
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
        credentials: StaticCredentials | None = None,
    ) -> HttpTransport:
        """Open the transport without creating any botocore client.

        ``credentials`` are used as given (the environment's key, the local server's dummy
        one); else ``boto_session`` (an aioboto3 session) supplies its credential chain.
        The endpoint is resolved as botocore resolves it (``endpoints.py``) from the
        settings of ``boto_session``, or of the environment and the AWS config files."""
        config: ConfigSource = SharedConfig() if boto_session is None else boto_session._session
        bare_region, fips_region = endpoints.normalize_region(region)
        settings = endpoints.settings_from(config, endpoint_url, fips_region=fips_region)
        signing: Any = credentials
        if signing is None:
            signing = await boto_session.get_credentials()
            if signing is None:
                raise ConfigurationError(
                    "no AWS credentials found: configure them (environment, profile, role) "
                    "or use a loopback endpoint_url for the local server"
                )
        account_id = None
        if endpoints.uses_account_id(bare_region, settings):
            # botocore reads the account id of the credentials when it resolves the endpoint.
            frozen = await signing.get_frozen_credentials()
            account_id = getattr(frozen, "account_id", None)
        endpoint = endpoints.resolve(
            bare_region,
            endpoint_url=settings.endpoint_url,
            use_fips=settings.use_fips,
            use_dualstack=settings.use_dualstack,
            account_id=account_id,
            account_id_endpoint_mode=settings.account_id_endpoint_mode,
        )
        if verify is None:
            # botocore's trust store: verify=, AWS_CA_BUNDLE or the profile's ca_bundle,
            # REQUESTS_CA_BUNDLE, then certifi.
            verify = config.get_config_variable("ca_bundle") or os.environ.get("REQUESTS_CA_BUNDLE")
        client = LazyClient(
            boto_session,
            credentials,
            region=region,
            endpoint_url=endpoint_url,
            resolved_url=endpoint.url,
        )
        stack = AsyncExitStack()
        stack.push_async_callback(client.close)
        try:
            connector = aiohttp.TCPConnector(
                limit=max_connections, ttl_dns_cache=300, keepalive_timeout=4.0
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
            credentials=signing,
            endpoint_url=endpoint.url,
            region=endpoint.signing_region,
            http=http,
            stack=stack,
            verify=verify if verify is not None else True,
        )

    async def send(self, operation: str, request: Request, *, raw_binary: bool = False) -> Response:
        """Send one request. A successful response carries the answer's request id as
        ``response["ResponseMetadata"]["RequestId"]``, as botocore's do. With
        ``raw_binary``, the binary values of the items of a GetItem, Query, Scan,
        BatchGetItem or UpdateItem answer stay base64 text (the caller decodes them:
        ``instances.raw_loader``), and the rest of the answer (LastEvaluatedKey,
        UnprocessedKeys) is decoded here."""
        target = self._targets.get(operation)
        if target is None:
            target = self._targets[operation] = _TARGET + operation
        body = request_json(request)
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
            if raw_binary and status == 200:
                skipped = _ITEMS.get(operation)
                for name, value in data.items():
                    if name != skipped and isinstance(value, dict | list):
                        decode_binary(value)
            elif _BINARY.search(payload):
                decode_binary(data)
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


# ---------------------------------------------------------------- db.client

# Members of the aioboto3 client that are not coroutine methods: they need the client.
_SYNC_MEMBERS = frozenset({"exceptions", "get_paginator", "get_waiter", "can_paginate"})


class _PendingEvents:
    """``db.client.meta.events`` before the client exists: registrations are kept and made
    on the client's own event emitter when it is created."""

    def __init__(self) -> None:
        self._calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def register(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append(("register", args, kwargs))

    def register_first(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append(("register_first", args, kwargs))

    def register_last(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append(("register_last", args, kwargs))

    def unregister(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append(("unregister", args, kwargs))

    def replay(self, events: Any) -> None:
        for method, args, kwargs in self._calls:
            getattr(events, method)(*args, **kwargs)


class _PendingMeta:
    """``db.client.meta`` before the client exists."""

    def __init__(self, region_name: str, endpoint_url: str) -> None:
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.events = _PendingEvents()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise UsageError(
            f"db.client.meta.{name} needs the client itself: `client = await db.client`, "
            f"then client.meta.{name}"
        )


class LazyClient:
    """``db.client`` on the fast transport: the aioboto3 DynamoDB client on the session's
    credentials, region and endpoint, created by the first call of one of its methods
    (``await db.client.get_item(...)``) and closed with the session.

    Until then ``meta.region_name`` and ``meta.endpoint_url`` are known, and handlers given
    to ``meta.events.register`` are registered on the client when it is created.
    ``client = await db.client`` returns the client itself, for its other members
    (``get_paginator``, ``exceptions``...)."""

    def __init__(
        self,
        boto_session: Any,
        credentials: StaticCredentials | None,
        *,
        region: str,
        endpoint_url: str | None,
        resolved_url: str,
    ) -> None:
        self._boto_session = boto_session
        self._credentials = credentials
        self._region = region
        self._endpoint_url = endpoint_url
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._meta = _PendingMeta(endpoints.normalize_region(region)[0], resolved_url)

    async def get(self) -> Any:
        """The aioboto3 client, created on first need."""
        async with self._lock:
            if self._client is None:
                if self._closed:
                    raise ConfigurationError("this session is closed, and its client with it")
                from botocore.config import Config

                session = self._boto_session
                if session is None:
                    import aioboto3

                    given = self._credentials
                    assert given is not None  # a session or credentials, never neither
                    keys = {
                        "aws_access_key_id": given.access_key,
                        "aws_secret_access_key": given.secret_key,
                        "aws_session_token": given.token,
                    }
                    if given.account_id:  # a keyword older aioboto3 releases do not take
                        keys["aws_account_id"] = given.account_id
                    session = aioboto3.Session(**keys)
                stack = AsyncExitStack()
                client = await stack.enter_async_context(
                    session.client(
                        "dynamodb",
                        region_name=self._region,
                        endpoint_url=self._endpoint_url,
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
                    )
                )
                if self._closed:  # the session closed while the client was being created
                    await stack.aclose()
                    raise ConfigurationError("this session is closed, and its client with it")
                self._meta.events.replay(client.meta.events)
                self._client, self._stack = client, stack
            return self._client

    def __await__(self) -> Generator[Any, None, Any]:
        return self.get().__await__()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._client is not None:
            return getattr(self._client, name)
        if name == "meta":
            return self._meta
        if name in _SYNC_MEMBERS:
            raise UsageError(
                f"db.client.{name} needs the client itself: `client = await db.client`, "
                f"then client.{name}"
            )

        async def call(*args: Any, **kwargs: Any) -> Any:
            client = await self.get()
            return await getattr(client, name)(*args, **kwargs)

        call.__name__ = call.__qualname__ = name
        return call

    async def close(self) -> None:
        self._closed = True
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


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
    us-east-1 are used so that the embedded server works on a fresh machine. With no
    ``boto_session``, an access key in the environment is used as botocore's chain would
    use it (first, whatever the profile), and the fast transport then loads no botocore;
    otherwise aioboto3's credential chain is loaded.
    """
    local = is_loopback(endpoint_url)
    # Precedence as in every AWS SDK: region=, the region of a session passed in, then
    # AWS_REGION, AWS_DEFAULT_REGION and the profile.
    if boto_session is not None:
        region = region or boto_session.region_name
    region = region or _env("AWS_REGION", "AWS_DEFAULT_REGION")
    credentials: StaticCredentials | None = None
    if boto_session is None:
        dummy = local and not (_env("AWS_ACCESS_KEY_ID") or _env("AWS_PROFILE"))
        credentials = StaticCredentials(*LOCAL_CREDENTIALS) if dummy else environment_credentials()
        if credentials is None or kind != "http":
            # botocore's transport, or credentials that only botocore's chain can find.
            import aioboto3

            key, secret = LOCAL_CREDENTIALS if dummy else (None, None)
            boto_session = aioboto3.Session(aws_access_key_id=key, aws_secret_access_key=secret)
            credentials = None
    if not region:
        # The profile's region: botocore reads it when it is loaded, else the AWS config file.
        if boto_session is not None:
            region = boto_session.region_name
        else:
            region = SharedConfig().get_config_variable("region")
    region = region or ("us-east-1" if local else None)
    if region is None:
        raise ConfigurationError("no AWS region: pass dm.connect(region=...) or set AWS_REGION")
    transport: Transport
    if kind == "http":
        transport = await HttpTransport.open(
            boto_session,
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
            credentials=credentials,
        )
    else:
        transport = await BotocoreTransport.open(
            boto_session,
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
        )
    return transport, region
