"""The sync rules R1–R12 (DESIGN §5) as pure functions.

Nothing here touches a database, a socket or the clock: `now` is an argument. The
planner takes this cycle's reservations and the stored state and returns a `Plan`
(new states plus the actions to queue); the caller writes both in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loopsync.config import RulesSettings
from loopsync.errors import GuardTripped
from loopsync.model import (
    CANCELLED_STATUSES,
    LIVE_STATUSES,
    Action,
    ActionKind,
    Mark,
    Plan,
    Reservation,
    SkippedEvent,
    Status,
    StayState,
    payload_hash,
)


@dataclass(frozen=True, slots=True)
class Clock:
    """The moment a cycle runs, and the property's zone to read it in."""

    now: datetime
    zone: ZoneInfo

    @property
    def local(self) -> datetime:
        return self.now.astimezone(self.zone)


@dataclass(slots=True)
class _StayPlan:
    state: StayState
    actions: list[Action]
    skipped: list[SkippedEvent]
    cancelled_live: bool = False


def in_horizon(arrival: datetime, departure: datetime, now: datetime, rules: RulesSettings) -> bool:
    """Whether a stay is near enough to today for loopsync to act on it."""
    return departure >= now - timedelta(days=rules.history_days) and arrival <= now + timedelta(
        days=rules.future_days
    )


def quiet_until(clock: Clock, rules: RulesSettings) -> datetime | None:
    """If `clock.now` is inside quiet hours, the moment (UTC) they end; otherwise None."""
    if rules.quiet_hours is None:
        return None
    start, end = rules.quiet_hours
    if start == end:
        return None
    local = clock.local
    moment = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= moment < end, local.date()
    else:
        inside = moment >= start or moment < end
        end_day = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not inside:
        return None
    return _local_moment(end_day, end, clock.zone).astimezone(clock.now.tzinfo)


def _local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)


def roomready_due(
    status: Status,
    room: str | None,
    room_ready: bool,
    arrival_date: date,
    handled_room: str | None,
    checked_in_before: bool,
    clock: Clock,
    rules: RulesSettings,
) -> bool:
    """R4: a reserved stay's room is ready on its arrival day, after `roomready_from`.

    A stay that was checked in once (a reversed check-in, R8) never gets one: the guest
    may already be in the room.
    """
    local = clock.local
    return (
        status is Status.RESERVED
        and not checked_in_before
        and room is not None
        and room_ready
        and arrival_date == local.date()
        and local.time().replace(tzinfo=None) >= rules.roomready_from
        and handled_room != room
    )


def event_action(
    reservation_id: str,
    kind: ActionKind,
    clock: Clock,
    rules: RulesSettings,
    room: str | None = None,
) -> Action:
    """An event for Loop, held until quiet hours end when its kind is a quiet one (R11)."""
    hold = quiet_until(clock, rules) if kind in rules.quiet_events else None
    return Action(
        reservation_id=reservation_id,
        kind=kind,
        body={"event": kind.value, "foreignId": reservation_id},
        not_before=hold,
        room=room,
    )


def _too_old(changed_at: datetime | None, clock: Clock, rules: RulesSettings) -> bool:
    """R7: judged when the change is detected; without a PMS timestamp, loopsync saw it now."""
    return changed_at is not None and clock.now - changed_at > rules.max_event_age


def _fresh_event(
    rid: str,
    kind: ActionKind,
    changed_at: datetime | None,
    clock: Clock,
    rules: RulesSettings,
    events: list[Action],
    skipped: list[SkippedEvent],
) -> Mark:
    """R7: queue the event unless its change is too old; either way it is handled."""
    if _too_old(changed_at, clock, rules):
        skipped.append(SkippedEvent(rid, kind, "older than max_event_age"))
        return Mark.SKIPPED
    events.append(event_action(rid, kind, clock, rules))
    return Mark.SENT


