"""One day at a small hotel, end to end: a real PMS database, the real pipeline, Loop over HTTP.

The same scenario runs with the PMS on SQLite, MariaDB and PostgreSQL (native
drivers), and on MariaDB and PostgreSQL through pyodbc (unixODBC with Debian's
drivers). After each cycle, Loop must have received exactly the expected calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import TEST_TOKEN
from pms_fixtures import (
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

from loopsync.app import open_syncer
from loopsync.config import load_config
from loopsync.simulator import LoopSimulator

ZONE = ZoneInfo("Europe/Amsterdam")
TODAY = date(2026, 12, 3)


def at(hour: int, minute: int = 0, day: date = TODAY) -> datetime:
    """A naive local wall-clock time, as the PMS stores it."""
    return datetime(day.year, day.month, day.day, hour, minute)


@dataclass
class Pms:
    """Where the test writes the PMS, and how loopsync reads it."""

    writer_url: str
    reader: str  # a [pms] line: url = "…" or odbc_connect = "…"


@pytest.fixture(params=["sqlite", "mariadb", "postgres", "mariadb-odbc", "postgres-odbc"])
def pms(request: pytest.FixtureRequest, tmp_path: Path) -> Pms:
    kind = request.param
    if kind == "sqlite":
        url = sqlite_url(tmp_path)
        return Pms(url, f'url = "{url}"')
    if kind.startswith("mariadb"):
        name = request.getfixturevalue("make_mariadb_database")()
        url = f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
        reader = (
            f'odbc_connect = "{mariadb_odbc_connect(name)}"'
            if kind.endswith("odbc")
            else f'url = "{url}"'
        )
        return Pms(url, reader)
    url = request.getfixturevalue("pg_url")
    reader = (
        f'odbc_connect = "{pg_odbc_connect(url)}"' if kind.endswith("odbc") else f'url = "{url}"'
    )
    return Pms(url, reader)


class Hotel:
    """The PMS, loopsync's config and clock, and the Loop simulator, for one scenario."""

    def __init__(self, tmp_path: Path, pms: Pms, simulator: LoopSimulator, mode: str) -> None:
        self.db = PmsDatabase(pms.writer_url)
        self.simulator = simulator
        query = write_query(tmp_path, INCREMENTAL_QUERY if mode == "incremental" else FULL_QUERY)
        status_map = ", ".join(f'{code} = "{status}"' for code, status in STATUS_MAP.items())
        config_path = tmp_path / "loopsync.toml"
        config_path.write_text(
            f"""
[pms]
{pms.reader}
query_file = "{query}"
mode = "{mode}"
status_map = {{ {status_map} }}
room_ready_values = ["clean"]
[property]
timezone = "Europe/Amsterdam"
phone_region = "NL"
[loop]
base_url = "{simulator.base_url}"
auth_token = "{TEST_TOKEN}"
read_timeout = "2s"
[state]
url = "sqlite:///{tmp_path / "state.db"}"
""",
            encoding="utf-8",
        )
        config_path.chmod(0o600)
        self.config = load_config(config_path)
        self.now = at(6).replace(tzinfo=ZONE)
        self.seen = 0

    def cycle(self, hour: int, minute: int = 0, day: date = TODAY) -> list[tuple[str, str]]:
        """Run one `--sync-now` at that local time; return what Loop received in it."""
        self.now = at(hour, minute, day).replace(tzinfo=ZONE)
        with open_syncer(self.config, now=lambda: self.now) as (syncer, store), store.lock():
            summary = syncer.sync_once(budget=timedelta(seconds=5))
        assert summary.error is None
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

    def change(self, reservation_id: str, when: datetime, **values: object) -> None:
        self.db.update(reservation_id, modified_at=when, **values)


@pytest.fixture
def simulator() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as running:
        yield running


@pytest.fixture
def hotel_factory(
    tmp_path: Path, pms: Pms, simulator: LoopSimulator
) -> Iterator[Callable[[str], Hotel]]:
    hotels: list[Hotel] = []

    def make(mode: str) -> Hotel:
        hotel = Hotel(tmp_path, pms, simulator, mode)
        hotels.append(hotel)
        return hotel

    yield make
    for hotel in hotels:
        hotel.db.dispose()


SQL_NAME = "O'Brien'; DROP TABLE reservations; --"


