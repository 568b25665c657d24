"""One adapter per measured client, all with the same operations.

Each adapter sends the requests its library sends for the operation, the way its
documentation shows. The mappers (dynamodm, PynamoDB, pydynox) build their model
objects from the plain rows and return model objects; the raw clients send
hand-built AttributeValues and return what their library returns.
"""

from __future__ import annotations

import asyncio
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlparse

from workload import (
    ACCESS_KEY,
    PARTITION,
    REGION,
    SECRET_KEY,
    TABLE,
    UPDATE_CONDITION,
    UPDATE_EXPRESSION,
    UPDATE_NAMES,
    Key,
    Row,
    attribute_values,
    key_values,
    update_values,
)


class Unsupported(Exception):
    """The client has no API for this operation (the cell shows the reason)."""


class Client:
    """The operations every client implements."""

    name: ClassVar[str]
    label: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    blocking: ClassVar[bool] = False  # a sync library: measured in threads

    async def open(self, endpoint: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    async def put(self, item: Row) -> None:
        raise NotImplementedError

    async def get(self, key: Key) -> Any:
        raise NotImplementedError

    async def load_for_update(self, keys: list[Key]) -> None:
        """Mappers update an instance the caller holds: read them beforehand."""

    async def update(self, key: Key, name: str) -> None:
        raise NotImplementedError

    async def query(self, limit: int) -> int:
        """Up to ``limit`` items of the partition, Limit=limit, following pages."""
        raise NotImplementedError

    async def batch_write(self, items: list[Row]) -> None:
        raise NotImplementedError

    async def batch_get(self, keys: list[Key]) -> int:
        raise NotImplementedError

    async def scan(self, segments: int, limit: int | None) -> int:
        """Iterate the table (``segments`` in parallel), counting the items."""
        raise NotImplementedError


def missing_requirement(client: type[Client]) -> str | None:
    for module in client.requires:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[bench]')"
    return None


# ---------------------------------------------------------------- the floor


def plain_row(item: dict[str, Any]) -> Row:
    """The floor's hand decoder: a stored item back to the plain row it was made from,
    written for the benchmark's one item shape (the inverse of ``attribute_values``)."""
    address = item["address"]["M"]
    return {
        "pk": item["pk"]["S"],
        "sk": item["sk"]["S"],
        "name": item["name"]["S"],
        "email": item["email"]["S"],
        "age": int(item["age"]["N"]),
        "score": float(item["score"]["N"]),
        "active": item["active"]["BOOL"],
        "tags": [tag["S"] for tag in item["tags"]["L"]],
        "address": {
            "street": address["street"]["S"],
            "city": address["city"]["S"],
            "zip": address["zip"]["S"],
        },
        "visits": int(item["visits"]["N"]),
        "bio": item["bio"]["S"],
    }


class Floor(Client):
    """No library: aiohttp (pooled, keep-alive) + SigV4 + orjson + a hand codec. Writes
    send hand-built AttributeValues; reads turn each item back into a plain dict, as the
    peers' reads do (``floor-raw`` leaves them as AttributeValues)."""

    name = "floor"
    label = "floor: aiohttp + SigV4 + orjson + hand codec"
    decode: ClassVar[bool] = True

    async def open(self, endpoint: str) -> None:
        import aiohttp
        import orjson

        from dynamodm.transport import SigV4Signer

        self._dumps, self._loads = orjson.dumps, orjson.loads
        self._url = endpoint
        self._signer = SigV4Signer(REGION, urlparse(endpoint).netloc)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            auto_decompress=False,
        )

    async def close(self) -> None:
        await self._http.close()

    async def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        data = self._dumps(body)
        headers = self._signer.headers(
            "DynamoDB_20120810." + operation, data, ACCESS_KEY, SECRET_KEY, None
        )
        async with self._http.post(self._url, data=data, headers=headers) as response:
            payload = await response.read()
            status = response.status
        if status != 200:
            raise RuntimeError(f"{operation}: HTTP {status}: {payload[:300]!r}")
        result: dict[str, Any] = self._loads(payload)
        return result

    async def put(self, item: Row) -> None:
        await self.call("PutItem", {"TableName": TABLE, "Item": attribute_values(item)})

    async def get(self, key: Key) -> Any:
        response = await self.call("GetItem", {"TableName": TABLE, "Key": key_values(key)})
        return plain_row(response["Item"]) if self.decode else response["Item"]

    async def update(self, key: Key, name: str) -> None:
        await self.call(
            "UpdateItem",
            {
                "TableName": TABLE,
                "Key": key_values(key),
                "UpdateExpression": UPDATE_EXPRESSION,
                "ConditionExpression": UPDATE_CONDITION,
                "ExpressionAttributeNames": UPDATE_NAMES,
                "ExpressionAttributeValues": update_values(name),
                "ReturnValues": "ALL_NEW",
            },
        )

    async def query(self, limit: int) -> int:
        request: dict[str, Any] = {
            "TableName": TABLE,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}},
        }
        return await self._pages("Query", request, limit)

    async def _pages(self, operation: str, request: dict[str, Any], limit: int | None) -> int:
        count = 0
        while True:
            if limit is not None:
                request["Limit"] = limit - count
            response = await self.call(operation, request)
            items = response["Items"]
            for _item in [plain_row(item) for item in items] if self.decode else items:
                count += 1
            last = response.get("LastEvaluatedKey")
            if last is None or (limit is not None and count >= limit):
                return count
            request["ExclusiveStartKey"] = last

    async def batch_write(self, items: list[Row]) -> None:
        requests = [{"PutRequest": {"Item": attribute_values(item)}} for item in items]
        response = await self.call("BatchWriteItem", {"RequestItems": {TABLE: requests}})
        if response.get("UnprocessedItems"):
            raise RuntimeError("unprocessed items")

    async def batch_get(self, keys: list[Key]) -> int:
        request = {"RequestItems": {TABLE: {"Keys": [key_values(key) for key in keys]}}}
        response = await self.call("BatchGetItem", request)
        if response.get("UnprocessedKeys"):
            raise RuntimeError("unprocessed keys")
        items = response["Responses"][TABLE]
        return len([plain_row(item) for item in items] if self.decode else items)

    async def scan(self, segments: int, limit: int | None) -> int:
        if segments == 1:
            return await self._pages("Scan", {"TableName": TABLE}, limit)
        counts = await asyncio.gather(
            *(
                self._pages(
                    "Scan", {"TableName": TABLE, "Segment": n, "TotalSegments": segments}, None
                )
                for n in range(segments)
            )
        )
        return sum(counts)


