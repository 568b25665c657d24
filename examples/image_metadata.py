"""Serverless image processing metadata (seed 003): imageId + userId, three GSIs, TTL.

| pattern                              | how                                                  |
|--------------------------------------|------------------------------------------------------|
| get an image by id                   | GetItem imageId + userId (``consistent=True`` too)   |
| a user's images, newest first        | Query UserImages(userId, createdAt), in pages        |
| images by processing status          | Query StatusIndex(status, createdAt)                 |
| recent images (of a day)             | Query DateIndex(day, createdAt) -- see below         |
| update status and a processing step  | one UpdateItem on ``processingSteps.<step>`` paths   |
| update only if the image exists      | ``update()``: NotFound when it does not              |
| update only if a condition holds     | ``update(condition=...)``: ConditionFailed           |
| batch get, batch write               | ``Image.batch_get``, ``dm.batch_write()``            |
| expire old metadata                  | a ``TTL`` field, stored as epoch seconds             |

**DateIndex differs from the seed.** The seed keys DateIndex on ``createdAt`` (hash) and
queries it with ``begins_with(createdAt, "2024-01-01")``. DynamoDB refuses that: a key
condition must test the hash key for equality, and ``begins_with`` only works on a range
key. Here DateIndex is keyed by ``day`` (hash, the UTC date of ``createdAt``) with
``createdAt`` as range key: "the images of 1 January, newest first" is one Query, and a
time window within the day is a key condition on ``createdAt``.

The seed's second item type, a user profile stored in the same table under the imageId
``"user_profile"``, is left out: it has a userId and a createdAt, so it would show up in
UserImages among the images. Mixing item types in one table needs an entity attribute to
tell them apart, which is dynamodm's single-table design (``examples/training_tracker.py``).

Run it against the embedded server (default) or any endpoint in DYNAMODB_ENDPOINT_URL.
"""

import asyncio
import os
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

import dynamodm as dm
from dynamodm import GlobalIndex, HashKey, Model, RangeKey
from dynamodm.local import LocalServer

images = dm.Registry("image-processing")


class Step(BaseModel):
    """One entry of ``processingSteps``: camelCase attribute names, as the seed stores them."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    status: Literal["pending", "running", "completed", "failed"] = "pending"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: str | None = None
    details: dict[str, Any] = {}


def new_image_id() -> str:
    return f"img_{dm.new_id()[:16]}"


class Image(Model):
    class Meta:
        registry = images
        table = os.environ.get("DYNAMODB_TABLE_NAME", "image-processing-metadata")
        indexes = (
            GlobalIndex("UserImages", hash_key="user_id", range_key="created_at"),
            GlobalIndex("StatusIndex", hash_key="status", range_key="created_at"),
            GlobalIndex("DateIndex", hash_key="day", range_key="created_at"),
        )

    image_id: Annotated[str, HashKey] = Field(default_factory=new_image_id, alias="imageId")
    user_id: Annotated[str, RangeKey] = Field(alias="userId")
    original_file_name: str = Field(alias="originalFileName")
    original_file_size: int = Field(alias="originalFileSize")
    original_file_type: str = Field("image/jpeg", alias="originalFileType")
    original_s3_key: str = Field(alias="originalS3Key")
    processed_s3_key: str | None = Field(None, alias="processedS3Key")
    status: Literal["uploaded", "processing", "completed", "failed"] = "uploaded"
    processing_steps: dict[str, Step] = Field(default_factory=dict, alias="processingSteps")
    created_at: Annotated[datetime, dm.CreatedAt] = Field(alias="createdAt")
    updated_at: Annotated[datetime, dm.UpdatedAt] = Field(alias="updatedAt")
    processed_at: datetime | None = Field(None, alias="processedAt")
    day: date  # DateIndex's hash key: the UTC day of created_at
    ttl: Annotated[datetime | None, dm.TTL] = None
    tags: list[str] = []
    metadata: dict[str, str] = {}


def uploaded(user_id: str, name: str, size: int, at: datetime, **more: Any) -> Image:
    """A new image's metadata, as the upload handler writes it."""
    image_id = new_image_id()
    return Image(
        image_id=image_id,
        user_id=user_id,
        original_file_name=name,
        original_file_size=size,
        original_s3_key=f"uploads/{user_id}/{image_id}.jpg",
        created_at=at,
        day=at.astimezone(UTC).date(),
        **more,
    )


ALICE, BRUNO = "user_alice", "user_bruno"
NEW_YEAR = datetime(2024, 1, 1, tzinfo=UTC)


def check(ok: bool, wrong: str) -> None:
    """Stop the run when a result is not the expected one."""
    if not ok:
        raise SystemExit(f"image_metadata FAILED: {wrong}")


def step(name: str, text: str) -> None:
    print(f"  {name:<15} {text}")


