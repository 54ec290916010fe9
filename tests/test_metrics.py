"""Prometheus metrics: what a cycle adds, in the text format the endpoint serves."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from loopsync.delivery import DeliveryReport
from loopsync.metrics import Metrics
from loopsync.sync import CycleSummary


def test_a_cycle_is_counted_by_kind_outcome_and_outbox_state():
    metrics = Metrics()
    delivery = DeliveryReport(delivered=Counter({"upsert": 3, "checkin": 1}), dead=1)
    summary = CycleSummary(
        kind="sync", started_at=datetime.now(UTC), rows_read=12, rejected=2, delivery=delivery
    )
    metrics.record_cycle("sync", summary, 1.5, {"pending": 4, "dead": 1})
    metrics.record_cycle("reconcile", None, 0.2, {"pending": 0})
    text = metrics.exposition()
    assert "loopsync_rows_read_total 12.0" in text
    assert "loopsync_rows_rejected_total 2.0" in text
    assert 'loopsync_actions_total{kind="upsert",outcome="delivered"} 3.0' in text
    assert 'loopsync_actions_total{kind="any",outcome="dead"} 1.0' in text
    assert (
        'loopsync_cycles_total{kind="sync",result="failed"} 1.0' in text
    )  # a dead action is a failure
    assert 'loopsync_cycles_total{kind="reconcile",result="failed"} 1.0' in text
    assert 'loopsync_outbox_entries{state="pending"} 0.0' in text
    assert "loopsync_cycle_duration_seconds_count 2.0" in text
    assert "loopsync_last_success_timestamp_seconds 0.0" in text


def test_a_clean_cycle_sets_the_last_success_time():
    metrics = Metrics()
    summary = CycleSummary(kind="sync", started_at=datetime.now(UTC), delivery=DeliveryReport())
    metrics.record_cycle("sync", summary, 0.1, {})
    line = next(
        line
        for line in metrics.exposition().splitlines()
        if line.startswith("loopsync_last_success_timestamp_seconds ")
    )
    value = float(line.split()[1])
    assert abs(value - datetime.now(UTC).timestamp()) < 60
