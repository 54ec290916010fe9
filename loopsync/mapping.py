"""One PMS row in, one canonical `Reservation` (or a `Rejection` saying why not) out.

A pure module: no I/O and no clock. The module-level helpers each normalise one kind
of value and are what the tests exercise directly; `RowMapper` applies them to a row
with the property's settings, and decides what is worth a warning.

Decisions an operator may need to know (the README repeats them):
- Times: a naive value is local to `property.timezone`; an aware one is converted. A
  local time that does not exist (the DST spring-forward gap) or happens twice (the
  fall-back fold) is resolved as `fold=0`, every time: a time in the fold is read with
  the earlier (summer-time) offset, i.e. its first occurrence; a time in the gap is
  read with the offset in force before the change, which lands it as far after the gap
  as it was into it (Europe/Amsterdam 02:30 on the spring-forward day is 03:30 CEST).
- A date without a time of day takes `property.default_arrival_time` or
  `default_departure_time`. If only those default times put departure before arrival
  (a day use recorded as dates), the date-only side is moved onto the other one
  instead of rejecting the stay. A date alone in `checked_in_at`/`checked_out_at` says
  nothing about when, and is ignored.
- Text (names, title, group, area, room, vip, custom fields): control characters become
  spaces, runs of whitespace one space, then Unicode NFC; never ASCII-folded; at most
  `MAX_TEXT_LENGTH` characters, cut before any character sequence the cut would split.
- vip: a boolean True is sent as "VIP"; False, 0 and the texts "0", "false", "no" mean
  not a VIP (vipStatus is left out).
- custom_<key>: the key keeps the case the database driver reports (PostgreSQL folds
  unquoted aliases to lower case, Oracle to upper case: quote the alias to keep case).
- Guest details never appear in a log line at INFO or above: a warning names the
  reservation id and the field only, and is given once per reservation and field for
  the life of the mapper (later repeats go to DEBUG), so a full read every minute does
  not flood the journal.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from loopsync.config import PmsSettings, PropertySettings
from loopsync.errors import QueryShapeError
from loopsync.languages import language_key, lookup_language, primary_subtag
from loopsync.model import Rejection, Reservation, Status

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("reservation_id", "status", "arrival", "departure")
KNOWN_COLUMNS = (
    "reservation_id",
    "status",
    "room",
    "arrival",
    "departure",
    "firstname",
    "lastname",
    "title",
    "email",
    "mobile",
    "language",
    "vip",
    "group_name",
    "area",
    "room_ready",
    "checked_in_at",
    "checked_out_at",
    "modified_at",
    "location",
)
CUSTOM_PREFIX = "custom_"
MAX_TEXT_LENGTH = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ZWJ = "\u200d"
_NOT_VIP = frozenset({"0", "false", "no"})
# Enough to remember every warning of a large hotel's window; cleared when full.
_MAX_REMEMBERED_WARNINGS = 50_000


class RowRejected(Exception):
    """Raised inside the mapping when a row cannot be used; `str()` is the reason."""


# -- scalars -------------------------------------------------------------------------


def scalar_text(value: object) -> str | None:
    """The text of a PMS scalar, stripped; None when empty. Raises ValueError if unusable.

    Integers, and integral `Decimal`s and floats (`Decimal('123')`, `123.0`), become their
    digits; NaN means NULL; bytes must be UTF-8; booleans become "true"/"false".
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float | Decimal):
        text = _number_text(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        try:
            text = bytes(value).decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError("binary value that is not UTF-8 text") from None
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    elif isinstance(value, uuid.UUID):
        text = str(value)
    else:
        raise ValueError(f"a {type(value).__name__} is not a text or number")
    return text or None


def _number_text(value: float | Decimal) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if not value.is_finite():
        return ""
    if value.adjusted() > 100:
        raise ValueError("a number too large to be a code")
    if value == value.to_integral_value():
        return str(int(value))
    return format(value, "f")


def parse_reservation_id(value: object) -> str:
    """The reservation id as text (`123`, `Decimal('123')` and `123.0` all give "123").

    Raises `RowRejected` with the reason when the row has no usable id.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        shown = bytes(value)[:16].hex()
        raise RowRejected(
            f"reservation_id is binary (0x{shown}); "
            "CAST it to a character or number type in the PMS query"
        )
    if isinstance(value, bool):
        raise RowRejected("reservation_id is a boolean; return the PMS's reservation key")
    try:
        text = scalar_text(value)
    except ValueError:
        raise RowRejected(
            f"reservation_id is a {type(value).__name__}; return text or a number"
        ) from None
    if text is None:
        raise RowRejected("the row has no reservation_id")
    if _CONTROL.search(text) or _SURROGATE.search(text):
        raise RowRejected("reservation_id contains control characters")
    return text


def _shown(value: object) -> str:
    """A value for a rejection reason: a short quoted text, or only its type."""
    if isinstance(value, str):
        text = value.strip()
        return repr(text if len(text) <= 40 else text[:40] + "…")
    return f"of type {type(value).__name__}"


# -- text ------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Control characters to spaces, whitespace runs to one space, trimmed, Unicode NFC."""
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", text))
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _continues(char: str) -> bool:
    """True for a code point that belongs to the character before it."""
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == _ZWJ
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # emoji skin-tone modifiers
        or "\U000e0020" <= char <= "\U000e007f"  # emoji tag sequences (subdivision flags)
    )


