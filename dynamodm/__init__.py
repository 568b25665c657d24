"""dynamodm: an async object mapper for Amazon DynamoDB, on Pydantic v2 and aioboto3."""

from .errors import (
    AlreadyExists,
    BatchWriteError,
    ConditionFailed,
    ConfigurationError,
    ConnectionFailed,
    DynamoDMError,
    InvalidCursor,
    InvalidModel,
    ItemTooLarge,
    NotFound,
    OutcomeUnknown,
    RequestTimeout,
    TableNotFound,
    Throttled,
    TransactionCanceled,
    UniqueViolation,
    UsageError,
    VersionConflict,
)
from .expressions import Action, Condition, Path, attr
from .model import Model, new_id
from .query import Page, Query
from .registry import Registry, registry
from .retry import RetryPolicy
from .schema import (
    TTL,
    CreatedAt,
    GlobalIndex,
    HashKey,
    LocalIndex,
    Provisioned,
    RangeKey,
    UpdatedAt,
    Version,
)
from .session import Session, connect
from .tables import TableDescription

__version__ = "0.1.0"

__all__ = [
    "TTL",
    "Action",
    "AlreadyExists",
    "BatchWriteError",
    "Condition",
    "ConditionFailed",
    "ConfigurationError",
    "ConnectionFailed",
    "CreatedAt",
    "DynamoDMError",
    "GlobalIndex",
    "HashKey",
    "InvalidCursor",
    "InvalidModel",
    "ItemTooLarge",
    "LocalIndex",
    "Model",
    "NotFound",
    "OutcomeUnknown",
    "Page",
    "Path",
    "Provisioned",
    "Query",
    "RangeKey",
    "Registry",
    "RequestTimeout",
    "RetryPolicy",
    "Session",
    "TableDescription",
    "TableNotFound",
    "Throttled",
    "TransactionCanceled",
    "UniqueViolation",
    "UpdatedAt",
    "UsageError",
    "Version",
    "VersionConflict",
    "attr",
    "connect",
    "new_id",
    "registry",
]
