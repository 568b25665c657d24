"""SigV4 against AWS's own test vectors (tests/data/aws4_testsuite, Apache-2.0).

The vectors sign generic POSTs for service "service"; our signer is specialised for
DynamoDB's JSON POST, so it is checked where the vectors apply: the signing key
derivation, the string to sign and the final signature. The stand-in's verifier
(tests/standin.py), which recomputes signatures from received requests, is checked
on every step of every vector; the two implementations are then checked against each
other on DynamoDB requests.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import standin

from dynamodm.transport import SigV4Signer, endpoint_parts

SUITE = Path(__file__).resolve().parent.parent / "data" / "aws4_testsuite"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20150830T123600Z"
SCOPE = "20150830/us-east-1/service/aws4_request"


@dataclass(frozen=True)
class Vector:
    name: str
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    creq: str
    sts: str
    authorization: str

    @property
    def signed_headers(self) -> list[str]:
        return self.authorization.split("SignedHeaders=")[1].split(",")[0].split(";")

    @property
    def signature(self) -> str:
        return self.authorization.rsplit("Signature=", 1)[1]


def _load(directory: Path) -> Vector:
    name = directory.name
    raw = (directory / f"{name}.req").read_text()
    head, _, body = raw.partition("\n\n")
    request_line, *header_lines = head.split("\n")
    method, target, _version = request_line.split(" ")
    headers = [(key, value) for key, _, value in (line.partition(":") for line in header_lines)]
    return Vector(
        name,
        method,
        target,
        headers,
        body.encode(),
        (directory / f"{name}.creq").read_text(),
        (directory / f"{name}.sts").read_text(),
        (directory / f"{name}.authz").read_text().strip(),
    )


VECTORS = [_load(request.parent) for request in sorted(SUITE.rglob("*.req"))]


def test_the_suite_is_present_with_its_licence() -> None:
    assert len(VECTORS) == 10
    assert (SUITE / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert "Amazon.com" in (SUITE / "NOTICE").read_text()


# ---------------------------------------------------------------- our signer


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_string_to_sign_matches_the_vector(vector: Vector) -> None:
    signer = SigV4Signer("us-east-1", "example.amazonaws.com", service="service")
    assert signer.string_to_sign(AMZ_DATE, vector.creq) == vector.sts


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_signing_key_and_signature_match_the_vector(vector: Vector) -> None:
    signer = SigV4Signer("us-east-1", "example.amazonaws.com", service="service")
    key = signer._signing_key(SECRET, AMZ_DATE[:8])
    assert hmac.new(key, vector.sts.encode(), hashlib.sha256).hexdigest() == vector.signature


def test_signing_key_is_aws_documented_derivation() -> None:
    # The derived key of AWS's documentation example (secret, 20150830, us-east-1, iam).
    signer = SigV4Signer("us-east-1", "iam.amazonaws.com", service="iam")
    assert signer._signing_key(SECRET, "20150830").hex() == (
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    )


def test_the_session_token_is_signed_before_the_target_as_dynamodb_requires() -> None:
    # post-sts-header-before: the token header is part of the canonical request.
    headers = SigV4Signer("us-east-1", "h").headers(
        "DynamoDB_20120810.GetItem", b"{}", "AK", "secret", "TOKEN", now=datetime.now(UTC)
    )
    assert (
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"
        in (headers["Authorization"])
    )
    assert headers["X-Amz-Security-Token"] == "TOKEN"


# ---------------------------------------------------------------- the stand-in's verifier


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_standin_canonical_request_matches_the_vector(vector: Vector) -> None:
    creq = standin.canonical_request(
        vector.method, vector.target, vector.headers, vector.signed_headers, vector.body
    )
    assert creq == vector.creq


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_standin_signature_matches_the_vector(vector: Vector) -> None:
    sts = standin.string_to_sign(AMZ_DATE, SCOPE, vector.creq)
    assert sts == vector.sts
    assert standin.signature(SECRET, SCOPE, sts) == vector.signature


# ---------------------------------------------------------------- the two, on DynamoDB requests


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzE//token+with/chars=="])
@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("dynamodb.eu-west-1.amazonaws.com", "/"),
        ("127.0.0.1:8123", "/"),
        ("localhost:8000", "/dynamodb/v1"),
        ("[::1]:8000", "/"),
    ],
)
def test_standin_accepts_what_our_signer_signs(host: str, path: str, token: str | None) -> None:
    moment = datetime(2026, 12, 6, 2, 50, 1, tzinfo=UTC)
    body = b'{"TableName":"t","Key":{"id":{"S":"\xc3\xa9  two  spaces"}}}'
    headers = SigV4Signer("eu-west-1", host, path).headers(
        "DynamoDB_20120810.GetItem", body, ACCESS_KEY, SECRET, token, now=moment
    )
    assert headers["Host"] == host
    authorization = headers["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    scope = authorization.split("Credential=")[1].split(",")[0].split("/", 1)[1]
    creq = standin.canonical_request("POST", path, list(headers.items()), signed, body)
    sts = standin.string_to_sign(headers["X-Amz-Date"], scope, creq)
    assert authorization.endswith(f"Signature={standin.signature(SECRET, scope, sts)}")


def test_the_clock_offset_moves_the_signing_time() -> None:
    signer = SigV4Signer("us-east-1", "h")
    signer.offset = -3600.0
    signed = signer.headers("T", b"{}", "AK", "secret", None)["X-Amz-Date"]
    moment = datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    assert abs(moment - (time.time() - 3600)) < 3


# ---------------------------------------------------------------- the host that is signed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://DynamoDB.EU-West-1.amazonaws.com.:443",
            ("https://dynamodb.eu-west-1.amazonaws.com/", "dynamodb.eu-west-1.amazonaws.com"),
        ),
        ("http://Example.test:80/", ("http://example.test/", "example.test")),
        ("http://example.test:443/", ("http://example.test:443/", "example.test:443")),
        ("https://example.test:80", ("https://example.test:80/", "example.test:80")),
        ("http://127.0.0.1:8000", ("http://127.0.0.1:8000/", "127.0.0.1:8000")),
        ("http://[::1]:8000/", ("http://[::1]:8000/", "[::1]:8000")),
        ("http://localhost:8000/Prefix", ("http://localhost:8000/Prefix", "localhost:8000")),
    ],
)
def test_endpoint_is_normalised_as_aiohttp_sends_it(url: str, expected: tuple[str, str]) -> None:
    sent_url, host, _path = endpoint_parts(url)
    assert (sent_url, host) == expected
