"""`loopsync demo`: the demo hotel, its story against the simulator, and the real command."""

from __future__ import annotations

import io
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from loopsync import demo
from loopsync.config import load_config
from loopsync.demo import DemoResult, play_demo, run_demo

DAY = date(2026, 12, 3)  # a Thursday
ZOE, LI = "Zoë Ñúñez-Øberg", "李小龙"


@dataclass(frozen=True)
class Played:
    result: DemoResult
    story: str
    workdir: Path

    def rid(self, role: str) -> str:
        return self.result.roles[role]


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    workdir = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    result = play_demo(workdir, today=DAY, out=out)
    return Played(result, out.getvalue(), workdir)


def _console_script() -> list[str]:
    installed = Path(sys.executable).with_name("loopsync")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "loopsync.cli"]


def test_the_pms_is_a_small_hotel_over_a_fortnight(played: Played) -> None:
    with sqlite3.connect(played.workdir / demo.PMS_FILE) as pms:
        rooms = pms.execute("SELECT COUNT(*) FROM rooms").fetchone()[0]
        reservations = pms.execute("SELECT COUNT(*) FROM reservations").fetchone()[0]
        first, last = pms.execute("SELECT MIN(arrive), MAX(arrive) FROM reservations").fetchone()
        statuses = {row[0] for row in pms.execute("SELECT DISTINCT status FROM reservations")}
        housekeeping = {row[0] for row in pms.execute("SELECT DISTINCT hk_status FROM rooms")}
        languages = {row[0] for row in pms.execute("SELECT DISTINCT lang FROM guests")}
    assert rooms >= 40
    assert reservations >= 100
    assert (played.result.rooms, played.result.reservations) == (rooms, reservations)
    assert (date.fromisoformat(last[:10]) - date.fromisoformat(first[:10])).days >= 14
    # The PMS's own codes: the config maps them, the query does not.
    assert statuses == {"RES", "INH", "OUT", "CXL", "NOS"}
    assert {"CL", "DI", "OO"} <= housekeeping
    assert {"E", "GER", "Español", "CHS", "RUS", "Arabic", "HEB"} <= languages


def test_the_story_checks_out(played: Played) -> None:
    assert played.result.problems == []
    assert played.result.exit_code == 0
    assert re.search(r"Story checks: all \d+ passed\.", played.story)


def test_go_live_sends_contacts_and_no_events(played: Played) -> None:
    baseline = played.story.split("\n\n")[1]
    assert baseline.startswith("Thu 06:00  Go-live")
    assert "Baseline (R6)" in baseline
    upserts = re.search(r"Loop received (\d+) contact upserts and no events:", baseline)
    assert upserts is not None
    assert int(upserts[1]) >= 40
    # Unusable phones and e-mails are told as loopsync warned about them.
    assert f"reservation {played.rid('no_show')}: mobile is not a valid phone number" in baseline
    assert f"reservation {played.rid('early_out')}: email is not a valid address" in baseline


def test_the_day_tells_each_rule(played: Played) -> None:
    story, rid = played.story, played.rid
    expected_lines = [
        f"{rid('early_out')}  Joost Bakker, room 203: upsert, checkout held until 08:00",
        f"{rid('early_in')}  Emily Johnson, room 110: upsert, checkin",
        f"{rid('li')}  {LI}, room 105: roomready",
        f"{rid('zoe')}  {ZOE}, room 214: roomready",
        f"{rid('olga')}  Ольга Петрова, room 409: upsert, roomready — moved from 302",
        f"{rid('jurgen')}  Jürgen Groß, room 403: contact deleted — cancelled (R5)",
        f"{rid('zoe')}  {ZOE}, room 214: upsert, checkin",
        f"{rid('noa')}  נועה לוי, room 207: upsert, no checkin, too old",
        f"{rid('layla')}  ليلى حداد, room 311: upsert — check-in reversed",
        f"{rid('layla')}  ليلى حداد, room 311: upsert — checked in again, no second welcome (R8)",
        f"{rid('siobhan')}  Siobhán O'Connor, room 108: upsert, checkout held until 08:00",
        f"{rid('siobhan')}  Siobhán O'Connor, room 108: checkout — held overnight (R11)",
        f"{rid('no_show')}  Kwame Mensah, room 112: contact deleted — no-show (R5)",
    ]
    positions = []
    for line in expected_lines:
        assert line in story, line
        positions.append(story.index(line))
    assert positions == sorted(positions), "the story is told out of order"
    assert "Fri 08:05  Next morning" in story


