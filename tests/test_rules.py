"""Rules R1–R12, one behaviour per test; pure functions, no I/O."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from rules_helpers import (
    ARRIVAL_DAY,
    MemoryStore,
    clock_at,
    kinds,
    local,
    replace,
    reservation,
    rules,
)

from loopsync.errors import GuardTripped
from loopsync.model import ActionKind, Mark, Status
from loopsync.rules import in_horizon, quiet_until, still_fits

MORNING = local(ARRIVAL_DAY, 10)  # 10:00 local on the arrival day


def live_store(*reservations_: object, moment=MORNING) -> MemoryStore:
    """A store past its go-live baseline, holding the given reservations."""
    store = MemoryStore()
    store.cycle(list(reservations_), moment - timedelta(hours=1))  # type: ignore[arg-type]
    return store


def test_go_live_upserts_live_stays_and_sends_no_events():
    store = MemoryStore()
    rows = [
        reservation("A", Status.RESERVED),
        reservation("B", Status.CHECKED_IN),
        reservation("C", Status.CHECKED_OUT),
        reservation("D", Status.CANCELLED),
        reservation("E", Status.RESERVED, room_ready=True),
    ]
    plan = store.cycle(rows, MORNING)
    assert kinds(plan) == [("A", "upsert"), ("B", "upsert"), ("E", "upsert")]
    assert store.states["B"].checkin is Mark.BASELINE
    assert store.states["C"].checkout is Mark.BASELINE
    assert store.states["E"].roomready_room == "101"
    # R6: the next cycle sends nothing either, for what was true at go-live.
    assert kinds(store.cycle(rows, MORNING + timedelta(minutes=1))) == []


def test_bootstrap_events_sends_events_on_go_live():
    store = MemoryStore()
    plan = store.cycle([reservation("B", Status.CHECKED_IN)], MORNING, rules(bootstrap_events=True))
    assert kinds(plan) == [("B", "upsert"), ("B", "checkin")]


def test_changed_contact_is_upserted_whole_and_unchanged_one_is_not():
    res = reservation("A")
    store = live_store(res)
    assert kinds(store.cycle([res], MORNING)) == []
    plan = store.cycle([replace(res, lastname="Souza")], MORNING)
    assert kinds(plan) == [("A", "upsert")]
    body = plan.actions[0].body
    assert body["lastname"] == "Souza"
    assert body["room"] == "101"
    assert body["firstname"] == "Ana"


def test_check_in_sends_upsert_then_checkin_once():
    res = reservation("A")
    store = live_store(res)
    checked_in = replace(res, status=Status.CHECKED_IN)
    assert kinds(store.cycle([checked_in], MORNING)) == [("A", "upsert"), ("A", "checkin")]
    assert store.cycle([checked_in], MORNING + timedelta(minutes=5)).actions == []


def test_check_in_older_than_max_event_age_is_skipped():
    res = reservation("A")
    store = live_store(res)
    late = replace(res, status=Status.CHECKED_IN, checked_in_at=MORNING - timedelta(hours=7))
    plan = store.cycle([late], MORNING)
    assert kinds(plan) == [("A", "upsert")]
    assert [(s.kind, s.reason) for s in plan.skipped] == [
        (ActionKind.CHECKIN, "older than max_event_age")
    ]
    assert store.states["A"].checkin is Mark.SKIPPED


def test_reserved_straight_to_checked_out_gets_checkout_and_no_checkin():
    res = reservation("A")
    store = live_store(res)
    plan = store.cycle([replace(res, status=Status.CHECKED_OUT)], MORNING)
    assert kinds(plan) == [("A", "checkout")]
    assert plan.actions[0].not_before is None  # 10:00 is outside quiet hours
    assert store.states["A"].checkin is Mark.SKIPPED


def test_checkout_after_checkin_upserts_then_sends_checkout():
    res = reservation("A", Status.CHECKED_IN)
    store = live_store(res)
    plan = store.cycle([replace(res, status=Status.CHECKED_OUT)], MORNING)
    assert kinds(plan) == [("A", "upsert"), ("A", "checkout")]
    assert plan.actions[0].body["checkedInStatus"] == "false"


def test_reversed_check_in_is_upserted_each_time_and_checkin_not_resent():
    res = reservation("A")
    store = live_store(res)
    checked_in = replace(res, status=Status.CHECKED_IN)
    store.cycle([checked_in], MORNING)
    assert kinds(store.cycle([res], MORNING + timedelta(minutes=1))) == [("A", "upsert")]
    again = store.cycle([checked_in], MORNING + timedelta(minutes=2))
    assert kinds(again) == [("A", "upsert")]


@pytest.mark.parametrize(
    ("on_cancel", "expected"),
    [("delete", [("A", "delete")]), ("update", [("A", "upsert")]), ("ignore", [])],
)
def test_cancellation_follows_on_cancel(on_cancel, expected):
    res = reservation("A")
    settings = rules(on_cancel=on_cancel)
    store = MemoryStore()
    store.cycle([res], MORNING - timedelta(hours=1), settings)
    plan = store.cycle([replace(res, status=Status.CANCELLED, lastname="X")], MORNING, settings)
    assert kinds(plan) == expected
    assert plan.cancellations == 1


def test_cancelled_stay_gets_no_events_and_reinstated_one_is_upserted_again():
    res = reservation("A", room_ready=True)
    store = live_store(res, moment=local(ARRIVAL_DAY, 7))
    store.cycle([replace(res, status=Status.CANCELLED)], local(ARRIVAL_DAY, 7, 30))
    # Room ready at 9:00, but the stay is cancelled: no roomready.
    assert store.cycle([], local(ARRIVAL_DAY, 9), full_read=False).actions == []
    plan = store.cycle([res], local(ARRIVAL_DAY, 9, 5))
    assert kinds(plan) == [("A", "upsert"), ("A", "roomready")]


def test_roomready_fires_by_the_clock_on_the_arrival_day_after_roomready_from():
    res = reservation("A", room_ready=True)
    store = live_store(res, moment=local(ARRIVAL_DAY, 6))
    # 07:59: not yet; nothing returned by the PMS (incremental, no changes).
    assert store.cycle([], local(ARRIVAL_DAY, 7, 59), full_read=False).actions == []
    plan = store.cycle([], local(ARRIVAL_DAY, 8, 0), full_read=False)
    assert kinds(plan) == [("A", "roomready")]
    assert plan.actions[0].room == "101"
    assert store.cycle([], local(ARRIVAL_DAY, 8, 30), full_read=False).actions == []


def test_roomready_not_on_other_days_and_not_once_checked_in():
    early = reservation("A", room_ready=True, arrival_day=ARRIVAL_DAY + timedelta(days=1))
    inside = reservation("B", Status.CHECKED_IN, room_ready=True)
    store = live_store(early, inside, moment=local(ARRIVAL_DAY, 6))
    assert store.cycle([early, inside], local(ARRIVAL_DAY, 9)).actions == []


def test_room_move_after_roomready_sends_roomready_for_the_new_room():
    res = reservation("A", room_ready=True)
    store = live_store(res, moment=local(ARRIVAL_DAY, 6))
    store.cycle([res], local(ARRIVAL_DAY, 9))
    moved = replace(res, room="205", room_ready=False)
    assert kinds(store.cycle([moved], local(ARRIVAL_DAY, 10))) == [("A", "upsert")]
    ready = replace(moved, room_ready=True)
    plan = store.cycle([ready], local(ARRIVAL_DAY, 11))
    assert kinds(plan) == [("A", "roomready")]
    assert plan.actions[0].room == "205"


def test_quiet_hours_hold_checkout_until_morning_but_not_checkin():
    res = reservation("A", Status.CHECKED_IN)
    other = reservation("B")
    store = live_store(res, other, moment=local(ARRIVAL_DAY, 22, 30))
    night = local(ARRIVAL_DAY, 23, 15)
    plan = store.cycle(
        [replace(res, status=Status.CHECKED_OUT), replace(other, status=Status.CHECKED_IN)], night
    )
    by_kind = {action.kind: action for action in plan.actions}
    assert by_kind[ActionKind.CHECKOUT].not_before == local(ARRIVAL_DAY + timedelta(days=1), 8)
    assert by_kind[ActionKind.CHECKIN].not_before is None


def test_quiet_until_handles_both_sides_of_midnight_and_disabled():
    settings = rules()
    assert quiet_until(clock_at(local(ARRIVAL_DAY, 3)), settings) == local(ARRIVAL_DAY, 8)
    assert quiet_until(clock_at(local(ARRIVAL_DAY, 12)), settings) is None
    assert quiet_until(clock_at(local(ARRIVAL_DAY, 8)), settings) is None
    daytime = rules(quiet_hours="13:00-14:00")
    assert quiet_until(clock_at(local(ARRIVAL_DAY, 13, 30)), daytime) == local(ARRIVAL_DAY, 14)
    assert quiet_until(clock_at(local(ARRIVAL_DAY, 3)), rules(quiet_hours="off")) is None


def test_stay_without_a_room_waits_for_one_events_included():
    res = reservation("A", room=None)
    store = live_store(res)
    assert store.states["A"].payload_hash is None  # Loop cannot insert without a room
    plan = store.cycle([replace(res, status=Status.CHECKED_IN)], MORNING)
    assert plan.actions == []
    plan = store.cycle(
        [replace(res, status=Status.CHECKED_IN, room="7")], MORNING + timedelta(minutes=1)
    )
    assert kinds(plan) == [("A", "upsert"), ("A", "checkin")]


def test_stays_outside_the_horizon_are_ignored():
    far = reservation("F", arrival_day=ARRIVAL_DAY + timedelta(days=40))
    old = reservation("O", arrival_day=ARRIVAL_DAY - timedelta(days=10))
    store = MemoryStore()
    plan = store.cycle([far, old], MORNING)
    assert plan.actions == []
    assert store.states == {}
    assert in_horizon(far.arrival, far.departure, MORNING, rules(future_days=60))


def test_absent_stay_is_forgotten_by_default_and_cancelled_when_configured():
    res = reservation("A")
    store = live_store(res)
    assert store.cycle([], MORNING, full_read=True).actions == []  # R10 default: nothing sent
    settings = rules(absent_means_cancelled=True)
    plan = store.cycle([], MORNING, settings, full_read=True)
    assert kinds(plan) == [("A", "delete")]
    assert store.states["A"].status is Status.CANCELLED


def test_absent_check_ignores_incremental_reads_and_rows_outside_the_horizon():
    res = reservation("A")
    settings = rules(absent_means_cancelled=True)
    store = live_store(res)
    assert store.cycle([], MORNING, settings, full_read=False).actions == []
    moved_far = replace(
        res, arrival=res.arrival + timedelta(days=60), departure=res.departure + timedelta(days=60)
    )
    assert store.cycle([moved_far], MORNING, settings, full_read=True).actions == []
    assert store.states["A"].status is Status.RESERVED


def test_guard_stops_a_cycle_that_cancels_too_many():
    rows = [reservation(f"R{i}") for i in range(50)]
    store = live_store(*rows)
    cancelled = [replace(r, status=Status.CANCELLED) for r in rows[:11]] + rows[11:]
    with pytest.raises(GuardTripped, match="cancel 11 of 50 live stays"):
        store.cycle(cancelled, MORNING)
    assert all(state.status is Status.RESERVED for state in store.states.values())
    plan = store.cycle(cancelled, MORNING, force=True)
    assert plan.cancellations == 11


def test_guard_allows_few_cancellations_and_stops_an_empty_full_read():
    rows = [reservation(f"R{i}") for i in range(12)]
    store = live_store(*rows)
    few = [replace(r, status=Status.CANCELLED) for r in rows[:10]] + rows[10:]
    assert store.cycle(few, MORNING).cancellations == 10  # not more than 10: allowed
    store = live_store(*rows)
    with pytest.raises(GuardTripped, match="returned no reservations, but 12 stays are live"):
        store.cycle([], MORNING, full_read=True)
    assert store.cycle([], MORNING, full_read=False).actions == []


def test_still_fits_drops_stale_events_at_delivery():
    res = reservation("A", room_ready=True)
    store = live_store(res)
    clock = clock_at(MORNING)
    state = store.states["A"]
    assert still_fits(ActionKind.ROOMREADY, "101", state, clock) is None
    assert (
        still_fits(ActionKind.ROOMREADY, "102", state, clock)
        == "the guest has moved to another room"
    )
    store.cycle([replace(res, status=Status.CHECKED_IN)], MORNING)
    checked_in = store.states["A"]
    assert (
        still_fits(ActionKind.ROOMREADY, "101", checked_in, clock)
        == "the stay is already checked_in"
    )
    assert still_fits(ActionKind.CHECKIN, None, checked_in, clock) is None
    store.cycle([replace(res, status=Status.CHECKED_OUT)], MORNING)
    assert still_fits(ActionKind.CHECKIN, None, store.states["A"], clock) is not None
    store.cycle([replace(res, status=Status.CANCELLED)], MORNING)
    assert (
        still_fits(ActionKind.CHECKOUT, None, store.states["A"], clock)
        == "the stay is now cancelled"
    )
    assert still_fits(ActionKind.UPSERT, None, None, clock) is None


def test_no_roomready_after_a_reversed_check_in():
    res = reservation("A")
    store = live_store(res, moment=local(ARRIVAL_DAY, 6))
    store.cycle([replace(res, status=Status.CHECKED_IN)], local(ARRIVAL_DAY, 7))
    plan = store.cycle([replace(res, room_ready=True)], local(ARRIVAL_DAY, 9))
    assert kinds(plan) == [("A", "upsert")]
    reason = still_fits(ActionKind.ROOMREADY, "101", store.states["A"], clock_at(MORNING))
    assert reason == "the guest has been checked in before"


def test_new_property_gets_its_own_baseline():
    store = live_store(reservation("A", location_id="AMS"))
    plan = store.cycle(
        [
            reservation("A", location_id="AMS"),
            reservation("B", Status.CHECKED_IN, location_id="RTM"),
        ],
        MORNING,
    )
    assert kinds(plan) == [("B", "upsert")]  # no checkin: RTM's go-live
    assert store.locations == {"AMS", "RTM"}


def test_payload_matches_loop_fields():
    res = reservation(
        "A",
        Status.CHECKED_IN,
        email="ana@example.com",
        mobile="31612345678",
        language="pt",
        vip="Gold",
        group_name="Tour",
        custom_fields=(("guestID", "188551"), ("loyalty", "3883882")),
        location_id="529652b0121d5fa206011a79",
    )
    body = res.contact_payload()
    assert body == {
        "foreignId": "A",
        "locationId": "529652b0121d5fa206011a79",
        "firstname": "Ana",
        "lastname": "Silva",
        "email": "ana@example.com",
        "mobile": "31612345678",
        "language": "pt",
        "arrivalTime": "2026-12-03T14:00:00.000Z",
        "departureTime": "2026-12-05T10:00:00.000Z",
        "checkedInStatus": "true",
        "room": "101",
        "vipStatus": "Gold",
        "groupName": "Tour",
        "customFields": [{"guestID": "188551"}, {"loyalty": "3883882"}],
    }


def test_quiet_hours_setting_is_read_as_local_times():
    assert rules(quiet_hours="22:00-08:00").quiet_hours == (time(22), time(8))
