"""PMS row -> Reservation: pure unit tests, no database."""

from __future__ import annotations

import logging
import unicodedata
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopsync.config import PmsSettings, PropertySettings
from loopsync.errors import QueryShapeError
from loopsync.languages import ISO_639_1, LANGUAGE_TABLE, SINGLE_LETTER_CODES, lookup_language
from loopsync.mapping import (
    KNOWN_COLUMNS,
    MAX_TEXT_LENGTH,
    REQUIRED_COLUMNS,
    RowMapper,
    check_columns,
    clean_text,
    cut_text,
    normalise_email,
    normalise_language,
    normalise_mobile,
    normalise_name,
    normalise_vip,
    parse_moment,
    room_ready_flag,
    scalar_text,
    to_utc,
)
from loopsync.model import Rejection, Reservation, Status

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")
STATUS_MAP = {
    "0": Status.RESERVED,
    "1": Status.CHECKED_IN,
    "2": Status.CHECKED_OUT,
    "CX": Status.CANCELLED,
    "ns": Status.NO_SHOW,
    "Res": Status.RESERVED,
    "RES": Status.CHECKED_IN,  # an exact match beats a case-insensitive one
}


def make_mapper(**prop: Any) -> RowMapper:
    prop.setdefault("timezone", "Europe/Amsterdam")
    prop.setdefault("phone_region", "NL")
    return RowMapper(PmsSettings(status_map=STATUS_MAP), PropertySettings(**prop))


def row(**columns: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "reservation_id": "R1",
        "status": "0",
        "arrival": "2026-12-03 15:00:00",
        "departure": "2026-12-05 11:00:00",
    }
    base.update(columns)
    return base


def reservation(mapper: RowMapper, **columns: Any) -> Reservation:
    result = mapper.map_row(row(**columns))
    assert isinstance(result, Reservation), result
    return result


def rejection(mapper: RowMapper, columns: dict[str, Any]) -> Rejection:
    result = mapper.map_row(columns)
    assert isinstance(result, Rejection), result
    return result


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- check_columns -------------------------------------------------------------------------


def test_check_columns_accepts_the_required_columns() -> None:
    check_columns(REQUIRED_COLUMNS, cursor_column=None)


def test_check_columns_names_the_missing_column() -> None:
    with pytest.raises(QueryShapeError) as raised:
        check_columns(["reservation_id", "status", "arrival"], cursor_column=None)
    assert str(raised.value) == (
        "the PMS query returns no column 'departure'; alias your column AS departure "
        "(canonical columns: see README)"
    )


def test_check_columns_names_every_missing_column_and_the_cursor() -> None:
    with pytest.raises(QueryShapeError) as raised:
        check_columns(["status", "room"], cursor_column="modified_at")
    message = str(raised.value)
    for column in ("reservation_id", "arrival", "departure", "modified_at"):
        assert f"'{column}'" in message
    assert "'status'" not in message
    assert "AS reservation_id, AS arrival, AS departure" in message
    assert "pms.cursor_column" in message
    assert "\n" not in message


def test_check_columns_is_case_insensitive() -> None:
    check_columns(
        ["RESERVATION_ID", "Status", "ARRIVAL", "Departure", "MODIFIED_AT"],
        cursor_column="modified_at",
    )


def test_check_columns_needs_the_cursor_only_when_given() -> None:
    check_columns(REQUIRED_COLUMNS, cursor_column=None)
    with pytest.raises(QueryShapeError, match="'rowver'"):
        check_columns(REQUIRED_COLUMNS, cursor_column="RowVer")
    check_columns([*REQUIRED_COLUMNS, "ROWVER"], cursor_column="RowVer")


