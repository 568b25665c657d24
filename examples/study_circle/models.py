"""AI Study Circle (seed 004): five tables, one registry.

Each model is its own table under the session's prefix (``ai-study-circle-users``...):

| model    | table     | key  | global secondary indexes                                   |
|----------|-----------|------|------------------------------------------------------------|
| User     | users     | `id` | EmailIndex(email), UsernameIndex(username)                 |
| Content  | content   | `id` | OwnerIndex(owner, createdAt)                               |
| Summary  | summaries | `id` | OwnerIndex(owner, createdAt), ContentIndex(contentId)      |
| Exam     | exams     | `id` | OwnerIndex(owner, createdAt), ContentIndex(contentId)      |
| Template | templates | `id` | CreatedByIndex(createdBy, createdAt),                      |
|          |           |      | TypeCategoryIndex(type, category),                         |
|          |           |      | PublicTemplatesIndex(isPublic, createdAt)                  |

Attribute names on the wire are the seed's camelCase; Python code uses the snake_case
field names (aliases on top-level fields, an alias generator on nested models).
``isPublic`` is a ``bool``: DynamoDB cannot key an index on BOOL, so dynamodm stores it
as the number 0 or 1 (it is an index key) and reads it back as a ``bool``.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, Model

study_circle = dm.Registry("ai-study-circle")


class Nested(BaseModel):
    """A nested map: snake_case fields in Python, camelCase attribute names in DynamoDB."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)


# -- users


class Preferences(Nested):
    language: str = "en"
    summary_style: Literal["concise", "detailed", "bullet-points"] = "concise"
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    email_notifications: bool = True


class ApiUsage(Nested):
    summaries_generated: int = 0
    exams_generated: int = 0
    tokens_used: int = 0


class User(Model):
    class Meta:
        registry = study_circle
        table = "users"
        indexes = (
            GlobalIndex("EmailIndex", hash_key="email"),
            GlobalIndex("UsernameIndex", hash_key="username"),
        )
        unique = ("email", "username")

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    username: str
    email: str
    role: Literal["student", "teacher", "admin"] = "student"
    subscription_plan: Literal["free", "premium", "enterprise"] = Field(
        "free", alias="subscriptionPlan"
    )
    preferences: Preferences = Field(default_factory=Preferences)
    api_usage: ApiUsage = Field(default_factory=ApiUsage, alias="apiUsage")
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")


# -- content


class ContentUsage(Nested):
    views: int = 0
    summaries: int = 0
    exams: int = 0


class Content(Model):
    class Meta:
        registry = study_circle
        table = "content"
        indexes = (GlobalIndex("OwnerIndex", hash_key="owner", range_key="created_at"),)

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    owner: str
    title: str
    content_type: Literal["text", "pdf", "docx", "url"] = Field("text", alias="contentType")
    source_text: str = Field(alias="sourceText")
    file_path: str | None = Field(None, alias="filePath")
    category: str = "general"
    source_metadata: dict[str, Any] = Field(default_factory=dict, alias="sourceMetadata")
    usage: ContentUsage = Field(default_factory=ContentUsage)
    status: Literal["uploaded", "processing", "ready", "failed"] = "uploaded"
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")


# -- summaries


class SummaryConfiguration(Nested):
    max_words: int = 200
    language: str = "en"
    focus: list[str] = []


class Summary(Model):
    class Meta:
        registry = study_circle
        table = "summaries"
        indexes = (
            GlobalIndex("OwnerIndex", hash_key="owner", range_key="created_at"),
            GlobalIndex("ContentIndex", hash_key="content_id"),
        )

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    owner: str
    content_id: str = Field(alias="contentId")
    summary_text: str = Field(alias="summaryText")
    summary_type: Literal["brief", "detailed", "key-points"] = Field("brief", alias="summaryType")
    style: Literal["academic", "casual", "bullet-points"] = "academic"
    configuration: SummaryConfiguration = Field(default_factory=SummaryConfiguration)
    metadata: dict[str, Any] = {}
    rating: int | None = Field(None, ge=1, le=5)
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")


# -- exams


class Question(Nested):
    question: str
    question_type: Literal["multiple-choice", "true-false", "short-answer"] = "multiple-choice"
    options: list[str] = []
    answer: str
    points: int = 1


class ExamConfiguration(Nested):
    question_count: int
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    time_limit_minutes: int | None = None


class Attempt(Nested):
    user_id: str
    score: float
    submitted_at: datetime


class ExamAnalytics(Nested):
    attempt_count: int = 0
    average_score: float = 0.0


class Exam(Model):
    class Meta:
        registry = study_circle
        table = "exams"
        indexes = (
            GlobalIndex("OwnerIndex", hash_key="owner", range_key="created_at"),
            GlobalIndex("ContentIndex", hash_key="content_id"),
        )

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    owner: str
    content_id: str = Field(alias="contentId")
    title: str
    questions: list[Question]
    configuration: ExamConfiguration
    attempts: list[Attempt] = []
    analytics: ExamAnalytics = Field(default_factory=ExamAnalytics)
    feedback: list[str] = []
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")


# -- templates


class Template(Model):
    class Meta:
        registry = study_circle
        table = "templates"
        indexes = (
            GlobalIndex("CreatedByIndex", hash_key="created_by", range_key="created_at"),
            GlobalIndex("TypeCategoryIndex", hash_key="template_type", range_key="category"),
            GlobalIndex("PublicTemplatesIndex", hash_key="is_public", range_key="created_at"),
        )

    id: Annotated[str, HashKey] = Field(default_factory=dm.new_id)
    name: str
    description: str = ""
    template_type: Literal["summary", "exam"] = Field(alias="type")
    category: str
    created_by: str = Field(alias="createdBy")
    summary_config: SummaryConfiguration | None = Field(None, alias="summaryConfig")
    exam_config: ExamConfiguration | None = Field(None, alias="examConfig")
    usage: int = 0
    ratings: list[int] = []
    is_public: bool = Field(False, alias="isPublic")
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")
