"""The one config file: TOML, overridable from the environment, secrets from files.

Precedence, highest first: environment (`LOOPSYNC_SECTION__KEY`), the TOML file,
defaults. Secrets (`loop.auth_token`, `pms.password`) may also come from a `*_file`
key or from systemd's `$CREDENTIALS_DIRECTORY`. Every problem is reported at once as
`FILE: section.key: what is wrong`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from loopsync.errors import ConfigError
from loopsync.model import ActionKind, Status
from loopsync.presets import PresetError, backend_of, load_preset, preset_names

DEFAULT_CONFIG_PATH = Path("/etc/loopsync/loopsync.toml")
ENV_PREFIX = "LOOPSYNC_"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """Accept seconds as a number, or text such as `90s`, `2m`, `6h`, `1h30m`, `7d`."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, '90s', '2m' or '6h'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    parts = _DURATION_PART.findall(text)
    if not parts or _DURATION_PART.sub("", text).strip():
        raise ValueError(f"{value!r} is not a duration; write e.g. 30, '90s', '2m' or '6h'")
    return timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def parse_time_of_day(value: Any) -> time:
    """Accept `HH:MM` (24-hour clock, the property's local time)."""
    if isinstance(value, time):
        return value
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, e.g. '08:00'")
    return time(int(match[1]), int(match[2]))


def _parse_quiet_hours(value: Any) -> tuple[time, time] | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    if isinstance(value, tuple | list) and len(value) == 2:
        return parse_time_of_day(value[0]), parse_time_of_day(value[1])
    text = str(value)
    if "-" not in text:
        raise ValueError(f"{value!r}: write quiet hours as 'HH:MM-HH:MM', e.g. '22:00-08:00'")
    start, end = text.split("-", 1)
    return parse_time_of_day(start), parse_time_of_day(end)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0, e.g. '5s'")
    return value


def _at_least_a_second(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError("must be at least 1 second, e.g. '60s'")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_not_negative)]
PositiveDuration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
Interval = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_at_least_a_second)]
TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]
QuietHours = Annotated[tuple[time, time] | None, BeforeValidator(_parse_quiet_hours)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PmsSettings(Section):
    """Where and how to read reservations."""

    url: str | None = None
    odbc_connect: str | None = None
    password: str | None = Field(default=None, repr=False)
    password_file: Path | None = None
    # A built-in preset (loopsync/presets/<name>): defaults for the keys below.
    preset: str | None = None
    query_file: Path | None = None
    mode: Literal["incremental", "full"] = "full"
    cursor_column: str = "modified_at"
    cursor_type: Literal["datetime", "rowversion", "integer"] = "datetime"
    change_tracking_table: str | None = None
    overlap: Duration = timedelta(minutes=2)
    statement_timeout: Duration = timedelta(seconds=60)
    connect_timeout: PositiveDuration = timedelta(seconds=15)
    fetch_size: int = Field(default=500, ge=1, le=100_000)
    status_map: dict[str, Status] = Field(default_factory=dict)
    room_ready_values: list[str] = Field(default_factory=lambda: ["1", "true", "yes", "clean"])

    @model_validator(mode="after")
    def _one_source(self) -> PmsSettings:
        if self.url and self.odbc_connect:
            raise ValueError("set either pms.url or pms.odbc_connect, not both")
        if self.change_tracking_table and self.mode != "incremental":
            raise ValueError('pms.change_tracking_table needs pms.mode = "incremental"')
        return self

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: Any) -> Any:
        """Fill the keys the operator left out from `preset`; each given key wins whole.

        A `query_file` of one's own replaces only the query; a `status_map` replaces the
        preset's map. The preset's query is the one for the engine the URL points at.
        """
        if not isinstance(data, dict) or not isinstance(data.get("preset"), str):
            return data
        try:
            preset = load_preset(data["preset"])
        except PresetError:
            return data  # reported by _known_preset
        # An empty [pms.status_map] table (as the example config has) maps nothing.
        given = {key: value for key, value in data.items() if value != {}}
        merged = {**preset.pms_defaults, **given}
        if "query_file" not in given:
            url, odbc = data.get("url"), data.get("odbc_connect")
            merged["query_file"] = preset.query_file(
                backend_of(
                    url if isinstance(url, str) else None, odbc if isinstance(odbc, str) else None
                )
            )
        return merged

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in preset_names():
            raise ValueError(
                f"{value!r} is not a built-in preset; use one of: {', '.join(preset_names())}"
            )
        return value


