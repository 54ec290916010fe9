"""Shared fixtures: real PostgreSQL and MariaDB databases, and the token-leak check."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# Every test that talks to Loop uses this token, so the whole run can be searched for it.
TEST_TOKEN = "tok-S3CRET-7f3a9c21"

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN_URL = "mysql+pymysql://root@127.0.0.1:3306/test"

_RUN_ID = uuid.uuid4().hex[:8]
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


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{_RUN_ID}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases (URL returned), all dropped at the end."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    created: list[str] = []

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
