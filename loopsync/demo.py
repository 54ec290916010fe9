"""`loopsync demo`: a day at a small fictional hotel, played against the Loop simulator.

The demo builds a PMS-shaped SQLite database (rooms, guests, reservations with the
PMS's own codes), copies the query that reads it (`demo_data/reservations.sql`, the
worked example of a query file) and writes a config next to it. It starts the Loop
simulator in-process and drives the real pipeline (config, PMS reader, mapping, rules,
state-store outbox, HTTP client) with a simulated clock: the go-live baseline, then a
scripted day, one cycle per step, printing what Loop received at each.

It also checks its own story: what a hotel expects from each step of the script is
written down before the cycle runs and compared with what the simulator received. Any
difference makes the demo exit non-zero, so it doubles as a smoke test of an install.
"""

from __future__ import annotations

import io
import logging
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib.resources import files
from pathlib import Path
from secrets import token_hex
from typing import Any, NamedTuple, TextIO
from zoneinfo import ZoneInfo

from loopsync.app import open_syncer
from loopsync.config import load_config
from loopsync.errors import ExitCode, LoopsyncError
from loopsync.model import Mark, StayState
from loopsync.redact import SecretFilter
from loopsync.simulator import CONTACT_PATH, EVENT_PATH, LoopSimulator
from loopsync.store import StateStore
from loopsync.sync import CycleSummary, Syncer

__all__ = ["DemoFolderError", "DemoResult", "play_demo", "run_demo"]

HOTEL = "Hotel Grachtenzicht, Amsterdam"
ZONE_NAME = "Europe/Amsterdam"
ZONE = ZoneInfo(ZONE_NAME)
SEED = 20261203

CONFIG_FILE = "loopsync.toml"
PMS_FILE = "pms.sqlite"
QUERY_FILE = "reservations.sql"
STATE_FILE = "state.db"
TOKEN_FILE = "loop-token"  # noqa: S105 - a file name, not a password
# What an earlier run left in a kept work folder; removed so that go-live is a go-live.
_OLD_FILES = (CONFIG_FILE, PMS_FILE, QUERY_FILE, TOKEN_FILE, STATE_FILE)
_OLD_PATTERNS = ("state.db-*", "state.*.lock", "pms.sqlite-*")
_CONFIG_MARK = "# loopsync's config for the demo hotel, written by `loopsync demo`"

# The [rules] section of the generated config; the script's expectations assume these.
RULES: dict[str, str] = {
    "roomready_from": "08:00",
    "quiet_hours": "22:00-08:00",
    "max_event_age": "6h",
    "on_cancel": "delete",
}
STATUS_MAP = {
    "RES": "reserved",
    "INH": "checked_in",
    "OUT": "checked_out",
    "CXL": "cancelled",
    "NOS": "no_show",
}
READY_CODES = ("CL", "IP")  # clean, inspected; DI dirty and OO out of order are not ready
LANGUAGE_MAP = {"CHS": "zh", "CHT": "zh"}  # this PMS's own codes for Chinese

_ROOMREADY_FROM = time(8, 0)
_QUIET_START, _QUIET_END = time(22, 0), time(8, 0)
_MAX_EVENT_AGE = timedelta(hours=6)
_HISTORY, _FUTURE = timedelta(days=1), timedelta(days=30)
_QUIET_KINDS = frozenset({"checkout", "roomready"})
_LIVE = frozenset({"RES", "INH"})
_GONE = frozenset({"CXL", "NOS"})
_ARRIVE_AT, _DEPART_AT = time(15, 0), time(11, 0)
_WINDOW = (-7, 7)  # the fortnight of reservations, in days from the demo day
_STAY_LENGTHS = (1, 2, 3, 3, 4, 4, 5, 5, 6, 7, 9)
_OUT_OF_ORDER = "410"
_UPSERT_LINES = 6  # more upsert-only lines than this in one step are summarised
_WIDTH = 96


