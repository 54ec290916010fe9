"""The daemon as a real subprocess: a 1-second poll, an SQLite PMS, the simulator, signals.

Waiting is event-driven: the simulator's condition variable, the daemon's log lines
read as they come, and systemd notify datagrams on a test socket. No fixed sleeps.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from conftest import TEST_TOKEN
from pms_fixtures import (
    FULL_QUERY,
    STATUS_MAP,
    PmsDatabase,
    reservation_row,
    sqlite_url,
    write_query,
)

from loopsync.errors import ExitCode
from loopsync.simulator import LoopSimulator
from loopsync.store import OutboxState, StateStore

TODAY = datetime.now().date()
WAIT = 15.0  # upper bound for anything to happen; tests finish far sooner


class Daemon:
    """A `loopsync run` subprocess whose stderr lines and notify datagrams can be awaited."""

    def __init__(
        self, config: Path, notify_path: Path | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        env = {**os.environ, "LANG": "C", **(extra_env or {})}
        env.pop("NOTIFY_SOCKET", None)
        self.notify: socket.socket | None = None
        if notify_path is not None:
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(str(notify_path))
            env["NOTIFY_SOCKET"] = str(notify_path)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loopsync.cli", "--config", str(config), "-vv", "run"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.all_lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.all_lines.append(line)
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r}; got:\n{''.join(self.all_lines)[-3000:]}")

    def datagrams(self, count: int, timeout: float = WAIT) -> list[str]:
        assert self.notify is not None
        self.notify.settimeout(timeout)
        return [self.notify.recv(4096).decode() for _ in range(count)]

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(sig)
        code = self.process.wait(timeout=WAIT)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.notify is not None:
            self.notify.close()
        assert TEST_TOKEN not in "".join(self.all_lines)


@pytest.fixture
def simulator() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as running:
        yield running


@pytest.fixture
def hotel(tmp_path: Path, simulator: LoopSimulator) -> Iterator[tuple[PmsDatabase, Path]]:
    db = PmsDatabase(sqlite_url(tmp_path))
    db.insert(reservation_row("G1", room="101", arrival=TODAY, departure=TODAY + timedelta(days=2)))
    query = write_query(tmp_path, FULL_QUERY)
    status_map = ", ".join(f'{code} = "{status}"' for code, status in STATUS_MAP.items())
    config = tmp_path / "loopsync.toml"
    config.write_text(
        f"""[pms]
