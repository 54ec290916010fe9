"""One sync cycle: read the PMS, map, plan, commit, deliver (DESIGN §2).

`Syncer` wires the modules together; the CLI's `--sync-now` and the daemon's jobs
both go through it. The caller holds the state-store lock.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from loopsync.config import LoadedConfig
from loopsync.delivery import Deliverer, DeliveryReport, LoopSender
from loopsync.errors import GuardTripped, LoopsyncError, PmsError
from loopsync.mapping import RowMapper
from loopsync.model import (
    LIVE_STATUSES,
    Action,
    ActionKind,
    Plan,
    Rejection,
    Reservation,
    StayState,
    payload_hash,
)
from loopsync.pms import PmsSource, decode_cursor, encode_cursor
from loopsync.rules import Clock, plan_cycle
from loopsync.store import StateStore

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The real clock, in UTC; everything below takes `now` as an argument."""
    return datetime.now(UTC)


@dataclass(slots=True)
class CycleSummary:
    """What one cycle read, planned and delivered; no guest details."""

    kind: str
    started_at: datetime
    rows_read: int = 0
    rejected: int = 0
    rejected_first_time: int = 0  # rejections not reported by an earlier cycle
    planned: Counter[str] = field(default_factory=Counter)
    skipped_events: int = 0
    cancellations: int = 0
    delivery: DeliveryReport | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.delivery is None or self.delivery.failures == 0)

    @property
    def idle(self) -> bool:
        """Nothing rejected, planned, sent or failed: not worth a log line at INFO."""
        delivery = self.delivery
        return (
            self.ok
            and not self.rejected_first_time
            and not self.planned
            and not self.skipped_events
            and (delivery is None or (not delivery.delivered and not delivery.dropped))
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rejected": self.rejected,
            "planned": dict(self.planned),
            "skipped_events": self.skipped_events,
            "cancellations": self.cancellations,
            "delivery": self.delivery.as_dict() if self.delivery else None,
        }

    def one_line(self) -> str:
        """A short summary for the terminal, the journal and systemd's STATUS=."""
        delivered = self.delivery.delivered if self.delivery else Counter[str]()
        events = ", ".join(
            f"{kind} {delivered[kind]}"
            for kind in ("checkin", "checkout", "roomready")
            if delivered[kind]
        )
        parts = [
            f"read {self.rows_read} rows",
            f"rejected {self.rejected}",
            f"upserted {delivered['upsert']}",
            f"deleted {delivered['delete']}",
            f"events: {events or 'none'}",
        ]
        if self.delivery is not None:
            failed = self.delivery.failures
            parts.append(f"failures {failed}")
            if self.delivery.held:
                parts.append(f"held for quiet hours {self.delivery.held}")
        if self.error:
            parts.append(f"error: {self.error}")
        return "; ".join(parts)


