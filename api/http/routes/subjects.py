"""Subjects: the people an office enrolls, named by the office's reference."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from wajah.api.http.audit_trail import audited, entry_of
from wajah.api.http.auth import Caller, require
from wajah.api.http.routes._support import AUTH_PROBLEMS, blocking, problems, service_of
from wajah.api.schemas import Subject, SubjectCreate, SubjectPage, SubjectUpdate
from wajah.enrollment.access import Role

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])

READERS = (Role.OFFICER, Role.SUPERVISOR, Role.CLERK)
SubjectIdPath = Path(min_length=1, max_length=64, description="the office's reference")


@router.post(
    "",
    response_model=Subject,
    status_code=201,
    summary="Create a subject (no face yet)",
    responses=problems(*AUTH_PROBLEMS, 409),
    dependencies=[Depends(audited("subject.create"))],
)
async def create_subject(
    *, request: Request, body: SubjectCreate, _: Annotated[Caller, Depends(require(Role.CLERK))]
) -> Subject:
    entry_of(request).subject_ref = body.subject_id
    service = service_of(request)
    record = await blocking(
        request,
        lambda: service.create_subject(
            body.subject_id,
            body.full_name,
            date_of_birth=body.date_of_birth,
            nationality=body.nationality,
            document_number=body.document_number,
        ),
    )
    return Subject.from_record(record)


@router.get(
    "",
    response_model=SubjectPage,
    summary="List subjects",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("subject.list"))],
)
async def list_subjects(
    *,
    request: Request,
    offset: int = Query(0, ge=0, le=2**31),
    limit: int = Query(50, ge=1, le=1000),
    status: Literal["active", "pending_review", "deleted"] | None = Query(None),
    nationality: str | None = Query(None, pattern=r"^[A-Za-z]{3}$"),
    name: str | None = Query(None, max_length=200, description="case-insensitive substring"),
    _: Annotated[Caller, Depends(require(*READERS))],
) -> SubjectPage:
    service = service_of(request)
    records, total = await blocking(
        request,
        lambda: service.list_subjects(
            offset=offset, limit=limit, status=status, nationality=nationality, name_contains=name
        ),
    )
    # The name searched for is not recorded: it is a name.
    entry_of(request).details = {
        "returned": len(records),
        "total": total,
        "filters": sorted(
            k for k, v in (("status", status), ("nationality", nationality), ("name", name)) if v
        ),
    }
    return SubjectPage(
        items=[Subject.from_record(r) for r in records], total=total, offset=offset, limit=limit
    )


@router.get(
    "/{subject_id}",
    response_model=Subject,
    summary="One subject",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("subject.read"))],
)
async def get_subject(
    *,
    request: Request,
    subject_id: str = SubjectIdPath,
    _: Annotated[Caller, Depends(require(*READERS))],
) -> Subject:
    service = service_of(request)
    return Subject.from_record(
        await blocking(request, lambda: service.get_subject_by_ref(subject_id))
    )


@router.patch(
    "/{subject_id}",
    response_model=Subject,
    summary="Correct a subject's identity fields",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("subject.update"))],
)
async def update_subject(
    *,
    request: Request,
    body: SubjectUpdate,
    subject_id: str = SubjectIdPath,
    _: Annotated[Caller, Depends(require(Role.CLERK, Role.SUPERVISOR))],
) -> Subject:
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    entry_of(request).details = {"fields": sorted(changes)}
    service = service_of(request)
    record = await blocking(request, lambda: service.update_subject(subject_id, **changes))
    return Subject.from_record(record)


@router.delete(
    "/{subject_id}",
    status_code=204,
    response_class=Response,
    summary="Erase a subject: record, photos, templates, index entries",
    responses=problems(*AUTH_PROBLEMS),
    dependencies=[Depends(audited("subject.delete"))],
)
async def delete_subject(
    *,
    request: Request,
    subject_id: str = SubjectIdPath,
    _: Annotated[Caller, Depends(require(Role.SUPERVISOR))],
) -> Response:
    service = service_of(request)
    removed = await blocking(request, lambda: service.delete_subject(subject_id))
    entry_of(request).details = {"templates_removed": removed}
    return Response(status_code=204)
