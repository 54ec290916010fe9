"""The errors an operator must act on, and the exit codes they map to.

Every subclass of `LoopsyncError` carries a message written for a hotel's IT person:
one line saying what is wrong and what to do. The CLI prints it without a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in the README."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CONFIG = 3
    PMS = 4
    LOOP_AUTH = 5
    DELIVERY = 6
    GUARD = 7
    LOCKED = 8
    STATE_STORE = 9


class LoopsyncError(Exception):
    """A failure the operator can understand and fix; `str()` is the one-line message."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class ConfigError(LoopsyncError):
    """The configuration is invalid; `problems` lists every problem found, one per line."""

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class PmsError(LoopsyncError):
    """The PMS database could not be reached or the query failed."""

    exit_code = ExitCode.PMS


class QueryShapeError(PmsError):
    """The PMS query does not return the columns loopsync needs."""


class StateStoreError(LoopsyncError):
    """The local state store could not be opened, migrated or written."""

    exit_code = ExitCode.STATE_STORE


class LockHeldError(LoopsyncError):
    """Another loopsync process holds the state store."""

    exit_code = ExitCode.LOCKED


class GuardTripped(LoopsyncError):
    """Rule R12: the cycle would cancel too much, or the PMS suddenly looks empty."""

    exit_code = ExitCode.GUARD


class LoopAuthError(LoopsyncError):
    """Loop refused the auth token (HTTP 401/403); delivery stops for the whole account."""

    exit_code = ExitCode.LOOP_AUTH
