"""Config loading: files, environment, secrets, and every problem reported at once."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest

from loopsync.config import Settings, load_config, parse_duration, require
from loopsync.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config" / "loopsync.example.toml"


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "loopsync.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_example_config_loads_and_documents_every_key():
    config = load_config(EXAMPLE)
    assert config.settings.rules.max_event_age == timedelta(hours=6)
    text = EXAMPLE.read_text(encoding="utf-8")
    for section_name, section in Settings.model_fields.items():
        assert f"[{section_name}]" in text
        model = section.annotation
        for key in model.model_fields:  # type: ignore[union-attr]
            pattern = rf"^(#? ?{key} =|\[{section_name}\.{key}\])"
            assert re.search(pattern, text, re.MULTILINE), f"{section_name}.{key} undocumented"


def test_every_problem_is_reported_at_once_with_file_and_key(tmp_path: Path):
    path = write(
        tmp_path,
        """
[pms]
mode = "sometimes"
status_map = { R = "reserved", X = "gone" }
[property]
timezone = "Mars/Olympus"
[rules]
quiet_hours = "22:00-8"
max_event_age = "6 hours"
typo = 1
[loop]
base_url = "blazeloop.net"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: pms.mode: Input should be 'incremental' or 'full'",
        f"{path}: pms.status_map.X: Input should be 'reserved', 'checked_in', 'checked_out', "
        "'cancelled' or 'no_show'",
        f"{path}: property.timezone: 'Mars/Olympus' is not an IANA time zone; "
        "use a name such as 'Europe/Amsterdam'",
        f"{path}: rules.max_event_age: '6 hours' is not a duration; "
        "write e.g. 30, '90s', '2m' or '6h'",
        f"{path}: rules.quiet_hours: '8' is not a time of day; write it as HH:MM, e.g. '08:00'",
        f"{path}: rules.typo: unknown key; check its spelling against config/loopsync.example.toml",
        f"{path}: loop.base_url: 'blazeloop.net' is not a base URL; "
        "write it as 'https://<account>.blazeloop.net'",
    ]


def test_invalid_toml_and_missing_file_are_one_line_each(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        load_config(write(tmp_path, "[pms\nurl="))
    with pytest.raises(ConfigError, match=r"no such file; copy config/loopsync.example.toml"):
        load_config(tmp_path / "missing.toml")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, '[rules]\nhistory_days = 3\n[loop]\nbase_url = "http://a.example"\n')
    monkeypatch.setenv("LOOPSYNC_RULES__HISTORY_DAYS", "5")
    monkeypatch.setenv("LOOPSYNC_LOOP__AUTH_TOKEN", "from-env")
    config = load_config(path)
    assert config.settings.rules.history_days == 5
    assert config.settings.loop.base_url == "http://a.example"
    assert config.auth_token == "from-env"


def test_secrets_from_files_and_systemd_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    token_file = tmp_path / "token"
    token_file.write_text("tok-from-file\n")
    path = write(tmp_path, f'[loop]\nauth_token_file = "{token_file}"\n')
    assert load_config(path).auth_token == "tok-from-file"
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "loop_auth_token").write_text("tok-from-systemd")
    (credentials / "pms_password").write_text("pw-from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = load_config(write(tmp_path, ""))
    assert (config.auth_token, config.pms_password) == ("tok-from-systemd", "pw-from-systemd")
    assert "tok-from-systemd" not in repr(config)
    assert "tok-from" not in repr(config.settings)


def test_secret_in_a_world_readable_file_is_refused(tmp_path: Path):
    path = write(
        tmp_path,
        '[loop]\nauth_token = "abc"\n[pms]\nurl = "mysql+pymysql://u:pw@h/db"\n',
        mode=0o644,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 2
    assert "loop.auth_token: a secret in a world-readable file" in caught.value.problems[0]
    assert "pms.url: contains a password" in caught.value.problems[1]
    assert (
        load_config(write(tmp_path, '[loop]\nauth_token = "abc"\n', mode=0o600)).auth_token == "abc"
    )


def test_unreadable_secret_file_names_the_key(tmp_path: Path):
    path = write(tmp_path, f'[pms]\npassword_file = "{tmp_path / "nope"}"\n')
    with pytest.raises(ConfigError, match=r"pms.password_file: cannot read .*nope"):
        load_config(path)


def test_require_names_every_missing_key(tmp_path: Path):
    config = load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError) as caught:
        require(config, pms=True, loop=True)
    keys = [problem.split(": ")[1] for problem in caught.value.problems]
    assert keys == ["pms.url", "pms.query_file", "pms.status_map", "loop.auth_token"]


def test_relative_query_file_is_relative_to_the_config(tmp_path: Path):
    (tmp_path / "q.sql").write_text("SELECT 1")
    config = load_config(write(tmp_path, '[pms]\nquery_file = "q.sql"\n'))
    assert config.settings.pms.query_file == tmp_path / "q.sql"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30),
        ("90s", 90),
        ("2m", 120),
        ("1h30m", 5400),
        ("7d", 604800),
        ("250ms", 0.25),
        ("45", 45),
    ],
)
def test_durations(text: object, seconds: float):
    assert parse_duration(text).total_seconds() == seconds


