"""PMS presets: the config merge, SQL checked for its dialect, and days at a hotel for real.

`generic` runs on SQLite, MariaDB and PostgreSQL (its reference view over an example
schema), `oca-pms` on PostgreSQL (a small schema built from the module's fields); both
go through the real pipeline to the Loop simulator. `opera` and `protel` cannot run here:
their SQL is parsed with sqlglot for Oracle / T-SQL and every column it uses is checked
against the tables and columns their READMEs list.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import sqlglot
from conftest import TEST_TOKEN
from sqlalchemy.dialects import mysql
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from loopsync.app import open_syncer
from loopsync.config import PmsSettings, load_config, require
from loopsync.errors import ConfigError
from loopsync.model import Status
from loopsync.pms import decode_cursor
from loopsync.presets import PRESETS_DIR, backend_of, load_preset, preset_names
from loopsync.simulator import LoopSimulator

REPO = Path(__file__).parent.parent
ZONE = ZoneInfo("Europe/Amsterdam")
# The SQL windows use the database's own clock, so the stays are placed around today.
TODAY = date.today()
LOCATION_ID = "529652b0121d5fa206011a79"


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def local(hour: int, minute: int = 0, offset: int = 0) -> datetime:
    """A naive local wall-clock time, as a PMS stores it."""
    return datetime.combine(day(offset), time(hour, minute))


def aware(hour: int, minute: int = 0, offset: int = 0) -> datetime:
    return local(hour, minute, offset).replace(tzinfo=ZONE)


def loop_time(moment: datetime) -> str:
    """How Loop receives a local time: UTC, milliseconds, `Z`."""
    return moment.replace(tzinfo=ZONE).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loopsync.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


# --- the folders ----------------------------------------------------------------------


def test_the_presets_are_there_with_their_files():
    assert preset_names() == ["generic", "oca-pms", "opera", "protel"]
    assert (REPO / "config" / "presets").resolve() == PRESETS_DIR.resolve()
    for name in preset_names():
        preset = load_preset(name)
        readme = (preset.directory / "README.md").read_text(encoding="utf-8")
        assert readme.startswith(f"# Preset `{name}`")
        for heading in ("## What it reads", "## Known limits", "## Grants"):
            assert heading in readme, (name, heading)
        # Every default is a valid pms setting, and the query exists for each engine.
        PmsSettings.model_validate(preset.pms_defaults)
        for engine in preset.engines:
            query = preset.query_file(engine)
            assert query is not None, (name, engine)
            assert query.is_file(), (name, engine)
    for name in ("opera", "protel"):
        text = " ".join((PRESETS_DIR / name / "README.md").read_text().split()).lower()
        assert "not yet tried on a live system" in text
    for engine in ("sqlite", "mysql", "postgresql"):
        assert (PRESETS_DIR / "generic" / f"view.{engine}.sql").is_file()


@pytest.mark.parametrize(
    ("url", "odbc_connect", "backend"),
    [
        ("sqlite:////var/lib/pms.db", None, "sqlite"),
        ("mysql+pymysql://u@h/pms", None, "mysql"),
        ("mariadb+pymysql://u@h/pms", None, "mysql"),
        ("postgresql+psycopg://u@h/pms", None, "postgresql"),
        ("mssql+pyodbc://u@h/pms?driver=ODBC+Driver+18+for+SQL+Server", None, "mssql"),
        ("oracle+oracledb://u@h/pms", None, "oracle"),
        (None, "DRIVER={MariaDB Unicode};SERVER=h;DATABASE=pms", "mysql"),
        (None, "DRIVER={ODBC Driver 18 for SQL Server};SERVER=h", "mssql"),
        (None, "DRIVER={Something Else};SERVER=h", None),
        ("not a url", None, None),
        (None, None, None),
    ],
)
def test_backend_of_the_pms_settings(
    url: str | None, odbc_connect: str | None, backend: str | None
):
    assert backend_of(url, odbc_connect) == backend


# --- the config merge -----------------------------------------------------------------


def test_a_preset_supplies_the_pms_defaults_and_the_query_for_the_engine(tmp_path: Path):
    for url, query in [
        ("sqlite:////tmp/pms.db", "query.sqlite.sql"),
        ("mariadb+pymysql://u@h/pms", "query.mysql.sql"),
        ("postgresql+psycopg://u@h/pms", "query.postgresql.sql"),
    ]:
        path = write_config(tmp_path, f'[pms]\npreset = "generic"\nurl = "{url}"\n')
        pms = load_config(path).settings.pms
        assert pms.query_file == PRESETS_DIR / "generic" / query
        assert pms.mode == "incremental"
        assert pms.cursor_column == "modified_at"
        assert pms.status_map["checked_in"] is Status.CHECKED_IN
        assert pms.room_ready_values == ["1", "true"]

    path = write_config(
        tmp_path,
        '[pms]\npreset = "opera"\nurl = "oracle+oracledb://u@h/opera"\n'
        '[property]\nlocation_map = { HOTEL1 = "abc" }\n',
    )
    pms = load_config(path).settings.pms
    assert pms.query_file == PRESETS_DIR / "opera" / "query.sql"
    assert pms.status_map["CHECKED IN"] is Status.CHECKED_IN
    assert pms.room_ready_values == ["CL", "IP"]


def test_the_operators_own_keys_win_and_a_query_file_replaces_only_the_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write_config(
        tmp_path,
        """
