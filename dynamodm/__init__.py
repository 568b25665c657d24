"""dynamodm: an async object mapper for Amazon DynamoDB, on Pydantic v2 and aioboto3."""

from .batch import BatchWriter, batch_write
from .collection import Collection, CollectionQuery
from .errors import (
    AlreadyExists,
    BatchWriteError,
    CancellationReason,
    ConditionFailed,
    ConfigurationError,
    ConnectionFailed,
    DynamoDMError,
    InvalidCursor,
    InvalidModel,
    ItemInvalid,
    ItemTooLarge,
    NotFound,
    OutcomeUnknown,
    RequestTimeout,
    ServiceError,
    TableDifference,
    TableNotFound,
    Throttled,
    TransactionCanceled,
    UniqueViolation,
    UsageError,
    VersionConflict,
)
from .expressions import Action, Condition, ConditionLike, Path, attr
from .hooks import after, before
from .iac import table_definitions
from .migrations import migration
from .model import Model, new_id
from .observe import CapturedRequest, DryRun, RequestEvent, dry_run
from .otel import instrument, uninstrument
from .query import Page, Query
from .ratelimit import RateLimit
from .registry import Registry, registry
from .retry import RetryPolicy, RetryQuota
from .schema import (
    TTL,
    CreatedAt,
    GlobalIndex,
    HashKey,
    LocalIndex,
    OnDemand,
    Provisioned,
    RangeKey,
    Template,
    UpdatedAt,
    Version,
)
from .serverless import lambda_handler, run, stream_handler
from .session import Session, connect
from .streams import StreamChange, parse_stream
from .tables import Backup, TableDescription, TimeToLive
from .transaction import Transaction, transact_get, transaction

__version__ = "0.1.0"

__all__ = [
    "TTL",
    "Action",
    "AlreadyExists",
    "Backup",
    "BatchWriteError",
    "BatchWriter",
    "CancellationReason",
    "CapturedRequest",
    "Collection",
    "CollectionQuery",
    "Condition",
    "ConditionFailed",
    "ConditionLike",
    "ConfigurationError",
    "ConnectionFailed",
    "CreatedAt",
    "DryRun",
    "DynamoDMError",
    "GlobalIndex",
    "HashKey",
    "InvalidCursor",
    "InvalidModel",
    "ItemInvalid",
    "ItemTooLarge",
    "LocalIndex",
    "Model",
    "NotFound",
    "OnDemand",
    "OutcomeUnknown",
    "Page",
    "Path",
    "Provisioned",
    "Query",
    "RangeKey",
    "RateLimit",
    "Registry",
    "RequestEvent",
    "RequestTimeout",
    "RetryPolicy",
    "RetryQuota",
    "ServiceError",
    "Session",
    "StreamChange",
    "TableDescription",
    "TableDifference",
    "TableNotFound",
    "Template",
    "Throttled",
    "TimeToLive",
    "Transaction",
    "TransactionCanceled",
    "UniqueViolation",
    "UpdatedAt",
    "UsageError",
    "Version",
    "VersionConflict",
    "after",
    "attr",
    "batch_write",
    "before",
    "connect",
    "dry_run",
    "instrument",
    "lambda_handler",
    "migration",
    "new_id",
    "parse_stream",
    "registry",
    "run",
    "stream_handler",
    "table_definitions",
    "transact_get",
    "transaction",
    "uninstrument",
]
