"""Reading reservations from the PMS database: read-only, bounded in time, streamed.

`PmsSource` runs the operator's SQL (`pms.query_file`) against any SQLAlchemy URL or
raw ODBC connection string (DESIGN §3)::

    source = PmsSource(settings.pms, config.pms_password)
    since = source.since_value(decode_cursor(stored)) if incremental else None
    with source.read(since) as result:
        check(result.columns)              # lower-cased names, before any row is used
        for row in result:                 # dicts keyed by lower-cased column name
            ...
        newest = result.max_cursor         # largest pms.cursor_column value yielded
    stored = encode_cursor(newest)
    source.dispose()                       # at shutdown

Rows stream (`yield_per=pms.fetch_size`), so `result` must be consumed inside the
`with` block. The cursor is kept in the PMS's own terms: a naive local time stays
naive, a `rowversion` stays bytes, and SQLite's text timestamps stay text (compare
them as ISO text in the query: `WHERE modified_at >= :since`). With
`pms.change_tracking_table` (SQL Server Change Tracking) the cursor is instead the
database's change tracking version, read at the start of the read's transaction.

Per engine (details in `loopsync.pms_dialects`):

- read-only: SQLite opens the file with `mode=ro`; PostgreSQL, MariaDB/MySQL and
  Oracle run read-only transactions. SQL Server has no read-only session, so its
  login must be granted SELECT only; loopsync itself only ever runs the query.
- statement timeout: server-side on PostgreSQL (per FETCH of the streaming cursor),
  MariaDB/MySQL and Oracle; the ODBC query timeout on SQL Server; on SQLite a
  progress handler bounds the whole read, time spent by the caller included.
- streaming: SQLite, psycopg (server-side cursor), PyMySQL (unbuffered cursor) and
  psqlODBC (`UseDeclareFetch`) hold one batch at a time. MariaDB Connector/ODBC 3.1
  buffers the whole result in the driver: prefer `mysql+pymysql` for large tables.

Every failure is raised as a one-line `PmsError` without the password in it. A SQL
error quotes the driver's first line, which may quote a value from the PMS. A
connection that died (server restart, network cut) fails that read; the pool then
replaces it, so the next read reconnects.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, ExceptionContext, make_url

from loopsync import pms_dialects
from loopsync.config import PmsSettings
from loopsync.errors import PmsError, QueryShapeError
from loopsync.mapping import check_columns
from loopsync.pms_dialects import Failure
from loopsync.redact import scrub

__all__ = [
    "LOWEST_CURSOR",
    "PmsResult",
    "PmsSource",
    "build_url",
    "decode_cursor",
    "describe_source",
    "encode_cursor",
]

log = logging.getLogger(__name__)

ROWVERSION_SIZE = 8

# `:since` with no stored cursor: the lowest value of each cursor type, so that an
# incremental query also works as a full read. (Change tracking binds -1 instead.)
LOWEST_CURSOR: dict[str, object] = {
    "datetime": datetime(1900, 1, 1),
    "rowversion": b"\x00" * ROWVERSION_SIZE,
    "integer": -(2**63),
}

_SECRET_QUERY_KEYS = frozenset({"password", "pwd", "passwd"})
_CUSTOM_PREFIX = "custom_"
_PROGRESS_STEPS = 10_000  # SQLite VM steps between two looks at the clock


# --- cursors ----------------------------------------------------------------------


def encode_cursor(value: object) -> str:
    """Serialise a cursor for the state store as tagged JSON, losslessly.

    Handles naive and aware datetimes (a `ZoneInfo` keeps its name), dates, ints,
    Decimals, floats, bytes and text: `{"t":"dt","v":"2026-12-03T14:00:00.123456"}`.
    """
    encoded: dict[str, object]
    if isinstance(value, bool):
        raise TypeError("a PMS cursor cannot be a boolean")
    if isinstance(value, datetime):
        encoded = {"t": "dt", "v": value.isoformat()}
        if isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key:
            encoded["z"] = value.tzinfo.key
        if value.fold:
            encoded["f"] = 1
    elif isinstance(value, date):
        encoded = {"t": "date", "v": value.isoformat()}
    elif isinstance(value, int):
        encoded = {"t": "int", "v": str(value)}
    elif isinstance(value, Decimal):
        encoded = {"t": "dec", "v": str(value)}
    elif isinstance(value, float):
        encoded = {"t": "float", "v": repr(value)}
    elif isinstance(value, bytes | bytearray | memoryview):
        encoded = {"t": "bytes", "v": bytes(value).hex()}
    elif isinstance(value, str):
        encoded = {"t": "str", "v": value}
    else:
        raise TypeError(f"cannot store a PMS cursor of type {type(value).__name__}")
    return json.dumps(encoded, separators=(",", ":"))


def decode_cursor(text: str) -> object:
    """The cursor `encode_cursor` stored; raises ValueError for anything else."""
    try:
        data = json.loads(text)
        tag, raw = data["t"], data["v"]
        if tag == "dt":
            moment = datetime.fromisoformat(raw)
            if "z" in data:
                moment = _in_zone(moment, ZoneInfo(data["z"]))
            if data.get("f"):
                moment = moment.replace(fold=1)
            return moment
        decoders: dict[str, Callable[[str], object]] = {
            "date": date.fromisoformat,
            "int": int,
            "dec": Decimal,
            "float": float,
            "bytes": bytes.fromhex,
            "str": str,
        }
        return decoders[tag](raw)
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"not a stored PMS cursor: {text[:80]!r} ({exc})") from None


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """The same instant and wall time in `zone`, with `fold` chosen so the offset matches."""
    local = moment.replace(tzinfo=zone)
    if local.utcoffset() != moment.utcoffset():
        local = local.replace(fold=1)
    return local


def _shift_back(moment: datetime, overlap: timedelta) -> datetime:
    try:
        return moment - overlap
    except OverflowError:
        return datetime.min.replace(tzinfo=moment.tzinfo)


_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?P<seconds>:\d{2}(?P<fraction>\.\d+)?)?")


def _shift_iso_text(text: str, overlap: timedelta) -> str | None:
    """An ISO timestamp written as text, moved back by `overlap`, in the same style.

    The style (separator, precision, `Z`) is kept so that the bound compares as text
    against the PMS's own values; precision is truncated, which only widens the window.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    shifted = _shift_back(moment, overlap)
    match = _ISO_TIME.match(text)
    if match is None:  # a date alone
        return shifted.date().isoformat()
    if match["seconds"] is None:
        timespec = "minutes"
    elif match["fraction"] is None:
        timespec = "seconds"
    else:
        timespec = "milliseconds" if len(match["fraction"]) <= 4 else "microseconds"
    rendered = shifted.isoformat(sep=text[10], timespec=timespec)
    if text.endswith("Z") and rendered.endswith("+00:00"):
        rendered = rendered[: -len("+00:00")] + "Z"
    return rendered