def test_check_columns_warns_about_unknown_columns_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="loopsync.mapping"):
        check_columns(
            [*REQUIRED_COLUMNS, "FirstName", "custom_guestID", "guest_nme", "custom_", "rowver"],
            cursor_column="rowver",
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "guest_nme, custom_" in warnings[0]
    assert "FirstName" not in warnings[0]
    assert "rowver" not in warnings[0]


def test_check_columns_warns_about_columns_differing_only_in_case(
    caplog: pytest.LogCaptureFixture,
) -> None:
    check_columns([*REQUIRED_COLUMNS, "room", "ROOM"], cursor_column=None)
    assert "both room and ROOM" in caplog.text


def test_known_columns_are_the_canonical_set() -> None:
    assert set(REQUIRED_COLUMNS) <= set(KNOWN_COLUMNS)
    assert len(KNOWN_COLUMNS) == 19


# -- a whole row ---------------------------------------------------------------------------


def test_a_complete_row_maps_every_field() -> None:
    mapper = make_mapper(location_map={"AMS": "loc-ams"})
    result = reservation(
        mapper,
        reservation_id=Decimal("188551"),
        status=1,
        room=101,
        arrival=datetime(2026, 12, 3, 14, 0),
        departure=date(2026, 12, 5),
        firstname="  Zoë ",
        lastname="Ñúñez-Øberg",
        title="Dr.",
        email="Rick@ABC.com",
        mobile="06 1234 5678",
        language="GER",
        vip="Gold",
        group_name="Rick&Morty",
        area="North wing",
        room_ready="Clean",
        checked_in_at="2026-12-03T14:05:00Z",
        checked_out_at=None,
        modified_at=datetime(2026, 12, 3, 14, 5),
        location="ams",
        custom_guestID=188551,
        custom_loyalty="3883882",
    )
    assert result == Reservation(
        reservation_id="188551",
        status=Status.CHECKED_IN,
        arrival=utc(2026, 12, 3, 13, 0),
        departure=utc(2026, 12, 5, 10, 0),
        arrival_date=date(2026, 12, 3),
        room="101",
        room_ready=True,
        location_id="loc-ams",
        title="Dr.",
        firstname="Zoë",
        lastname="Ñúñez-Øberg",
        email="Rick@abc.com",
        mobile="31612345678",
        language="de",
        vip="Gold",
        group_name="Rick&Morty",
        area="North wing",
        checked_in_at=utc(2026, 12, 3, 14, 5),
        checked_out_at=None,
        custom_fields=(("guestID", "188551"), ("loyalty", "3883882")),
    )


def test_a_minimal_row_gets_the_defaults() -> None:
    result = reservation(make_mapper(location_id="loc-1", default_language="NL"))
    assert result.room is None
    assert result.room_ready is False
    assert result.location_id == "loc-1"
    assert result.language == "nl"
    assert result.email is None
    assert result.mobile is None
    assert result.custom_fields == ()


def test_column_names_are_matched_case_insensitively() -> None:
    result = make_mapper().map_row(
        {
            "RESERVATION_ID": 7,
            "STATUS": "2",
            "Arrival": "2026-12-03",
            "DEPARTURE": "2026-12-04",
            "FIRSTNAME": "Ann",
            "Custom_Loyalty": "G",
        }
    )
    assert isinstance(result, Reservation)
    assert (result.reservation_id, result.status, result.firstname) == (
        "7",
        Status.CHECKED_OUT,
        "Ann",
    )
    assert result.custom_fields == (("Loyalty", "G"),)


# -- rejections ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   ", float("nan")])
def test_a_row_without_an_id_is_rejected(value: object) -> None:
    result = rejection(make_mapper(), row(reservation_id=value))
    assert result == Rejection(None, "the row has no reservation_id")


def test_a_row_without_the_id_column_is_rejected() -> None:
    columns = row()
    del columns["reservation_id"]
    assert rejection(make_mapper(), columns).reservation_id is None


def test_a_binary_id_is_rejected_with_a_hint() -> None:
    result = rejection(make_mapper(), row(reservation_id=b"\x00\x00\x07\xd1"))
    assert result.reservation_id is None
    assert result.reason == (
        "reservation_id is binary (0x000007d1); CAST it to a character or number type in the "
        "PMS query"
    )


@pytest.mark.parametrize("value", ["R\x00", "12\n3"])
def test_an_id_with_control_characters_is_rejected(value: str) -> None:
    assert "control characters" in rejection(make_mapper(), row(reservation_id=value)).reason


def test_an_unknown_status_is_rejected_with_the_fix() -> None:
    result = rejection(make_mapper(), row(reservation_id=42, status="XX"))
    assert result == Rejection("42", "unknown status code 'XX'; add it to pms.status_map")


def test_a_status_matching_keys_that_differ_only_by_case_is_rejected() -> None:
    result = rejection(make_mapper(), row(status="res"))
    assert result.reason.startswith("status code 'res' matches pms.status_map only by case")


def test_a_missing_status_is_rejected() -> None:
    assert rejection(make_mapper(), row(status=None)).reason == "the row has no status code"


@pytest.mark.parametrize("column", ["arrival", "departure"])
def test_a_missing_stay_time_is_rejected(column: str) -> None:
    assert rejection(make_mapper(), row(**{column: None})).reason == f"the row has no {column}"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0000-00-00 00:00:00", "'0000-00-00 00:00:00'"),
        ("next tuesday", "'next tuesday'"),
        (20261203, "of type int"),
        (time(14, 0), "of type time"),
    ],
)
def test_an_unparseable_arrival_is_rejected(value: object, shown: str) -> None:
    result = rejection(make_mapper(), row(arrival=value))
    assert result.reason == f"arrival {shown} is not a date or an ISO 8601 date and time"


