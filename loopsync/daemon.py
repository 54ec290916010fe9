"""The daemon: APScheduler 3.x runs the poll and the nightly reconcile, one at a time.

Signals: SIGTERM/SIGINT stop taking work, let the in-flight request finish (or
abandon it unmarked) and exit 0; SIGHUP re-reads the config and keeps the old one
if the new one is invalid. systemd hears READY, STATUS and WATCHDOG (only when
cycles complete, so a hung daemon is restarted).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from loopsync.app import make_client
from loopsync.config import LoadedConfig, load_config, require
from loopsync.errors import ConfigError, ExitCode, LoopsyncError
from loopsync.logs import add_secrets
from loopsync.metrics import Metrics
from loopsync.notify import Notifier
from loopsync.pms import PmsSource
from loopsync.store import StateStore
from loopsync.sync import CycleSummary, Syncer, utc_now

log = logging.getLogger(__name__)

STOP_DEADLINE = 8.0  # seconds from SIGTERM to exit, inside systemd's TimeoutStopSec
PROGRESS_PING = 30.0  # seconds between watchdog pings while a long delivery makes progress
WORK_LOCK_WAIT = 30.0  # how long a cycle waits for a `--sync-now` run by hand


def poll_trigger(interval: timedelta) -> IntervalTrigger:
    """The poll: on UTC, so a DST change neither stalls nor doubles it."""
    return IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC)


def reconcile_trigger(crontab: str, zone: ZoneInfo) -> CronTrigger:
    """The nightly reconcile, on the property's wall clock."""
    return CronTrigger.from_crontab(crontab, timezone=zone)


