"""The real `loopsync` entry point in a subprocess: exit codes, one-line errors, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
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
from loopsync.store import StateStore

TODAY = datetime.now().date()


@pytest.fixture
def simulator() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as running:
        yield running


class Setup:
    """A SQLite PMS with two guests, a config file, and a way to run the CLI on them."""

    def __init__(self, tmp_path: Path, simulator: LoopSimulator) -> None:
        self.tmp_path = tmp_path
        self.simulator = simulator
        self.db = PmsDatabase(sqlite_url(tmp_path))
        self.db.insert(
            reservation_row(
                "G1",
                room="101",
                arrival=TODAY,
                departure=TODAY + timedelta(days=2),
                lastname="Ñúñez-Øberg",
            ),
            reservation_row(
                "G2", room="102", arrival=TODAY, departure=TODAY + timedelta(days=3), lastname="李"
            ),
        )
        self.state = tmp_path / "state.db"
        self.config = tmp_path / "loopsync.toml"
        self.write_config()

    def write_config(self, **overrides: str) -> None:
        query = write_query(self.tmp_path, FULL_QUERY)
        status_map = ", ".join(f'{code} = "{status}"' for code, status in STATUS_MAP.items())
        sections = {
            "pms": f'url = "{sqlite_url(self.tmp_path)}"\nquery_file = "{query}"\n'
            f'status_map = {{ {status_map} }}\nroom_ready_values = ["clean"]',
            "property": 'timezone = "Europe/Amsterdam"\nphone_region = "NL"',
            "loop": f'base_url = "{self.simulator.base_url}"\nauth_token_file = "{self.tmp_path / "token"}"\n'
            'read_timeout = "1s"\nretry_base = "50ms"\ndelivery_budget = "3s"',
            "state": f'url = "sqlite:///{self.state}"',
        }
        sections.update(overrides)
        (self.tmp_path / "token").write_text(TEST_TOKEN)
        self.config.write_text(
            "".join(f"[{name}]\n{body}\n" for name, body in sections.items()), encoding="utf-8"
        )
        self.config.chmod(0o600)

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "loopsync.cli", "--config", str(self.config), *args]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            env={**os.environ, "LANG": "C", **(env or {})},
            check=False,
        )
        assert TEST_TOKEN not in result.stdout + result.stderr
        for path in self.tmp_path.glob("state.db*"):  # the database, its WAL and lock files
            assert TEST_TOKEN.encode() not in path.read_bytes(), path
        return result


@pytest.fixture
def setup(tmp_path: Path, simulator: LoopSimulator) -> Iterator[Setup]:
    made = Setup(tmp_path, simulator)
    yield made
    made.db.dispose()


def test_sync_now_delivers_and_prints_a_summary(setup: Setup):
    result = setup.run("--sync-now", "-vv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "read 2 rows; rejected 0; upserted 2; deleted 0; events: none; failures 0"
    )
    assert setup.simulator.contacts["G1"]["lastname"] == "Ñúñez-Øberg"
    assert setup.simulator.contacts["G2"]["lastname"] == "李"
    assert "Ñúñez" not in result.stderr  # not even at -vv
    assert "ada@example.com" not in result.stderr
    again = setup.run("--sync-now")
    assert again.returncode == 0
    assert "upserted 0" in again.stdout


def test_dry_run_prints_masked_actions_and_writes_nothing(setup: Setup):
    result = setup.run("--sync-now", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "G1 upsert" in result.stdout
    assert "Ñúñez-Øberg" not in result.stdout
    assert "2 actions would be queued" in result.stdout
    assert setup.run("--sync-now", "--wait", "-1").returncode == ExitCode.USAGE
    assert not setup.state.exists()
    assert setup.simulator.received == []


def test_bad_config_exits_3_with_every_problem_on_one_line_each(setup: Setup):
    setup.write_config(
        rules='max_event_age = "soon"\non_cancel = "shred"', property='timezone = "Atlantis"'
    )
    result = setup.run("--sync-now")
    assert result.returncode == ExitCode.CONFIG
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == [
        "property.timezone",
        "rules.on_cancel",
        "rules.max_event_age",
    ]
    assert all(line.startswith(f"loopsync: {setup.config}: ") for line in lines)
    assert "Traceback" not in result.stderr


def test_unreachable_pms_fails_in_one_line_and_keeps_the_cursor(setup: Setup):
    pms = 'url = "mysql+pymysql://root:pw-SECRET-1@127.0.0.1:9/x"\nquery_file = "q.sql"\nmode = "incremental"'
    (setup.tmp_path / "q.sql").write_text("SELECT 1 WHERE :since IS NOT NULL")
    setup.write_config(pms=pms + '\nstatus_map = { RES = "reserved" }')
    result = setup.run("--sync-now")
    assert result.returncode == ExitCode.PMS
    errors = [line for line in result.stderr.splitlines() if line.startswith("loopsync: ")]
    assert len(errors) == 1
    assert errors[0].startswith("loopsync: cannot connect to the PMS database at mysql+pymysql://")
    assert "pw-SECRET-1" not in result.stderr
    store = StateStore.open(f"sqlite:///{setup.state}")
    assert store.cursor() is None
    assert [run.ok for run in store.last_runs()] == [False]
    store.close()


def test_loop_500_then_200_delivers_once(setup: Setup):
    setup.simulator.fail_next(1, status=500)
    result = setup.run("--sync-now")
    assert result.returncode == 0, result.stderr
    assert sorted(setup.simulator.contacts) == ["G1", "G2"]
    posts = [r for r in setup.simulator.received if r.processed]
    assert len(posts) == 2


def test_loop_never_answering_times_out_and_the_next_cycle_runs(setup: Setup):
    setup.run("--sync-now")
    setup.db.update("G1", status="INH", checked_in_at=datetime.now(), modified_at=datetime.now())
    setup.simulator.hang_next(1, path="ContactEvent")
    result = setup.run("--sync-now")
    assert result.returncode == ExitCode.DELIVERY
    assert "failures 1" in result.stdout
    assert "parked as uncertain" in result.stderr
    assert setup.simulator.event_kinds() == []
    nxt = setup.run("--sync-now")
    assert nxt.returncode == 0
    status = setup.run("status")
    assert "uncertain 1" in status.stdout
    retry = setup.run("outbox", "retry", "--uncertain")
    assert retry.returncode == 0
    assert setup.run("--sync-now").returncode == 0
    assert setup.simulator.event_kinds() == [("G1", "checkin")]


def test_refused_token_exits_5_loudly(setup: Setup):
    (setup.tmp_path / "token").write_text("wrong")
    setup.config.write_text(
        setup.config.read_text().replace(
            str(setup.tmp_path / "token"), str(setup.tmp_path / "wrong")
        )
    )
    (setup.tmp_path / "wrong").write_text("not-the-token")
    result = setup.run("--sync-now")
    assert result.returncode == ExitCode.LOOP_AUTH
    assert "Loop refused the auth token" in result.stderr


def test_second_process_on_the_same_state_waits_then_refuses(setup: Setup):
    store = StateStore.open(f"sqlite:///{setup.state}")
    with store.lock():
        result = setup.run("--sync-now", "--wait", "0.5")
    store.close()
    assert result.returncode == ExitCode.LOCKED
    assert "another loopsync process (pid" in result.stderr
    assert "(waited 0.5 s; --wait SECONDS waits longer)" in result.stderr
    assert setup.simulator.received == []


def test_guard_stops_mass_cancellation_until_forced(setup: Setup):
    setup.db.insert(
        *[
            reservation_row(
                f"M{i}", room=str(200 + i), arrival=TODAY, departure=TODAY + timedelta(days=1)
            )
            for i in range(20)
        ]
    )
    assert setup.run("--sync-now").returncode == 0
    for i in range(15):
        setup.db.update(f"M{i}", status="CXL")
    result = setup.run("--sync-now")
    assert result.returncode == ExitCode.GUARD
    assert "would cancel 15 of 22 live stays" in result.stderr
    assert setup.simulator.deleted == []
    forced = setup.run("--sync-now", "--force")
    assert forced.returncode == 0
    assert len(setup.simulator.deleted) == 15


def test_missing_query_and_status_map_are_named(setup: Setup):
    setup.write_config(pms='url = "sqlite:///x.db"')
    result = setup.run("--sync-now")
    assert result.returncode == ExitCode.CONFIG
    assert "pms.query_file: required" in result.stderr
    assert "pms.status_map: required" in result.stderr


def test_status_and_outbox_list_show_no_guest_details(setup: Setup):
    setup.run("--sync-now")
    status = setup.run("status")
    assert status.returncode == 0
    assert "outbox: pending 0, uncertain 0, dead 0, done 2, dropped 0" in status.stdout
    assert "sync" in status.stdout
    as_json = setup.run("status", "--json")
    assert '"done": 2' in as_json.stdout
    listing = setup.run("outbox", "list")
    assert "G1" in listing.stdout
    assert "Ñúñez" not in listing.stdout + status.stdout


def test_check_runs_the_query_and_checks_the_token_without_changing_anything(setup: Setup):
    result = setup.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pms: ok" in result.stdout
    assert "2 rows" in result.stdout
    assert "loop: ok" in result.stdout
    assert "Ñúñez" not in result.stdout  # samples are masked
    assert setup.simulator.contacts == {}
    (setup.tmp_path / "token").write_text("not-the-token")
    refused = setup.run("check")
    assert refused.returncode == ExitCode.LOOP_AUTH
    assert "loop: FAILED: the token was refused" in refused.stdout


def test_check_is_not_fooled_by_a_wrong_base_url(setup: Setup):
    setup.config.write_text(
        setup.config.read_text().replace(
            setup.simulator.base_url, setup.simulator.base_url + "/wrongpath"
        )
    )
    result = setup.run("check")
    assert result.returncode == ExitCode.DELIVERY
    assert "but not like Loop's API; check loop.base_url" in result.stdout


def test_queued_actions_go_out_even_while_the_pms_is_down(setup: Setup):
    setup.simulator.fail_next(1000, status=503)  # Loop is down: everything stays queued
    assert setup.run("--sync-now").returncode == ExitCode.DELIVERY
    setup.simulator.clear()  # Loop is back ...
    setup.db.execute("DROP TABLE reservations")  # ... and the PMS goes down
    result = setup.run("--sync-now")
    assert result.returncode == ExitCode.PMS
    assert sorted(setup.simulator.contacts) == ["G1", "G2"]


def test_status_without_a_state_store_says_so(setup: Setup):
    result = setup.run("status")
    assert result.returncode == ExitCode.STATE_STORE
    assert "there is no state store at sqlite:///" in result.stderr
    assert not setup.state.exists()


def test_global_options_go_before_or_after_the_command_and_pipes_may_close(setup: Setup):
    setup.run("--sync-now")
    command = [sys.executable, "-m", "loopsync.cli", "status", "--config", str(setup.config), "-q"]
    after = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("state store: ")
    # A reader that stops reading at once (`| head`): the first write meets a closed pipe.
    reader_gone = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader_gone.stdout is not None
    reader_gone.stdout.close()
    _, errors = reader_gone.communicate(timeout=60)
    assert (reader_gone.returncode, errors) == (0, b"")