def test_departure_before_arrival_is_rejected() -> None:
    result = rejection(
        make_mapper(),
        row(reservation_id="R9", arrival="2026-12-05 15:00", departure="2026-12-03 11:00"),
    )
    assert result == Rejection(
        "R9",
        "departure 2026-12-03 11:00 Europe/Amsterdam is before arrival "
        "2026-12-05 15:00 Europe/Amsterdam",
    )


def test_departure_before_arrival_by_dates_alone_is_rejected() -> None:
    result = rejection(make_mapper(), row(arrival=date(2026, 12, 5), departure=date(2026, 12, 4)))
    assert "is before arrival" in result.reason


def test_a_day_use_given_as_dates_is_not_rejected() -> None:
    # 15:00 arrival and 11:00 departure on the same day only because of the default times.
    result = reservation(make_mapper(), arrival="2026-12-03", departure="2026-12-03")
    assert result.arrival == result.departure == utc(2026, 12, 3, 14, 0)
    assert result.arrival_date == date(2026, 12, 3)


def test_a_date_only_arrival_moves_onto_an_earlier_same_day_departure() -> None:
    result = reservation(make_mapper(), arrival="2026-12-03", departure="2026-12-03 12:00")
    assert result.arrival == result.departure == utc(2026, 12, 3, 11, 0)
    assert result.arrival_date == date(2026, 12, 3)


def test_an_unknown_location_code_is_rejected_when_a_map_is_set() -> None:
    mapper = make_mapper(location_map={"AMS": "loc-ams"})
    result = rejection(mapper, row(location="RTM"))
    assert result == Rejection("R1", "unknown location code 'RTM'; add it to property.location_map")


def test_rejections_never_raise_for_a_broken_row() -> None:
    result = make_mapper().map_row({"reservation_id": "R1", "status": ["0"], "arrival": {}})
    assert isinstance(result, Rejection)
    assert result.reason == "status is of type list; return the PMS status code"


# -- reservation ids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (123, "123"),
        (Decimal("123"), "123"),
        (Decimal("123.00"), "123"),
        (Decimal("1.23E+2"), "123"),
        (123.0, "123"),
        ("  A-123 ", "A-123"),
        ("00123", "00123"),
        (-5, "-5"),
        (Decimal("12.5"), "12.5"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        ("'; DROP TABLE x; --", "'; DROP TABLE x; --"),
    ],
)
def test_reservation_ids_become_text(value: object, expected: str) -> None:
    assert reservation(make_mapper(), reservation_id=value).reservation_id == expected


# -- status --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, Status.RESERVED),
        (1, Status.CHECKED_IN),
        (Decimal("2"), Status.CHECKED_OUT),
        (2.0, Status.CHECKED_OUT),
        (" 1 ", Status.CHECKED_IN),
        ("cx", Status.CANCELLED),
        ("NS", Status.NO_SHOW),
        ("Res", Status.RESERVED),
        ("RES", Status.CHECKED_IN),
    ],
)
def test_status_codes_are_looked_up_exactly_then_case_insensitively(
    code: object, expected: Status
) -> None:
    assert reservation(make_mapper(), status=code).status is expected


