"""Property test: random PMS histories through the rules, against a small reference model.

Each example is one stay's life: a go-live cycle, then PMS changes and clock ticks.
The planned events must equal the reference model's, and what a delivery loop
(applying R9 and R11 as the real one does) sends must keep every guarantee:
no event twice, none on go-live, none for a cancelled stay, none older than
`max_event_age`, no roomready once checked in, no quiet kind inside quiet hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import ARRIVAL_DAY, MemoryStore, clock_at, local, reservation, rules

from loopsync.model import CANCELLED_STATUSES, Action, ActionKind, Reservation, Status
from loopsync.rules import quiet_until, still_fits

SETTINGS = rules()
MAX_AGE = SETTINGS.max_event_age


@dataclass(frozen=True)
class Step:
    minutes: int  # how far the clock moves first
    change: bool  # False: the PMS returns nothing new this cycle (incremental)
    status: Status
    room: str
    ready: bool
    event_age: int | None  # minutes between the PMS recording the change and this cycle


steps = st.builds(
    Step,
    minutes=st.integers(1, 240),
    change=st.booleans(),
    status=st.sampled_from(list(Status)),
    room=st.sampled_from(["101", "102"]),
    ready=st.booleans(),
    event_age=st.sampled_from([None, 0, 30, 5 * 60, 7 * 60, 2 * 24 * 60]),
)


@dataclass
class ReferenceModel:
    """What should be planned, written from the rules' text, event by event."""

    checkin_handled: bool = False
    checkout_handled: bool = False
    roomready_room: str | None = None
    expected: list[tuple[str, str | None]] = field(default_factory=list)

    def roomready_due(self, res: Reservation, now: datetime) -> bool:
        local_now = now.astimezone(clock_at(now).zone)
        return (
            res.status is Status.RESERVED
            and not self.checkin_handled  # never after a check-in, even a reversed one
            and res.room_ready
            and res.arrival_date == local_now.date()
            and local_now.time() >= SETTINGS.roomready_from
            and self.roomready_room != res.room
        )

    def cycle(
        self, res: Reservation, now: datetime, *, go_live: bool, changed: bool, age: int | None
    ) -> None:
        fresh = age is None or timedelta(minutes=age) <= MAX_AGE
        if go_live:
            self.checkin_handled = res.status in (Status.CHECKED_IN, Status.CHECKED_OUT)
            self.checkout_handled = res.status is Status.CHECKED_OUT
            if self.roomready_due(res, now):
                self.roomready_room = res.room
            return
        if res.status in CANCELLED_STATUSES:
            return
        if changed and res.status is Status.CHECKED_IN and not self.checkin_handled:
            self.checkin_handled = True
            if fresh:
                self.expected.append(("checkin", None))
        if changed and res.status is Status.CHECKED_OUT:
            if not self.checkout_handled:
                self.checkout_handled = True
                if fresh:
                    self.expected.append(("checkout", None))
            self.checkin_handled = True
        if self.roomready_due(res, now):
            self.roomready_room = res.room
            self.expected.append(("roomready", res.room))


def _stay(step: Step, now: datetime) -> Reservation:
    changed_at = None if step.event_age is None else now - timedelta(minutes=step.event_age)
    return reservation(
        "R1",
        step.status,
        room=step.room,
        room_ready=step.ready,
        nights=4,
        checked_in_at=changed_at if step.status is Status.CHECKED_IN else None,
        checked_out_at=changed_at if step.status is Status.CHECKED_OUT else None,
    )


@settings(max_examples=400, deadline=None)
@given(start=st.integers(0, 36 * 60), first=steps, history=st.lists(steps, max_size=20))
def test_rules_match_the_reference_model_and_keep_every_guarantee(start, first, history):
    store = MemoryStore()
    model = ReferenceModel()
    now = local(ARRIVAL_DAY - timedelta(days=1), 0) + timedelta(minutes=start)
    current = _stay(first, now)
    outbox: list[Action] = []
    delivered: list[tuple[datetime, Action, Status]] = []
    planned: list[tuple[str, str | None]] = []

    for index, step in enumerate([first, *history]):
        go_live = index == 0
        if index:
            now += timedelta(minutes=step.minutes)
        changed = go_live or step.change
        if changed:
            current = _stay(step, now)
        plan = store.cycle([current] if changed else [], now, SETTINGS, full_read=False)
        model.cycle(current, now, go_live=go_live, changed=changed, age=step.event_age)
        events = [a for a in plan.actions if a.kind.is_event]
        if go_live:
            assert events == [], "no event on go-live (R6)"
        if any(a.kind in (ActionKind.CHECKIN, ActionKind.CHECKOUT) for a in events):
            assert step.event_age is None or timedelta(minutes=step.event_age) <= MAX_AGE
        planned += [(a.kind.value, a.room) for a in events]
        outbox += plan.actions
        outbox = _deliver(outbox, store, now, delivered)

    assert planned == model.expected
    _assert_guarantees(delivered)


def _deliver(
    outbox: list[Action],
    store: MemoryStore,
    now: datetime,
    delivered: list[tuple[datetime, Action, Status]],
) -> list[Action]:
    """Delivery as the real one does it: in order, held entries block, R9 drops stale events."""
    for position, action in enumerate(outbox):
        if action.not_before is not None and action.not_before > now:
            return outbox[position:]
        state = store.states.get(action.reservation_id)
        if action.kind.is_event and still_fits(action.kind, action.room, state, clock_at(now)):
            continue
        assert state is not None
        delivered.append((now, action, state.status))
    return []


def _assert_guarantees(delivered: list[tuple[datetime, Action, Status]]) -> None:
    events = [(at, action, status) for at, action, status in delivered if action.kind.is_event]
    once = [(a.kind, a.room) for _, a, _ in events]
    assert len(once) == len(set(once)), "an event was delivered twice"
    checked_in = False
    for at, action, status in events:
        assert status not in CANCELLED_STATUSES, "an event for a cancelled stay"
        if action.kind is ActionKind.ROOMREADY:
            assert not checked_in, "roomready once checked in"
            assert status is Status.RESERVED, "roomready for a stay not reserved"
        if action.kind is ActionKind.CHECKIN:
            checked_in = True
        if action.kind in SETTINGS.quiet_events:
            assert quiet_until(clock_at(at), SETTINGS) is None, "a quiet event inside quiet hours"
