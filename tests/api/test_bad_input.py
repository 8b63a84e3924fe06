"""Real bad bytes through the API: each a 4xx problem+json with the right type, never a 500."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.api.conftest import ApiHarness
from tests.api.photos import lfw, upload
from wajah.enrollment.access import Role


def png_bomb(side_px: int = 20_000) -> bytes:
    """A 1-bit greyscale PNG that declares side x side pixels (400 M at 20,000) of zeros:
    some 50 KB on the wire, 50 MB of rows and 1.2 GB of RGB once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side_px, side_px, 1, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + side_px // 8)
    rows = b"".join(compressor.compress(row) for _ in range(side_px)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 80, 40)).save(buffer, format="GIF")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def jpeg(faces_dir: Path) -> bytes:
    return lfw(faces_dir, "Tony_Blair", 1)


def corpus(jpeg: bytes) -> dict[str, tuple[bytes, int, str]]:
    """name -> (bytes, status, problem slug)."""
    return {
        "empty": (b"", 422, "image-decode-error"),
        "truncated-jpeg": (jpeg[: len(jpeg) // 3], 422, "image-decode-error"),
        "jpeg-header-only": (jpeg[:20], 422, "image-decode-error"),
        "random-bytes": (bytes(range(256)) * 40, 422, "image-decode-error"),
        "text": (b"hello, I am not a photo\n" * 10, 422, "image-decode-error"),
        "gif": (gif(), 415, "unsupported-image-format"),
        "decompression-bomb-png": (png_bomb(), 413, "image-too-large"),
    }


CASES = [
    "empty",
    "truncated-jpeg",
    "jpeg-header-only",
    "random-bytes",
    "text",
    "gif",
    "decompression-bomb-png",
]


def assert_problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:wajah:problem:{slug}"
    assert body["status"] == status and body["request_id"] and body["title"]


@pytest.mark.parametrize("case", CASES)
def test_bad_images_as_multipart(harness: ApiHarness, jpeg: bytes, case: str) -> None:
    data, status, slug = corpus(jpeg)[case]
    response = harness.client.post(
        "/v1/quality", files=upload(data), headers=harness.headers(Role.CLERK)
    )
    assert_problem(response, status, slug)


@pytest.mark.parametrize("case", CASES)
def test_bad_images_as_base64_to_verify(harness: ApiHarness, jpeg: bytes, case: str) -> None:
    data, status, slug = corpus(jpeg)[case]
    response = harness.client.post(
        "/v1/identify",
        json={"image_base64": base64.b64encode(data).decode()},
        headers=harness.headers(Role.OFFICER),
    )
    assert_problem(response, status, slug)


def test_bad_image_to_enroll_stores_nothing(harness: ApiHarness, jpeg: bytes) -> None:
    clerk = harness.headers(Role.CLERK)
    harness.client.post(
        "/v1/subjects", json={"subject_id": "BAD-1", "full_name": "B"}, headers=clerk
    )
    response = harness.client.post(
        "/v1/subjects/BAD-1/faces", files=upload(jpeg[: len(jpeg) // 2]), headers=clerk
    )
    assert_problem(response, 422, "image-decode-error")
    assert harness.client.get("/v1/subjects/BAD-1", headers=clerk).json()["sample_count"] == 0


def test_no_face_and_several_faces(harness: ApiHarness, faces_dir: Path, manifest: Any) -> None:
    no_face = next(p for p in manifest("negatives") if "nonface" in str(p.path))
    response = harness.client.post(
        "/v1/identify",
        files=upload(no_face.path.read_bytes()),
        headers=harness.headers(Role.OFFICER),
    )
    assert_problem(response, 422, "no-face")
    clerk = harness.headers(Role.CLERK)
    harness.client.post(
        "/v1/subjects", json={"subject_id": "CROWD-1", "full_name": "C"}, headers=clerk
    )
    crowd = next(p for p in manifest("negatives") if "multiface" in str(p.path))
    refused = harness.client.post(
        "/v1/subjects/CROWD-1/faces", files=upload(crowd.path.read_bytes()), headers=clerk
    )
    assert_problem(refused, 422, "low-quality")
    assert "face_count" in [c["name"] for c in refused.json()["components"]]


def test_oversize_body_with_content_length(harness: ApiHarness) -> None:
    body = b"\xff" * (harness.settings.max_request_bytes + 1)
    response = harness.client.post(
        "/v1/quality", files=upload(body), headers=harness.headers(Role.CLERK)
    )
    assert_problem(response, 413, "payload-too-large")


def test_oversize_body_streamed_without_length(harness: ApiHarness) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        block = b"\x00" * 1_048_576
        for _ in range(harness.settings.max_request_bytes // len(block) + 4):
            sent += len(block)
            yield block

    response = harness.client.post(
        "/v1/identify",
        content=chunks(),
        headers={**harness.headers(Role.OFFICER), "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"json": {"subject_id": "X"}}, "image_base64"),
        ({"json": {"image_base64": "%%%not base64%%%", "subject_id": "X"}}, "image_base64"),
        ({"json": ["a", "list"]}, None),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, None),
        ({"content": b"raw", "headers": {"Content-Type": "image/jpeg"}}, None),
        ({"files": {"photo": ("x.jpg", b"x", "image/jpeg")}, "data": {"subject_id": "X"}}, "image"),
        ({"files": {"image": ("x.jpg", b"x", "image/jpeg")}}, "subject_id"),
        (
            {
                "files": {"image": ("x.jpg", b"x", "image/jpeg")},
                "data": {"subject_id": "X", "extra": "1"},
            },
            "extra",
        ),
    ],
    ids=[
        "no-image",
        "bad-base64",
        "json-list",
        "broken-json",
        "raw-body",
        "wrong-field",
        "no-subject",
        "unknown-field",
    ],
)
def test_malformed_requests_are_invalid_request(
    harness: ApiHarness, arguments: dict[str, Any], field: str | None
) -> None:
    headers = {**harness.headers(Role.OFFICER), **arguments.pop("headers", {})}
    response = harness.client.post("/v1/verify", headers=headers, **arguments)
    assert_problem(response, 422, "invalid-request")
    if field is not None:
        assert field in [e["loc"][-1] for e in response.json()["errors"]]


def test_schema_violations_are_invalid_request(harness: ApiHarness) -> None:
    clerk = harness.headers(Role.CLERK)
    cases = [
        harness.client.post(
            "/v1/subjects", json={"subject_id": "", "full_name": "x"}, headers=clerk
        ),
        harness.client.post(
            "/v1/subjects",
            json={"subject_id": "V-1", "full_name": "x", "date_of_birth": "1850-01-01"},
            headers=clerk,
        ),
        harness.client.post(
            "/v1/subjects", json={"subject_id": "V-2", "full_name": "x\x07"}, headers=clerk
        ),
        harness.client.get("/v1/subjects", params={"limit": 0}, headers=clerk),
        harness.client.post(
            "/v1/quality", params={"profile": "passport"}, files=upload(b"x"), headers=clerk
        ),
    ]
    for response in cases:
        assert_problem(response, 422, "invalid-request")
    duplicate = [
        harness.client.post(
            "/v1/subjects", json={"subject_id": "V-3", "full_name": "x"}, headers=clerk
        )
        for _ in range(2)
    ]
    assert duplicate[0].status_code == 201
    assert_problem(duplicate[1], 409, "subject-exists")


def test_unknown_path_and_method(harness: ApiHarness) -> None:
    officer = harness.headers(Role.OFFICER)
    assert_problem(harness.client.get("/v1/nothing", headers=officer), 404, "not-found")
    assert_problem(harness.client.put("/v1/verify", headers=officer), 405, "method-not-allowed")


@pytest.mark.parametrize(
    ("path", "role"), [("/v1/quality", Role.CLERK), ("/v1/subjects", Role.CLERK)]
)
def test_json_nested_100000_deep_is_invalid_request(
    harness: ApiHarness, path: str, role: Role
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {**harness.headers(role), "Content-Type": "application/json"}
    response = harness.client.post(path, headers=headers, content=body)
    assert_problem(response, 422, "invalid-request")
    assert harness.client.get("/healthz").status_code == 200
