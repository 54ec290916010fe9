"""Optional Prometheus metrics for the daemon (`pip install 'loopsync[metrics]'`).

Served on 127.0.0.1 by default. Counts only: no reservation ids, no guest details.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loopsync.errors import ConfigError

if TYPE_CHECKING:
    from loopsync.sync import CycleSummary


class Metrics:
    """The daemon's metrics, in a registry of their own."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigError(
                [
                    "metrics.enabled: needs the prometheus_client package; "
                    "install it with: pip install 'loopsync[metrics]'"
                ]
            ) from None
        self._prom: Any = prom
        self.registry = prom.CollectorRegistry()
        self.rows_read = prom.Counter("loopsync_rows_read", "PMS rows read", registry=self.registry)
        self.rows_rejected = prom.Counter(
            "loopsync_rows_rejected", "PMS rows rejected by the mapping", registry=self.registry
        )
        self.actions = prom.Counter(
            "loopsync_actions",
            "Outbox actions by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.cycles = prom.Counter(
            "loopsync_cycles",
            "Cycles run, by kind and result",
            ["kind", "result"],
            registry=self.registry,
        )
        self.outbox = prom.Gauge(
            "loopsync_outbox_entries", "Outbox entries by state", ["state"], registry=self.registry
        )
        self.last_success = prom.Gauge(
            "loopsync_last_success_timestamp_seconds",
            "When the last cycle without failures finished (Unix time)",
            registry=self.registry,
        )
        self.duration = prom.Histogram(
            "loopsync_cycle_duration_seconds",
            "How long a cycle took, delivery included",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=self.registry,
        )

    def serve(self, address: str, port: int) -> None:
        """Start the HTTP endpoint in a background thread."""
        self._prom.start_http_server(port, addr=address, registry=self.registry)

    def record_cycle(
        self,
        kind: str,
        summary: CycleSummary | None,
        seconds: float,
        outbox_counts: dict[str, int],
    ) -> None:
        """Add one finished (or failed, `summary` None) cycle to the metrics."""
        self.duration.observe(seconds)
        ok = summary is not None and summary.ok
        self.cycles.labels(kind=kind, result="ok" if ok else "failed").inc()
        if ok:
            self.last_success.set(time.time())
        if summary is not None:
            self.rows_read.inc(summary.rows_read)
            self.rows_rejected.inc(summary.rejected)
            delivery = summary.delivery
            if delivery is not None:
                for action, count in delivery.delivered.items():
                    self.actions.labels(kind=action, outcome="delivered").inc(count)
                for outcome in ("dropped", "dead", "uncertain"):
                    count = getattr(delivery, outcome)
                    if count:
                        self.actions.labels(kind="any", outcome=outcome).inc(count)
        for state, count in outbox_counts.items():
            self.outbox.labels(state=state).set(count)

    def exposition(self) -> str:
        """The metrics as Prometheus' text format (what the endpoint serves)."""
        return self._prom.generate_latest(self.registry).decode("utf-8")  # type: ignore[no-any-return]