[pms]
preset = "oca-pms"
url = "postgresql+psycopg://u@h/odoo"
query_file = "mine.sql"
room_ready_values = ["clean", "to_inspect"]
""",
    )
    monkeypatch.setenv("LOOPSYNC_PMS__OVERLAP", "5m")
    monkeypatch.setenv("LOOPSYNC_PMS__MODE", "full")
    (tmp_path / "mine.sql").write_text("SELECT 1")
    pms = load_config(path).settings.pms
    assert pms.query_file == tmp_path / "mine.sql"  # relative to the config file
    assert pms.room_ready_values == ["clean", "to_inspect"]
    assert pms.mode == "full"
    assert pms.overlap == timedelta(minutes=5)
    # What the operator did not write still comes from the preset.
    assert pms.cursor_column == "modified_at"
    assert pms.status_map["noshow"] is Status.NO_SHOW
    # A status map of one's own replaces the preset's whole.
    path.write_text(
        '[pms]\npreset = "oca-pms"\nquery_file = "mine.sql"\nstatus_map = { open = "reserved" }\n'
    )
    assert load_config(path).settings.pms.status_map == {"open": Status.RESERVED}


def test_the_example_config_with_a_preset_line_gets_the_presets_values(tmp_path: Path):
    """An installer copies the example config and adds one line: nothing in it may override the preset."""
    text = (REPO / "config" / "loopsync.example.toml").read_text(encoding="utf-8")
    assert '# preset = "opera"' in text
    text = text.replace(
        '# preset = "opera"', 'preset = "oca-pms"\nurl = "postgresql+psycopg://u@h/odoo"'
    )
    text = text.replace("location_map = {}", 'location_map = { "1" = "abc" }')
    pms = load_config(write_config(tmp_path, text)).settings.pms
    assert pms.mode == "incremental"
    assert (
        pms.status_map == PmsSettings.model_validate(load_preset("oca-pms").pms_defaults).status_map
    )
    assert pms.room_ready_values == ["clean"]
    assert pms.query_file == PRESETS_DIR / "oca-pms" / "query.sql"


def test_the_preset_can_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOOPSYNC_PMS__PRESET", "protel")
    monkeypatch.setenv("LOOPSYNC_PMS__URL", "mssql+pyodbc://u@h/protel?driver=FreeTDS")
    pms = load_config(write_config(tmp_path, "")).settings.pms
    assert pms.query_file == PRESETS_DIR / "protel" / "query.sql"
    assert pms.mode == "full"
    assert pms.status_map["in-house"] is Status.CHECKED_IN


def test_preset_problems_are_config_errors_named_by_key(tmp_path: Path):
    path = write_config(tmp_path, '[pms]\npreset = "fidelio"\nmode = "often"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: pms.preset: 'fidelio' is not a built-in preset; "
        "use one of: generic, oca-pms, opera, protel",
        f"{path}: pms.mode: Input should be 'incremental' or 'full'",
    ]

    path = write_config(tmp_path, '[pms]\npreset = "opera"\nurl = "sqlite:////tmp/pms.db"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: pms.preset: the opera preset's query is written for oracle, but the PMS "
        "database is sqlite; pick another preset, or write your own pms.query_file",
        f"{path}: property.location_map: required by the opera preset, which returns "
        "RESERVATION_NAME.RESORT as each stay's location; map every code to its Loop "
        'locationId, e.g. location_map = { "1" = "529652b0121d5fa206011a79" }',
    ]

    # With a query of one's own, neither the engine nor the location codes are the preset's.
    own = tmp_path / "q.sql"
    own.write_text("SELECT 1")
    path = write_config(
        tmp_path,
        f'[pms]\npreset = "opera"\nurl = "sqlite:////tmp/pms.db"\nquery_file = "{own}"\n',
    )
    assert load_config(path).settings.pms.status_map["NO SHOW"] is Status.NO_SHOW

    # generic picks its query by engine: without a URL there is none to pick.
    config = load_config(write_config(tmp_path, '[pms]\npreset = "generic"\n'))
    with pytest.raises(ConfigError) as caught:
        require(config, pms=True)
    assert caught.value.problems == [
        f"{path}: pms.url: required; set the PMS database URL (see README)",
        f"{path}: pms.query_file: the generic preset picks its query by the engine pms.url "
        "points at; set pms.url, or point pms.query_file at your SQL",
    ]


def test_a_broken_preset_folder_is_a_config_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    broken = tmp_path / "presets" / "broken"
    broken.mkdir(parents=True)
    (broken / "preset.toml").write_text("[preset\n", encoding="utf-8")
    monkeypatch.setattr("loopsync.presets.PRESETS_DIR", tmp_path / "presets")
    path = write_config(tmp_path, '[pms]\npreset = "broken"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: pms.preset: the broken preset's preset.toml cannot be read")


# --- the SQL of the presets that cannot run here ----------------------------------------


def _columns(names: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), "VARCHAR")


# The tables and columns each README lists under "What it reads", no more.
OPERA_SCHEMA = {
    "OPERA": {
        "RESERVATION_NAME": _columns(
            "RESV_NAME_ID NAME_ID RESORT CONFIRMATION_NO RESV_STATUS BEGIN_DATE END_DATE "
            "ACTUAL_CHECK_IN_DATE ACTUAL_CHECK_OUT_DATE CANCELLATION_DATE UPDATE_DATE "
            "GUEST_FIRST_NAME GUEST_LAST_NAME NAME_USAGE_TYPE"
        ),
        "NAME": _columns("NAME_ID FIRST LAST LANGUAGE VIP_STATUS"),
        "NAME_PHONE": _columns("PHONE_ID NAME_ID PHONE_ROLE PHONE_NUMBER PRIMARY_YN INACTIVE_DATE"),
        "RESERVATION_DAILY_ELEMENT_NAME": _columns(
            "RESORT RESV_NAME_ID RESERVATION_DATE RESV_DAILY_EL_SEQ"
        ),
        "RESERVATION_DAILY_ELEMENTS": _columns("RESORT RESERVATION_DATE RESV_DAILY_EL_SEQ ROOM"),
        "ROOM": _columns("RESORT ROOM ROOM_STATUS FO_STATUS"),
    }
}
PROTEL_SCHEMA = {
    "proteluser": {
        "buch": _columns("buchnr kundennr zimmernr datumvon datumbis gruppennr buchstatus reschar"),
        "kunden": _columns("kdnr name1 vorname email telefonnr funktel sprache vip changed"),
        "zimmer": _columns("zinr ziname"),
        "zistat": _columns("zinr status"),
    }
}
CANONICAL = (
    "reservation_id status room arrival departure title firstname lastname email mobile "
    "language vip group_name area room_ready checked_in_at checked_out_at modified_at location"
)
VIEW_SCHEMA = {"loopsync_reservations": _columns(CANONICAL)}


@dataclass(frozen=True)
class ParsedQuery:
    columns: list[str]
    binds: set[str]
    tree: exp.Expression


def parse_query(path: Path, dialect: str, schema: dict[str, Any]) -> ParsedQuery:
    """Parse for `dialect`, raising on any error, and resolve every column against `schema`."""
    tree = sqlglot.parse_one(
        path.read_text(encoding="utf-8"), read=dialect, error_level=sqlglot.ErrorLevel.RAISE
    )
    qualified = qualify(tree, schema=schema, dialect=dialect, validate_qualify_columns=True)
    assert isinstance(qualified, exp.Select)
    return ParsedQuery(
        columns=[select.alias_or_name.lower() for select in qualified.selects],
        binds={str(node.this) for node in qualified.find_all(exp.Placeholder)},
        tree=qualified,
    )


def test_the_opera_query_parses_as_oracle_and_reads_only_the_documented_columns():
    parsed = parse_query(PRESETS_DIR / "opera" / "query.sql", "oracle", OPERA_SCHEMA)
    assert parsed.columns == [
        "reservation_id", "status", "room", "arrival", "departure", "firstname", "lastname",
        "email", "mobile", "language", "vip", "room_ready", "checked_in_at", "checked_out_at",
        "modified_at", "location",
    ]  # fmt: skip
    assert parsed.binds == {"since"}
    preset = load_preset("opera")
    assert preset.pms_defaults["mode"] == "incremental"
    # Every documented RESV_STATUS is read, and mapped.
    documented = {"RESERVED", "CHECKED IN", "CHECKED OUT", "CANCELLED", "NO SHOW"}
    read = next(
        {literal.this for literal in node.expressions}
        for node in parsed.tree.find_all(exp.In)
        if isinstance(node.this, exp.Column) and node.this.name == "RESV_STATUS"
    )
    assert read == documented
    settings = PmsSettings.model_validate(preset.pms_defaults)
    assert set(settings.status_map) == documented
    assert settings.status_map["NO SHOW"] is Status.NO_SHOW


def test_the_protel_query_parses_as_tsql_and_reads_only_the_documented_columns():
    parsed = parse_query(PRESETS_DIR / "protel" / "query.sql", "tsql", PROTEL_SCHEMA)
    assert parsed.columns == [
        "reservation_id", "status", "room", "arrival", "departure", "firstname", "lastname",
        "email", "mobile", "language", "vip", "group_name", "room_ready",
    ]  # fmt: skip
    # Full reads: there is no change time for a booking to bind :since against.
    assert parsed.binds == set()
    assert load_preset("protel").pms_defaults["mode"] == "full"


def test_protel_status_codes_reschar_overrides_buchstatus():
    """Run the query's own CASE (transpiled to SQLite) over every documented combination."""
    parsed = parse_query(PRESETS_DIR / "protel" / "query.sql", "tsql", PROTEL_SCHEMA)
    status = next(s for s in parsed.tree.selects if s.alias_or_name == "status").this
    case_sql = status.sql(dialect="sqlite")
    status_map = PmsSettings.model_validate(load_preset("protel").pms_defaults).status_map
    expected = {
        (0, 0): Status.RESERVED,
        (0, 1): Status.CHECKED_IN,
        (0, 2): Status.CHECKED_OUT,
        (2, 1): Status.CANCELLED,
        (3, 0): Status.NO_SHOW,
    }
    database = sqlite3.connect(":memory:")
    # T-SQL's CONCAT: NULL reads as ''.
    database.create_function(
        "CONCAT", -1, lambda *parts: "".join("" if part is None else str(part) for part in parts)
    )
    database.execute("CREATE TABLE buch (reschar INTEGER, buchstatus INTEGER)")
    combinations = [(reschar, buchstatus) for reschar in range(4) for buchstatus in range(3)]
    database.executemany("INSERT INTO buch VALUES (?, ?)", [*combinations, (4, 0)])
    rows = database.execute(f'SELECT reschar, buchstatus, {case_sql} FROM buch AS "b"').fetchall()
    codes = {(reschar, buchstatus): code for reschar, buchstatus, code in rows}
    for (reschar, buchstatus), code in codes.items():
        if reschar == 4:
            # An undocumented value is named, and rejected (logged) rather than guessed.
            assert code == "reschar 4 buchstatus 0"
            assert code not in status_map
            continue
        status_of = status_map[code]
        if reschar in (2, 3):
            assert status_of is expected[(reschar, 1 if reschar == 2 else 0)]
        else:
            assert status_of is expected[(0, buchstatus)], (reschar, buchstatus)


