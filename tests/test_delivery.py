"""Delivery over real HTTP to the simulator: order, retries, dead letter, uncertain, R9, R11."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import TEST_TOKEN

from loopsync.config import LoopSettings, RulesSettings
from loopsync.delivery import Deliverer, backoff_delay
from loopsync.loop_client import LoopClient
from loopsync.model import Action, ActionKind, Mark, Plan, Status, StayState
from loopsync.simulator import LoopSimulator
from loopsync.store import OutboxState, StateStore

ZONE = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class FakeClock:
    """`now` and `sleep` for delivery: sleeping moves time, nothing really waits."""

    def __init__(self) -> None:
        self.moment = START
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def simulator() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


def make_deliverer(
    store: StateStore,
    simulator: LoopSimulator,
    clock: FakeClock,
    token: str = TEST_TOKEN,
    **settings: object,
) -> Deliverer:
    loop = LoopSettings(base_url=simulator.base_url, **settings)  # type: ignore[arg-type]
    client = LoopClient(simulator.base_url, token, read_timeout=0.5, max_requests_per_second=1000)
    return Deliverer(
        store, client, loop, ZONE, now=clock.now, sleep=clock.sleep, rng=random.Random(7)
    )


def stay(rid: str, status: Status = Status.CHECKED_IN, room: str = "101") -> StayState:
    return StayState(
        reservation_id=rid,
        location_key="",
        status=status,
        room=room,
        room_ready=True,
        arrival=START,
        departure=START + timedelta(days=2),
        arrival_date=date(2026, 12, 3),
        payload_hash="x",
        checkin=Mark.SENT,
        checkout=None,
        roomready_room=None,
        first_seen=START,
        last_seen=START,
    )


def contact(rid: str, name: str = "Zoë Ñúñez-Øberg") -> Action:
    return Action(rid, ActionKind.UPSERT, {"foreignId": rid, "lastname": name, "room": "101"})


def event(rid: str, kind: ActionKind, **extra: object) -> Action:
    return Action(rid, kind, {"event": kind.value, "foreignId": rid}, **extra)  # type: ignore[arg-type]


def queue(store: StateStore, *actions: Action, states: list[StayState] | None = None) -> None:
    store.commit_plan(Plan(states=states or [], actions=list(actions)), now=START, cursor=None)


def test_upsert_then_event_in_order_and_guest_details_erased(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"), event("R1", ActionKind.CHECKIN), states=[stay("R1")])
    report = make_deliverer(store, simulator, clock).deliver_pending()
    assert report.delivered == {"upsert": 1, "checkin": 1}
    assert report.failures == 0
    assert [(r.method, r.path) for r in simulator.received] == [
        ("POST", "/api/v1/Contact"),
        ("POST", "/api/v1/ContactEvent"),
    ]
    assert simulator.contacts["R1"]["lastname"] == "Zoë Ñúñez-Øberg"
    assert store.outbox_counts() == {"done": 2}
    assert all(entry.body == {} for entry in store.entries())


def test_progress_is_reported_after_every_entry(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"), contact("R2"), event("R1", ActionKind.CHECKIN), states=[stay("R1")])
    ticks: list[datetime] = []
    loop = LoopSettings(base_url=simulator.base_url)
    client = LoopClient(simulator.base_url, TEST_TOKEN, max_requests_per_second=1000)
    deliverer = Deliverer(
        store,
        client,
        loop,
        ZONE,
        now=clock.now,
        sleep=clock.sleep,
        progress=lambda: ticks.append(clock.now()),
    )
    assert deliverer.deliver_pending().delivered == {"upsert": 2, "checkin": 1}
    assert len(ticks) == 3


def test_server_error_then_success_is_delivered_once(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"), event("R1", ActionKind.CHECKIN), states=[stay("R1")])
    simulator.fail_next(1, status=500, path="ContactEvent")
    report = make_deliverer(store, simulator, clock).deliver_pending(timedelta(seconds=60))
    assert report.delivered == {"upsert": 1, "checkin": 1}
    assert simulator.event_kinds() == [("R1", "checkin")]
    assert len(clock.slept) == 1
    assert 0.5 <= clock.slept[0] <= 1.0  # retry_base 1 s, jittered


def test_retry_after_is_honoured_and_capped(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"))
    simulator.fail_next(1, status=503, retry_after=7)
    make_deliverer(store, simulator, clock).deliver_pending(timedelta(seconds=60))
    assert clock.slept == [7.0]
    simulator.fail_next(1, status=429, retry_after=3600)
    queue(store, contact("R2"))
    report = make_deliverer(store, simulator, clock, retry_after_cap="30s").deliver_pending(
        timedelta(seconds=60)
    )
    assert clock.slept[-1] == 30.0
    assert report.delivered == {"upsert": 1}


def test_without_budget_a_transient_failure_waits_for_the_next_run(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"), event("R1", ActionKind.CHECKIN), states=[stay("R1")])
    simulator.fail_next(1, status=502)
    report = make_deliverer(store, simulator, clock).deliver_pending()
    assert report.retrying == 1
    assert report.failures == 1
    assert len(simulator.received) == 1  # the event waits behind its upsert
    pending = store.pending()
    assert [(e.kind, e.attempts) for e in pending] == [
        (ActionKind.UPSERT, 1),
        (ActionKind.CHECKIN, 0),
    ]
    clock.moment += timedelta(minutes=1)
    report = make_deliverer(store, simulator, clock).deliver_pending()
    assert report.delivered == {"upsert": 1, "checkin": 1}


def test_refused_token_stops_everything_and_keeps_the_queue(store, simulator, caplog):
    clock = FakeClock()
    queue(store, contact("R1"), contact("R2"))
    report = make_deliverer(store, simulator, clock, token="wrong-token").deliver_pending()
    assert report.auth_error is not None
    assert report.auth_error.startswith("Loop refused the auth token (")
    assert len(simulator.received) == 1
    assert [e.attempts for e in store.pending()] == [0, 0]
    assert "wrong-token" not in caplog.text


def test_refused_request_goes_to_dead_letter_and_blocks_no_one_else(store, simulator):
    clock = FakeClock()
    queue(
        store,
        Action("R1", ActionKind.UPSERT, {"foreignId": "R1", "lastname": "No Room"}),
        contact("R2"),
    )
    report = make_deliverer(store, simulator, clock).deliver_pending(timedelta(seconds=60))
    assert report.dead == 1
    assert report.delivered == {"upsert": 1}
    dead = store.entries([OutboxState.DEAD])[0]
    assert dead.reservation_id == "R1"
    assert dead.attempts == 3
    assert "room is required" in (dead.reply or "")
    assert list(simulator.contacts) == ["R2"]


def test_failure_status_in_a_2xx_reply_is_a_failure(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"))
    simulator.reply_next(3, status=200, body={"status": "Failure", "message": "locationId unknown"})
    report = make_deliverer(store, simulator, clock).deliver_pending(timedelta(seconds=60))
    assert report.dead == 1
    assert "locationId unknown" in (store.entries([OutboxState.DEAD])[0].reply or "")


def test_event_without_reply_is_parked_uncertain_and_not_resent(store, simulator):
    clock = FakeClock()
    queue(store, event("R1", ActionKind.CHECKIN), contact("R1", "After"), states=[stay("R1")])
    simulator.hang_next(1, path="ContactEvent")
    report = make_deliverer(store, simulator, clock).deliver_pending(timedelta(seconds=60))
    assert report.uncertain == 1
    assert report.delivered == {"upsert": 1}  # the next action of that guest still went
    assert store.entries([OutboxState.UNCERTAIN])[0].kind is ActionKind.CHECKIN
    assert len([r for r in simulator.received if r.path.endswith("ContactEvent")]) == 1


def test_connection_cut_after_processing_an_event_is_uncertain_unless_configured(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"), event("R1", ActionKind.CHECKIN), states=[stay("R1")])
    simulator.drop_after_processing_next(1, path="ContactEvent")
    report = make_deliverer(store, simulator, clock).deliver_pending()
    assert report.uncertain == 1
    assert simulator.event_kinds() == [("R1", "checkin")]  # it did reach Loop

    queue(store, event("R1", ActionKind.CHECKIN))
    simulator.drop_after_processing_next(1, path="ContactEvent")
    report = make_deliverer(store, simulator, clock, retry_uncertain_events=True).deliver_pending(
        timedelta(seconds=60)
    )
    assert report.delivered == {"checkin": 1}
    assert simulator.event_kinds() == [("R1", "checkin")] * 3  # resent, as configured


def test_upsert_without_reply_is_retried(store, simulator):
    clock = FakeClock()
    queue(store, contact("R1"))
    simulator.hang_next(1)
    report = make_deliverer(store, simulator, clock).deliver_pending(timedelta(seconds=60))
    assert report.delivered == {"upsert": 1}
    assert report.uncertain == 0


def test_stale_event_is_dropped_at_delivery(store, simulator):
    clock = FakeClock()
    queue(
        store,
        event("R1", ActionKind.ROOMREADY, room="101"),
        event("R2", ActionKind.CHECKIN),
        states=[stay("R1", Status.CHECKED_IN), stay("R2", Status.CANCELLED)],
    )
    report = make_deliverer(store, simulator, clock).deliver_pending()
    assert report.dropped == 2
    assert simulator.received == []
    reasons = sorted(entry.last_error or "" for entry in store.entries([OutboxState.DROPPED]))
    assert reasons == ["the stay is already checked_in", "the stay is now cancelled"]


def test_quiet_hours_hold_an_event_and_everything_after_it(store, simulator):
    clock = FakeClock()
    morning = START + timedelta(hours=8)
    queue(
        store,
        contact("R1"),
        event("R1", ActionKind.CHECKOUT, not_before=morning),
        contact("R1", "Changed Later"),
        contact("R2"),
        states=[stay("R1", Status.CHECKED_OUT)],
    )
    report = make_deliverer(store, simulator, clock).deliver_pending(timedelta(seconds=60))
    assert report.held == 1
    assert report.failures == 0
    assert report.delivered == {"upsert": 2}
    assert simulator.contacts["R1"]["lastname"] == "Zoë Ñúñez-Øberg"  # the change waits too
    clock.moment = morning
    report = make_deliverer(store, simulator, clock).deliver_pending()
    assert report.delivered == {"checkout": 1, "upsert": 1}


def test_backoff_grows_jittered_and_stays_under_the_ceiling():
    settings = LoopSettings(retry_base="1s", retry_max="60s")
    rng = random.Random(1)
    delays = [backoff_delay(attempt, settings, rng, None) for attempt in range(1, 12)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(2 ** (attempt - 1), 60)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay(1, settings, rng, 120.0) == 120.0


def test_a_hold_follows_the_quiet_hours_of_the_current_config(store, simulator):
    clock = FakeClock()  # 10:00 UTC: 11:00 in Amsterdam, outside the default quiet hours
    queue(
        store,
        contact("R1"),
        event("R1", ActionKind.CHECKOUT, not_before=START + timedelta(hours=2)),
        states=[stay("R1", Status.CHECKED_OUT)],
    )
    loop = LoopSettings(base_url=simulator.base_url)
    client = LoopClient(simulator.base_url, TEST_TOKEN, max_requests_per_second=1000)

    def deliverer(**quiet: object) -> Deliverer:
        rules = RulesSettings(**quiet)  # type: ignore[arg-type]
        return Deliverer(store, client, loop, ZONE, now=clock.now, sleep=clock.sleep, rules=rules)

    # Quiet hours were 10:00-13:00 when it was planned; still so: it waits.
    assert deliverer(quiet_hours="10:00-13:00").deliver_pending().held == 1
    # The config now says 22:00-08:00: 11:00 is not quiet, so it goes.
    assert deliverer().deliver_pending().delivered == {"checkout": 1}