# --- the PMS ------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE rooms (
    room_no       TEXT PRIMARY KEY,
    floor         INTEGER NOT NULL,
    room_type     TEXT NOT NULL,
    hk_status     TEXT NOT NULL,     -- CL clean, IP inspected, DI dirty, OO out of order
    hk_updated_at TEXT NOT NULL
);
CREATE TABLE guests (
    id         INTEGER PRIMARY KEY,
    salutation TEXT,
    first      TEXT,
    last       TEXT NOT NULL,
    email      TEXT,
    phone      TEXT,                 -- as the front desk typed it
    lang       TEXT,                 -- the PMS's language code
    vip        TEXT,
    loyalty_no TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE reservations (
    resv_no       INTEGER PRIMARY KEY,
    guest_id      INTEGER NOT NULL REFERENCES guests (id),
    room_no       TEXT REFERENCES rooms (room_no),
    status        TEXT NOT NULL,     -- RES reserved, INH in house, OUT, CXL, NOS no-show
    arrive        TEXT NOT NULL,     -- local time of the hotel, no zone
    depart        TEXT NOT NULL,
    checkin_time  TEXT,
    checkout_time TEXT,
    updated_at    TEXT NOT NULL
);
"""


@dataclass(slots=True)
class _Guest:
    guest_id: int
    salutation: str | None
    first: str
    last: str
    email: str | None
    phone: str | None
    lang: str | None
    vip: str | None = None
    loyalty_no: str | None = None
    updated_at: datetime = datetime(2026, 1, 1)

    @property
    def name(self) -> str:
        return _display_name(self.first, self.last)


@dataclass(slots=True)
class _Booking:
    resv_no: int
    guest: _Guest
    planned_room: str | None
    room: str | None
    status: str
    arrive: datetime
    depart: datetime
    updated_at: datetime
    checkin_time: datetime | None = None
    checkout_time: datetime | None = None
    role: str | None = None

    @property
    def rid(self) -> str:
        return str(self.resv_no)


@dataclass(slots=True)
class _Room:
    room_no: str
    floor: int
    room_type: str
    hk_status: str
    hk_updated_at: datetime


def _text(moment: datetime | None) -> str | None:
    """How this PMS writes a time: local, no zone, to the second."""
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _display_name(first: str | None, last: str | None) -> str:
    """A guest's name as a person would write it: family name first for Chinese/Japanese."""
    first, last = first or "", last or ""
    if first and last and all(_is_cjk(char) for char in first + last):
        return last + first
    return " ".join(part for part in (first, last) if part)


def _is_cjk(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK", "HIRAGANA", "KATAKANA"))


# --- the cast -----------------------------------------------------------------------


class _Profile(NamedTuple):
    salutation: str | None
    first: str
    last: str
    email: str | None
    phone: str | None  # as the front desk typed it
    lang: str  # the PMS's language code
    vip: str | None = None
    loyalty_no: str | None = None


# The guests the story follows, by their role in the script.
_FEATURED: dict[str, _Profile] = {
    "zoe": _Profile(
        "Ms", "Zoë", "Ñúñez-Øberg", "zoë.nunez@example.es", "+34 612 345 678", "Español",
        vip="GOLD", loyalty_no="ES-771204",
    ),
    "li": _Profile("Mr", "小龙", "李", "li.xiaolong@example.cn", "+86 138 0013 8000", "CHS"),
    "olga": _Profile(
        "Ms", "Ольга", "Петрова", "olga.petrova@example.ru", "+7 916 123-45-67", "RUS",
        loyalty_no="RU-550913",
    ),
    "layla": _Profile(
        "Ms", "ليلى", "حداد", "layla.haddad@example.ae", "+971 50 123 4567", "Arabic"
    ),
    "noa": _Profile("Ms", "נועה", "לוי", "noa.levi@example.co.il", "+972 52-234-5678", "HEB"),
    "siobhan": _Profile(
        "Ms", "Siobhán", "O'Connor", "siobhan.oconnor@example.ie", "+353 87 123 4567", "en-IE",
        loyalty_no="IE-120077",
    ),
    "jurgen": _Profile("Mr", "Jürgen", "Groß", "j.gross@example.de", "0049 170 1234567", "GER"),
    # A British number typed in the UK's national format: unreadable in region NL.
    "leaves_for_zoe": _Profile(
        "Mr", "Oliver", "Bennett", "oliver.bennett@example.co.uk", "07911 123456", "E"
    ),
    "early_out": _Profile("Mr", "Joost", "Bakker", "joost.bakker@@ziggo.nl", "06-41234567", "N"),
    "early_in": _Profile(
        "Ms", "Emily", "Johnson", "emily.johnson@example.com", "+1 (613) 555-0134", "ENG"
    ),
    "no_show": _Profile("Mr", "Kwame", "Mensah", None, "12345", "en-GH"),
}  # fmt: skip

# room -> fixed stays (first night, nights, role; role None keeps the room empty)
_FIXED_STAYS: dict[str, list[tuple[int, int, str | None]]] = {
    "214": [(-3, 3, "leaves_for_zoe"), (0, 2, "zoe")],
    "105": [(-1, 1, None), (0, 3, "li")],
    "302": [(-1, 1, None), (0, 3, "olga")],
    "409": [(-1, 4, None)],  # free and inspected: where Ольга is moved to
    "311": [(-1, 1, None), (0, 2, "layla")],
    "207": [(-1, 1, None), (0, 2, "noa")],
    "108": [(-2, 3, "siobhan")],  # she leaves a night early, late in the evening
    "403": [(1, 3, "jurgen")],
    "112": [(-1, 1, None), (0, 2, "no_show")],
    "110": [(-1, 1, None), (0, 1, "early_in")],
    "203": [(-4, 4, "early_out")],
}


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(count))


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where generated guests come from: names, how the desk types phones, PMS languages."""

    firsts: tuple[str, ...]
    lasts: tuple[str, ...]
    languages: tuple[str, ...]
    phone: Callable[[random.Random], str]
    tld: str


_ORIGINS: tuple[_Origin, ...] = (
    _Origin(
        ("Sanne", "Daan", "Lotte", "Bram", "Fleur", "Joost", "Marieke", "Sem", "Anouk", "Thijs"),
        ("de Vries", "Jansen", "van den Berg", "Visser", "Smit", "de Jong", "Mulder", "Dekker"),
        ("N", "NL", "nl-NL", "Dutch"),
        lambda rng: rng.choice(
            (
                f"06-{rng.choice('1234')}{_digits(rng, 7)}",
                f"06 {rng.choice('1234')}{_digits(rng, 3)} {_digits(rng, 4)}",
                f"+31 6 {rng.choice('1234')}{_digits(rng, 7)}",
                f"020-{rng.choice('2345678')}{_digits(rng, 2)} {_digits(rng, 4)}",
            )
        ),
        "nl",
    ),
    _Origin(
        ("Lukas", "Anna", "Jonas", "Lea", "Matthias", "Katrin", "Felix", "Hannah"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weiß", "Köhler", "Hoffmann"),
        ("GER", "D", "de-DE", "Deutsch"),
        lambda rng: rng.choice(
            (f"+49 151 {_digits(rng, 8)}", f"0049 170 {_digits(rng, 7)}"),
        ),
        "de",
    ),
    _Origin(
        ("Camille", "Léa", "Hugo", "Étienne", "Chloé", "Théo", "Inès"),
        ("Dubois", "Lefèvre", "Moreau", "Girard", "Fontaine", "Chevalier"),
        ("F", "fr-FR", "FRE"),
        lambda rng: f"+33 6 12 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
        "fr",
    ),
    _Origin(
        ("Lucía", "Javier", "Martín", "Itziar", "Álvaro", "Begoña"),
        ("García", "Fernández", "Peña", "Ibáñez", "Muñoz", "Castaño"),
        ("Español", "S", "es-ES"),
        lambda rng: f"+34 6{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}",
        "es",
    ),
    _Origin(
        ("Oliver", "Amelia", "Eoin", "Harriet", "Callum", "Niamh"),
        ("Smith", "O'Neill", "Taylor", "Walsh", "Davies", "MacLeod"),
        ("E", "ENG", "en-GB"),
        lambda rng: f"+44 {rng.choice(('7400', '7800', '7900'))} {_digits(rng, 6)}",
        "co.uk",
    ),
    _Origin(
        ("Emily", "Michael", "Madison", "Tyler", "Grace"),
        ("Johnson", "Williams", "Brown", "Miller", "Tremblay"),
        ("E", "en-US", "English"),
        lambda rng: f"+1 (613) 555-01{_digits(rng, 2)}",
        "com",
    ),
    _Origin(
        ("Giulia", "Matteo", "Chiara", "Lorenzo", "Niccolò"),
        ("Rossi", "Bianchi", "Esposito", "Ricci", "D'Angelo"),
        ("ITA", "I", "it-IT"),
        lambda rng: (
            f"+39 3{rng.choice('2345')}{_digits(rng, 1)} {_digits(rng, 3)} {_digits(rng, 4)}"
        ),
        "it",
    ),
    _Origin(
        ("Zofia", "Łukasz", "Paweł", "Agnieszka"),
        ("Nowak", "Wiśniewski", "Kowalczyk", "Wójcik"),
        ("POL", "pl-PL"),
        lambda rng: f"+48 5{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}",
        "pl",
    ),
    _Origin(
        ("João", "Ana Clara", "Luíza", "Thiago"),
        ("Silva", "Gonçalves", "Araújo", "Conceição"),
        ("pt_BR", "POR"),
        lambda rng: f"+55 11 9{_digits(rng, 4)}-{_digits(rng, 4)}",
        "com.br",
    ),
    _Origin(
        ("陽翔", "さくら", "健太", "美咲"),
        ("佐藤", "田中", "鈴木", "高橋"),
        ("JPN", "J", "ja-JP"),
        lambda rng: f"+81 90-{rng.randrange(1, 10)}{_digits(rng, 3)}-{_digits(rng, 4)}",
        "jp",
    ),
    _Origin(
        ("Γιώργος", "Ελένη", "Νίκος"),
        ("Παπαδόπουλος", "Οικονόμου", "Γεωργίου"),
        ("GRE", "el-GR"),
        lambda rng: f"+30 69{rng.choice('3479')} {_digits(rng, 3)} {_digits(rng, 4)}",
        "gr",
    ),
    _Origin(
        # "Björn" as a Mac keyboard may store it: decomposed; Loop gets the NFC form.
        ("Bjo\u0308rn", "Astrid", "Linnéa"),
        ("Lindqvist", "Åström", "Sjöberg"),
        ("SWE", "sv-SE"),
        lambda rng: f"+46 70 {_digits(rng, 3)} {_digits(rng, 2)} {_digits(rng, 2)}",
        "se",
    ),
    _Origin(
        ("Elif", "Mehmet", "Zeynep"),
        ("Yılmaz", "Öztürk", "Çelik"),
        ("TUR",),
        lambda rng: f"+90 532 {_digits(rng, 3)} {_digits(rng, 2)} {_digits(rng, 2)}",
        "com.tr",
    ),
)


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(char for char in folded.lower() if char.isascii() and char.isalnum())


def _generated_guest(guest_id: int, rng: random.Random, created: datetime) -> _Guest:
    origin = rng.choice(_ORIGINS)
    first, last = rng.choice(origin.firsts), rng.choice(origin.lasts)
    local = ".".join(word for word in (_ascii_word(first), _ascii_word(last)) if word)
    email = f"{local or f'guest{guest_id}'}@example.{origin.tld}"
    return _Guest(
        guest_id=guest_id,
        salutation=rng.choice((None, "Mr", "Ms", "Dr", "Mx")),
        first=first,
        last=last,
        email=email if rng.random() > 0.15 else None,
        phone=origin.phone(rng) if rng.random() > 0.1 else None,
        lang=rng.choice(origin.languages) if rng.random() > 0.05 else None,
        vip="VIP" if rng.random() < 0.06 else None,
        loyalty_no=f"GZ-{_digits(rng, 6)}" if rng.random() < 0.3 else None,
        updated_at=created,
    )


def _fill(rng: random.Random, start: int, end: int) -> list[tuple[int, int]]:
    """Random stays (first night, nights) filling the nights `start` to `end - 1`."""
    stays: list[tuple[int, int]] = []
    night = start
    while night < end:
        if rng.random() < 0.3:
            night += 1
            continue
        nights = min(rng.choice(_STAY_LENGTHS), end - night)
        stays.append((night, nights))
        night += nights
    return stays


class _Hotel:
    """The PMS: an in-memory model, and its SQLite file kept equal to it after each change."""

    def __init__(self, day: date, path: Path) -> None:
        self.day = day
        self.path = path
        self.rooms: dict[str, _Room] = {}
        self.bookings: list[_Booking] = []
        self.roles: dict[str, _Booking] = {}
        self._connection: sqlite3.Connection | None = None

    # building

    def build(self, rng: random.Random) -> None:
        """Invent the fortnight, deterministically for a given seed, and write the database."""
        eve = datetime.combine(self.day - timedelta(days=1), time(16, 30))
        for floor in range(1, 5):
            for number in (*range(1, 13), 14):  # no room 13, as in many hotels
                room_no = f"{floor}{number:02d}"
                kind = ("DBL", "TWN", "KNG", "STE")[number % 4]
                self.rooms[room_no] = _Room(room_no, floor, kind, "IP", eve)
        self.rooms[_OUT_OF_ORDER].hk_status = "OO"

        # Every change the PMS holds happened before go-live: a modified_at in the future
        # would hold loopsync's incremental cursor there until that time came.
        go_live = datetime.combine(self.day, time(5, 0))
        placed: list[tuple[str, int, int, str | None]] = []
        first, last = _WINDOW
        for room_no in self.rooms:
            if room_no == _OUT_OF_ORDER:
                continue
            night = first - rng.randrange(0, 3)
            for start, nights, role in [*_FIXED_STAYS.get(room_no, []), (last, 0, None)]:
                placed.extend((room_no, s, n, None) for s, n in _fill(rng, night, start))
                if nights:
                    if role is not None:
                        placed.append((room_no, start, nights, role))
                    night = start + nights
        placed.sort(key=lambda stay: (stay[1], stay[0]))

        for number, (room_no, start, nights, role) in enumerate(placed, start=1001):
            arrive = datetime.combine(self.day + timedelta(days=start), _ARRIVE_AT)
            depart = datetime.combine(self.day + timedelta(days=start + nights), _DEPART_AT)
            booked = min(arrive, go_live) - timedelta(
                days=rng.randrange(1, 60), hours=rng.randrange(8)
            )
            guest = self._guest(number, role, rng, booked)
            booking = _Booking(number, guest, room_no, None, "RES", arrive, depart, booked)
            booking.role = role
            self._settle(booking, rng)
            self.bookings.append(booking)
            if role is not None:
                self.roles[role] = booking
        self._add_cancellations(rng, len(placed) + 1001)
        for booking in self.bookings:
            room = self.rooms.get(booking.room or "")
            if room is not None and booking.status == "INH":
                room.hk_status = "DI"  # slept in: needs service
        self._write()

    def _guest(self, number: int, role: str | None, rng: random.Random, booked: datetime) -> _Guest:
        if role is None:
            return _generated_guest(number, rng, booked)
        return _Guest(number, *_FEATURED[role], updated_at=booked)

    def _settle(self, booking: _Booking, rng: random.Random) -> None:
        """The booking's state at go-live (06:00 on the demo day)."""
        arrival_day, departure_day = booking.arrive.date(), booking.depart.date()
        if arrival_day < self.day:
            booking.checkin_time = datetime.combine(
                arrival_day, time(rng.randrange(14, 22), rng.randrange(60))
            )
            booking.status, booking.updated_at = "INH", booking.checkin_time
        if departure_day < self.day:
            booking.checkout_time = datetime.combine(
                departure_day, time(rng.randrange(7, 11), rng.randrange(60))
            )
            booking.status, booking.updated_at = "OUT", booking.checkout_time
        # Rooms are assigned the day before arrival.
        if arrival_day <= self.day + timedelta(days=1):
            booking.room = booking.planned_room

    def _add_cancellations(self, rng: random.Random, number: int) -> None:
        changed_at = datetime.combine(self.day, time(5, 0))
        for offset, status in ((-5, "NOS"), (-2, "CXL"), (-1, "NOS"), (2, "CXL"), (4, "CXL")):
            arrive = datetime.combine(self.day + timedelta(days=offset), _ARRIVE_AT)
            booked = min(arrive, changed_at) - timedelta(days=rng.randrange(5, 60))
            guest = _generated_guest(number, rng, booked)
            changed = min(arrive + timedelta(hours=9), changed_at)
            depart = arrive + timedelta(days=rng.randrange(1, 4), hours=-4)
            booking = _Booking(number, guest, None, None, status, arrive, depart, changed)
            self.bookings.append(booking)
            number += 1

    def _write(self) -> None:
        self.path.unlink(missing_ok=True)
        self._connection = sqlite3.connect(self.path)
        with self._connection as connection:
            connection.executescript(_SCHEMA)
            connection.executemany(
                "INSERT INTO rooms VALUES (?, ?, ?, ?, ?)",
                [
                    (r.room_no, r.floor, r.room_type, r.hk_status, _text(r.hk_updated_at))
                    for r in self.rooms.values()
                ],
            )
            connection.executemany(
                "INSERT INTO guests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        g.guest_id,
                        g.salutation,
                        g.first,
                        g.last,
                        g.email,
                        g.phone,
                        g.lang,
                        g.vip,
                        g.loyalty_no,
                        _text(g.updated_at),
                    )
                    for g in (b.guest for b in self.bookings)
                ],
            )
            connection.executemany(
                "INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [self._booking_row(b) for b in self.bookings],
            )

    @staticmethod
    def _booking_row(b: _Booking) -> tuple[object, ...]:
        return (
            b.resv_no,
            b.guest.guest_id,
            b.room,
            b.status,
            _text(b.arrive),
            _text(b.depart),
            _text(b.checkin_time),
            _text(b.checkout_time),
            _text(b.updated_at),
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # the front desk and housekeeping: each change is committed at once, as a PMS does

    def save(self, booking: _Booking, at: datetime) -> None:
        booking.updated_at = at
        assert self._connection is not None
        with self._connection as connection:
            connection.execute(
                "UPDATE reservations SET room_no = ?, status = ?, checkin_time = ?,"
                " checkout_time = ?, updated_at = ? WHERE resv_no = ?",
                (
                    booking.room,
                    booking.status,
                    _text(booking.checkin_time),
                    _text(booking.checkout_time),
                    _text(at),
                    booking.resv_no,
                ),
            )

    def set_room_status(self, room_no: str, status: str, at: datetime) -> None:
        room = self.rooms[room_no]
        room.hk_status, room.hk_updated_at = status, at
        assert self._connection is not None
        with self._connection as connection:
            connection.execute(
                "UPDATE rooms SET hk_status = ?, hk_updated_at = ? WHERE room_no = ?",
                (status, _text(at), room_no),
            )

    def ready(self, room_no: str | None) -> bool:
        return room_no is not None and self.rooms[room_no].hk_status in READY_CODES

    def counts(self) -> tuple[int, int]:
        """Rooms and reservations, as the PMS database holds them."""
        assert self._connection is not None
        count = self._connection.execute
        rooms = count("SELECT COUNT(*) FROM rooms").fetchone()[0]
        reservations = count("SELECT COUNT(*) FROM reservations").fetchone()[0]
        return int(rooms), int(reservations)


# --- what a hotel expects ------------------------------------------------------------


@dataclass(slots=True)
class _Expected:
    """What Loop should receive in one step, written down before the cycle runs."""

    upserts: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    held: set[tuple[str, str]] = field(default_factory=set)
    skipped: set[tuple[str, str]] = field(default_factory=set)


class _Expectations:
    """The hotel's side of the story: what each change at the desk should make Loop see.

    Written from the front desk's point of view and the rules as DESIGN §5 states them,
    independently of `loopsync.rules`, so that the demo notices when the two disagree.
    """

    def __init__(self, hotel: _Hotel) -> None:
        self._hotel = hotel
        self._sent: dict[str, tuple[bool, str | None]] = {}  # contacts Loop has
        self._checkin_handled: set[str] = set()
        self._checkout_handled: set[str] = set()
        self._roomready_handled: set[tuple[str, str]] = set()
        self._queued: list[tuple[str, str]] = []
        self._too_old: list[tuple[str, str]] = []
        self._held: list[tuple[str, str, datetime]] = []

    def checked_in(self, booking: _Booking, recorded_at: datetime) -> None:
        assert booking.checkin_time is not None
        if booking.rid in self._checkin_handled:
            return  # R8: a check-in redone after a reversal is not welcomed twice
        self._checkin_handled.add(booking.rid)
        too_old = recorded_at - booking.checkin_time > _MAX_EVENT_AGE  # R7
        (self._too_old if too_old else self._queued).append((booking.rid, "checkin"))

    def checked_out(self, booking: _Booking) -> None:
        if booking.rid not in self._checkout_handled:
            self._checkout_handled.add(booking.rid)
            self._queued.append((booking.rid, "checkout"))

    def settle(self, local: datetime, *, baseline: bool) -> _Expected:
        """Everything due at a cycle at `local` time (the property's wall clock)."""
        expected = _Expected()
        now = local.astimezone(UTC)
        for booking in self._hotel.bookings:
            self._contact(booking, now, expected, baseline=baseline)
        if not baseline:
            for rid, kind in self._queued:
                self._event(rid, kind, local, expected)
            expected.skipped.update(self._too_old)
        self._queued.clear()
        self._too_old.clear()
        for booking in self._hotel.bookings:
            if self._roomready_due(booking, local):
                assert booking.room is not None
                self._roomready_handled.add((booking.rid, booking.room))
                if not baseline:  # R6: at go-live it counts as sent
                    self._event(booking.rid, "roomready", local, expected)
        for rid, kind, until in list(self._held):
            if until <= local:
                self._held.remove((rid, kind, until))
                expected.events[(rid, kind)] += 1
        return expected

    def _contact(
        self, booking: _Booking, now: datetime, expected: _Expected, *, baseline: bool
    ) -> None:
        rid = booking.rid
        arrival = booking.arrive.replace(tzinfo=ZONE)
        departure = booking.depart.replace(tzinfo=ZONE)
        if departure < now - _HISTORY or arrival > now + _FUTURE:
            return
        if booking.status in _GONE:
            if self._sent.pop(rid, None) is not None:
                expected.deletes.add(rid)
            return
        signature = (booking.status == "INH", booking.room)
        if rid in self._sent:
            if self._sent[rid] != signature:
                self._sent[rid] = signature
                expected.upserts.add(rid)
        elif booking.room is not None and booking.status in _LIVE:
            self._sent[rid] = signature
            expected.upserts.add(rid)
        if baseline and booking.status in ("INH", "OUT"):
            self._checkin_handled.add(rid)
        if baseline and booking.status == "OUT":
            self._checkout_handled.add(rid)

    def _roomready_due(self, booking: _Booking, local: datetime) -> bool:
        return (
            booking.status == "RES"
            and booking.rid in self._sent
            and booking.rid not in self._checkin_handled
            and self._hotel.ready(booking.room)
            and booking.arrive.date() == local.date()
            and local.time() >= _ROOMREADY_FROM
            and (booking.rid, booking.room or "") not in self._roomready_handled
        )

    def _event(self, rid: str, kind: str, local: datetime, expected: _Expected) -> None:
        clock = local.time()
        quiet = clock >= _QUIET_START or clock < _QUIET_END
        if kind in _QUIET_KINDS and quiet:
            day = local.date() + timedelta(days=1) if clock >= _QUIET_START else local.date()
            self._held.append((rid, kind, datetime.combine(day, _QUIET_END, tzinfo=ZONE)))
            expected.held.add((rid, kind))
        else:
            expected.events[(rid, kind)] += 1


# --- the script ----------------------------------------------------------------------


@dataclass(slots=True)
class _Step:
    at: datetime  # local, aware
    caption: str
    notes: list[str] = field(default_factory=list)
    remarks: dict[str, str] = field(default_factory=dict)  # reservation id -> why


class _FrontDesk:
    """The scripted day: changes to the PMS, each told to the hotel's expectations."""

    def __init__(self, hotel: _Hotel, expectations: _Expectations) -> None:
        self.hotel = hotel
        self.expect = expectations
        self.vacated: list[str] = []

    def moment(self, clock: str, days: int = 0) -> datetime:
        """A wall-clock time of the hotel on the demo day (or `days` later), naive."""
        hours, minutes = (int(part) for part in clock.split(":"))
        return datetime.combine(self.hotel.day + timedelta(days=days), time(hours, minutes))

    def check_in(
        self, booking: _Booking, at: datetime, recorded_at: datetime | None = None
    ) -> None:
        booking.status, booking.checkin_time = "INH", at
        self.hotel.save(booking, recorded_at or at)
        self.expect.checked_in(booking, recorded_at or at)

    def check_in_all(self, bookings: Sequence[_Booking], start: datetime) -> None:
        for index, booking in enumerate(bookings):
            self.check_in(booking, start + timedelta(minutes=9 * index))

    def reverse_check_in(self, booking: _Booking, at: datetime) -> None:
        booking.status, booking.checkin_time = "RES", None
        self.hotel.save(booking, at)

    def check_out(self, booking: _Booking, at: datetime) -> None:
        booking.status, booking.checkout_time = "OUT", at
        self.hotel.save(booking, at)
        assert booking.room is not None
        self.hotel.set_room_status(booking.room, "DI", at)
        self.vacated.append(booking.room)
        self.expect.checked_out(booking)

    def check_out_all(self, bookings: Sequence[_Booking], start: datetime) -> None:
        for index, booking in enumerate(bookings):
            self.check_out(booking, start + timedelta(minutes=9 * index))

    def clean_vacated(self, start: datetime) -> list[str]:
        """Housekeeping cleans every room left since its last round; returns them."""
        rooms, self.vacated = self.vacated, []
        for index, room_no in enumerate(rooms):
            self.hotel.set_room_status(room_no, "CL", start + timedelta(minutes=7 * index))
        return rooms

    def cancel(self, booking: _Booking, at: datetime, status: str = "CXL") -> None:
        booking.status = status
        self.hotel.save(booking, at)

    def move(self, booking: _Booking, room_no: str, at: datetime) -> None:
        booking.room = room_no
        self.hotel.save(booking, at)

    def assign_rooms(self, bookings: Sequence[_Booking], at: datetime) -> None:
        for booking in bookings:
            booking.room = booking.planned_room
            self.hotel.save(booking, at)


def _script(desk: _FrontDesk) -> Iterator[_Step]:
    """The day, step by step: each step changes the PMS, then yields to run one cycle."""
    hotel, day, at = desk.hotel, desk.hotel.day, desk.moment
    role = hotel.roles

    def local(clock: str, days: int = 0) -> datetime:
        return at(clock, days).replace(tzinfo=ZONE)

    by_number = sorted(hotel.bookings, key=lambda b: b.resv_no)
    departing = [
        b for b in by_number if b.status == "INH" and b.depart.date() == day and b.role is None
    ]
    arriving = [
        b for b in by_number if b.status == "RES" and b.arrive.date() == day and b.role is None
    ]
    late_arrival = arriving.pop()
    late_checkout = departing.pop()
    day_after = [
        b
        for b in by_number
        if b.status == "RES" and b.room is None and b.arrive.date() == day + timedelta(days=2)
    ]
    zoe, olga, layla, noa = role["zoe"], role["olga"], role["layla"], role["noa"]

    yield _Step(
        local("06:00"),
        "Go-live: loopsync reads the PMS for the first time",
        [
            "Baseline (R6): the contacts of everyone in house or arriving go to Loop, but no "
            "events: no welcome for a check-in that happened before go-live.",
        ],
    )

    desk.check_out(role["early_out"], at("07:05"))
    desk.check_in(role["early_in"], at("07:15"))
    yield _Step(
        local("07:30"),
        "An early bird checks out before breakfast; an early arrival checks in",
        [
            "Quiet hours until 08:00 (R11): the checkout (Loop's thank-you message) waits; a "
            "check-in goes at once, the guest is at the desk.",
        ],
    )

    cleaned = desk.clean_vacated(at("08:05"))
    leaving = [role["leaves_for_zoe"], *departing[:3]]
    desk.check_out_all(leaving, at("08:12"))
    yield _Step(
        local("09:00"),
        f"{len(leaving)} guests check out; housekeeping cleans room {_rooms(cleaned)}",
        [
            "Roomready (R4) for today's arrivals whose rooms stood ready since last night: no "
            "PMS row changed for them, it is simply past 08:00 on their arrival day.",
        ],
        {role["early_out"].rid: "held since 07:30, sent after 08:00 (R11)"},
    )

    cleaned = desk.clean_vacated(at("09:40"))
    desk.check_out_all(departing[3:], at("09:10"))
    yield _Step(
        local("11:00"),
        f"{len(departing[3:])} guests check out; {len(cleaned)} rooms are cleaned, "
        f"{zoe.room} among them",
        [
            "A room that becomes clean changes no reservation row: the query's modified_at "
            "includes the room's housekeeping time, so loopsync sees it.",
        ],
    )

    old_room = olga.room or ""
    cleaned = desk.clean_vacated(at("11:20"))
    desk.cancel(role["jurgen"], at("11:35"))
    hotel.set_room_status(old_room, "OO", at("12:05"))
    desk.move(olga, "409", at("12:10"))
    desk.check_out(late_checkout, at("12:40"))
    yield _Step(
        local("13:00"),
        f"{role['jurgen'].guest.name} cancels tomorrow's stay; a leak in room {old_room}: "
        f"{olga.guest.name} is moved to 409; a late checkout; {len(cleaned)} rooms are cleaned",
        [
            "A cancellation deletes the contact (R5). The move is an upsert, and room 409 is "
            "ready: roomready for the new room.",
        ],
        {olga.rid: f"moved from {old_room}", role["jurgen"].rid: "cancelled (R5)"},
    )

    desk.clean_vacated(at("13:30"))
    first_in = [zoe, role["li"], layla, *arriving[:2]]
    desk.check_in_all(first_in, at("14:05"))
    yield _Step(
        local("15:00"),
        f"Check-in time: {len(first_in)} arrivals check in",
        ["A checkin event each (R2): Loop's welcome message."],
    )

    desk.reverse_check_in(layla, at("16:10"))
    desk.check_in(noa, at("08:30"), recorded_at=at("16:30"))
    more_in = [olga, *arriving[2:5]]
    desk.check_in_all(more_in, at("15:20"))
    yield _Step(
        local("17:00"),
        f"{layla.guest.name}'s check-in is reversed (her card was declined); the desk keys in "
        f"{noa.guest.name}'s 08:30 check-in only now; {len(more_in)} more arrivals",
        [
            "A reversal is an upsert (checkedInStatus false) and nothing else. A check-in "
            "recorded 8 hours after it happened is too old for a welcome (R7).",
        ],
        {layla.rid: "check-in reversed", noa.rid: "checked in 8 h ago (R7)"},
    )

    desk.check_in(layla, at("19:05"))
    desk.check_in_all(arriving[5:], at("17:40"))
    yield _Step(
        local("20:00"),
        f"{layla.guest.name} pays and is checked in again; {len(arriving[5:])} more arrivals",
        ["Checked in again after a reversal: an upsert, but no second welcome (R8)."],
        {layla.rid: "checked in again, no second welcome (R8)"},
    )

    siobhan = role["siobhan"]
    desk.check_out(siobhan, at("22:35"))
    desk.check_in(late_arrival, at("22:50"))
    yield _Step(
        local("23:00"),
        f"{siobhan.guest.name} checks out a night early to catch the night train; a late arrival",
        [
            "Quiet hours (R11): her checkout waits in the outbox until 08:00. The late "
            "arrival's checkin goes at once.",
        ],
    )

    no_show = role["no_show"]
    desk.cancel(no_show, at("04:30", days=1), status="NOS")
    desk.assign_rooms(day_after, at("04:40", days=1))
    yield _Step(
        local("08:05", days=1),
        f"Next morning: the night audit marked {no_show.guest.name} a no-show and gave rooms "
        f"to the {len(day_after)} stays arriving tomorrow",
        [
            "The held checkout goes out now that quiet hours are over. Rooms ready for today's "
            "arrivals: roomready, by the clock. A no-show deletes the contact (R5); stays that "
            "just got a room can now be created in Loop.",
        ],
        {siobhan.rid: "held overnight (R11)", no_show.rid: "no-show (R5)"},
    )


def _rooms(rooms: Sequence[str]) -> str:
    return ", ".join(rooms) if rooms else "(none)"


# --- running it -----------------------------------------------------------------------


class _SimulatedClock:
    """The demo's `now`: moved by the script, never by waiting."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


class _StoryLog(logging.Handler):
    """Keeps loopsync's warnings of one step, to be told in the story where they happened."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass(slots=True)
class _Received:
    """What Loop received in one step, grouped per reservation in arrival order."""

    actions: dict[str, list[str]] = field(default_factory=dict)
    upserts: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DemoResult:
    """What a demo run did: its exit code, the problems found, and what Loop received."""

    exit_code: int
    problems: list[str]
    rooms: int
    reservations: int
    contacts: dict[str, dict[str, Any]]
    events: list[tuple[str, str]]
    deleted: list[str]
    roles: dict[str, str]  # script role -> reservation id (e.g. "zoe" -> "1107")
    loop_port: int  # where the simulator listened, as the generated config says


class _Demo:
    """One run: the hotel, its expectations, and the story told as the cycles run."""

    def __init__(self, workdir: Path, day: date, out: TextIO) -> None:
        self.workdir = workdir
        self.day = day
        self.out = out
        self.token = f"demo-{token_hex(12)}"
        self.hotel = _Hotel(day, workdir / PMS_FILE)
        self.expectations = _Expectations(self.hotel)
        self.problems: list[str] = []
        self.checks = 0
        self.names: dict[str, str] = {}
        self.rooms: dict[str, str] = {}
        self.log = _StoryLog()
        self.log.addFilter(SecretFilter([self.token]))
        self.held_total = 0
        self.held_before: set[tuple[str, str]] = set()
        self.skipped_total = 0
        self.cycles = 0

    # output

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def check(self, condition: bool, problem: str) -> None:
        self.checks += 1
        if not condition:
            self.problems.append(problem)

    # setup

    def introduce(self, rooms: int, reservations: int, loop_url: str, *, replaced: bool) -> None:
        arrivals = [b.arrive.date() for b in self.hotel.bookings]
        self.say(f"loopsync demo: a day at {HOTEL}, {rooms} rooms (hotel and guests are fictional)")
        for name, text in (
            ("PMS", f"SQLite, {reservations} reservations arriving {_day(min(arrivals))} to "
             f"{_day(max(arrivals))}, read by {QUERY_FILE}"),
            ("Loop", f"the built-in simulator at {loop_url}"),
            ("Clock", f"simulated: {_day(self.day)} {self.day.year}, {ZONE_NAME}; "
             "one loopsync cycle per step"),
        ):  # fmt: skip
            self.say(f"  {name:<6}{text}")
        if replaced:
            self.say(f"  (the files of an earlier demo in {self.workdir} were replaced)")
        self.say()

    def prepare(self, loop_port: int) -> Path:
        self.hotel.build(random.Random(SEED))
        query = (files("loopsync") / "demo_data" / QUERY_FILE).read_text(encoding="utf-8")
        (self.workdir / QUERY_FILE).write_text(query, encoding="utf-8")
        _write_private(self.workdir / TOKEN_FILE, self.token + "\n")
        config = self.workdir / CONFIG_FILE
        _write_private(config, _config_text(self.workdir, loop_port))
        return config

    # one step

    def run_step(
        self, step: _Step, syncer: Syncer, store: StateStore, simulator: LoopSimulator
    ) -> None:
        before = store.load_states()
        baseline = not before
        expected = self.expectations.settle(step.at, baseline=baseline)
        first = len(simulator.received)
        self.log.lines.clear()
        summary = syncer.sync_once(budget=None)
        self.cycles += 1
        received = self._received(simulator, first)
        after = store.load_states()
        now = step.at.astimezone(UTC)
        held = {
            (entry.reservation_id, entry.kind.value)
            for entry in store.pending()
            if entry.not_before is not None and entry.not_before > now
        }
        skipped = _newly_skipped(before, after)
        self.held_total += len(held - self.held_before)
        self.held_before = held
        self.skipped_total += len(skipped)
        self._tell(step, received, held, skipped, baseline=baseline)
        self._compare(step, expected, received, held, skipped, summary)

    def _received(self, simulator: LoopSimulator, first: int) -> _Received:
        received = _Received()
        for request in simulator.received[first:]:
            body = request.body if isinstance(request.body, dict) else {}
            if request.http_status != 200 or not request.processed:
                received.refused.append(f"{request.method} {request.path}: {request.http_status}")
                continue
            if request.path == CONTACT_PATH and request.method == "POST":
                rid = str(body.get("foreignId"))
                self.names[rid] = _display_name(body.get("firstname"), body.get("lastname"))
                if "room" in body:
                    self.rooms[rid] = str(body["room"])
                received.upserts.add(rid)
                action = "upsert"
            elif request.path == CONTACT_PATH:
                rid = str(body.get("foreignId"))
                received.deletes.add(rid)
                action = "contact deleted"
            elif request.path == EVENT_PATH:
                rid, action = str(body.get("foreignId")), str(body.get("event"))
                received.events[(rid, action)] += 1
            else:
                continue
            received.actions.setdefault(rid, []).append(action)
        return received

    def _who(self, rid: str) -> str:
        name = self.names.get(rid, "?")
        room = self.rooms.get(rid)
        return f"{rid}  {name}" + (f", room {room}" if room else "")

    def _tell(
        self,
        step: _Step,
        received: _Received,
        held: set[tuple[str, str]],
        skipped: set[tuple[str, str]],
        *,
        baseline: bool,
    ) -> None:
        label = step.at.strftime("%a %H:%M")
        indent = " " * (len(label) + 2)
        self.say(_wrap(step.caption, f"{label}  ", indent))
        for note in step.notes:
            self.say(_wrap(note, f"{indent}· ", f"{indent}  "))
        events = sum(received.events.values())
        parts = [
            _plural(len(received.upserts), "contact upsert"),
            _plural(len(received.deletes), "deletion"),
            _plural(events, "event"),
        ]
        said = ", ".join(part for part in parts if not part.startswith("0 "))
        if baseline:
            said += " and no events"
        self.say(f"{indent}Loop received {said or 'nothing'}" + (":" if said else ""))
        lines: list[str] = []
        upsert_only: list[str] = []
        rids = list(received.actions)
        rids += sorted({rid for rid, _ in held | skipped} - set(rids), key=int)
        for rid in rids:
            actions = list(received.actions.get(rid, []))
            actions += [f"{kind} held until 08:00" for r, kind in sorted(held) if r == rid]
            actions += [f"no {kind}, too old" for r, kind in sorted(skipped) if r == rid]
            remark = f" — {step.remarks[rid]}" if rid in step.remarks else ""
            line = f"{indent}  {self._who(rid)}: {', '.join(actions)}{remark}"
            (upsert_only if actions == ["upsert"] and not remark else lines).append(line)
        shown = upsert_only if len(upsert_only) <= _UPSERT_LINES else upsert_only[:3]
        for line in [*lines, *shown]:
            self.say(line)
        if len(shown) < len(upsert_only):
            self.say(f"{indent}  … and {len(upsert_only) - len(shown)} more contacts")
        for warning in self.log.lines:
            self.say(f"{indent}  ! {warning}")
        if baseline:
            waiting = sum(1 for b in self.hotel.bookings if b.status == "RES" and b.room is None)
            note = (
                f"{_plural(waiting, 'stay')} further ahead have no room yet: Loop needs one to "
                "create a contact, so they wait. The warnings above are PMS data loopsync could "
                "not use: that field is left out, the contact still goes."
            )
            self.say(_wrap(note, f"{indent}· ", f"{indent}  "))
        self.say()

    def _compare(
        self,
        step: _Step,
        expected: _Expected,
        received: _Received,
        held: set[tuple[str, str]],
        skipped: set[tuple[str, str]],
        summary: CycleSummary,
    ) -> None:
        label = step.at.strftime("%a %H:%M")

        def who(pairs: Iterable[tuple[str, str]]) -> str:
            return ", ".join(sorted(f"{kind} {rid}" for rid, kind in pairs))

        missing = expected.events - received.events
        extra = received.events - expected.events
        self.check(not missing, f"{label}: Loop did not receive {who(missing)}")
        self.check(
            not extra, f"{label}: Loop received {who(extra)}, which the story did not expect"
        )
        self.check(
            expected.upserts == received.upserts,
            f"{label}: contact upserts {sorted(received.upserts, key=int)}, "
            f"expected {sorted(expected.upserts, key=int)}",
        )
        self.check(
            expected.deletes == received.deletes,
            f"{label}: deletions {sorted(received.deletes)}, expected {sorted(expected.deletes)}",
        )
        self.check(
            expected.held <= held,
            f"{label}: {who(expected.held - held)} should wait for quiet hours to end",
        )
        self.check(
            expected.skipped == skipped,
            f"{label}: events not sent {who(skipped)}, expected {who(expected.skipped)}",
        )
        self.check(not received.refused, f"{label}: Loop refused {received.refused}")
        self.check(summary.ok, f"{label}: the cycle did not succeed: {summary.one_line()}")
        self.check(summary.rejected == 0, f"{label}: {summary.rejected} PMS rows were rejected")

    # the end

    def final_checks(self, simulator: LoopSimulator, store: StateStore) -> None:
        role = {name: booking.rid for name, booking in self.hotel.roles.items()}
        contacts = simulator.contacts

        def contact(name: str) -> dict[str, Any]:
            return contacts.get(role[name], {})

        zoe, li = contact("zoe"), contact("li")
        self.check(
            (zoe.get("firstname"), zoe.get("lastname")) == ("Zoë", "Ñúñez-Øberg"),
            f"Zoë Ñúñez-Øberg's name arrived as {zoe.get('firstname')!r} {zoe.get('lastname')!r}",
        )
        self.check(
            (zoe.get("mobile"), zoe.get("language")) == ("34612345678", "es"),
            "Zoë's phone (+34 612 345 678) and language (Español) were not sent as 34612345678, es",
        )
        self.check(
            (li.get("lastname"), li.get("firstname"), li.get("language")) == ("李", "小龙", "zh"),
            f"李小龙 arrived as {li.get('lastname')!r} {li.get('firstname')!r}, "
            f"language {li.get('language')!r}",
        )
        self.check(
            contact("early_in").get("mobile") == "16135550134",
            "a North American number typed as +1 (613) 555-0134 was not sent as 16135550134",
        )
        bennett = next(
            (body for body in _upserts(simulator) if body["foreignId"] == role["leaves_for_zoe"]),
            {},
        )
        self.check(
            bool(bennett) and "mobile" not in bennett,
            "a UK number in national format (07911 123456) should be dropped, the contact sent",
        )
        bakker = next(
            (body for body in _upserts(simulator) if body["foreignId"] == role["early_out"]), {}
        )
        self.check(
            bool(bakker) and "email" not in bakker and bakker.get("mobile") == "31641234567",
            "an invalid e-mail should be dropped and the Dutch 06-41234567 sent as 31641234567",
        )
        checkins = simulator.event_kinds().count((role["layla"], "checkin"))
        self.check(checkins == 1, f"the reversed and redone check-in was welcomed {checkins} times")
        noa_state = store.get_state(role["noa"])
        self.check(
            noa_state is not None and noa_state.checkin is Mark.SKIPPED,
            "the check-in recorded 8 h late should be marked as skipped (R7)",
        )
        twice = _repeated(simulator)
        self.check(not twice, f"a guest got the same message twice: {', '.join(twice)}")
        waiting = store.outbox_counts()
        leftover = {state: n for state, n in waiting.items() if state != "done" and n}
        self.check(not leftover, f"the outbox still holds {leftover}")

    def tally(self, simulator: LoopSimulator) -> None:
        received = [r for r in simulator.received if r.processed and r.http_status == 200]
        upserts = [r for r in received if r.path == CONTACT_PATH and r.method == "POST"]
        guests = {str(r.body.get("foreignId")) for r in upserts if isinstance(r.body, dict)}
        kinds = Counter(kind for _, kind in simulator.event_kinds())
        tally = (
            f"Loop received {len(received)} requests in {self.cycles} cycles: "
            f"{len(upserts)} contact upserts ({len(guests)} guests), "
            f"{_plural(len(simulator.deleted), 'deletion')} and {sum(kinds.values())} events "
            f"({kinds['checkin']} checkin, {kinds['checkout']} checkout, {kinds['roomready']} "
            f"roomready); {self.held_total} waited for quiet hours to end, "
            f"{self.skipped_total} came too late to be sent"
            + ("." if _repeated(simulator) else ", and no guest got the same message twice.")
        )
        self.say(_wrap(tally, "Tally: ", "       "))
        if self.problems:
            self.say(f"Story checks: {len(self.problems)} of {self.checks} FAILED (see stderr).")
        else:
            self.say(f"Story checks: all {self.checks} passed.")


def _repeated(simulator: LoopSimulator) -> list[str]:
    """Check-ins and checkouts Loop received more than once for one guest."""
    return [
        f"{kind} {rid}"
        for (rid, kind), count in Counter(simulator.event_kinds()).items()
        if count > 1 and kind in ("checkin", "checkout")
    ]


def _upserts(simulator: LoopSimulator) -> list[dict[str, Any]]:
    return [
        r.body
        for r in simulator.received
        if r.path == CONTACT_PATH and r.method == "POST" and isinstance(r.body, dict)
    ]


def _newly_skipped(
    before: dict[str, StayState], after: dict[str, StayState]
) -> set[tuple[str, str]]:
    """Events the rules decided not to send in this cycle (R7), from the stored marks."""
    found: set[tuple[str, str]] = set()
    for rid, state in after.items():
        prior = before.get(rid)
        for kind in ("checkin", "checkout"):
            mark = getattr(state, kind)
            if mark is Mark.SKIPPED and (prior is None or getattr(prior, kind) is not mark):
                found.add((rid, kind))
    return found


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(text, _WIDTH, initial_indent=first, subsequent_indent=rest)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _toml(value: str) -> str:
    """A TOML basic string (the values written here hold no control characters)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _config_text(workdir: Path, port: int) -> str:
    folder = workdir.resolve()
    statuses = "\n".join(f"{code} = {_toml(status)}" for code, status in STATUS_MAP.items())
    languages = "\n".join(f"{code} = {_toml(lang)}" for code, lang in LANGUAGE_MAP.items())
    rules = "\n".join(f"{key} = {_toml(value)}" for key, value in RULES.items())
    ready = ", ".join(_toml(code) for code in READY_CODES)
    return f"""\
{_CONFIG_MARK} (mode 600).
# Every key is explained in config/loopsync.example.toml.
#
# One more cycle against these files (the demo's clock was simulated; this one is real):
#     loopsync --config {folder / CONFIG_FILE} --sync-now
# The demo's Loop simulator stopped with the demo: start one on its port first,
#     loopsync simulate-loop --port {port} --token "$(cat {folder / TOKEN_FILE})"
# or look without sending: add --dry-run.

[pms]
url = {_toml(f"sqlite:///{folder / PMS_FILE}")}  # loopsync opens it read-only
query_file = {_toml(QUERY_FILE)}  # relative to this file
mode = "incremental"
cursor_column = "modified_at"
room_ready_values = [{ready}]  # clean, inspected; DI (dirty) and OO (out of order) are not

[pms.status_map]
{statuses}

[property]
timezone = {_toml(ZONE_NAME)}
phone_region = "NL"  # how a number typed without a country code is read
default_language = "en"

[property.language_map]  # PMS codes the built-in table does not know
{languages}

[rules]
{rules}

[loop]
base_url = "http://127.0.0.1:{port}"
auth_token_file = {_toml(str(folder / TOKEN_FILE))}
max_requests_per_second = 1000  # a local simulator; keep the default for a real Loop account

[state]
url = {_toml(f"sqlite:///{folder / STATE_FILE}")}
"""


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it names a token)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


class DemoFolderError(LoopsyncError):
    """The work folder holds files of the demo's names that an earlier demo did not write."""

    exit_code = ExitCode.USAGE


def _clear_old_files(workdir: Path) -> bool:
    """Remove what an earlier demo left in a kept work folder; True if anything was there.

    Refuses (`DemoFolderError`) when those names belong to something else: `--workdir`
    pointed at a real loopsync folder must not lose its state store.
    """
    found = [workdir / name for name in _OLD_FILES if (workdir / name).exists()]
    for pattern in _OLD_PATTERNS:
        found.extend(workdir.glob(pattern))
    if not found:
        return False
    config = workdir / CONFIG_FILE
    try:
        ours = config.read_text(encoding="utf-8").startswith(_CONFIG_MARK)
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        names = ", ".join(sorted(path.name for path in found))
        raise DemoFolderError(
            f"{workdir} already holds {names}, not written by an earlier demo; "
            "give --workdir a new or empty folder"
        )
    for path in found:
        path.unlink(missing_ok=True)
    return True


@contextmanager
def _story_logging(handler: _StoryLog, verbose: bool) -> Iterator[None]:
    """loopsync's INFO lines would drown the story: its warnings are told in it instead."""
    logger = logging.getLogger("loopsync")
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    if not verbose:
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def play_demo(
    workdir: Path, *, today: date | None = None, out: TextIO | None = None, verbose: bool = False
) -> DemoResult:
    """Build the demo hotel in `workdir`, play its day against a simulator, check the story.

    `today` is the simulated day (default: today in the hotel's zone); the story goes to
    `out` (default stdout). The exit code is 1 when Loop did not receive what the story
    expected, 0 otherwise.
    """
    out = out or sys.stdout
    day = today or datetime.now(ZONE).date()
    workdir.mkdir(parents=True, exist_ok=True)
    demo = _Demo(workdir, day, out)
    replaced = _clear_old_files(workdir)
    simulator = LoopSimulator(demo.token).start()
    try:
        config_path = demo.prepare(simulator.port)
        rooms, reservations = demo.hotel.counts()
        demo.introduce(rooms, reservations, simulator.base_url, replaced=replaced)
        config = load_config(config_path)
        desk = _FrontDesk(demo.hotel, demo.expectations)
        steps = _script(desk)
        first = next(steps)
        clock = _SimulatedClock(first.at.astimezone(UTC))
        with (
            _story_logging(demo.log, verbose),
            open_syncer(config, now=clock.now) as (syncer, store),
            store.lock(),
        ):
            step: _Step | None = first
            while step is not None:
                clock.moment = step.at.astimezone(UTC)
                demo.run_step(step, syncer, store, simulator)
                if demo.problems:
                    # Later steps build on this one: their differences would only be echoes.
                    demo.say("The story stops here: Loop did not receive what the hotel expected.")
                    break
                step = next(steps, None)
            else:
                demo.final_checks(simulator, store)
        demo.tally(simulator)
        return DemoResult(
            exit_code=1 if demo.problems else 0,
            problems=demo.problems,
            rooms=rooms,
            reservations=reservations,
            contacts=simulator.contacts,
            events=simulator.event_kinds(),
            deleted=simulator.deleted,
            roles={name: booking.rid for name, booking in demo.hotel.roles.items()},
            loop_port=simulator.port,
        )
    finally:
        simulator.stop()
        demo.hotel.close()


def run_demo(workdir: Path | None, *, verbose: bool = False, today: date | None = None) -> int:
    """`loopsync demo`: play the demo day; exit code 0 when its story checks out.

    Without `workdir` everything lives in a temporary folder that is removed at the end.
    """
    if isinstance(sys.stdout, io.TextIOWrapper) and (sys.stdout.encoding or "").lower() != "utf-8":
        # Guests' names are the point of the demo; never fail on a narrow locale.
        sys.stdout.reconfigure(encoding="utf-8")
    keep = workdir is not None
    folder = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="loopsync-demo-"))
    try:
        result = play_demo(folder, today=today, verbose=verbose)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    if keep:
        _tell_files(folder.resolve(), result.loop_port)
    for problem in result.problems:
        print(f"loopsync demo: check failed: {problem}", file=sys.stderr)
    return result.exit_code


def _tell_files(folder: Path, port: int) -> None:
    config, token = folder / CONFIG_FILE, folder / TOKEN_FILE
    print()
    print(f"The demo's files are kept in {folder}:")
    print(f"  {PMS_FILE:<17} the PMS database (tables rooms, guests, reservations)")
    print(f"  {QUERY_FILE:<17} the query that reads it: a worked example of pms.query_file")
    print(f"  {CONFIG_FILE:<17} the config (mode 600), with {TOKEN_FILE} the simulator's token")
    print(f"  {STATE_FILE:<17} loopsync's state store")
    print("Run one more cycle against them (with the real clock this time):")
    print(f"  loopsync --config {config} --sync-now --dry-run   # shows what it would send")
    print(f"  loopsync --config {config} --sync-now             # sends it")
    print("The demo's Loop simulator stopped with the demo; to send, start one first:")
    print(f'  loopsync simulate-loop --port {port} --token "$(cat {token})"')
