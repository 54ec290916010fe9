"""The systemd unit: systemd-analyze accepts it and scores it, and it agrees with loopsync.

`systemd-analyze verify` and `security --offline=true` need no running systemd; the
tests that call them are skipped where the tool is not installed. The rest read the
unit as text and hold it to what the daemon, the CLI and the config actually do.
"""

from __future__ import annotations

import codecs
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loopsync import daemon
from loopsync.cli import build_parser
from loopsync.config import DEFAULT_CONFIG_PATH, load_config

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "loopsync.service"
SYSUSERS = SYSTEMD_DIR / "loopsync.sysusers.conf"
MAX_EXPOSURE = 1.5

# Settings that loosen the sandbox (or open a hole in it) and so must say why, on
# the comment line right above them.
RELAXATIONS = re.compile(
    r"^(?:"
    r"(?:MemoryDenyWriteExecute|NoNewPrivileges|LockPersonality|RemoveIPC|PrivateNetwork"
    r"|Private(?:Tmp|Devices|Users|Mounts)|Protect(?:KernelTunables|KernelModules|KernelLogs"
    r"|ControlGroups|Clock|Hostname)|Restrict(?:Realtime|SUIDSGID|Namespaces))=(?:no|false|0)"
    r"|ProtectSystem=(?:no|yes|full)|ProtectHome=(?:no|read-only|tmpfs)"
    r"|ProtectProc=(?!invisible)|ProcSubset=(?!pid)"
    r"|RestrictAddressFamilies=|SystemCallFilter=(?!~)|SystemCallErrorNumber="
    r"|(?:CapabilityBoundingSet|AmbientCapabilities|SupplementaryGroups)=\S"
    r"|(?:ReadWritePaths|StateDirectory|RuntimeDirectory|CacheDirectory|LogsDirectory)="
    r"|(?:DeviceAllow|IPAddressAllow|SetCredential|BindPaths)="
    r"|NotifyAccess=(?!main|none)|DynamicUser=no|User=root"
    r")"
)


def _lines() -> list[str]:
    return UNIT.read_text(encoding="utf-8").splitlines()


def _settings() -> dict[str, list[str]]:
    """Every `Key=value` of the unit, values in file order (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in _lines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _one(key: str) -> str:
    values = _settings().get(key, [])
    assert len(values) == 1, f"{key}= should be set exactly once, found {values}"
    return values[0]


def _seconds(span: str) -> float:
    """A systemd time span ("10min", "1h 30s", "15s") in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span)
    assert parts, f"not a time span: {span!r}"
    return sum(float(number) * units[unit or "s"] for number, unit in parts)


def _comments() -> str:
    return "\n".join(line for line in _lines() if line.startswith("#"))


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)")
    return tool


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)


