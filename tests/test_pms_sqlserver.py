"""SQL Server's code paths, without a SQL Server (none can run here).

What can be pure is tested as pure functions with exact inputs (the packed
`datetimeoffset` bytes, the change tracking bookkeeping). What goes through pyodbc is
tested on real pyodbc connections to MariaDB and PostgreSQL, calling the same functions
loopsync calls for SQL Server. What is SQL Server *behaviour* (rowversion bounded by
MIN_ACTIVE_ROWVERSION, datetime's 1/300 s, CHANGETABLE) is emulated with tables and
functions on the real engines, and read through the real `PmsSource` and `Syncer`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyodbc
import pytest
import sqlalchemy as sa
from conftest import TEST_TOKEN
from pms_fixtures import (
    INCREMENTAL_QUERY,
    STATUS_MAP,
    PmsDatabase,
    mariadb_odbc_connect,
    pg_odbc_connect,
    reservation_row,
    sqlite_url,
    write_query,
)
from sqlalchemy.dialects import mssql, mysql
from test_pms import ENGINES, NAMES, REPO, Pms, loopsync_config, open_pms, read_all

from loopsync import pms_dialects
from loopsync.app import open_syncer
from loopsync.config import PmsSettings, load_config
from loopsync.errors import ConfigError, PmsError
from loopsync.pms import LOWEST_CURSOR, PmsSource, decode_cursor, encode_cursor
from loopsync.pms_dialects import (
    CHANGE_TRACKING_FULL_READ,
    CHANGE_TRACKING_VERSIONS,
    SQL_SS_TIMESTAMPOFFSET,
    Failure,
    change_tracking_since,
    decode_datetimeoffset,
    prepare_pyodbc_connection,
)
from loopsync.simulator import LoopSimulator

# MariaDB reports binary results as one or the other.
SQL_BINARY_TYPES = (-2, -3)


@pytest.fixture
def open_source() -> Iterator[Callable[..., PmsSource]]:
    sources: list[PmsSource] = []

    def make(settings: PmsSettings) -> PmsSource:
        sources.append(PmsSource(settings, None))
        return sources[-1]

    yield make
    for source in sources:
        source.dispose()


@pytest.fixture(params=ENGINES)
def pms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pms]:
    opened = open_pms(request.param, request, tmp_path)
    yield opened
    opened.db.dispose()


@pytest.fixture
def simulator() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as running:
        yield running


# --- datetimeoffset: SQL_SS_TIMESTAMPOFFSET_STRUCT, byte by byte ------------------------

# year, month, day, hour, minute, second (2 bytes each), fraction in ns (4), tz hour, tz minute
DATETIMEOFFSETS = [
    pytest.param(
        "ea07 0c00 0300 0e00 0500 0900 bccc5b07 fdff e2ff",
        datetime(2026, 12, 3, 14, 5, 9, 123456, tzinfo=timezone(-timedelta(hours=3, minutes=30))),
        id="2026-12-03T14:05:09.1234567-03:30",
    ),
    pytest.param(
        "ea07 0100 0100 0000 0000 0000 64000000 0500 2d00",
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        id="100ns-truncated+05:45",
    ),
    pytest.param(
        "ea07 0600 1e00 1700 3b00 3b00 00000000 0000 e2ff",
        datetime(2026, 6, 30, 23, 59, 59, tzinfo=timezone(-timedelta(minutes=30))),
        id="-00:30",
    ),
    pytest.param(
        "0100 0100 0100 0000 0000 0000 00000000 0e00 0000",
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        id="lowest+14:00",
    ),
    pytest.param(
        "0f27 0c00 1f00 1700 3b00 3b00 9cc99a3b f2ff 0000",
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(-timedelta(hours=14))),
        id="highest-14:00",
    ),
    pytest.param(
        "ea07 0c00 0300 0d00 0000 0000 c0cf6a00 0000 0000",
        datetime(2026, 12, 3, 13, 0, 0, 7000, tzinfo=UTC),
        id="utc",
    ),
]


@pytest.mark.parametrize(("packed", "expected"), DATETIMEOFFSETS)
def test_a_datetimeoffset_is_an_aware_datetime_from_its_exact_bytes(
    packed: str, expected: datetime
) -> None:
    value = decode_datetimeoffset(bytes.fromhex(packed.replace(" ", "")))

    assert value == expected
    assert value is not None
    assert value.utcoffset() == expected.utcoffset()  # same instant *and* same offset
    assert value.isoformat() == expected.isoformat()


def test_the_datetimeoffset_wall_time_is_in_its_own_offset() -> None:
    value = decode_datetimeoffset(bytes.fromhex("ea070c0003000e000500090000000000fdffe2ff"))
    assert value is not None
    assert value.astimezone(UTC) == datetime(2026, 12, 3, 17, 35, 9, tzinfo=UTC)


def test_a_null_datetimeoffset_stays_null_and_bad_bytes_fail_loudly() -> None:
    assert decode_datetimeoffset(None) is None
    with pytest.raises(PmsError) as caught:
        decode_datetimeoffset(bytes(16))
    assert str(caught.value) == (
        "the ODBC driver returned a SQL Server datetimeoffset of 16 bytes instead of 20; "
        "use Microsoft's ODBC Driver 17 or 18 for SQL Server, or CAST the column to datetime2 "
        "in pms.query_file"
    )
    month_13 = bytes.fromhex("ea070d00030000000000000000000000" + "00000000")
    with pytest.raises(PmsError, match=r"not a time \(ea070d00"):
        decode_datetimeoffset(month_13)


@pytest.mark.mariadb
@pytest.mark.odbc
def test_pyodbc_hands_the_converter_the_driver_bytes_exactly(
    make_mariadb_database: Callable[[], str],
) -> None:
    # MariaDB cannot return type -155; register the same function on SQL_BINARY and
    # let a real driver and pyodbc's fetch deliver the packed struct to it.
    connection = pyodbc.connect(mariadb_odbc_connect(make_mariadb_database()))
    try:
        for sql_type in SQL_BINARY_TYPES:
            connection.add_output_converter(sql_type, decode_datetimeoffset)
        cursor = connection.cursor()
        cursor.execute(
            "SELECT CAST(x'ea070c0003000e0005000900bccc5b07fdffe2ff' AS BINARY(20)), "
            "CAST(NULL AS BINARY(20))"
        )
        assert [tuple(row) for row in cursor.fetchall()] == [
            (
                datetime(
                    2026, 12, 3, 14, 5, 9, 123456, tzinfo=timezone(-timedelta(hours=3, minutes=30))
                ),
                None,
            )
        ]
        # A value the converter refuses surfaces from fetch as that error, unwrapped.
        cursor.execute("SELECT CAST(x'0102' AS BINARY(2))")
        with pytest.raises(PmsError, match="datetimeoffset of 2 bytes instead of 20"):
            cursor.fetchall()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("engine", "backend"),
    [
        pytest.param("mariadb", "mssql", marks=[pytest.mark.mariadb, pytest.mark.odbc]),
        pytest.param("mariadb", "mysql", marks=[pytest.mark.mariadb, pytest.mark.odbc]),
        pytest.param("postgresql", "mssql", marks=[pytest.mark.postgres, pytest.mark.odbc]),
        pytest.param("postgresql", "postgresql", marks=[pytest.mark.postgres, pytest.mark.odbc]),
    ],
)
def test_new_pyodbc_connections_get_the_datetimeoffset_converter_for_sql_server_only(
    engine: str, backend: str, request: pytest.FixtureRequest
) -> None:
    if engine == "mariadb":
        odbc = mariadb_odbc_connect(request.getfixturevalue("make_mariadb_database")())
    else:
        odbc = pg_odbc_connect(request.getfixturevalue("pg_url"))
    connection = pyodbc.connect(odbc)
    try:
        prepare_pyodbc_connection(connection, backend)
        converter = connection.get_output_converter(SQL_SS_TIMESTAMPOFFSET)
        assert converter is (decode_datetimeoffset if backend == "mssql" else None)
        # The connection still reads text afterwards (the same call sets the decoding).
        cursor = connection.cursor()
        cursor.execute("SELECT 'Zoë'")
        assert cursor.fetchone()[0] == "Zoë"
    finally:
        connection.close()


@pytest.mark.mariadb
@pytest.mark.odbc
def test_a_converter_error_reaches_the_operator_as_one_line(
    make_mariadb_database: Callable[[], str], tmp_path: Path, open_source: Any
) -> None:
    sql = (
        "SELECT 'R1' AS reservation_id, 'RES' AS status, DATE '2026-12-03' AS arrival, "
        "DATE '2026-12-05' AS departure, CAST(x'0102' AS BINARY(2)) AS checked_in_at"
    )
    settings = PmsSettings(
        odbc_connect=mariadb_odbc_connect(make_mariadb_database()),
        query_file=write_query(tmp_path, sql),
    )
    source = open_source(settings)

    # The engine's own connect hook, as loopsync registers -155 for SQL Server.
    def register(dbapi_connection: Any, _record: Any) -> None:
        for sql_type in SQL_BINARY_TYPES:
            dbapi_connection.add_output_converter(sql_type, decode_datetimeoffset)

    sa.event.listen(source._get_engine(), "connect", register)

    with pytest.raises(PmsError) as caught:
        read_all(source)

    assert str(caught.value).startswith(
        "the ODBC driver returned a SQL Server datetimeoffset of 2 bytes instead of 20; "
    )


# --- rowversion: bytes, compared as binary, bounded by MIN_ACTIVE_ROWVERSION() ----------

# A rowversion column emulated as 8 bytes, and MIN_ACTIVE_ROWVERSION() as a one-row table
# that the test moves as "transactions" commit.
ROWVERSION_QUERY = (
    "SELECT reservation_id, status, arrival, departure, rv FROM resv "
    "WHERE rv >= :since AND rv < (SELECT rv FROM min_active_rowversion) ORDER BY rv"
)


def rv(number: int) -> bytes:
    """A rowversion as SQL Server returns it: 8 bytes, big-endian."""
    return number.to_bytes(8, "big")


class RowversionPms:
    def __init__(self, pms: Pms) -> None:
        self.engine = sa.create_engine(pms.db.url)
        binary = sa.LargeBinary(8).with_variant(mysql.VARBINARY(8), "mysql", "mariadb")
        metadata = sa.MetaData()
        self.resv = sa.Table(
            "resv",
            metadata,
            sa.Column("reservation_id", sa.String(32), primary_key=True),
            sa.Column("status", sa.String(8)),
            sa.Column("arrival", sa.Date),
            sa.Column("departure", sa.Date),
            sa.Column("rv", binary, nullable=False),
        )
        self.bound = sa.Table("min_active_rowversion", metadata, sa.Column("rv", binary))
        metadata.create_all(self.engine)
        self.set_min_active(1)

    def commit(self, reservation_id: str, number: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self.resv.insert(),
                {
                    "reservation_id": reservation_id,
                    "status": "RES",
                    "arrival": date(2026, 12, 3),
                    "departure": date(2026, 12, 5),
                    "rv": rv(number),
                },
            )

    def set_min_active(self, number: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.bound.delete())
            conn.execute(self.bound.insert(), {"rv": rv(number)})


def test_a_rowversion_cursor_never_skips_a_row_of_a_transaction_still_open(
    pms: Pms, open_source: Any
) -> None:
    db = RowversionPms(pms)
    # 0x00FF < 0x0100 as binary, though a signed byte would say otherwise.
    db.commit("R1", 0x00FE)
    db.commit("R2", 0x00FF)
    db.commit("R3", 0x0100)
    # R4 took 0x0101 in a transaction still open; R5 committed after it with 0x0102.
    db.commit("R5", 0x0102)
    db.set_min_active(0x0101)
    settings = pms.settings(
        ROWVERSION_QUERY, mode="incremental", cursor_column="rv", cursor_type="rowversion"
    )
    source = open_source(settings)

    rows, newest = read_all(source, source.since_value(None))

    assert source.since_value(None) == bytes(8)
    assert [row["reservation_id"] for row in rows] == ["R1", "R2", "R3"]
    assert newest == rv(0x0100)
    assert type(newest) is bytes
    stored = encode_cursor(newest)
    assert stored == '{"t":"bytes","v":"0000000000000100"}'

    # R4 commits; nothing is open any more.
    db.commit("R4", 0x0101)
    db.set_min_active(0x0103)
    since = source.since_value(decode_cursor(stored))
    assert since == rv(0x0100)  # bytes bind as stored: no overlap, `>=` re-reads R3
    rows, newest = read_all(source, since)

    assert [row["reservation_id"] for row in rows] == ["R3", "R4", "R5"]
    assert newest == rv(0x0102)


def test_rowversions_compare_as_big_endian_binary() -> None:
    values = [rv(n) for n in (0, 0xFF, 0x100, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000)]
    assert sorted(reversed(values)) == values
    assert max(values) == b"\x80" + bytes(7)
    assert LOWEST_CURSOR["rowversion"] == min(values)


def test_a_rowversion_cursor_that_is_not_8_bytes_is_refused(
    tmp_path: Path, open_source: Any
) -> None:
    url = sqlite_url(tmp_path)
    with PmsDatabase(url) as db:
        db.insert(reservation_row("R1"))
    sql = (
        "SELECT reservation_id, status, arrival, departure, X'0102' AS rv FROM reservations "
        "WHERE rv >= :since"
    )
    settings = PmsSettings(
        url=url,
        query_file=write_query(tmp_path, sql),
        mode="incremental",
        cursor_column="rv",
        cursor_type="rowversion",
    )

    with pytest.raises(PmsError) as caught:
        read_all(open_source(settings))

    assert str(caught.value) == (
        "pms.cursor_type is rowversion, but the PMS query's rv column returns 2 bytes; "
        "return the rowversion column itself (8 bytes), or set pms.cursor_type to match"
    )


# --- datetime's 1/300 s: the boundary row is read again, and costs nothing -------------

TWO_HUNDREDTHS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mariadb-odbc", id="mariadb-odbc", marks=[pytest.mark.mariadb, pytest.mark.odbc]),
    pytest.param(
        "postgresql-odbc", id="postgresql-odbc", marks=[pytest.mark.postgres, pytest.mark.odbc]
    ),
]


@pytest.mark.parametrize("engine", TWO_HUNDREDTHS)
def test_a_datetime_cursor_read_back_rereads_its_boundary_and_the_repeat_is_free(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path, simulator: LoopSimulator
) -> None:
    pms = open_pms(engine, request, tmp_path)
    # SQL Server's datetime keeps 1/300 s: the driver returns .003 and .007 for values
    # stored as .00333… and .00666…, so a cursor read back is not exactly what is stored.
    noon = datetime(2026, 12, 3, 12, 0)
    pms.db.insert(
        reservation_row("A1", room="101", modified_at=noon + timedelta(microseconds=3000)),
        reservation_row("A2", room="102", modified_at=noon + timedelta(microseconds=7000)),
    )
    config = loopsync_config(
        tmp_path, pms.source, INCREMENTAL_QUERY, simulator.base_url, mode="incremental"
    )
    now = datetime(2026, 12, 3, 12, 5, tzinfo=ZoneInfo("Europe/Amsterdam"))

    with open_syncer(config, now=lambda: now) as (syncer, store), store.lock():
        first = syncer.sync_once(budget=timedelta(seconds=5))
        assert first.rows_read == 2
        assert sorted(r.body["foreignId"] for r in simulator.received if r.body) == ["A1", "A2"]
        assert decode_cursor(store.cursor() or "") == pms.cursor(
            noon + timedelta(microseconds=7000)
        )

        # A row sharing the boundary's value, committed late.
        pms.db.insert(
            reservation_row("A3", room="103", modified_at=noon + timedelta(microseconds=7000))
        )
        second = syncer.sync_once(budget=timedelta(seconds=5))
        third = syncer.sync_once(budget=timedelta(seconds=5))
        last_cursor = decode_cursor(store.cursor() or "")

    pms.db.dispose()
    assert second.rows_read == 3  # the boundary rows again, through the overlap
    assert third.rows_read == 3
    assert [r.body["foreignId"] for r in simulator.received[2:] if r.body] == ["A3"]
    assert second.planned == {"upsert": 1}
    assert third.planned == {}
    assert last_cursor == pms.cursor(noon + timedelta(microseconds=7000))


def test_the_overlap_covers_a_datetime_stored_below_the_value_read_back() -> None:
    # Stored 12:00:00.00666…, read back as .007: binding .007 alone would miss it on
    # SQL Server 2016+ (datetime compared as datetime2); the overlap reaches below it.
    source = PmsSource(PmsSettings(url="sqlite:///unused.db", mode="incremental"), None)
    read_back = datetime(2026, 12, 3, 12, 0, 0, 7000)
    since = source.since_value(decode_cursor(encode_cursor(read_back)))
    assert since == datetime(2026, 12, 3, 11, 58, 0, 7000)
    assert since < datetime(2026, 12, 3, 12, 0, 0, 6666)


# --- text: nvarchar and varchar through the SQL Server settings, under LANG=C -----------

_MSSQL_TEXT_SCRIPT = textwrap.dedent(
    """
    import json, locale, sys
    import pyodbc
    from loopsync.pms_dialects import prepare_pyodbc_connection
    assert locale.getpreferredencoding(False).lower() in ("ascii", "ansi_x3.4-1968")
    connection = pyodbc.connect(sys.argv[1])
    prepare_pyodbc_connection(connection, "mssql")
    cursor = connection.cursor()
    cursor.execute(
        "SELECT reservation_id, firstname, CAST(lastname AS text) FROM reservations "
        "WHERE firstname = ? ORDER BY reservation_id", json.loads(sys.argv[2]))
    print(json.dumps([list(row) for row in cursor.fetchall()]))
    """
)


@pytest.mark.postgres
@pytest.mark.odbc
def test_sql_server_text_settings_read_names_byte_exact_under_the_c_locale(
    pg_url: str,
) -> None:
    with PmsDatabase(pg_url) as db:
        db.insert(
            *(
                reservation_row(rid, firstname=first, lastname=last)
                for rid, (first, last) in NAMES.items()
            )
        )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LC_ALL": "C",
        "PYTHONCOERCECLOCALE": "0",
        "PYTHONUTF8": "0",
        "PYTHONPATH": str(REPO),
    }
    got: dict[str, tuple[str, str]] = {}
    for rid, (first, _) in NAMES.items():
        done = subprocess.run(
            # ASCII-escaped: under LANG=C, argv cannot carry the names as text.
            [sys.executable, "-c", _MSSQL_TEXT_SCRIPT, pg_odbc_connect(pg_url), json.dumps(first)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        [[got_rid, got_first, got_last]] = json.loads(done.stdout)
        assert got_rid == rid  # the parameter went in exact too: it found the row
        got[got_rid] = (got_first, got_last)

    assert got == NAMES
    assert got["R1"][1].encode() == "Ñúñez-Øberg".encode()
    assert got["R2"] == ("李小龙", "Ольга")


@pytest.mark.mariadb
@pytest.mark.odbc
def test_text_a_driver_cannot_convert_fails_loudly(
    make_mariadb_database: Callable[[], str], tmp_path: Path, open_source: Any
) -> None:
    # An unpaired surrogate, which SQL Server's nvarchar (UTF-16 code units) can hold.
    surrogate = "CAST(x'D800' AS CHAR CHARACTER SET ucs2)"
    name = make_mariadb_database()

    connection = pyodbc.connect(mariadb_odbc_connect(name))
    try:
        prepare_pyodbc_connection(connection, "mssql")
        cursor = connection.cursor()
        cursor.execute(f"SELECT {surrogate}")
        with pytest.raises(pyodbc.Error) as raw:
            cursor.fetchall()
    finally:
        connection.close()
    assert pms_dialects.classify(raw.value) is Failure.ENCODING

    sql = (
        "SELECT 'R1' AS reservation_id, 'RES' AS status, DATE '2026-12-03' AS arrival, "
        f"DATE '2026-12-05' AS departure, {surrogate} AS firstname"
    )
    settings = PmsSettings(
        odbc_connect=mariadb_odbc_connect(name), query_file=write_query(tmp_path, sql)
    )
    with pytest.raises(PmsError) as caught:
        read_all(open_source(settings))
    message = str(caught.value)
    assert message.startswith("the PMS returned text that is not valid in its declared encoding (")
    assert message.endswith(
        "check the database's character set (for MariaDB/MySQL through ODBC, CHARSET=utf8mb4; "
        "on SQL Server, the column's collation)"
    )


# --- Change Tracking ------------------------------------------------------------------


def test_the_change_tracking_versions_query_is_what_sql_server_documents() -> None:
    assert CHANGE_TRACKING_VERSIONS == (
        "SELECT CHANGE_TRACKING_CURRENT_VERSION() AS current_version, "
        "CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(:table)) AS min_valid_version"
    )
    compiled = sa.text(CHANGE_TRACKING_VERSIONS).compile(dialect=mssql.dialect())
    assert str(compiled) == (
        "SELECT CHANGE_TRACKING_CURRENT_VERSION() AS current_version, "
        "CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(:table)) AS min_valid_version"
    )
    assert list(compiled.params) == ["table"]


def test_each_change_tracking_read_is_one_snapshot_transaction() -> None:
    tracked = pms_dialects.session_setup("mssql", timedelta(seconds=60), change_tracking=True)
    assert tracked.per_read == ("SET TRANSACTION ISOLATION LEVEL SNAPSHOT",)
    assert tracked.statements == ("SET LOCK_TIMEOUT 60000",)
    assert pms_dialects.session_setup("mssql", timedelta(seconds=60)).per_read == ()


@pytest.mark.parametrize(
    ("stored", "current", "min_valid", "since", "logged"),
    [
        (None, 120, 40, CHANGE_TRACKING_FULL_READ, None),
        (CHANGE_TRACKING_FULL_READ, 120, 40, CHANGE_TRACKING_FULL_READ, None),
        (100, 120, 40, 100, None),
        (40, 120, 40, 40, None),
        (120, 120, 40, 120, None),
        (
            39,
            120,
            40,
            CHANGE_TRACKING_FULL_READ,
            "the stored change tracking version 39 is older than the oldest dbo.Reservations "
            "still keeps (40): reading everything once instead of the changes",
        ),
        (
            121,
            7,
            0,
            CHANGE_TRACKING_FULL_READ,
            "the stored change tracking version 121 is newer than the database's (7), as after "
            "a restore: reading everything instead of the changes",
        ),
    ],
)
def test_the_version_to_read_from(
    stored: int | None,
    current: int,
    min_valid: int,
    since: int,
    logged: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="loopsync.pms_dialects")
    assert change_tracking_since(stored, current, min_valid, "dbo.Reservations") == since
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ([logged] if logged else [])


def test_change_tracking_that_is_not_enabled_says_what_the_dba_must_do() -> None:
    with pytest.raises(PmsError) as caught:
        change_tracking_since(5, None, None, "dbo.Reservations")
    assert str(caught.value) == (
        "change tracking is not enabled on the PMS database; ask its administrator to enable "
        "it (see README, SQL Server change tracking), or remove pms.change_tracking_table"
    )
    with pytest.raises(PmsError) as caught:
        change_tracking_since(5, 10, None, "dbo.Reservations")
    assert str(caught.value) == (
        "change tracking is not enabled on dbo.Reservations, or loopsync's login may not see "
        "it; ask the PMS database administrator for ALTER TABLE dbo.Reservations ENABLE "
        "CHANGE_TRACKING and GRANT VIEW CHANGE TRACKING ON dbo.Reservations, or check "
        "pms.change_tracking_table"
    )


def test_change_tracking_needs_incremental_mode(tmp_path: Path) -> None:
    path = tmp_path / "loopsync.toml"
    path.write_text('[pms]\nchange_tracking_table = "dbo.Reservations"\n', encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f'{path}: pms: pms.change_tracking_table needs pms.mode = "incremental"'
    ]
    settings = PmsSettings(mode="incremental", change_tracking_table="dbo.Reservations")
    source = PmsSource(settings, None)
    assert source.since_value(None) == CHANGE_TRACKING_FULL_READ
    assert source.since_value(57) == 57  # a version binds as stored, without overlap


# SQL Server's change tracking, emulated in PostgreSQL: the same three functions the
# versions query calls, and CHANGETABLE(CHANGES …) as a set-returning function over a
# side table of (key, version, operation), as SQL Server keeps one per tracked table.
CHANGE_TRACKING_EMULATION = [
    "CREATE TABLE ct_state (current_version bigint, min_valid bigint)",
    "INSERT INTO ct_state VALUES (0, 0)",
    "CREATE TABLE ct_side (reservation_id varchar(32), version bigint, operation char(1))",
    "CREATE FUNCTION object_id(name text) RETURNS integer LANGUAGE sql AS "
    "$$ SELECT CASE WHEN name = 'dbo.Reservations' THEN 1 END $$",
    "CREATE FUNCTION change_tracking_current_version() RETURNS bigint LANGUAGE sql AS "
    "$$ SELECT current_version FROM ct_state $$",
    "CREATE FUNCTION change_tracking_min_valid_version(object integer) RETURNS bigint "
    "LANGUAGE sql AS $$ SELECT min_valid FROM ct_state WHERE object = 1 $$",
    "CREATE FUNCTION changetable_changes(since bigint) "
    "RETURNS TABLE (reservation_id varchar(32), sys_change_operation char(1)) LANGUAGE sql AS "
    "$$ SELECT DISTINCT ON (reservation_id) reservation_id, operation FROM ct_side "
    "WHERE version > since ORDER BY reservation_id, version DESC $$",
]

# The README's query shape, with CHANGETABLE(CHANGES dbo.Reservations, :since) AS ct
# spelled as the emulation's function.
CHANGE_TRACKING_QUERY = """
SELECT ct.reservation_id AS reservation_id,
       COALESCE(r.status, 'DELETED') AS status,
       COALESCE(r.arrival, CURRENT_DATE) AS arrival,
       COALESCE(r.departure, CURRENT_DATE) AS departure,
       r.room, r.firstname, r.lastname, r.email, r.mobile, r.language, r.room_ready
