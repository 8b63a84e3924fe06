"""The two 1:N modes (see :mod:`wajah.matcher.identification`), in a module of their own: the
CLI reads ``--mode``'s type at start-up and must not pay for numpy to do so."""

from __future__ import annotations

from enum import StrEnum


class IdentifyMode(StrEnum):
    INVESTIGATION = "investigation"
    IDENTIFICATION = "identification"