def _security_report() -> str:
    result = _run(_systemd_analyze(), "security", "--offline=true", str(UNIT))
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- systemd-analyze --------------------------------------------------------------------


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    # verify insists that every Exec*= program exists; /opt/loopsync is not installed
    # here, so a copy points each missing one at this Python (any executable will do).
    lines = []
    for line in _lines():
        key, _, command = line.partition("=")
        if key.startswith("Exec") and command and not Path(command.split()[0]).exists():
            line = f"{key}={sys.executable} {command.split(maxsplit=1)[1]}"
        lines.append(line)
    copy = tmp_path / UNIT.name
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = _run(tool, "verify", str(copy))

    about_us = [line for line in result.stderr.splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stderr
    assert about_us == []


def test_exposure_is_at_most_1_5_and_the_unit_says_what_it_is() -> None:
    report = _security_report()

    match = re.search(r"Overall exposure level for loopsync\.service: (\d+\.\d+)", report)
    assert match, report
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, report
    recorded = re.search(r"Overall exposure level for loopsync\.service: (\d+\.\d+)", _comments())
    assert recorded, "record the measured exposure in the comment at the top of the unit"
    version = _run(_systemd_analyze(), "--version").stdout.split()[1]
    if version == "252":  # the version the figure was measured with; others score differently
        assert float(recorded.group(1)) == exposure, "update the figure in the unit's header"


def test_every_remaining_exposure_is_explained() -> None:
    settings = _settings()
    lines = _lines()
    unexplained = []
    for line in _security_report().splitlines():
        words = line.split()
        if not words or not re.fullmatch(r"\d+\.\d+", words[-1]) or float(words[-1]) == 0:
            continue
        name = next(word for word in words if "=" in word)
        keys = [part.partition("=")[0] for part in name.split("/") if part]
        for key in keys:
            named = f"{key}=" in _comments()
            commented = key in settings and any(
                candidate.startswith(f"{key}=") and lines[index - 1].startswith("#")
                for index, candidate in enumerate(lines)
            )
            if not (named or commented):
                unexplained.append(key)
    assert unexplained == [], "say in a comment why these are not locked down"


# --- the unit as text -------------------------------------------------------------------


def test_every_relaxation_has_a_comment_right_above_it() -> None:
    lines = _lines()
    bare = [
        line
        for index, line in enumerate(lines)
        if RELAXATIONS.match(line) and not (index > 0 and lines[index - 1].startswith("#"))
    ]
    assert bare == []


def test_it_is_a_notify_service_that_loopsync_itself_talks_to() -> None:
    assert _one("Type") == "notify"
    assert _one("NotifyAccess") == "main"
    assert _one("Restart") == "on-failure"
    assert "3" in _one("RestartPreventExitStatus").split()
    assert _one("ExecReload") == "/bin/kill -HUP $MAINPID"


def test_exec_start_runs_the_daemon_from_the_venv_with_the_etc_config() -> None:
    argv = shlex.split(_one("ExecStart"))

    args = build_parser().parse_args(argv[1:])

    assert argv[0] == "/opt/loopsync/bin/loopsync"
    assert args.command == "run"
    assert args.config == DEFAULT_CONFIG_PATH


def test_timeouts_leave_the_daemon_the_time_it_needs(tmp_path: Path) -> None:
    config = tmp_path / "loopsync.toml"
    config.write_text("", encoding="utf-8")
    defaults = load_config(config).settings

    slow_cycle = (
        daemon.WORK_LOCK_WAIT
        + defaults.pms.connect_timeout.total_seconds()
        + defaults.pms.statement_timeout.total_seconds()
    )
    watchdog = _seconds(_one("WatchdogSec"))
    assert watchdog >= 2 * (defaults.schedule.poll_interval.total_seconds() + slow_cycle)
    assert _seconds(_one("TimeoutStopSec")) > daemon.STOP_DEADLINE


def test_state_and_config_directories_are_where_loopsync_looks(tmp_path: Path) -> None:
    config = tmp_path / "loopsync.toml"
    config.write_text("", encoding="utf-8")
    state_url = load_config(config).settings.state.url

    assert state_url.startswith(f"sqlite:////var/lib/{_one('StateDirectory')}/")
    assert _one("StateDirectoryMode") == "0700"
    assert DEFAULT_CONFIG_PATH.parent == Path("/etc") / _one("ConfigurationDirectory")
    assert "ReadWritePaths" not in _settings()


def test_credentials_carry_the_names_loopsync_reads() -> None:
    loaded = dict(value.split(":", 1) for value in _settings()["LoadCredential"])

    assert loaded == {
        "loop_auth_token": "/etc/loopsync/credentials/loop_auth_token",
        "pms_password": "/etc/loopsync/credentials/pms_password",
    }
    # Without a default a missing pms_password file would stop the unit from starting.
    assert [value.split(":", 1)[0] for value in _settings()["SetCredential"]] == ["pms_password"]


def test_the_pms_password_default_means_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = _one("SetCredential").split(":", 1)[1]
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "loop_auth_token").write_text("unit-test-token", encoding="utf-8")
    # systemd unescapes C escapes in SetCredential= values before writing the file.
    (credentials / "pms_password").write_bytes(codecs.decode(default, "unicode_escape").encode())
    config = tmp_path / "loopsync.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))

    loaded = load_config(config)

    assert loaded.auth_token == "unit-test-token"
    assert not loaded.pms_password


def test_it_runs_as_the_user_sysusers_creates() -> None:
    entries = [
        line.split()
        for line in SYSUSERS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert [entry[:2] for entry in entries] == [["u", _one("User")]]
    assert _one("Group") == _one("User")
    assert "DynamicUser" not in _settings()