class Syncer:
    """Runs cycles against one PMS, one state store and one Loop account."""

    def __init__(
        self,
        config: LoadedConfig,
        store: StateStore,
        source: PmsSource,
        client: LoopSender,
        *,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        stopping: Callable[[], bool] = lambda: False,
        progress: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.store = store
        self.source = source
        self._mapper = RowMapper(config.settings.pms, config.settings.property)
        self._rejections_told: set[tuple[str | None, str]] = set()
        self._now = now
        self.deliverer = Deliverer(
            store,
            client,
            config.settings.loop,
            config.settings.property.zone,
            now=now,
            sleep=sleep,
            stopping=stopping,
            progress=progress,
            rules=config.settings.rules,
        )

    def clock(self) -> Clock:
        return Clock(self._now(), self.config.settings.property.zone)

    def plan(
        self, *, full: bool = False, force: bool = False
    ) -> tuple[Plan, CycleSummary, str | None]:
        """Read the PMS and plan a cycle without writing anything; returns the new cursor too."""
        settings = self.config.settings
        clock = self.clock()
        summary = CycleSummary(kind="reconcile" if full else "sync", started_at=clock.now)
        incremental = settings.pms.mode == "incremental"
        stored = self.store.cursor() if incremental else None
        previous = decode_cursor(stored) if stored is not None else None
        # A reconcile reads everything, but the stored cursor still never moves backwards.
        since = self.source.since_value(None if full else previous) if incremental else None
        full_read = full or not incremental or previous is None
        with self.source.read(since) as result:
            plan = plan_cycle(
                self._reservations(result, summary),
                self.store.load_states(),
                clock,
                settings.rules,
                known_locations=self.store.known_locations(),
                full_read=full_read,
                force=force,
            )
            newest = result.max_cursor
        summary.planned.update(action.kind.value for action in plan.actions)
        summary.skipped_events = len(plan.skipped)
        summary.cancellations = plan.cancellations
        for skipped in plan.skipped:
            log.info(
                "%s %s: not sent, %s", skipped.reservation_id, skipped.kind.value, skipped.reason
            )
        cursor = None
        if incremental and newest is not None:
            cursor = encode_cursor(_later(previous, newest))
            _warn_if_ahead(newest, clock, settings.pms.cursor_column)
        return plan, summary, cursor

    def _reservations(self, rows: Any, summary: CycleSummary) -> Iterator[Reservation]:
        for row in rows:
            summary.rows_read += 1
            mapped = self._mapper.map_row(row)
            if isinstance(mapped, Rejection):
                summary.rejected += 1
                # Said once per process: a bad row in a full read would repeat every minute.
                seen = (mapped.reservation_id, mapped.reason) in self._rejections_told
                self._rejections_told.add((mapped.reservation_id, mapped.reason))
                summary.rejected_first_time += not seen
                log.log(
                    logging.DEBUG if seen else logging.WARNING,
                    "reservation %s rejected: %s",
                    mapped.reservation_id or "(no id)",
                    mapped.reason,
                )
                continue
            yield mapped

    def run_cycle(self, *, full: bool = False, force: bool = False) -> CycleSummary:
        """Plan a cycle and commit its states and actions in one transaction."""
        plan, summary, cursor = self.plan(full=full, force=force)
        self.store.commit_plan(plan, now=self.clock().now, cursor=cursor)
        return summary

    def resync(self, reservation_id: str | None = None) -> int:
        """Queue the whole contact of every known live stay again (or of one), no events.

        For when Loop lost contacts. Reads the PMS in full; only the sent-payload hash of
        each stay changes, so the rules' event bookkeeping is untouched.
        """
        settings = self.config.settings
        states = self.store.load_states()
        clock = self.clock()
        changed: list[StayState] = []
        actions: list[Action] = []
        since = self.source.since_value(None) if settings.pms.mode == "incremental" else None
        summary = CycleSummary(kind="resync", started_at=clock.now)
        with self.source.read(since) as result:
            for reservation in self._reservations(result, summary):
                state = states.get(reservation.reservation_id)
                if state is None or (
                    reservation_id and reservation.reservation_id != reservation_id
                ):
                    continue
                if reservation.status not in LIVE_STATUSES or reservation.room is None:
                    continue
                payload = reservation.contact_payload()
                actions.append(Action(reservation.reservation_id, ActionKind.UPSERT, payload))
                changed.append(dataclasses.replace(state, payload_hash=payload_hash(payload)))
        self.store.commit_plan(Plan(states=changed, actions=actions), now=clock.now, cursor=None)
        return len(actions)

    def deliver(self, budget: timedelta | None) -> DeliveryReport:
        """Send the outbox; see `Deliverer.deliver_pending`."""
        return self.deliverer.deliver_pending(budget)

    def sync_once(
        self, *, full: bool = False, force: bool = False, budget: timedelta | None = None
    ) -> CycleSummary:
        """One cycle plus delivery, recorded in the run history, whatever happens."""
        started = self._now()
        summary = CycleSummary(kind="reconcile" if full else "sync", started_at=started)
        try:
            try:
                summary = self.run_cycle(full=full, force=force)
            except (PmsError, GuardTripped) as exc:
                # What is already queued (a retry, a checkout held overnight) need not wait
                # for the PMS to come back.
                summary.error = str(exc)
                summary.delivery = self.deliver(budget)
                raise
            summary.started_at = started
            summary.delivery = self.deliver(budget)
            if summary.delivery.auth_error:
                summary.error = summary.delivery.auth_error
            self.store.purge(self._now(), self.config.settings.rules.retention_days)
        except LoopsyncError as exc:
            summary.error = str(exc)
            raise
        finally:
            self.store.record_run(
                summary.kind,
                started,
                self._now(),
                ok=summary.ok,
                summary=summary.as_dict(),
                error=summary.error or (summary.delivery.last_error if summary.delivery else None),
            )
        return summary


FUTURE_CURSOR_SLACK = timedelta(hours=1)


def _warn_if_ahead(newest: object, clock: Clock, column: str) -> None:
    """A cursor far in the future holds incremental reads back until real time catches up."""
    if not isinstance(newest, datetime):
        return
    now = clock.now if newest.tzinfo is not None else clock.local.replace(tzinfo=None)
    if newest - now > FUTURE_CURSOR_SLACK:
        log.warning(
            "the PMS returned a %s of %s, more than an hour ahead of now: until then, "
            "changes are only seen by the nightly reconcile. Check the PMS clock and that row",
            column,
            newest.isoformat(sep=" ", timespec="minutes"),
        )


def _later(previous: object | None, newest: object) -> object:
    """The cursor never moves backwards: keep the larger of the stored and the newest value."""
    if previous is None:
        return newest
    try:
        return newest if newest > previous else previous  # type: ignore[operator]
    except TypeError:
        return newest