@pytest.mark.parametrize("dialect", ["mssql", "oracle"])
def test_generic_queries_for_engines_not_here_parse(dialect: str):
    path = PRESETS_DIR / "generic" / f"query.{dialect}.sql"
    parsed = parse_query(path, "tsql" if dialect == "mssql" else dialect, VIEW_SCHEMA)
    assert parsed.columns == CANONICAL.split()
    assert parsed.binds == {"since"}


def test_oca_pms_status_map_covers_every_state_but_draft():
    status_map = PmsSettings.model_validate(load_preset("oca-pms").pms_defaults).status_map
    assert status_map == {
        "confirm": Status.RESERVED,
        "arrival_delayed": Status.RESERVED,
        "onboard": Status.CHECKED_IN,
        "departure_delayed": Status.CHECKED_IN,
        "done": Status.CHECKED_OUT,
        "cancel": Status.CANCELLED,
        "cancelled": Status.CANCELLED,
        "noshow": Status.NO_SHOW,
    }


# --- a hotel's PMS and loopsync, for real ------------------------------------------------


@pytest.fixture
def simulator() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as running:
        yield running


class Loopsync:
    """loopsync's config and state for one scenario, run one `--sync-now` at a time."""

    def __init__(self, tmp_path: Path, simulator: LoopSimulator, pms_keys: str, extra: str = ""):
        self.simulator = simulator
        path = write_config(
            tmp_path,
            f"""
[pms]
{pms_keys}
[property]
timezone = "Europe/Amsterdam"
phone_region = "NL"
{extra}
[loop]
base_url = "{simulator.base_url}"
auth_token = "{TEST_TOKEN}"
read_timeout = "2s"
[state]
url = "sqlite:///{tmp_path / "state.db"}"
""",
        )
        self.config = load_config(path)
        self.seen = 0
        self.rows_read = 0
        self.cursor: object = None

    def cycle(self, now: datetime) -> list[tuple[str, str]]:
        """One cycle plus delivery at `now`; what Loop received in it, sorted."""
        with open_syncer(self.config, now=lambda: now) as (syncer, store), store.lock():
            summary = syncer.sync_once(budget=timedelta(seconds=5))
            stored = store.cursor()
        assert summary.error is None
        assert summary.rejected == 0
        self.rows_read = summary.rows_read
        self.cursor = decode_cursor(stored) if stored is not None else None
        received = self.simulator.received[self.seen :]
        self.seen += len(received)
        calls: list[tuple[str, str]] = []
        for request in received:
            assert request.http_status == 200, request
            body = request.body or {}
            if request.path.endswith("ContactEvent"):
                calls.append((body["event"], body["foreignId"]))
            else:
                calls.append(
                    ("upsert" if request.method == "POST" else "delete", body["foreignId"])
                )
        return sorted(calls)


