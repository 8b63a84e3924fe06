"""One module per resource of docs/api.md; :data:`ROUTERS` is what the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from wajah.api.http.routes import (
    applications,
    audit,
    faces,
    health,
    keys,
    matching,
    ops,
    public,
    quality,
    reports,
    reviews,
    subjects,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    keys.router,
    quality.router,
    subjects.router,
    faces.router,
    matching.router,
    reviews.router,
    applications.router,
    public.router,
    reports.router,
    audit.router,
    ops.router,
)
