"""Operator commands: `check`, `status`, `outbox list|retry|drop`, `resync`.

Each prints for a person (or JSON for scripts) and returns an exit code. None of
them shows guest details unmasked, and none shows a secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from loopsync.app import make_client, open_syncer
from loopsync.config import LoadedConfig, require
from loopsync.errors import ExitCode, LoopsyncError, StateStoreError
from loopsync.loop_client import Outcome
from loopsync.pms import PmsSource, decode_cursor
from loopsync.redact import mask
from loopsync.store import OutboxEntry, OutboxState, StateStore
from loopsync.sync import utc_now

log = logging.getLogger(__name__)

_SHOWN_COLUMNS = ("reservation_id", "status", "room", "arrival", "departure", "room_ready")
_MASKED_COLUMNS = ("firstname", "lastname", "email", "mobile")
PARKED_STATES = (OutboxState.UNCERTAIN, OutboxState.DEAD)


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def check(config: LoadedConfig) -> int:
    """Validate the config, run the PMS query once, and reach Loop without changing anything."""
    require(config, pms=True, loop=True)
    settings = config.settings
    print(f"config: ok ({config.path})")
    preset = f" (preset {settings.pms.preset})" if settings.pms.preset else ""
    print(f"query: {settings.pms.query_file}{preset}, {settings.pms.mode} mode")
    failed: ExitCode | None = None

    source = PmsSource(settings.pms, config.pms_password)
    try:
        since = source.since_value(None) if settings.pms.mode == "incremental" else None
        with source.read(since) as result:
            samples: list[dict[str, Any]] = []
            count = 0
            for row in result:
                count += 1
                if len(samples) < 3:
                    samples.append(row)
            columns = result.columns
        print(f"pms: ok, {source.description}: {count} rows; columns: {', '.join(columns)}")
        for row in samples:
            shown = {key: str(row[key]) for key in _SHOWN_COLUMNS if row.get(key) is not None}
            shown.update({key: mask(str(row[key])) for key in _MASKED_COLUMNS if row.get(key)})
            print("  " + json.dumps(shown, ensure_ascii=False))
    except LoopsyncError as exc:
        print(f"pms: FAILED: {exc}")
        failed = exc.exit_code
    finally:
        source.dispose()

    with make_client(config) as client:
        reply = client.check_token()
    if reply.outcome is Outcome.SUCCESS:
        print(f"loop: ok, {settings.loop.base_url} accepted the token (nothing was changed)")
    elif reply.outcome is Outcome.AUTH:
        print(f"loop: FAILED: the token was refused ({reply.detail}); check loop.auth_token")
        failed = failed or ExitCode.LOOP_AUTH
    else:
        hint = "" if reply.outcome is Outcome.PERMANENT else "; check loop.base_url and the network"
        print(f"loop: FAILED: could not verify the token: {reply.detail}{hint}")
        failed = failed or ExitCode.DELIVERY
    return int(failed or ExitCode.OK)


def status(config: LoadedConfig, *, as_json: bool) -> int:
    """Last runs, outbox counts, the cursor and the last error."""
    store = _existing_store(config)
    try:
        now = utc_now()
        runs = store.last_runs(10)
        counts = store.outbox_counts()
        oldest = store.oldest_pending()
        cursor = store.cursor()
        stays = len(store.load_states())
    finally:
        store.close()
    last_error = next((run.error for run in runs if run.error), None)
    report = {
        "state_store": store_description(config),
        "stays": stays,
        "cursor": None if cursor is None else str(decode_cursor(cursor)),
        "outbox": {state: counts.get(state, 0) for state in _ALL_STATES},
        "oldest_pending": oldest.isoformat() if oldest else None,
        "runs": [
            {
                "kind": run.kind,
                "started_at": run.started_at.isoformat(),
                "seconds": round((run.finished_at - run.started_at).total_seconds(), 2),
                "ok": run.ok,
                "summary": run.summary,
                "error": run.error,
            }
            for run in runs
        ],
        "last_error": last_error,
    }
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    print(f"state store: {report['state_store']} ({stays} stays known)")
    print(f"cursor: {report['cursor'] or 'none (next read is a full one)'}")
    outbox = ", ".join(f"{state} {counts.get(state, 0)}" for state in _ALL_STATES)
    print(f"outbox: {outbox}")
    if oldest is not None:
        print(f"oldest pending action: queued {_ago(oldest, now)}")
    print("last runs:")
    if not runs:
        print("  none yet")
    for run in runs:
        took = (run.finished_at - run.started_at).total_seconds()
        outcome = "ok" if run.ok else "FAILED"
        planned = run.summary.get("planned") or {}
        delivery = run.summary.get("delivery") or {}
        print(
            f"  {run.started_at:%Y-%m-%d %H:%M:%S} UTC ({_ago(run.started_at, now):>11})  "
            f"{run.kind:<9} "
            f"{took:6.1f} s  {outcome:<6} rows {run.summary.get('rows_read', 0)}, "
            f"rejected {run.summary.get('rejected', 0)}, planned {sum(planned.values())}, "
            f"delivered {sum((delivery.get('delivered') or {}).values())}"
        )
    print(f"last error: {last_error or 'none'}")
    return int(ExitCode.OK)


_ALL_STATES = (
    OutboxState.PENDING,
    OutboxState.UNCERTAIN,
    OutboxState.DEAD,
    OutboxState.DONE,
    OutboxState.DROPPED,
)


def _existing_store(config: LoadedConfig) -> StateStore:
    """The state store (migrated if older); a clear error if there is none at state.url yet."""
    probe = StateStore.open(config.settings.state.url, read_only=True)
    exists = probe.exists
    probe.close()
    if not exists:
        raise StateStoreError(
            f"there is no state store at {store_description(config)} yet: loopsync has not "
            "run with this config, or state.url points somewhere else"
        )
    return StateStore.open(config.settings.state.url)


def store_description(config: LoadedConfig) -> str:
    """The state store's URL without any password."""
    from sqlalchemy import make_url

    return make_url(config.settings.state.url).render_as_string(hide_password=True)


