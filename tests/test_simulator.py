"""The Loop simulator over real HTTP: Loop's rules, recording, fault injection, shutdown."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import TEST_TOKEN

from loopsync.redact import protect_library_loggers
from loopsync.simulator import LoopSimulator, contact_id_for

CONTACT = "/api/v1/Contact"
EVENT = "/api/v1/ContactEvent"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_token_in_urllib3_logs() -> None:
    # These tests call the simulator with plain requests, whose URLs urllib3 logs.
    protect_library_loggers()


@pytest.fixture
def sim() -> Iterator[LoopSimulator]:
    with LoopSimulator(TEST_TOKEN) as simulator:
        yield simulator


def call(
    sim: LoopSimulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = TEST_TOKEN,
    raw: bytes | None = None,
    timeout: float = 5,
) -> requests.Response:
    """One request with a fresh connection, as a client other than LoopClient would."""
    params = {"authToken": token} if token is not None else {}
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    return requests.request(
        method,
        sim.base_url + path,
        params=params,
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )


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


# -- Contact ------------------------------------------------------------------------


def test_insert_needs_a_room(sim: LoopSimulator) -> None:
    reply = call(sim, "POST", CONTACT, guest(room=None))
    assert reply.status_code == 400
    assert reply.json() == {"status": "Failure", "message": "room is required to insert a contact"}
    assert sim.contacts == {}
    assert sim.received[-1].http_status == 400
    assert sim.received[-1].processed


def test_insert_then_update_without_room_merges(sim: LoopSimulator) -> None:
    first = call(sim, "POST", CONTACT, guest())
    assert first.status_code == 200
    assert first.json() == {"status": "Success", "id": contact_id_for("R1")}
    assert re.fullmatch(r"[0-9a-f]{24}", first.json()["id"])

    second = call(sim, "POST", CONTACT, {"foreignId": "R1", "checkedInStatus": "true"})
    assert second.json() == {"status": "Success", "id": first.json()["id"]}
    assert sim.contacts["R1"]["checkedInStatus"] == "true"
    assert sim.contacts["R1"]["room"] == "4101"


def test_contact_values_arrive_exactly_as_sent(sim: LoopSimulator) -> None:
    contact = guest(
        firstname="Zoë",
        lastname="Ñúñez-Øberg 李小龙 🛎️",
        groupName="مرحبا بالعالم",
        customFields=[{"guestID": "188551"}, {"loyalty": "3883882"}],
    )
    call(sim, "POST", CONTACT, contact)
    assert sim.contacts["R1"] == contact
    assert "Zoë".encode() in sim.received[-1].raw_body


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"firstName": "Rick"}, "unknown field 'firstName' in contact"),
        ({"checkedInStatus": "TRUE"}, 'checkedInStatus must be "true" or "false"'),
        ({"checkedInStatus": True}, "checkedInStatus must be a string"),
        ({"mobile": "+1 613 555 1234"}, "mobile must be digits only"),
        ({"room": 4101}, "room must be a string"),
        ({"language": "eng"}, "language must be an ISO 639-1"),
        ({"arrivalTime": "tomorrow"}, "arrivalTime must be an ISO 8601"),
        ({"customFields": {"guestID": "1"}}, "customFields must be a list"),
        ({"customFields": [{"a": "1", "b": "2"}]}, "customFields must be a list"),
        ({"foreignId": ""}, "foreignId is required"),
    ],
)
def test_contact_fields_are_checked(
    sim: LoopSimulator, change: dict[str, Any], message: str
) -> None:
    reply = call(sim, "POST", CONTACT, guest(**change))
    assert reply.status_code == 400
    assert reply.json()["status"] == "Failure"
    assert reply.json()["message"].startswith(message)
    assert sim.contacts == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "request body is not valid UTF-8 JSON"),
        (b"\xff\xfe", "request body is not valid UTF-8 JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
        (b"", "request body is not valid UTF-8 JSON"),
    ],
)
def test_bodies_must_be_json_objects(sim: LoopSimulator, raw: bytes, message: str) -> None:
    reply = call(sim, "POST", CONTACT, raw=raw)
    assert reply.status_code == 400
    assert reply.json() == {"status": "Failure", "message": message}


@pytest.mark.parametrize("token", [None, "", "wrong", TEST_TOKEN + "x"])
def test_token_is_checked_and_never_recorded(sim: LoopSimulator, token: str | None) -> None:
    reply = call(sim, "POST", CONTACT, guest(), token=token)
    assert reply.status_code == 401
    assert reply.json() == {"status": "Failure", "message": "invalid authToken"}
    call(sim, "POST", CONTACT, guest())
    assert [r.path for r in sim.received] == [CONTACT, CONTACT]
    assert TEST_TOKEN not in repr(sim.received)
    assert list(sim.contacts) == ["R1"]


def test_a_chunked_body_is_refused(sim: LoopSimulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    try:
        connection.request(
            "POST",
            f"{CONTACT}?authToken={TEST_TOKEN}",
            body=iter([b"{}"]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        assert connection.getresponse().status == 411
    finally:
        connection.close()
    assert sim.received == []


def test_unknown_endpoint_and_method(sim: LoopSimulator) -> None:
    assert call(sim, "POST", "/api/v1/Contacts", guest()).status_code == 404
    reply = call(sim, "PUT", CONTACT, guest())
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST, DELETE"
    assert call(sim, "DELETE", EVENT, {"foreignId": "R1"}).status_code == 405


def test_delete_by_foreign_id_or_id(sim: LoopSimulator) -> None:
    call(sim, "POST", CONTACT, guest("R1"))
    call(sim, "POST", CONTACT, guest("R2"))
    assert call(sim, "DELETE", CONTACT, {"foreignId": "R1"}).json()["status"] == "Success"
    assert call(sim, "DELETE", CONTACT, {"id": contact_id_for("R2")}).status_code == 200
    assert sim.contacts == {}
    assert sim.deleted == ["R1", "R2"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"foreignId": "nobody"}, 404),
        ({"id": "0" * 24}, 404),
        ({}, 400),
        ({"foreignId": "R1", "id": contact_id_for("R1")}, 400),
        ({"foreignID": "R1"}, 400),
    ],
)
def test_delete_refusals(sim: LoopSimulator, body: dict[str, Any], status: int) -> None:
    call(sim, "POST", CONTACT, guest("R1"))
    reply = call(sim, "DELETE", CONTACT, body)
    assert reply.status_code == status
    assert reply.json()["status"] == "Failure"
    assert "R1" in sim.contacts
    if status == 404:
        assert reply.json()["message"] == "contact not found"


# -- ContactEvent -------------------------------------------------------------------


def test_events_by_foreign_id_by_contact_id_and_inline(sim: LoopSimulator) -> None:
    call(sim, "POST", CONTACT, guest("R1"))
    assert call(sim, "POST", EVENT, {"event": "checkin", "foreignId": "R1"}).json() == {
        "status": "Success"
    }
    call(sim, "POST", EVENT, {"event": "checkout", "contactId": contact_id_for("R1")})
    reply = call(sim, "POST", EVENT, {"event": "roomready", "contact": guest("R2", room="12")})
    assert reply.status_code == 200
    assert sim.contacts["R2"]["room"] == "12"
    assert sim.event_kinds() == [("R1", "checkin"), ("R1", "checkout"), ("R2", "roomready")]
    assert sim.events_for("R2") == [
        {"event": "roomready", "foreignId": "R2", "contactId": contact_id_for("R2")}
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"event": "checkin", "foreignId": "nobody"}, 404, "contact not found"),
        ({"event": "checkin", "contactId": "f" * 24}, 404, "contact not found"),
        ({"Event": "checkin", "foreignId": "R1"}, 400, "unknown field 'Event'"),
        ({"event": "CheckIn", "foreignId": "R1"}, 400, "event must be one of"),
        ({"foreignId": "R1"}, 400, "event must be one of"),
        ({"event": "checkin"}, 400, "give exactly one of"),
        ({"event": "checkin", "foreignId": "R1", "contactId": "x"}, 400, "give exactly one"),
        ({"event": "checkin", "contact": {"foreignId": "R9"}}, 400, "room is required"),
        ({"event": "checkin", "contact": "R1"}, 400, "contact must be a JSON object"),
        ({"event": "checkin", "foreignId": "R1", "room": "1"}, 400, "unknown field 'room'"),
    ],
)
def test_event_refusals(
    sim: LoopSimulator, body: dict[str, Any], status: int, message: str
) -> None:
    call(sim, "POST", CONTACT, guest("R1"))
    reply = call(sim, "POST", EVENT, body)
    assert reply.status_code == status
    assert reply.json()["message"].startswith(message)
    assert sim.events == []
    assert list(sim.contacts) == ["R1"]


# -- state, clear ---------------------------------------------------------------------


def test_state_endpoint_needs_no_token_and_is_not_recorded(sim: LoopSimulator) -> None:
    call(sim, "POST", CONTACT, guest("R1", firstname="Zoë"))
    call(sim, "POST", EVENT, {"event": "checkin", "foreignId": "R1"})
    state = requests.get(sim.base_url + "/_simulator/state", timeout=5).json()
    assert state["contacts"]["R1"]["firstname"] == "Zoë"
    assert state["events"] == sim.events
    assert state["deleted"] == []
    assert len(sim.received) == 2
    assert requests.post(sim.base_url + "/_simulator/state", timeout=5).status_code == 405


def test_clear_forgets_everything_but_keeps_counting(sim: LoopSimulator) -> None:
    call(sim, "POST", CONTACT, guest("R1"))
    sim.fail_next(3)
    sim.clear()
    assert (sim.received, sim.contacts, sim.events, sim.deleted) == ([], {}, [], [])
    assert call(sim, "POST", CONTACT, guest("R1")).status_code == 200
    assert sim.received[0].index == 1


# -- faults ---------------------------------------------------------------------------


def test_fail_next_replies_without_processing(sim: LoopSimulator) -> None:
    sim.fail_next(2, status=503, retry_after=7)
    for _ in range(2):
        reply = call(sim, "POST", CONTACT, guest())
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "7"
        assert reply.json() == {"status": "Failure", "message": "simulated HTTP 503"}
    assert sim.contacts == {}
    assert call(sim, "POST", CONTACT, guest()).status_code == 200
    assert [(r.http_status, r.processed, r.fault) for r in sim.received] == [
        (503, False, "fail"),
        (503, False, "fail"),
        (200, True, None),
    ]
    assert [r.index for r in sim.received] == [0, 1, 2]


def test_faults_apply_in_order_and_can_target_a_path(sim: LoopSimulator) -> None:
    sim.fail_next(1, status=502, path="ContactEvent")
    sim.reply_next(1, body={"status": "Failure", "message": "busy"})
    call(sim, "POST", CONTACT, guest())  # the event-only fault lets it pass
    assert sim.received[-1].fault == "reply"
    call(sim, "POST", CONTACT, guest())
    assert call(sim, "POST", EVENT, {"event": "checkin", "foreignId": "R1"}).status_code == 502
    assert call(sim, "POST", EVENT, {"event": "checkin", "foreignId": "R1"}).status_code == 200
    assert [r.fault for r in sim.received] == ["reply", None, "fail", None]


def test_reply_next_can_send_any_body_even_not_json(sim: LoopSimulator) -> None:
    sim.reply_next(1, status=200, body="<html>maintenance</html>")
    reply = call(sim, "POST", CONTACT, guest())
    assert reply.status_code == 200
    assert reply.text == "<html>maintenance</html>"
    assert sim.contacts == {}


def test_delay_next_processes_after_the_delay(sim: LoopSimulator) -> None:
    sim.delay_next(1, 0.2)
    started = time.perf_counter()
    assert call(sim, "POST", CONTACT, guest()).status_code == 200
    assert time.perf_counter() - started >= 0.2
    assert sim.received[-1].fault == "delay"
    assert "R1" in sim.contacts


def test_drop_after_processing_stores_then_hangs_up(sim: LoopSimulator) -> None:
    sim.drop_after_processing_next(path="Contact")
    with pytest.raises(requests.ConnectionError):
        call(sim, "POST", CONTACT, guest())
    assert "R1" in sim.contacts
    received = sim.received[-1]
    assert (received.http_status, received.processed, received.fault) == (None, True, "drop")


def test_hang_is_recorded_and_stop_is_prompt() -> None:
    simulator = LoopSimulator(TEST_TOKEN).start()
    simulator.hang_next(2)
    with pytest.raises(requests.ReadTimeout):
        call(simulator, "POST", CONTACT, guest(), timeout=0.2)
    errors: list[BaseException] = []

    def hung_call() -> None:
        try:
            call(simulator, "POST", CONTACT, guest(), timeout=30)
        except requests.RequestException as error:
            errors.append(error)

    thread = threading.Thread(target=hung_call)
    thread.start()
    assert simulator.wait_for_received(2)
    hung = simulator.received
    assert [(r.fault, r.processed, r.http_status) for r in hung] == [("hang", False, None)] * 2
    assert hung[0].body == guest()
    started = time.perf_counter()
    simulator.stop()
    assert time.perf_counter() - started < 0.5
    thread.join(timeout=2)
    assert not thread.is_alive()
    # The waiting client saw the connection close, not a reply.
    assert len(errors) == 1
    assert isinstance(errors[0], requests.ConnectionError)
    assert simulator.contacts == {}
    with pytest.raises(requests.ConnectionError):
        call(simulator, "POST", CONTACT, guest(), timeout=1)


def test_stop_is_prompt_with_idle_keep_alive_connections() -> None:
    simulator = LoopSimulator(TEST_TOKEN).start()
    with requests.Session() as session:
        session.post(simulator.base_url + CONTACT, params={"authToken": TEST_TOKEN}, json=guest())
        started = time.perf_counter()
        simulator.stop()
        assert time.perf_counter() - started < 0.5


def test_fault_counts_must_be_positive(sim: LoopSimulator) -> None:
    with pytest.raises(ValueError, match="at least one request"):
        sim.fail_next(0)


def test_a_token_is_required() -> None:
    with pytest.raises(ValueError, match="non-empty token"):
        LoopSimulator("")


# -- the foreground server (`loopsync simulate-loop`) -----------------------------------


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_prints_its_url_and_stops_on_a_signal(stop_signal: signal.Signals) -> None:
    code = (
        "from loopsync.simulator import serve_forever; "
        f"serve_forever('127.0.0.1', 0, {TEST_TOKEN!r})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        base_url = match[0]
        reply = requests.post(
            base_url + CONTACT, params={"authToken": TEST_TOKEN}, json=guest(), timeout=5
        )
        assert reply.json()["status"] == "Success"
        state = requests.get(base_url + "/_simulator/state", timeout=5).json()
        assert list(state["contacts"]) == ["R1"]
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert TEST_TOKEN not in line + stdout + stderr
