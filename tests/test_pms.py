"""Reading the PMS (DESIGN §3): real SQLite, MariaDB and PostgreSQL, natively and through ODBC."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import TEST_TOKEN
from hypothesis import given
from hypothesis import strategies as st
from pms_fixtures import (
    CANONICAL_COLUMNS,
    FULL_QUERY,
    INCREMENTAL_QUERY,
    STATUS_MAP,
    PmsDatabase,
    mariadb_odbc_connect,
    pg_odbc_connect,
    reservation_row,
    sqlite_url,
    write_query,
)
from sqlalchemy.engine import make_url

from loopsync import pms_dialects
from loopsync.config import LoadedConfig, PmsSettings, load_config
from loopsync.errors import PmsError, QueryShapeError
from loopsync.pms import (
    LOWEST_CURSOR,
    PmsSource,
    build_url,
    decode_cursor,
    describe_source,
    encode_cursor,
)
from loopsync.pms_dialects import Failure

PASSWORD = "pw-SECRET-123"
REPO = Path(__file__).resolve().parent.parent

# --- one PMS per engine -------------------------------------------------------------


@dataclass
class Pms:
    """A stand-in PMS on one engine, and how loopsync is told to reach it."""

    engine: str
    db: PmsDatabase
    source: dict[str, str]  # {"url": ...} or {"odbc_connect": ...}
    directory: Path

    @property
    def family(self) -> str:
        return self.engine.split("-")[0]

    def settings(self, sql: str, **overrides: Any) -> PmsSettings:
        return PmsSettings(**self.source, query_file=write_query(self.directory, sql), **overrides)

    def cursor(self, moment: datetime) -> object:
        """A modified_at value as this engine returns it: SQLite keeps it as ISO text."""
        if self.family == "sqlite":
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment


ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb-odbc", id="mariadb-odbc", marks=[pytest.mark.mariadb, pytest.mark.odbc]),
    pytest.param(
        "postgresql-odbc", id="postgresql-odbc", marks=[pytest.mark.postgres, pytest.mark.odbc]
    ),
]


def open_pms(engine: str, request: pytest.FixtureRequest, directory: Path) -> Pms:
    if engine == "sqlite":
        url = sqlite_url(directory)
        return Pms(engine, PmsDatabase(url), {"url": url}, directory)
    if engine.startswith("mariadb"):
        name: str = request.getfixturevalue("make_mariadb_database")()
        db = PmsDatabase(f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4")
        if engine == "mariadb":
            return Pms(engine, db, {"url": db.url}, directory)
        # The URL form, with the ODBC string inside it.
        odbc = mariadb_odbc_connect(name)
        return Pms(engine, db, {"url": f"mysql+pyodbc:///?odbc_connect={odbc}"}, directory)
    url = request.getfixturevalue("make_pg_database")()
    db = PmsDatabase(url)
    if engine == "postgresql":
        return Pms(engine, db, {"url": url}, directory)
    # The raw ODBC string, its dialect inferred from DRIVER=.
    return Pms(engine, db, {"odbc_connect": pg_odbc_connect(url)}, directory)


@pytest.fixture(params=ENGINES)
def pms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pms]:
    opened = open_pms(request.param, request, tmp_path)
    yield opened
    opened.db.dispose()


@pytest.fixture
def open_source() -> Iterator[Callable[[PmsSettings, str | None], PmsSource]]:
    """Builds sources and disposes of them after the test."""
    sources: list[PmsSource] = []

    def make(settings: PmsSettings, password: str | None = None) -> PmsSource:
        sources.append(PmsSource(settings, password))
        return sources[-1]

    yield make
    for source in sources:
        source.dispose()


def read_all(source: PmsSource, since: object | None = None) -> tuple[list[dict[str, Any]], Any]:
    with source.read(since) as result:
        rows = list(result)
        return rows, result.max_cursor


def loopsync_config(
    directory: Path,
    source: dict[str, str],
    sql: str,
    loop_url: str,
    *,
    status_map: dict[str, str] = STATUS_MAP,
    **pms: object,
) -> LoadedConfig:
    """A whole config for `open_syncer`: this PMS and query, a status map, the given Loop."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in {**source, **pms}.items()]
    statuses = ", ".join(f'{code} = "{status}"' for code, status in status_map.items())
    state_url = f"sqlite:///{directory / 'state.db'}"
    path = directory / "loopsync.toml"
    path.write_text(
        "[pms]\n"
        + "\n".join(lines)
        + f"\nquery_file = {json.dumps(str(write_query(directory, sql)))}\n"
        f"status_map = {{ {statuses} }}\n"
        'room_ready_values = ["clean"]\n'
        '[property]\ntimezone = "Europe/Amsterdam"\nphone_region = "NL"\n'
        f'[loop]\nbase_url = "{loop_url}"\nauth_token = "{TEST_TOKEN}"\nread_timeout = "2s"\n'
        f"[state]\nurl = {json.dumps(state_url)}\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return load_config(path)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


UPPER_CASE_QUERY = (
    "SELECT "
    + ", ".join(f"{column} AS {column.upper()}" for column in CANONICAL_COLUMNS)
    + " FROM reservations ORDER BY reservation_id"
)
T0 = datetime(2026, 12, 1, 12, 0)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


# --- reading on every engine --------------------------------------------------------


def test_full_read_returns_every_row_with_lower_cased_keys(pms: Pms, open_source: Any) -> None:
    pms.db.insert(
        reservation_row("R1"),
        reservation_row("R2", status="INH", room="101", room_ready="clean"),
        reservation_row("R3", custom_loyalty="3883882", departure=date(2026, 12, 9)),
    )
    source = open_source(pms.settings(UPPER_CASE_QUERY))

    with source.read() as result:
        columns = result.columns
        rows = list(result)

    # Canonical columns in lower case; a custom column keeps its key as the database
    # spells the alias (PostgreSQL folds an unquoted one to lower case, the others do not).
    custom = "custom_loyalty" if pms.engine.startswith("postgresql") else "custom_LOYALTY"
    assert columns == (*CANONICAL_COLUMNS[:-1], custom)
    assert [row["reservation_id"] for row in rows] == ["R1", "R2", "R3"]
    assert all(tuple(row) == columns for row in rows)
    assert rows[1]["status"] == "INH"
    assert rows[1]["room"] == "101"
    assert rows[2][custom] == "3883882"
    assert str(rows[2]["departure"]) == "2026-12-09"
    assert result.rows_read == 3
    assert result.max_cursor == pms.cursor(T0)


def test_incremental_read_returns_newer_rows_and_the_largest_cursor(
    pms: Pms, open_source: Any
) -> None:
    pms.db.insert(
        reservation_row("R1", modified_at=minutes(0)),
        reservation_row("R2", modified_at=minutes(10)),
        reservation_row("R3", modified_at=minutes(20)),
    )
    source = open_source(pms.settings(INCREMENTAL_QUERY, mode="incremental"))

    # First cycle: no cursor yet, so the incremental query reads everything.
    rows, newest = read_all(source, source.since_value(None))
    assert [row["reservation_id"] for row in rows] == ["R1", "R2", "R3"]
    assert newest == pms.cursor(minutes(20))
    assert [row["modified_at"] for row in rows] == [pms.cursor(minutes(m)) for m in (0, 10, 20)]
    if isinstance(newest, datetime):
        assert newest.tzinfo is None  # a naive PMS time stays naive

    stored = encode_cursor(newest)
    # A new change, and one committed late with a time inside the overlap window.
    pms.db.insert(
        reservation_row("R4", modified_at=minutes(30)),
        reservation_row("R5", modified_at=minutes(19)),
    )
    since = source.since_value(decode_cursor(stored))
    assert since == pms.cursor(minutes(18))  # default overlap: 2 minutes
    rows, newest = read_all(source, since)
    assert [row["reservation_id"] for row in rows] == ["R5", "R3", "R4"]
    assert newest == pms.cursor(minutes(30))


def test_the_overlap_reaches_back_in_the_pms_own_terms(pms: Pms, open_source: Any) -> None:
    pms.db.insert(*(reservation_row(f"R{m}", modified_at=minutes(m)) for m in (0, 5, 9, 10, 20)))
    settings = pms.settings(INCREMENTAL_QUERY, mode="incremental", overlap=timedelta(minutes=11))
    source = open_source(settings)

    rows, newest = read_all(source, source.since_value(pms.cursor(minutes(20))))

    assert [row["reservation_id"] for row in rows] == ["R9", "R10", "R20"]
    assert newest == pms.cursor(minutes(20))


def test_a_first_read_without_since_is_a_full_read(pms: Pms, open_source: Any) -> None:
    pms.db.insert(reservation_row("R1", modified_at=datetime(1999, 1, 1)), reservation_row("R2"))
    source = open_source(pms.settings(INCREMENTAL_QUERY, mode="incremental"))

    rows, newest = read_all(source, None)

    assert {row["reservation_id"] for row in rows} == {"R1", "R2"}
    assert newest == pms.cursor(T0)


NAMES = {
    "R1": ("Zoë", "Ñúñez-Øberg"),
    "R2": ("李小龙", "Ольга"),
    "R3": ("Zoe\u0308", "Ström"),  # decomposed: must come back decomposed
    "R4": ("Ana 😀", 'O\'Brien "Jr"'),
}


def test_unicode_names_arrive_byte_exact(pms: Pms, open_source: Any) -> None:
    pms.db.insert(
        *(
            reservation_row(rid, firstname=first, lastname=last)
            for rid, (first, last) in NAMES.items()
        )
    )
    source = open_source(pms.settings(FULL_QUERY))

    rows, _ = read_all(source)

    got = {row["reservation_id"]: (row["firstname"], row["lastname"]) for row in rows}
    assert got == NAMES
    for rid, (first, last) in NAMES.items():
        assert got[rid][0].encode() == first.encode()
        assert got[rid][1].encode() == last.encode()


def _write_sql(pms: Pms) -> str:
    if pms.family == "postgresql":
        # PostgreSQL streams through a cursor, which only a SELECT can feed: write from a function.
        pms.db.execute(
            "CREATE FUNCTION tamper() RETURNS integer LANGUAGE sql VOLATILE AS "
            "$$ UPDATE reservations SET status = 'HACKED'; SELECT 1 $$"
        )
        return "SELECT reservation_id, status, arrival, departure, tamper() AS t FROM reservations"
    return "UPDATE reservations SET status = 'HACKED'"


def test_a_write_through_the_source_fails_read_only(pms: Pms, open_source: Any) -> None:
    pms.db.insert(reservation_row("R1"))
    source = open_source(pms.settings(_write_sql(pms)))

    with pytest.raises(PmsError) as caught:
        read_all(source)

    message = str(caught.value)
    assert re.search(r"read[- ]?only", message, re.IGNORECASE), message
    assert message.startswith("the PMS query failed: ")
    assert "\n" not in message
    assert [row["status"] for row in pms.db.rows()] == ["RES"]


SLOW_QUERIES = {
    "sqlite": "WITH RECURSIVE c(x) AS "
    "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) "
    "SELECT 'R1' AS reservation_id, 'RES' AS status, '2026-12-03' AS arrival, "
    "'2026-12-05' AS departure, (SELECT max(x) FROM c) AS slow",
    "mariadb": "SELECT 'R1' AS reservation_id, 'RES' AS status, DATE '2026-12-03' AS arrival, "
    "DATE '2026-12-05' AS departure, SLEEP(10) AS slow",
    "postgresql": "SELECT 'R1' AS reservation_id, 'RES' AS status, DATE '2026-12-03' AS arrival, "
    "DATE '2026-12-05' AS departure, pg_sleep(10)::text AS slow",
}


def test_a_statement_timeout_cancels_a_slow_query(pms: Pms, open_source: Any) -> None:
    settings = pms.settings(SLOW_QUERIES[pms.family], statement_timeout=timedelta(seconds=1))
    source = open_source(settings)

    started = time.monotonic()
    with pytest.raises(PmsError) as caught:
        read_all(source)

    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        "the PMS query ran longer than pms.statement_timeout (1 s) and was cancelled; "
        "make the query faster or raise pms.statement_timeout"
    )


