"""Logging to stderr, unbuffered: plain for a terminal, journald-friendly, or JSON lines.

Every handler carries a `SecretFilter`, so the Loop token and the PMS password are
scrubbed from every line, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from loopsync.redact import SecretFilter

# syslog priorities, which journald reads from a "<N>" prefix on each line.
_JOURNAL_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class JournalFormatter(logging.Formatter):
    """No timestamp (journald adds its own), a priority prefix journald understands."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _JOURNAL_PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


_handler: logging.Handler | None = None


def setup_logging(level: int, fmt: str = "text", secrets: Iterable[str] = ()) -> logging.Handler:
    """Install loopsync's one stderr handler (replacing an earlier one); return it."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(min(level, root.level) if root.level else level)
    # Quiet the libraries' own chatter unless asked for everything. SQLAlchemy's echo
    # never: it prints statement parameters, which are guest details.
    for noisy in ("urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(
            logging.WARNING if level > logging.DEBUG else logging.INFO
        )
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    _handler = handler
    return handler


def add_secrets(secrets: Iterable[str]) -> None:
    """Scrub these too from every later line (once the config has been read)."""
    if _handler is not None:
        _handler.addFilter(SecretFilter(secrets))
