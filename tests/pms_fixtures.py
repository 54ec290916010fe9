"""A stand-in PMS: a `reservations` table with the canonical columns, on any engine.

    with PmsDatabase(sqlite_url(tmp_path)) as pms_db:    # or a MariaDB / PostgreSQL URL
        pms_db.insert(reservation_row("R1"), reservation_row("R2", status="INH", room="101"))
        pms_db.update("R1", status="CXL", modified_at=datetime(2026, 12, 1, 13, 0))
    query_file = write_query(tmp_path, INCREMENTAL_QUERY)

The writer connects through a native driver (SQLite, PyMySQL, psycopg); loopsync
then reads the same table through whatever URL or ODBC string the test gives it.
Status codes are PMS-style (`RES`, `INH`, `OUT`, `CXL`, `NOS`; see `STATUS_MAP`) and
`room_ready` is a housekeeping code (`clean`/`dirty`), so that each engine returns the
same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url

CANONICAL_COLUMNS = (
    "reservation_id",
    "status",
    "room",
    "arrival",
    "departure",
    "firstname",
    "lastname",
    "email",
    "mobile",
    "language",
    "room_ready",
    "checked_in_at",
    "checked_out_at",
    "modified_at",
    "custom_loyalty",
)

# The PMS codes used by `reservation_row`, mapped as a config's `pms.status_map` would.
STATUS_MAP = {
    "RES": "reserved",
    "INH": "checked_in",
    "OUT": "checked_out",
    "CXL": "cancelled",
    "NOS": "no_show",
}

_SELECT = "SELECT " + ", ".join(CANONICAL_COLUMNS) + " FROM reservations"
FULL_QUERY = _SELECT + " ORDER BY reservation_id"
# On SQLite, modified_at is ISO text and `:since` compares as text (see loopsync.pms).
INCREMENTAL_QUERY = _SELECT + " WHERE modified_at >= :since ORDER BY modified_at, reservation_id"

# Microsecond timestamps on MariaDB, whose DATETIME drops fractions by default.
_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

_metadata = sa.MetaData()
RESERVATIONS = sa.Table(
    "reservations",
    _metadata,
    sa.Column("reservation_id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("room", sa.String(16)),
    sa.Column("arrival", sa.Date),
    sa.Column("departure", sa.Date),
    sa.Column("firstname", sa.String(100)),
    sa.Column("lastname", sa.String(100)),
    sa.Column("email", sa.String(254)),
    sa.Column("mobile", sa.String(32)),
    sa.Column("language", sa.String(16)),
    sa.Column("room_ready", sa.String(16)),
    sa.Column("checked_in_at", _TIMESTAMP),
    sa.Column("checked_out_at", _TIMESTAMP),
    sa.Column("modified_at", _TIMESTAMP, nullable=False),
    sa.Column("custom_loyalty", sa.String(32)),
)


def reservation_row(reservation_id: str, **values: Any) -> dict[str, Any]:
    """A complete canonical row: a reserved stay in December 2026, overridden by `values`."""
    unknown = set(values) - set(CANONICAL_COLUMNS)
    if unknown:
        raise ValueError(f"not canonical columns: {sorted(unknown)}")
    row: dict[str, Any] = {
        "reservation_id": reservation_id,
        "status": "RES",
        "room": None,
        "arrival": date(2026, 12, 3),
        "departure": date(2026, 12, 5),
        "firstname": "Ada",
        "lastname": "Lovelace",
        "email": "ada@example.com",
        "mobile": "+1 613 555 1234",
        "language": "en",
        "room_ready": "dirty",
        "checked_in_at": None,
        "checked_out_at": None,
        "modified_at": datetime(2026, 12, 1, 12, 0),
        "custom_loyalty": None,
    }
    row.update(values)
    return row


class PmsDatabase:
    """Writes the stand-in PMS table through a native driver URL."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        if create:
            RESERVATIONS.drop(self.engine, checkfirst=True)
            RESERVATIONS.create(self.engine)

    def insert(self, *rows: Mapping[str, Any]) -> None:
        """Insert rows; a column a row leaves out is NULL."""
        if rows:
            full = [{name: row.get(name) for name in CANONICAL_COLUMNS} for row in rows]
            with self.engine.begin() as conn:
                conn.execute(RESERVATIONS.insert(), full)

    def update(self, reservation_id: str, **values: Any) -> None:
        """Change columns of one reservation (set `modified_at` too, as a PMS would)."""
        with self.engine.begin() as conn:
            conn.execute(
                RESERVATIONS.update()
                .where(RESERVATIONS.c.reservation_id == reservation_id)
                .values(**values)
            )

    def delete(self, reservation_id: str) -> None:
        """Remove one reservation's row, as some PMSs do on cancellation."""
        with self.engine.begin() as conn:
            conn.execute(
                RESERVATIONS.delete().where(RESERVATIONS.c.reservation_id == reservation_id)
            )

    def rows(self) -> list[dict[str, Any]]:
        """Every row as the writer's driver sees it, ordered by reservation id."""
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(RESERVATIONS).order_by(RESERVATIONS.c.reservation_id))
            return [dict(row._mapping) for row in result]

    def execute(self, sql: str, **params: Any) -> None:
        """Run one statement of test setup (a view, a function) in its own transaction."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def dispose(self) -> None:
        """Close the writer's connections."""
        self.engine.dispose()

    def __enter__(self) -> PmsDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.dispose()


def sqlite_url(directory: Path, name: str = "pms.db") -> str:
    """A SQLAlchemy URL for a SQLite PMS file in `directory`."""
    return f"sqlite:///{directory / name}"


def mariadb_odbc_connect(database: str, *, port: int = 3306) -> str:
    """An ODBC connection string for a MariaDB database on the local server (root)."""
    return (
        f"DRIVER={{MariaDB Unicode}};SERVER=127.0.0.1;PORT={port};DATABASE={database};"
        "UID=root;PWD=;"
    )


def pg_odbc_connect(pg_url: str) -> str:
    """An ODBC connection string for the PostgreSQL database a psycopg URL points at."""
    url = make_url(pg_url)
    return (
        f"DRIVER={{PostgreSQL Unicode}};SERVER={url.host};PORT={url.port or 5432};"
        f"DATABASE={url.database};UID={url.username};PWD=;"
    )


def write_query(directory: Path, sql: str, name: str = "reservations.sql") -> Path:
    """Write a query file (UTF-8) and return its path, for `pms.query_file`."""
    path = directory / name
    path.write_text(sql + "\n", encoding="utf-8")
    return path