class Database:
    """The test's writer into the PMS database, through a native driver."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def script(self, sql: str) -> None:
        """Run `;`-separated statements, as an integrator would run a .sql file."""
        statements = [part for part in sql.split(";\n") if _has_sql(part)]
        with self.engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    def run(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def insert(self, table: sa.Table, *rows: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(table.insert(), list(rows))

    def update(self, table: sa.Table, key: Any, **values: Any) -> None:
        primary = next(iter(table.primary_key.columns))
        with self.engine.begin() as conn:
            conn.execute(table.update().where(primary == key).values(**values))


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


# -- generic: an example PMS schema under the reference view

_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
EXAMPLE = sa.MetaData()
HOTEL_GUEST = sa.Table(
    "hotel_guest",
    EXAMPLE,
    sa.Column("guest_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("salutation", sa.String(20)),
    sa.Column("first_name", sa.String(100)),
    sa.Column("last_name", sa.String(100)),
    sa.Column("email", sa.String(254)),
    sa.Column("mobile_phone", sa.String(40)),
    sa.Column("language_code", sa.String(16)),
    sa.Column("vip_code", sa.String(10)),
    sa.Column("updated_at", _TIMESTAMP, nullable=False),
)
HOTEL_ROOM = sa.Table(
    "hotel_room",
    EXAMPLE,
    sa.Column("room_no", sa.String(10), primary_key=True),
    sa.Column("wing", sa.String(40)),
    sa.Column("hk_status", sa.String(12), nullable=False),
    sa.Column("updated_at", _TIMESTAMP, nullable=False),
)
HOTEL_RESERVATION = sa.Table(
    "hotel_reservation",
    EXAMPLE,
    sa.Column("reservation_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("guest_id", sa.Integer, nullable=False),
    sa.Column("room_no", sa.String(10)),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("arrival_date", sa.Date, nullable=False),
    sa.Column("departure_date", sa.Date, nullable=False),
    sa.Column("checked_in_at", _TIMESTAMP),
    sa.Column("checked_out_at", _TIMESTAMP),
    sa.Column("group_name", sa.String(100)),
    sa.Column("updated_at", _TIMESTAMP, nullable=False),
)


def example_hotel(url: str, engine: str) -> Database:
    """The example PMS tables with the reference view over them, and a morning's data."""
    database = Database(url)
    EXAMPLE.create_all(database.engine)
    database.script((PRESETS_DIR / "generic" / f"view.{engine}.sql").read_text(encoding="utf-8"))
    stamp = local(5)
    guest = dict.fromkeys(("salutation", "email", "mobile_phone", "vip_code"))
    database.insert(
        HOTEL_GUEST,
        {
            **guest,
            "guest_id": 1,
            "salutation": "Mx",
            "first_name": "Zoë",
            "last_name": "Ñúñez-Øberg",
            "email": "zoe@example.com",
            "mobile_phone": "0612345678",
            "language_code": "nl",
            "updated_at": stamp,
        },
        {
            **guest,
            "guest_id": 2,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "language_code": "en",
            "vip_code": "GOLD",
            "updated_at": stamp,
        },
        {
            **guest,
            "guest_id": 3,
            "first_name": "小龙",
            "last_name": "李",
            "language_code": "zh-Hans-CN",
            "updated_at": stamp,
        },
        {
            **guest,
            "guest_id": 4,
            "first_name": "Ольга",
            "last_name": "Петрова",
            "language_code": "ru",
            "updated_at": stamp,
        },
        {
            **guest,
            "guest_id": 5,
            "first_name": "Seán",
            "last_name": "O'Brien",
            "language_code": "en",
            "updated_at": stamp,
        },
        {
            **guest,
            "guest_id": 8,
            "first_name": "Grace",
            "last_name": "Hopper",
            "email": "grace@example.com",
            "language_code": "en",
            "updated_at": stamp,
        },
    )
    database.insert(
        HOTEL_ROOM,
        {"room_no": "101", "wing": "North", "hk_status": "DIRTY", "updated_at": stamp},
        {"room_no": "201", "wing": "South", "hk_status": "CLEAN", "updated_at": stamp},
        {"room_no": "301", "wing": "East", "hk_status": "INSPECTED", "updated_at": stamp},
    )
    stay = {"checked_in_at": None, "checked_out_at": None, "group_name": None, "updated_at": stamp}
    database.insert(
        HOTEL_RESERVATION,
        # arriving today; the room is still dirty
        {**stay, "reservation_no": 1, "guest_id": 1, "room_no": "101", "state": "BOOKED",
         "arrival_date": day(0), "departure_date": day(2)},
        # in house, leaving today
        {**stay, "reservation_no": 2, "guest_id": 2, "room_no": "201", "state": "INHOUSE",
         "arrival_date": day(-2), "departure_date": day(0), "checked_in_at": local(15, 0, -2)},
        # arriving today into 201: clean, but guest 2 is still in it
        {**stay, "reservation_no": 3, "guest_id": 3, "room_no": "201", "state": "BOOKED",
         "arrival_date": day(0), "departure_date": day(3), "group_name": "Li family"},
        # tomorrow, no room yet: Loop cannot take the contact
        {**stay, "reservation_no": 4, "guest_id": 4, "room_no": None, "state": "BOOKED",
         "arrival_date": day(1), "departure_date": day(3)},
        # two months ahead, and gone five days ago: outside the SQL window, never read
        {**stay, "reservation_no": 5, "guest_id": 5, "room_no": "301", "state": "BOOKED",
         "arrival_date": day(60), "departure_date": day(62)},
        {**stay, "reservation_no": 7, "guest_id": 5, "room_no": "301", "state": "DEPARTED",
         "arrival_date": day(-7), "departure_date": day(-5)},
        # cancelled: read, never a contact
        {**stay, "reservation_no": 6, "guest_id": 5, "room_no": "301", "state": "CANCELLED",
         "arrival_date": day(1), "departure_date": day(2)},
        # in five days
        {**stay, "reservation_no": 8, "guest_id": 8, "room_no": "301", "state": "BOOKED",
         "arrival_date": day(5), "departure_date": day(7)},
    )  # fmt: skip
    return database


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def generic_pms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Database]]:
    engine = request.param
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'pms.db'}"
    elif engine == "mysql":
        url = request.getfixturevalue("mariadb_url")
    else:
        url = request.getfixturevalue("pg_url")
    database = example_hotel(url, engine)
    yield url, database
    database.engine.dispose()