class FloorRaw(Floor):
    """The floor without its read decoding: items stay AttributeValues, as DynamoDB's
    JSON has them (the floor of the earlier rounds' tables)."""

    name = "floor-raw"
    label = "floor-raw: aiohttp + SigV4 + orjson, reads not decoded"
    decode = False


# ---------------------------------------------------------------- raw aioboto3


class RawAioboto3(Client):
    """The aioboto3 low-level client with hand-built AttributeValues, configured as
    dynamodm's botocore transport configures it (no parameter validation, one attempt)."""

    name = "aioboto3"
    label = "aioboto3 client, raw AttributeValues"

    async def open(self, endpoint: str) -> None:
        import aioboto3
        from botocore.config import Config

        session = aioboto3.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=64,
            parameter_validation=False,
        )
        self._context = session.client("dynamodb", endpoint_url=endpoint, config=config)
        self._client = await self._context.__aenter__()

    async def close(self) -> None:
        await self._context.__aexit__(None, None, None)

    async def put(self, item: Row) -> None:
        await self._client.put_item(TableName=TABLE, Item=attribute_values(item))

    async def get(self, key: Key) -> Any:
        response = await self._client.get_item(TableName=TABLE, Key=key_values(key))
        return response["Item"]

    async def update(self, key: Key, name: str) -> None:
        await self._client.update_item(
            TableName=TABLE,
            Key=key_values(key),
            UpdateExpression=UPDATE_EXPRESSION,
            ConditionExpression=UPDATE_CONDITION,
            ExpressionAttributeNames=UPDATE_NAMES,
            ExpressionAttributeValues=update_values(name),
            ReturnValues="ALL_NEW",
        )

    async def query(self, limit: int) -> int:
        request: dict[str, Any] = {
            "TableName": TABLE,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}},
        }
        return await self._pages(self._client.query, request, limit)

    async def _pages(self, method: Any, request: dict[str, Any], limit: int | None) -> int:
        count = 0
        while True:
            if limit is not None:
                request["Limit"] = limit - count
            response = await method(**request)
            for _item in response["Items"]:
                count += 1
            last = response.get("LastEvaluatedKey")
            if last is None or (limit is not None and count >= limit):
                return count
            request["ExclusiveStartKey"] = last

    async def batch_write(self, items: list[Row]) -> None:
        requests = [{"PutRequest": {"Item": attribute_values(item)}} for item in items]
        response = await self._client.batch_write_item(RequestItems={TABLE: requests})
        if response.get("UnprocessedItems"):
            raise RuntimeError("unprocessed items")

    async def batch_get(self, keys: list[Key]) -> int:
        response = await self._client.batch_get_item(
            RequestItems={TABLE: {"Keys": [key_values(key) for key in keys]}}
        )
        if response.get("UnprocessedKeys"):
            raise RuntimeError("unprocessed keys")
        return len(response["Responses"][TABLE])

    async def scan(self, segments: int, limit: int | None) -> int:
        if segments == 1:
            return await self._pages(self._client.scan, {"TableName": TABLE}, limit)
        counts = await asyncio.gather(
            *(
                self._pages(
                    self._client.scan,
                    {"TableName": TABLE, "Segment": n, "TotalSegments": segments},
                    None,
                )
                for n in range(segments)
            )
        )
        return sum(counts)