async def run(endpoint_url: str) -> None:
    prefix = f"images-{dm.new_id()[:6]}-"
    async with dm.connect(endpoint_url=endpoint_url, table_prefix=prefix) as db:
        created = await db.create_tables(*images.models)
        info = await db.describe_table(Image)
        check(
            set(info.indexes) == {"UserImages", "StatusIndex", "DateIndex"},
            f"indexes {sorted(info.indexes)}",
        )
        check(info.ttl_attribute in ("ttl", None), f"TTL on {info.ttl_attribute!r}")
        ttl_note = f"TTL on {info.ttl_attribute!r}" if info.ttl_attribute else "no TTL here"
        step("create_tables", f"{created[0]}: {sorted(info.indexes)}, {ttl_note}")
        try:
            await flows(db)
        finally:
            await db.delete_tables(*images.models)
        check(not await db.list_tables(), "the table should be gone")
        step("delete_tables", created[0])


async def flows(db: dm.Session) -> None:
    table = db.table_name(Image)

    # -- uploads, written in one batch
    hour = timedelta(hours=1)
    gallery = [
        uploaded(ALICE, "vacation-photo.jpg", 2_048_576, NEW_YEAR - 3 * hour, tags=["family"]),
        uploaded(ALICE, "beach.jpg", 1_500_000, NEW_YEAR - hour, metadata={"camera": "iPhone 12"}),
        uploaded(BRUNO, "skyline.jpg", 3_100_000, NEW_YEAR + hour),
        uploaded(ALICE, "fireworks.jpg", 2_600_000, NEW_YEAR + 10 * hour),
        uploaded(ALICE, "breakfast.jpg", 900_000, NEW_YEAR + 21 * hour),
        uploaded(BRUNO, "snow.jpg", 1_200_000, NEW_YEAR + 22 * hour),
        uploaded(ALICE, "sunrise.jpg", 1_800_000, NEW_YEAR + 25 * hour),
    ]
    async with dm.batch_write() as batch:
        for image in gallery:
            batch.put(image)
    check(batch.written == len(gallery), f"batch_write wrote {batch.written}")
    step("batch_write", f"{len(gallery)} uploads")
    photo, beach = gallery[0], gallery[1]

    # -- get by id, consistent and not; batch get
    fetched = await Image.get(photo.image_id, ALICE, consistent=True)
    check(fetched == photo, f"the image reads back equal: {fetched!r}")
    check(await Image.get_or_none(photo.image_id, BRUNO) is None, "another user's key")
    found = await Image.batch_get([(beach.image_id, ALICE), ("img_missing", ALICE)])
    check([i.image_id for i in found] == [beach.image_id], "batch_get: the one that exists")
    check(found[0].metadata == {"camera": "iPhone 12"}, "batch_get reads whole items")
    step("get", f"{photo.original_file_name} (consistent read); batch_get 2 keys -> 1")

    # -- a user's images, newest first, in pages (the seed's Limit + ExclusiveStartKey)
    newest_first = Image.query(ALICE, index="UserImages", reverse=True)
    names: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        page = await newest_first.page(size=2, cursor=cursor)
        names += [i.original_file_name for i in page.items]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    alices = [i for i in gallery if i.user_id == ALICE]
    expected = [i.original_file_name for i in sorted(alices, key=lambda i: i.created_at)][::-1]
    check(names == expected, f"alice's images newest first: {names}")
    step("UserImages", f"alice, newest first, {pages} pages of 2: {names}")
    try:
        Image.query(ALICE, index="UserImages", consistent=True)
    except dm.UsageError as error:
        step("UserImages", f"consistent=True refused on a GSI: {error}")
    else:
        raise SystemExit("image_metadata FAILED: a consistent read of a GSI must be refused")

    # -- recent images of a day (DateIndex keyed by day), and a window within the day
    new_year = await Image.query(NEW_YEAR.date(), index="DateIndex", reverse=True).all()
    check(
        [i.original_file_name for i in new_year]
        == ["snow.jpg", "breakfast.jpg", "fireworks.jpg", "skyline.jpg"],
        f"images of 1 January, newest first: {[i.original_file_name for i in new_year]}",
    )
    evening = await Image.query(
        NEW_YEAR.date(), dm.attr(Image.created_at) >= NEW_YEAR + 20 * hour, index="DateIndex"
    ).all()
    check(
        [i.original_file_name for i in evening] == ["breakfast.jpg", "snow.jpg"],
        f"images of 1 January from 20:00: {[i.original_file_name for i in evening]}",
    )
    step("DateIndex", f"1 Jan: {len(new_year)} images, {len(evening)} from 20:00")

    # -- processing: status and nested processingSteps.<step> paths
    steps = dm.attr(Image.processing_steps)
    started = datetime.now(UTC)
    await photo.update(
        steps["validation"].set(Step(status="running", started_at=started)),
        status="processing",
    )
    await photo.update(
        steps["validation"].status.set("completed"),
        steps["validation"].completed_at.set(started + timedelta(seconds=5)),
        steps["validation"].result.set("valid"),
    )
    check(photo.processing_steps["validation"].status == "completed", "validation completed")
    check(photo.processing_steps["validation"].started_at == started, "startedAt kept")
    resize = Step(
        status="completed",
        started_at=started + timedelta(seconds=5),
        completed_at=started + timedelta(seconds=15),
        details={
            "original": {"width": 1920, "height": 1080},
            "processed": {"width": 800, "height": 600},
        },
    )
    await photo.update(steps["resize"].set(resize))
    # The seed's update_image_status(status="completed", step_data=...), in one UpdateItem.
    finished = started + timedelta(seconds=20)
    watermark = Step(
        status="completed",
        started_at=started + timedelta(seconds=15),
        completed_at=finished,
        details={"watermarkType": "text", "watermarkText": "Processed by Image Platform"},
    )
    await photo.update(
        steps["watermark"].set(watermark),
        status="completed",
        processed_at=finished,
        processed_s3_key=f"processed/{ALICE}/{photo.image_id}.jpg",
    )
    stored = await Image.get(photo.image_id, ALICE, consistent=True)
    check(stored == photo, "update() refreshed the instance to what is stored")
    check(
        {name: s.status for name, s in stored.processing_steps.items()}
        == {"validation": "completed", "resize": "completed", "watermark": "completed"},
        f"processing steps: {stored.processing_steps}",
    )
    check(stored.processing_steps["resize"] == resize, "a whole step round-trips")
    raw = (
        await db.client.get_item(
            TableName=table, Key={"imageId": {"S": photo.image_id}, "userId": {"S": ALICE}}
        )
    )["Item"]
    validation = raw["processingSteps"]["M"]["validation"]["M"]
    check(
        validation["status"] == {"S": "completed"} and "startedAt" in validation,
        f"processingSteps.validation on the wire: {validation}",
    )
    step("steps", "validation -> running -> completed; resize, watermark set whole")
    step("on the wire", f"processingSteps.validation = {sorted(validation)}")

    # -- status queries
    completed = await Image.query("completed", index="StatusIndex").all()
    check([i.image_id for i in completed] == [photo.image_id], "completed images")
    waiting = await Image.query("uploaded", index="StatusIndex", reverse=True).page(size=20)
    check(len(waiting.items) == len(gallery) - 1 and waiting.cursor is None, "uploaded images")
    step("StatusIndex", f"completed: 1, uploaded: {len(waiting.items)}")

    # -- conditional updates
    try:
        await beach.update(condition=Image.status == "processing", status="completed")
    except dm.ConditionFailed as error:
        was = error.item.status if isinstance(error.item, Image) else None
        check(type(error) is dm.ConditionFailed and was == "uploaded", f"error.item: {was}")
        step("condition", f"status == 'processing' refused: ConditionFailed (it is {was!r})")
    else:
        raise SystemExit("image_metadata FAILED: the condition should have failed")
    gone = gallery[2]
    await gone.delete()
    try:
        await gone.update(status="processing")
    except dm.NotFound:
        step("only if exists", "update() of a deleted image: NotFound, nothing written")
    else:
        raise SystemExit("image_metadata FAILED: update() of a missing item must raise")
    check(
        await Image.get_or_none(gone.image_id, BRUNO, consistent=True) is None,
        "a refused update must not create the item",
    )

    # -- TTL: epoch seconds on the wire; set, read, removed
    expires = datetime.now(UTC) + timedelta(days=30)
    await beach.update(ttl=expires)
    check(beach.ttl == expires.replace(microsecond=0), f"TTL keeps whole seconds: {beach.ttl}")
    raw = (
        await db.client.get_item(
            TableName=table, Key={"imageId": {"S": beach.image_id}, "userId": {"S": ALICE}}
        )
    )["Item"]
    check(raw["ttl"] == {"N": str(int(expires.timestamp()))}, f"ttl on the wire: {raw['ttl']}")
    step("ttl", f"set to {expires:%Y-%m-%d}: stored as {raw['ttl']}")
    await beach.update(ttl=None)
    raw = (
        await db.client.get_item(
            TableName=table, Key={"imageId": {"S": beach.image_id}, "userId": {"S": ALICE}}
        )
    )["Item"]
    check("ttl" not in raw and beach.ttl is None, "update(ttl=None) removes the attribute")
    step("ttl", "removed: the image no longer expires")


async def main() -> None:
    print("image metadata")
    endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if endpoint_url:
        step("server", f"{endpoint_url} (from DYNAMODB_ENDPOINT_URL)")
        await run(endpoint_url)
    else:
        async with LocalServer() as server:
            step("server", f"embedded moto at {server.endpoint_url}")
            await run(server.endpoint_url)
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
