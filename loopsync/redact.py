"""Keeping secrets and guest details out of logs, errors and printed output.

The Loop token travels in the query string (`?authToken=…`), so any URL that reaches
a log line or an exception message would carry it. `scrub` removes it from text,
`SecretFilter` from log records, and `mask` shortens guest details for `--dry-run`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "SecretFilter", "mask", "protect_library_loggers", "scrub"]

MASK = "***"
_BULLET = "•"

# The value runs to the next query separator, fragment, whitespace or quote: what a
# URL inside a log line, a repr() or an exception message can be followed by.
_AUTH_TOKEN_PARAM = re.compile(r"(authToken=)[^&#\s'\"<>]*", re.IGNORECASE)
_WORD = re.compile(r"\w+")
# urllib3 logs request URLs, query string (hence the token) included, at DEBUG and WARNING.
_URL_LOGGING_LIBRARIES = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)
_protect_lock = threading.Lock()
_PHONE = re.compile(r"\+?[\d\s().\-/]+")


def _variants(secrets: Iterable[str]) -> list[str]:
    """Each secret as written and as it appears URL-encoded, longest first."""
    found: set[str] = set()
    for secret in secrets:
        if secret:
            found.update({secret, quote(secret, safe=""), quote_plus(secret, safe="")})
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (and any `authToken=<value>` query parameter) with `***`."""
    for secret in _variants(secrets):
        text = text.replace(secret, MASK)
    return _AUTH_TOKEN_PARAM.sub(lambda match: match[1] + MASK, text)


class SecretFilter(logging.Filter):
    """A logging filter that scrubs secrets from the message, its arguments and tracebacks.

    The record is rendered (`msg % args`) and replaced by the scrubbed text, so no
    handler or formatter downstream can see the raw arguments. Install it on handlers
    (it then covers records from every logger) or on a logger (records logged there).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = _variants(secrets)
        self._formatter = logging.Formatter()

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not let the raw args through
            message = f"{record.msg} {record.args!r}"
        record.msg = self._scrub(message)
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self._formatter.formatException(record.exc_info)
            # Formatters print exc_text when exc_info is gone; the exception object
            # itself (whose args may hold a URL) no longer reaches any handler.
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self._scrub(record.stack_info)
        return True


def protect_library_loggers() -> None:
    """Scrub `authToken=` from the records of the HTTP libraries' loggers; idempotent.

    A logger's filters act before its records reach any handler, so this covers
    handlers that carry no `SecretFilter` (a test runner's, a library user's).
    """
    with _protect_lock:
        for name in _URL_LOGGING_LIBRARIES:
            library_logger = logging.getLogger(name)
            if not any(isinstance(item, SecretFilter) for item in library_logger.filters):
                library_logger.addFilter(SecretFilter())


def _mask_word(match: re.Match[str]) -> str:
    word = match[0]
    return word[0] + _BULLET * (len(word) - 1)


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    name, dot, suffix = domain.rpartition(".")
    if not dot:
        name, suffix = domain, ""
    masked_domain = f"{name[:1]}{_BULLET * 3}{dot}{suffix}"
    return f"{local[:1]}{_BULLET * 3}@{masked_domain}"


def _mask_phone(value: str) -> str:
    digits_seen = 0
    total = sum(char.isdigit() for char in value)
    out: list[str] = []
    for char in value:
        if char.isdigit():
            digits_seen += 1
            out.append(char if digits_seen > total - 2 else _BULLET)
        else:
            out.append(char)
    return "".join(out)


def mask(value: str | None) -> str:
    """Shorten a guest detail for display: `John Smith` → `J••• S••••`.

    E-mail addresses become `j•••@e•••.com`, phone numbers keep their last two digits
    (`•••••••••34`), anything else keeps the first character of each word. `None` → "".
    """
    if value is None:
        return ""
    text = value.strip()
    if "@" in text:
        return _mask_email(text)
    if _PHONE.fullmatch(text) and sum(char.isdigit() for char in text) >= 5:
        return _mask_phone(text)
    return _WORD.sub(_mask_word, text)
