"""LoopClient against the simulator over real HTTP: every reply and failure classified."""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import TEST_TOKEN

from loopsync.loop_client import LoopClient, LoopReply, Outcome, _RateLimiter, parse_retry_after
from loopsync.model import ActionKind
from loopsync.simulator import LoopSimulator, contact_id_for

# A token that needs URL-encoding, to prove it is encoded on the way and scrubbed in both forms.
ODD_TOKEN = "odd+tok/en=1&x"
TOKENS = (TEST_TOKEN, ODD_TOKEN, "odd%2Btok%2Fen%3D1%26x")


@pytest.fixture(autouse=True)
def _no_token_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for token in TOKENS:
        assert token not in caplog.text


def assert_token_free(reply: LoopReply) -> None:
    for field in dataclasses.fields(reply):
        value = str(getattr(reply, field.name))
        for token in TOKENS:
            assert token not in value, f"{field.name} leaks the token: {value}"


@pytest.fixture
def sim() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as simulator:
        yield simulator


@pytest.fixture
def client(sim: LoopSimulator) -> Iterator[LoopClient]:
    with LoopClient(
        sim.base_url, TEST_TOKEN, connect_timeout=1, read_timeout=2, max_requests_per_second=1000
    ) as loop_client:
        yield loop_client


def guest(foreign_id: str = "R1", **fields: Any) -> dict[str, Any]:
    contact: dict[str, Any] = {
        "foreignId": foreign_id,
        "firstname": "Rick",
        "lastname": "Sanchez",
        "arrivalTime": "2018-02-01T11:00:00.000Z",
        "departureTime": "2018-02-04T13:15:00.000Z",
        "checkedInStatus": "false",
        "room": "4101",
    }
    contact.update(fields)
    return {key: value for key, value in contact.items() if value is not None}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A port that listens but never accepts, its queue full: new connections time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):
            filler = socket.socket()
            filler.settimeout(0.1)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel accepts connections beyond the listen backlog")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# -- Success and Loop's refusals ------------------------------------------------------


def test_insert_without_room_is_permanent_with_loops_message(
    sim: LoopSimulator, client: LoopClient
) -> None:
    reply = client.upsert_contact(guest(room=None))
    assert reply.outcome is Outcome.PERMANENT
    assert reply.http_status == 400
    assert "room is required to insert a contact" in reply.detail
    assert '"status": "Failure"' in reply.body
    assert reply.contact_id is None
    assert sim.contacts == {}
    assert_token_free(reply)


def test_insert_then_update_without_room(sim: LoopSimulator, client: LoopClient) -> None:
    inserted = client.upsert_contact(guest())
    assert inserted.outcome is Outcome.SUCCESS
    assert inserted.ok
    assert inserted.http_status == 200
    assert inserted.contact_id == contact_id_for("R1")
    assert inserted.detail == "HTTP 200 from Loop"
    updated = client.upsert_contact({"foreignId": "R1", "checkedInStatus": "true"})
    assert updated.outcome is Outcome.SUCCESS
    assert updated.contact_id == inserted.contact_id
    assert sim.contacts["R1"]["checkedInStatus"] == "true"
    assert_token_free(updated)


def test_unicode_arrives_byte_exact_as_utf8(sim: LoopSimulator, client: LoopClient) -> None:
    contact = guest(
        firstname="Zoë",
        lastname="Ñúñez-Øberg",
        title="李小龙",
        groupName="🏨 Famille 👨‍👩‍👧",
        vipStatus="مرحبا بالعالم",
    )
    assert client.upsert_contact(contact).outcome is Outcome.SUCCESS
    assert sim.contacts["R1"] == contact
    received = sim.received[-1]
    for text in ("Zoë", "Ñúñez-Øberg", "李小龙", "👨‍👩‍👧", "مرحبا بالعالم"):
        assert text.encode("utf-8") in received.raw_body  # not \\u-escaped
    assert received.content_type == "application/json"
    assert received.user_agent is not None
    assert received.user_agent.startswith("loopsync/")