def test_generic_preset_a_day_at_the_hotel(
    generic_pms: tuple[str, Database], tmp_path: Path, simulator: LoopSimulator
):
    url, pms = generic_pms
    loopsync = Loopsync(tmp_path, simulator, f'preset = "generic"\nurl = "{url}"')

    # 06:00 go-live: the live stays with a room become contacts, no events.
    assert loopsync.cycle(aware(6)) == [
        ("upsert", "1"),
        ("upsert", "2"),
        ("upsert", "3"),
        ("upsert", "8"),
    ]
    assert loopsync.rows_read == 6  # 5 and 7 are outside the window
    contacts = simulator.contacts
    assert contacts["1"] == {
        "foreignId": "1",
        "title": "Mx",
        "firstname": "Zoë",
        "lastname": "Ñúñez-Øberg",
        "email": "zoe@example.com",
        "mobile": "31612345678",
        "language": "nl",
        "area": "North",
        "arrivalTime": loop_time(local(15)),
        "departureTime": loop_time(local(11, 0, 2)),
        "checkedInStatus": "false",
        "room": "101",
    }
    assert contacts["2"]["checkedInStatus"] == "true"
    assert contacts["2"]["vipStatus"] == "GOLD"
    assert contacts["3"]["groupName"] == "Li family"
    assert contacts["3"]["language"] == "zh"

    # Housekeeping cleans 101: a change to the room, not the reservation.
    pms.update(HOTEL_ROOM, "101", hk_status="CLEAN", updated_at=local(7, 40))
    assert loopsync.cycle(aware(9)) == [("roomready", "1")]

    # Guest 2 leaves 201. Guest 3's own rows do not change, but today's arrivals are read
    # every cycle: 201 is now clean and empty.
    pms.update(
        HOTEL_RESERVATION,
        2,
        state="DEPARTED",
        checked_out_at=local(10, 30),
        updated_at=local(10, 30),
    )
    assert loopsync.cycle(aware(11)) == [("checkout", "2"), ("roomready", "3"), ("upsert", "2")]

    # Guest 1 checks in; guest 4 gets a room.
    pms.update(
        HOTEL_RESERVATION, 1, state="INHOUSE", checked_in_at=local(12, 55), updated_at=local(12, 55)
    )
    pms.update(HOTEL_RESERVATION, 4, room_no="102", updated_at=local(12, 56))
    assert loopsync.cycle(aware(13)) == [("checkin", "1"), ("upsert", "1"), ("upsert", "4")]
    assert simulator.contacts["4"]["lastname"] == "Петрова"

    # A guest profile changes for a stay in five days: caught through the view's modified_at.
    pms.update(HOTEL_GUEST, 8, email="grace.hopper@example.com", updated_at=local(13, 30))
    assert loopsync.cycle(aware(14)) == [("upsert", "8")]
    assert simulator.contacts["8"]["email"] == "grace.hopper@example.com"
    assert str(loopsync.cursor).startswith(f"{TODAY} 13:30")

    # Nothing changed: nothing is sent, though today's arrivals were read again.
    assert loopsync.cycle(aware(15)) == []
    # Each event exactly once, in the order of each stay.
    assert sorted(simulator.event_kinds()) == [
        ("1", "checkin"),
        ("1", "roomready"),
        ("2", "checkout"),
        ("3", "roomready"),
    ]
    assert [kind for stay, kind in simulator.event_kinds() if stay == "1"] == [
        "roomready",
        "checkin",
    ]