def test_quiet_hours_off_and_times(tmp_path: Path):
    config = load_config(write(tmp_path, '[rules]\nquiet_hours = "off"\nroomready_from = "9:30"\n'))
    assert config.settings.rules.quiet_hours is None
    assert config.settings.rules.roomready_from == time(9, 30)


def test_languages_must_be_two_letter_codes(tmp_path: Path):
    path = write(
        tmp_path, '[property]\ndefault_language = "eng"\nlanguage_map = { GE = "deu", SP = "ES" }\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [problem.split(": ")[1] for problem in caught.value.problems] == [
        "property.default_language",
        "property.language_map",
    ]
    assert "['GE']" in caught.value.problems[1]
    good = load_config(write(tmp_path, '[property]\nlanguage_map = { SP = "ES" }\n'))
    assert good.settings.property.language_map == {"SP": "es"}


def test_secret_files_readable_by_others_are_refused(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text("tok")
    token_file.chmod(0o644)
    with pytest.raises(
        ConfigError, match=r"loop.auth_token_file: .*token is readable by others; chmod 600 it"
    ):
        load_config(write(tmp_path, f'[loop]\nauth_token_file = "{token_file}"\n'))


def test_passwords_inside_urls_and_odbc_strings_are_secrets_too(tmp_path: Path):
    for pms, key in (
        (
            'odbc_connect = "DRIVER={MariaDB Unicode};SERVER=h;UID=u;PWD=hunter2"',
            "pms.odbc_connect",
        ),
        ('url = "mysql+pymysql://u@h/db?password=hunter2"', "pms.url"),
    ):
        with pytest.raises(ConfigError, match=rf"{key}: contains a password"):
            load_config(write(tmp_path, f"[pms]\n{pms}\n", mode=0o644))
    assert load_config(
        write(tmp_path, '[pms]\nodbc_connect = "DRIVER={X};PWD=;UID=u"\n', mode=0o644)
    )


def test_everything_wrong_is_said_in_one_round(tmp_path: Path):
    path = write(
        tmp_path,
        '[pms]\nquery_file = "missing.sql"\nmdoe = "full"\n[loop]\nauth_token = "x"\nauth_token_file = "nope"\n',
        mode=0o644,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    keys = sorted(problem.split(": ")[1] for problem in caught.value.problems)
    assert keys == ["loop.auth_token", "loop.auth_token_file", "pms.mdoe", "pms.query_file"]


def test_a_bad_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOOPSYNC_PMS__MDOE", "full")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, ""))
    assert caught.value.problems == [
        "environment variable LOOPSYNC_PMS__MDOE: pms.mdoe: unknown key; "
        "check its spelling against config/loopsync.example.toml"
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[schedule]\nreconcile_cron = "99 3 * * *"', "schedule.reconcile_cron"),
        ('[schedule]\npoll_interval = "0s"', "schedule.poll_interval"),
        ('[loop]\nread_timeout = "0s"', "loop.read_timeout"),
        ("[pms]\noverlap = -5", "pms.overlap"),
    ],
)
def test_values_that_would_crash_later_are_refused_now(tmp_path: Path, text: str, key: str):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert [problem.split(": ")[1] for problem in caught.value.problems] == [key]


def test_a_password_in_the_state_url_is_a_secret_too(tmp_path: Path):
    with pytest.raises(
        ConfigError, match=r"state.url: contains a password in a world-readable file"
    ):
        load_config(
            write(tmp_path, '[state]\nurl = "postgresql+psycopg://u:s3cret@h/db"\n', mode=0o644)
        )


def test_a_bad_value_from_the_environment_is_blamed_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LOOPSYNC_PMS__MODE", "fulll")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, '[pms]\nmode = "full"\n'))
    assert caught.value.problems[0].startswith(
        "environment variable LOOPSYNC_PMS__MODE: pms.mode: "
    )