# -- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03 14:00:00", utc(2026, 12, 3, 13, 0)),
        ("2026-12-03T14:00:00", utc(2026, 12, 3, 13, 0)),
        ("2026-12-03 14:00", utc(2026, 12, 3, 13, 0)),
        ("2026-12-03 14:00:00.250", datetime(2026, 12, 3, 13, 0, 0, 250000, tzinfo=UTC)),
        ("2026-12-03T14:00:00.1234567", datetime(2026, 12, 3, 13, 0, 0, 123456, tzinfo=UTC)),
        ("2026-12-03T14:00:00Z", utc(2026, 12, 3, 14, 0)),
        ("2026-12-03 14:00:00+05:30", utc(2026, 12, 3, 8, 30)),
        ("2026-12-03T14:00:00-05:00", utc(2026, 12, 3, 19, 0)),
        ("2026-12-03", utc(2026, 12, 3, 14, 0)),  # default arrival time 15:00 local
        (" 2026-12-03 ", utc(2026, 12, 3, 14, 0)),
    ],
)
def test_iso_strings_as_sqlite_returns_them(text: str, expected: datetime) -> None:
    assert to_utc(text, AMSTERDAM, time(15, 0)) == expected
    assert to_utc(text, AMSTERDAM, time(15, 0)).tzinfo is UTC  # type: ignore[union-attr]


def test_naive_datetimes_are_local_and_aware_ones_converted() -> None:
    assert to_utc(datetime(2026, 7, 1, 15, 0), AMSTERDAM, None) == utc(2026, 7, 1, 13, 0)
    assert to_utc(datetime(2026, 7, 1, 15, 0), NEW_YORK, None) == utc(2026, 7, 1, 19, 0)
    aware = datetime(2026, 7, 1, 15, 0, tzinfo=timezone(timedelta(hours=9)))
    assert to_utc(aware, AMSTERDAM, None) == utc(2026, 7, 1, 6, 0)


def test_a_date_alone_takes_the_default_time_or_nothing() -> None:
    assert to_utc(date(2026, 7, 1), AMSTERDAM, time(11, 0)) == utc(2026, 7, 1, 9, 0)
    assert to_utc(date(2026, 7, 1), AMSTERDAM, None) is None
    assert to_utc("2026-07-01", AMSTERDAM, None) is None
    assert to_utc(None, AMSTERDAM, time(11, 0)) is None
    assert to_utc("  ", AMSTERDAM, time(11, 0)) is None


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "0000-00-00", 1700000000, b"2026"])
def test_to_utc_refuses_what_is_not_a_date(value: object) -> None:
    with pytest.raises(ValueError):
        to_utc(value, AMSTERDAM, time(15, 0))


def test_to_utc_refuses_moments_outside_the_utc_range() -> None:
    with pytest.raises(ValueError):
        to_utc(datetime.max, NEW_YORK, None)


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        # Spring forward: 02:00-03:00 does not exist. fold=0 reads it with the offset before
        # the change, which lands it an hour later on the wall clock (02:30 -> 03:30).
        (AMSTERDAM, datetime(2026, 3, 29, 2, 30), utc(2026, 3, 29, 1, 30)),
        (NEW_YORK, datetime(2026, 3, 8, 2, 30), utc(2026, 3, 8, 7, 30)),
        # Fall back: the hour happens twice. fold=0 is the first occurrence (summer time).
        (AMSTERDAM, datetime(2026, 10, 25, 2, 30), utc(2026, 10, 25, 0, 30)),
        (NEW_YORK, datetime(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30)),
    ],
)
def test_dst_gaps_and_folds_resolve_the_same_way_every_time(
    zone: ZoneInfo, local: datetime, expected: datetime
) -> None:
    assert to_utc(local, zone, None) == expected
    assert to_utc(local.isoformat(sep=" "), zone, None) == expected
    assert to_utc(local.replace(fold=1), zone, None) == expected  # the driver's fold is ignored
    mapper = make_mapper(timezone=zone.key)
    result = reservation(mapper, arrival=local, departure=local + timedelta(days=2))
    assert result.arrival == expected
    assert result.arrival_date == local.date()


def test_gap_times_land_after_the_gap_on_the_wall_clock() -> None:
    moment = to_utc(datetime(2026, 3, 29, 2, 30), AMSTERDAM, None)
    assert moment is not None
    assert moment.astimezone(AMSTERDAM).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)


def test_arrival_date_is_the_local_calendar_date() -> None:
    mapper = make_mapper(timezone="America/New_York")
    # 2026-12-04 02:00 UTC is still the evening of 3 December in New York.
    result = reservation(mapper, arrival="2026-12-04T02:00:00Z", departure="2026-12-06")
    assert result.arrival == utc(2026, 12, 4, 2, 0)
    assert result.arrival_date == date(2026, 12, 3)