# --- URLs and descriptions --------------------------------------------------------


def _parse_url(text: str) -> URL:
    try:
        return make_url(text)
    except sa.exc.ArgumentError:
        raise PmsError(
            "pms.url is not a database URL; write it as e.g. "
            "mssql+pyodbc://user@host/db?driver=ODBC+Driver+18+for+SQL+Server"
        ) from None


def _odbc_connect_of(url: URL) -> str | None:
    value = url.query.get("odbc_connect")
    return value if isinstance(value, str) else None


def describe_source(pms: PmsSettings) -> str:
    """Where the PMS is, for messages and logs: the URL or ODBC string without secrets."""
    if pms.odbc_connect:
        return pms_dialects.redact_odbc(pms.odbc_connect)
    if not pms.url:
        return "(no pms.url)"
    try:
        url = make_url(pms.url)
    except sa.exc.ArgumentError:
        return "(pms.url, not a valid URL)"
    odbc = _odbc_connect_of(url)
    if odbc is not None:
        return f"{url.drivername} {pms_dialects.redact_odbc(odbc)}"
    secret_keys = [key for key in url.query if key.lower() in _SECRET_QUERY_KEYS]
    return url.difference_update_query(secret_keys).render_as_string(hide_password=True)


def _sqlite_read_only(url: URL) -> URL:
    """Open a SQLite file through a `file:` URI with `mode=ro`: never written, never created."""
    database = url.database
    query = dict(url.query)
    if not database or database == ":memory:" or query.get("mode") == "memory":
        return url
    if str(query.get("uri", "")).lower() in ("true", "1", "yes"):
        return url.update_query_dict({"mode": "ro"})
    path = quote(os.path.abspath(database))
    return url.set(database=f"file:{path}").update_query_dict({"mode": "ro", "uri": "true"})