def test_a_missing_column_is_named(pms: Pms, open_source: Any) -> None:
    pms.db.insert(reservation_row("R1"))
    sql = "SELECT reservation_id, arrival, room FROM reservations"
    source = open_source(pms.settings(sql, mode="incremental"))

    with pytest.raises(QueryShapeError) as caught, source.read():
        pytest.fail("the columns are checked before the body runs")

    message = str(caught.value)
    for column in ("status", "departure", "modified_at"):
        assert column in message
    assert "'reservation_id'" not in message
    assert "'arrival'" not in message


# --- read-only and text through ODBC under LANG=C -----------------------------------

_C_LOCALE_SCRIPT = textwrap.dedent(
    """
    import json, locale, sys
    from loopsync.config import LoadedConfig, PmsSettings, load_config
    from loopsync.pms import PmsSource
    assert locale.getpreferredencoding(False).lower() in ("ascii", "ansi_x3.4-1968")
    source = PmsSource(PmsSettings.model_validate_json(sys.argv[1]), None)
    with source.read() as result:
        rows = [[row["reservation_id"], row["firstname"], row["lastname"]] for row in result]
    source.dispose()
    print(json.dumps(rows))  # ASCII-escaped: the C locale cannot print the names
    """
)


@pytest.mark.odbc
@pytest.mark.parametrize("engine", ["mariadb-odbc", "postgresql-odbc"])
def test_odbc_text_is_byte_exact_under_the_c_locale(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    pms = open_pms(engine, request, tmp_path)
    pms.db.insert(
        *(
            reservation_row(rid, firstname=first, lastname=last)
            for rid, (first, last) in NAMES.items()
        )
    )
    pms.db.dispose()
    settings = pms.settings(FULL_QUERY)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LC_ALL": "C",
        "PYTHONCOERCECLOCALE": "0",
        "PYTHONUTF8": "0",
        "PYTHONPATH": str(REPO),
    }

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _C_LOCALE_SCRIPT,
            settings.model_dump_json(include={"url", "odbc_connect", "query_file"}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    got = {rid: (first, last) for rid, first, last in json.loads(done.stdout)}
    assert got == NAMES


@pytest.mark.mariadb
@pytest.mark.odbc
def test_text_in_another_encoding_fails_loudly_instead_of_turning_into_question_marks(
    make_mariadb_database: Callable[[], str], tmp_path: Path, open_source: Any
) -> None:
    name = make_mariadb_database()
    with PmsDatabase(f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4") as db:
        db.insert(reservation_row("R1", firstname="Zoë"))
    # The driver is told to send latin1; loopsync decodes UTF-8 and must not guess.
    odbc = mariadb_odbc_connect(name) + "CHARSET=latin1;"
    settings = PmsSettings(odbc_connect=odbc, query_file=write_query(tmp_path, FULL_QUERY))

    with pytest.raises(PmsError, match="not valid in its declared encoding"):
        read_all(open_source(settings))


# --- connection failures ------------------------------------------------------------


def _unreachable_sources(port: int) -> list[tuple[dict[str, str], str | None, str]]:
    """(settings, password, the location the message must show) for a closed port."""
    return [
        (
            {"url": f"mysql+pymysql://root@127.0.0.1:{port}/x"},
            PASSWORD,
            f"mysql+pymysql://root@127.0.0.1:{port}/x",
        ),
        (
            {"url": f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:{port}/x"},
            None,
            f"mysql+pymysql://root:***@127.0.0.1:{port}/x",
        ),
        (
            {"url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"},
            PASSWORD,
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/x",
        ),
        (
            {"odbc_connect": mariadb_odbc_connect("x", port=port)},
            PASSWORD,
            f"DRIVER={{MariaDB Unicode}};SERVER=127.0.0.1;PORT={port};DATABASE=x;UID=root;PWD=***",
        ),
        (
            {
                "odbc_connect": "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;"
                f"PORT={port};DATABASE=x;UID=postgres;PWD={{{PASSWORD}}};"
            },
            None,
            f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={port};DATABASE=x;"
            "UID=postgres;PWD=***",
        ),
    ]


@pytest.mark.parametrize("case", range(5), ids=["pymysql", "in-url", "psycopg", "odbc", "pg-odbc"])
def test_an_unreachable_server_gives_one_line_without_the_password(
    case: int, tmp_path: Path, open_source: Any, caplog: pytest.LogCaptureFixture
) -> None:
    source_settings, password, where = _unreachable_sources(closed_port())[case]
    settings = PmsSettings(**source_settings, query_file=write_query(tmp_path, FULL_QUERY))
    source = open_source(settings, password)

    with pytest.raises(PmsError) as caught:
        read_all(source)

    message = str(caught.value)
    assert message.startswith(f"cannot connect to the PMS database at {where}: "), message
    key = "pms.odbc_connect" if "odbc_connect" in source_settings else "pms.url"
    assert message.endswith(f"; check {key} and that the database server is running")
    assert "\n" not in message
    assert PASSWORD not in message
    assert PASSWORD not in caplog.text
    if case in (0, 1, 2, 4):
        assert ": Connection refused;" in message


def test_the_message_matches_the_documented_example(tmp_path: Path, open_source: Any) -> None:
    port = closed_port()
    settings = PmsSettings(
        url=f"mysql+pymysql://root@127.0.0.1:{port}/x", query_file=write_query(tmp_path, "SELECT 1")
    )
    with pytest.raises(PmsError) as caught:
        read_all(open_source(settings, PASSWORD))
    assert str(caught.value) == (
        f"cannot connect to the PMS database at mysql+pymysql://root@127.0.0.1:{port}/x: "
        "Connection refused; check pms.url and that the database server is running"
    )


@pytest.mark.mariadb
@pytest.mark.parametrize("through", ["pymysql", "odbc"])
def test_a_refused_login_is_named_as_such(
    through: str, make_mariadb_database: Callable[[], str], tmp_path: Path, open_source: Any
) -> None:
    name = make_mariadb_database()
    where: dict[str, str] = (
        {"url": f"mysql+pymysql://root@127.0.0.1:3306/{name}"}
        if through == "pymysql"
        else {"odbc_connect": mariadb_odbc_connect(name)}
    )
    settings = PmsSettings(**where, query_file=write_query(tmp_path, FULL_QUERY))

    with pytest.raises(PmsError) as caught:
        read_all(open_source(settings, PASSWORD))

    message = str(caught.value)
    assert " refused the login: Access denied for user 'root'" in message
    assert message.endswith("check the user name and pms.password (or pms.password_file)")
    assert PASSWORD not in message
    assert "\n" not in message


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path, open_source: Any) -> None:
    url = sqlite_url(tmp_path, "missing.db")
    settings = PmsSettings(url=url, query_file=write_query(tmp_path, FULL_QUERY))

    with pytest.raises(PmsError) as caught:
        read_all(open_source(settings))

    assert str(caught.value) == (
        f"cannot connect to the PMS database at {url}: unable to open database file; "
        "check pms.url and that the file exists and loopsync may read it"
    )
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.odbc
def test_a_missing_odbc_driver_is_named(tmp_path: Path, open_source: Any) -> None:
    odbc = "DRIVER={MariaDB Missing};SERVER=127.0.0.1;DATABASE=x;UID=root;"
    settings = PmsSettings(odbc_connect=odbc, query_file=write_query(tmp_path, FULL_QUERY))

    with pytest.raises(PmsError) as caught:
        read_all(open_source(settings, PASSWORD))

    assert str(caught.value) == (
        "cannot load the ODBC driver for the PMS database at DRIVER={MariaDB Missing};"
        "SERVER=127.0.0.1;DATABASE=x;UID=root: Can't open lib 'MariaDB Missing' : file not "
        "found; check DRIVER= against the installed drivers (odbcinst -q -d)"
    )


# --- the query file -----------------------------------------------------------------


@pytest.fixture
def sqlite_pms(tmp_path: Path) -> Iterator[PmsDatabase]:
    with PmsDatabase(sqlite_url(tmp_path)) as db:
        db.insert(reservation_row("R1"), reservation_row("R2"))
        yield db


def test_a_missing_query_file_is_reported(tmp_path: Path, sqlite_pms: PmsDatabase) -> None:
    settings = PmsSettings(url=sqlite_pms.url, query_file=tmp_path / "nope.sql")
    with pytest.raises(PmsError) as caught:
        read_all(PmsSource(settings, None))
    assert str(caught.value) == (
        f"cannot read the PMS query file {tmp_path / 'nope.sql'}: no such file; "
        "check pms.query_file"
    )


def test_a_sql_error_names_the_query_file(
    tmp_path: Path, sqlite_pms: PmsDatabase, open_source: Any
) -> None:
    path = write_query(tmp_path, "SELECT reservation_id, FROM reservations")
    source = open_source(PmsSettings(url=sqlite_pms.url, query_file=path))
    with pytest.raises(PmsError) as caught:
        read_all(source)
    assert str(caught.value) == (
        f'the PMS query failed: near "FROM": syntax error; check pms.query_file ({path})'
    )


def test_a_bind_parameter_other_than_since_is_refused(
    tmp_path: Path, sqlite_pms: PmsDatabase, open_source: Any
) -> None:
    # A colon inside a literal such as '12:30' is not a parameter; a lone :today is.
    sql = "SELECT * FROM reservations WHERE arrival >= :today AND modified_at >= '12:30'"
    source = open_source(PmsSettings(url=sqlite_pms.url, query_file=write_query(tmp_path, sql)))
    with pytest.raises(PmsError, match=r"uses :today, but loopsync binds only :since;"):
        read_all(source)


def test_a_trailing_semicolon_and_a_full_query_without_since_work(
    tmp_path: Path, sqlite_pms: PmsDatabase, open_source: Any
) -> None:
    path = write_query(tmp_path, FULL_QUERY + " ;\n")
    rows, _ = read_all(open_source(PmsSettings(url=sqlite_pms.url, query_file=path)), "ignored")
    assert [row["reservation_id"] for row in rows] == ["R1", "R2"]


def test_a_column_returned_twice_is_refused(
    tmp_path: Path, sqlite_pms: PmsDatabase, open_source: Any
) -> None:
    sql = "SELECT reservation_id, status, STATUS, arrival, departure FROM reservations"
    source = open_source(PmsSettings(url=sqlite_pms.url, query_file=write_query(tmp_path, sql)))
    with pytest.raises(QueryShapeError, match="returns status more than once"), source.read():
        pass


def test_the_query_file_is_read_again_each_cycle(
    tmp_path: Path, sqlite_pms: PmsDatabase, open_source: Any
) -> None:
    path = write_query(tmp_path, FULL_QUERY)
    source = open_source(PmsSettings(url=sqlite_pms.url, query_file=path))
    assert len(read_all(source)[0]) == 2
    write_query(tmp_path, FULL_QUERY.replace("ORDER BY", "WHERE reservation_id = 'R2' ORDER BY"))
    assert [row["reservation_id"] for row in read_all(source)[0]] == ["R2"]


def test_the_cursor_column_is_matched_without_regard_to_case(
    tmp_path: Path, sqlite_pms: PmsDatabase, open_source: Any
) -> None:
    sqlite_pms.update("R2", modified_at=minutes(5))
    settings = PmsSettings(
        url=sqlite_pms.url,
        query_file=write_query(tmp_path, INCREMENTAL_QUERY.replace("modified_at", "Modified_At")),
        mode="incremental",
        cursor_column="MODIFIED_AT",
    )
    rows, newest = read_all(open_source(settings), None)
    assert len(rows) == 2
    assert newest == "2026-12-01 12:05:00.000000"


@pytest.mark.postgres
def test_the_engine_and_its_connection_are_reused_until_disposed(
    pg_url: str, tmp_path: Path, open_source: Any
) -> None:
    PmsDatabase(pg_url).dispose()
    sql = (
        "SELECT 'R1' AS reservation_id, 'RES' AS status, DATE '2026-12-03' AS arrival, "
        "DATE '2026-12-05' AS departure, pg_backend_pid() AS pid, "
        "current_setting('transaction_read_only') AS read_only"
    )
    source = open_source(PmsSettings(url=pg_url, query_file=write_query(tmp_path, sql)))

    first, _ = read_all(source)
    second, _ = read_all(source)
    source.dispose()
    third, _ = read_all(source)

    assert first[0]["pid"] == second[0]["pid"] != third[0]["pid"]
    assert first[0]["read_only"] == "on"


# --- bounded memory -----------------------------------------------------------------

ROWS = 200_000
SAMPLE = 5_000


def _peak_while_streaming(source: PmsSource) -> tuple[int, int]:
    """(rows read, peak traced bytes) while streaming; a sample of rows is kept to size them."""
    tracemalloc.start()
    try:
        with source.read() as result:
            count = sum(1 for _row in result)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def _size_of_all_rows(source: PmsSource) -> int:
    """The traced size of SAMPLE rows held at once, scaled up to ROWS."""
    tracemalloc.start()
    try:
        with source.read() as result:
            kept = [row for _, row in zip(range(SAMPLE), result, strict=False)]
            held, _ = tracemalloc.get_traced_memory()
        del kept
    finally:
        tracemalloc.stop()
    return held * (ROWS // SAMPLE)


def _assert_bounded(source: PmsSource) -> None:
    count, peak = _peak_while_streaming(source)
    everything = _size_of_all_rows(source)
    assert count == ROWS
    assert everything > 50_000_000  # the rows would be tens of megabytes held at once
    assert peak < 16_000_000, (peak, everything)
    assert peak < everything / 5, (peak, everything)


def test_sqlite_rows_stream_with_bounded_memory(tmp_path: Path, open_source: Any) -> None:
    with PmsDatabase(sqlite_url(tmp_path)) as db:
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
            "INSERT INTO reservations (reservation_id, status, arrival, departure, firstname, "
            "lastname, email, modified_at) SELECT 'R' || i, 'RES', '2026-12-03', '2026-12-05', "
            "'First' || i, 'Last' || i, 'guest' || i || '@example.com', "
            "'2026-12-01 12:00:00.000000' FROM n",
            rows=ROWS,
        )
    settings = PmsSettings(
        url=sqlite_url(tmp_path), query_file=write_query(tmp_path, FULL_QUERY), fetch_size=500
    )
    _assert_bounded(open_source(settings))


@pytest.mark.postgres
def test_postgresql_rows_stream_with_bounded_memory(
    pg_url: str, tmp_path: Path, open_source: Any
) -> None:
    sql = (
        "SELECT 'R' || i AS reservation_id, 'RES' AS status, DATE '2026-12-03' AS arrival, "
        "DATE '2026-12-05' AS departure, 'First' || i AS firstname, 'Last' || i AS lastname, "
        f"'guest' || i || '@example.com' AS email FROM generate_series(1, {ROWS}) AS i"
    )
    settings = PmsSettings(url=pg_url, query_file=write_query(tmp_path, sql), fetch_size=500)
    _assert_bounded(open_source(settings))


# --- cursors ------------------------------------------------------------------------

cursor_values = st.one_of(
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
    st.datetimes(timezones=st.just(timezone(timedelta(hours=-3, minutes=-30)))),
    st.dates(),
    st.integers(),
    st.decimals(allow_nan=False),
    st.binary(max_size=16),
    st.text(),
    st.floats(allow_nan=False),
)


@given(cursor_values)
def test_cursors_survive_the_state_store(value: object) -> None:
    text = encode_cursor(value)
    back = decode_cursor(text)
    assert type(back) is type(value)
    if isinstance(value, datetime):
        assert isinstance(back, datetime)
        # Same wall time, offset, fold and zone: equality alone ignores some of these.
        assert back.isoformat() == value.isoformat()
        assert back.fold == value.fold
        assert back.tzinfo == value.tzinfo or back.utcoffset() == value.utcoffset()
    elif isinstance(value, Decimal):
        assert isinstance(back, Decimal)
        assert str(back) == str(value)
    else:
        assert back == value
    assert encode_cursor(back) == text


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (datetime(2026, 12, 3, 14, 0, 0, 123456), '{"t":"dt","v":"2026-12-03T14:00:00.123456"}'),
        (
            datetime(2026, 12, 3, 14, 0, tzinfo=ZoneInfo("Europe/Amsterdam")),
            '{"t":"dt","v":"2026-12-03T14:00:00+01:00","z":"Europe/Amsterdam"}',
        ),
        (b"\x00\x00\x00\x00\x00\x01\xe2\x40", '{"t":"bytes","v":"000000000001e240"}'),
        (123, '{"t":"int","v":"123"}'),
        ("2026-12-03 14:00:00.000000", '{"t":"str","v":"2026-12-03 14:00:00.000000"}'),
    ],
)
def test_cursor_encoding_is_small_tagged_json(value: object, encoded: str) -> None:
    assert encode_cursor(value) == encoded
    assert decode_cursor(encoded) == value