def plan_reservation(
    reservation: Reservation,
    prior: StayState | None,
    clock: Clock,
    rules: RulesSettings,
    *,
    baseline: bool,
) -> _StayPlan:
    """Apply R1–R8 to one reservation the PMS returned."""
    rid = reservation.reservation_id
    status = reservation.status
    payload = reservation.contact_payload()
    new_hash = payload_hash(payload)
    sent_hash = prior.payload_hash if prior else None
    checkin = prior.checkin if prior else None
    checkout = prior.checkout if prior else None
    roomready_room = prior.roomready_room if prior else None
    actions: list[Action] = []
    skipped: list[SkippedEvent] = []
    cancelled_live = False

    if status in CANCELLED_STATUSES:  # R5
        if prior is not None and prior.status in LIVE_STATUSES:
            cancelled_live = True
        if rules.on_cancel == "delete" and sent_hash is not None:
            actions.append(Action(rid, ActionKind.DELETE, {"foreignId": rid}))
            sent_hash = None
        elif rules.on_cancel == "update" and sent_hash is not None and new_hash != sent_hash:
            actions.append(Action(rid, ActionKind.UPSERT, payload))
            sent_hash = new_hash
    else:
        events: list[Action] = []
        marks = (checkin, checkout, roomready_room)
        due_roomready = roomready_due(
            status,
            reservation.room,
            reservation.room_ready,
            reservation.arrival_date,
            roomready_room,
            checkin is not None,
            clock,
            rules,
        )
        if baseline:  # R6: record what would fire now, send nothing
            if status is Status.CHECKED_IN:
                checkin = checkin or Mark.BASELINE
            if status is Status.CHECKED_OUT:
                checkin = checkin or Mark.BASELINE
                checkout = checkout or Mark.BASELINE
            if due_roomready:
                roomready_room = reservation.room
        else:
            if status is Status.CHECKED_IN and checkin is None:  # R2, R7, R8
                checkin = _fresh_event(
                    rid,
                    ActionKind.CHECKIN,
                    reservation.checked_in_at,
                    clock,
                    rules,
                    events,
                    skipped,
                )
            if status is Status.CHECKED_OUT:  # R3
                if checkout is None:
                    checkout = _fresh_event(
                        rid,
                        ActionKind.CHECKOUT,
                        reservation.checked_out_at,
                        clock,
                        rules,
                        events,
                        skipped,
                    )
                if checkin is None:
                    checkin = Mark.SKIPPED
                    skipped.append(
                        SkippedEvent(
                            rid, ActionKind.CHECKIN, "checked out before a check-in was seen"
                        )
                    )
            if due_roomready:  # R4
                roomready_room = reservation.room
                events.append(
                    event_action(rid, ActionKind.ROOMREADY, clock, rules, room=reservation.room)
                )

        wants_contact = status in LIVE_STATUSES or bool(events) or sent_hash is not None
        if new_hash != sent_hash and wants_contact:  # R1
            if sent_hash is None and reservation.room is None:
                # Loop cannot insert a contact without a room: wait for one, events too.
                if not baseline:
                    events = []
                    checkin, checkout, roomready_room = marks
            else:
                actions.append(Action(rid, ActionKind.UPSERT, payload))
                sent_hash = new_hash
        actions.extend(events)

    state = StayState(
        reservation_id=rid,
        location_key=reservation.location_key,
        status=status,
        room=reservation.room,
        room_ready=reservation.room_ready,
        arrival=reservation.arrival,
        departure=reservation.departure,
        arrival_date=reservation.arrival_date,
        payload_hash=sent_hash,
        checkin=checkin,
        checkout=checkout,
        roomready_room=roomready_room,
        first_seen=prior.first_seen if prior else clock.now,
        last_seen=clock.now,
    )
    return _StayPlan(state, actions, skipped, cancelled_live)


def plan_due_roomready(state: StayState, clock: Clock, rules: RulesSettings) -> _StayPlan | None:
    """R4 by the clock alone: a stored stay whose room-ready moment has come."""
    if not state.in_loop or not roomready_due(
        state.status,
        state.room,
        state.room_ready,
        state.arrival_date,
        state.roomready_room,
        state.checkin is not None,
        clock,
        rules,
    ):
        return None
    action = event_action(state.reservation_id, ActionKind.ROOMREADY, clock, rules, room=state.room)
    return _StayPlan(dataclasses.replace(state, roomready_room=state.room), [action], [])


def plan_absent(state: StayState, clock: Clock, rules: RulesSettings) -> _StayPlan | None:
    """R10: a live stay missing from a full read is cancelled only when configured so."""
    if (
        not rules.absent_means_cancelled
        or state.status not in LIVE_STATUSES
        or not in_horizon(state.arrival, state.departure, clock.now, rules)
    ):
        return None
    actions: list[Action] = []
    sent_hash = state.payload_hash
    if rules.on_cancel == "delete" and sent_hash is not None:
        actions.append(
            Action(state.reservation_id, ActionKind.DELETE, {"foreignId": state.reservation_id})
        )
        sent_hash = None
    # With on_cancel = "update" there is no row to build a contact from: nothing to send.
    new_state = dataclasses.replace(
        state, status=Status.CANCELLED, payload_hash=sent_hash, last_seen=clock.now
    )
    return _StayPlan(new_state, actions, [], cancelled_live=True)


