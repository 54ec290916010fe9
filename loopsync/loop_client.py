"""The HTTP client for Loop's Contact and ContactEvent calls (DESIGN §1, §6).

Every call returns a `LoopReply` whose `outcome` tells the outbox what to do next;
no HTTP or network problem is raised. Retries are the outbox's job, not this
module's: the transport never retries on its own, because an event that may have
reached Loop must not be sent twice behind the outbox's back.

The token travels in the query string, so every text that leaves this module
(reply body, detail, log line) is scrubbed, and urllib3's own debug lines, which
print request URLs, are filtered too (`protect_library_loggers`).
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from types import TracebackType
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from loopsync import __version__
from loopsync.model import ActionKind
from loopsync.redact import protect_library_loggers, scrub

__all__ = ["LoopClient", "LoopReply", "Outcome"]

logger = logging.getLogger(__name__)

CONTACT_PATH = "/api/v1/Contact"
EVENT_PATH = "/api/v1/ContactEvent"
PROBE_FOREIGN_ID_PREFIX = "loopsync-token-check-"
BODY_LIMIT = 2000
_MESSAGE_LIMIT = 200
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_AUTH_STATUSES = frozenset({401, 403})


class Outcome(StrEnum):
    """What a call's result means for delivery."""

    SUCCESS = "success"
    TRANSIENT = "transient"  # nothing happened at Loop, or Loop asked us to come back: retry
    PERMANENT = "permanent"  # Loop refused this request; retrying the same one will not help
    AUTH = "auth"  # the token was refused: stop delivering for the whole account
    UNKNOWN = "unknown"  # the request may have reached Loop, but no reply came back


@dataclass(frozen=True, slots=True)
class LoopReply:
    """The classified result of one call to Loop. Every text field is token-free."""

    outcome: Outcome
    http_status: int | None
    body: str
    retry_after: float | None
    detail: str
    contact_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when Loop accepted the call."""
        return self.outcome is Outcome.SUCCESS


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date); never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means GMT too
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _exception_chain(error: BaseException) -> list[BaseException]:
    """The error and what it wraps: requests' first arg, urllib3's `.reason`, `__cause__`.

    `__context__` is left out on purpose: it can hold an unrelated exception that was
    being handled when this one was raised.
    """
    chain: list[BaseException] = []
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return chain


class _RateLimiter:
    """At most `per_second` request starts per second, shared by all threads."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        if per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        self._interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start: float | None = None

    def wait(self) -> None:
        """Block until this caller may start a request."""
        with self._lock:
            now = self._clock()
            start = now if self._next_start is None else max(now, self._next_start)
            # Reserve the slot before sleeping, so the lock is not held while waiting.
            self._next_start = start + self._interval
        delay = start - now
        if delay > 0:
            self._sleep(delay)