def test_a_cursor_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(TypeError):
        encode_cursor(True)
    with pytest.raises(TypeError):
        encode_cursor(object())
    with pytest.raises(ValueError, match="not a stored PMS cursor"):
        decode_cursor('{"t":"nope","v":1}')
    with pytest.raises(ValueError, match="not a stored PMS cursor"):
        decode_cursor("2026-12-03")


def _source(**settings: Any) -> PmsSource:
    return PmsSource(PmsSettings(url="sqlite:///unused.db", **settings), None)


@pytest.mark.parametrize("cursor_type", ["datetime", "rowversion", "integer"])
def test_without_a_cursor_since_is_the_lowest_value_of_its_type(cursor_type: str) -> None:
    value = _source(cursor_type=cursor_type).since_value(None)
    assert value == LOWEST_CURSOR[cursor_type]
    assert LOWEST_CURSOR["datetime"] == datetime(1900, 1, 1)
    assert LOWEST_CURSOR["rowversion"] == b"\x00" * 8


@pytest.mark.parametrize(
    ("stored", "since"),
    [
        (datetime(2026, 12, 3, 14, 0), datetime(2026, 12, 3, 13, 58)),
        (
            datetime(2026, 12, 3, 14, 0, tzinfo=UTC),
            datetime(2026, 12, 3, 13, 58, tzinfo=UTC),
        ),
        ("2026-12-03 14:00:00.000000", "2026-12-03 13:58:00.000000"),
        ("2026-12-03T14:00:00", "2026-12-03T13:58:00"),
        ("2026-12-03T14:00:00.5Z", "2026-12-03T13:58:00.500Z"),
        ("2026-12-03 00:01", "2026-12-02 23:59"),
        (date(2026, 12, 3), date(2026, 12, 2)),
        ("2026-12-03", "2026-12-02"),
        ("not a time", "not a time"),
        (datetime.min, datetime.min),
    ],
)
def test_since_moves_back_by_the_overlap_in_the_pms_own_terms(
    stored: object, since: object
) -> None:
    value = _source().since_value(stored)
    assert value == since
    assert type(value) is type(since)
    if isinstance(value, datetime) and isinstance(stored, datetime):
        assert value.tzinfo is stored.tzinfo


