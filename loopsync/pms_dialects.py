"""What loopsync must know about each database engine to read a PMS safely.

Kept apart from `loopsync.pms` so that the per-engine choices are small pure
functions, testable without the engine: the connect arguments, the SQL that makes a
session read-only and bounded in time, how text and SQL Server's `datetimeoffset`
travel through pyodbc, how a raw ODBC connection string is read, which driver errors
mean "wrong login", "timed out" or "connection lost", and SQL Server Change Tracking's
version bookkeeping. Also registers a `postgresql+pyodbc` SQLAlchemy dialect, which
SQLAlchemy does not ship.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from sqlalchemy.connectors.pyodbc import PyODBCConnector
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import URL, Connection

from loopsync.errors import PmsError

log = logging.getLogger(__name__)

MASK = "***"

# pyodbc's constants, spelled out so that importing this module does not need pyodbc.
_SQL_CHAR = 1
_SQL_WCHAR = -8
# SQL Server's `datetimeoffset` (msodbcsql.h), which pyodbc hands over as raw bytes.
SQL_SS_TIMESTAMPOFFSET = -155

_ODBC_PASSWORD_KEYS = frozenset({"pwd", "password"})

# --- query text -------------------------------------------------------------------

_QUOTES = {"'": "'", '"': '"', "[": "]", "`": "`"}


def strip_sql_comments(sql: str) -> str:
    """`sql` without `-- …` and `/* … */` comments, leaving quoted text untouched.

    A `:since` written in a comment would otherwise count as a second parameter.
    """
    out: list[str] = []
    position, length = 0, len(sql)
    while position < length:
        char = sql[position]
        if char in _QUOTES:
            closing = _QUOTES[char]
            end = position + 1
            while end < length:
                if sql[end] == closing:
                    if end + 1 < length and sql[end + 1] == closing:  # a doubled quote
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[position : end + 1])
            position = end + 1
        elif sql.startswith("--", position):
            end = sql.find("\n", position)
            position = length if end < 0 else end
        elif sql.startswith("/*", position):
            end = sql.find("*/", position + 2)
            out.append(" ")
            position = length if end < 0 else end + 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


# --- raw ODBC connection strings -------------------------------------------------


@dataclass(frozen=True, slots=True)
class OdbcPart:
    """One `KEY=value` attribute of an ODBC connection string, as written and as meant."""

    key: str
    value: str
    raw: str


def parse_odbc(text: str) -> list[OdbcPart]:
    """Split an ODBC connection string into attributes; `{...}` values may hold `;` and `}}`."""
    parts: list[OdbcPart] = []
    position = 0
    length = len(text)
    while position < length:
        start = position
        equals = text.find("=", position)
        semicolon = text.find(";", position)
        if equals < 0 or (0 <= semicolon < equals):
            # A segment without `=` (stray text or an empty `;;`): keep it as written.
            end = length if semicolon < 0 else semicolon
            if text[start:end].strip():
                parts.append(OdbcPart(text[start:end].strip(), "", text[start:end]))
            position = end + 1
            continue
        key = text[position:equals].strip()
        position = equals + 1
        if text[position : position + 1] == "{":
            value_chars: list[str] = []
            position += 1
            while position < length:
                char = text[position]
                if char == "}":
                    if text[position + 1 : position + 2] == "}":
                        value_chars.append("}")
                        position += 2
                        continue
                    position += 1
                    break
                value_chars.append(char)
                position += 1
            value = "".join(value_chars)
            end = text.find(";", position)
            end = length if end < 0 else end
        else:
            end = text.find(";", position)
            end = length if end < 0 else end
            value = text[position:end].strip()
        parts.append(OdbcPart(key, value, text[start:end]))
        position = end + 1
    return parts


def odbc_attribute(key: str, value: str) -> str:
    """Render `KEY=value`, braced (with `}` doubled) when the value needs it."""
    if value == "" or re.search(r"[;{}=\s]", value) or value != value.strip():
        return f"{key}={{{value.replace('}', '}}')}}}"
    return f"{key}={value}"


def odbc_get(parts: list[OdbcPart], key: str) -> str | None:
    """The value of attribute `key` (case-insensitive), or None."""
    wanted = key.lower()
    for part in parts:
        if part.key.lower() == wanted:
            return part.value
    return None


def odbc_passwords(text: str) -> list[str]:
    """The passwords written in an ODBC connection string (for scrubbing)."""
    return [part.value for part in parse_odbc(text) if part.key.lower() in _ODBC_PASSWORD_KEYS]


def redact_odbc(text: str) -> str:
    """The connection string with its password shown as `***`, safe for messages and logs."""
    rendered = [
        f"{part.key}={MASK}" if part.key.lower() in _ODBC_PASSWORD_KEYS else part.raw.strip()
        for part in parse_odbc(text)
    ]
    return ";".join(rendered)


def infer_odbc_backend(text: str) -> str:
    """The backend (`mssql`, `mysql`, `postgresql`) that a connection string's DRIVER= names."""
    driver = odbc_get(parse_odbc(text), "driver")
    name = (driver or "").lower()
    if any(marker in name for marker in ("sql server", "freetds", "tds")):
        return "mssql"
    if "mariadb" in name or "mysql" in name:
        return "mysql"
    if "postgres" in name or "psql" in name:
        return "postgresql"
    what = f"DRIVER={{{driver}}}" if driver else "no DRIVER="
    raise PmsError(
        f"pms.odbc_connect: cannot tell which database it points at ({what}); "
        "name a SQL Server, FreeTDS, MariaDB, MySQL or PostgreSQL driver, or set pms.url "
        "instead, e.g. mssql+pyodbc:///?odbc_connect=..."
    )