class Daemon:
    """One PMS, one Loop account, one state store; `run()` blocks until stopped."""

    def __init__(self, config: LoadedConfig, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.store = StateStore.open(config.settings.state.url)
        self._stop = threading.Event()
        self._work = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._last_ping = time.monotonic()
        self._syncer = self._build_syncer(config)
        self.last_summary = "no cycle yet"
        self.metrics = Metrics() if config.settings.metrics.enabled else None
        self.scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": int(config.settings.schedule.misfire_grace.total_seconds()),
            },
            timezone=config.settings.property.zone,
        )
        self.scheduler.add_listener(
            self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        # Its own warnings repeat every poll while one cycle is slow; _on_job_event says it once.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        self._failing = False

    def _build_syncer(self, config: LoadedConfig) -> Syncer:
        source = PmsSource(config.settings.pms, config.pms_password)
        return Syncer(
            config,
            self.store,
            source,
            make_client(config),
            stopping=self._stop.is_set,
            progress=self._delivery_progress,
        )

    def _delivery_progress(self) -> None:
        # A go-live backlog can take longer than WatchdogSec; actions sent are not a hang.
        now = time.monotonic()
        if now - self._last_ping >= PROGRESS_PING:
            self._last_ping = now
            self.notifier.watchdog()

    def _schedule(self) -> None:
        schedule = self.config.settings.schedule
        self.scheduler.add_job(
            self._cycle,
            poll_trigger(schedule.poll_interval),
            args=["sync"],
            id="poll",
            name="poll the PMS",
            next_run_time=datetime.now(UTC),
            replace_existing=True,
        )
        self.scheduler.add_job(
            self._cycle,
            reconcile_trigger(schedule.reconcile_cron, self.config.settings.property.zone),
            args=["reconcile"],
            id="reconcile",
            name="full reconcile",
            replace_existing=True,
        )

    def run(self) -> int:
        """Hold the daemon lock, schedule the jobs and block until a signal stops us."""
        with self.store.lock(wait=0, name="daemon"):
            self._schedule()
            signal.signal(signal.SIGTERM, self._on_stop_signal)
            signal.signal(signal.SIGINT, self._on_stop_signal)
            signal.signal(signal.SIGHUP, self._on_reload_signal)
            interval = self.config.settings.schedule.poll_interval.total_seconds()
            if self.metrics is not None:
                where = self.config.settings.metrics
                self.metrics.serve(where.address, where.port)
                log.info("metrics on http://%s:%d/metrics", where.address, where.port)
            log.info("loopsync daemon started: polling every %g s", interval)
            self.notifier.ready(f"started; polling every {interval:g} s")
            self.scheduler.start()  # blocks until shutdown
            self._finish_in_flight()
        return int(ExitCode.OK)

    def _finish_in_flight(self) -> None:
        if not self._idle.wait(STOP_DEADLINE):
            # The request in flight is abandoned unmarked: the next start resends it.
            log.warning("stopping with a cycle still running; unfinished actions stay queued")
            logging.shutdown()
            os._exit(int(ExitCode.OK))
        self._syncer.source.dispose()
        self.store.close()
        log.info("loopsync daemon stopped")

    # --- jobs ------------------------------------------------------------------------------

    def _cycle(self, kind: str) -> None:
        if self._stop.is_set():
            return
        self._idle.clear()
        started = time.monotonic()
        summary: CycleSummary | None = None
        try:
            with self._work:
                syncer = self._syncer
                with self.store.lock(wait=WORK_LOCK_WAIT, name="work"):
                    summary = syncer.sync_once(full=kind == "reconcile")
            self.last_summary = f"{kind} at {utc_now():%H:%M:%S} UTC: {summary.one_line()}"
            level = logging.WARNING if not summary.ok else logging.INFO
            if summary.ok and self._failing:
                log.info("recovered: %s", self.last_summary)
            else:
                log.log(logging.DEBUG if summary.idle else level, "%s", self.last_summary)
            self._failing = not summary.ok
        except LoopsyncError as exc:
            self.last_summary = f"{kind} failed at {utc_now():%H:%M:%S} UTC: {exc}"
            log.error("%s", self.last_summary)
            self._failing = True
        except Exception:
            self.last_summary = f"{kind} failed unexpectedly at {utc_now():%H:%M:%S} UTC"
            log.exception("%s", self.last_summary)
            self._failing = True
        finally:
            self._idle.set()
        if self.metrics is not None:
            try:
                counts = self.store.outbox_counts()
            except LoopsyncError:
                counts = {}
            self.metrics.record_cycle(kind, summary, time.monotonic() - started, counts)
        self.notifier.status(self.last_summary)
        self.notifier.watchdog()

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "job %s skipped: it started too late (schedule.misfire_grace)", event.job_id
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.debug("job %s skipped: the previous cycle is still running", event.job_id)

    # --- signals ---------------------------------------------------------------------------

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.notifier.stopping()
        # Shut down from a thread: the scheduler's locks are not safe inside a signal handler.
        threading.Thread(
            target=self.scheduler.shutdown, kwargs={"wait": False}, daemon=True
        ).start()

    def _on_reload_signal(self, _signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=self.reload, daemon=True).start()

    def reload(self) -> bool:
        """Re-read the config; on any problem keep running on the old one."""
        self.notifier.reloading()
        path = self.config.path
        try:
            fresh = load_config(path) if path else self.config
            require(fresh, pms=True, loop=True)
        except ConfigError as exc:
            log.error(
                "config reload failed, still running on the old config: %s", "; ".join(exc.problems)
            )
            self.notifier.ready(f"reload failed; old config kept. {self.last_summary}")
            return False
        add_secrets([secret for secret in (fresh.auth_token, fresh.pms_password) if secret])
        if fresh.settings.state != self.config.settings.state:
            log.warning("state.url changed: that takes effect on the next restart")
        with self._work:
            old = self._syncer
            self.config = fresh
            self._syncer = self._build_syncer(fresh)
            old.source.dispose()
            self._schedule()
        log.info("config reloaded from %s", path)
        self.notifier.ready(f"config reloaded. {self.last_summary}")
        return True


def run_daemon(config: LoadedConfig) -> int:
    """Entry point of `loopsync run`."""
    require(config, pms=True, loop=True)
    return Daemon(config).run()
