"""The library's errors, and the one table that maps service error codes to them.

Messages name the model, field and operation and say what to do; they never
contain item values or credentials. Values travel as attributes.

::

    DynamoDMError                  every error the library raises
    ├── ConfigurationError         connection, credentials, region, closed session, server gaps
    ├── InvalidModel               a declaration mistake, at class creation
    ├── UsageError                 a call that cannot be valid, refused before sending
    ├── NotFound                   no item with this key (or unique value)
    ├── ConditionFailed            a condition did not hold; .item is the item as stored
    │   ├── AlreadyExists          create() over an existing key
    │   ├── VersionConflict        the Version moved since the item was read
    │   └── UniqueViolation        a unique value is taken
    ├── TransactionCanceled        nothing was written; .reasons: CancellationReason each
    ├── ItemInvalid                a stored item does not fit its model (.key, .fields)
    ├── TableNotFound
    ├── ItemTooLarge               over DynamoDB's 400 KB, checked before sending
    ├── Throttled                  throttling outlasted the retry budget
    ├── BatchWriteError            items a batch could not write, listed
    ├── InvalidCursor              a page cursor altered, foreign or outside the query
    ├── RequestTimeout             no answer in time (reads and safe writes)
    ├── ConnectionFailed           nothing reached DynamoDB
    ├── OutcomeUnknown             a write's answer was lost: it may have happened
    ├── ServiceError               any other answer of the service (.code, .status)
    └── TransportError             internal: a request without an answer (never raised
                                   to users; the retry policy turns it into one above)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args


class DynamoDMError(Exception):
    """Base class of every error dynamodm raises.

    ``code`` and ``service_message`` keep what DynamoDB answered, when it answered, and
    ``request_id`` the ``x-amzn-RequestId`` of that answer (None when no answer came).
    ``service_message`` is DynamoDB's free text, which can quote item values: it is never
    part of ``str(error)``.
    """

    code: str | None = None
    service_message: str | None = None
    request_id: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        service_message: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if service_message is not None:
            self.service_message = service_message
        if request_id is not None:
            self.request_id = request_id


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


class ItemInvalid(DynamoDMError, ValueError):
    """A stored item does not fit its model (written by an older version of the model, or
    around the library). The message names the model and the fields, never a value: the
    item's key is on ``key`` (AttributeValues) and Pydantic's errors, without their
    inputs, on ``errors``. From a query or scan, ``items`` holds the good items read
    before it (``page()``, ``all()``) and ``cursor`` resumes after the bad item; from
    ``batch_get``, ``items`` holds every good item and ``keys`` the bad items' keys."""

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        key: Any = None,
        fields: tuple[str, ...] = (),
        errors: list[Any] | None = None,
        items: list[Any] | None = None,
        keys: list[Any] | None = None,
        cursor: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.model = model
        self.key = key
        self.fields = fields
        self.errors = errors or []
        self.items = items or []
        self.keys = keys or []
        self.cursor = cursor


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
        request_id: str | None = None,
        server_date: str | None = None,
    ) -> None:
        super().__init__(message, code=code, service_message=service_message, request_id=request_id)
        self.status = status
        self.response = response or {}
        # The answer's Date header: how the fast transport learns the service's clock.
        self.server_date = server_date


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

REJECTED_CODES = frozenset({"ReplicatedWriteConflictException", "TransactionConflictException"})
"""A write refused before it was applied (a conflicting write in another Region of a
multi-Region strongly consistent global table; a transaction in progress on the item):
nothing happened, so it is retried like throttling, also when not idempotent."""

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

EXPIRED_TOKEN_CODES = frozenset({"ExpiredTokenException", "ExpiredToken"})

# A missing table: ResourceNotFoundException from item and table operations,
# TableNotFoundException from backup operations, ResourceNotFound from moto's TTL calls.
TABLE_NOT_FOUND_CODES = frozenset(
    {"ResourceNotFoundException", "TableNotFoundException", "ResourceNotFound"}
)
# An operation the server does not have (local servers lack TTL, streams, backups...).
UNSUPPORTED_CODES = frozenset({"UnknownOperationException", "UnrecognizedClientException"})

CLOCK_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
# InvalidSignatureException with one of these messages means the request's time, not
# its signature, was refused: AWS allows 5 minutes between X-Amz-Date and its clock.
CLOCK_SKEW_MESSAGES = ("Signature expired", "Signature not yet current")


def is_clock_skew(code: str | None, service_message: str | None) -> bool:
    """Whether DynamoDB refused a request because of the time it was signed at."""
    if code in CLOCK_SKEW_CODES:
        return True
    return code == "InvalidSignatureException" and (service_message or "").startswith(
        CLOCK_SKEW_MESSAGES
    )