# ---------------------------------------------------------------- dynamodm


def _dynamodm_model() -> Any:
    from typing import Annotated

    from pydantic import BaseModel

    import dynamodm as dm

    class Address(BaseModel):
        street: str
        city: str
        zip: str

    class BenchItem(dm.Model):
        class Meta:
            table = TABLE

        pk: Annotated[str, dm.HashKey]
        sk: Annotated[str, dm.RangeKey]
        name: str
        email: str
        age: int
        score: float
        active: bool
        tags: list[str]
        address: Address
        visits: int
        bio: str

    return BenchItem


class Dynamodm(Client):
    """dynamodm's models over one transport."""

    transport: ClassVar[str]

    async def open(self, endpoint: str) -> None:
        import aioboto3

        import dynamodm as dm

        self._dm = dm
        self.model = _dynamodm_model()
        boto_session = aioboto3.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )
        self._session = dm.connect(
            endpoint_url=endpoint,
            region=REGION,
            boto_session=boto_session,
            transport=self.transport,  # type: ignore[arg-type]
        )
        await self._session.__aenter__()
        self._instances: dict[Key, Any] = {}

    async def close(self) -> None:
        await self._session.__aexit__(None, None, None)

    async def put(self, item: Row) -> None:
        await self.model(**item).save()

    async def get(self, key: Key) -> Any:
        return await self.model.get(*key)

    async def load_for_update(self, keys: list[Key]) -> None:
        for instance in await self.model.batch_get(keys):
            self._instances[(instance.pk, instance.sk)] = instance

    async def update(self, key: Key, name: str) -> None:
        await self._instances[key].update(self._dm.attr(self.model.visits).add(1), name=name)

    async def query(self, limit: int) -> int:
        count = 0
        async for _item in self.model.query(PARTITION, limit=limit):
            count += 1
        return count

    async def batch_write(self, items: list[Row]) -> None:
        async with self._dm.batch_write() as batch:
            for item in items:
                batch.put(self.model(**item))

    async def batch_get(self, keys: list[Key]) -> int:
        return len(await self.model.batch_get(keys))

    async def scan(self, segments: int, limit: int | None) -> int:
        count = 0
        async for _item in self.model.scan(segments=segments, limit=limit):
            count += 1
        return count


class DynamodmHttp(Dynamodm):
    name = "dynamodm-http"
    label = "dynamodm, transport='http' (default)"
    transport = "http"


class DynamodmBotocore(Dynamodm):
    name = "dynamodm-botocore"
    label = "dynamodm, transport='botocore'"
    transport = "botocore"


# ---------------------------------------------------------------- aiodynamo


