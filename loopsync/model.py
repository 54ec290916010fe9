"""The values that flow between the modules: reservations, stored stay state, actions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The canonical stay status a PMS code is mapped to."""

    RESERVED = "reserved"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


LIVE_STATUSES = frozenset({Status.RESERVED, Status.CHECKED_IN})
CANCELLED_STATUSES = frozenset({Status.CANCELLED, Status.NO_SHOW})


class ActionKind(StrEnum):
    """What one outbox entry asks Loop to do."""

    UPSERT = "upsert"
    DELETE = "delete"
    CHECKIN = "checkin"
    CHECKOUT = "checkout"
    ROOMREADY = "roomready"

    @property
    def is_event(self) -> bool:
        return self in EVENT_KINDS


EVENT_KINDS = frozenset({ActionKind.CHECKIN, ActionKind.CHECKOUT, ActionKind.ROOMREADY})


class Mark(StrEnum):
    """Why an event counts as handled for a reservation, so it is never sent twice."""

    SENT = "sent"
    SKIPPED = "skipped"  # R7: too old when detected, or superseded (R3)
    BASELINE = "baseline"  # R6: true at go-live, recorded without sending


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, millisecond precision, as Loop's examples show."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True, slots=True)
class Reservation:
    """One PMS stay after mapping: canonical status, UTC times, normalised guest profile."""

    reservation_id: str
    status: Status
    arrival: datetime
    departure: datetime
    arrival_date: date  # the arrival day in the property's time zone (rule R4)
    room: str | None = None
    room_ready: bool = False
    location_id: str | None = None
    title: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    mobile: str | None = None
    language: str = "en"
    vip: str | None = None
    group_name: str | None = None
    area: str | None = None
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    custom_fields: tuple[tuple[str, str], ...] = ()

    @property
    def location_key(self) -> str:
        """The property this stay belongs to ("" for a single-property setup)."""
        return self.location_id or ""

    def contact_payload(self) -> dict[str, Any]:
        """The whole Loop Contact for this stay (DESIGN §1); absent values are left out."""
        payload: dict[str, Any] = {"foreignId": self.reservation_id}
        optional = {
            "locationId": self.location_id,
            "area": self.area,
            "title": self.title,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "email": self.email,
            "mobile": self.mobile,
            "language": self.language,
        }
        payload.update({key: value for key, value in optional.items() if value is not None})
        payload["arrivalTime"] = utc_iso(self.arrival)
        payload["departureTime"] = utc_iso(self.departure)
        payload["checkedInStatus"] = "true" if self.status is Status.CHECKED_IN else "false"
        if self.room is not None:
            payload["room"] = self.room
        if self.vip is not None:
            payload["vipStatus"] = self.vip
        if self.group_name is not None:
            payload["groupName"] = self.group_name
        if self.custom_fields:
            payload["customFields"] = [{key: value} for key, value in self.custom_fields]
        return payload


def payload_hash(payload: dict[str, Any]) -> str:
    """A stable digest of a payload, so state can remember what was sent without keeping it."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class StayState:
    """What loopsync remembers of one reservation between cycles. No guest details."""

    reservation_id: str
    location_key: str
    status: Status
    room: str | None
    room_ready: bool
    arrival: datetime
    departure: datetime
    arrival_date: date
    payload_hash: str | None  # of the last contact sent; None: Loop does not have it
    checkin: Mark | None
    checkout: Mark | None
    roomready_room: str | None  # the room a roomready was handled for
    first_seen: datetime
    last_seen: datetime

    @property
    def in_loop(self) -> bool:
        return self.payload_hash is not None


@dataclass(frozen=True, slots=True)
class Action:
    """One planned call to Loop, in the order it must be made for its reservation."""

    reservation_id: str
    kind: ActionKind
    body: dict[str, Any]
    not_before: datetime | None = None  # R11: held until quiet hours end
    room: str | None = None  # the room a roomready announces (checked again by R9)


@dataclass(frozen=True, slots=True)
class SkippedEvent:
    """An event the rules chose not to send, with the reason to log (R7, R3)."""

    reservation_id: str
    kind: ActionKind
    reason: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A PMS row that cannot be used: logged with its id and reason, counted, skipped."""

    reservation_id: str | None
    reason: str


@dataclass(slots=True)
class Plan:
    """What one cycle decided: states to store and actions to queue, written together."""

    states: list[StayState] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    skipped: list[SkippedEvent] = field(default_factory=list)
    cancellations: int = 0
    new_locations: set[str] = field(default_factory=set)