def prepare_odbc(text: str, backend: str, password: str | None, fetch_size: int) -> str:
    """The connection string loopsync connects with: password, charset and streaming added.

    A password given apart from the string replaces any `PWD=` in it. MariaDB/MySQL get
    `CHARSET=utf8mb4` unless one is set (text is decoded as UTF-8). psqlODBC gets
    `UseDeclareFetch=1;Fetch=<fetch_size>`, or it reads the whole result into memory.
    """
    parts = parse_odbc(text)
    keep = [
        part.raw.strip()
        for part in parts
        if not (password and part.key.lower() in _ODBC_PASSWORD_KEYS) and part.raw.strip()
    ]
    if backend == "mysql" and odbc_get(parts, "charset") is None:
        keep.append("CHARSET=utf8mb4")
    if backend == "postgresql":
        if odbc_get(parts, "usedeclarefetch") is None:
            keep.append("UseDeclareFetch=1")
        if odbc_get(parts, "fetch") is None:
            keep.append(f"Fetch={fetch_size}")
    if password:
        keep.append(odbc_attribute("PWD", password))
    return ";".join(keep) + ";"


# --- connecting and the session ---------------------------------------------------


def _whole_seconds(duration: timedelta) -> int:
    return max(1, math.ceil(duration.total_seconds()))


def connect_args(url: URL, connect_timeout: timedelta) -> dict[str, Any]:
    """The DBAPI `connect()` keyword that bounds connecting, unless the URL already sets it."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    key: str
    value: float
    if driver == "pyodbc":
        key, value = "timeout", _whole_seconds(connect_timeout)  # ODBC login timeout
    elif driver in ("pymysql", "mysqldb", "mariadbconnector"):
        key, value = "connect_timeout", _whole_seconds(connect_timeout)
    elif driver in ("psycopg", "psycopg2"):
        key, value = "connect_timeout", max(2, _whole_seconds(connect_timeout))  # libpq minimum
    elif backend == "sqlite":
        # sqlite3's `timeout` is its busy timeout: how long to wait for a writer's lock.
        key, value = "timeout", connect_timeout.total_seconds()
    elif driver == "oracledb":
        key, value = "tcp_connect_timeout", connect_timeout.total_seconds()
    elif driver == "pymssql":
        key, value = "login_timeout", _whole_seconds(connect_timeout)
    else:
        return {}
    args: dict[str, Any] = {} if key in url.query else {key: value}
    return args


def network_timeouts(url: URL, statement_timeout: timedelta) -> dict[str, Any]:
    """DBAPI `connect()` keywords that end a read whose network went silent.

    The server cancels a slow query itself (the statement timeout); these catch the
    case where no reply can come at all (a cable pulled, a VPN dropped without a reset),
    which would otherwise leave a cycle waiting forever. 0 (no statement timeout) sets
    none of them.
    """
    if statement_timeout <= timedelta(0):
        return {}
    driver = url.get_driver_name()
    # Longer than any reply the server may legitimately still send after the timeout.
    silent = _whole_seconds(statement_timeout) + 30
    if driver == "pymysql":
        wanted: dict[str, Any] = {"read_timeout": silent, "write_timeout": silent}
    elif driver in ("psycopg", "psycopg2"):
        wanted = {
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "tcp_user_timeout": silent * 1000,
        }
    else:
        return {}
    return {key: value for key, value in wanted.items() if key not in url.query}


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """How one engine's sessions are made read-only and bounded in time."""

    # Run once on each new connection, then committed.
    statements: tuple[str, ...] = ()
    # DBAPI connection attributes set on each new connection.
    attributes: tuple[tuple[str, int], ...] = ()
    # Run at the start of every read transaction, before the query.
    per_read: tuple[str, ...] = ()
    # False when loopsync cannot make this engine's session read-only.
    read_only: bool = True