def opening_rows() -> list[dict[str, object]]:
    stamp = at(5)
    return [
        reservation_row(
            "A1",
            room="101",
            firstname="Zoë",
            lastname="Ñúñez-Øberg",
            mobile="0612345678",
            modified_at=stamp,
        ),
        reservation_row(
            "A2",
            room="102",
            firstname="小龙",
            lastname="李",
            email="not-an-email",
            language="zh-Hans-CN",
            modified_at=stamp,
        ),
        reservation_row(
            "A3",
            status="INH",
            room="201",
            arrival=TODAY - timedelta(days=2),
            departure=TODAY,
            checked_in_at=at(15, 0, TODAY - timedelta(days=2)),
            modified_at=stamp,
        ),
        reservation_row(
            "A4",
            room="202",
            firstname="Seán",
            lastname=SQL_NAME,
            mobile="12",
            language="GER",
            modified_at=stamp,
        ),
        reservation_row("A5", room=None, firstname="Ольга", lastname="Петрова", modified_at=stamp),
        reservation_row(
            "A6",
            room="301",
            arrival=TODAY + timedelta(days=60),
            departure=TODAY + timedelta(days=62),
            modified_at=stamp,
        ),
        reservation_row("A7", status="CXL", room="302", modified_at=stamp),
        reservation_row("A8", status="???", room="303", modified_at=stamp),
    ]


@pytest.mark.parametrize("mode", ["incremental", "full"])
def test_a_day_at_the_hotel(hotel_factory: Callable[[str], Hotel], mode: str):
    hotel = hotel_factory(mode)
    hotel.db.insert(*opening_rows())

    # 06:00 go-live (R6): the live stays with a room become contacts; no events at all.
    assert hotel.cycle(6) == [
        ("upsert", "A1"),
        ("upsert", "A2"),
        ("upsert", "A3"),
        ("upsert", "A4"),
    ]
    contacts = hotel.simulator.contacts
    assert contacts["A1"]["firstname"] == "Zoë"
    assert contacts["A1"]["lastname"] == "Ñúñez-Øberg"
    assert contacts["A1"]["mobile"] == "31612345678"
    assert contacts["A2"]["lastname"] == "李"
    assert contacts["A2"]["language"] == "zh"
    assert "email" not in contacts["A2"]  # invalid: dropped, the contact still went
    assert contacts["A4"]["lastname"] == SQL_NAME
    assert contacts["A4"]["language"] == "de"
    assert "mobile" not in contacts["A4"]
    assert contacts["A3"]["checkedInStatus"] == "true"
    assert contacts["A1"]["arrivalTime"] == "2026-12-03T14:00:00.000Z"

    # Housekeeping cleans 101 and 202 before 8:00; A3 checks out at 8:55.
    hotel.change("A1", at(7, 40), room_ready="clean")
    hotel.change("A4", at(7, 45), room_ready="clean")
    hotel.change("A3", at(8, 55), status="OUT", checked_out_at=at(8, 55))
    assert hotel.cycle(9) == [
        ("checkout", "A3"),
        ("roomready", "A1"),
        ("roomready", "A4"),
        ("upsert", "A3"),
    ]

    # A1 checks in; A2 cancels (contact deleted); A5 finally gets a room.
    hotel.change("A1", at(13, 58), status="INH", checked_in_at=at(13, 58))
    hotel.change("A2", at(13, 59), status="CXL")
    hotel.change("A5", at(13, 59), room="105")
    assert hotel.cycle(14) == [
        ("checkin", "A1"),
        ("delete", "A2"),
        ("upsert", "A1"),
        ("upsert", "A5"),
    ]
    assert hotel.simulator.contacts["A5"]["lastname"] == "Петрова"

    # A4's check-in reaches the PMS 8½ hours late (R7): a contact update, no welcome.
    hotel.change("A4", at(14, 50), status="INH", checked_in_at=at(6, 30))
    assert hotel.cycle(15) == [("upsert", "A4")]

    # A1's check-in is reversed, then redone (R8): upserts only.
    hotel.change("A1", at(15, 30), status="RES", checked_in_at=None)
    assert hotel.cycle(16) == [("upsert", "A1")]
    hotel.change("A1", at(16, 20), status="INH", checked_in_at=at(16, 20))
    assert hotel.cycle(16, 30) == [("upsert", "A1")]

    # A1 checks out late at night: the thank-you waits for quiet hours to end (R11).
    hotel.change("A1", at(22, 55), status="OUT", checked_out_at=at(22, 55))
    assert hotel.cycle(23) == [("upsert", "A1")]
    tomorrow = TODAY + timedelta(days=1)
    assert hotel.cycle(7, 59, tomorrow) == []
    assert hotel.cycle(8, 1, tomorrow) == [("checkout", "A1")]

    # Nothing changes: nothing is sent.
    assert hotel.cycle(9, 0, tomorrow) == []
    # Each guest's events in the order of their stay, each exactly once.
    events = hotel.simulator.event_kinds()
    assert [kind for rid, kind in events if rid == "A1"] == ["roomready", "checkin", "checkout"]
    assert sorted(event for event in events if event[0] != "A1") == [
        ("A3", "checkout"),
        ("A4", "roomready"),
    ]
