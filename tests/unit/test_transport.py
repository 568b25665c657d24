"""The fast transport's pieces that need no server: SigV4 signing and binary decoding."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from dynamodm.codec import decode_binary
from dynamodm.transport import SigV4Signer

MOMENT = datetime(2026, 11, 22, 10, 30, 5, tzinfo=UTC)


def botocore_authorization(
    url: str, host: str, target: str, body: bytes, token: str | None
) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": target,
            "Host": host,
        },
    )
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", "secret/key+1", token), "dynamodb", "eu-west-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=MOMENT):
        signer.add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "session-token/with+chars="])
@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dynamodb.eu-west-1.amazonaws.com/", "dynamodb.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:8123/", "127.0.0.1:8123"),
    ],
)
def test_signature_matches_botocore(url: str, host: str, token: str | None) -> None:
    body = b'{"TableName":"t","Key":{"id":{"S":"\xc3\xa9"}}}'
    target = "DynamoDB_20120810.GetItem"
    expected = botocore_authorization(url, host, target, body, token)
    ours = SigV4Signer("eu-west-1", host).headers(
        target, body, "AKIDEXAMPLE", "secret/key+1", token, now=MOMENT
    )
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Date"] == expected["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token")


def test_signing_key_follows_the_secret() -> None:
    signer = SigV4Signer("us-east-1", "localhost:1")
    first = signer.headers("T", b"{}", "A", "one", None, now=MOMENT)["Authorization"]
    second = signer.headers("T", b"{}", "A", "two", None, now=MOMENT)["Authorization"]
    assert first != second


def test_binary_values_are_decoded_in_place() -> None:
    data = {
        "Item": {
            "b": {"B": "AAEC"},
            "bs": {"BS": ["AA==", "AQ=="]},
            "m": {"M": {"inner": {"B": "/w=="}}},
            "l": {"L": [{"B": "AA=="}, {"S": "B"}]},
            "s": {"S": "AAEC"},
        }
    }
    decode_binary(data)
    item = data["Item"]
    assert item["b"] == {"B": b"\x00\x01\x02"}
    assert item["bs"] == {"BS": [b"\x00", b"\x01"]}
    assert item["m"] == {"M": {"inner": {"B": b"\xff"}}}
    assert item["l"] == {"L": [{"B": b"\x00"}, {"S": "B"}]}
    assert item["s"] == {"S": "AAEC"}
