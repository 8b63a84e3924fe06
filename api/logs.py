"""Structured JSON logs with the request id.

The request middleware puts the request id in a context variable; worker threads started with
``anyio.to_thread`` inherit it, so the core's own log lines (which know nothing of HTTP) carry
it too. Only ids, decisions, scores and timings are logged: never a name, an image, a template,
a document number or an API key secret.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Any, Final

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wajah_request_id", default=None
)

# Attributes every LogRecord has; anything else came in through ``extra=`` and is logged.
_STANDARD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line. A message that is itself a JSON object (the core logs such
    lines) is merged in rather than quoted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        parsed: Any = None
        if message.startswith("{"):
            try:
                parsed = json.loads(message)
            except ValueError:
                parsed = None
        if isinstance(parsed, dict):
            entry.update(parsed)
        else:
            entry["message"] = message
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry.setdefault(name, value)
        request_id = request_id_var.get()
        if request_id is not None:
            entry.setdefault("request_id", request_id)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the whole process (called by ``wajah serve``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
