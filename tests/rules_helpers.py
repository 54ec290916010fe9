"""Builders shared by the rules tests: reservations, settings, and a tiny in-memory store."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from loopsync.config import RulesSettings
from loopsync.model import Action, Plan, Reservation, Status, StayState
from loopsync.rules import Clock, plan_cycle

ZONE = ZoneInfo("Europe/Amsterdam")
ARRIVAL_DAY = date(2026, 12, 3)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock moment at the test property, as aware UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def clock_at(moment: datetime) -> Clock:
    return Clock(moment, ZONE)


def rules(**overrides: Any) -> RulesSettings:
    return RulesSettings(**overrides)


def reservation(
    rid: str = "R1",
    status: Status = Status.RESERVED,
    *,
    room: str | None = "101",
    room_ready: bool = False,
    arrival_day: date = ARRIVAL_DAY,
    nights: int = 2,
    **fields: Any,
) -> Reservation:
    return Reservation(
        reservation_id=rid,
        status=status,
        arrival=local(arrival_day, 15),
        departure=local(arrival_day + timedelta(days=nights), 11),
        arrival_date=arrival_day,
        room=room,
        room_ready=room_ready,
        firstname=fields.pop("firstname", "Ana"),
        lastname=fields.pop("lastname", "Silva"),
        **fields,
    )


class MemoryStore:
    """The stay-state half of the state store, in memory, for driving `plan_cycle`."""

    def __init__(self) -> None:
        self.states: dict[str, StayState] = {}
        self.locations: frozenset[str] = frozenset()
        self.actions: list[Action] = []

    def cycle(
        self,
        reservations: list[Reservation],
        moment: datetime,
        settings: RulesSettings | None = None,
        *,
        full_read: bool = True,
        force: bool = False,
    ) -> Plan:
        plan = plan_cycle(
            reservations,
            dict(self.states),
            clock_at(moment),
            settings or rules(),
            known_locations=self.locations,
            full_read=full_read,
            force=force,
        )
        for state in plan.states:
            self.states[state.reservation_id] = state
        self.locations = self.locations | plan.new_locations
        self.actions.extend(plan.actions)
        return plan


def kinds(plan: Plan) -> list[tuple[str, str]]:
    return [(action.reservation_id, action.kind.value) for action in plan.actions]


def replace(res: Reservation, **changes: Any) -> Reservation:
    return dataclasses.replace(res, **changes)
