"""A Loop API simulator: a real HTTP server for tests, the demo and installers.

It implements the calls loopsync makes (DESIGN §1) with Loop's rules as the table of
Benbria's article states them: `room` is required to insert a contact, events need a
known contact, the token is checked. It is stricter than Loop on purpose: unknown
fields and wrongly typed values are refused, so a typo in our payload fails a test.

Everything it receives is kept (never the token: recorded paths carry no query
string), and faults can be injected: error replies, delays, replies that never come,
and connections cut after the request was processed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import signal
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from loopsync.redact import scrub

__all__ = [
    "CONTACT_FIELDS",
    "CONTACT_PATH",
    "EVENT_PATH",
    "STATE_PATH",
    "LoopSimulator",
    "Received",
    "serve_forever",
]

logger = logging.getLogger(__name__)

CONTACT_PATH = "/api/v1/Contact"
EVENT_PATH = "/api/v1/ContactEvent"
STATE_PATH = "/_simulator/state"

CONTACT_FIELDS = frozenset(
    {
        "foreignId",
        "locationId",
        "area",
        "title",
        "firstname",
        "lastname",
        "email",
        "mobile",
        "language",
        "arrivalTime",
        "departureTime",
        "checkedInStatus",
        "room",
        "vipStatus",
        "groupName",
        "customFields",
    }
)
EVENT_FIELDS = frozenset({"event", "foreignId", "contactId", "contact"})
DELETE_FIELDS = frozenset({"foreignId", "id"})
EVENT_NAMES = ("checkin", "checkout", "roomready")
_ALLOWED_METHODS = {CONTACT_PATH: ("POST", "DELETE"), EVENT_PATH: ("POST",)}

FaultKind = Literal["fail", "reply", "delay", "drop", "hang"]


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the simulator saw it.

    `http_status` is what was replied (None: no reply, the connection was dropped or
    hung); `processed` is False when a fault replied in Loop's place or hung the
    request, so nothing was stored. `fault` names the injected fault, if any.
    """

    index: int
    method: str
    path: str
    body: Any
    http_status: int | None
    processed: bool
    fault: FaultKind | None = None
    raw_body: bytes = b""
    user_agent: str | None = None
    content_type: str | None = None


@dataclass(slots=True)
class _Fault:
    kind: FaultKind
    remaining: int
    path_suffix: str | None
    status: int = 500
    body: Any = None
    retry_after: float | None = None
    seconds: float = 0.0

    def matches(self, path: str) -> bool:
        return self.path_suffix is None or path.endswith(self.path_suffix)


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


def _failure(status: int, message: str) -> _Reply:
    return _Reply(status, {"status": "Failure", "message": message})


def contact_id_for(foreign_id: str) -> str:
    """The simulator's Loop id for a foreignId: 24 lowercase hex digits, stable."""
    return hashlib.sha256(foreign_id.encode("utf-8")).hexdigest()[:24]


