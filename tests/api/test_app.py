"""End to end through HTTP on real photos: subjects, enrollment, 1:1 and 1:N, the duplicate
review, deletion, and the audit trail that all of it leaves."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.api.conftest import ApiHarness
from tests.api.photos import lfw, upload
from wajah.api.schemas import Enrollment, Identification, OpsSummary, Review, Subject, Verification
from wajah.enrollment.access import Role

PROBLEM = "application/problem+json"


def create_subject(harness: ApiHarness, ref: str, name: str = "Test Person") -> Subject:
    response = harness.client.post(
        "/v1/subjects",
        json={
            "subject_id": ref,
            "full_name": name,
            "nationality": "idn",
            "date_of_birth": "1980-02-03",
        },
        headers=harness.headers(Role.CLERK),
    )
    assert response.status_code == 201, response.text
    return Subject.model_validate(response.json())


def enroll(harness: ApiHarness, ref: str, image: bytes) -> Enrollment:
    response = harness.client.post(
        f"/v1/subjects/{ref}/faces",
        files=upload(image),
        data={"source": "scan"},
        headers=harness.headers(Role.CLERK),
    )
    assert response.status_code == 201, response.text
    return Enrollment.model_validate(response.json())


def verify(harness: ApiHarness, ref: str, image: bytes) -> Verification:
    response = harness.client.post(
        "/v1/verify",
        json={"subject_id": ref, "image_base64": base64.b64encode(image).decode()},
        headers=harness.headers(Role.OFFICER),
    )
    assert response.status_code == 200, response.text
    return Verification.model_validate(response.json())


@pytest.fixture(scope="module")
def enrolled(harness: ApiHarness, faces_dir: Path) -> dict[str, Enrollment]:
    """Three people enrolled from LFW scans."""
    people = {
        "BLAIR-1": ("Tony_Blair", 1),
        "RUMSFELD-1": ("Donald_Rumsfeld", 1),
        "PUTIN-1": ("Vladimir_Putin", 1),
    }
    outcomes = {}
    for ref, (name, number) in people.items():
        create_subject(harness, ref)
        outcomes[ref] = enroll(harness, ref, lfw(faces_dir, name, number))
    return outcomes


def test_health_and_readiness(harness: ApiHarness) -> None:
    assert harness.client.get("/healthz").json() == {"status": "ok"}
    ready = harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models_loaded"] and ready.json()["index_open"]


def test_enrolled_people_are_accepted(enrolled: dict[str, Enrollment]) -> None:
    for ref, outcome in enrolled.items():
        assert outcome.status == "accepted", ref
        assert outcome.subject_id == ref
        assert outcome.candidates == []
        assert outcome.quality.usable


def test_subject_read_list_patch(harness: ApiHarness, enrolled: dict[str, Enrollment]) -> None:
    officer = harness.headers(Role.OFFICER)
    subject = Subject.model_validate(
        harness.client.get("/v1/subjects/BLAIR-1", headers=officer).json()
    )
    assert subject.sample_count == 1 and subject.status == "active"
    assert subject.nationality == "IDN"
    page = harness.client.get("/v1/subjects", params={"limit": 2}, headers=officer).json()
    assert page["total"] >= 3 and len(page["items"]) == 2 and page["limit"] == 2
    patched = harness.client.patch(
        "/v1/subjects/BLAIR-1",
        json={"document_number": "X123", "nationality": None},
        headers=harness.headers(Role.SUPERVISOR),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["document_number"] == "X123"
    assert patched.json()["nationality"] is None
    assert patched.json()["full_name"] == "Test Person"  # absent fields stay


def test_faces_and_chip(harness: ApiHarness, enrolled: dict[str, Enrollment]) -> None:
    officer = harness.headers(Role.OFFICER)
    faces = harness.client.get("/v1/subjects/BLAIR-1/faces", headers=officer).json()["items"]
    assert [face["sample_id"] for face in faces] == [enrolled["BLAIR-1"].sample_id]
    assert faces[0]["capture_source"] == "scan" and faces[0]["station"] == "test-clerk"
    chip = harness.client.get(
        f"/v1/subjects/BLAIR-1/faces/{faces[0]['sample_id']}/chip", headers=officer
    )
    assert chip.status_code == 200 and chip.headers["content-type"] == "image/png"
    assert chip.content.startswith(b"\x89PNG")
    # A sample of another subject is not reachable through this one.
    other = enrolled["PUTIN-1"].sample_id
    wrong = harness.client.get(f"/v1/subjects/BLAIR-1/faces/{other}/chip", headers=officer)
    assert wrong.status_code == 404
    assert wrong.json()["type"] == "urn:wajah:problem:sample-not-found"


def test_verify_genuine_and_impostor(
    harness: ApiHarness, enrolled: dict[str, Enrollment], faces_dir: Path
) -> None:
    genuine = verify(harness, "BLAIR-1", lfw(faces_dir, "Tony_Blair", 2))
    assert genuine.decision == "match" and genuine.score >= genuine.threshold
    impostor = verify(harness, "BLAIR-1", lfw(faces_dir, "Donald_Rumsfeld", 2))
    assert impostor.decision == "no_match" and impostor.score < impostor.threshold
    assert impostor.subject_id == "BLAIR-1" and impostor.reasons


def test_identify_finds_the_person(
    harness: ApiHarness, enrolled: dict[str, Enrollment], faces_dir: Path
) -> None:
    response = harness.client.post(
        "/v1/identify",
        files=upload(lfw(faces_dir, "Vladimir_Putin", 2)),
        data={"k": "3"},
        headers=harness.headers(Role.OFFICER),
    )
    assert response.status_code == 200, response.text
    found = Identification.model_validate(response.json())
    assert [c.subject_id for c in found.candidates][:1] == ["PUTIN-1"]
    assert found.candidates[0].full_name == "Test Person"


def test_verify_before_enrollment_is_a_conflict(harness: ApiHarness, faces_dir: Path) -> None:
    create_subject(harness, "EMPTY-1")
    response = harness.client.post(
        "/v1/verify",
        files=upload(lfw(faces_dir, "Tony_Blair", 2)),
        data={"subject_id": "EMPTY-1"},
        headers=harness.headers(Role.OFFICER),
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:wajah:problem:subject-not-enrolled"


def test_duplicate_identity_goes_to_review_and_is_resolved(
    harness: ApiHarness, enrolled: dict[str, Enrollment], faces_dir: Path
) -> None:
    create_subject(harness, "BLAIR-DUP")
    outcome = enroll(harness, "BLAIR-DUP", lfw(faces_dir, "Tony_Blair", 3))
    assert outcome.status == "pending_review"
    assert outcome.review_id is not None
    assert outcome.candidates[0].subject_id == "BLAIR-1"
    assert outcome.candidates[0].score >= outcome.duplicate_threshold
    supervisor = harness.headers(Role.SUPERVISOR)
    # While the case is open the new subject cannot be verified.
    blocked = harness.client.post(
        "/v1/verify",
        files=upload(lfw(faces_dir, "Tony_Blair", 2)),
        data={"subject_id": "BLAIR-DUP"},
        headers=harness.headers(Role.OFFICER),
    )
    assert blocked.status_code == 409
    assert blocked.json()["type"] == "urn:wajah:problem:subject-not-active"
    listed = harness.client.get("/v1/reviews", params={"status": "open"}, headers=supervisor)
    assert [r["review_id"] for r in listed.json()["items"]] == [outcome.review_id]
    review = Review.model_validate(
        harness.client.get(f"/v1/reviews/{outcome.review_id}", headers=supervisor).json()
    )
    assert review.subject_id == "BLAIR-DUP" and review.status == "open"
    unexplained = harness.client.post(
        f"/v1/reviews/{outcome.review_id}/resolve",
        json={"resolution": "merge"},
        headers=supervisor,
    )
    assert unexplained.status_code == 422  # a comment is required
    resolved = harness.client.post(
        f"/v1/reviews/{outcome.review_id}/resolve",
        json={"resolution": "merge", "comment": "same person, second application"},
        headers=supervisor,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution"] == "merge"
    assert resolved.json()["resolved_by"] == "test-supervisor"
    # Merged: the new record is gone, its photo now belongs to BLAIR-1.
    officer = harness.headers(Role.OFFICER)
    assert harness.client.get("/v1/subjects/BLAIR-DUP", headers=officer).status_code == 404
    merged = harness.client.get("/v1/subjects/BLAIR-1", headers=officer).json()
    assert merged["sample_count"] == 2
    again = harness.client.post(
        f"/v1/reviews/{outcome.review_id}/resolve",
        json={"resolution": "reject", "comment": "again"},
        headers=supervisor,
    )
    assert again.status_code == 409  # the decision stands, and stays on record
    assert again.json()["type"] == "urn:wajah:problem:review-already-resolved"
    kept = harness.client.get(f"/v1/reviews/{outcome.review_id}", headers=supervisor)
    assert kept.status_code == 200
    assert kept.json()["resolution"] == "merge"
    assert kept.json()["subject_id"] is None  # the erased duplicate's reference is gone


def test_delete_erases_the_subject(
    harness: ApiHarness, enrolled: dict[str, Enrollment], faces_dir: Path
) -> None:
    supervisor = harness.headers(Role.SUPERVISOR)
    deleted = harness.client.delete("/v1/subjects/RUMSFELD-1", headers=supervisor)
    assert deleted.status_code == 204
    gone = harness.client.get("/v1/subjects/RUMSFELD-1", headers=supervisor)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == PROBLEM
    assert gone.json()["type"] == "urn:wajah:problem:subject-not-found"
    found = harness.client.post(
        "/v1/identify",
        files=upload(lfw(faces_dir, "Donald_Rumsfeld", 1)),
        headers=harness.headers(Role.OFFICER),
    )
    assert "RUMSFELD-1" not in [c["subject_id"] for c in found.json()["candidates"]]


def test_request_id_is_accepted_or_generated(harness: ApiHarness) -> None:
    mine = harness.client.get(
        "/v1/me", headers={**harness.headers(Role.OPS), "X-Request-ID": "desk-7.42"}
    )
    assert mine.headers["x-request-id"] == "desk-7.42"
    hostile = harness.client.get(
        "/v1/me", headers={**harness.headers(Role.OPS), "X-Request-ID": "a b\tc" * 30}
    )
    assert len(hostile.headers["x-request-id"]) == 32
    problem = harness.client.get(
        "/v1/subjects/NOPE", headers={**harness.headers(Role.OFFICER), "X-Request-ID": "trace-1"}
    )
    assert problem.json()["request_id"] == "trace-1"
    assert problem.json()["instance"] == "/v1/subjects/NOPE"


def test_audit_trail_records_decisions_and_failures(
    harness: ApiHarness, enrolled: dict[str, Enrollment], faces_dir: Path
) -> None:
    verify(harness, "PUTIN-1", lfw(faces_dir, "Vladimir_Putin", 3))
    harness.client.get("/v1/subjects/NOBODY", headers=harness.headers(Role.OFFICER))
    harness.client.get("/v1/subjects/PUTIN-1", headers=harness.headers(Role.OPS))  # forbidden
    ops = harness.headers(Role.OPS)
    page = harness.client.get("/v1/audit", params={"subject_id": "PUTIN-1"}, headers=ops).json()
    actions = [(r["action"], r["outcome"]) for r in page["items"]]
    assert ("verify", "ok") in actions and ("face.enroll", "ok") in actions
    assert ("subject.read", "forbidden") in actions
    match = next(r for r in page["items"] if r["action"] == "verify")
    assert match["decision"] == "match" and match["station"] == "test-officer"
    assert match["score"] >= match["threshold"] and match["request_id"]
    missing = harness.client.get("/v1/audit", params={"subject_id": "NOBODY"}, headers=ops)
    assert missing.json()["items"][0]["outcome"] == "subject-not-found"
    # No name anywhere in the trail.
    everything = harness.client.get("/v1/audit", params={"limit": 1000}, headers=ops).text
    assert "Test Person" not in everything
    report = harness.client.app.state.audit_log.verify_chain()  # type: ignore[attr-defined]
    assert report.ok and report.checked >= page["total"]


def test_ops_summary_and_metrics(harness: ApiHarness, enrolled: dict[str, Enrollment]) -> None:
    ops = harness.headers(Role.OPS)
    summary = OpsSummary.model_validate(harness.client.get("/v1/ops/summary", headers=ops).json())
    assert summary.gallery_size >= 2 and summary.subjects >= 2
    assert summary.requests_total > 10
    assert sum(summary.decisions["enroll"].values()) >= 3
    assert "POST /v1/subjects/{subject_id}/faces" in summary.latency_ms
    assert any(error.type == "subject-not-found" for error in summary.recent_errors)
    text = harness.client.get("/metrics", headers=ops).text
    assert 'route="/v1/subjects/{subject_id}"' in text
    assert "wajah_decisions_total" in text and "wajah_face_queue_depth 0.0" in text
    assert "BLAIR-1" not in text  # raw paths never become labels
