"""How long a cycle takes for a hotel of a given size: prints numbers, asserts nothing.

    .venv/bin/python bench/bench_cycle.py [--reservations 5000] [--pms sqlite|postgres]

Measures, on an SQLite (or PostgreSQL) PMS and the in-process Loop simulator over
HTTP: the go-live cycle (read, map, plan, commit) and its delivery rate, an idle
cycle (nothing changed: what the daemon does every minute), and a cycle where 5 %
of the guests changed. Peak Python memory is reported for the idle cycle.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pms_fixtures import FULL_QUERY, STATUS_MAP, PmsDatabase, reservation_row, write_query

from loopsync.app import open_syncer
from loopsync.config import load_config
from loopsync.simulator import LoopSimulator

TOKEN = "bench-token"


def rows(count: int, today: date, rng: random.Random) -> list[dict[str, object]]:
    made = []
    for index in range(count):
        arrival = today + timedelta(days=rng.randint(-3, 25))
        status = "INH" if arrival <= today else "RES"
        made.append(
            reservation_row(
                f"B{index:06d}",
                status=status,
                room=str(100 + index % 400),
                arrival=arrival,
                departure=arrival + timedelta(days=rng.randint(1, 7)),
                firstname=rng.choice(["Zoë", "李", "Ольга", "Seán", "Amélie"]),
                lastname=f"Guest{index}",
                mobile=f"+31 6 {10000000 + index}",
                modified_at=datetime(2026, 1, 1),
            )
        )
    return made


def timed(label: str, action, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action(*args, **kwargs)
    print(f"{label:<44} {time.perf_counter() - started:8.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reservations", type=int, default=5000)
    parser.add_argument("--pms", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    rng = random.Random(42)
    today = datetime.now(UTC).date()
    with tempfile.TemporaryDirectory() as folder, LoopSimulator(TOKEN) as simulator:
        work = Path(folder)
        admin = None
        if args.pms == "sqlite":
            url = f"sqlite:///{work / 'pms.db'}"
        else:
            name = f"loopsync_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(
                "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        db = PmsDatabase(url)
        all_rows = rows(args.reservations, today, rng)
        db.insert(*all_rows)
        status_map = ", ".join(f'{code} = "{status}"' for code, status in STATUS_MAP.items())
        config_path = work / "loopsync.toml"
        config_path.write_text(
            f'[pms]\nurl = "{url}"\nquery_file = "{write_query(work, FULL_QUERY)}"\n'
            f"status_map = {{ {status_map} }}\n"
            f'[loop]\nbase_url = "{simulator.base_url}"\nauth_token = "{TOKEN}"\n'
            f"max_requests_per_second = 100000\n"
            f'[state]\nurl = "sqlite:///{work / "state.db"}"\n',
            encoding="utf-8",
        )
        config_path.chmod(0o600)
        config = load_config(config_path)
        print(f"PMS: {args.pms}, {args.reservations} reservations; Loop: simulator on 127.0.0.1")
        with open_syncer(config) as (syncer, store):
            summary = timed("go-live cycle (read, map, plan, commit)", syncer.run_cycle)
            planned = sum(summary.planned.values())
            started = time.perf_counter()
            report = syncer.deliver(None)
            took = time.perf_counter() - started
            sent = sum(report.delivered.values())
            print(
                f"{'go-live delivery':<44} {took:8.2f} s  ({sent} of {planned} actions, {sent / took:.0f}/s)"
            )
            timed("idle cycle (nothing changed)", syncer.run_cycle)
            tracemalloc.start()
            syncer.run_cycle()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"{'idle cycle peak Python memory':<44} {peak / 1e6:8.1f} MB")
            changed = rng.sample(all_rows, len(all_rows) // 20)
            for row in changed:
                db.update(str(row["reservation_id"]), lastname=f"{row['lastname']}-x")
            summary = timed("cycle with 5 % changed", syncer.run_cycle)
            started = time.perf_counter()
            report = syncer.deliver(None)
            took = time.perf_counter() - started
            print(f"{'its delivery':<44} {took:8.2f} s  ({sum(report.delivered.values())} actions)")
            print(f"stays in the state store: {len(store.load_states())}")
        db.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