def test_date_only_stays_use_the_default_times() -> None:
    mapper = make_mapper(default_arrival_time="14:00", default_departure_time="10:30")
    result = reservation(mapper, arrival=date(2026, 7, 1), departure="2026-07-03")
    assert result.arrival == utc(2026, 7, 1, 12, 0)
    assert result.departure == utc(2026, 7, 3, 8, 30)


def test_event_times_need_a_time_of_day(caplog: pytest.LogCaptureFixture) -> None:
    result = reservation(
        make_mapper(),
        checked_in_at=date(2026, 12, 3),
        checked_out_at="garbage",
    )
    assert result.checked_in_at is None
    assert result.checked_out_at is None
    assert "reservation R1: checked_out_at is not a date and time; ignored" in caplog.text


def test_parse_moment_keeps_dates_and_datetimes_apart() -> None:
    assert parse_moment("2026-12-03") == date(2026, 12, 3)
    assert parse_moment("2026-12-03T00:00:00") == datetime(2026, 12, 3)
    assert type(parse_moment("2026-12-03T00:00:00")) is datetime
    assert parse_moment("") is None


# -- room and room_ready -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(101, "101"), (Decimal("101"), "101"), (" 12A ", "12A"), ("", None), (None, None)],
)
def test_room(value: object, expected: str | None) -> None:
    assert reservation(make_mapper(), room=value).room == expected


@pytest.mark.parametrize(
    ("value", "ready_values", "expected"),
    [
        (True, [], True),
        (False, ["false"], False),
        (None, ["1"], False),
        (1, ["1"], True),
        (1, ["true"], True),
        (0, ["0"], True),
        (0, ["1", "true"], False),
        (Decimal("1"), ["true"], True),
        ("1", ["1"], True),
        (" CLEAN ", ["clean"], True),
        ("clean", [" Clean "], True),
        ("dirty", ["clean"], False),
        ("1", ["true"], False),  # text is compared as text
        ("", ["1"], False),
        ("I", ["I", "C"], True),
    ],
)
def test_room_ready(value: object, ready_values: list[str], expected: bool) -> None:
    assert room_ready_flag(value, ready_values) is expected


def test_room_ready_through_the_mapper_uses_pms_room_ready_values() -> None:
    mapper = RowMapper(
        PmsSettings(status_map=STATUS_MAP, room_ready_values=["I", "C"]),
        PropertySettings(timezone="Europe/Amsterdam"),
    )
    assert isinstance(ready := mapper.map_row(row(room_ready="i")), Reservation)
    assert ready.room_ready is True
    assert isinstance(dirty := mapper.map_row(row(room_ready="D")), Reservation)
    assert dirty.room_ready is False


# -- names and other text ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Zoë Ñúñez-Øberg",
        "李小龙",
        "محمد بن سلمان",
        "שָׁלוֹם כהן",
        "Ana 🌸 María 👨‍👩‍👧",
        "O'Brien",
        "'; DROP TABLE x; --",
        "Robert'); DROP TABLE Students;--",
        "Ünal Çağlar",
        "Åsa Þórsdóttir",
    ],
)
def test_names_are_kept_exactly(name: str) -> None:
    result = reservation(make_mapper(), firstname=name, lastname=name)
    assert result.firstname == name
    assert result.firstname.encode("utf-8") == name.encode("utf-8")
    assert result.lastname == name


def test_decomposed_names_become_nfc() -> None:
    result = reservation(make_mapper(), firstname="Zoe\u0308", lastname="N\u0303u\u0301n\u0303ez")
    assert result.firstname == "Zo\u00eb"
    assert result.lastname == "Ñúñez"
    assert unicodedata.is_normalized("NFC", result.lastname)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann  ", "Ann"),
        ("Ann\x00Lee", "Ann Lee"),
        ("Ann\n\tLee", "Ann Lee"),
        ("Ann \r\n  Lee", "Ann Lee"),
        ("Ann\x85Lee", "Ann Lee"),  # C1 control
        ("Ann\x7fLee", "Ann Lee"),
        ("\x00\x01\n", None),
        ("", None),
        ("Jean\u00a0Luc", "Jean Luc"),
    ],
)
def test_names_lose_control_characters_and_extra_whitespace(raw: str, expected: str | None) -> None:
    assert normalise_name(raw) == expected


