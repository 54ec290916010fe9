"""Small pure parts of the cycle: the cursor never goes back, and a future cursor is flagged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from loopsync.delivery import DeliveryReport
from loopsync.rules import Clock
from loopsync.sync import CycleSummary, _later, _warn_if_ahead

CLOCK = Clock(datetime(2026, 12, 3, 12, 0, tzinfo=UTC), ZoneInfo("Europe/Amsterdam"))  # 13:00 local


def test_cursor_never_moves_backwards():
    assert _later(None, 5) == 5
    assert _later(7, 5) == 7
    assert _later(b"\x00\x01", b"\x00\x02") == b"\x00\x02"
    assert _later("2026-12-03 10:00", 3) == 3  # types that do not compare: the newest wins


@pytest.mark.parametrize(
    ("newest", "warned"),
    [
        (datetime(2026, 12, 3, 13, 30), False),  # naive local, 30 min ahead: clock skew
        (datetime(2026, 12, 3, 14, 30), True),  # naive local, 1.5 h ahead
        (datetime(2026, 12, 3, 13, 30, tzinfo=UTC), True),  # aware: 1.5 h ahead of 12:00 UTC
        (datetime(2026, 12, 3, 12, 30, tzinfo=UTC), False),
        ("2027-01-01", False),  # only datetimes are judged
    ],
)
def test_a_cursor_far_in_the_future_is_flagged(caplog, newest, warned):
    caplog.set_level(logging.WARNING, logger="loopsync.sync")
    _warn_if_ahead(newest, CLOCK, "modified_at")
    assert ("more than an hour ahead of now" in caplog.text) is warned


def test_a_cycle_whose_only_news_is_an_old_rejection_is_idle():
    summary = CycleSummary(
        kind="sync", started_at=CLOCK.now, rows_read=5, rejected=1, delivery=DeliveryReport()
    )
    assert summary.idle
    summary.rejected_first_time = 1
    assert not summary.idle