def _answer(code: str, request_id: str | None) -> str:
    """The code and request id for a message; never the service's free text, which can
    quote item values (ValidationException, ConditionalCheckFailedException)."""
    return f" ({code}, request id {request_id or 'unknown'})"


def from_service(error: ServiceError, *, operation: str, table: str | None) -> DynamoDMError:
    """Turn a service error into the library's error for that code.

    Every error returned carries ``code``, ``service_message`` and ``request_id``; its
    message has the code and request id but never the service message."""
    where = f"{operation} on table {table!r}" if table else operation
    code, text = error.code or "", error.service_message or ""
    kwargs: dict[str, Any] = {
        "code": code,
        "service_message": text,
        "request_id": error.request_id,
    }
    answer = _answer(code, error.request_id)
    if code in TABLE_NOT_FOUND_CODES:
        return TableNotFound(
            f"{where}: the table does not exist; create it with `await db.create_tables()` "
            f"or `dynamodm tables create`, and check the table prefix{answer}",
            **kwargs,
        )
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(
            f"{where}: the condition did not hold{answer}",
            item=error.response.get("Item"),
            **kwargs,
        )
    if code == "TransactionCanceledException":
        return TransactionCanceled(
            f"{where}: the transaction was cancelled{answer}",
            reasons=error.response.get("CancellationReasons"),
            **kwargs,
        )
    if code in THROTTLING_CODES:
        return Throttled(
            f"{where}: throttled by DynamoDB until the retry budget ran out; "
            f"raise the table's capacity or slow down{answer}",
            **kwargs,
        )
    if code == "ValidationException" and "item size" in text.lower():
        return ItemTooLarge(
            f"{where}: the item is larger than DynamoDB's 400 KB limit{answer}", **kwargs
        )
    if code == "UnknownOperationException":
        return ConfigurationError(
            f"{where}: this endpoint does not support {operation} (a local server such as "
            f"dynalite lacks transactions, TTL and streams); use moto or DynamoDB{answer}",
            **kwargs,
        )
    if is_clock_skew(code, text):
        return ConfigurationError(
            f"{where}: DynamoDB refused the request's time: this machine's clock is more than "
            "5 minutes away from DynamoDB's, even after correcting for the offset its answer "
            f"showed; synchronise the clock (NTP, chrony, timedatectl){answer}",
            **kwargs,
        )
    if code in EXPIRED_TOKEN_CODES:
        return ConfigurationError(
            f"{where}: the session token of the AWS credentials has expired; get fresh "
            "credentials (`aws sso login`, assume the role again, or renew the token in "
            f"the environment){answer}",
            **kwargs,
        )
    if code in CREDENTIAL_CODES:
        return ConfigurationError(
            f"{where}: DynamoDB refused the credentials; check the AWS credentials "
            f"and region the session uses{answer}",
            **kwargs,
        )
    return ServiceError(
        f"{where} failed{answer}",
        code=code,
        service_message=text,
        status=error.status,
        response=error.response,
        request_id=error.request_id,
    )


# ---------------------------------------------------------------- what errors carry

DifferenceKind = Literal[
    "missing_table",
    "missing_index",
    "key_schema",
    "attribute_type",
    "index",
    "ttl",
    "stream",
    "billing",
    "table_class",
    "sse",
    "tags",
    "deletion_protection",
    "pitr",
]
DIFFERENCE_KINDS: tuple[str, ...] = get_args(DifferenceKind)


@dataclass(frozen=True)
class TableDifference:
    """One way a live table differs from its models (``db.check_tables``).

    ``kind`` is one of ``missing_table``, ``missing_index``, ``key_schema``,
    ``attribute_type``, ``index`` (an index's keys or projection), ``ttl``, ``stream``.
    """

    table: str
    kind: DifferenceKind
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CancellationReason:
    """Why one action of a cancelled transaction failed (``code`` "None" when it did not)."""

    index: int
    operation: str
    model: str
    code: str
    message: str
    item: Any = None


# Reasons of a cancelled transaction after which DynamoDB wrote nothing and asks to try
# again: the same commit is sent anew, within the retry budget.
RETRYABLE_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


def retryable_cancellation(reasons: list[Any]) -> bool:
    """Whether a cancelled transaction failed only for reasons worth sending it again."""
    codes = {str((r.get("Code") if isinstance(r, dict) else r.code) or "None") for r in reasons}
    return bool(codes & RETRYABLE_CANCELLATIONS) and not (
        codes - RETRYABLE_CANCELLATIONS - {"None"}
    )