FROM changetable_changes(:since) AS ct
LEFT JOIN reservations AS r ON r.reservation_id = ct.reservation_id
WHERE :since >= 0
UNION ALL
SELECT r.reservation_id, r.status, r.arrival, r.departure,
       r.room, r.firstname, r.lastname, r.email, r.mobile, r.language, r.room_ready
FROM reservations AS r
WHERE :since < 0
"""


class ChangeTrackedPms:
    """The stand-in PMS with emulated change tracking: each write records its version."""

    def __init__(self, url: str) -> None:
        self.db = PmsDatabase(url)
        for sql in CHANGE_TRACKING_EMULATION:
            self.db.execute(sql)
        self.version = 0

    def _track(self, reservation_id: str, operation: str) -> None:
        self.version += 1
        self.db.execute(
            "INSERT INTO ct_side VALUES (:rid, :version, :operation)",
            rid=reservation_id,
            version=self.version,
            operation=operation,
        )
        self.db.execute("UPDATE ct_state SET current_version = :v", v=self.version)

    def insert(self, reservation_id: str, **values: Any) -> None:
        self.db.insert(reservation_row(reservation_id, **values))
        self._track(reservation_id, "I")

    def update(self, reservation_id: str, **values: Any) -> None:
        self.db.update(reservation_id, **values)
        self._track(reservation_id, "U")

    def delete(self, reservation_id: str) -> None:
        self.db.delete(reservation_id)
        self._track(reservation_id, "D")

    def clean_up_to(self, version: int) -> None:
        """SQL Server's retention cleanup: changes up to `version` are forgotten."""
        self.db.execute("DELETE FROM ct_side WHERE version <= :v", v=version)
        self.db.execute("UPDATE ct_state SET min_valid = :v", v=version + 1)


