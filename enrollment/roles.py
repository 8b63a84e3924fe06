"""The roles an API key may hold, in a module of their own: the CLI reads ``--role``'s type at
start-up and must not pay for numpy and the records module to do so."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What an API key may do."""

    CLERK = "clerk"  # quality, create subjects, enroll
    OFFICER = "officer"  # verify, identify, read subjects
    SUPERVISOR = "supervisor"  # reviews, deletion, audit read
    OPS = "ops"  # metrics, audit read, index admin
    ADMIN = "admin"  # API keys
