"""Delivery: send pending outbox entries to Loop, in order per reservation (DESIGN §6).

An entry is marked done only after Loop said Success. Transient failures are retried
with backoff and jitter; a reservation whose head entry is waiting blocks only itself.
Events whose fate is unknown are parked as uncertain; 401/403 stop delivery at once.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from loopsync.config import LoopSettings, RulesSettings
from loopsync.loop_client import LoopReply, Outcome
from loopsync.model import ActionKind
from loopsync.rules import Clock, quiet_until, still_fits
from loopsync.store import OutboxEntry, StateStore

log = logging.getLogger(__name__)


class LoopSender(Protocol):
    """What delivery needs of a Loop client."""

    def send(self, kind: ActionKind, body: dict[str, Any]) -> LoopReply: ...


@dataclass(slots=True)
class DeliveryReport:
    """What one delivery run did."""

    delivered: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    dead: int = 0
    uncertain: int = 0
    retrying: int = 0  # still pending after a failed try
    held: int = 0  # waiting for quiet hours to end (R11): not a failure
    auth_error: str | None = None
    last_error: str | None = None

    @property
    def failures(self) -> int:
        return self.dead + self.uncertain + self.retrying + (1 if self.auth_error else 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": dict(self.delivered),
            "dropped": self.dropped,
            "dead": self.dead,
            "uncertain": self.uncertain,
            "retrying": self.retrying,
            "held": self.held,
            "auth_error": self.auth_error,
        }


def backoff_delay(
    attempts: int, settings: LoopSettings, rng: random.Random, retry_after: float | None
) -> float:
    """Seconds to wait before try `attempts + 1`: exponential, jittered, honouring Retry-After."""
    ceiling = settings.retry_max.total_seconds()
    delay = min(settings.retry_base.total_seconds() * 2.0 ** max(attempts - 1, 0), ceiling)
    delay = delay / 2 + rng.uniform(0, delay / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.retry_after_cap.total_seconds()))
    return delay


class Deliverer:
    """Sends the outbox to Loop; `now`, `sleep` and `rng` are injectable for tests."""

    def __init__(
        self,
        store: StateStore,
        client: LoopSender,
        settings: LoopSettings,
        zone: ZoneInfo,
        *,
        now: Callable[[], datetime],
        sleep: Callable[[float], None],
        rng: random.Random | None = None,
        stopping: Callable[[], bool] = lambda: False,
        progress: Callable[[], None] = lambda: None,
        rules: RulesSettings | None = None,
    ) -> None:
        self._store = store
        self._rules = rules
        self._client = client
        self._settings = settings
        self._zone = zone
        self._now = now
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._stopping = stopping
        self._progress = progress  # called after each entry: a long backlog is not a hang

    def deliver_pending(self, budget: timedelta | None = None) -> DeliveryReport:
        """Send what is due; with a budget, also wait for retries that fall due within it."""
        report = DeliveryReport()
        self._park_interrupted(report)
        deadline = self._now() + budget if budget is not None else None
        while True:
            next_due = self._one_pass(report)
            if report.auth_error or self._stopping() or next_due is None or deadline is None:
                break
            if next_due > deadline:
                break
            wait = (next_due - self._now()).total_seconds()
            if wait > 0:
                self._sleep(wait)
        self._count_waiting(report)
        return report

    def _held(self, entry: OutboxEntry, now: datetime) -> bool:
        """R11: held until its quiet hours end, and only while the config still calls them so."""
        if entry.not_before is None or entry.not_before <= now:
            return False
        if self._rules is None:
            return True
        return entry.kind in self._rules.quiet_events and (
            quiet_until(Clock(now, self._zone), self._rules) is not None
        )

    def _park_interrupted(self, report: DeliveryReport) -> None:
        for entry in self._store.park_interrupted(self._now()):
            report.uncertain += 1
            log.warning(
                "%s %s: parked as uncertain: loopsync stopped while sending it, so it may "
                "have reached Loop; replay it with `loopsync outbox retry --uncertain` if "
                "the guest did not get it",
                entry.reservation_id,
                entry.kind.value,
            )

    def _count_waiting(self, report: DeliveryReport) -> None:
        now = self._now()
        for entry in self._store.pending():
            if self._held(entry, now) and entry.attempts == 0:
                report.held += 1
            elif entry.attempts > 0:
                report.retrying += 1

    def _one_pass(self, report: DeliveryReport) -> datetime | None:
        """Send every reservation's due entries in order; return when a retry falls due next."""
        queues: dict[str, list[OutboxEntry]] = {}
        for entry in self._store.pending():
            queues.setdefault(entry.reservation_id, []).append(entry)
        next_due: datetime | None = None
        for queue in queues.values():
            for entry in queue:
                if self._stopping() or report.auth_error:
                    return None
                now = self._now()
                if self._held(entry, now):
                    break  # R11: held, and everything after it for this guest waits too
                if entry.next_attempt_at is not None and entry.next_attempt_at > now:
                    next_due = min(next_due or entry.next_attempt_at, entry.next_attempt_at)
                    break
                retry_at = self._deliver_one(entry, now, report)
                self._progress()
                if retry_at is not None:
                    next_due = min(next_due or retry_at, retry_at)
                    break
        return next_due

    def _deliver_one(
        self, entry: OutboxEntry, now: datetime, report: DeliveryReport
    ) -> datetime | None:
        """Try one entry. Returns when to retry it if it must block its reservation's queue."""
        rid, kind = entry.reservation_id, entry.kind
        if kind.is_event:
            reason = still_fits(
                kind, entry.room, self._store.get_state(rid), Clock(now, self._zone)
            )
            if reason is not None:  # R9
                self._store.mark_dropped(entry.id, now, reason)
                report.dropped += 1
                log.info("%s %s: dropped, %s", rid, kind.value, reason)
                return None

        if kind.is_event:
            # Committed before the request: if we die mid-flight, the next start parks it.
            self._store.mark_sending(entry.id)
        reply = self._client.send(kind, entry.body)
        attempts = entry.attempts + 1
        finished = self._now()
        if reply.outcome is Outcome.SUCCESS:
            self._store.mark_done(entry.id, finished, attempts, reply.body[:500] or None)
            report.delivered[kind.value] += 1
            log.info("%s %s: delivered", rid, kind.value)
            return None
        report.last_error = f"{rid} {kind.value}: {reply.detail}"
        if reply.outcome is Outcome.AUTH:
            # Not this entry's fault: back in the queue, no try counted.
            self._store.schedule_retry(
                entry.id, entry.attempts, None, reply.detail, None, entry.refusals
            )
            report.auth_error = (
                f"Loop refused the auth token ({reply.detail}); delivery is stopped until it "
                "is accepted. Check the token (loop.auth_token, loop.auth_token_file or the "
                "loop_auth_token credential) and loop.base_url"
            )
            log.error("%s", report.auth_error)
            return None
        if (
            reply.outcome is Outcome.UNKNOWN
            and kind.is_event
            and not self._settings.retry_uncertain_events
        ):
            self._store.mark_uncertain(entry.id, finished, attempts, reply.detail)
            report.uncertain += 1
            log.warning(
                "%s %s: parked as uncertain (%s): it may or may not have reached Loop; "
                "replay it with `loopsync outbox retry --uncertain` if the guest did not get it",
                rid,
                kind.value,
                reply.detail,
            )
            return None
        refusals = entry.refusals + (reply.outcome is Outcome.PERMANENT)
        if refusals >= self._settings.dead_after_attempts:
            self._store.mark_dead(entry.id, finished, attempts, reply.detail, reply.body or None)
            report.dead += 1
            log.error(
                "%s %s: dead after %d refusals (%s); see `loopsync outbox list --state dead`",
                rid,
                kind.value,
                refusals,
                reply.detail,
            )
            return None
        delay = backoff_delay(attempts, self._settings, self._rng, reply.retry_after)
        retry_at = finished + timedelta(seconds=delay)
        self._store.schedule_retry(
            entry.id, attempts, retry_at, reply.detail, reply.body or None, refusals
        )
        # The first failure says what is wrong; repeats of an outage would drown the log.
        log.log(
            logging.WARNING if attempts == 1 else logging.DEBUG,
            "%s %s: try %d failed (%s); retrying in %.1f s",
            rid,
            kind.value,
            attempts,
            reply.detail,
            delay,
        )
        return retry_at