def _seconds_text(duration: timedelta) -> str:
    return f"{duration.total_seconds():.3f}".rstrip("0").rstrip(".")


def session_setup(
    backend: str,
    statement_timeout: timedelta,
    server_version: str = "",
    *,
    change_tracking: bool = False,
) -> SessionSetup:
    """The session settings for `backend`; `server_version` tells MariaDB from MySQL.

    A zero `statement_timeout` means no limit, as 0 does for every engine here. With
    `change_tracking`, each SQL Server read runs in one snapshot transaction, so that
    the change tracking versions and the rows it reads agree.
    """
    seconds = statement_timeout.total_seconds()
    milliseconds = max(1, round(seconds * 1000)) if seconds > 0 else 0
    whole_seconds = _whole_seconds(statement_timeout) if seconds > 0 else 0
    if backend == "sqlite":
        # The file is opened with mode=ro; query_only also covers a URL that is not a file.
        # The statement timeout is a progress handler installed per read (see pms.py).
        return SessionSetup(statements=("PRAGMA query_only = ON",))
    if backend == "postgresql":
        return SessionSetup(
            statements=(
                "SET default_transaction_read_only = on",
                f"SET statement_timeout = {milliseconds}",
            )
        )
    if backend in ("mysql", "mariadb"):
        if "mariadb" in server_version.lower() or backend == "mariadb":
            limit = f"SET SESSION max_statement_time = {_seconds_text(statement_timeout)}"
        else:
            # MySQL's own limit, in milliseconds; it only covers SELECT, which is all we run.
            limit = f"SET SESSION max_execution_time = {milliseconds}"
        return SessionSetup(statements=("SET SESSION TRANSACTION READ ONLY", limit))
    if backend == "mssql":
        # SQL Server has no read-only session: the login must be granted SELECT only.
        # pyodbc's `timeout` is the ODBC query timeout, which cancels the statement.
        return SessionSetup(
            # LOCK_TIMEOUT 0 would mean "never wait"; -1 is SQL Server's "no limit".
            statements=(f"SET LOCK_TIMEOUT {milliseconds or -1}",),
            attributes=(("timeout", whole_seconds),),
            per_read=("SET TRANSACTION ISOLATION LEVEL SNAPSHOT",) if change_tracking else (),
            read_only=False,
        )
    if backend == "oracle":
        # SET TRANSACTION must be the first statement of each transaction, so per read.
        return SessionSetup(
            attributes=(("call_timeout", milliseconds),),
            per_read=("SET TRANSACTION READ ONLY",),
        )
    return SessionSetup(read_only=False)