def _is_iso8601(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _contact_problem(contact: dict[str, Any]) -> str | None:
    """Why this contact would be refused, or None when it is acceptable."""
    unknown = sorted(set(contact) - CONTACT_FIELDS)
    if unknown:
        return f"unknown field {unknown[0]!r} in contact"
    foreign_id = contact.get("foreignId")
    if not isinstance(foreign_id, str) or not foreign_id:
        return "foreignId is required and must be a non-empty string (keyed contacts only)"
    for name, value in contact.items():
        if name != "customFields" and not isinstance(value, str):
            return f"{name} must be a string"
    if contact.get("checkedInStatus", "false") not in ("true", "false"):
        return 'checkedInStatus must be "true" or "false"'
    mobile = contact.get("mobile")
    if mobile is not None and not (mobile.isascii() and mobile.isdigit()):
        return "mobile must be digits only, in international format (e.g. 16135551234)"
    language = contact.get("language")
    if language is not None and not (len(language) == 2 and language.isascii()):
        return "language must be an ISO 639-1 two-letter code"
    for name in ("arrivalTime", "departureTime"):
        if name in contact and not _is_iso8601(contact[name]):
            return f"{name} must be an ISO 8601 date string"
    if "customFields" in contact:
        fields = contact["customFields"]
        if not isinstance(fields, list) or not all(
            isinstance(item, dict)
            and len(item) == 1
            and all(isinstance(value, str) for value in item.values())
            for item in fields
        ):
            return "customFields must be a list of one-key objects with string values"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], simulator: LoopSimulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        # Clients that time out and hang up are normal here; no tracebacks on stderr.
        logger.debug("simulator: connection from %s ended with an error", client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Loop behind its proxy
    # Headers and body are written separately: without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every reply and make delivery look slow.
    disable_nagle_algorithm = True
    server_version = "LoopSimulator/1"

    def setup(self) -> None:
        super().setup()
        self.server.simulator._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.simulator._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes the request line, query string and token included, to stderr.
        logger.debug("simulator: %s", scrub(format % args, [self.server.simulator.token]))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _read_body(self) -> bytes | None:
        """The request body, or None when its length is not given plainly."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: _Reply) -> None:
        if isinstance(reply.body, str):
            payload = reply.body.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        else:
            payload = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self, method: str) -> None:
        simulator = self.server.simulator
        url = urlsplit(self.path)
        raw = self._read_body()
        if raw is None:
            self.close_connection = True  # the rest of the stream cannot be framed
            self._send(_failure(411, "a valid Content-Length is required"))
            return
        if url.path == STATE_PATH:
            reply = (
                _Reply(200, simulator.state())
                if method == "GET"
                else _failure(405, f"{method} is not allowed on {STATE_PATH}")
            )
            self._send(reply)
            return
        request = _Request(
            method=method,
            path=url.path,
            query=url.query,
            raw=raw,
            user_agent=self.headers.get("User-Agent"),
            content_type=self.headers.get("Content-Type"),
        )
        fault = simulator._take_fault(url.path)
        if fault is None or fault.kind == "delay":
            if fault is not None and simulator._stopping.wait(fault.seconds):
                self.close_connection = True
                return
            self._send(simulator._process(request, fault=None if fault is None else "delay"))
        elif fault.kind in ("fail", "reply"):
            headers: tuple[tuple[str, str], ...] = ()
            if fault.retry_after is not None:
                headers = (("Retry-After", f"{fault.retry_after:g}"),)
            reply = _Reply(fault.status, fault.body, headers)
            simulator._record(request, reply.status, processed=False, fault=fault.kind)
            self._send(reply)
        elif fault.kind == "drop":
            simulator._process(request, fault="drop")
            self.close_connection = True  # the connection closes without a byte of reply
        else:  # hang
            simulator._record(request, None, processed=False, fault="hang")
            simulator._stopping.wait()
            self.close_connection = True


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    query: str
    raw: bytes
    user_agent: str | None
    content_type: str | None

    def json(self) -> Any:
        """The parsed body, or None when it is empty or not JSON."""
        try:
            return json.loads(self.raw.decode("utf-8")) if self.raw else None
        except (UnicodeDecodeError, ValueError):
            return None


class LoopSimulator:
    """A Loop API server on a background thread that records what it receives.

    Use it as a context manager, or call `start()` and `stop()`. Bind port 0 to get a
    free port; `base_url` tells which. The recorded state is read through the
    `received`, `contacts`, `events` and `deleted` properties (snapshots, thread-safe).
    """

    def __init__(self, token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        if not token:
            raise ValueError("the simulator needs a non-empty token")
        self.token = token
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._faults: list[_Fault] = []
        self._received: list[Received] = []
        self._contacts: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._deleted: list[str] = []
        self._next_index = 0

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> LoopSimulator:
        """Bind the port and serve on a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping = threading.Event()
        server_class = _Server6 if ":" in self.host else _Server
        self._server = server_class((self.host, self.port), self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name=f"loop-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("simulator: listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests, close every socket. Returns promptly."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            # Wakes handler threads blocked reading an idle keep-alive connection.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=1)
        self._server = None
        self._thread = None
        logger.debug("simulator: stopped")

    def __enter__(self) -> LoopSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The URL to give loopsync as `loop.base_url`, e.g. `http://127.0.0.1:54321`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- what was received --------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every API request, in the order they were recorded."""
        with self._lock:
            return list(self._received)

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        """The current contact per foreignId, with the values exactly as received."""
        with self._lock:
            return {key: dict(value) for key, value in self._contacts.items()}

    @property
    def events(self) -> list[dict[str, Any]]:
        """Accepted events in order: `event`, `foreignId` and `contactId` each."""
        with self._lock:
            return [dict(event) for event in self._events]

    @property
    def deleted(self) -> list[str]:
        """The foreignIds of deleted contacts, in order."""
        with self._lock:
            return list(self._deleted)

    def events_for(self, foreign_id: str) -> list[dict[str, Any]]:
        """The accepted events of one contact, in order."""
        return [event for event in self.events if event["foreignId"] == foreign_id]

    def event_kinds(self) -> list[tuple[str, str]]:
        """`(foreignId, event)` for every accepted event, in order."""
        return [(event["foreignId"], event["event"]) for event in self.events]

    def wait_for_received(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` requests are recorded (since `clear()`); False on timeout.

        For tests whose client runs on another thread or process: no polling, no sleeps.
        """
        with self._recorded:
            return self._recorded.wait_for(lambda: len(self._received) >= count, timeout)

    def state(self) -> dict[str, Any]:
        """Contacts, events and deletions as one JSON-ready snapshot."""
        with self._lock:
            return {
                "contacts": {key: dict(value) for key, value in self._contacts.items()},
                "events": [dict(event) for event in self._events],
                "deleted": list(self._deleted),
            }

    def clear(self) -> None:
        """Forget everything received and stored, and any pending faults."""
        with self._lock:
            self._received.clear()
            self._contacts.clear()
            self._events.clear()
            self._deleted.clear()
            self._faults.clear()

    # -- fault injection ----------------------------------------------------------

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault applies to at least one request")
        with self._lock:
            self._faults.append(fault)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        body: Any = None,
        retry_after: float | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `n` requests with `status` and `body` without processing them.

        `body` is sent as JSON, or as plain text when it is a str; `retry_after` adds a
        `Retry-After` header (seconds); `path` limits the fault to paths ending with it.
        """
        if body is None:
            body = {"status": "Failure", "message": f"simulated HTTP {status}"}
        self._add_fault(_Fault("fail", n, path, status=status, body=body, retry_after=retry_after))

    def reply_next(
        self,
        n: int = 1,
        status: int = 200,
        body: Any = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `n` requests with this reply (default: 200 with a Failure status)."""
        if body is None:
            body = {"status": "Failure", "message": "simulated failure"}
        self._add_fault(_Fault("reply", n, path, status=status, body=body))

    def delay_next(self, n: int, seconds: float, path: str | None = None) -> None:
        """Wait `seconds` before processing each of the next `n` requests normally."""
        self._add_fault(_Fault("delay", n, path, seconds=seconds))

    def drop_after_processing_next(self, n: int = 1, path: str | None = None) -> None:
        """Process and record the next `n` requests, then close the connection unanswered."""
        self._add_fault(_Fault("drop", n, path))

    def hang_next(self, n: int = 1, path: str | None = None) -> None:
        """Read the next `n` requests and never answer them (until the simulator stops)."""
        self._add_fault(_Fault("hang", n, path))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- request handling (called from handler threads) ---------------------------

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _record(
        self,
        request: _Request,
        http_status: int | None,
        *,
        processed: bool,
        fault: FaultKind | None,
    ) -> None:
        with self._lock:
            self._record_locked(request, http_status, processed=processed, fault=fault)

    def _record_locked(
        self,
        request: _Request,
        http_status: int | None,
        *,
        processed: bool,
        fault: FaultKind | None,
    ) -> None:
        self._received.append(
            Received(
                index=self._next_index,
                method=request.method,
                path=request.path,
                body=request.json(),
                http_status=http_status,
                processed=processed,
                fault=fault,
                raw_body=request.raw,
                user_agent=request.user_agent,
                content_type=request.content_type,
            )
        )
        self._next_index += 1
        self._recorded.notify_all()
        logger.info(
            "simulator: %s %s -> %s%s",
            request.method,
            request.path,
            "no reply" if http_status is None else http_status,
            f" ({fault})" if fault else "",
        )

    def _process(self, request: _Request, *, fault: FaultKind | None) -> _Reply:
        """Apply the request to the stored state and record it, atomically."""
        with self._lock:
            reply = self._apply(request)
            status = None if fault == "drop" else reply.status
            self._record_locked(request, status, processed=True, fault=fault)
        return reply

    def _token_ok(self, query: str) -> bool:
        given = parse_qs(query).get("authToken", [])
        return len(given) == 1 and hmac.compare_digest(
            given[0].encode("utf-8"), self.token.encode("utf-8")
        )

    def _apply(self, request: _Request) -> _Reply:
        allowed = _ALLOWED_METHODS.get(request.path)
        if allowed is None:
            # Like the web server in front of Loop, not like Loop's API: plain text.
            return _Reply(404, f"Not Found: {request.path}\n")
        if request.method not in allowed:
            reply = _failure(405, f"{request.method} is not allowed on {request.path}")
            return _Reply(reply.status, reply.body, (("Allow", ", ".join(allowed)),))
        if not self._token_ok(request.query):
            return _failure(401, "invalid authToken")
        try:
            body = json.loads(request.raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _failure(400, "request body is not valid UTF-8 JSON")
        if not isinstance(body, dict):
            return _failure(400, "request body must be a JSON object")
        if request.path == EVENT_PATH:
            return self._apply_event(body)
        if request.method == "DELETE":
            return self._apply_delete(body)
        return self._apply_upsert(body)

    def _apply_upsert(self, contact: dict[str, Any]) -> _Reply:
        problem = _contact_problem(contact)
        if problem is not None:
            return _failure(400, problem)
        foreign_id: str = contact["foreignId"]
        existing = self._contacts.get(foreign_id)
        if existing is None and not contact.get("room"):
            return _failure(400, "room is required to insert a contact")
        self._contacts[foreign_id] = {**(existing or {}), **contact}
        return _Reply(200, {"status": "Success", "id": contact_id_for(foreign_id)})

    def _find(self, *, foreign_id: Any = None, contact_id: Any = None) -> str | None:
        if isinstance(foreign_id, str) and foreign_id in self._contacts:
            return foreign_id
        if isinstance(contact_id, str):
            for known in self._contacts:
                if contact_id_for(known) == contact_id:
                    return known
        return None

    def _apply_delete(self, body: dict[str, Any]) -> _Reply:
        unknown = sorted(set(body) - DELETE_FIELDS)
        if unknown:
            return _failure(400, f"unknown field {unknown[0]!r}")
        if len(body) != 1:
            return _failure(400, "give either foreignId or id")
        foreign_id = self._find(foreign_id=body.get("foreignId"), contact_id=body.get("id"))
        if foreign_id is None:
            return _failure(404, "contact not found")
        del self._contacts[foreign_id]
        self._deleted.append(foreign_id)
        return _Reply(200, {"status": "Success", "id": contact_id_for(foreign_id)})

    def _apply_event(self, body: dict[str, Any]) -> _Reply:
        unknown = sorted(set(body) - EVENT_FIELDS)
        if unknown:
            return _failure(400, f"unknown field {unknown[0]!r}")
        event = body.get("event")
        if event not in EVENT_NAMES:
            return _failure(400, "event must be one of: " + ", ".join(EVENT_NAMES))
        references = [name for name in ("foreignId", "contactId", "contact") if name in body]
        if len(references) != 1:
            return _failure(400, "give exactly one of foreignId, contactId or contact")
        if "contact" in body:
            contact = body["contact"]
            if not isinstance(contact, dict):
                return _failure(400, "contact must be a JSON object")
            reply = self._apply_upsert(contact)
            if reply.status != 200:
                return reply
            foreign_id: str = contact["foreignId"]
        else:
            found = self._find(foreign_id=body.get("foreignId"), contact_id=body.get("contactId"))
            if found is None:
                return _failure(404, "contact not found")
            foreign_id = found
        self._events.append(
            {"event": event, "foreignId": foreign_id, "contactId": contact_id_for(foreign_id)}
        )
        return _Reply(200, {"status": "Success"})


def serve_forever(host: str, port: int, token: str) -> None:
    """Run a simulator in the foreground until Ctrl-C or SIGTERM (`loopsync simulate-loop`)."""
    stopped = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stopped.set()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    simulator = LoopSimulator(token, host, port).start()
    try:
        print(f"Loop simulator listening on {simulator.base_url}", flush=True)
        # A bounded wait keeps the main thread responsive to Ctrl-C on every platform.
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
