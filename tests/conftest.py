"""Shared fixtures: real PostgreSQL and MariaDB databases, and the token-leak check."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# Every test that talks to Loop uses this token, so the whole run can be searched for it.
TEST_TOKEN = "tok-S3CRET-7f3a9c21"

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN_URL = "mysql+pymysql://root@127.0.0.1:3306/test"

# The start time is part of every database name, so a later run can drop what a killed
# run (Ctrl-C, a timeout) left behind.
_STARTED = int(time.time())
_RUN_ID = f"t{_STARTED}_{uuid.uuid4().hex[:6]}"
_STALE_AFTER = 6 * 3600
_LOG_CAPTURE = Path(f"/tmp/loopsync-test-log-{_RUN_ID}.txt")


class _EverythingHandler(logging.Handler):
    """Keeps every log line of the run, tracebacks included, for the token check."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self._stream = _LOG_CAPTURE.open("w", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        self._stream.write(self.format(record) + "\n")
        self._stream.flush()


def pytest_configure(config: pytest.Config) -> None:
    # Secret files the tests write are private, as an installer's are (loopsync refuses
    # world-readable ones); tests about that case chmod on purpose.
    os.umask(0o077)
    root = logging.getLogger()
    root.addHandler(_EverythingHandler())
    root.setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _LOG_CAPTURE.exists():
        return
    text = _LOG_CAPTURE.read_text(encoding="utf-8")
    _LOG_CAPTURE.unlink()
    if TEST_TOKEN in text:
        line = next(line for line in text.splitlines() if TEST_TOKEN in line)
        print(f"\nFAILED token leak: the Loop auth token appeared in the log: {line[:300]}")
        session.exitstatus = 1


def _stale(names: object) -> list[str]:
    """Test databases of runs that started hours ago and were killed before cleaning up."""
    stale = []
    for name in names:  # type: ignore[attr-defined]
        match = re.fullmatch(r"loopsync_t(\d+)_[0-9a-f]{6}_[0-9a-f]{6}", str(name))
        if match and _STARTED - int(match[1]) > _STALE_AFTER:
            stale.append(str(name))
    return stale


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{_RUN_ID}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases (URL returned), all dropped at the end."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    with admin.connect() as conn:
        names = conn.execute(sa.text("SELECT datname FROM pg_database")).scalars()
        for name in _stale(names):
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def make() -> str:
        name = _unique_name("loopsync")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def make_mariadb_database() -> Iterator[Callable[[], str]]:
    """A factory of fresh MariaDB databases (name returned), all dropped at the end."""
    admin = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    with admin.connect() as conn:
        for name in _stale(conn.execute(sa.text("SHOW DATABASES")).scalars()):
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))

    def make() -> str:
        name = _unique_name("loopsync")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        created.append(name)
        return name

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture
def pg_url(make_pg_database: Callable[[], str]) -> str:
    return make_pg_database()


@pytest.fixture
def mariadb_url(make_mariadb_database: Callable[[], str]) -> str:
    """A fresh MariaDB database through PyMySQL."""
    return f"mysql+pymysql://root@127.0.0.1:3306/{make_mariadb_database()}?charset=utf8mb4"