def set_pyodbc_text_encoding(dbapi_connection: Any, backend: str) -> None:
    """Make text arrive byte-exact through pyodbc, whatever the process locale is.

    MariaDB's driver mangles characters outside the BMP in wide (UTF-16) mode, so its
    text is fetched as UTF-8 with CHARSET=utf8mb4. psqlODBC and SQL Server's drivers
    convert narrow text through the locale (`?` under LANG=C), so all their text is
    fetched wide. pyodbc decodes strictly: bytes that are not valid text raise.
    """
    if backend in ("mysql", "mariadb"):
        dbapi_connection.setdecoding(_SQL_CHAR, encoding="utf-8")
        dbapi_connection.setdecoding(_SQL_WCHAR, encoding="utf-8")
        dbapi_connection.setencoding(encoding="utf-8")
    else:
        dbapi_connection.setdecoding(_SQL_CHAR, encoding="utf-16le", ctype=_SQL_WCHAR)
        dbapi_connection.setdecoding(_SQL_WCHAR, encoding="utf-16le")
        dbapi_connection.setencoding(encoding="utf-16le")


def prepare_pyodbc_connection(dbapi_connection: Any, backend: str) -> None:
    """Set up a new pyodbc connection: text decoding, and SQL Server's `datetimeoffset`."""
    set_pyodbc_text_encoding(dbapi_connection, backend)
    if backend == "mssql":
        # Replaces SQLAlchemy's own converter: this one checks the size and keeps NULLs.
        dbapi_connection.add_output_converter(SQL_SS_TIMESTAMPOFFSET, decode_datetimeoffset)


# --- SQL Server ---------------------------------------------------------------------

# SQL_SS_TIMESTAMPOFFSET_STRUCT (msodbcsql.h): year SQLSMALLINT; month, day, hour, minute,
# second SQLUSMALLINT; fraction SQLUINTEGER (nanoseconds); timezone_hour, timezone_minute
# SQLSMALLINT. 20 bytes without padding; little-endian, as on every platform the SQL
# Server ODBC drivers run on.
_TIMESTAMPOFFSET = struct.Struct("<h5HI2h")


