"""The `loopsync` command: argument parsing, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loopsync import __version__
from loopsync.config import DEFAULT_CONFIG_PATH, LoadedConfig, load_config, require
from loopsync.errors import ExitCode, LoopAuthError, LoopsyncError
from loopsync.logs import add_secrets, setup_logging
from loopsync.redact import mask, scrub

log = logging.getLogger(__name__)

# Filled once the config is read, so that even an unexpected error's text is scrubbed.
_secrets: list[str] = []

_MASKED_FIELDS = ("firstname", "lastname", "title", "email", "mobile")
_STATES = ("pending", "uncertain", "dead", "done", "dropped")


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the command's name."""

    def default(value: object) -> object:
        # On a subcommand, an option not given must not overwrite the top level's value.
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=default(None),
        help=f"config file (default {DEFAULT_CONFIG_PATH}, or $LOOPSYNC_CONFIG)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=default(0), help="more detail; -vv for debug"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="warnings and errors only",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default(None),
        help="log lines as text (default) or JSON objects",
    )


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=text, description=text[:1].upper() + text[1:] + ".")
    _add_global_options(sub, top=False)
    return sub


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give seconds, 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each subcommand's handler is in `_HANDLERS`."""
    parser = argparse.ArgumentParser(
        prog="loopsync",
        description="Keep Benbria's Loop guest messaging in step with a hotel PMS database. "
        "Without a command, runs the daemon.",
    )
    parser.add_argument("--version", action="version", version=f"loopsync {__version__}")
    _add_global_options(parser, top=True)
    parser.add_argument(
        "--sync-now", action="store_true", help="run one cycle plus delivery, then exit"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="with --sync-now: print the plan, change nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="with --sync-now: let one cycle past the R12 guard"
    )
    parser.add_argument(
        "--full", action="store_true", help="with --sync-now: read everything (a reconcile)"
    )
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="with --sync-now: how long to wait for a running cycle to finish (default 60)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _command(commands, "run", "run the daemon (the default): poll the PMS, deliver, reconcile")
    _command(commands, "check", "validate the config, run the PMS query once, check the token")
    status = _command(commands, "status", "show the last runs, outbox counts, cursor, last error")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    outbox = _command(commands, "outbox", "list, retry or drop queued actions")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    listing = _command(outbox_commands, "list", "show entries, newest first (no guest details)")
    listing.add_argument("--state", action="append", choices=_STATES, help="only these states")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    for name, text in (("retry", "queue parked entries again"), ("drop", "drop entries for good")):
        action = _command(outbox_commands, name, text)
        action.add_argument(
            "ids", nargs="*", type=int, help="entry ids, as `outbox list` shows them"
        )
        action.add_argument("--uncertain", action="store_true", help="every uncertain entry")
        action.add_argument("--dead", action="store_true", help="every dead entry")
        if name == "drop":
            action.add_argument("--pending", action="store_true", help="every pending entry")
    resync = _command(commands, "resync", "push contacts to Loop again, without events")
    resync.add_argument("--reservation", default=None, help="only this reservation id")
    simulate = _command(commands, "simulate-loop", "run a Loop simulator (for trials and tests)")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on")
    simulate.add_argument("--port", type=int, default=8765, help="port to listen on (0: any)")
    token = simulate.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", help="the token it accepts (visible to `ps`: prefer the file)")
    token.add_argument("--token-file", type=Path, help="a file holding the token it accepts")
    demo = _command(commands, "demo", "play a day at a demo hotel against the simulator")
    demo.add_argument("--workdir", type=Path, default=None, help="keep the demo's files here")
    return parser


def _config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return Path(args.config)
    return Path(os.environ.get("LOOPSYNC_CONFIG", str(DEFAULT_CONFIG_PATH)))


def _load(args: argparse.Namespace) -> LoadedConfig:
    config = load_config(_config_path(args))
    if not (args.verbose or args.quiet or args.log_format):
        # The config's log settings apply when the command line says nothing.
        setup_logging(logging.getLevelName(config.settings.log.level), config.settings.log.format)
    secrets = [config.auth_token, config.pms_password or ""]
    _secrets.extend(secret for secret in secrets if secret)
    add_secrets(_secrets)
    return config


