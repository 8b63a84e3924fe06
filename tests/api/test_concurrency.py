"""Eight clients at once, enrolling and verifying: no errors, no lost enrollment, the audit
chain intact."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.api.conftest import ApiHarness
from tests.api.photos import lfw, upload
from wajah.enrollment.access import Role

# Eight people whose LFW photos score below the tests' threshold against each other.
PEOPLE = (
    "Tony_Blair",
    "Donald_Rumsfeld",
    "Vladimir_Putin",
    "Jean_Chretien",
    "Hans_Blix",
    "Kofi_Annan",
    "Andre_Agassi",
    "Junichiro_Koizumi",
)
VERIFICATIONS_PER_CLIENT = 2


@pytest.mark.slow
def test_eight_clients_enroll_and_verify_at_once(harness: ApiHarness, faces_dir: Path) -> None:
    barrier = threading.Barrier(len(PEOPLE))
    clerk, officer = harness.headers(Role.CLERK), harness.headers(Role.OFFICER)

    def client(index: int) -> list[int]:
        name, ref = PEOPLE[index], f"CONC-{index}"
        statuses = []
        barrier.wait()
        created = harness.client.post(
            "/v1/subjects", json={"subject_id": ref, "full_name": "C"}, headers=clerk
        )
        statuses.append(created.status_code)
        enrolled = harness.client.post(
            f"/v1/subjects/{ref}/faces",
            files=upload(lfw(faces_dir, name, 1)),
            data={"source": "scan"},
            headers=clerk,
        )
        statuses.append(enrolled.status_code)
        for _ in range(VERIFICATIONS_PER_CLIENT):
            image = base64.b64encode(lfw(faces_dir, name, 2)).decode()
            verified = harness.client.post(
                "/v1/verify", json={"subject_id": ref, "image_base64": image}, headers=officer
            )
            statuses.append(verified.status_code)
        return statuses

    with ThreadPoolExecutor(len(PEOPLE)) as executor:
        results = list(executor.map(client, range(len(PEOPLE))))
    assert results == [[201, 201] + [200] * VERIFICATIONS_PER_CLIENT] * len(PEOPLE)
    for index in range(len(PEOPLE)):
        subject = harness.client.get(f"/v1/subjects/CONC-{index}", headers=officer).json()
        assert subject["sample_count"] == 1 and subject["status"] == "active"
    assert len(harness.parts.gallery) == len(PEOPLE)
    audit = harness.client.get(
        "/v1/audit", params={"action": "face.enroll"}, headers=harness.headers(Role.OPS)
    ).json()
    assert audit["total"] == len(PEOPLE)
    assert {r["subject_id"] for r in audit["items"]} == {f"CONC-{i}" for i in range(8)}
    report = harness.client.app.state.audit_log.verify_chain()  # type: ignore[attr-defined]
    assert report.ok, report.problem
    # create, enroll, the verifications, the read-back, and the audit read above
    expected = len(PEOPLE) * (2 + VERIFICATIONS_PER_CLIENT + 1) + 1
    assert report.checked == expected
