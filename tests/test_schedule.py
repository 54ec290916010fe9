"""The daemon's triggers across daylight-saving nights: no stall, no double run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loopsync.daemon import poll_trigger, reconcile_trigger

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def fire_times(trigger, start: datetime, count: int) -> list[datetime]:  # type: ignore[no-untyped-def]
    times: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, now)
        times.append(nxt)
        previous, now = nxt, nxt
    return times


@pytest.mark.parametrize(
    "night", [datetime(2026, 3, 29, 0, 50, tzinfo=UTC), datetime(2026, 10, 25, 0, 50, tzinfo=UTC)]
)
def test_poll_keeps_its_interval_through_a_dst_change(night: datetime):
    times = fire_times(
        poll_trigger(timedelta(minutes=1)), night, 30
    )  # 00:50-01:20 UTC spans the change
    gaps = {later - earlier for earlier, later in itertools.pairwise(times)}
    assert gaps == {timedelta(minutes=1)}


@pytest.mark.parametrize(
    ("start", "expected_local_days"),
    [
        (
            datetime(2026, 3, 27, 12, 0, tzinfo=UTC),
            ["2026-03-28", "2026-03-29", "2026-03-30"],
        ),  # spring forward
        (
            datetime(2026, 10, 23, 12, 0, tzinfo=UTC),
            ["2026-10-24", "2026-10-25", "2026-10-26"],
        ),  # fall back
    ],
)
def test_reconcile_runs_once_a_night_at_local_0330(start: datetime, expected_local_days: list[str]):
    times = fire_times(reconcile_trigger("30 3 * * *", AMSTERDAM), start, 3)
    local = [moment.astimezone(AMSTERDAM) for moment in times]
    assert [moment.date().isoformat() for moment in local] == expected_local_days
    assert {(moment.hour, moment.minute) for moment in local} == {(3, 30)}