def test_a_long_name_is_cut_with_a_warning_that_names_no_guest_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = "Wolfeschlegelsteinhausenbergerdorff" * 9  # 315 characters
    result = reservation(make_mapper(), reservation_id="R77", lastname=name[:300])
    assert result.lastname == name[:255]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "reservation R77: lastname is longer than 255 characters; cut"
    ]
    assert "Wolfe" not in caplog.text


def test_a_cut_never_splits_a_combining_sequence() -> None:
    text = "a" * 254 + "e\u0301\u0302"  # NFC: 254 + "é" + U+0302
    cut = normalise_name(text)
    assert cut == "a" * 254
    assert unicodedata.combining(cut[-1]) == 0


def test_a_cut_never_splits_an_emoji_sequence_or_a_flag() -> None:
    family = "👨\u200d👩\u200d👧"
    assert cut_text("a" * 253 + family, 255) == "a" * 253
    assert cut_text("a" * 254 + "👍🏽", 255) == "a" * 254
    assert cut_text("a" * 254 + "🇳🇱", 255) == "a" * 254
    assert cut_text("a" * 253 + "🇳🇱🇧🇪", 255) == "a" * 253 + "🇳🇱"
    assert cut_text("a" * 254 + " b", 255) == "a" * 254


def test_a_cut_keeps_short_text_untouched() -> None:
    assert cut_text("x" * 255) == "x" * 255


@pytest.mark.parametrize("column", ["title", "group_name", "area"])
def test_other_profile_texts_are_normalised_like_names(column: str) -> None:
    result = reservation(make_mapper(), **{column: " Caf\u0065\u0301\n& Co "})
    assert getattr(result, column) == "Café & Co"


def test_a_non_text_name_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    result = reservation(make_mapper(), firstname=["Ann"])
    assert result.firstname is None
    assert "reservation R1: firstname is a list, not text; ignored" in caplog.text


# -- e-mail and mobile ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Rick@ABC.com", "Rick@abc.com"),
        (" rs@abc.com ", "rs@abc.com"),
        ("zoë@exämple.de", "zoë@exämple.de"),
        ("not-an-email", None),
        ("a@b", None),
        ("Rick <rs@abc.com>", None),
        ("rs@abc.com; other@abc.com", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_email(value: object, expected: str | None) -> None:
    assert normalise_email(value) == expected


def test_an_invalid_email_is_dropped_with_a_warning_naming_no_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = reservation(make_mapper(), reservation_id="R5", email="ann.lee@@example")
    assert result.email is None
    assert "reservation R5: email is not a valid address; sent without it" in caplog.text
    assert "ann.lee" not in caplog.text


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("0612345678", "NL", "31612345678"),
        ("06-12 34 56 78", "NL", "31612345678"),
        ("+31 6 12345678", "US", "31612345678"),
        ("0031612345678", "NL", "31612345678"),
        ("+1 613 555 1234", "NL", "16135551234"),
        ("(613) 555-1234", "US", "16135551234"),
        (612345678, "NL", "31612345678"),
        (Decimal("612345678"), "NL", "31612345678"),
        ("12", "NL", None),
        ("+999 12345", "NL", None),
        ("call me", "NL", None),
        ("", "NL", None),
        (None, "NL", None),
    ],
)
def test_normalise_mobile(value: object, region: str, expected: str | None) -> None:
    assert normalise_mobile(value, region) == expected


def test_an_unparseable_mobile_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    result = reservation(make_mapper(), reservation_id="R6", mobile="12", email="rs@abc.com")
    assert result.mobile is None
    assert result.email == "rs@abc.com"  # the contact still goes
    assert "reservation R6: mobile is not a valid phone number" in caplog.text
    assert " 12" not in caplog.text.replace("R6", "")


def test_a_national_mobile_uses_the_property_region() -> None:
    assert reservation(make_mapper(phone_region="NL"), mobile="0612345678").mobile == "31612345678"


def test_a_problem_is_warned_once_per_reservation_and_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mapper = make_mapper()
    for _ in range(3):
        reservation(mapper, reservation_id="R8", mobile="12")
    reservation(mapper, reservation_id="R9", mobile="12")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert sum("R8" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG) == 2