def build_url(pms: PmsSettings, password: str | None) -> URL:
    """The SQLAlchemy URL loopsync connects with: password injected, read-only where possible."""
    if pms.odbc_connect:
        backend = pms_dialects.infer_odbc_backend(pms.odbc_connect)
        text = pms_dialects.prepare_odbc(pms.odbc_connect, backend, password, pms.fetch_size)
        return URL.create(f"{backend}+pyodbc", query={"odbc_connect": text})
    if not pms.url:
        raise PmsError("pms.url: required; set the PMS database URL, or pms.odbc_connect")
    url = _parse_url(pms.url)
    odbc = _odbc_connect_of(url)
    if odbc is not None:
        text = pms_dialects.prepare_odbc(odbc, url.get_backend_name(), password, pms.fetch_size)
        url = url.update_query_dict({"odbc_connect": text})
    elif password:
        url = url.set(password=password)
    if url.get_backend_name() == "sqlite":
        url = _sqlite_read_only(url)
    return url


# --- reading ----------------------------------------------------------------------


def _check_columns(columns: tuple[str, ...], cursor_column: str | None) -> None:
    """Raise QueryShapeError for a column returned twice, or a required one missing."""
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise QueryShapeError(
            f"the PMS query returns {', '.join(duplicates)} more than once (names are compared "
            "without regard to case); give each column one name in pms.query_file"
        )
    check_columns(columns, cursor_column=cursor_column)


def column_key(name: str) -> str:
    """A column's name as rows carry it: lower case, but a custom_<key> keeps its key's case.

    Loop's custom field ids are case-sensitive (`guestID`), while drivers spell the
    canonical columns in whatever case the database likes.
    """
    lowered = name.lower()
    if lowered.startswith(_CUSTOM_PREFIX):
        return _CUSTOM_PREFIX + name[len(_CUSTOM_PREFIX) :]
    return lowered