# -- oca-pms: a small schema built from the OCA pms module's fields

OCA_SCHEMA = """
CREATE TABLE res_partner (
    id integer PRIMARY KEY, name varchar, firstname varchar, lastname varchar, lang varchar,
    write_date timestamp without time zone);
CREATE TABLE pms_room (
    id integer PRIMARY KEY, name varchar NOT NULL, pms_property_id integer NOT NULL,
    housekeeping_state varchar, write_date timestamp without time zone);
CREATE TABLE pms_folio (
    id integer PRIMARY KEY, name varchar, partner_name varchar, pms_property_id integer,
    write_date timestamp without time zone);
CREATE TABLE pms_reservation (
    id integer PRIMARY KEY, name text, state varchar NOT NULL, cancelled_reason varchar,
    reservation_type varchar, checkin date NOT NULL, checkout date NOT NULL,
    arrival_hour varchar, departure_hour varchar, partner_id integer, partner_name varchar,
    email varchar, mobile varchar, preferred_room_id integer, folio_id integer,
    pms_property_id integer NOT NULL, write_date timestamp without time zone);
"""


def odoo_utc(moment: datetime) -> datetime:
    """Odoo's write_date: naive UTC."""
    return moment.replace(tzinfo=ZONE).astimezone(UTC).replace(tzinfo=None)


