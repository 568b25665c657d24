"""The library's errors, and the one table that maps service error codes to them.

Messages name the model, field and operation and say what to do; they never
contain item values or credentials. Values travel as attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tables import TableDifference


class DynamoDMError(Exception):
    """Base class of every error dynamodm raises.

    ``code`` and ``service_message`` keep what DynamoDB answered, when it answered.
    """

    code: str | None = None
    service_message: str | None = None

    def __init__(
        self, message: str, *, code: str | None = None, service_message: str | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if service_message is not None:
            self.service_message = service_message


class ConfigurationError(DynamoDMError):
    """The session or environment is not set up for this call.

    From ``db.check_tables()``, ``differences`` lists every way the live tables differ
    from the models (``dm.TableDifference``); it is empty otherwise.
    """

    differences: tuple[TableDifference, ...] = ()


class InvalidModel(DynamoDMError):
    """A model declaration that DynamoDB or dynamodm cannot accept."""


class UsageError(DynamoDMError):
    """A call that cannot be valid, whatever the data."""


class NotFound(DynamoDMError):
    """The item does not exist. ``key`` is the key asked for (AttributeValues)."""

    def __init__(self, message: str, *, key: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.key = key


class ConditionFailed(DynamoDMError):
    """A condition on a write did not hold. ``item`` is the item as stored, or None."""

    def __init__(self, message: str, *, item: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.item = item


class AlreadyExists(ConditionFailed):
    """``create`` found an item with the same key."""


class VersionConflict(ConditionFailed):
    """Another writer changed the item since it was read; nothing was written."""


class UniqueViolation(ConditionFailed):
    """A unique field's value is already taken. ``field`` and ``value`` say which."""

    def __init__(self, message: str, *, field: str, value: Any, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field
        self.value = value


class TransactionCanceled(DynamoDMError):
    """A transaction was cancelled; ``reasons`` holds one entry per action."""

    def __init__(self, message: str, *, reasons: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reasons = reasons or []


class TableNotFound(DynamoDMError):
    """The table does not exist (create it with ``db.create_tables()``)."""


class ItemTooLarge(DynamoDMError):
    """The item exceeds DynamoDB's 400 KB item size."""

    def __init__(self, message: str, *, size: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.size = size


class Throttled(DynamoDMError):
    """DynamoDB kept throttling the request until the retry budget ran out."""


class BatchWriteError(DynamoDMError):
    """Some items of a batch write were not written; ``items`` lists them."""

    def __init__(self, message: str, *, items: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.items = items or []


class InvalidCursor(DynamoDMError):
    """A pagination cursor that this query did not produce."""


class RequestTimeout(DynamoDMError):
    """The request timed out (after the retry budget, for calls that are retried)."""


class ConnectionFailed(DynamoDMError):
    """The endpoint could not be reached."""


class OutcomeUnknown(DynamoDMError):
    """A non-idempotent write whose response was lost: it may or may not have happened."""


class ServiceError(DynamoDMError):
    """An error answered by DynamoDB that has no more specific class."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        service_message: str = "",
        status: int = 400,
        response: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, service_message=service_message)
        self.status = status
        self.response = response or {}


class TransportError(DynamoDMError):
    """A request that got no answer. ``sent`` is False only when it surely never left."""

    def __init__(self, message: str, *, sent: bool, timeout: bool = False) -> None:
        super().__init__(message)
        self.sent = sent
        self.timeout = timeout


THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "TooManyRequestsException",
        "LimitExceededException",
    }
)
"""Codes for which the service did nothing: always safe to retry."""

TRANSIENT_CODES = frozenset(
    {
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)
"""Codes that may be retried when the request is idempotent."""

CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException"}
)


def from_service(error: ServiceError, *, operation: str, table: str | None) -> DynamoDMError:
    """Turn a service error into the library's error for that code."""
    where = f"{operation} on table {table!r}" if table else operation
    code, text = error.code or "", error.service_message or ""
    kwargs: dict[str, Any] = {"code": code, "service_message": text}
    if code == "ResourceNotFoundException":
        return TableNotFound(
            f"{where}: the table does not exist; create it with `await db.create_tables()` "
            "or `dynamodm tables create`, and check the table prefix",
            **kwargs,
        )
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(
            f"{where}: the condition did not hold", item=error.response.get("Item"), **kwargs
        )
    if code == "TransactionCanceledException":
        return TransactionCanceled(
            f"{where}: the transaction was cancelled",
            reasons=error.response.get("CancellationReasons"),
            **kwargs,
        )
    if code in THROTTLING_CODES:
        return Throttled(
            f"{where}: throttled by DynamoDB until the retry budget ran out; "
            "raise the table's capacity or slow down",
            **kwargs,
        )
    if code == "ValidationException" and "item size" in text.lower():
        return ItemTooLarge(f"{where}: the item is larger than DynamoDB's 400 KB limit", **kwargs)
    if code == "UnknownOperationException":
        return ConfigurationError(
            f"{where}: this endpoint does not support {operation} (a local server such as "
            "dynalite lacks transactions, TTL and streams); use moto or DynamoDB",
            **kwargs,
        )
    if code in CREDENTIAL_CODES:
        return ConfigurationError(
            f"{where}: DynamoDB refused the credentials ({code}); check the AWS credentials "
            "and region the session uses",
            **kwargs,
        )
    return ServiceError(
        f"{where} failed: {code}: {text}",
        code=code,
        service_message=text,
        status=error.status,
        response=error.response,
    )