class Aiodynamo(Client):
    """aiodynamo on aiohttp: plain dicts in and out, its own signer, stdlib json."""

    name = "aiodynamo"
    label = "aiodynamo (aiohttp)"
    requires = ("aiodynamo",)

    async def open(self, endpoint: str) -> None:
        import aiohttp
        from aiodynamo.client import Client as AiodynamoClient
        from aiodynamo.credentials import Key as Credential
        from aiodynamo.credentials import StaticCredentials
        from aiodynamo.expressions import F, HashKey
        from aiodynamo.http.aiohttp import AIOHTTP
        from aiodynamo.models import BatchGetRequest, BatchWriteRequest, ReturnValues
        from yarl import URL

        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        self._client = AiodynamoClient(
            AIOHTTP(self._http),
            StaticCredentials(Credential(ACCESS_KEY, SECRET_KEY)),
            REGION,
            endpoint=URL(endpoint),
        )
        self._f, self._hash_key = F, HashKey
        self._get_request, self._write_request = BatchGetRequest, BatchWriteRequest
        self._all_new = ReturnValues.all_new

    async def close(self) -> None:
        await self._http.close()

    async def put(self, item: Row) -> None:
        await self._client.put_item(TABLE, item)

    async def get(self, key: Key) -> Any:
        return await self._client.get_item(TABLE, {"pk": key[0], "sk": key[1]})

    async def update(self, key: Key, name: str) -> None:
        f = self._f
        await self._client.update_item(
            TABLE,
            {"pk": key[0], "sk": key[1]},
            f("name").set(name) & f("visits").add(1),
            condition=f("pk").exists(),
            return_values=self._all_new,
        )

    async def query(self, limit: int) -> int:
        count = 0
        async for _item in self._client.query(TABLE, self._hash_key("pk", PARTITION), limit=limit):
            count += 1
        return count

    async def batch_write(self, items: list[Row]) -> None:
        result = await self._client.batch_write({TABLE: self._write_request(items_to_put=items)})
        if any(r.unput_items for r in result.values()):
            raise RuntimeError("unprocessed items")

    async def batch_get(self, keys: list[Key]) -> int:
        request = self._get_request(keys=[{"pk": pk, "sk": sk} for pk, sk in keys])
        response = await self._client.batch_get({TABLE: request})
        if any(response.unprocessed_keys.values()):
            raise RuntimeError("unprocessed keys")
        return len(response.items[TABLE])

    async def scan(self, segments: int, limit: int | None) -> int:
        if segments != 1:
            raise Unsupported("aiodynamo's scan takes no Segment (no parallel scan)")
        count = 0
        async for _item in self._client.scan(TABLE, limit=limit):
            count += 1
        return count


# ---------------------------------------------------------------- pydynox


@dataclass
class _PydynoxAddress:
    street: str
    city: str
    zip: str


class Pydynox(Client):
    """pydynox's Model (its Rust core does the HTTP, signing and AttributeValues)."""

    name = "pydynox"
    label = "pydynox Model (Rust core)"
    requires = ("pydynox",)

    async def open(self, endpoint: str) -> None:
        from pydynox import BatchWriter, DynamoDBClient, Model, ModelConfig
        from pydynox.attributes import (
            BooleanAttribute,
            ListAttribute,
            MapAttribute,
            NumberAttribute,
            StringAttribute,
        )

        self._client = DynamoDBClient(
            region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_url=endpoint
        )

        class BenchItem(Model):
            model_config = ModelConfig(table=TABLE, client=self._client)
            pk = StringAttribute(partition_key=True)
            sk = StringAttribute(sort_key=True)
            name = StringAttribute()
            email = StringAttribute()
            age = NumberAttribute()
            score = NumberAttribute()
            active = BooleanAttribute()
            tags = ListAttribute()
            address = MapAttribute(_PydynoxAddress)
            visits = NumberAttribute()
            bio = StringAttribute()

        self.model = BenchItem
        self._writer = BatchWriter
        self._instances: dict[Key, Any] = {}

    def _build(self, item: Row) -> Any:
        return self.model(**{**item, "address": _PydynoxAddress(**item["address"])})

    async def put(self, item: Row) -> None:
        await self._build(item).save()

    async def get(self, key: Key) -> Any:
        return await self.model.get(pk=key[0], sk=key[1])

    async def load_for_update(self, keys: list[Key]) -> None:
        found: list[Any] = await self.model.batch_get([{"pk": pk, "sk": sk} for pk, sk in keys])
        for instance in found:
            self._instances[(instance.pk, instance.sk)] = instance

    async def update(self, key: Key, name: str) -> None:
        model = self.model
        await self._instances[key].update(
            atomic=[model.name.set(name), model.visits.add(1)], condition=model.pk.exists()
        )

    async def query(self, limit: int) -> int:
        count = 0
        async for _item in self.model.query(partition_key=PARTITION, limit=limit, page_size=limit):
            count += 1
        return count

    async def batch_write(self, items: list[Row]) -> None:
        async with self._writer(self._client, TABLE) as batch:
            for item in items:
                batch.put(self._build(item).to_dict())

    async def batch_get(self, keys: list[Key]) -> int:
        found = await self.model.batch_get([{"pk": pk, "sk": sk} for pk, sk in keys])
        return len(found)

    async def scan(self, segments: int, limit: int | None) -> int:
        async def segment(number: int | None, total: int | None) -> int:
            count = 0
            async for _item in self.model.scan(segment=number, total_segments=total, limit=limit):
                count += 1
            return count

        if segments == 1:
            return await segment(None, None)
        return sum(await asyncio.gather(*(segment(n, segments) for n in range(segments))))


