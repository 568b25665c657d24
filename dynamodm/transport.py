"""Transports send one DynamoDB request and return its response, behind one small interface.

A transport raises ``ServiceError`` for an error the service answered and
``TransportError`` for a request that got no answer; the session decides what
to retry and which library error to raise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

import aiohttp
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