def test_request_log_line_has_no_guest_data(
    client: LoopClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.upsert_contact(guest(firstname="Zoë"))
    lines = [r.getMessage() for r in caplog.records if r.name == "loopsync.loop_client"]
    assert len(lines) == 1
    assert re.fullmatch(r"POST /api/v1/Contact -> 200 \(success\) in \d+ ms", lines[0])
    assert "Zoë" not in caplog.text


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_auth(sim: LoopSimulator, status: int) -> None:
    sim.fail_next(1, status=status)
    with LoopClient(sim.base_url, TEST_TOKEN) as loop_client:
        reply = loop_client.upsert_contact(guest())
    assert reply.outcome is Outcome.AUTH
    assert reply.http_status == status
    assert_token_free(reply)


def test_wrong_token_is_auth(sim: LoopSimulator) -> None:
    with LoopClient(sim.base_url, "not-the-token") as loop_client:
        reply = loop_client.send_event({"event": "checkin", "foreignId": "R1"})
    assert reply.outcome is Outcome.AUTH
    assert reply.http_status == 401
    assert "auth token was refused" in reply.detail
    assert "not-the-token" not in repr(reply)


def test_a_token_that_needs_encoding_travels_and_stays_hidden() -> None:
    with (
        LoopSimulator(ODD_TOKEN) as sim,
        LoopClient(sim.base_url, ODD_TOKEN, read_timeout=0.2) as loop_client,
    ):
        assert loop_client.upsert_contact(guest()).outcome is Outcome.SUCCESS
        sim.hang_next()
        reply = loop_client.upsert_contact(guest())
    assert reply.outcome is Outcome.UNKNOWN
    assert_token_free(reply)


def test_503_with_retry_after_is_transient(sim: LoopSimulator, client: LoopClient) -> None:
    sim.fail_next(1, status=503, retry_after=7)
    reply = client.upsert_contact(guest())
    assert reply.outcome is Outcome.TRANSIENT
    assert reply.http_status == 503
    assert reply.retry_after == 7
    assert reply.detail == "HTTP 503 from Loop"
    assert_token_free(reply)


@pytest.mark.parametrize("status", [429, 500, 502, 504, 599])
def test_server_trouble_and_throttling_are_transient(
    sim: LoopSimulator, client: LoopClient, status: int
) -> None:
    sim.fail_next(1, status=status)
    reply = client.upsert_contact(guest())
    assert reply.outcome is Outcome.TRANSIENT
    assert reply.retry_after is None


def test_500_then_ok(sim: LoopSimulator, client: LoopClient) -> None:
    sim.fail_next(1, status=500)
    assert client.upsert_contact(guest()).outcome is Outcome.TRANSIENT
    assert client.upsert_contact(guest()).outcome is Outcome.SUCCESS
    assert [r.http_status for r in sim.received] == [500, 200]


def test_2xx_with_failure_status_is_permanent_and_the_reply_is_kept(
    sim: LoopSimulator, client: LoopClient
) -> None:
    sim.reply_next(1, body={"status": "Failure", "message": "location 12 is unknown"})
    reply = client.upsert_contact(guest())
    assert reply.outcome is Outcome.PERMANENT
    assert reply.http_status == 200
    assert reply.body == '{"status": "Failure", "message": "location 12 is unknown"}'
    assert reply.detail == "HTTP 200 from Loop with status 'Failure': location 12 is unknown"


@pytest.mark.parametrize("body", ["<html>maintenance</html>", [1, 2], {"id": "x"}])
def test_2xx_without_a_success_object_is_permanent(
    sim: LoopSimulator, client: LoopClient, body: Any
) -> None:
    sim.reply_next(1, status=200, body=body)
    reply = client.upsert_contact(guest())
    assert reply.outcome is Outcome.PERMANENT
    assert reply.http_status == 200


def test_long_reply_bodies_are_truncated(sim: LoopSimulator, client: LoopClient) -> None:
    sim.reply_next(1, status=400, body={"status": "Failure", "message": "x" * 5000})
    reply = client.upsert_contact(guest())
    assert reply.outcome is Outcome.PERMANENT
    assert len(reply.body) == 2000
    assert len(reply.detail) < 300


def test_a_reply_that_echoes_the_token_is_scrubbed(sim: LoopSimulator, client: LoopClient) -> None:
    sim.reply_next(1, status=400, body={"status": "Failure", "message": f"bad {TEST_TOKEN}"})
    reply = client.upsert_contact(guest())
    assert reply.body == '{"status": "Failure", "message": "bad ***"}'
    assert_token_free(reply)


def test_redirects_are_not_followed(sim: LoopSimulator, client: LoopClient) -> None:
    sim.fail_next(1, status=302, body="moved")
    reply = client.upsert_contact(guest())
    assert reply.outcome is Outcome.PERMANENT
    assert reply.http_status == 302
    assert len(sim.received) == 1


# -- no reply -------------------------------------------------------------------------


def test_hang_is_unknown_and_the_request_did_arrive(sim: LoopSimulator) -> None:
    sim.hang_next()
    with LoopClient(sim.base_url, TEST_TOKEN, read_timeout=0.3) as loop_client:
        reply = loop_client.send_event({"event": "checkin", "foreignId": "R1"})
    assert reply.outcome is Outcome.UNKNOWN
    assert reply.http_status is None
    assert reply.detail == "no reply within 0.3 s (read timeout)"
    assert sim.wait_for_received(1)
    arrived = sim.received
    assert [(r.path, r.fault, r.processed) for r in arrived] == [
        ("/api/v1/ContactEvent", "hang", False)
    ]
    assert arrived[0].body == {"event": "checkin", "foreignId": "R1"}
    assert_token_free(reply)


def test_drop_after_processing_is_unknown_though_the_contact_is_stored(
    sim: LoopSimulator, client: LoopClient
) -> None:
    sim.drop_after_processing_next()
    reply = client.upsert_contact(guest())
    assert reply.outcome is Outcome.UNKNOWN
    assert reply.http_status is None
    assert "RemoteDisconnected" in reply.detail
    assert "R1" in sim.contacts
    assert_token_free(reply)
    assert client.upsert_contact(guest()).outcome is Outcome.SUCCESS  # the pool recovers


def test_closed_port_is_transient() -> None:
    with LoopClient(f"http://127.0.0.1:{closed_port()}", TEST_TOKEN) as loop_client:
        reply = loop_client.upsert_contact(guest())
    assert reply.outcome is Outcome.TRANSIENT
    assert reply.http_status is None
    assert reply.detail == "could not connect to Loop: Connection refused"
    assert_token_free(reply)


def test_connect_timeout_is_transient(full_backlog_port: int) -> None:
    base_url = f"http://127.0.0.1:{full_backlog_port}"
    with LoopClient(base_url, TEST_TOKEN, connect_timeout=0.2) as loop_client:
        reply = loop_client.send_event({"event": "checkin", "foreignId": "R1"})
    assert reply.outcome is Outcome.TRANSIENT
    assert reply.detail == "could not connect to Loop within 0.2 s (connect timeout)"
    assert_token_free(reply)


# -- delete, events, dispatch, token check ----------------------------------------------


def test_delete_of_an_unknown_contact_counts_as_done(
    sim: LoopSimulator, client: LoopClient
) -> None:
    reply = client.delete_contact({"foreignId": "nobody"})
    assert reply.outcome is Outcome.SUCCESS
    assert reply.http_status == 404
    client.upsert_contact(guest())
    assert client.delete_contact({"foreignId": "R1"}).outcome is Outcome.SUCCESS
    assert sim.deleted == ["R1"]


def test_event_for_an_unknown_contact_is_permanent(client: LoopClient) -> None:
    reply = client.send_event({"event": "checkin", "foreignId": "nobody"})
    assert reply.outcome is Outcome.PERMANENT
    assert reply.http_status == 404
    assert reply.detail == "HTTP 404 from Loop: contact not found"


def test_send_dispatches_by_action_kind(sim: LoopSimulator, client: LoopClient) -> None:
    assert client.send(ActionKind.UPSERT, guest()).ok
    for kind in (ActionKind.CHECKIN, ActionKind.ROOMREADY, ActionKind.CHECKOUT):
        assert client.send(kind, {"event": kind.value, "foreignId": "R1"}).ok
    assert client.send(ActionKind.DELETE, {"foreignId": "R1"}).ok
    assert sim.event_kinds() == [("R1", "checkin"), ("R1", "roomready"), ("R1", "checkout")]
    assert sim.deleted == ["R1"]
    assert [(r.method, r.path) for r in sim.received] == [
        ("POST", "/api/v1/Contact"),
        ("POST", "/api/v1/ContactEvent"),
        ("POST", "/api/v1/ContactEvent"),
        ("POST", "/api/v1/ContactEvent"),
        ("DELETE", "/api/v1/Contact"),
    ]


def test_send_refuses_an_event_body_of_another_kind(client: LoopClient) -> None:
    with pytest.raises(ValueError, match="checkin action carries event 'checkout'"):
        client.send(ActionKind.CHECKIN, {"event": "checkout", "foreignId": "R1"})


def test_check_token_changes_nothing(sim: LoopSimulator, client: LoopClient) -> None:
    client.upsert_contact(guest())
    reply = client.check_token()
    assert reply.outcome is Outcome.SUCCESS
    assert reply.detail == "token accepted (HTTP 404 to a probe delete)"
    assert sim.contacts.keys() == {"R1"}
    assert sim.deleted == []
    probe = sim.received[-1]
    assert probe.method == "DELETE"
    assert probe.body["foreignId"].startswith("loopsync-token-check-")


def test_check_token_with_a_bad_token_is_auth(sim: LoopSimulator) -> None:
    with LoopClient(sim.base_url, "wrong") as loop_client:
        assert loop_client.check_token().outcome is Outcome.AUTH


def test_check_token_accepts_a_validation_refusal(sim: LoopSimulator, client: LoopClient) -> None:
    sim.reply_next(1, status=400, body={"status": "Failure", "message": "bad request"})
    assert client.check_token().outcome is Outcome.SUCCESS


def test_check_token_when_loop_is_down_is_transient() -> None:
    with LoopClient(f"http://127.0.0.1:{closed_port()}", TEST_TOKEN) as loop_client:
        assert loop_client.check_token().outcome is Outcome.TRANSIENT


def test_concurrent_calls_share_the_pool(sim: LoopSimulator, client: LoopClient) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda n: client.upsert_contact(guest(f"R{n}")), range(24)))
    assert all(reply.ok for reply in replies)
    assert len(sim.contacts) == 24


# -- Retry-After ---------------------------------------------------------------------


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 01 Mar 2026 11:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


# -- rate ceiling --------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when slept on, recording every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def test_rate_ceiling_spaces_request_starts(sim: LoopSimulator) -> None:
    fake = FakeTime()
    with LoopClient(
        sim.base_url, TEST_TOKEN, max_requests_per_second=4, clock=fake.clock, sleep=fake.sleep
    ) as loop_client:
        for number in range(3):
            assert loop_client.upsert_contact(guest(f"R{number}")).ok
        assert fake.sleeps == [0.25, 0.25]
        fake.now += 10  # idle for a while: no waiting, and no burst credit either
        loop_client.upsert_contact(guest("R3"))
        loop_client.upsert_contact(guest("R4"))
    assert fake.sleeps == [0.25, 0.25, 0.25]
    assert len(sim.contacts) == 5


def test_rate_ceiling_reserves_slots_across_threads() -> None:
    sleeps: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            sleeps.append(seconds)

    limiter = _RateLimiter(10, clock=lambda: 50.0, sleep=record)
    threads = [threading.Thread(target=limiter.wait) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sleeps) == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_rate_ceiling_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoopClient("http://127.0.0.1:1", TEST_TOKEN, max_requests_per_second=0)