# -- language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("ENG", "en"),
        ("eng", "en"),
        ("E", "en"),
        ("e", "en"),
        ("DEU", "de"),
        ("GER", "de"),
        ("G", "de"),
        ("D", "de"),
        ("FRA", "fr"),
        ("FRE", "fr"),
        ("F", "fr"),
        ("SPA", "es"),
        ("S", "es"),
        ("ITA", "it"),
        ("I", "it"),
        ("NLD", "nl"),
        ("DUT", "nl"),
        ("POR", "pt"),
        ("RUS", "ru"),
        ("ZHO", "zh"),
        ("CHI", "zh"),
        ("JPN", "ja"),
        ("KOR", "ko"),
        ("ARA", "ar"),
        ("German", "de"),
        ("french", "fr"),
        ("Chinese", "zh"),
        ("Chinese (Simplified)", "zh"),
        ("Deutsch", "de"),
        ("Français", "fr"),
        ("Francais", "fr"),
        ("Español", "es"),
        ("中文", "zh"),
        ("日本語", "ja"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("zh-Hans-CN", "zh"),
        ("pt-BR", "pt"),
        ("de_DE.UTF-8", "de"),
        ("iw", "he"),
        ("in", "id"),
        ("GB", "en"),
        ("se", "se"),  # Northern Sami, not Sweden
        ("yo", "yo"),  # any ISO 639-1 code is taken as is
        (" Dutch ", "nl"),
    ],
)
def test_languages_from_the_built_in_table(value: str, expected: str) -> None:
    assert normalise_language(value) == expected


@pytest.mark.parametrize("value", ["", "  ", None, "xx", "Klingon", "Z", 7])
def test_unknown_languages_are_none(value: object) -> None:
    assert normalise_language(value) is None


def test_the_language_map_comes_first_case_insensitively() -> None:
    language_map = {"D": "nl", "x1": "FR", "7": "German", "custom-lang": "pt-BR"}
    assert normalise_language("d", language_map) == "nl"
    assert normalise_language("X1", language_map) == "fr"
    assert normalise_language(7, language_map) == "de"
    assert normalise_language("custom-lang", language_map) == "pt"
    assert normalise_language("G", language_map) == "de"  # not in the map: the table


def test_an_unknown_language_gets_the_property_default(caplog: pytest.LogCaptureFixture) -> None:
    mapper = make_mapper(default_language="de", language_map={"VL": "nl"})
    assert reservation(mapper, language="Klingon").language == "de"
    assert reservation(mapper, language=None).language == "de"
    assert reservation(mapper, language="vl").language == "nl"
    unknown = [r for r in caplog.records if "Klingon" in r.getMessage()]
    assert [r.levelno for r in unknown] == [logging.WARNING]  # worth knowing: wrong language


def test_the_language_table_is_consistent() -> None:
    assert set(LANGUAGE_TABLE.values()) <= ISO_639_1
    assert len({code for code in LANGUAGE_TABLE.values()}) >= 40
    for letter, code in SINGLE_LETTER_CODES.items():
        assert lookup_language(letter) == code


# -- location ------------------------------------------------------------------------------


def test_location_codes() -> None:
    mapped = make_mapper(location_id="default", location_map={"AMS": "loc-ams", "rtm": "loc-rtm"})
    assert reservation(mapped, location="AMS").location_id == "loc-ams"
    assert reservation(mapped, location="RTM").location_id == "loc-rtm"
    assert reservation(mapped, location=None).location_id == "default"
    assert reservation(mapped).location_id == "default"
    unmapped = make_mapper(location_id="default")
    assert reservation(unmapped, location=12).location_id == "12"
    assert reservation(unmapped, location=None).location_id == "default"
    assert reservation(make_mapper(), location=None).location_id is None


# -- custom fields and vip -----------------------------------------------------------------


def test_custom_fields_keep_column_order_and_key_case() -> None:
    result = reservation(
        make_mapper(),
        custom_guestID=Decimal("188551"),
        custom_empty="  ",
        custom_none=None,
        CUSTOM_Loyalty="3883882",
        custom_flag=True,
        custom_since=date(2020, 1, 2),
        custom_="no key",
    )
    assert result.custom_fields == (
        ("guestID", "188551"),
        ("Loyalty", "3883882"),
        ("flag", "true"),
        ("since", "2020-01-02"),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "VIP"),
        (False, None),
        (0, None),
        ("0", None),
        ("no", None),
        ("False", None),
        (None, None),
        ("", None),
        (1, "1"),
        (3, "3"),
        ("Gold", "Gold"),
        (" VIP 2 ", "VIP 2"),
    ],
)
def test_vip(value: object, expected: str | None) -> None:
    assert normalise_vip(value) == expected
    assert reservation(make_mapper(), vip=value).vip == expected