def test_the_simulator_received_the_story(played: Played) -> None:
    result, rid = played.result, played.rid
    events = result.events
    assert (rid("zoe"), "checkin") in events
    assert (rid("li"), "roomready") in events
    assert [kind for who, kind in events if who == rid("olga")] == [
        "roomready",
        "roomready",
        "checkin",
    ]
    assert events.count((rid("layla"), "checkin")) == 1  # R8
    assert (rid("noa"), "checkin") not in events  # R7
    assert events[-5][0] == rid("siobhan")  # the held checkout went first the next morning
    assert result.deleted == [rid("jurgen"), rid("no_show")]
    bennett = result.contacts[rid("leaves_for_zoe")]
    assert "mobile" not in bennett  # dropped, and the contact still went


def test_names_arrive_byte_exact(played: Played) -> None:
    zoe = played.result.contacts[played.rid("zoe")]
    li = played.result.contacts[played.rid("li")]
    assert zoe["firstname"].encode() == "Zo\u00eb".encode()
    assert zoe["lastname"].encode() == "\u00d1\u00fa\u00f1ez-\u00d8berg".encode()
    assert (li["lastname"] + li["firstname"]).encode() == "\u674e\u5c0f\u9f99".encode()
    assert (zoe["language"], li["language"]) == ("es", "zh")
    assert zoe["mobile"] == "34612345678"
    assert zoe["customFields"] == [{"loyalty": "ES-771204"}]


def test_the_work_folder_can_be_used_again(played: Played) -> None:
    config_path = played.workdir / demo.CONFIG_FILE
    for name in (demo.CONFIG_FILE, demo.TOKEN_FILE):
        assert stat.S_IMODE((played.workdir / name).stat().st_mode) == 0o600
    config = load_config(config_path)
    assert config.settings.pms.mode == "incremental"
    assert config.settings.pms.query_file == played.workdir / demo.QUERY_FILE
    query = (played.workdir / demo.QUERY_FILE).read_text(encoding="utf-8")
    assert "AS reservation_id" in query
    assert ":since" in query
    assert logging.getLogger("loopsync").propagate  # the demo gave logging back

    # What the demo prints as the way to rerun it works (the simulator is gone: dry run).
    rerun = subprocess.run(
        [*_console_script(), "--config", str(config_path), "--sync-now", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "rejected 0; nothing was written" in rerun.stdout


def test_a_story_that_does_not_check_out_fails_and_can_be_played_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without quiet hours, the 07:30 checkout goes at once: not what the hotel expects.
    monkeypatch.setitem(demo.RULES, "quiet_hours", "off")
    code = run_demo(tmp_path, today=DAY)
    captured = capsys.readouterr()
    assert code == 1
    assert "The story stops here" in captured.out
    assert "Fri 08:05" not in captured.out
    assert re.search(
        r"loopsync demo: check failed: Thu 07:30: Loop received checkout \d+", captured.err
    )

    # Played again in the same folder with the rules restored, the day starts afresh.
    monkeypatch.undo()
    assert run_demo(tmp_path, today=DAY) == 0
    again = capsys.readouterr().out
    assert f"the files of an earlier demo in {tmp_path} were replaced" in again
    assert re.search(r"Loop received \d+ contact upserts and no events", again)
    assert f"loopsync --config {tmp_path.resolve() / demo.CONFIG_FILE} --sync-now" in again


def test_a_daylight_saving_day_on_a_narrow_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = io.BytesIO()
    stdout = io.TextIOWrapper(written, encoding="latin-1")
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = run_demo(None, today=date(2027, 3, 28))  # Europe/Amsterdam springs forward
    stdout.flush()
    text = written.getvalue().decode("utf-8")
    assert code == 0
    assert ZOE in text
    assert LI in text
    assert "Sun 06:00  Go-live" in text
    assert list(tmp_path.iterdir()) == []  # the temporary work folder is gone


def test_the_console_script(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([*_console_script(), "demo"], capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    out = done.stdout.decode("utf-8")  # strict: the output is UTF-8
    assert ZOE in out
    assert LI in out
    assert re.search(r"Story checks: all \d+ passed\.", out)
    assert b"INFO" not in done.stderr  # loopsync's own log lines would drown the story
    assert list(tmp_path.iterdir()) == []


def test_a_work_folder_of_something_else_is_left_alone(tmp_path: Path) -> None:
    precious = tmp_path / demo.STATE_FILE
    precious.write_text("a real state store", encoding="utf-8")
    with pytest.raises(demo.DemoFolderError, match="not written by an earlier demo"):
        run_demo(tmp_path, today=DAY)
    assert precious.read_text(encoding="utf-8") == "a real state store"