def decode_datetimeoffset(raw: bytes | None) -> datetime | None:
    """A SQL Server `datetimeoffset` as an aware datetime, from the driver's packed struct.

    The struct holds the wall time in its own offset, and both offset fields carry the
    sign (-03:30 is -3 and -30). Nanoseconds are truncated to microseconds.
    """
    if raw is None:
        return None
    if len(raw) != _TIMESTAMPOFFSET.size:
        raise PmsError(
            f"the ODBC driver returned a SQL Server datetimeoffset of {len(raw)} bytes instead "
            f"of {_TIMESTAMPOFFSET.size}; use Microsoft's ODBC Driver 17 or 18 for SQL Server, "
            "or CAST the column to datetime2 in pms.query_file"
        )
    year, month, day, hour, minute, second, fraction, tz_hour, tz_minute = _TIMESTAMPOFFSET.unpack(
        raw
    )
    try:
        offset = timezone(timedelta(hours=tz_hour, minutes=tz_minute))
        return datetime(year, month, day, hour, minute, second, fraction // 1000, offset)
    except ValueError:
        raise PmsError(
            f"the ODBC driver returned a SQL Server datetimeoffset that is not a time "
            f"({raw.hex()}); CAST the column to datetime2 in pms.query_file"
        ) from None


# `:since` when change tracking mode wants every row, not the changes: the first cycle,
# a reconcile, or a stored version SQL Server no longer has the changes since. Not NULL,
# which ODBC drivers must guess a type for; CHANGETABLE takes any bigint.
CHANGE_TRACKING_FULL_READ = -1

# Run at the start of each read in change tracking mode, in the read's own transaction.
CHANGE_TRACKING_VERSIONS = (
    "SELECT CHANGE_TRACKING_CURRENT_VERSION() AS current_version, "
    "CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(:table)) AS min_valid_version"
)


def change_tracking_since(
    stored: int | None, current: int | None, min_valid: int | None, table: str
) -> int:
    """The version to bind as `:since` in change tracking mode, or `CHANGE_TRACKING_FULL_READ`.

    `current` and `min_valid` come from `CHANGE_TRACKING_VERSIONS`. A stored version
    older than the oldest change SQL Server still keeps (or newer than the database,
    as after a restore) cannot be trusted: everything is read again, with a warning.
    """
    if current is None:
        raise PmsError(
            "change tracking is not enabled on the PMS database; ask its administrator "
            "to enable it (see README, SQL Server change tracking), or remove "
            "pms.change_tracking_table"
        )
    if min_valid is None:
        raise PmsError(
            f"change tracking is not enabled on {table}, or loopsync's login may not see it; "
            f"ask the PMS database administrator for ALTER TABLE {table} ENABLE "
            f"CHANGE_TRACKING and GRANT VIEW CHANGE TRACKING ON {table}, or check "
            "pms.change_tracking_table"
        )
    if stored is None or stored == CHANGE_TRACKING_FULL_READ:
        return CHANGE_TRACKING_FULL_READ
    if stored < min_valid:
        log.warning(
            "the stored change tracking version %d is older than the oldest %s still keeps "
            "(%d): reading everything once instead of the changes",
            stored,
            table,
            min_valid,
        )
        return CHANGE_TRACKING_FULL_READ
    if stored > current:
        log.warning(
            "the stored change tracking version %d is newer than the database's (%d), as "
            "after a restore: reading everything instead of the changes",
            stored,
            current,
        )
        return CHANGE_TRACKING_FULL_READ
    return stored


# --- errors -----------------------------------------------------------------------


class Failure(Enum):
    """What a driver error means for the operator."""

    LOGIN = "login"
    TIMEOUT = "timeout"
    ODBC_DRIVER = "odbc_driver"
    ENCODING = "encoding"
    OTHER = "other"


_LOGIN_STATES = frozenset({"28000", "28P01"})
_LOGIN_CODES = frozenset({1044, 1045, 1698, 18456, 1017})
_LOGIN_TEXT = re.compile(
    r"password authentication failed|access denied for user|login failed|ORA-01017|"
    r"authentication failed",
    re.IGNORECASE,
)
_ODBC_DRIVER_STATES = frozenset({"IM002", "IM003"})
_ODBC_DRIVER_TEXT = re.compile(r"can't open lib|data source name not found", re.IGNORECASE)
_TIMEOUT_STATES = frozenset({"57014", "HYT00", "HYT01"})
_TIMEOUT_CODES = frozenset({1969, 3024})
_TIMEOUT_TEXT = re.compile(
    r"statement timeout|max_statement_time exceeded|maximum statement execution time|"
    r"query timeout expired|DPI-1067|ORA-03156|^interrupted$",
    re.IGNORECASE,
)
# Text the driver or the server could not convert: an error, never a `?` in a name.
_ENCODING_STATES = frozenset({"22021", "22P05"})
_ENCODING_CODES = frozenset({1300})
_ENCODING_TEXT = re.compile(
    r"invalid byte sequence for encoding|has no equivalent in encoding|"
    r"ansi to unicode conversion error|invalid \w+ character string",
    re.IGNORECASE,
)
_VENDOR_CODE = re.compile(r"\((\d+)\)\s*\(SQL\w+\)\s*$")
_ORACLE_CODE = re.compile(r"\bORA-(\d{5})\b")


def _codes(error: BaseException) -> tuple[str | None, int | None]:
    """The SQLSTATE and the vendor error number of a DBAPI exception, when it has them."""
    state = getattr(error, "sqlstate", None)
    code: int | None = None
    args = error.args
    if args and isinstance(args[0], int):  # PyMySQL: (code, message)
        code = args[0]
    elif len(args) >= 2 and isinstance(args[0], str) and re.fullmatch(r"[0-9A-Z]{5}", args[0]):
        state = state or args[0]  # pyodbc: (sqlstate, message)
        if match := _VENDOR_CODE.search(str(args[1])):
            code = int(match[1])
    if code is None and (match := _ORACLE_CODE.search(str(error))):
        code = int(match[1])
    return (str(state) if state else None), code


def classify(error: BaseException) -> Failure:
    """A refused login, a timeout, a missing ODBC driver, unconvertible text, or other."""
    state, code = _codes(error)
    text = driver_message(error)
    if state in _ODBC_DRIVER_STATES or _ODBC_DRIVER_TEXT.search(text):
        return Failure.ODBC_DRIVER
    if state in _LOGIN_STATES or code in _LOGIN_CODES or _LOGIN_TEXT.search(text):
        return Failure.LOGIN
    if state in _TIMEOUT_STATES or code in _TIMEOUT_CODES or _TIMEOUT_TEXT.search(text):
        return Failure.TIMEOUT
    if state in _ENCODING_STATES or code in _ENCODING_CODES or _ENCODING_TEXT.search(text):
        return Failure.ENCODING
    return Failure.OTHER


# SQLSTATE class 08 is "connection exception"; 2006 and 2013 are MySQL's "server has gone
# away" and "lost connection"; the texts are what libpq, psqlODBC and PyMySQL say.
_DISCONNECT_CODES = frozenset({2006, 2013, 2055, 4031})
_DISCONNECT_TEXT = re.compile(
    r"server closed the connection unexpectedly|connection (?:was |has been )?lost|"
    r"connection dead|lost connection|server has gone away|communication link failure|"
    r"connection reset by peer|broken pipe|connection not open|the connection is closed|"
    r"consuming input failed|terminating connection",
    re.IGNORECASE,
)


def is_disconnect(error: BaseException) -> bool:
    """Whether a driver error means the connection to the database is gone.

    SQLAlchemy knows this for most native drivers, but not for every ODBC driver: for
    those, a dead pooled connection would fail each cycle instead of being replaced.
    """
    state, code = _codes(error)
    if state is not None and state.startswith("08") and state != "08001":
        return True  # 08001 is "unable to connect": a new connection, not a lost one
    return code in _DISCONNECT_CODES or bool(_DISCONNECT_TEXT.search(driver_message(error)))


def driver_message(error: BaseException) -> str:
    """The first line of a driver's error message, without ODBC's bracketed prefixes."""
    args = error.args
    if len(args) >= 2 and isinstance(args[0], int | str) and isinstance(args[1], str):
        text = args[1]  # PyMySQL and pyodbc put the message second
    else:
        text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    first = re.sub(r"^(\[[^\]]*\]\s*)+", "", first)
    first = re.sub(r"(\s*\(\d+\))*\s*\(SQL\w+\)\s*$", "", first)
    first = re.sub(r"^(ERROR|FATAL):\s+", "", first)
    return first.rstrip(";").strip() or type(error).__name__


_SHORT_REASONS = (
    (re.compile(r"connection refused", re.IGNORECASE), "Connection refused"),
    (re.compile(r"timed? ?out|timeout expired", re.IGNORECASE), "connection timed out"),
    (re.compile(r"no route to host", re.IGNORECASE), "No route to host"),
    (
        re.compile(
            r"could not translate host name|name or service not known|unknown \w+ server host|"
            r"nodename nor servname|getaddrinfo failed|temporary failure in name resolution",
            re.IGNORECASE,
        ),
        "unknown host name",
    ),
)


def connect_reason(error: BaseException) -> str:
    """A short reason a connection failed: `Connection refused`, or the driver's words."""
    message = driver_message(error)
    for pattern, reason in _SHORT_REASONS:
        if pattern.search(message):
            return reason
    # libpq: 'connection to server at "h", port 5432 failed: FATAL:  database "x" ...'
    tail = message.rsplit(" failed: ", 1)[-1]
    return re.sub(r"^(ERROR|FATAL):\s+", "", tail).strip() or message


# --- PostgreSQL through ODBC ------------------------------------------------------


class PGDialect_pyodbc(PyODBCConnector, PGDialect):
    """PostgreSQL through psqlODBC: enough of a dialect to run text queries."""

    supports_statement_cache = True
    supports_unicode_statements = True
    supports_server_side_cursors = False  # psqlODBC streams itself with UseDeclareFetch
    pyodbc_driver_name = "PostgreSQL Unicode"

    def _get_server_version_info(self, connection: Connection) -> tuple[int, ...]:
        # The generic ODBC version probe misreads psqlODBC's; ask the server.
        version: tuple[int, ...] = PGDialect._get_server_version_info(  # type: ignore[no-untyped-call]
            self, connection
        )
        return version

    def on_connect(self) -> Any:
        """Set pyodbc's text handling before SQLAlchemy's first queries run."""
        inherited = super().on_connect()

        def connect(dbapi_connection: Any) -> None:
            if inherited is not None:
                inherited(dbapi_connection)
            set_pyodbc_text_encoding(dbapi_connection, "postgresql")

        return connect


registry.register("postgresql.pyodbc", __name__, "PGDialect_pyodbc")