# ---------------------------------------------------------------- PynamoDB


class Pynamodb(Client):
    """PynamoDB (sync, botocore underneath): the calling thread at concurrency 1,
    16 threads at 16. Its methods here block; the runner calls them from threads."""

    name = "pynamodb"
    label = "PynamoDB (sync, threads for 16)"
    requires = ("pynamodb",)
    blocking = True

    async def open(self, endpoint: str) -> None:
        from pynamodb.attributes import (
            BooleanAttribute,
            ListAttribute,
            MapAttribute,
            NumberAttribute,
            UnicodeAttribute,
        )
        from pynamodb.models import Model

        class Address(MapAttribute[str, Any]):
            street = UnicodeAttribute()
            city = UnicodeAttribute()
            zip = UnicodeAttribute()

        class BenchItem(Model):
            class Meta:
                table_name = TABLE
                host = endpoint
                region = REGION
                aws_access_key_id = ACCESS_KEY
                aws_secret_access_key = SECRET_KEY
                max_pool_connections = 32

            pk = UnicodeAttribute(hash_key=True)
            sk = UnicodeAttribute(range_key=True)
            name = UnicodeAttribute()
            email = UnicodeAttribute()
            age = NumberAttribute()
            score = NumberAttribute()
            active = BooleanAttribute()
            tags = ListAttribute(of=UnicodeAttribute)
            address = Address()  # type: ignore[no-untyped-call]
            visits = NumberAttribute()
            bio = UnicodeAttribute()

        self.model: Any = BenchItem
        self._address: Any = Address
        self._instances: dict[Key, Any] = {}

    def _build(self, item: Row) -> Any:
        return self.model(**{**item, "address": self._address(**item["address"])})

    def put_sync(self, item: Row) -> None:
        self._build(item).save()

    def get_sync(self, key: Key) -> Any:
        return self.model.get(*key)

    def load_for_update_sync(self, keys: list[Key]) -> None:
        for instance in self.model.batch_get(keys):
            self._instances[(instance.pk, instance.sk)] = instance

    def update_sync(self, key: Key, name: str) -> None:
        model = self.model
        self._instances[key].update(
            actions=[model.name.set(name), model.visits.add(1)], condition=model.pk.exists()
        )

    def query_sync(self, limit: int) -> int:
        return sum(1 for _item in self.model.query(PARTITION, limit=limit, page_size=limit))

    def batch_write_sync(self, items: list[Row]) -> None:
        with self.model.batch_write() as batch:
            for item in items:
                batch.save(self._build(item))

    def batch_get_sync(self, keys: list[Key]) -> int:
        return sum(1 for _item in self.model.batch_get(keys))

    def scan_sync(self, segments: int, limit: int | None) -> int:
        if segments == 1:
            return sum(1 for _item in self.model.scan(limit=limit))

        def segment(number: int) -> int:
            scan = self.model.scan(segment=number, total_segments=segments)
            return sum(1 for _item in scan)

        with ThreadPoolExecutor(segments) as pool:
            return sum(pool.map(segment, range(segments)))

    async def load_for_update(self, keys: list[Key]) -> None:
        self.load_for_update_sync(keys)


CLIENTS: dict[str, type[Client]] = {
    client.name: client
    for client in (
        Floor,
        FloorRaw,
        RawAioboto3,
        DynamodmHttp,
        DynamodmBotocore,
        Aiodynamo,
        Pydynox,
        Pynamodb,
    )
}