@pytest.mark.parametrize(
    ("cursor_type", "stored"), [("rowversion", b"\x00\x00\x00\x00\x00\x01\xe2\x40"), ("integer", 7)]
)
def test_rowversion_and_integer_cursors_bind_as_stored(cursor_type: str, stored: object) -> None:
    assert _source(cursor_type=cursor_type).since_value(stored) == stored


# --- what the SQL Server and Oracle paths would do (not runnable here) --------------


@pytest.mark.parametrize(
    ("driver", "backend"),
    [
        ("ODBC Driver 18 for SQL Server", "mssql"),
        ("FreeTDS", "mssql"),
        ("MariaDB Unicode", "mysql"),
        ("MySQL ODBC 8.0 Unicode Driver", "mysql"),
        ("PostgreSQL Unicode", "postgresql"),
    ],
)
def test_the_dialect_is_inferred_from_the_odbc_driver(driver: str, backend: str) -> None:
    settings = PmsSettings(odbc_connect=f"DRIVER={{{driver}}};SERVER=h;UID=u")
    url = build_url(settings, PASSWORD)
    assert url.drivername == f"{backend}+pyodbc"
    odbc = url.query["odbc_connect"]
    assert isinstance(odbc, str)
    assert odbc.endswith(f";PWD={PASSWORD};")