def still_fits(
    kind: ActionKind,
    room: str | None,
    state: StayState | None,
    clock: Clock,
) -> str | None:
    """R9 at delivery: None if a queued event still fits the stay, else why it is dropped."""
    if not kind.is_event:
        return None
    if state is None:
        return "the reservation is no longer known"
    if state.status in CANCELLED_STATUSES:
        return f"the stay is now {state.status.value}"
    if kind is ActionKind.CHECKIN and state.status is not Status.CHECKED_IN:
        return f"the guest is no longer checked in ({state.status.value})"
    if kind is ActionKind.CHECKOUT and state.status is not Status.CHECKED_OUT:
        return f"the stay is no longer checked out ({state.status.value})"
    if kind is ActionKind.ROOMREADY:
        if state.status is not Status.RESERVED:
            return f"the stay is already {state.status.value}"
        if state.checkin is not None:
            return "the guest has been checked in before"
        if state.room != room:
            return "the guest has moved to another room"
        if not state.room_ready:
            return "the room is no longer ready"
        if state.arrival_date != clock.local.date():
            return "it is no longer the arrival day"
    return None


def _unchanged(prior: StayState | None, new: StayState) -> bool:
    return prior is not None and dataclasses.replace(prior, last_seen=new.last_seen) == new


def plan_cycle(
    reservations: Iterable[Reservation],
    states: Mapping[str, StayState],
    clock: Clock,
    rules: RulesSettings,
    *,
    known_locations: frozenset[str],
    full_read: bool,
    force: bool = False,
) -> Plan:
    """Plan one cycle: every rule, over this read's reservations and the stored stays.

    Raises `GuardTripped` (R12) instead of returning a plan that would cancel too much.
    """
    plan = Plan()
    latest: dict[str, StayState] = {}
    seen: set[str] = set()
    rows = 0
    cancellations = 0

    def record(result: _StayPlan, prior: StayState | None) -> None:
        nonlocal cancellations
        latest[result.state.reservation_id] = result.state
        plan.actions.extend(result.actions)
        plan.skipped.extend(result.skipped)
        cancellations += result.cancelled_live
        if result.actions or not _unchanged(prior, result.state):
            plan.states.append(result.state)

    for reservation in reservations:
        rows += 1
        rid = reservation.reservation_id
        seen.add(rid)  # even outside the horizon: a returned row is never "absent" (R10)
        if not in_horizon(reservation.arrival, reservation.departure, clock.now, rules):
            continue
        prior = latest.get(rid) or states.get(rid)
        location = reservation.location_key
        baseline = not rules.bootstrap_events and location not in known_locations
        if location not in known_locations:
            plan.new_locations.add(location)
        record(plan_reservation(reservation, prior, clock, rules, baseline=baseline), prior)

    for rid, state in states.items():
        if rid in seen:
            continue
        result = plan_due_roomready(state, clock, rules)
        if result is None and full_read:
            result = plan_absent(state, clock, rules)
        if result is not None:
            record(result, state)

    if not force:
        _guard(states, rows, cancellations, clock, rules, full_read=full_read)
    plan.cancellations = cancellations
    # Keep the order in which the plan was made, but write each stay once, last state wins.
    plan.states = list({state.reservation_id: state for state in plan.states}.values())
    return plan


def live_stays(states: Mapping[str, StayState], clock: Clock, rules: RulesSettings) -> int:
    """How many stored stays are reserved or checked in, inside the horizon."""
    return sum(
        1
        for state in states.values()
        if state.status in LIVE_STATUSES
        and in_horizon(state.arrival, state.departure, clock.now, rules)
    )


def _guard(
    states: Mapping[str, StayState],
    rows: int,
    cancellations: int,
    clock: Clock,
    rules: RulesSettings,
    *,
    full_read: bool,
) -> None:
    live = live_stays(states, clock, rules)
    if full_read and rows == 0 and live > rules.max_cancel_count:
        raise GuardTripped(
            f"the PMS query returned no reservations, but {live} stays are live; nothing was "
            "changed. Check the PMS and pms.query_file; if the PMS really is empty, run "
            "`loopsync --sync-now --force` once"
        )
    if cancellations > rules.max_cancel_count and cancellations > rules.max_cancel_share * live:
        share = 100 * cancellations / max(live, 1)
        raise GuardTripped(
            f"this cycle would cancel {cancellations} of {live} live stays ({share:.0f} %, "
            f"limit {100 * rules.max_cancel_share:.0f} %); nothing was changed. Check the PMS; "
            "if it is right, run `loopsync --sync-now --force` once"
        )