@pytest.mark.postgres
@pytest.mark.parametrize("through", ["psycopg", pytest.param("odbc", marks=pytest.mark.odbc)])
def test_change_tracking_reads_changes_sees_hard_deletes_and_recovers_from_cleanup(
    through: str,
    pg_url: str,
    tmp_path: Path,
    simulator: LoopSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pms = ChangeTrackedPms(pg_url)
    pms.insert("A1", room="101")
    pms.insert("A2", room="102")
    source = {"url": pg_url} if through == "psycopg" else {"odbc_connect": pg_odbc_connect(pg_url)}
    config = loopsync_config(
        tmp_path,
        source,
        CHANGE_TRACKING_QUERY,
        simulator.base_url,
        status_map={**STATUS_MAP, "DELETED": "cancelled"},
        mode="incremental",
        change_tracking_table="dbo.Reservations",
    )
    now = datetime(2026, 12, 3, 12, 5, tzinfo=ZoneInfo("Europe/Amsterdam"))
    seen = 0

    def sent() -> list[tuple[str, str]]:
        nonlocal seen
        received = simulator.received[seen:]
        seen += len(received)
        return sorted((r.method, r.body["foreignId"]) for r in received)

    with open_syncer(config, now=lambda: now) as (syncer, store), store.lock():
        # Go-live: no stored version, so the query's full branch reads the table.
        first = syncer.sync_once(budget=timedelta(seconds=5))
        assert first.rows_read == 2
        assert sent() == [("POST", "A1"), ("POST", "A2")]
        assert decode_cursor(store.cursor() or "") == 2

        # A change and a hard delete: only those come back, the delete as DELETED.
        pms.update("A1", firstname="Zoë")
        pms.delete("A2")
        pms.insert("A3", room="103")
        second = syncer.sync_once(budget=timedelta(seconds=5))
        assert second.rows_read == 3
        assert sent() == [("DELETE", "A2"), ("POST", "A1"), ("POST", "A3")]
        assert decode_cursor(store.cursor() or "") == 5

        # Nothing changed: nothing read, nothing sent, the version stays.
        third = syncer.sync_once(budget=timedelta(seconds=5))
        assert third.rows_read == 0
        assert sent() == []

        # Retention cleanup passes the stored version: a full read, said in the log.
        pms.update("A3", room="104")
        pms.clean_up_to(6)
        caplog.clear()
        fourth = syncer.sync_once(budget=timedelta(seconds=5))
        assert fourth.rows_read == 2  # A1 and A3: the whole table
        assert sent() == [("POST", "A3")]
        assert decode_cursor(store.cursor() or "") == 6
    pms.db.dispose()
    assert (
        "the stored change tracking version 5 is older than the oldest dbo.Reservations still "
        "keeps (7): reading everything once instead of the changes"
    ) in caplog.text


@pytest.mark.postgres
def test_change_tracking_on_a_database_without_it_fails_with_the_dba_step(
    pg_url: str, tmp_path: Path, open_source: Any
) -> None:
    PmsDatabase(pg_url).dispose()
    settings = PmsSettings(
        url=pg_url,
        query_file=tmp_path / "q.sql",
        mode="incremental",
        change_tracking_table="dbo.Reservations",
    )
    (tmp_path / "q.sql").write_text(CHANGE_TRACKING_QUERY, encoding="utf-8")

    with pytest.raises(PmsError) as caught:
        read_all(open_source(settings))

    assert str(caught.value) == (
        "cannot read the change tracking versions of dbo.Reservations: function "
        "change_tracking_current_version() does not exist; pms.change_tracking_table needs "
        "SQL Server with change tracking on (see README)"
    )
