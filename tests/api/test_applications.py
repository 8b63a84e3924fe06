"""Applications through the HTTP API on real photos: a clerk opens an application and
enrolls the face, an officer verifies the person at the counter (the application becomes
verified) and decides it; the same person's other photo under a new subject and a new
application is a look-alike that holds the new application in needs_review until the
supervisor rejects the duplicate (and two more look-alikes are cleared: confirm_distinct and
merge). The applicant's public lookup shows each step and nothing private, and answers an
unknown number and a wrong date of birth alike. The report's counts are those of the actions
performed before it.

Seven face runs in all (five LFW photos of one man, one of them twice, and a blank image);
the tests run in file order on the module's one service.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.api.conftest import ApiHarness
from tests.api.photos import lfw, upload
from wajah.enrollment.access import Role

APPLICANT_BIRTH = "1953-05-06"
LOOKALIKE_BIRTH = "1960-01-01"
PRIVATE_WORDS = ("Tony", "Blair", "score", "station", "key_id", "reason", "subject", "test-")


@pytest.fixture(scope="module")
def flow(harness: ApiHarness, faces_dir: Path) -> dict[str, Any]:
    """Everything the tests below look at, done once."""
    client = harness.client
    clerk, officer = harness.headers(Role.CLERK), harness.headers(Role.OFFICER)
    result: dict[str, Any] = {}
    for ref, birth in (("APP-1", APPLICANT_BIRTH), ("APP-2", LOOKALIKE_BIRTH)):
        created = client.post(
            "/v1/subjects",
            json={"subject_id": ref, "full_name": "Tony Blair", "date_of_birth": birth},
            headers=clerk,
        )
        assert created.status_code == 201, created.text
    opened = client.post(
        "/v1/applications",
        json={"subject_id": "APP-1", "application_type": "passport_new"},
        headers=clerk,
    )
    assert opened.status_code == 201, opened.text
    result["first"] = opened.json()
    photo = lfw(faces_dir, "Tony_Blair", 1)
    # Under the camera profile this LFW scan is too small: a quality refusal, nothing stored.
    refused = client.post("/v1/subjects/APP-1/faces", files=upload(photo), headers=clerk)
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:wajah:problem:low-quality"
    result["refusal_reasons"] = sorted(c["name"] for c in refused.json()["components"])
    enrolled = client.post(
        "/v1/subjects/APP-1/faces", files=upload(photo), data={"source": "scan"}, headers=clerk
    )
    assert enrolled.status_code == 201 and enrolled.json()["status"] == "accepted"
    # A photo with no face at all: a failure to acquire (refused, face_count failing).
    blank = io.BytesIO()
    Image.new("RGB", (400, 500), (200, 200, 200)).save(blank, "JPEG")
    no_face = client.post("/v1/subjects/APP-1/faces", files=upload(blank.getvalue()), headers=clerk)
    assert no_face.status_code == 422
    result["after_enroll"] = get(harness, result["first"]["number"])
    verified = client.post(
        "/v1/verify",
        files=upload(lfw(faces_dir, "Tony_Blair", 2)),
        data={"subject_id": "APP-1"},
        headers=officer,
    )
    assert verified.status_code == 200 and verified.json()["decision"] == "match"
    result["after_verify"] = get(harness, result["first"]["number"])
    # The look-alike: the same person's third photo, enrolled as somebody new.
    second = client.post(
        "/v1/applications",
        json={"subject_id": "APP-2", "application_type": "visa"},
        headers=clerk,
    )
    assert second.status_code == 201
    result["second"] = second.json()
    duplicate = client.post(
        "/v1/subjects/APP-2/faces",
        files=upload(lfw(faces_dir, "Tony_Blair", 3)),
        data={"source": "scan"},
        headers=clerk,
    )
    assert duplicate.status_code == 201 and duplicate.json()["status"] == "pending_review"
    result["review_id"] = duplicate.json()["review_id"]
    result["after_duplicate"] = get(harness, result["second"]["number"])
    return result


def get(harness: ApiHarness, number: str) -> dict[str, Any]:
    response = harness.client.get(
        f"/v1/applications/{number}", headers=harness.headers(Role.OFFICER)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def lookup(harness: ApiHarness, number: str, birth: str) -> Any:
    return harness.client.post(
        "/v1/public/status-lookup", json={"number": number, "date_of_birth": birth}
    )


def test_enrolling_the_face_captures_the_biometrics(flow: dict[str, Any]) -> None:
    first = flow["first"]
    assert first["status"] == "submitted"
    assert first["number"].startswith("KANIM-")
    application = flow["after_enroll"]
    assert application["status"] == "biometrics_captured"
    step = application["timeline"][-1]
    assert (step["from_status"], step["to_status"]) == ("submitted", "biometrics_captured")
    assert step["station"] == "test-clerk" and step["key_id"] is not None


def test_a_counter_match_verifies_the_application(flow: dict[str, Any]) -> None:
    application = flow["after_verify"]
    assert application["status"] == "verified"
    assert application["timeline"][-1]["station"] == "test-officer"


def test_a_look_alike_holds_the_new_application_in_review(flow: dict[str, Any]) -> None:
    application = flow["after_duplicate"]
    assert application["status"] == "needs_review"
    assert f"review {flow['review_id']}" in application["timeline"][-1]["reason"]


def test_an_illegal_transition_is_refused_and_changes_nothing(
    harness: ApiHarness, flow: dict[str, Any]
) -> None:
    number = flow["second"]["number"]
    refused = harness.client.post(
        f"/v1/applications/{number}/decision",
        json={"decision": "approved", "reason": "looks fine"},
        headers=harness.headers(Role.OFFICER),
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["type"] == "urn:wajah:problem:illegal-transition"
    assert (body["from_status"], body["to_status"]) == ("needs_review", "approved")
    assert get(harness, number) == flow["after_duplicate"]


def test_clerks_create_and_officers_decide(harness: ApiHarness, flow: dict[str, Any]) -> None:
    number = flow["first"]["number"]
    by_clerk = harness.client.post(
        f"/v1/applications/{number}/decision",
        json={"decision": "approved", "reason": "documents in order"},
        headers=harness.headers(Role.CLERK),
    )
    assert by_clerk.status_code == 403
    by_officer_create = harness.client.post(
        "/v1/applications",
        json={"subject_id": "APP-1", "application_type": "visa"},
        headers=harness.headers(Role.OFFICER),
    )
    assert by_officer_create.status_code == 403
    unknown_type = harness.client.post(
        "/v1/applications",
        json={"subject_id": "APP-1", "application_type": "fishing_licence"},
        headers=harness.headers(Role.CLERK),
    )
    assert unknown_type.status_code == 422
    approved = harness.client.post(
        f"/v1/applications/{number}/decision",
        json={"decision": "approved", "reason": "documents in order"},
        headers=harness.headers(Role.OFFICER),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"


def test_rejecting_the_duplicate_rejects_its_application(
    harness: ApiHarness, flow: dict[str, Any]
) -> None:
    resolved = harness.client.post(
        f"/v1/reviews/{flow['review_id']}/resolve",
        json={"resolution": "reject", "comment": "the same man under a second name"},
        headers=harness.headers(Role.SUPERVISOR),
    )
    assert resolved.status_code == 200, resolved.text
    application = get(harness, flow["second"]["number"])
    assert application["status"] == "rejected"
    assert application["subject_id"] is None  # the subject was erased; the decision stays
    assert application["timeline"][-1]["station"] == "test-supervisor"


def test_the_applicant_sees_each_step_and_nothing_private(
    harness: ApiHarness, flow: dict[str, Any]
) -> None:
    number = flow["first"]["number"]
    response = lookup(harness, number.lower(), APPLICANT_BIRTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"] == number and body["status"] == "approved"
    assert [step["status"] for step in body["timeline"]] == [
        "submitted",
        "biometrics_captured",
        "verified",
        "approved",
    ]
    assert set(body) == {"number", "application_type", "status", "timeline"}
    assert all(set(step) == {"status", "at"} for step in body["timeline"])
    assert not any(word.lower() in response.text.lower() for word in PRIVATE_WORDS)
    rejected = lookup(harness, flow["second"]["number"], LOOKALIKE_BIRTH)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


def test_unknown_number_and_wrong_birth_date_answer_alike(
    harness: ApiHarness, flow: dict[str, Any]
) -> None:
    wrong_birth = lookup(harness, flow["first"]["number"], "1953-05-07")
    unknown = lookup(harness, "KANIM-2026-999999", APPLICANT_BIRTH)
    assert wrong_birth.status_code == unknown.status_code == 404

    def without_request_id(response: Any) -> dict[str, Any]:
        body = dict(response.json())
        body.pop("request_id")
        return body

    assert without_request_id(wrong_birth) == without_request_id(unknown)
    assert wrong_birth.json()["type"] == "urn:wajah:problem:application-lookup-failed"
    assert set(wrong_birth.headers) == set(unknown.headers)


def report(harness: ApiHarness, role: Role = Role.OPS, **params: str) -> Any:
    window = {
        "since": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
        "until": (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat(),
        **params,
    }
    return harness.client.get(
        "/v1/reports/operations", params=window, headers=harness.headers(role)
    )


def test_the_report_counts_what_was_done(harness: ApiHarness, flow: dict[str, Any]) -> None:
    response = report(harness)
    assert response.status_code == 200, response.text
    body = response.json()
    totals = body["totals"]
    # The blank photo is refused with a failing face_count: a failure to acquire.
    assert totals["enrollments"] == {"accepted": 1, "low-quality": 2, "pending_review": 1}
    assert totals["verifications"] == {"match": 1}
    assert totals["searches"] == {}
    assert totals["capture_attempts"] == 5
    assert (totals["failure_to_acquire"], totals["quality_refusals"]) == (1, 1)
    assert totals["failure_to_acquire_rate"] == totals["quality_refusal_rate"] == 0.2
    assert sorted(r["reason"] for r in totals["top_refusal_reasons"]) == flow["refusal_reasons"]
    assert totals["latency_ms"]["verify"]["count"] == 1
    assert totals["latency_ms"]["verify"]["median"] > 0
    assert totals["applications_decided"] == {"approved": 1, "rejected": 1}
    assert totals["time_to_decision_s"]["count"] == 2
    by_station = {row["station"]: row for row in body["rows"]}
    assert set(by_station) == {"test-clerk", "test-officer", "test-supervisor"}
    assert by_station["test-officer"]["verifications"] == {"match": 1}
    assert by_station["test-officer"]["applications_decided"] == {"approved": 1}
    assert by_station["test-supervisor"]["applications_decided"] == {"rejected": 1}
    assert body["applications_by_status"]["approved"] == 1
    assert body["applications_by_status"]["rejected"] == 1
    assert body["backlogs"] == [
        {
            "name": "duplicate_reviews",
            "open": 0,
            "age_s": {"count": 0, "median": None, "p90": None},
            "oldest_age_s": None,
        }
    ]
    # While the case was open, it was in the backlog.
    held_at = dt.datetime.fromisoformat(flow["after_duplicate"]["timeline"][-1]["at"])
    earlier = report(harness, until=(held_at + dt.timedelta(microseconds=1)).isoformat())
    assert earlier.json()["backlogs"][0]["open"] == 1
    assert earlier.json()["totals"]["applications_decided"] == {}


def test_the_report_as_csv_and_who_may_read_it(harness: ApiHarness, flow: dict[str, Any]) -> None:
    response = report(harness, Role.SUPERVISOR, format="csv", period="week")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    total = rows[-1]
    assert total["period"] == "total"
    assert (total["enroll_accepted"], total["verify_match"], total["capture_attempts"]) == (
        "1",
        "1",
        "5",
    )
    assert {row["period"] for row in rows[:-1]} == {
        "{}-W{:02d}".format(*(dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).isocalendar()[:2])
    }
    assert report(harness, Role.CLERK).status_code == 403
    assert (
        report(harness, since="2026-12-02T00:00:00Z", until="2026-12-01T00:00:00Z").status_code
        == 422
    )


def held_application(harness: ApiHarness, faces_dir: Path, ref: str, photo: int) -> tuple[str, int]:
    """A new subject and application whose face is the same person's: held for review."""
    clerk = harness.headers(Role.CLERK)
    created = harness.client.post(
        "/v1/subjects",
        json={"subject_id": ref, "full_name": "T. Blair", "date_of_birth": LOOKALIKE_BIRTH},
        headers=clerk,
    )
    assert created.status_code == 201
    opened = harness.client.post(
        "/v1/applications",
        json={"subject_id": ref, "application_type": "passport_renewal"},
        headers=clerk,
    )
    enrolled = harness.client.post(
        f"/v1/subjects/{ref}/faces",
        files=upload(lfw(faces_dir, "Tony_Blair", photo)),
        data={"source": "scan"},
        headers=clerk,
    )
    assert enrolled.json()["status"] == "pending_review", enrolled.text
    number = opened.json()["number"]
    assert get(harness, number)["status"] == "needs_review"
    return number, enrolled.json()["review_id"]