def test_an_odbc_driver_loopsync_does_not_know_asks_for_a_url() -> None:
    with pytest.raises(PmsError, match=r"DRIVER=\{Acme DB\}.*set pms.url instead"):
        build_url(PmsSettings(odbc_connect="DRIVER={Acme DB};SERVER=h"), None)
    with pytest.raises(PmsError, match="no DRIVER="):
        build_url(PmsSettings(odbc_connect="DSN=pms"), None)


def test_the_odbc_password_replaces_one_in_the_string_and_is_escaped() -> None:
    settings = PmsSettings(odbc_connect="Driver={FreeTDS};Server=h;PWD={old;pw};UID=u")
    odbc = build_url(settings, "p}w;d").query["odbc_connect"]
    assert odbc == "Driver={FreeTDS};Server=h;UID=u;PWD={p}}w;d};"
    assert pms_dialects.odbc_get(pms_dialects.parse_odbc(str(odbc)), "pwd") == "p}w;d"
    assert describe_source(settings) == "Driver={FreeTDS};Server=h;PWD=***;UID=u"


def test_odbc_strings_get_utf8_for_mariadb_and_streaming_for_psqlodbc() -> None:
    maria = pms_dialects.prepare_odbc("DRIVER={MariaDB Unicode};SERVER=h", "mysql", None, 500)
    assert maria == "DRIVER={MariaDB Unicode};SERVER=h;CHARSET=utf8mb4;"
    pg = pms_dialects.prepare_odbc("DRIVER={PostgreSQL Unicode};Fetch=50", "postgresql", "", 500)
    assert pg == "DRIVER={PostgreSQL Unicode};Fetch=50;UseDeclareFetch=1;"