url = "{sqlite_url(tmp_path)}"
query_file = "{query}"
status_map = {{ {status_map} }}
[loop]
base_url = "{simulator.base_url}"
auth_token = "{TEST_TOKEN}"
read_timeout = "2s"
[state]
url = "sqlite:///{tmp_path / "state.db"}"
[schedule]
poll_interval = "1s"
""",
        encoding="utf-8",
    )
    config.chmod(0o600)
    yield db, config
    db.dispose()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.close()


def test_check_in_reaches_loop_within_two_intervals_and_sigterm_exits_cleanly(
    hotel, simulator, daemons, tmp_path
):
    db, config = hotel
    daemon = Daemon(config, tmp_path / "notify.sock")
    daemons.append(daemon)
    assert simulator.wait_for_received(1, WAIT)
    assert simulator.contacts["G1"]["checkedInStatus"] == "false"
    db.update("G1", status="INH", checked_in_at=datetime.now(), modified_at=datetime.now())
    changed = time.monotonic()
    assert simulator.wait_for_received(3, WAIT)
    assert time.monotonic() - changed < 2.5  # two intervals, and a little slack
    assert simulator.event_kinds() == [("G1", "checkin")]
    code, took = daemon.stop()
    assert code == 0
    assert took < 10
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    counts = store.outbox_counts()
    store.close()
    assert counts == {OutboxState.DONE: 3}


def test_notify_ready_then_watchdog_only_after_cycles(hotel, daemons, tmp_path):
    _, config = hotel
    daemon = Daemon(config, tmp_path / "notify.sock")
    daemons.append(daemon)
    first, second, third = daemon.datagrams(3)
    assert first.startswith("READY=1\nSTATUS=started; polling every 1 s")
    assert second.startswith("STATUS=sync at ")
    assert "upserted 1" in second
    assert third == "WATCHDOG=1"
    assert daemon.datagrams(2)[1] == "WATCHDOG=1"
    daemon.stop()


def test_pms_going_away_is_logged_and_the_next_tick_recovers(hotel, simulator, daemons):
    db, config = hotel
    daemon = Daemon(config)
    daemons.append(daemon)
    assert simulator.wait_for_received(1, WAIT)
    rows = db.rows()
    db.execute("DROP TABLE reservations")  # the PMS is down for maintenance
    line = daemon.wait_for_line("sync failed at")
    assert "no such table: reservations" in line
    assert "check pms.query_file" in line
    db = PmsDatabase(db.url)  # back, with its data
    db.insert(*[{**row, "lastname": "Back", "modified_at": datetime.now()} for row in rows])
    assert simulator.wait_for_received(2, WAIT)
    assert simulator.contacts["G1"]["lastname"] == "Back"
    assert "rows" in daemon.wait_for_line("recovered: sync at")
    assert daemon.stop()[0] == 0
    db.dispose()


def test_second_daemon_on_the_same_state_refuses(hotel, simulator, daemons):
    _, config = hotel
    first = Daemon(config)
    daemons.append(first)
    assert simulator.wait_for_received(1, WAIT)
    second = Daemon(config)
    daemons.append(second)
    assert second.process.wait(timeout=WAIT) == ExitCode.LOCKED
    assert any("another loopsync process (pid" in line for line in second.all_lines)
    assert first.stop()[0] == 0


def test_sighup_with_a_broken_config_keeps_the_old_one(hotel, simulator, daemons):
    db, config = hotel
    daemon = Daemon(config)
    daemons.append(daemon)
    assert simulator.wait_for_received(1, WAIT)
    good = config.read_text()
    config.write_text(good + '\n[rules]\nmax_event_age = "whenever"\n')
    daemon.process.send_signal(signal.SIGHUP)
    line = daemon.wait_for_line("config reload failed")
    assert "rules.max_event_age" in line
    db.update("G1", lastname="Still Running", modified_at=datetime.now())
    assert simulator.wait_for_received(2, WAIT)
    assert simulator.contacts["G1"]["lastname"] == "Still Running"
    config.write_text(good.replace('poll_interval = "1s"', 'poll_interval = "2s"'))
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_line("config reloaded")
    assert daemon.stop()[0] == 0


def test_sync_now_takes_turns_with_a_running_daemon(hotel, simulator, daemons):
    _, config = hotel
    daemon = Daemon(config)
    daemons.append(daemon)
    assert simulator.wait_for_received(1, WAIT)
    result = subprocess.run(
        [sys.executable, "-m", "loopsync.cli", "--config", str(config), "--sync-now"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "upserted 0" in result.stdout
    assert daemon.stop()[0] == 0


def test_metrics_endpoint_counts_cycles(hotel, simulator, daemons):
    _, config = hotel
    with socket.socket() as probe:  # a free port for the endpoint
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(config.read_text() + f"\n[metrics]\nenabled = true\nport = {port}\n")
    daemon = Daemon(config)
    daemons.append(daemon)
    daemon.wait_for_line(f"metrics on http://127.0.0.1:{port}/metrics")
    assert simulator.wait_for_received(1, WAIT)
    daemon.wait_for_line("sync at")  # the first cycle was recorded before this line's successor
    daemon.wait_for_line("sync at")
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'loopsync_actions_total{kind="upsert",outcome="delivered"} 1.0' in text
    assert 'loopsync_outbox_entries{state="done"} 1.0' in text
    ok_cycles = next(
        line
        for line in text.splitlines()
        if line.startswith('loopsync_cycles_total{kind="sync",result="ok"}')
    )
    assert float(ok_cycles.split()[-1]) >= 1
    assert daemon.stop()[0] == 0


def test_killed_while_an_event_is_on_the_wire_it_is_never_sent_twice(hotel, simulator, daemons):
    db, config = hotel
    first = Daemon(config)
    daemons.append(first)
    assert simulator.wait_for_received(1, WAIT)
    simulator.hang_next(1, path="ContactEvent")  # Loop got the welcome but has not answered
    db.update("G1", status="INH", checked_in_at=datetime.now(), modified_at=datetime.now())
    assert simulator.wait_for_received(3, WAIT)  # the upsert, then the event arrives
    first.process.kill()  # while it waits for the reply
    first.process.wait(timeout=WAIT)
    second = Daemon(config)
    daemons.append(second)
    line = second.wait_for_line("parked as uncertain")
    assert "G1 checkin" in line
    assert "loopsync stopped while sending it" in line
    second.wait_for_line("sync at")
    received_events = [r for r in simulator.received if r.path.endswith("ContactEvent")]
    assert len(received_events) == 1  # never resent by itself
    assert second.stop()[0] == 0