def test_a_cleared_case_gives_the_application_back(
    harness: ApiHarness, flow: dict[str, Any], faces_dir: Path
) -> None:
    supervisor = harness.headers(Role.SUPERVISOR)
    distinct, review = held_application(harness, faces_dir, "APP-3", 4)
    resolved = harness.client.post(
        f"/v1/reviews/{review}/resolve",
        json={"resolution": "confirm_distinct", "comment": "twins, documents checked"},
        headers=supervisor,
    )
    assert resolved.status_code == 200, resolved.text
    application = get(harness, distinct)
    assert application["status"] == "biometrics_captured"
    assert application["subject_id"] == "APP-3"

    merged, review = held_application(harness, faces_dir, "APP-4", 5)
    resolved = harness.client.post(
        f"/v1/reviews/{review}/resolve",
        json={
            "resolution": "merge",
            "comment": "the same man, a second record",
            "merge_into": "APP-1",
        },
        headers=supervisor,
    )
    assert resolved.status_code == 200, resolved.text
    application = get(harness, merged)
    assert application["status"] == "biometrics_captured"
    assert application["subject_id"] == "APP-1"  # followed the photos to the surviving record


def test_the_lookup_is_rate_limited_per_address(harness: ApiHarness, flow: dict[str, Any]) -> None:
    budget = harness.settings.public_lookup_per_minute
    answers = [
        lookup(harness, flow["first"]["number"], APPLICANT_BIRTH).status_code
        for _ in range(budget + 1)
    ]
    assert answers[-1] == 429
    assert set(answers) <= {200, 429}