def test_mssql_url_gets_the_password_and_a_login_timeout() -> None:
    settings = PmsSettings(
        url="mssql+pyodbc://pms@db.hotel.lan/opera?driver=ODBC+Driver+18+for+SQL+Server",
        connect_timeout=timedelta(seconds=7.5),
    )
    url = build_url(settings, PASSWORD)
    assert url.password == PASSWORD
    assert url.drivername == "mssql+pyodbc"
    assert pms_dialects.connect_args(url, settings.connect_timeout) == {"timeout": 8}
    assert describe_source(settings) == settings.url
    setup = pms_dialects.session_setup("mssql", timedelta(seconds=60))
    assert setup.statements == ("SET LOCK_TIMEOUT 60000",)
    assert setup.attributes == (("timeout", 60),)
    assert not setup.read_only
    assert setup.per_read == ()


def test_oracle_reads_in_read_only_transactions_with_a_call_timeout() -> None:
    url = build_url(PmsSettings(url="oracle+oracledb://pms@db:1521/?service_name=PMS"), "x")
    assert pms_dialects.connect_args(url, timedelta(seconds=15)) == {"tcp_connect_timeout": 15.0}
    setup = pms_dialects.session_setup("oracle", timedelta(seconds=60))
    assert setup.per_read == ("SET TRANSACTION READ ONLY",)
    assert setup.attributes == (("call_timeout", 60000),)


