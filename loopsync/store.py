"""The state store: stay state, the cursor, the outbox and run history (SQLAlchemy Core).

SQLite by default (WAL, synchronous writes, a busy timeout); PostgreSQL or MariaDB
for a central deployment. The schema carries a version and is migrated on open.
A plan and its actions are written in one transaction, so a crash keeps either the
old state or the new one, never half of each.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from loopsync.errors import LockHeldError, StateStoreError
from loopsync.model import Action, ActionKind, Mark, Plan, Status, StayState

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
_CHUNK = 500


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Stored as naive UTC on every backend; read back as aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))  # keep microseconds
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: sa.Dialect,  # noqa: ARG002
    ) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

meta_table = sa.Table(
    "loopsync_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

stays = sa.Table(
    "loopsync_stays",
    metadata,
    sa.Column("reservation_id", sa.String(191), primary_key=True),
    sa.Column("location_key", sa.String(191), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("room", sa.String(64)),
    sa.Column("room_ready", sa.Boolean, nullable=False),
    sa.Column("arrival", UtcDateTime, nullable=False),
    sa.Column("departure", UtcDateTime, nullable=False),
    sa.Column("arrival_date", sa.Date, nullable=False),
    sa.Column("payload_hash", sa.String(64)),
    sa.Column("checkin", sa.String(16)),
    sa.Column("checkout", sa.String(16)),
    sa.Column("roomready_room", sa.String(64)),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
)
sa.Index("ix_loopsync_stays_departure", stays.c.departure)

outbox = sa.Table(
    "loopsync_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reservation_id", sa.String(191), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # guest details: cleared once delivered
    sa.Column("room", sa.String(64)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("not_before", UtcDateTime),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # Tries Loop refused (4xx, status != Success): only these lead to the dead letter.
    sa.Column("refusals", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("reply", sa.Text),
    sa.Column("finished_at", UtcDateTime),
)
sa.Index("ix_loopsync_outbox_state", outbox.c.state, outbox.c.id)
sa.Index("ix_loopsync_outbox_reservation", outbox.c.reservation_id, outbox.c.id)

runs = sa.Table(
    "loopsync_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),  # JSON counts, no guest details
    sa.Column("error", sa.Text),
)


class OutboxState:
    """The life of an outbox entry."""

    PENDING = "pending"
    SENDING = "sending"  # an event on the wire: if loopsync dies now, its fate is unknown
    DONE = "done"
    DEAD = "dead"
    UNCERTAIN = "uncertain"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One queued call to Loop, as stored."""

    id: int
    reservation_id: str
    kind: ActionKind
    body: dict[str, Any]
    room: str | None
    state: str
    created_at: datetime
    not_before: datetime | None
    next_attempt_at: datetime | None
    attempts: int
    refusals: int
    last_error: str | None
    reply: str | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One finished cycle, as `loopsync status` shows it."""

    kind: str
    started_at: datetime
    finished_at: datetime
    ok: bool
    summary: dict[str, Any]
    error: str | None


def _connect_args(url: sa.URL) -> dict[str, Any]:
    """Timeouts so that a state-store server that stops answering never hangs loopsync."""
    driver = url.get_driver_name()
    if driver in ("psycopg", "psycopg2"):
        wanted: dict[str, Any] = {
            "connect_timeout": 15,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
    elif driver == "pymysql":
        wanted = {"connect_timeout": 15, "read_timeout": 120, "write_timeout": 120}
    else:
        return {}
    return {key: value for key, value in wanted.items() if key not in url.query}


def _describe_url(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


class StateStore:
    """loopsync's own database: open with `StateStore.open(url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._where = _describe_url(engine.url)
        self.exists = True

    @classmethod
    def open(cls, url: str, *, read_only: bool = False) -> StateStore:
        """Connect, create or migrate the schema; raise `StateStoreError` with what to do.

        `read_only` (for dry runs) writes nothing: a store that does not exist yet is
        replaced by an empty one in memory, and an existing one is not migrated.
        """
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise StateStoreError(
                f"state.url {url!r} is not a database URL; e.g. sqlite:////var/lib/loopsync/state.db"
            ) from None
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "connect_args": _connect_args(parsed)}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if read_only:
                if not database or database == ":memory:" or not Path(database).exists():
                    return cls._empty()
                parsed = sa.make_url(f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true")
                database = ""
            if database and database != ":memory:":
                folder = Path(database).expanduser().resolve().parent
                if not folder.is_dir():
                    raise StateStoreError(
                        f"cannot open the state store {database}: folder {folder} does not exist; "
                        "create it (systemd's StateDirectory does) or set state.url"
                    )
            kwargs = {"connect_args": {"timeout": 15}}
        try:
            engine = sa.create_engine(parsed, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise StateStoreError(f"cannot use state.url {_describe_url(parsed)}: {exc}") from None
        if parsed.get_backend_name() == "sqlite" and not read_only:
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if not read_only:
            store.migrate()
            return store
        try:
            found = sa.inspect(engine).has_table(meta_table.name)
        except SQLAlchemyError as exc:
            first_line = str(getattr(exc, "orig", exc)).splitlines()[0]
            raise StateStoreError(
                f"cannot open the state store {_describe_url(parsed)}: {first_line}; "
                "check state.url and that the database server is running"
            ) from None
        if not found:
            engine.dispose()
            return cls._empty()
        return store

    @classmethod
    def _empty(cls) -> StateStore:
        """A store in memory standing in for one that does not exist yet (`exists` False)."""
        store = cls(sa.create_engine("sqlite://"))
        with store.engine.begin() as conn:
            metadata.create_all(conn)
        store.exists = False
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            first_line = str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0]
            raise StateStoreError(
                f"the state store {self._where} failed: {first_line}; check the disk and state.url"
            ) from exc

    # --- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to `SCHEMA_VERSION`; refuse a store written by a newer loopsync."""
        with self._begin() as conn:
            metadata.create_all(conn, tables=[meta_table])
            found = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).scalar()
            version = int(found) if found is not None else 0
            if version > SCHEMA_VERSION:
                raise StateStoreError(
                    f"the state store {self._where} was written by a newer loopsync "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade loopsync"
                )
            if version < 1:
                metadata.create_all(conn)
                self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))
                log.info("state store created at %s (schema %d)", self._where, SCHEMA_VERSION)
                return
            if version < 2:
                conn.execute(
                    sa.text(
                        "ALTER TABLE loopsync_outbox ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0"
                    )
                )
            if version < SCHEMA_VERSION:
                self._set_meta(conn, "schema_version", str(SCHEMA_VERSION))
                log.info(
                    "state store %s migrated from schema %d to %d",
                    self._where,
                    version,
                    SCHEMA_VERSION,
                )

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        updated = conn.execute(
            sa.update(meta_table).where(meta_table.c.key == key).values(value=value)
        ).rowcount
        if not updated:
            conn.execute(sa.insert(meta_table).values(key=key, value=value))

    def _get_meta(self, key: str) -> str | None:
        with self._begin() as conn:
            value = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == key)
            ).scalar()
        return None if value is None else str(value)

    # --- single-instance lock -------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, wait: float = 0.0, name: str = "work", hint: str = "") -> Iterator[None]:
        """Hold the store exclusively; after `wait` seconds raise `LockHeldError`.

        Two names are used: "work" around every cycle and delivery (so two processes
        never deliver in parallel), and "daemon" for a daemon's whole life (so a
        second daemon refuses to start, while `--sync-now` can still take turns).
        """
        backend = self.engine.url.get_backend_name()
        deadline = time.monotonic() + wait
        if backend == "sqlite":
            with self._file_lock(deadline, name, hint):
                yield
        elif backend in ("postgresql", "mysql", "mariadb"):
            with self._server_lock(backend, deadline, name, hint):
                yield
        else:
            raise StateStoreError(
                f"state.url {self._where}: use SQLite, PostgreSQL or MariaDB/MySQL "
                "for the state store"
            )

    def _held_message(self, holder: str | None, hint: str) -> str:
        who = f" ({holder})" if holder else ""
        extra = f" ({hint})" if hint else ""
        return (
            f"another loopsync process{who} is using the state store {self._where}; "
            f"wait for it to finish, or stop the loopsync service before running this{extra}"
        )

    @contextlib.contextmanager
    def _file_lock(self, deadline: float, name: str, hint: str) -> Iterator[None]:
        database = self.engine.url.database or ""
        if not database or database == ":memory:":
            yield
            return
        path = Path(database).expanduser().resolve().with_suffix(f".{name}.lock")
        handle = path.open("a+")
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        raise LockHeldError(
                            self._held_message(handle.read().strip(), hint)
                        ) from None
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
            handle.flush()
            yield
        finally:
            handle.close()  # closing releases the flock

    @contextlib.contextmanager
    def _server_lock(self, backend: str, deadline: float, name: str, hint: str) -> Iterator[None]:
        # A session-level lock on a connection of its own: the server releases it if we die.
        conn = self.engine.connect()
        key = f"loopsync:{name}:" + (self.engine.url.database or "")
        if backend == "postgresql":
            take, release = (
                "SELECT pg_try_advisory_lock(hashtext(:k))",
                "SELECT pg_advisory_unlock(hashtext(:k))",
            )
        else:
            key = key[:64]
            take, release = "SELECT GET_LOCK(:k, 0)", "SELECT RELEASE_LOCK(:k)"
        held = False
        try:
            while not held:
                held = bool(conn.execute(sa.text(take), {"k": key}).scalar())
                conn.commit()
                if not held:
                    if time.monotonic() >= deadline:
                        holder = self._get_meta(f"lock_holder_{name}")
                        raise LockHeldError(self._held_message(holder, hint))
                    time.sleep(0.2)
            with self._begin() as meta_conn:
                holder = f"pid {os.getpid()} on {socket.gethostname()}"
                self._set_meta(meta_conn, f"lock_holder_{name}", holder)
            yield
        finally:
            with contextlib.suppress(SQLAlchemyError):
                if held:
                    conn.execute(sa.text(release), {"k": key})
                    conn.commit()
            # Never hand a lock-holding session back to the pool.
            conn.invalidate()
            conn.close()

    # --- stays ----------------------------------------------------------------------------

    def load_states(self) -> dict[str, StayState]:
        """Every stay loopsync remembers (no guest details: this is small)."""
        with self._begin() as conn:
            rows = conn.execute(sa.select(stays)).mappings().all()
        return {row["reservation_id"]: _state_from_row(row) for row in rows}

    def get_state(self, reservation_id: str) -> StayState | None:
        """One stay's latest state, for rule R9 at delivery time."""
        with self._begin() as conn:
            row = (
                conn.execute(sa.select(stays).where(stays.c.reservation_id == reservation_id))
                .mappings()
                .first()
            )
        return None if row is None else _state_from_row(row)

    def cursor(self) -> str | None:
        """The incremental cursor, encoded, as the PMS returned it."""
        return self._get_meta("cursor")

    def known_locations(self) -> frozenset[str]:
        """Properties that had their go-live baseline (rule R6)."""
        raw = self._get_meta("known_locations")
        return frozenset(json.loads(raw)) if raw else frozenset()

    def commit_plan(self, plan: Plan, *, now: datetime, cursor: str | None) -> int:
        """Write a cycle's new states, actions, cursor and locations in one transaction."""
        with self._begin() as conn:
            _replace_states(conn, plan.states)
            queued = _insert_actions(conn, plan.actions, now)
            if cursor is not None:
                self._set_meta(conn, "cursor", cursor)
            if plan.new_locations:
                known = set(self._known_locations_in(conn)) | plan.new_locations
                self._set_meta(conn, "known_locations", json.dumps(sorted(known)))
        return queued

    def _known_locations_in(self, conn: Connection) -> list[str]:
        raw = conn.execute(
            sa.select(meta_table.c.value).where(meta_table.c.key == "known_locations")
        ).scalar()
        return list(json.loads(raw)) if raw else []

    def enqueue(self, actions: Sequence[Action], now: datetime) -> int:
        """Queue actions that change no stay state (e.g. `resync`)."""
        with self._begin() as conn:
            return _insert_actions(conn, actions, now)

    # --- outbox ---------------------------------------------------------------------------

    def pending(self) -> list[OutboxEntry]:
        """Every pending entry, oldest first (delivery groups them by reservation)."""
        with self._begin() as conn:
            rows = (
                conn.execute(
                    sa.select(outbox)
                    .where(outbox.c.state == OutboxState.PENDING)
                    .order_by(outbox.c.id)
                )
                .mappings()
                .all()
            )
        return [_entry_from_row(row) for row in rows]

    def entries(self, states: Iterable[str] | None = None, limit: int = 200) -> list[OutboxEntry]:
        """Outbox entries in the given states (all when None), newest first."""
        query = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if states is not None:
            query = query.where(outbox.c.state.in_(list(states)))
        with self._begin() as conn:
            return [_entry_from_row(row) for row in conn.execute(query).mappings().all()]

    def _finish(self, entry_id: int, state: str, now: datetime, **values: Any) -> None:
        with self._begin() as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == entry_id)
                .values(state=state, finished_at=now, next_attempt_at=None, **values)
            )

    def mark_sending(self, entry_id: int) -> None:
        """An event is about to go on the wire (committed first, see `park_interrupted`)."""
        with self._begin() as conn:
            conn.execute(
                sa.update(outbox).where(outbox.c.id == entry_id).values(state=OutboxState.SENDING)
            )

    def park_interrupted(self, now: datetime) -> list[OutboxEntry]:
        """Events loopsync was sending when it stopped: parked as uncertain, never resent."""
        with self._begin() as conn:
            rows = (
                conn.execute(sa.select(outbox).where(outbox.c.state == OutboxState.SENDING))
                .mappings()
                .all()
            )
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.state == OutboxState.SENDING)
                .values(
                    state=OutboxState.UNCERTAIN,
                    attempts=outbox.c.attempts + 1,
                    finished_at=now,
                    last_error="loopsync stopped while sending it: it may have reached Loop",
                )
            )
        return [_entry_from_row(row) for row in rows]

    def mark_done(self, entry_id: int, now: datetime, attempts: int, reply: str | None) -> None:
        """Loop said Success: the entry is done and its guest details are erased."""
        self._finish(entry_id, OutboxState.DONE, now, body="{}", attempts=attempts, reply=reply)

    def mark_dropped(self, entry_id: int, now: datetime, reason: str) -> None:
        """R9 (or an operator) dropped the entry; its guest details are erased."""
        self._finish(entry_id, OutboxState.DROPPED, now, body="{}", last_error=reason)

    def mark_dead(
        self, entry_id: int, now: datetime, attempts: int, error: str, reply: str | None
    ) -> None:
        """Loop refused it for good; kept (with the reply) for the operator."""
        self._finish(
            entry_id, OutboxState.DEAD, now, attempts=attempts, last_error=error, reply=reply
        )

    def mark_uncertain(self, entry_id: int, now: datetime, attempts: int, error: str) -> None:
        """An event that may or may not have reached Loop: parked, never resent by itself."""
        self._finish(entry_id, OutboxState.UNCERTAIN, now, attempts=attempts, last_error=error)

    def schedule_retry(
        self,
        entry_id: int,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str,
        reply: str | None,
        refusals: int = 0,
    ) -> None:
        """A failed try: count it, and say when to try again (None: at the next run)."""
        with self._begin() as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == entry_id)
                .values(
                    state=OutboxState.PENDING,
                    attempts=attempts,
                    refusals=refusals,
                    next_attempt_at=next_attempt_at,
                    last_error=error,
                    reply=reply,
                )
            )

    def requeue(self, entry_ids: Iterable[int] | None, from_states: Iterable[str]) -> int:
        """Put dead or uncertain entries back in the queue; returns how many."""
        query = (
            sa.update(outbox)
            .where(outbox.c.state.in_(list(from_states)))
            .where(outbox.c.body != "{}")
            .values(
                state=OutboxState.PENDING,
                next_attempt_at=None,
                attempts=0,
                refusals=0,
                finished_at=None,
            )
        )
        if entry_ids is not None:
            query = query.where(outbox.c.id.in_(list(entry_ids)))
        with self._begin() as conn:
            return int(conn.execute(query).rowcount)

    def drop(
        self, entry_ids: Iterable[int] | None, from_states: Iterable[str], now: datetime
    ) -> int:
        """Drop entries by hand (erasing their guest details); returns how many."""
        query = (
            sa.update(outbox)
            .where(outbox.c.state.in_(list(from_states)))
            .values(
                state=OutboxState.DROPPED,
                body="{}",
                finished_at=now,
                last_error="dropped by operator",
            )
        )
        if entry_ids is not None:
            query = query.where(outbox.c.id.in_(list(entry_ids)))
        with self._begin() as conn:
            return int(conn.execute(query).rowcount)

    def outbox_counts(self) -> dict[str, int]:
        """How many entries are in each state."""
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
            ).all()
        return {str(state): int(count) for state, count in rows}

    def oldest_pending(self) -> datetime | None:
        """When the oldest pending entry was queued."""
        with self._begin() as conn:
            return conn.execute(
                sa.select(sa.func.min(outbox.c.created_at)).where(
                    outbox.c.state == OutboxState.PENDING
                )
            ).scalar()

    def purge(self, now: datetime, retention_days: int) -> tuple[int, int]:
        """Forget finished entries and departed stays older than `retention_days` (R10)."""
        cutoff = now - timedelta(days=retention_days)
        with self._begin() as conn:
            entries = conn.execute(
                sa.delete(outbox)
                .where(outbox.c.state != OutboxState.PENDING)
                .where(outbox.c.finished_at < cutoff)
            ).rowcount
            forgotten = conn.execute(sa.delete(stays).where(stays.c.departure < cutoff)).rowcount
            old_runs = conn.execute(sa.delete(runs).where(runs.c.finished_at < cutoff)).rowcount
        if entries or forgotten or old_runs:
            log.info("purged %d outbox entries and %d departed stays", entries, forgotten)
        return int(entries), int(forgotten)

    # --- runs -----------------------------------------------------------------------------

    def record_run(
        self,
        kind: str,
        started_at: datetime,
        finished_at: datetime,
        *,
        ok: bool,
        summary: dict[str, Any],
        error: str | None = None,
    ) -> None:
        """Keep one line of history per cycle, for `loopsync status`."""
        with self._begin() as conn:
            conn.execute(
                sa.insert(runs).values(
                    kind=kind,
                    started_at=started_at,
                    finished_at=finished_at,
                    ok=ok,
                    summary=json.dumps(summary, sort_keys=True),
                    error=error,
                )
            )

    def last_runs(self, limit: int = 10) -> list[RunRecord]:
        """The most recent runs, newest first."""
        with self._begin() as conn:
            rows = conn.execute(sa.select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()
            return [
                RunRecord(
                    kind=row["kind"],
                    started_at=row["started_at"],
                    finished_at=row["finished_at"],
                    ok=bool(row["ok"]),
                    summary=json.loads(row["summary"]),
                    error=row["error"],
                )
                for row in rows
            ]


def _state_from_row(row: Any) -> StayState:
    arrival_date = row["arrival_date"]
    if isinstance(arrival_date, datetime):
        arrival_date = arrival_date.date()
    return StayState(
        reservation_id=row["reservation_id"],
        location_key=row["location_key"],
        status=Status(row["status"]),
        room=row["room"],
        room_ready=bool(row["room_ready"]),
        arrival=row["arrival"],
        departure=row["departure"],
        arrival_date=arrival_date
        if isinstance(arrival_date, date)
        else date.fromisoformat(arrival_date),
        payload_hash=row["payload_hash"],
        checkin=Mark(row["checkin"]) if row["checkin"] else None,
        checkout=Mark(row["checkout"]) if row["checkout"] else None,
        roomready_room=row["roomready_room"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
    )


def _state_to_row(state: StayState) -> dict[str, Any]:
    return {
        "reservation_id": state.reservation_id,
        "location_key": state.location_key,
        "status": state.status.value,
        "room": state.room,
        "room_ready": state.room_ready,
        "arrival": state.arrival,
        "departure": state.departure,
        "arrival_date": state.arrival_date,
        "payload_hash": state.payload_hash,
        "checkin": state.checkin.value if state.checkin else None,
        "checkout": state.checkout.value if state.checkout else None,
        "roomready_room": state.roomready_room,
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
    }


def _replace_states(conn: Connection, states: Sequence[StayState]) -> None:
    for start in range(0, len(states), _CHUNK):
        chunk = states[start : start + _CHUNK]
        conn.execute(
            sa.delete(stays).where(stays.c.reservation_id.in_([s.reservation_id for s in chunk]))
        )
        conn.execute(sa.insert(stays), [_state_to_row(state) for state in chunk])


def _insert_actions(conn: Connection, actions: Sequence[Action], now: datetime) -> int:
    # One executemany: rows get ids in list order, which is the delivery order.
    if actions:
        conn.execute(
            sa.insert(outbox),
            [
                {
                    "reservation_id": action.reservation_id,
                    "kind": action.kind.value,
                    "body": json.dumps(action.body, ensure_ascii=False, sort_keys=True),
                    "room": action.room,
                    "state": OutboxState.PENDING,
                    "created_at": now,
                    "not_before": action.not_before,
                    "attempts": 0,
                }
                for action in actions
            ],
        )
    return len(actions)


def _entry_from_row(row: Any) -> OutboxEntry:
    return OutboxEntry(
        id=int(row["id"]),
        reservation_id=row["reservation_id"],
        kind=ActionKind(row["kind"]),
        body=json.loads(row["body"]),
        room=row["room"],
        state=row["state"],
        created_at=row["created_at"],
        not_before=row["not_before"],
        next_attempt_at=row["next_attempt_at"],
        attempts=int(row["attempts"]),
        refusals=int(row["refusals"]),
        last_error=row["last_error"],
        reply=row["reply"],
    )