def _looks_like_loop(body: str) -> bool:
    """Loop's API answers JSON objects with a `status` (DESIGN §1)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "status" in parsed


class LoopClient:
    """Calls Loop's Contact and ContactEvent endpoints; one instance per Loop account.

    Thread-safe: a shared keep-alive pool of `pool_size` connections and a rate ceiling
    of `max_requests_per_second`. Use it as a context manager or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float = 5,
        read_timeout: float = 20,
        pool_size: int = 4,
        max_requests_per_second: float = 10,
        user_agent: str = f"loopsync/{__version__}",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._secrets = (token,) if token else ()
        self._timeouts = (connect_timeout, read_timeout)
        self._limiter = _RateLimiter(max_requests_per_second, clock, sleep)
        protect_library_loggers()
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(
            {
                "User-Agent": user_agent,
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
        )

    def __repr__(self) -> str:
        return f"LoopClient({self.base_url!r})"

    # -- the calls ----------------------------------------------------------------

    def upsert_contact(self, contact: Mapping[str, Any]) -> LoopReply:
        """Insert or update a contact (POST /api/v1/Contact)."""
        return self._call("POST", CONTACT_PATH, contact)

    def delete_contact(self, body: Mapping[str, Any]) -> LoopReply:
        """Delete a contact by `foreignId` or `id`; a 404 counts as done (already gone)."""
        return self._call("DELETE", CONTACT_PATH, body, missing_is_success=True)

    def send_event(self, body: Mapping[str, Any]) -> LoopReply:
        """Register a checkin, checkout or roomready event (POST /api/v1/ContactEvent)."""
        return self._call("POST", EVENT_PATH, body)

    def send(self, kind: ActionKind, body: Mapping[str, Any]) -> LoopReply:
        """Make the call an outbox action of this kind stands for."""
        if kind is ActionKind.UPSERT:
            return self.upsert_contact(body)
        if kind is ActionKind.DELETE:
            return self.delete_contact(body)
        if body.get("event") != kind.value:
            raise ValueError(f"a {kind.value} action carries event {body.get('event')!r}")
        return self.send_event(body)

    def check_token(self) -> LoopReply:
        """Check that Loop accepts the token, without creating or changing any contact.

        Loop has no "who am I" call, so this deletes a contact that cannot exist
        (`foreignId` `loopsync-token-check-<random>`). A 401/403 means the token was
        refused (AUTH); any other 2xx or 4xx reply — normally 404, "contact not found" —
        means Loop accepted it (SUCCESS). Network trouble and 5xx classify as usual.
        """
        probe = {"foreignId": PROBE_FOREIGN_ID_PREFIX + secrets.token_hex(8)}
        reply = self._call("DELETE", CONTACT_PATH, probe, missing_is_success=True)
        status = reply.http_status
        refused_probe = (
            reply.outcome is Outcome.PERMANENT
            and status is not None
            and (200 <= status < 300 or 400 <= status < 500)
        )
        if reply.outcome is not Outcome.SUCCESS and not refused_probe:
            return reply
        if not _looks_like_loop(reply.body):
            # A wrong base URL answers too (a web server's 404 page): that proves nothing.
            return self._reply(
                Outcome.PERMANENT,
                status,
                f"the server at {self.base_url} answered HTTP {status}, but not like Loop's "
                "API; check loop.base_url",
                body=reply.body,
            )
        return self._reply(
            Outcome.SUCCESS,
            status,
            f"token accepted (HTTP {status} to a probe delete)",
            body=reply.body,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> LoopClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        *,
        missing_is_success: bool = False,
    ) -> LoopReply:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self._limiter.wait()
        started = time.perf_counter()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params={"authToken": self._token},
                data=payload,
                timeout=self._timeouts,
                allow_redirects=False,  # a redirect would resend the token elsewhere
            )
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as error:
            reply = self._classify_error(error)
        else:
            reply = self._classify_response(response, missing_is_success=missing_is_success)
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %s (%s) in %.0f ms",
            method,
            path,
            reply.http_status if reply.http_status is not None else "no reply",
            reply.outcome.value,
            elapsed_ms,
        )
        return reply

    def _reply(
        self,
        outcome: Outcome,
        http_status: int | None,
        detail: str,
        *,
        body: str = "",
        retry_after: float | None = None,
        contact_id: str | None = None,
    ) -> LoopReply:
        return LoopReply(
            outcome=outcome,
            http_status=http_status,
            body=self._scrub(body[:BODY_LIMIT]),
            retry_after=retry_after,
            detail=_one_line(self._scrub(detail), 500),
            contact_id=contact_id,
        )

    def _classify_response(
        self, response: requests.Response, *, missing_is_success: bool
    ) -> LoopReply:
        status = response.status_code
        text = response.content.decode(response.encoding or "utf-8", errors="replace")
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status in _AUTH_STATUSES:
            return self._reply(
                Outcome.AUTH,
                status,
                f"HTTP {status} from Loop: the auth token was refused",
                body=text,
            )
        if status == 404 and missing_is_success:
            return self._reply(
                Outcome.SUCCESS, status, "HTTP 404 from Loop: contact already gone", body=text
            )
        if status in _TRANSIENT_STATUSES or status >= 500:
            return self._reply(
                Outcome.TRANSIENT,
                status,
                f"HTTP {status} from Loop",
                body=text,
                retry_after=retry_after,
            )
        if not 200 <= status < 300:
            message = self._failure_message(text)
            suffix = f": {message}" if message else ""
            if 300 <= status < 400:
                suffix = f": a redirect to {response.headers.get('Location', '?')}; check base_url"
            return self._reply(
                Outcome.PERMANENT,
                status,
                f"HTTP {status} from Loop{suffix}",
                body=text,
                retry_after=retry_after,
            )
        try:
            parsed = json.loads(text)
        except ValueError:
            return self._reply(
                Outcome.PERMANENT, status, f"HTTP {status} from Loop, reply is not JSON", body=text
            )
        if not isinstance(parsed, dict) or parsed.get("status") != "Success":
            loop_status = parsed.get("status") if isinstance(parsed, dict) else None
            message = self._failure_message(text)
            return self._reply(
                Outcome.PERMANENT,
                status,
                f"HTTP {status} from Loop with status {loop_status!r}"
                + (f": {message}" if message else ""),
                body=text,
            )
        contact_id = parsed.get("id")
        return self._reply(
            Outcome.SUCCESS,
            status,
            f"HTTP {status} from Loop",
            body=text,
            contact_id=contact_id if isinstance(contact_id, str) else None,
        )

    @staticmethod
    def _failure_message(text: str) -> str:
        """Loop's `message` from a JSON reply, shortened to one line, or ""."""
        try:
            parsed = json.loads(text)
        except ValueError:
            return ""
        message = parsed.get("message") if isinstance(parsed, dict) else None
        return _one_line(str(message)) if message else ""

    def _classify_error(self, error: BaseException) -> LoopReply:
        connect_timeout, read_timeout = self._timeouts
        chain = _exception_chain(error)
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return self._reply(
                Outcome.TRANSIENT,
                None,
                f"could not connect to Loop within {connect_timeout:g} s (connect timeout)",
            )
        refused = next(
            (cause for cause in chain if isinstance(cause, urllib3.exceptions.NewConnectionError)),
            None,
        )
        if refused is not None:
            reason = refused.__cause__ if refused.__cause__ is not None else refused
            return self._reply(
                Outcome.TRANSIENT, None, f"could not connect to Loop: {_os_reason(reason)}"
            )
        if isinstance(error, requests.exceptions.ReadTimeout) or any(
            isinstance(cause, urllib3.exceptions.ReadTimeoutError) for cause in chain
        ):
            return self._reply(
                Outcome.UNKNOWN, None, f"no reply within {read_timeout:g} s (read timeout)"
            )
        if isinstance(error, requests.exceptions.SSLError):
            # The handshake comes before the request; a refused certificate means nothing
            # was sent. Other TLS failures may strike mid-reply, so they stay UNKNOWN.
            verify = any("CERTIFICATE_VERIFY_FAILED" in str(cause) for cause in chain)
            outcome = Outcome.TRANSIENT if verify else Outcome.UNKNOWN
            return self._reply(outcome, None, f"TLS failure talking to Loop: {error}")
        if isinstance(
            error,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema
            | requests.exceptions.InvalidHeader,
        ):
            return self._reply(Outcome.PERMANENT, None, f"request not sent: {error}")
        innermost = chain[-1]
        return self._reply(
            Outcome.UNKNOWN,
            None,
            "connection lost after the request was sent, no reply "
            f"({type(innermost).__name__}: {innermost})",
        )


def _os_reason(error: BaseException) -> str:
    """`Connection refused` rather than urllib3's repr-laden message."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error)
    # urllib3 prefixes "HTTPConnection(host=…, port=…): "; the rest is the reason.
    return text.split("): ", 1)[-1] if "): " in text else text