def _sync_now(args: argparse.Namespace) -> int:
    from loopsync.app import open_syncer

    config = _load(args)
    require(config, pms=True, loop=not args.dry_run)
    if args.dry_run:
        return _dry_run(config, args)
    hint = f"waited {args.wait:g} s; --wait SECONDS waits longer"
    with open_syncer(config) as (syncer, store), store.lock(wait=args.wait, hint=hint):
        budget = config.settings.loop.delivery_budget
        summary = syncer.sync_once(full=args.full, force=args.force, budget=budget)
    print(summary.one_line())
    if summary.delivery is not None and summary.delivery.auth_error:
        raise LoopAuthError(summary.delivery.auth_error)
    return int(ExitCode.OK if summary.ok else ExitCode.DELIVERY)


def _dry_run(config: LoadedConfig, args: argparse.Namespace) -> int:
    from loopsync.app import open_syncer

    with open_syncer(config, read_only=True) as (syncer, _store):
        plan, summary, _cursor = syncer.plan(full=args.full, force=args.force)
    print(
        f"dry run: read {summary.rows_read} rows, rejected {summary.rejected}; nothing was written"
    )
    for action in plan.actions:
        body: dict[str, Any] = {
            key: mask(value) if key in _MASKED_FIELDS and isinstance(value, str) else value
            for key, value in action.body.items()
        }
        if "customFields" in body:  # loyalty numbers and the like: guest details too
            body["customFields"] = [
                {key: mask(str(value)) for key, value in field.items()}
                for field in action.body["customFields"]
            ]
        held = f" (held until {action.not_before:%Y-%m-%d %H:%M} UTC)" if action.not_before else ""
        shown = json.dumps(body, ensure_ascii=False)
        print(f"{action.reservation_id} {action.kind.value}{held} {shown}")
    for skipped in plan.skipped:
        print(f"{skipped.reservation_id} {skipped.kind.value} not sent: {skipped.reason}")
    print(f"{len(plan.actions)} actions would be queued")
    return int(ExitCode.OK)


def _simulate(args: argparse.Namespace) -> int:
    from loopsync.simulator import serve_forever

    token = args.token
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read --token-file {args.token_file}: {exc.strerror}"
            ) from None
    serve_forever(args.host, args.port, token)
    return int(ExitCode.OK)


def _demo(args: argparse.Namespace) -> int:
    from loopsync.demo import run_demo

    return run_demo(args.workdir, verbose=args.verbose > 0)


def _run_daemon(args: argparse.Namespace) -> int:
    from loopsync.daemon import run_daemon

    return run_daemon(_load(args))


def _check(args: argparse.Namespace) -> int:
    from loopsync import admin

    return admin.check(_load(args))


def _status(args: argparse.Namespace) -> int:
    from loopsync import admin

    return admin.status(_load(args), as_json=args.json)


def _outbox(args: argparse.Namespace) -> int:
    from loopsync import admin

    config = _load(args)
    if args.outbox_command == "list":
        return admin.outbox_list(config, args.state, args.limit)
    states = [name for name in _STATES if getattr(args, name, False)]
    if not args.ids and not states:
        raise UsageError(
            "say which entries: ids, or --uncertain/--dead "
            f"(loopsync outbox {args.outbox_command} --help)"
        )
    if args.outbox_command == "retry":
        return admin.outbox_retry(config, args.ids, states)
    return admin.outbox_drop(config, args.ids, states)


def _resync(args: argparse.Namespace) -> int:
    from loopsync import admin

    return admin.resync(_load(args), args.reservation)


class UsageError(LoopsyncError):
    """The command line asks for something that cannot be done as written."""

    exit_code = ExitCode.USAGE


_HANDLERS: dict[str | None, Callable[[argparse.Namespace], int]] = {
    "run": _run_daemon,
    None: _run_daemon,
    "check": _check,
    "status": _status,
    "outbox": _outbox,
    "resync": _resync,
    "simulate-loop": _simulate,
    "demo": _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `loopsync` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    setup_logging(level, args.log_format or "text")
    handler = _sync_now if args.sync_now else _HANDLERS[args.command]
    if (args.dry_run or args.force or args.full) and not args.sync_now:
        parser.error("--dry-run, --force and --full go with --sync-now")
    if args.sync_now and args.command is not None:
        parser.error(f"--sync-now is a command of its own; run it without {args.command!r}")
    try:
        return handler(args)
    except LoopsyncError as exc:
        for line in str(exc).splitlines():
            print(f"loopsync: {line}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader stopped reading (`loopsync status | head`): that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception as exc:
        log.debug("unexpected error", exc_info=True)
        text = scrub(f"{type(exc).__name__}: {exc}", _secrets)
        print(
            f"loopsync: unexpected error: {text} (run with -vv for the traceback)", file=sys.stderr
        )
        if args.verbose:
            raise
        return int(ExitCode.UNEXPECTED)


if __name__ == "__main__":
    sys.exit(main())