# -- scalar_text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (" a ", "a"),
        (12, "12"),
        (12.0, "12"),
        (12.5, "12.5"),
        (Decimal("12.50"), "12.50"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("NaN"), None),
        (float("inf"), None),
        (True, "true"),
        ("é".encode(), "é"),
        (date(2026, 1, 2), "2026-01-02"),
    ],
)
def test_scalar_text(value: object, expected: str | None) -> None:
    assert scalar_text(value) == expected


@pytest.mark.parametrize("value", [b"\xff\xfe", ["a"], {"a": 1}, object(), Decimal("1E+1000")])
def test_scalar_text_refuses_unusable_values(value: object) -> None:
    with pytest.raises(ValueError):
        scalar_text(value)


# -- properties ----------------------------------------------------------------------------


@given(st.text())
def test_clean_text_is_idempotent_and_nfc(text: str) -> None:
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    assert cleaned == cleaned.strip()
    assert not any(unicodedata.category(char) == "Cc" for char in cleaned)


@given(st.text(min_size=0, max_size=600))
def test_normalise_name_is_idempotent_and_never_too_long(text: str) -> None:
    name = normalise_name(text)
    if name is None:
        return
    assert 0 < len(name) <= MAX_TEXT_LENGTH
    assert normalise_name(name) == name


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from(["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "UTC"]),
)
def test_to_utc_always_gives_aware_utc(moment: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    result = to_utc(moment, zone, None)
    assert result is not None
    assert result.tzinfo is UTC
    # Round trip: only a time in a gap or in the fold's second occurrence comes back changed.
    back = result.astimezone(zone).replace(tzinfo=None)
    assert abs(back - moment) <= timedelta(hours=1)


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(),
    st.binary(max_size=20),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.times(),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(["2026-12-03", "2026-12-03 14:00:00", "0", "1", "CX", "+31612345678"]),
)
_COLUMNS = st.sampled_from([*KNOWN_COLUMNS, "custom_x", "custom_Y", "CUSTOM_z", "other"])


_STAY_TIME = st.one_of(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, NEW_YORK, AMSTERDAM]),
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(str),
)
# Required columns that are usable, so that the junk in the other columns is reached.
_USABLE_REQUIRED = st.fixed_dictionaries(
    {
        "reservation_id": st.integers(min_value=1) | st.text("AZ09-", min_size=1, max_size=8),
        "status": st.sampled_from([*STATUS_MAP, 0, 1, 2]),
        "arrival": _STAY_TIME,
        "departure": _STAY_TIME,
    }
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(_COLUMNS, _JUNK, max_size=12),
    _USABLE_REQUIRED | st.dictionaries(st.sampled_from(REQUIRED_COLUMNS), _JUNK),
)
def test_mapping_never_raises_for_junk(junk: dict[str, Any], required: dict[str, Any]) -> None:
    columns = {**junk, **required}
    result = make_mapper(location_map={"AMS": "loc"}).map_row(columns)
    assert isinstance(result, Reservation | Rejection)
    if isinstance(result, Rejection):
        assert not result.reason.startswith("internal error"), result
        return
    assert result.arrival.tzinfo is UTC
    assert result.departure.tzinfo is UTC
    assert result.departure >= result.arrival
    assert len(result.language) == 2
    result.contact_payload()  # serialisable as the Loop payload


@settings(deadline=None)
@given(
    firstname=st.text(),
    mobile=st.text(alphabet="+0123456789 -()", max_size=20),
    email=st.emails() | st.text(),
    language=st.text(max_size=12),
)
def test_mapping_never_raises_for_arbitrary_profiles(
    firstname: str, mobile: str, email: str, language: str
) -> None:
    result = make_mapper().map_row(
        row(firstname=firstname, mobile=mobile, email=email, language=language)
    )
    assert isinstance(result, Reservation)
    assert result.firstname is None or len(result.firstname) <= MAX_TEXT_LENGTH
    assert result.mobile is None or result.mobile.isdigit()