def _is_regional_indicator(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _splits_flag(text: str, end: int) -> bool:
    """True when `end` falls between the two regional indicators of one flag."""
    if not _is_regional_indicator(text[end]):
        return False
    run = 0
    while end - run - 1 >= 0 and _is_regional_indicator(text[end - run - 1]):
        run += 1
    return run % 2 == 1


def cut_text(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """At most `limit` code points, never ending inside a character sequence.

    Combining marks, zero-width-joined emoji, skin-tone modifiers and flag pairs are
    kept whole or dropped whole; trailing spaces left by the cut are removed.
    """
    if len(text) <= limit:
        return text
    end = limit
    while end > 0 and (_continues(text[end]) or text[end - 1] == _ZWJ or _splits_flag(text, end)):
        end -= 1
    if end == 0:  # one absurdly long sequence: no boundary to cut at
        end = limit
    return text[:end].rstrip()


def normalise_name(value: object) -> str | None:
    """A guest-profile text cleaned (`clean_text`) and cut to `MAX_TEXT_LENGTH`; None if empty."""
    try:
        text = scalar_text(value)
    except ValueError:
        return None
    if text is None:
        return None
    return cut_text(clean_text(text)) or None


def normalise_vip(value: object) -> str | None:
    """The vipStatus text: True is "VIP"; False, 0, "0", "false", "no" and empty are None."""
    if isinstance(value, bool):
        return "VIP" if value else None
    text = normalise_name(value)
    if text is None or text.casefold() in _NOT_VIP:
        return None
    return text


# -- contact details -------------------------------------------------------------------


def normalise_email(value: object) -> str | None:
    """The address in `email_validator`'s normalised form, or None if empty or invalid."""
    try:
        text = scalar_text(value)
    except ValueError:
        return None
    return None if text is None else _validated_email(text)


# The same guests come back every cycle: validating each address and number once per
# process keeps an idle cycle cheap.
@functools.lru_cache(maxsize=65536)
def _validated_email(text: str) -> str | None:
    try:
        return validate_email(text, check_deliverability=False).normalized
    except (EmailNotValidError, ValueError):
        return None


def normalise_mobile(value: object, region: str) -> str | None:
    """E.164 digits without the `+` (`0612345678`, NL -> `31612345678`), or None.

    National numbers are read in `region`; anything `phonenumbers` cannot parse or does
    not consider a valid number is None.
    """
    try:
        text = scalar_text(value)
    except ValueError:
        return None
    return None if text is None else _e164_digits(text, region)


@functools.lru_cache(maxsize=65536)
def _e164_digits(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    formatted: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted.removeprefix("+")


def _as_language_code(mapped: str) -> str | None:
    key = language_key(mapped)
    if re.fullmatch(r"[a-z]{2}", key):
        return key
    return lookup_language(mapped)


def normalise_language(value: object, language_map: Mapping[str, str] | None = None) -> str | None:
    """The ISO 639-1 code for a PMS language value, or None if unknown or empty.

    `language_map` (keys matched case-insensitively, on the whole value, then on its
    primary subtag) comes first; then the built-in table of `loopsync.languages`.
    """
    try:
        text = scalar_text(value)
    except ValueError:
        return None
    if text is None:
        return None
    if language_map:
        folded = {language_key(key): code for key, code in language_map.items()}
        mapped = folded.get(language_key(text))
        if mapped is None:
            mapped = folded.get(primary_subtag(text))
        if mapped is not None:
            return _as_language_code(mapped)
    return lookup_language(text)


def room_ready_flag(value: object, ready_values: Iterable[str]) -> bool:
    """Whether the room is ready: a boolean as is; a code if it is one of `ready_values`.

    Codes are compared as stripped, case-insensitive text. A number 1 also matches
    "true" and 0 matches "false", since drivers return a bit column as either.
    """
    if isinstance(value, bool):
        return value
    try:
        text = scalar_text(value)
    except ValueError:
        return False
    if text is None:
        return False
    candidates = {text.casefold()}
    if isinstance(value, int | float | Decimal) and text in ("0", "1"):
        candidates.add("true" if text == "1" else "false")
    return any(ready.strip().casefold() in candidates for ready in ready_values)


# -- times -----------------------------------------------------------------------------


def parse_moment(value: object) -> datetime | date | None:
    """A PMS date/time value as a `datetime` (naive or aware) or a `date`; None if empty.

    Accepts `datetime`, `date` and ISO 8601 text as SQLite returns it (`2026-12-03`,
    `2026-12-03 14:00:00`, `2026-12-03T14:00:00.123Z`, `...+01:00`). Raises ValueError.
    """
    if value is None or isinstance(value, datetime | date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__} is not a date")
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    return datetime.fromisoformat(text)


def local_to_utc(moment: datetime, zone: tzinfo) -> datetime:
    """An aware UTC datetime; a naive `moment` is local to `zone`, resolved with fold=0.

    Raises ValueError when the moment cannot be expressed in UTC (year 1 or 9999 edges).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=zone, fold=0)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("date out of range") from None


def to_utc(value: object, zone: tzinfo, default_time: time | None) -> datetime | None:
    """A PMS date/time value as an aware UTC datetime (see `parse_moment`, `local_to_utc`).

    A date alone takes `default_time` on that day, local; with no default it gives None,
    as does an empty value. Raises ValueError when the value is not a date or time.
    """
    moment = parse_moment(value)
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        if default_time is None:
            return None
        moment = datetime.combine(moment, default_time)
    return local_to_utc(moment, zone)


@dataclass(frozen=True, slots=True)
class _StayTime:
    utc: datetime
    date_only: bool


# -- columns ---------------------------------------------------------------------------


def check_columns(columns: Iterable[str], *, cursor_column: str | None) -> None:
    """Raise `QueryShapeError` naming every required column (and the cursor) the query lacks.

    Names are compared case-insensitively. Columns loopsync does not know are logged as
    a warning: they are ignored.
    """
    names = [str(name) for name in columns]
    present = {name.lower() for name in names}
    cursor = cursor_column.lower() if cursor_column else None
    _warn_about_columns(names, cursor)
    missing = [column for column in REQUIRED_COLUMNS if column not in present]
    problems: list[str] = []
    if missing:
        quoted = ", ".join(f"'{column}'" for column in missing)
        aliases = ", ".join(f"AS {column}" for column in missing)
        plural = "s" if len(missing) > 1 else ""
        problems.append(
            f"the PMS query returns no column{plural} {quoted}; alias your column{plural} "
            f"{aliases} (canonical columns: see README)"
        )
    if cursor is not None and cursor not in present and cursor not in missing:
        problems.append(
            f"the PMS query returns no column '{cursor}' for the change cursor; return it, "
            "or set pms.cursor_column to the column holding the last-modified time"
        )
    if problems:
        raise QueryShapeError("; ".join(problems))


def _warn_about_columns(names: list[str], cursor: str | None) -> None:
    known = set(KNOWN_COLUMNS) | ({cursor} if cursor else set())
    unknown = [
        name
        for name in names
        if name.lower() not in known
        and not (name.lower().startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX))
    ]
    if unknown:
        logger.warning(
            "the PMS query returns columns loopsync does not know, ignored: %s "
            "(use the canonical names, or custom_<key> for a Loop custom field)",
            ", ".join(unknown),
        )
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            logger.warning(
                "the PMS query returns both %s and %s; loopsync reads only one of them",
                other,
                name,
            )


def _split_columns(row: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The row's canonical columns by lower-case name, and its custom_<key> columns in order."""
    fields: dict[str, Any] = {}
    custom: list[tuple[str, Any]] = []
    for column, value in row.items():
        name = str(column)
        lowered = name.lower()
        if lowered.startswith(CUSTOM_PREFIX):
            custom.append((name[len(CUSTOM_PREFIX) :], value))
        else:
            fields[lowered] = value
    return fields, custom


# -- the mapper ------------------------------------------------------------------------


class RowMapper:
    """Turns PMS rows into `Reservation`s with one property's settings; never raises per row."""

    def __init__(self, pms: PmsSettings, prop: PropertySettings) -> None:
        self._zone = prop.zone
        self._prop = prop
        self._statuses = dict(pms.status_map)
        self._statuses_folded: dict[str, set[Status]] = {}
        for code, status in pms.status_map.items():
            self._statuses_folded.setdefault(code.strip().casefold(), set()).add(status)
        self._ready_values = tuple(pms.room_ready_values)
        self._locations_folded = {
            code.strip().casefold(): location for code, location in prop.location_map.items()
        }
        self._default_language = (
            normalise_language(prop.default_language, prop.language_map)
            or prop.default_language.strip().lower()
            or "en"
        )
        self._warned: set[tuple[str, str, str]] = set()

    def map_row(self, row: Mapping[str, Any]) -> Reservation | Rejection:
        """The canonical reservation for one PMS row, or a `Rejection` with the reason."""
        fields, custom = _split_columns(row)
        try:
            reservation_id = parse_reservation_id(fields.get("reservation_id"))
        except RowRejected as exc:
            return Rejection(None, str(exc))
        try:
            return self._reservation(reservation_id, fields, custom)
        except RowRejected as exc:
            return Rejection(reservation_id, str(exc))
        except Exception as exc:
            # A bug must not stop the other guests' sync; the traceback may hold guest
            # data, so it goes to DEBUG only.
            logger.debug("mapping reservation %s failed", reservation_id, exc_info=True)
            return Rejection(
                reservation_id, f"internal error while mapping the row ({type(exc).__name__})"
            )

    def _reservation(
        self, reservation_id: str, fields: dict[str, Any], custom: list[tuple[str, Any]]
    ) -> Reservation:
        status = self._status(fields.get("status"))
        arrival, departure, arrival_date = self._stay(fields)
        return Reservation(
            reservation_id=reservation_id,
            status=status,
            arrival=arrival,
            departure=departure,
            arrival_date=arrival_date,
            room=self._text(reservation_id, "room", fields.get("room")),
            room_ready=self._room_ready(reservation_id, fields.get("room_ready")),
            location_id=self._location(fields),
            title=self._text(reservation_id, "title", fields.get("title")),
            firstname=self._text(reservation_id, "firstname", fields.get("firstname")),
            lastname=self._text(reservation_id, "lastname", fields.get("lastname")),
            email=self._email(reservation_id, fields.get("email")),
            mobile=self._mobile(reservation_id, fields.get("mobile")),
            language=self._language(reservation_id, fields.get("language")),
            vip=self._vip(reservation_id, fields.get("vip")),
            group_name=self._text(reservation_id, "group_name", fields.get("group_name")),
            area=self._text(reservation_id, "area", fields.get("area")),
            checked_in_at=self._event_time(
                reservation_id, "checked_in_at", fields.get("checked_in_at")
            ),
            checked_out_at=self._event_time(
                reservation_id, "checked_out_at", fields.get("checked_out_at")
            ),
            custom_fields=self._custom_fields(reservation_id, custom),
        )

    def _warn(self, reservation_id: str, field: str, problem: str) -> None:
        """Log a problem with one field once at WARNING; repeats go to DEBUG."""
        key = (reservation_id, field, problem)
        level = logging.DEBUG if key in self._warned else logging.WARNING
        if len(self._warned) >= _MAX_REMEMBERED_WARNINGS:
            self._warned.clear()
        self._warned.add(key)
        logger.log(level, "reservation %s: %s %s", reservation_id, field, problem)

    # required parts: a problem here rejects the row

    def _status(self, value: object) -> Status:
        try:
            code = scalar_text(value)
        except ValueError:
            raise RowRejected(f"status is {_shown(value)}; return the PMS status code") from None
        if code is None:
            raise RowRejected("the row has no status code")
        status = self._statuses.get(code)
        if status is not None:
            return status
        candidates = self._statuses_folded.get(code.casefold(), set())
        if len(candidates) > 1:
            # "Res" and "RES" mean different things in this PMS: guessing could send a
            # check-in message to a guest who has not arrived.
            raise RowRejected(
                f"status code {_shown(code)} matches pms.status_map only by case, and the "
                "keys that match differ; add it exactly as the PMS writes it"
            )
        if not candidates:
            raise RowRejected(f"unknown status code {_shown(code)}; add it to pms.status_map")
        return next(iter(candidates))

    def _stay(self, fields: dict[str, Any]) -> tuple[datetime, datetime, date]:
        arrival = self._stay_time("arrival", fields.get("arrival"), self._prop.default_arrival_time)
        departure = self._stay_time(
            "departure", fields.get("departure"), self._prop.default_departure_time
        )
        if departure.utc < arrival.utc:
            arrival, departure = self._order(arrival, departure)
        arrival_date = arrival.utc.astimezone(self._zone).date()
        return arrival.utc, departure.utc, arrival_date

    def _order(self, arrival: _StayTime, departure: _StayTime) -> tuple[_StayTime, _StayTime]:
        """Departure is before arrival: fix it only when a default time of day caused it."""
        arrival_day = arrival.utc.astimezone(self._zone).date()
        departure_day = departure.utc.astimezone(self._zone).date()
        if departure_day >= arrival_day and (arrival.date_only or departure.date_only):
            if departure.date_only:
                return arrival, arrival
            return departure, departure
        raise RowRejected(
            f"departure {self._local(departure.utc)} is before arrival {self._local(arrival.utc)}"
        )

    def _local(self, moment: datetime) -> str:
        return f"{moment.astimezone(self._zone):%Y-%m-%d %H:%M} {self._prop.timezone}"

    def _stay_time(self, field: str, value: object, default_time: time) -> _StayTime:
        try:
            moment = parse_moment(value)
            date_only = moment is not None and not isinstance(moment, datetime)
            utc = to_utc(moment, self._zone, default_time)
        except ValueError:
            raise RowRejected(
                f"{field} {_shown(value)} is not a date or an ISO 8601 date and time"
            ) from None
        if utc is None:
            raise RowRejected(f"the row has no {field}")
        return _StayTime(utc, date_only)

    def _location(self, fields: dict[str, Any]) -> str | None:
        value = fields.get("location")
        try:
            code = scalar_text(value)
        except ValueError:
            raise RowRejected(f"location is {_shown(value)}; return the property code") from None
        if code is None:
            return self._prop.location_id
        if not self._prop.location_map:
            return code
        location = self._prop.location_map.get(code) or self._locations_folded.get(code.casefold())
        if location is None:
            raise RowRejected(
                f"unknown location code {_shown(code)}; add it to property.location_map"
            )
        return location

    # optional parts: a problem here drops the value, with a warning

    def _text(self, reservation_id: str, field: str, value: object) -> str | None:
        try:
            text = scalar_text(value)
        except ValueError:
            self._warn(reservation_id, field, f"is a {type(value).__name__}, not text; ignored")
            return None
        if text is None:
            return None
        text = clean_text(text)
        if len(text) > MAX_TEXT_LENGTH:
            self._warn(reservation_id, field, f"is longer than {MAX_TEXT_LENGTH} characters; cut")
            text = cut_text(text)
        return text or None

    def _email(self, reservation_id: str, value: object) -> str | None:
        if _is_empty(value):
            return None
        email = normalise_email(value)
        if email is None:
            self._warn(reservation_id, "email", "is not a valid address; sent without it")
        return email

    def _mobile(self, reservation_id: str, value: object) -> str | None:
        if _is_empty(value):
            return None
        mobile = normalise_mobile(value, self._prop.phone_region)
        if mobile is None:
            self._warn(
                reservation_id,
                "mobile",
                f"is not a valid phone number (default region {self._prop.phone_region}); "
                "sent without it",
            )
        return mobile

    def _language(self, reservation_id: str, value: object) -> str:
        language = normalise_language(value, self._prop.language_map)
        if language is None:
            if not _is_empty(value):
                # A PMS language code is not guest data; a guest messaged in the wrong
                # language is worth a warning, once.
                self._warn(
                    reservation_id,
                    "language",
                    f"{_shown(value)} is unknown; using {self._default_language} "
                    "(add it to property.language_map)",
                )
            return self._default_language
        return language

    def _vip(self, reservation_id: str, value: object) -> str | None:
        if isinstance(value, bool):
            return normalise_vip(value)
        return normalise_vip(self._text(reservation_id, "vip", value))

    def _room_ready(self, reservation_id: str, value: object) -> bool:
        if not isinstance(value, bool):
            try:
                scalar_text(value)
            except ValueError:
                self._warn(reservation_id, "room_ready", f"is a {type(value).__name__}; not ready")
                return False
        return room_ready_flag(value, self._ready_values)

    def _event_time(self, reservation_id: str, field: str, value: object) -> datetime | None:
        try:
            return to_utc(value, self._zone, None)
        except ValueError:
            self._warn(reservation_id, field, "is not a date and time; ignored")
            return None

    def _custom_fields(
        self, reservation_id: str, custom: list[tuple[str, Any]]
    ) -> tuple[tuple[str, str], ...]:
        fields: list[tuple[str, str]] = []
        for key, value in custom:
            if not key:
                continue
            text = self._text(reservation_id, CUSTOM_PREFIX + key, value)
            if text is not None:
                fields.append((key, text))
        return tuple(fields)


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