def _entry_line(entry: OutboxEntry, now: datetime) -> str:
    note = entry.last_error or ""
    if entry.state == OutboxState.PENDING and entry.not_before and entry.not_before > now:
        note = f"held until {entry.not_before:%Y-%m-%d %H:%M} UTC (quiet hours)"
    elif entry.state == OutboxState.PENDING and entry.next_attempt_at:
        note = f"next try {entry.next_attempt_at:%H:%M:%S} UTC; {note}"
    return (
        f"{entry.id:>7}  {entry.created_at:%Y-%m-%d %H:%M}  {entry.state:<9} "
        f"{entry.kind.value:<9} {entry.reservation_id:<16} {entry.attempts:>5}  {note}"
    ).rstrip()


def outbox_list(config: LoadedConfig, states: Sequence[str] | None, limit: int) -> int:
    """List outbox entries (no guest details), newest first."""
    store = _existing_store(config)
    try:
        entries = store.entries(states, limit=limit)
    finally:
        store.close()
    print(
        f"{'id':>7}  {'queued (UTC)':<16}  {'state':<9} {'action':<9} {'reservation':<16} "
        f"{'tries':>5}  note"
    )
    now = utc_now()
    for entry in entries:
        print(_entry_line(entry, now))
    if not entries:
        print("  (none)")
    return int(ExitCode.OK)


def outbox_retry(config: LoadedConfig, ids: Sequence[int], states: Sequence[str]) -> int:
    """Queue parked entries again; the next cycle (or `--sync-now`) sends them."""
    store = StateStore.open(config.settings.state.url)
    try:
        with store.lock(wait=30):
            count = store.requeue(ids or None, states or PARKED_STATES)
    finally:
        store.close()
    print(f"{count} entries queued again; they go with the next cycle (or run loopsync --sync-now)")
    return int(ExitCode.OK)


def outbox_drop(config: LoadedConfig, ids: Sequence[int], states: Sequence[str]) -> int:
    """Drop entries for good (their guest details are erased)."""
    store = StateStore.open(config.settings.state.url)
    try:
        with store.lock(wait=30):
            count = store.drop(ids or None, states or PARKED_STATES, utc_now())
    finally:
        store.close()
    print(f"{count} entries dropped")
    return int(ExitCode.OK)


def resync(config: LoadedConfig, reservation_id: str | None) -> int:
    """Push contacts again without firing events, then deliver."""
    require(config, pms=True, loop=True)
    with open_syncer(config) as (syncer, store), store.lock(wait=30):
        queued = syncer.resync(reservation_id)
        report = syncer.deliver(config.settings.loop.delivery_budget)
    what = f"reservation {reservation_id}" if reservation_id else "all live stays"
    print(f"resync of {what}: {queued} contacts queued, {report.delivered['upsert']} delivered")
    if report.auth_error:
        print(report.auth_error)
        return int(ExitCode.LOOP_AUTH)
    if reservation_id and not queued:
        print(f"reservation {reservation_id} is not a known live stay with a room; nothing sent")
    return int(ExitCode.OK if report.failures == 0 else ExitCode.DELIVERY)