class PmsResult:
    """The rows of one read: `columns`, then iterate once; `max_cursor` grows as rows go by."""

    def __init__(
        self,
        columns: tuple[str, ...],
        rows: CursorResult[Any],
        cursor_column: str | None,
        fetch_size: int,
        translate: Callable[[BaseException], PmsError],
        *,
        cursor_type: str = "datetime",
        max_cursor: object | None = None,
    ) -> None:
        self.columns = columns
        # Without a cursor column (change tracking), the cursor is given, not read.
        self.max_cursor: object | None = max_cursor
        self.rows_read = 0
        self._rows = rows
        cursor_column = (cursor_column or "").lower()
        self._cursor_index = columns.index(cursor_column) if cursor_column in columns else None
        self._cursor_column = cursor_column
        self._cursor_type = cursor_type
        self._fetch_size = fetch_size
        self._translate = translate
        self._dbapi_cursor: Any = rows.cursor
        self._started = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield each row as a dict keyed by lower-cased column name."""
        if self._started:
            raise RuntimeError("a PMS result can be iterated only once")
        self._started = True
        return self._iterate()

    def _iterate(self) -> Iterator[dict[str, Any]]:
        columns, index = self.columns, self._cursor_index
        # An explicit size: without one, SQLAlchemy may fetch everything at once.
        partitions = self._rows.partitions(self._fetch_size)
        while True:
            try:
                batch = next(partitions, None)
            except (sa.exc.DBAPIError, UnicodeError) as exc:
                if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
                    _abandon_stream(self._dbapi_cursor)
                raise self._translate(exc) from None
            if batch is None:
                return
            for row in batch:
                if index is not None:
                    self._note_cursor(row[index])
                self.rows_read += 1
                yield dict(zip(columns, row, strict=True))

    def _note_cursor(self, value: object) -> None:
        if value is None:
            return
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
        if self._cursor_type == "rowversion" and not (
            isinstance(value, bytes) and len(value) == ROWVERSION_SIZE
        ):
            shown = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
            raise PmsError(
                f"pms.cursor_type is rowversion, but the PMS query's {self._cursor_column} "
                f"column returns {shown}; return the rowversion column itself (8 bytes), "
                "or set pms.cursor_type to match"
            )
        try:
            if self.max_cursor is None or value > self.max_cursor:  # type: ignore[operator]
                self.max_cursor = value
        except TypeError:
            raise PmsError(
                f"the PMS query's {self._cursor_column} column mixes values that cannot be "
                f"compared ({type(self.max_cursor).__name__} and {type(value).__name__}); "
                "make pms.query_file return one type, e.g. all timestamps with or all "
                "without a time zone"
            ) from None


class PmsSource:
    """The PMS database, read through one lazily built engine reused across cycles."""

    def __init__(self, pms: PmsSettings, password: str | None) -> None:
        self._pms = pms
        self._password = password
        self._engine: Engine | None = None
        self._told_no_since = False
        self._setup = pms_dialects.SessionSetup()
        self.description = describe_source(pms)
        secrets = [password or ""]
        if pms.url and (url := _try_url(pms.url)) is not None:
            secrets.append(url.password if isinstance(url.password, str) else "")
            secrets.extend(pms_dialects.odbc_passwords(_odbc_connect_of(url) or ""))
        secrets.extend(pms_dialects.odbc_passwords(pms.odbc_connect or ""))
        # As written in an ODBC string, a `}` is doubled.
        secrets.extend([secret.replace("}", "}}") for secret in secrets])
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    # -- cursors

    def since_value(self, stored_cursor: object | None) -> object:
        """The value to bind as `:since`, from the stored cursor (None: the lowest value).

        Timestamps move back by `pms.overlap` in the PMS's own terms (naive stays naive,
        text stays text, a date moves back whole days); other cursors bind as stored. In
        change tracking mode, no stored version binds -1: the query reads everything.
        """
        pms = self._pms
        if pms.change_tracking_table:
            if stored_cursor is None:
                return pms_dialects.CHANGE_TRACKING_FULL_READ
            return stored_cursor
        if stored_cursor is None:
            return LOWEST_CURSOR[pms.cursor_type]
        if pms.cursor_type != "datetime":
            return stored_cursor
        if isinstance(stored_cursor, datetime):
            return _shift_back(stored_cursor, pms.overlap)
        if isinstance(stored_cursor, date):
            days = math.ceil(pms.overlap / timedelta(days=1))
            try:
                return stored_cursor - timedelta(days=days)
            except OverflowError:
                return date.min
        if isinstance(stored_cursor, str):
            shifted = _shift_iso_text(stored_cursor, pms.overlap)
            if shifted is not None:
                return shifted
            log.warning(
                "pms.cursor_column holds text that is not an ISO timestamp; "
                "reading from the stored cursor without pms.overlap"
            )
        return stored_cursor

    # -- reading

    @contextmanager
    def read(self, since: object | None = None) -> Iterator[PmsResult]:
        """Run `pms.query_file` in a read-only transaction; yield its columns and rows.

        `since` is bound as `:since` when the query uses it; None binds the lowest value
        of `pms.cursor_type` (a full read). The columns are checked before a row is read.
        """
        statement = self._load_query()
        engine = self._get_engine()
        pms = self._pms
        started = time.monotonic()
        try:
            connection = engine.connect()
        except (sa.exc.DBAPIError, UnicodeError) as exc:
            raise self._connect_error(exc) from None
        with connection:
            release = self._guard_sqlite(connection)
            try:
                version: int | None = None
                try:
                    for sql in self._setup.per_read:
                        connection.exec_driver_sql(sql)
                    if pms.change_tracking_table:
                        since, version = self._change_tracking(connection, since)
                    rows = connection.execution_options(
                        stream_results=True, yield_per=pms.fetch_size
                    ).execute(self._bind_since(statement, since))
                except (sa.exc.DBAPIError, UnicodeError) as exc:
                    raise self._query_error(exc) from None
                try:
                    columns = tuple(column_key(name) for name in rows.keys())  # noqa: SIM118
                    # Change tracking's cursor is the version, not a column of the rows.
                    cursor_column = None if pms.change_tracking_table else pms.cursor_column
                    _check_columns(
                        columns,
                        cursor_column.lower()
                        if cursor_column and pms.mode == "incremental"
                        else None,
                    )
                    result = PmsResult(
                        columns,
                        rows,
                        cursor_column,
                        pms.fetch_size,
                        self._query_error,
                        cursor_type=pms.cursor_type,
                        max_cursor=version,
                    )
                    yield result
                    log.debug(
                        "read %d PMS rows in %.2f s", result.rows_read, time.monotonic() - started
                    )
                finally:
                    _close_quietly(rows)
            finally:
                release()

    def dispose(self) -> None:
        """Close the connection pool; the next read opens a new one."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- internals

    def _change_tracking(self, connection: Connection, since: object) -> tuple[int, int]:
        """SQL Server Change Tracking: the version to read from, and the one to store."""
        table = str(self._pms.change_tracking_table)
        try:
            row = connection.execute(
                sa.text(pms_dialects.CHANGE_TRACKING_VERSIONS), {"table": table}
            ).one()
        except sa.exc.DBAPIError as exc:
            original = self._driver_error(exc)
            if exc.connection_invalidated or pms_dialects.classify(original) is not Failure.OTHER:
                raise self._query_error(exc) from None
            reason = self._scrub(pms_dialects.driver_message(original))
            raise PmsError(
                f"cannot read the change tracking versions of {table}: {reason}; "
                "pms.change_tracking_table needs SQL Server with change tracking on (see README)"
            ) from None
        current, min_valid = (None if value is None else int(value) for value in row)
        stored = since if isinstance(since, int) and not isinstance(since, bool) else None
        if since is not None and stored is None:
            log.warning("the stored cursor is not a change tracking version; reading everything")
        bound = pms_dialects.change_tracking_since(stored, current, min_valid, table)
        assert current is not None  # change_tracking_since raised otherwise
        return bound, current

    def _load_query(self) -> sa.TextClause:
        path = self._pms.query_file
        if path is None:
            raise PmsError("pms.query_file: required; point it at the SQL that reads reservations")
        try:
            sql = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PmsError(
                f"cannot read the PMS query file {path}: no such file; check pms.query_file"
            ) from None
        except OSError as exc:
            raise PmsError(
                f"cannot read the PMS query file {path}: {exc.strerror}; "
                "check pms.query_file and its permissions"
            ) from None
        except UnicodeDecodeError:
            raise PmsError(
                f"the PMS query file {path} is not UTF-8 text; save it as UTF-8"
            ) from None
        # Oracle rejects a trailing `;`, and others do not need one.
        sql = pms_dialects.strip_sql_comments(sql).strip().rstrip(";").rstrip()
        if not sql:
            raise PmsError(f"the PMS query file {path} is empty; check pms.query_file")
        statement = sa.text(sql)
        names = set(statement.compile().params)
        unknown = sorted(names - {"since"})
        if unknown:
            raise PmsError(
                f"the PMS query uses :{', :'.join(unknown)}, but loopsync binds only :since; "
                "check pms.query_file (write a literal colon as \\:)"
            )
        return statement

    def _bind_since(self, statement: sa.TextClause, since: object | None) -> sa.TextClause:
        """Bind `:since` when the query uses it; None binds what `since_value(None)` gives."""
        if "since" not in statement.compile().params:
            if self._pms.mode == "incremental" and not self._told_no_since:
                self._told_no_since = True
                log.warning(
                    'pms.mode is "incremental", but pms.query_file has no :since, so every '
                    "cycle reads everything; filter it with WHERE <cursor column> >= :since"
                )
            return statement
        value = self.since_value(None) if since is None else since
        return statement.bindparams(sa.bindparam("since", value))

    def _get_engine(self) -> Engine:
        if self._engine is not None:
            return self._engine
        url = build_url(self._pms, self._password)
        backend, driver = url.get_backend_name(), url.get_driver_name()
        pool: dict[str, Any] = {}
        if not (backend == "sqlite" and url.database in (None, "", ":memory:")):
            pool = {"pool_size": 2, "max_overflow": 0, "pool_recycle": 3600}
        try:
            engine = sa.create_engine(
                url,
                pool_pre_ping=True,
                connect_args={
                    **pms_dialects.connect_args(url, self._pms.connect_timeout),
                    **pms_dialects.network_timeouts(url, self._pms.statement_timeout),
                },
                **pool,
            )
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise PmsError(
                f"cannot use {url.drivername} for the PMS: its driver is not installed "
                f"({self._scrub(str(exc))}); install it, or pick another driver in pms.url"
            ) from None
        except (sa.exc.ArgumentError, TypeError) as exc:
            raise PmsError(f"pms.url: {self._scrub(str(exc)).splitlines()[0]}") from None
        self._setup = pms_dialects.session_setup(
            backend,
            self._pms.statement_timeout,
            change_tracking=bool(self._pms.change_tracking_table),
        )
        sa.event.listen(engine, "connect", self._session_listener(backend, driver))
        sa.event.listen(engine, "handle_error", _note_disconnect)
        if not self._setup.read_only:
            log.info(
                "%s sessions cannot be made read-only by loopsync; grant its PMS login SELECT only",
                backend,
            )
        log.debug("PMS database: %s", self.description)
        self._engine = engine
        return engine

    def _session_listener(self, backend: str, driver: str) -> Callable[[Any, Any], None]:
        timeout = self._pms.statement_timeout

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            if driver == "pyodbc":
                pms_dialects.prepare_pyodbc_connection(dbapi_connection, backend)
            cursor = dbapi_connection.cursor()
            try:
                version = ""
                if backend in ("mysql", "mariadb"):
                    cursor.execute("SELECT VERSION()")
                    version = str(cursor.fetchone()[0])
                setup = pms_dialects.session_setup(backend, timeout, version)
                for name, value in setup.attributes:
                    setattr(dbapi_connection, name, value)
                for sql in setup.statements:
                    cursor.execute(sql)
            finally:
                cursor.close()
            dbapi_connection.commit()

        return on_connect

    def _guard_sqlite(self, connection: Connection) -> Callable[[], None]:
        """SQLite has no statement timeout: interrupt the read from a progress handler."""
        if connection.dialect.name != "sqlite" or not self._pms.statement_timeout:
            return lambda: None
        raw: Any = connection.connection.dbapi_connection
        deadline = time.monotonic() + self._pms.statement_timeout.total_seconds()
        raw.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)

        def release() -> None:
            raw.set_progress_handler(None, 0)

        return release

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _driver_error(self, exc: BaseException) -> BaseException:
        """The DBAPI exception inside SQLAlchemy's wrapper (its text may quote a row)."""
        original = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig else exc
        log.debug("PMS driver error %s", type(original).__name__)
        return original

    def _connect_error(self, exc: BaseException) -> PmsError:
        original = self._driver_error(exc)
        where = self.description
        kind = pms_dialects.classify(original)
        if kind is Failure.LOGIN:
            reason = self._scrub(pms_dialects.driver_message(original))
            return PmsError(
                f"the PMS database at {where} refused the login: {reason}; check the user "
                "name and pms.password (or pms.password_file)"
            )
        if kind is Failure.ODBC_DRIVER:
            reason = self._scrub(pms_dialects.driver_message(original))
            return PmsError(
                f"cannot load the ODBC driver for the PMS database at {where}: {reason}; "
                "check DRIVER= against the installed drivers (odbcinst -q -d)"
            )
        reason = self._scrub(pms_dialects.connect_reason(original))
        key = "pms.odbc_connect" if self._pms.odbc_connect else "pms.url"
        hint = (
            f"check {key} and that the file exists and loopsync may read it"
            if where.startswith("sqlite")
            else f"check {key} and that the database server is running"
        )
        return PmsError(f"cannot connect to the PMS database at {where}: {reason}; {hint}")

    def _query_error(self, exc: BaseException) -> PmsError:
        if isinstance(exc, UnicodeError):
            return self._encoding_error(str(exc))
        original = self._driver_error(exc)
        kind = pms_dialects.classify(original)
        if kind is Failure.ENCODING:
            return self._encoding_error(self._scrub(pms_dialects.driver_message(original)))
        if kind is Failure.TIMEOUT:
            seconds = f"{self._pms.statement_timeout.total_seconds():g}"
            return PmsError(
                f"the PMS query ran longer than pms.statement_timeout ({seconds} s) and was "
                "cancelled; make the query faster or raise pms.statement_timeout"
            )
        message = self._scrub(pms_dialects.driver_message(original))
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return PmsError(
                f"lost the connection to the PMS database at {self.description}: {message}; "
                "check that the database server is running"
            )
        return PmsError(
            f"the PMS query failed: {message}; check pms.query_file ({self._pms.query_file})"
        )

    def _encoding_error(self, reason: str) -> PmsError:
        return PmsError(
            f"the PMS returned text that is not valid in its declared encoding ({reason}); "
            "check the database's character set (for MariaDB/MySQL through ODBC, "
            "CHARSET=utf8mb4; on SQL Server, the column's collation)"
        )


def _note_disconnect(context: ExceptionContext) -> None:
    """Tell SQLAlchemy about a lost connection its dialect does not recognise (ODBC).

    Then a dead pooled connection is replaced (pool_pre_ping) instead of failing every
    later cycle, and a read cut off midway says it lost the connection.
    """
    if not context.is_disconnect and pms_dialects.is_disconnect(context.original_exception):
        context.is_disconnect = True


def _try_url(text: str) -> URL | None:
    try:
        return make_url(text)
    except sa.exc.ArgumentError:
        return None


def _abandon_stream(dbapi_cursor: Any) -> None:
    """Stop PyMySQL draining a streamed result whose connection is gone.

    Otherwise, when the result is garbage-collected, PyMySQL reads from the closed
    socket and prints an "Exception ignored" traceback on stderr.
    """
    result: Any = getattr(dbapi_cursor, "_result", None)
    if result is not None and getattr(result, "unbuffered_active", False):
        result.unbuffered_active = False


def _close_quietly(rows: CursorResult[Any]) -> None:
    """Close a result whose connection may already be broken; its own error was reported."""
    try:
        rows.close()
    except sa.exc.DBAPIError as exc:
        log.debug("closing the PMS result failed: %s", type(exc.orig).__name__)
