"""The applicants' own status lookup: public (no API key), one application at a time by its
number and the applicant's date of birth.

The answer shows the status and the timeline's statuses and times only: never a name, a
photo, a score, a station, an officer's key or a staff note. An unknown number and a wrong
date of birth get exactly the same answer (404 ``application-lookup-failed``, the same body
but for the request id) after the same work (``ApplicationRepository.lookup``). Each client
address has a small token bucket of lookups (``WAJAH_PUBLIC_LOOKUP_PER_MINUTE``); beyond it
429 ``rate-limited`` with Retry-After, before any database work.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from wajah.api.http.limits import RateLimiter
from wajah.api.http.routes._support import blocking, problems, service_of
from wajah.api.schemas import PublicApplicationStatus, StatusLookup

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.post(
    "/status-lookup",
    response_model=PublicApplicationStatus,
    summary="An applicant's status lookup (public, no API key)",
    description=(
        "The number and the date of birth go in the body, not the URL (URLs end up in logs). "
        "404 `application-lookup-failed` alike for an unknown number and a wrong date of "
        "birth; 429 `rate-limited` past the per-address budget."
    ),
    responses=problems(404, 422, 429),
    openapi_extra={"security": []},
)
async def status_lookup(*, request: Request, body: StatusLookup) -> PublicApplicationStatus:
    limiter: RateLimiter = request.app.state.public_lookups
    address = request.client.host if request.client is not None else "unknown"
    limiter.check(address)
    service = service_of(request)
    status = await blocking(
        request, lambda: service.lookup_application(body.number, body.date_of_birth)
    )
    return PublicApplicationStatus.from_status(status)