def oca_hotel(url: str) -> Database:
    database = Database(url)
    database.script(OCA_SCHEMA)
    stamp = odoo_utc(local(5))
    rows: dict[str, list[dict[str, Any]]] = {
        "res_partner": [
            {
                "id": 1,
                "name": "Zoë Ñúñez-Øberg",
                "firstname": "Zoë",
                "lastname": "Ñúñez-Øberg",
                "lang": "es_ES",
            },
            {
                "id": 2,
                "name": "Ada Lovelace",
                "firstname": "Ada",
                "lastname": "Lovelace",
                "lang": "en_US",
            },
            # partner_firstname not filled in: the reservation's guest name is used
            {"id": 3, "name": "Jean Dupont", "firstname": None, "lastname": None, "lang": "fr_FR"},
            {
                "id": 5,
                "name": "John Smith",
                "firstname": "John",
                "lastname": "Smith",
                "lang": "en_GB",
            },
        ],
        "pms_room": [
            {"id": 1, "name": "101", "pms_property_id": 1, "housekeeping_state": "dirty"},
            {"id": 2, "name": "102", "pms_property_id": 1, "housekeeping_state": "clean"},
            {"id": 3, "name": "201", "pms_property_id": 1, "housekeeping_state": "to_inspect"},
            {"id": 4, "name": "202", "pms_property_id": 1, "housekeeping_state": "clean"},
        ],
        "pms_folio": [
            {"id": 1, "name": "F/26001", "partner_name": "Zoë Ñúñez-Øberg"},
            {"id": 2, "name": "F/26002", "partner_name": "Smith Wedding"},
            {"id": 3, "name": "F/26003", "partner_name": "Ada Lovelace"},
            {"id": 4, "name": "F/26004", "partner_name": None},
        ],
    }
    stay = {
        "name": None,
        "cancelled_reason": None,
        "reservation_type": "normal",
        "arrival_hour": "14:00",
        "departure_hour": "12:00",
        "partner_id": None,
        "partner_name": None,
        "email": None,
        "mobile": None,
        "preferred_room_id": None,
        "folio_id": 4,
        "pms_property_id": 1,
    }
    rows["pms_reservation"] = [
        {**stay, "id": 1, "state": "confirm", "checkin": day(0), "checkout": day(2), "arrival_hour": "16:30",
         "departure_hour": "11:00", "partner_id": 1, "partner_name": "Zoë Ñúñez-Øberg",
         "email": "zoe@example.com", "mobile": "+34 612 345 678", "preferred_room_id": 1, "folio_id": 1},
        {**stay, "id": 2, "state": "onboard", "checkin": day(-2), "checkout": day(0), "partner_id": 2,
         "partner_name": "Ada Lovelace", "preferred_room_id": 2, "folio_id": 3},
        # a pre-reservation, and an out-of-service block: not read
        {**stay, "id": 3, "state": "draft", "checkin": day(0), "checkout": day(1), "partner_id": 2, "preferred_room_id": 4},
        {**stay, "id": 7, "state": "confirm", "reservation_type": "out", "checkin": day(0), "checkout": day(1),
         "preferred_room_id": 4},
        # a group of two rooms in one folio; the second has no room yet
        {**stay, "id": 4, "state": "confirm", "checkin": day(1), "checkout": day(3), "partner_id": 5,
         "partner_name": "John Smith", "mobile": "0612345679", "preferred_room_id": 3, "folio_id": 2},
        {**stay, "id": 5, "state": "confirm", "checkin": day(1), "checkout": day(3), "partner_id": 5, "folio_id": 2},
        # a no-show of yesterday: read, never a contact
        {**stay, "id": 6, "state": "cancel", "cancelled_reason": "noshow", "checkin": day(-1), "checkout": day(1),
         "partner_id": 2, "preferred_room_id": 4},
        # no valid arrival hour: the property's default arrival time applies
        {**stay, "id": 8, "state": "confirm", "checkin": day(2), "checkout": day(4), "arrival_hour": "late",
         "departure_hour": None, "partner_id": 3, "partner_name": "Jean Dupont", "preferred_room_id": 4},
        # two months ahead: outside the SQL window
        {**stay, "id": 9, "state": "confirm", "checkin": day(60), "checkout": day(62), "partner_id": 2,
         "preferred_room_id": 4},
    ]  # fmt: skip
    with database.engine.begin() as conn:
        for table, table_rows in rows.items():
            columns = [*table_rows[0], "write_date"]
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + column for column in columns)})"
                ),
                [{**row, "write_date": stamp} for row in table_rows],
            )
    return database