class PropertySettings(Section):
    """Facts about the hotel that the mapping needs."""

    timezone: str = "UTC"
    phone_region: str = "US"
    default_language: str = "en"
    language_map: dict[str, str] = Field(default_factory=dict)
    location_id: str | None = None
    location_map: dict[str, str] = Field(default_factory=dict)
    # Used when the PMS gives a date without a time of day.
    default_arrival_time: TimeOfDay = time(15, 0)
    default_departure_time: TimeOfDay = time(11, 0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone; use a name such as 'Europe/Amsterdam'"
            ) from None
        return value

    @field_validator("default_language")
    @classmethod
    def _two_letters(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError(f"{value!r} is not a two-letter ISO 639-1 code such as 'en'")
        return value.lower()

    @field_validator("language_map")
    @classmethod
    def _map_to_two_letters(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(
            code for code, language in value.items() if not re.fullmatch(r"[A-Za-z]{2}", language)
        )
        if wrong:
            raise ValueError(
                f"the codes {wrong} must map to two-letter ISO 639-1 codes such as 'de'"
            )
        return {code: language.lower() for code, language in value.items()}

    @field_validator("phone_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError(f"{value!r} is not a two-letter country code such as 'NL'")
        return value.upper()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RulesSettings(Section):
    """The sync rules' knobs (DESIGN §5)."""

    history_days: int = Field(default=1, ge=0)
    future_days: int = Field(default=30, ge=0)
    roomready_from: TimeOfDay = time(8, 0)
    on_cancel: Literal["delete", "update", "ignore"] = "delete"
    bootstrap_events: bool = False
    max_event_age: Duration = timedelta(hours=6)
    quiet_hours: QuietHours = (time(22, 0), time(8, 0))
    quiet_events: frozenset[ActionKind] = frozenset({ActionKind.CHECKOUT, ActionKind.ROOMREADY})
    max_cancel_share: float = Field(default=0.2, gt=0, le=1)
    max_cancel_count: int = Field(default=10, ge=0)
    absent_means_cancelled: bool = False
    retention_days: int = Field(default=30, ge=1)

    @field_validator("quiet_events")
    @classmethod
    def _events_only(cls, value: frozenset[ActionKind]) -> frozenset[ActionKind]:
        wrong = sorted(kind.value for kind in value if not kind.is_event)
        if wrong:
            raise ValueError(f"{wrong} are not events; use checkin, checkout or roomready")
        return value


class LoopSettings(Section):
    """How to reach the hotel's Loop account."""

    base_url: str = "http://127.0.0.1:8765"
    auth_token: str | None = Field(default=None, repr=False)
    auth_token_file: Path | None = None
    connect_timeout: PositiveDuration = timedelta(seconds=5)
    read_timeout: PositiveDuration = timedelta(seconds=20)
    max_requests_per_second: float = Field(default=10.0, gt=0)
    pool_size: int = Field(default=4, ge=1, le=32)
    retry_base: PositiveDuration = timedelta(seconds=1)
    retry_max: PositiveDuration = timedelta(minutes=5)
    retry_after_cap: Duration = timedelta(minutes=10)
    dead_after_attempts: int = Field(default=3, ge=1)
    delivery_budget: Duration = timedelta(seconds=60)
    retry_uncertain_events: bool = False

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s?#]+", value) or "?" in value:
            raise ValueError(
                f"{value!r} is not a base URL; write it as 'https://<account>.blazeloop.net'"
            )
        return value.rstrip("/")


class StateSettings(Section):
    """Where loopsync keeps its own state."""

    url: str = "sqlite:////var/lib/loopsync/state.db"


class ScheduleSettings(Section):
    """When the daemon runs its jobs."""

    poll_interval: Interval = timedelta(seconds=60)
    reconcile_cron: str = "30 3 * * *"
    misfire_grace: Interval = timedelta(seconds=30)

    @field_validator("reconcile_cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a crontab line (minute hour day month weekday), "
                f"e.g. '30 3 * * *': {exc}"
            ) from None
        return value


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class MetricsSettings(Section):
    """Optional Prometheus endpoint of the daemon."""

    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)

    @field_validator("enabled")
    @classmethod
    def _installed(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("prometheus_client") is None:
            raise ValueError(
                "needs the prometheus_client package; install it with "
                "pip install 'loopsync[metrics]', or set enabled = false"
            )
        return value


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    pms: PmsSettings = Field(default_factory=PmsSettings)
    property: PropertySettings = Field(default_factory=PropertySettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init kwargs; the environment overrides them.
        return env_settings, init_settings


class _Secrets(BaseModel):
    """Resolved secrets, kept apart from the settings so `repr` never shows them."""

    auth_token: str | None
    pms_password: str | None


class LoadedConfig:
    """Settings plus the secrets resolved for them, and where they came from."""

    def __init__(self, settings: Settings, secrets: _Secrets, path: Path | None) -> None:
        self.settings = settings
        self._secrets = secrets
        self.path = path

    @property
    def auth_token(self) -> str:
        return self._secrets.auth_token or ""

    @property
    def pms_password(self) -> str | None:
        return self._secrets.pms_password

    def __repr__(self) -> str:
        return f"LoadedConfig(path={self.path!s})"


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-"))


def _describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against config/loopsync.example.toml"
    if kind == "missing":
        return "required; set it"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _credential(name: str) -> Path | None:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    candidate = Path(directory) / name
    return candidate if candidate.is_file() else None


def _preset_problems(settings: Settings, source: str) -> list[str]:
    """What the preset's own query needs that the config lacks (the right engine, a map of
    its location codes); nothing when `pms.query_file` is the operator's own.
    """
    pms = settings.pms
    if pms.preset is None:
        return []
    try:
        preset = load_preset(pms.preset)
    except PresetError as exc:
        return [f"{source}: pms.preset: {exc}"]
    if not preset.owns(pms.query_file):
        return []
    problems: list[str] = []
    backend = backend_of(pms.url, pms.odbc_connect)
    if backend is not None and backend not in preset.engines:
        problems.append(
            f"{source}: pms.preset: the {preset.name} preset's query is written for "
            f"{' or '.join(preset.engines)}, but the PMS database is {backend}; pick "
            "another preset, or write your own pms.query_file"
        )
    if preset.location and not settings.property.location_map:
        problems.append(
            f"{source}: property.location_map: required by the {preset.name} preset, which "
            f"returns {preset.location} as each stay's location; map every code to its Loop "
            'locationId, e.g. location_map = { "1" = "529652b0121d5fa206011a79" }'
        )
    return problems


def _read_config_file(path: Path, *, require_file: bool) -> tuple[dict[str, Any], bool]:
    """The file's TOML as a dict, and whether others can read it."""
    try:
        raw = path.read_bytes()
        world_readable = bool(path.stat().st_mode & stat.S_IROTH)
    except FileNotFoundError:
        if require_file:
            raise ConfigError(
                [f"{path}: no such file; copy config/loopsync.example.toml there, or pass --config"]
            ) from None
        return {}, False
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read it: {exc.strerror}"]) from None
    try:
        return tomllib.loads(raw.decode("utf-8")), world_readable
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


_PATH_KEYS = (("pms", "query_file"), ("pms", "password_file"), ("loop", "auth_token_file"))


def _relative_to(data: dict[str, Any], folder: Path) -> None:
    """Relative paths in the file are relative to the file, not the working directory."""
    for section, key in _PATH_KEYS:
        value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if isinstance(value, str) and value and not Path(value).is_absolute():
            data[section][key] = str(folder / value)


def _env_variable(loc: tuple[int | str, ...]) -> str | None:
    """The LOOPSYNC_… variable a bad value came from, when the file does not set it."""
    if len(loc) < 2:
        return None
    # The environment wins over the file, so a variable for the key is what was read.
    section, key = str(loc[0]), str(loc[1])
    wanted = f"{ENV_PREFIX}{section}__{key}".upper()
    return next((name for name in os.environ if name.upper() == wanted), None)


def _secret_problems(data: dict[str, Any], source: str, path: Path | None) -> list[str]:
    """Secrets written where others can read them: refused (DESIGN §3)."""
    problems: list[str] = []
    for section, key in (("loop", "auth_token"), ("pms", "password")):
        if data.get(section, {}).get(key):
            problems.append(
                f"{source}: {section}.{key}: a secret in a world-readable file; "
                f"move it to {key}_file or LOOPSYNC_{section.upper()}__{key.upper()}, "
                f"or chmod 600 {path}"
            )
    pms = data.get("pms", {})
    for section, hint in (("pms", "pms.password_file"), ("state", "a chmod 600 config")):
        url = str(data.get(section, {}).get("url", ""))
        if re.search(r"://[^/@:]+:[^/@]+@", url) or re.search(r"[?&]password=[^&]", url, re.I):
            problems.append(
                f"{source}: {section}.url: contains a password in a world-readable file; "
                f"put it in {hint} instead, or chmod 600 the config"
            )
    odbc = str(pms.get("odbc_connect", ""))
    if re.search(r"(^|;)\s*(pwd|password)\s*=\s*[^;\s]", odbc, re.I):
        problems.append(
            f"{source}: pms.odbc_connect: contains a password (PWD=) in a world-readable file; "
            "put it in pms.password_file instead, or chmod 600 the config"
        )
    return problems


def _read_secret_file(path: Path, key: str, source: str, problems: list[str]) -> str | None:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(
            f"{source}: {key}: cannot read {path}: {exc.strerror}; check path and permissions"
        )
        return None
    if mode & stat.S_IROTH:
        problems.append(f"{source}: {key}: {path} is readable by others; chmod 600 it")
        return None
    return text


def load_config(path: Path | None, *, require_file: bool = True) -> LoadedConfig:
    """Read, validate and resolve the configuration; raise `ConfigError` listing every problem."""
    source = str(path) if path else "environment"
    data: dict[str, Any] = {}
    world_readable = False
    if path is not None:
        data, world_readable = _read_config_file(path, require_file=require_file)
        _relative_to(data, path.parent)
    problems = _secret_problems(data, source, path) if world_readable else []

    try:
        settings = Settings(**data)
    except ValidationError as exc:
        invalid = []
        for error in exc.errors():
            variable = _env_variable(error["loc"])
            where = f"environment variable {variable}" if variable else source
            invalid.append(f"{where}: {_location(error['loc'])}: {_describe(dict(error))}")
        # Missing files are worth knowing in the same round.
        for section, key in _PATH_KEYS:
            value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
            if isinstance(value, str) and value and not Path(value).exists():
                invalid.append(f"{source}: {section}.{key}: {value} does not exist")
        raise ConfigError(invalid + problems) from None
    problems.extend(_preset_problems(settings, source))

    token = settings.loop.auth_token
    if token is None and settings.loop.auth_token_file is not None:
        token = _read_secret_file(
            settings.loop.auth_token_file, "loop.auth_token_file", source, problems
        )
    if token is None and (cred := _credential("loop_auth_token")) is not None:
        token = _read_secret_file(cred, "loop.auth_token (systemd credential)", source, problems)
    password = settings.pms.password
    if password is None and settings.pms.password_file is not None:
        password = _read_secret_file(
            settings.pms.password_file, "pms.password_file", source, problems
        )
    if password is None and (cred := _credential("pms_password")) is not None:
        password = _read_secret_file(cred, "pms.password (systemd credential)", source, problems)
    query = settings.pms.query_file
    if query is not None and not query.is_file():
        problems.append(f"{source}: pms.query_file: {query} does not exist")
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(settings, _Secrets(auth_token=token, pms_password=password), path)


def require(config: LoadedConfig, *, pms: bool = False, loop: bool = False) -> None:
    """Check the keys a command needs are set; raise `ConfigError` naming each missing one."""
    source = str(config.path) if config.path else "environment"
    problems: list[str] = []
    settings = config.settings
    if pms:
        if not (settings.pms.url or settings.pms.odbc_connect):
            problems.append(f"{source}: pms.url: required; set the PMS database URL (see README)")
        if settings.pms.query_file is None and settings.pms.preset:
            problems.append(
                f"{source}: pms.query_file: the {settings.pms.preset} preset picks its query by "
                "the engine pms.url points at; set pms.url, or point pms.query_file at your SQL"
            )
        elif settings.pms.query_file is None:
            problems.append(
                f"{source}: pms.query_file: required; point it at the SQL that reads reservations"
            )
        if not settings.pms.status_map:
            problems.append(
                f"{source}: pms.status_map: required; map each PMS status code to "
                "reserved, checked_in, checked_out, cancelled or no_show"
            )
    if loop and not config.auth_token:
        problems.append(
            f"{source}: loop.auth_token: required; set loop.auth_token_file, "
            "LOOPSYNC_LOOP__AUTH_TOKEN, or a systemd credential named loop_auth_token"
        )
    if problems:
        raise ConfigError(problems)