@pytest.mark.parametrize(
    ("backend", "version", "statements"),
    [
        (
            "mysql",
            "10.11.19-MariaDB-0+deb12u1",
            ("SET SESSION TRANSACTION READ ONLY", "SET SESSION max_statement_time = 1.5"),
        ),
        (
            "mysql",
            "8.0.36",
            ("SET SESSION TRANSACTION READ ONLY", "SET SESSION max_execution_time = 1500"),
        ),
        (
            "postgresql",
            "",
            ("SET default_transaction_read_only = on", "SET statement_timeout = 1500"),
        ),
        ("sqlite", "", ("PRAGMA query_only = ON",)),
    ],
)
def test_session_settings_per_engine(backend: str, version: str, statements: tuple[str]) -> None:
    setup = pms_dialects.session_setup(backend, timedelta(seconds=1.5), version)
    assert setup.statements == statements
    assert setup.read_only


@pytest.mark.parametrize(
    ("backend", "unlimited"),
    [
        ("postgresql", "SET statement_timeout = 0"),
        ("mysql", "SET SESSION max_statement_time = 0"),
        ("mssql", "SET LOCK_TIMEOUT -1"),
    ],
)
def test_a_zero_statement_timeout_means_no_limit(backend: str, unlimited: str) -> None:
    setup = pms_dialects.session_setup(backend, timedelta(0), "10.11.19-MariaDB")
    assert unlimited in setup.statements
    assert all(value == 0 for _, value in setup.attributes)


def test_connect_timeouts_per_driver() -> None:
    ten = timedelta(seconds=10)
    args = {
        "mysql+pymysql://u@h/d": {"connect_timeout": 10},
        "postgresql+psycopg://u@h/d": {"connect_timeout": 10},
        "postgresql+psycopg://u@h/d?connect_timeout=3": {},
        "mysql+pyodbc://u@dsn": {"timeout": 10},
        "sqlite:///x.db": {"timeout": 10.0},
    }
    for text, expected in args.items():
        assert pms_dialects.connect_args(make_url(text), ten) == expected, text


def test_a_sqlite_pms_is_opened_read_only(tmp_path: Path) -> None:
    url = build_url(PmsSettings(url=f"sqlite:///{tmp_path}/my pms.db"), None)
    assert url.database == f"file:{tmp_path}/my%20pms.db"
    assert url.query == {"mode": "ro", "uri": "true"}


def test_secrets_in_url_queries_are_not_described() -> None:
    settings = PmsSettings(url=f"postgresql+psycopg://u@h/d?password={PASSWORD}&sslmode=require")
    assert describe_source(settings) == "postgresql+psycopg://u@h/d?sslmode=require"


@pytest.mark.parametrize(
    ("args", "failure"),
    [
        (
            (
                "HYT00",
                "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (0) "
                "(SQLExecDirectW)",
            ),
            Failure.TIMEOUT,
        ),
        (
            (
                "28000",
                "[28000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for "
                "user 'pms'. (18456) (SQLDriverConnect)",
            ),
            Failure.LOGIN,
        ),
        (("ORA-01017: invalid username/password; logon denied",), Failure.LOGIN),
        (("DPI-1067: call timeout of 60000 ms exceeded with ORA-3156",), Failure.TIMEOUT),
        (
            (3024, "Query execution was interrupted, maximum statement execution time exceeded"),
            Failure.TIMEOUT,
        ),
        (("42S02", "[42S02] Invalid object name 'RESV'. (208) (SQLExecDirectW)"), Failure.OTHER),
    ],
)
def test_driver_errors_are_classified(args: tuple[Any, ...], failure: Failure) -> None:
    assert pms_dialects.classify(Exception(*args)) is failure


