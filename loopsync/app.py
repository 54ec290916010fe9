"""Builds the long-lived pieces (state store, PMS source, Loop client) from the config."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime

from loopsync.config import LoadedConfig
from loopsync.loop_client import LoopClient
from loopsync.pms import PmsSource
from loopsync.store import StateStore
from loopsync.sync import Syncer, utc_now


def make_client(config: LoadedConfig) -> LoopClient:
    """A Loop client with the configured timeouts, pool and rate ceiling."""
    loop = config.settings.loop
    return LoopClient(
        loop.base_url,
        config.auth_token,
        connect_timeout=loop.connect_timeout.total_seconds(),
        read_timeout=loop.read_timeout.total_seconds(),
        pool_size=loop.pool_size,
        max_requests_per_second=loop.max_requests_per_second,
    )


@contextlib.contextmanager
def open_syncer(
    config: LoadedConfig,
    *,
    read_only: bool = False,
    now: Callable[[], datetime] = utc_now,
    stopping: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[Syncer, StateStore]]:
    """A ready `Syncer` and its store; everything is closed on exit."""
    store = StateStore.open(config.settings.state.url, read_only=read_only)
    source = PmsSource(config.settings.pms, config.pms_password)
    client = make_client(config)
    try:
        yield Syncer(config, store, source, client, now=now, stopping=stopping), store
    finally:
        client.close()
        source.dispose()
        store.close()
