"""Structured JSON log lines: one event name and a few fields per line.

Fields are ids, decisions, counts, scores and timings only: never a name, a document number,
an image or a template (the callers' rule; nothing here can check it).
"""

from __future__ import annotations

import json
import logging
from typing import Any


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, json.dumps({"event": event, **fields}))