def odoo_write(
    database: Database, table: str, record_id: int, when: datetime, **values: Any
) -> None:
    """An ORM write: the values, and write_date in UTC."""
    assignments = ", ".join(f"{column} = :{column}" for column in [*values, "write_date"])
    database.run(
        f"UPDATE {table} SET {assignments} WHERE id = :record_id",
        **values,
        write_date=odoo_utc(when),
        record_id=record_id,
    )


@pytest.mark.postgres
def test_oca_pms_preset_a_day_at_the_hotel(pg_url: str, tmp_path: Path, simulator: LoopSimulator):
    pms = oca_hotel(pg_url)
    loopsync = Loopsync(
        tmp_path,
        simulator,
        f'preset = "oca-pms"\nurl = "{pg_url}"',
        f'location_map = {{ "1" = "{LOCATION_ID}" }}',
    )
    try:
        assert loopsync.cycle(aware(6)) == [
            ("upsert", "1"),
            ("upsert", "2"),
            ("upsert", "4"),
            ("upsert", "8"),
        ]
        assert loopsync.rows_read == 6  # not the draft, the block, nor two months ahead
        contacts = simulator.contacts
        assert contacts["1"] == {
            "foreignId": "1",
            "locationId": LOCATION_ID,
            "firstname": "Zoë",
            "lastname": "Ñúñez-Øberg",
            "email": "zoe@example.com",
            "mobile": "34612345678",
            "language": "es",
            "arrivalTime": loop_time(local(16, 30)),
            "departureTime": loop_time(local(11, 0, 2)),
            "checkedInStatus": "false",
            "room": "101",
        }
        assert contacts["2"]["checkedInStatus"] == "true"
        assert contacts["4"]["groupName"] == "Smith Wedding"
        assert contacts["4"]["mobile"] == "31612345679"
        assert "groupName" not in contacts["1"]
        assert contacts["8"]["lastname"] == "Jean Dupont"
        assert "firstname" not in contacts["8"]
        assert contacts["8"]["language"] == "fr"
        assert contacts["8"]["arrivalTime"] == loop_time(local(15, 0, 2))  # default_arrival_time
        assert contacts["8"]["departureTime"] == loop_time(local(11, 0, 4))
        # write_date is UTC: the cursor is an instant, not a local wall-clock time.
        assert isinstance(loopsync.cursor, datetime)
        assert loopsync.cursor == aware(5)

        odoo_write(pms, "pms_room", 1, local(7, 50), housekeeping_state="clean")
        assert loopsync.cycle(aware(9)) == [("roomready", "1")]

        odoo_write(pms, "pms_reservation", 2, local(10, 20), state="done")
        assert loopsync.cycle(aware(10, 30)) == [("checkout", "2"), ("upsert", "2")]

        odoo_write(pms, "pms_reservation", 1, local(15, 5), state="onboard")
        odoo_write(
            pms, "pms_reservation", 4, local(15, 10), state="cancel", cancelled_reason="intime"
        )
        assert loopsync.cycle(aware(15, 15)) == [("checkin", "1"), ("delete", "4"), ("upsert", "1")]
        assert "4" not in simulator.contacts

        # The partner gets its names: a change to res_partner only.
        odoo_write(pms, "res_partner", 3, local(16), firstname="Jean", lastname="Dupont")
        assert loopsync.cycle(aware(16, 30)) == [("upsert", "8")]
        contact = simulator.contacts["8"]
        assert (contact["firstname"], contact["lastname"]) == ("Jean", "Dupont")
        assert loopsync.cursor == aware(16)

        assert loopsync.cycle(aware(17)) == []
    finally:
        pms.engine.dispose()


# -- the command line, with a preset


def test_check_and_sync_now_through_the_cli_with_the_generic_preset(
    tmp_path: Path, simulator: LoopSimulator
):
    pms_url = f"sqlite:///{tmp_path / 'pms.db'}"
    example_hotel(pms_url, "sqlite").engine.dispose()
    (tmp_path / "token").write_text(TEST_TOKEN)
    config = write_config(
        tmp_path,
        f"""
[pms]
preset = "generic"
url = "{pms_url}"
[property]
timezone = "Europe/Amsterdam"
phone_region = "NL"
[loop]
base_url = "{simulator.base_url}"
auth_token_file = "{tmp_path / "token"}"
delivery_budget = "3s"
[state]
url = "sqlite:///{tmp_path / "state.db"}"
""",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "loopsync.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            env={**os.environ, "LANG": "C"},
            check=False,
        )
        assert TEST_TOKEN not in result.stdout + result.stderr
        return result

    checked = run("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "pms: ok, sqlite:///" in checked.stdout
    assert ": 6 rows; columns: reservation_id, status, room, arrival, departure," in checked.stdout
    synced = run("--sync-now")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.strip().splitlines()[-1] == (
        "read 6 rows; rejected 0; upserted 4; deleted 0; events: none; failures 0"
    )
    assert simulator.contacts["1"]["lastname"] == "Ñúñez-Øberg"
