"""Built-in PMS presets: the query, status map and room-ready values for a known PMS.

A preset is a folder `loopsync/presets/<name>/` (in a checkout also `config/presets/`):

- `preset.toml`: a `[preset]` table (`description`, the `engines` its SQL is written
  for, and `location`, the PMS column returned as `location` when there is one) and a
  `[pms]` table of defaults for `pms.*` keys (`mode`, `cursor_column`, `status_map`, …);
- `query.sql`, or one `query.<backend>.sql` per engine, where `<backend>` is the
  SQLAlchemy backend name (`sqlite`, `mysql`, `postgresql`, `mssql`, `oracle`);
  `query.sql` is the fallback;
- `README.md`: what it reads, its known limits, the grants the login needs.

`[pms] preset = "<name>"` applies one (see `loopsync.config.load_config`): the preset's
`[pms]` values become defaults under whatever the operator wrote.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = ["PRESETS_DIR", "Preset", "PresetError", "backend_of", "load_preset", "preset_names"]

PRESETS_DIR = Path(__file__).with_name("presets")

# SQLAlchemy names MariaDB URLs `mariadb+…`; the SQL is the same as MySQL's.
_BACKEND_ALIASES = {"mariadb": "mysql"}


class PresetError(ValueError):
    """A preset is unknown, or its folder is broken; `str()` says which and why."""


@dataclass(frozen=True, slots=True)
class Preset:
    """One preset folder, read."""

    name: str
    directory: Path
    description: str
    engines: tuple[str, ...]
    location: str | None  # the PMS column the query returns as `location`, if any
    pms_defaults: dict[str, Any] = field(default_factory=dict)

    def query_file(self, backend: str | None) -> Path | None:
        """The query for `backend`: `query.<backend>.sql`, else `query.sql`; None if neither."""
        if backend is not None:
            specific = self.directory / f"query.{backend}.sql"
            if specific.is_file():
                return specific
        fallback = self.directory / "query.sql"
        return fallback if fallback.is_file() else None

    def owns(self, path: Path | None) -> bool:
        """True when `path` is one of this preset's own query files."""
        return path is not None and path.parent == self.directory and path.name.startswith("query")


def preset_names() -> list[str]:
    """The names of the built-in presets, sorted."""
    if not PRESETS_DIR.is_dir():
        return []
    return sorted(
        entry.name
        for entry in PRESETS_DIR.iterdir()
        if entry.is_dir() and (entry / "preset.toml").is_file()
    )


def load_preset(name: str) -> Preset:
    """Read the preset called `name`; raise `PresetError` if there is none or it is broken."""
    known = preset_names()
    if name not in known:
        raise PresetError(f"{name!r} is not a built-in preset; use one of: {', '.join(known)}")
    directory = PRESETS_DIR / name
    try:
        data = tomllib.loads((directory / "preset.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"the {name} preset's preset.toml cannot be read: {exc}") from None
    about = data.get("preset", {})
    pms = data.get("pms", {})
    engines = about.get("engines", [])
    if not isinstance(about, dict) or not isinstance(pms, dict) or not engines:
        raise PresetError(f"the {name} preset's preset.toml needs [preset] engines and [pms]")
    return Preset(
        name=name,
        directory=directory,
        description=str(about.get("description", "")),
        engines=tuple(str(engine) for engine in engines),
        location=about.get("location"),
        pms_defaults=dict(pms),
    )


def backend_of(url: str | None, odbc_connect: str | None) -> str | None:
    """The SQLAlchemy backend (`sqlite`, `mysql`, `postgresql`, `mssql`, `oracle`) the PMS
    settings point at, or None when that cannot be told (no URL yet, or an unreadable one).
    """
    backend: str | None = None
    if odbc_connect:
        # Imported here: pms_dialects is the one place that reads ODBC strings.
        from loopsync import pms_dialects
        from loopsync.errors import PmsError

        try:
            backend = pms_dialects.infer_odbc_backend(odbc_connect)
        except PmsError:
            return None
    elif url:
        try:
            backend = make_url(url).get_backend_name()
        except sa.exc.ArgumentError:
            return None
    if backend is None:
        return None
    return _BACKEND_ALIASES.get(backend, backend)
