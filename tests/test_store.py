"""The state store, the same cases on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopsync.errors import LockHeldError, StateStoreError
from loopsync.model import Action, ActionKind, Mark, Plan, Status, StayState
from loopsync.store import SCHEMA_VERSION, OutboxState, StateStore, meta_table

NOW = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return request.getfixturevalue("mariadb_url")


@pytest.fixture
def store(store_url: str):
    opened = StateStore.open(store_url)
    yield opened
    opened.close()


def stay(rid: str = "R1", **changes: object) -> StayState:
    values: dict[str, object] = {
        "reservation_id": rid,
        "location_key": "",
        "status": Status.CHECKED_IN,
        "room": "101",
        "room_ready": True,
        "arrival": NOW - timedelta(hours=3),
        "departure": NOW + timedelta(days=2),
        "arrival_date": date(2026, 12, 3),
        "payload_hash": "ab" * 32,
        "checkin": Mark.SENT,
        "checkout": None,
        "roomready_room": "101",
        "first_seen": NOW - timedelta(days=1),
        "last_seen": NOW,
    }
    values.update(changes)
    return StayState(**values)  # type: ignore[arg-type]


def upsert(rid: str, name: str = "Zoë Ñúñez-Øberg") -> Action:
    return Action(rid, ActionKind.UPSERT, {"foreignId": rid, "lastname": name, "room": "101"})


def test_states_round_trip_exactly(store: StateStore):
    states = [
        stay("R1"),
        stay("R2", checkin=None, roomready_room=None, room=None, payload_hash=None),
    ]
    store.commit_plan(Plan(states=states), now=NOW, cursor=None)
    loaded = store.load_states()
    assert loaded == {"R1": states[0], "R2": states[1]}
    assert store.get_state("R2") == states[1]
    assert store.get_state("nope") is None


def test_plan_cursor_and_locations_are_written_together(store: StateStore):
    plan = Plan(
        states=[stay("R1")],
        actions=[
            upsert("R1"),
            Action("R1", ActionKind.CHECKIN, {"event": "checkin", "foreignId": "R1"}),
        ],
    )
    plan.new_locations = {"AMS"}
    assert store.commit_plan(plan, now=NOW, cursor='{"t":"int","v":"42"}') == 2
    assert store.cursor() == '{"t":"int","v":"42"}'
    assert store.known_locations() == {"AMS"}
    pending = store.pending()
    assert [(e.reservation_id, e.kind) for e in pending] == [
        ("R1", ActionKind.UPSERT),
        ("R1", ActionKind.CHECKIN),
    ]
    assert pending[0].body["lastname"] == "Zoë Ñúñez-Øberg"
    assert pending[0].created_at == NOW


def test_a_failing_write_leaves_the_old_state(store: StateStore):
    store.commit_plan(Plan(states=[stay("R1")]), now=NOW, cursor="c1")
    broken = Plan(
        states=[stay("R1", status=Status.CHECKED_OUT)],
        actions=[Action("R1", ActionKind.UPSERT, {"bad": {1, 2}})],
    )
    with pytest.raises(TypeError):
        store.commit_plan(broken, now=NOW, cursor="c2")
    assert store.get_state("R1") == stay("R1")
    assert store.cursor() == "c1"
    assert store.pending() == []


def test_outbox_lifecycle_erases_guest_details_once_finished(store: StateStore):
    store.commit_plan(
        Plan(actions=[upsert("R1"), upsert("R2"), upsert("R3"), upsert("R4")]), now=NOW, cursor=None
    )
    first, second, third, fourth = store.pending()
    store.mark_done(first.id, NOW, 1, '{"status":"Success"}')
    store.mark_dead(second.id, NOW, 3, "HTTP 400 from Loop", '{"status":"Failure"}')
    store.mark_uncertain(third.id, NOW, 1, "no reply")
    store.schedule_retry(fourth.id, 1, NOW + timedelta(seconds=30), "HTTP 503", None)
    assert store.outbox_counts() == {"done": 1, "dead": 1, "uncertain": 1, "pending": 1}
    done = store.entries([OutboxState.DONE])[0]
    assert done.body == {}
    dead = store.entries([OutboxState.DEAD])[0]
    assert dead.body["lastname"] == "Zoë Ñúñez-Øberg"  # kept for a retry until dropped
    assert dead.reply == '{"status":"Failure"}'
    assert store.pending()[0].next_attempt_at == NOW + timedelta(seconds=30)
    assert store.requeue(None, [OutboxState.DEAD]) == 1
    assert [e.reservation_id for e in store.pending()] == ["R2", "R4"]
    assert store.drop([third.id], [OutboxState.UNCERTAIN], NOW) == 1
    assert store.entries([OutboxState.DROPPED])[0].body == {}


def test_purge_forgets_departed_stays_and_old_entries(store: StateStore):
    old = stay("OLD", departure=NOW - timedelta(days=40), arrival=NOW - timedelta(days=42))
    store.commit_plan(
        Plan(states=[old, stay("NEW")], actions=[upsert("OLD")]),
        now=NOW - timedelta(days=35),
        cursor=None,
    )
    entry = store.pending()[0]
    store.mark_done(entry.id, NOW - timedelta(days=35), 1, None)
    assert store.purge(NOW, retention_days=30) == (1, 1)
    assert set(store.load_states()) == {"NEW"}


def test_runs_are_recorded_newest_first(store: StateStore):
    store.record_run("sync", NOW, NOW + timedelta(seconds=2), ok=True, summary={"rows_read": 5})
    store.record_run(
        "reconcile",
        NOW + timedelta(minutes=1),
        NOW + timedelta(minutes=2),
        ok=False,
        summary={},
        error="PMS down",
    )
    runs = store.last_runs()
    assert [(r.kind, r.ok, r.error) for r in runs] == [
        ("reconcile", False, "PMS down"),
        ("sync", True, None),
    ]
    assert runs[1].summary == {"rows_read": 5}


def test_second_holder_of_the_lock_is_refused_with_a_clear_message(store_url: str):
    first = StateStore.open(store_url)
    second = StateStore.open(store_url)
    try:
        with (
            first.lock(),
            pytest.raises(LockHeldError, match=r"another loopsync process .*pid"),
            second.lock(wait=0.3),
        ):
            pass
        with second.lock():  # released: the next one gets it
            pass
    finally:
        first.close()
        second.close()


def test_reopening_migrates_nothing_and_a_newer_schema_is_refused(store_url: str):
    StateStore.open(store_url).close()
    store = StateStore.open(store_url)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(meta_table)
            .where(meta_table.c.key == "schema_version")
            .values(value=str(SCHEMA_VERSION + 1))
        )
    store.close()
    with pytest.raises(StateStoreError, match="newer loopsync"):
        StateStore.open(store_url)


def test_missing_sqlite_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(StateStoreError, match=r"folder .* does not exist"):
        StateStore.open(f"sqlite:///{tmp_path / 'nope' / 'state.db'}")


def test_read_only_open_never_creates_a_store(tmp_path: Path):
    path = tmp_path / "state.db"
    store = StateStore.open(f"sqlite:///{path}", read_only=True)
    assert store.load_states() == {}
    store.close()
    assert not path.exists()


def test_an_event_interrupted_on_the_wire_is_parked_not_resent(store: StateStore):
    event = Action("R1", ActionKind.CHECKIN, {"event": "checkin", "foreignId": "R1"})
    store.commit_plan(Plan(actions=[event, upsert("R2")]), now=NOW, cursor=None)
    first = store.pending()[0]
    store.mark_sending(first.id)
    assert [e.reservation_id for e in store.pending()] == ["R2"]
    parked = store.park_interrupted(NOW)
    assert [(e.id, e.kind) for e in parked] == [(first.id, ActionKind.CHECKIN)]
    uncertain = store.entries([OutboxState.UNCERTAIN])
    assert [e.last_error for e in uncertain] == [
        "loopsync stopped while sending it: it may have reached Loop"
    ]
    assert store.park_interrupted(NOW) == []


def test_a_schema_1_store_is_migrated(store_url: str):
    store = StateStore.open(store_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE loopsync_outbox DROP COLUMN refusals"))
        conn.execute(
            sa.update(meta_table).where(meta_table.c.key == "schema_version").values(value="1")
        )
    store.close()
    store = StateStore.open(store_url)
    store.commit_plan(Plan(actions=[upsert("R1")]), now=NOW, cursor=None)
    assert store.pending()[0].refusals == 0
    with store.engine.connect() as conn:
        version = conn.execute(
            sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        ).scalar()
    assert version == str(SCHEMA_VERSION)
    store.close()


def test_a_state_store_server_that_never_answers_times_out():
    from loopsync.store import _connect_args

    pg = _connect_args(sa.make_url("postgresql+psycopg://u@h/db"))
    assert (pg["connect_timeout"], pg["keepalives"]) == (15, 1)
    assert _connect_args(sa.make_url("mysql+pymysql://u@h/db"))["read_timeout"] == 120
    assert _connect_args(sa.make_url("sqlite:///x.db")) == {}