@pytest.mark.parametrize(
    ("args", "lost"),
    [
        # As the drivers here said it when tests/tcp_proxy.py cut their connections:
        (
            (
                "08S01",
                "[08S01] [ma-3.1.15][10.11.19-MariaDB-0+deb12u1]Server has gone away (2006) "
                "(SQLExecDirectW)",
            ),
            True,
        ),
        (("08003", "[08003] [ma-3.1.15]Connection not open (0) (SQLAllocHandle)"), True),
        (
            (
                "08S01",
                "[08S01] SQLExecDirectW unable due to the connection lost (35) (SQLExecDirectW)",
            ),
            True,
        ),
        (("consuming input failed: server closed the connection unexpectedly",), True),
        ((2013, "Lost connection to MySQL server during query"), True),
        # SQL Server's drivers, as documented:
        (
            (
                "08S01",
                "[08S01] [Microsoft][ODBC Driver 18 for SQL Server]Communication link failure "
                "(0) (SQLExecDirectW)",
            ),
            True,
        ),
        # A new connection that could not be made is not a lost one.
        (("08001", "[08001] [ma-3.1.15]Can't connect to server on '127.0.0.1' (111)"), False),
        (("42S02", "[42S02] Invalid object name 'RESV'. (208) (SQLExecDirectW)"), False),
        (("HYT00", "[HYT00] Query timeout expired (0) (SQLExecDirectW)"), False),
    ],
)
def test_lost_connections_are_recognised_for_every_driver(
    args: tuple[Any, ...], lost: bool
) -> None:
    assert pms_dialects.is_disconnect(Exception(*args)) is lost


@pytest.mark.parametrize(
    "args",
    [
        ('invalid byte sequence for encoding "UTF8": 0xeb',),
        (
            "HY000",
            "[HY000] [ma-3.1.15][10.11.19-MariaDB-0+deb12u1]Ansi to Unicode conversion error "
            "occurred (84) (SQLGetData)",
        ),
        ("22021", '[22021] ERROR: invalid byte sequence for encoding "UTF8": 0xeb; (1)'),
    ],
)
def test_text_that_cannot_be_converted_is_its_own_failure(args: tuple[Any, ...]) -> None:
    assert pms_dialects.classify(Exception(*args)) is Failure.ENCODING


def test_driver_messages_lose_their_odbc_prefixes() -> None:
    error = Exception(
        "42S02",
        "[42S02] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Invalid object name "
        "'RESV'. (208) (SQLExecDirectW)",
    )
    assert pms_dialects.driver_message(error) == "Invalid object name 'RESV'."


def test_sqlalchemy_knows_the_postgresql_odbc_dialect() -> None:
    engine = sa.create_engine(
        "postgresql+pyodbc:///?odbc_connect=DRIVER%3D%7BPostgreSQL+Unicode%7D"
    )
    assert isinstance(engine.dialect, pms_dialects.PGDialect_pyodbc)
    engine.dispose()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT a -- rows changed since :since\nFROM t WHERE m >= :since",
            "SELECT a \nFROM t WHERE m >= :since",
        ),
        ("SELECT /* :since */ a FROM t", "SELECT   a FROM t"),
        (
            "SELECT '--not a comment', \"/*x*/\" FROM t",
            "SELECT '--not a comment', \"/*x*/\" FROM t",
        ),
        ("SELECT 'it''s -- fine' FROM [a--b]", "SELECT 'it''s -- fine' FROM [a--b]"),
        ("SELECT 1 /* never closed", "SELECT 1  "),
    ],
)
def test_comments_are_removed_outside_quotes(sql: str, expected: str) -> None:
    assert pms_dialects.strip_sql_comments(sql) == expected


def test_since_in_a_comment_is_not_a_second_parameter(tmp_path: Path) -> None:
    with PmsDatabase(sqlite_url(tmp_path)) as db:
        db.insert(reservation_row("R1", modified_at=datetime(2026, 12, 1, 12, 0)))
    query = write_query(
        tmp_path, "-- rows changed since :since\n" + INCREMENTAL_QUERY + "  /* :since again */"
    )
    settings = PmsSettings(
        url=sqlite_url(tmp_path),
        query_file=query,
        mode="incremental",
        status_map={"RES": "reserved"},
    )
    source = PmsSource(settings, None)
    with source.read(None) as result:
        assert [row["reservation_id"] for row in result] == ["R1"]
    source.dispose()


def test_a_silent_network_ends_a_read_instead_of_hanging() -> None:
    mysql = make_url("mysql+pymysql://u@h/db")
    assert pms_dialects.network_timeouts(mysql, timedelta(seconds=60)) == {
        "read_timeout": 90,
        "write_timeout": 90,
    }
    pg = pms_dialects.network_timeouts(
        make_url("postgresql+psycopg://u@h/db"), timedelta(seconds=10)
    )
    assert pg["tcp_user_timeout"] == 40_000
    assert pg["keepalives"] == 1
    assert pms_dialects.network_timeouts(mysql, timedelta(0)) == {}
    assert pms_dialects.network_timeouts(
        make_url("mysql+pymysql://u@h/db?read_timeout=5"), timedelta(seconds=60)
    ) == {"write_timeout": 90}
    assert pms_dialects.network_timeouts(make_url("sqlite:///x.db"), timedelta(seconds=60)) == {}


def test_custom_columns_keep_the_case_of_their_key(tmp_path: Path) -> None:
    with PmsDatabase(sqlite_url(tmp_path)) as db:
        db.insert(reservation_row("R1"))
    query = write_query(
        tmp_path,
        "SELECT reservation_id AS RESERVATION_ID, status, arrival, departure, 'g1' AS CUSTOM_guestID FROM reservations",
    )
    settings = PmsSettings(
        url=sqlite_url(tmp_path), query_file=query, status_map={"RES": "reserved"}
    )
    source = PmsSource(settings, None)
    with source.read(None) as result:
        assert result.columns == (
            "reservation_id",
            "status",
            "arrival",
            "departure",
            "custom_guestID",
        )
        assert [row["custom_guestID"] for row in result] == ["g1"]
    source.dispose()
