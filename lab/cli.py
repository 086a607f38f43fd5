"""``python -m lab up|run|down|list``: thin commands over lab.office.Lab."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from lab import fleet, netns, procs
from lab.office import AlreadyUp, Lab, LabError, NotUp
from lab.phones import MAX_PHONES
from lab.scenarios import SCENARIOS, ScenarioError
from lab.state import State, instance_from_env, instances

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"lab: {message}\n")
        raise SystemExit(USAGE_ERROR)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lab", description="phonediag's office lab")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    up = sub.add_parser("up", help="bring the office up (instance: $PHONEDIAG_LAB or 'default')")
    up.add_argument("--scenario", default="healthy", help="scenario name (see 'list')")
    up.add_argument(
        "--phones",
        type=int,
        default=None,
        help=f"number of phones: 1..{MAX_PHONES} (default 3); fleet: "
        f"{fleet.min_phones()}..{fleet.MAX_PHONES} (default {fleet.DEFAULT_PHONES})",
    )
    run = sub.add_parser("run", help="run a command on the agent host: run -- CMD...")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    sub.add_parser("down", help="tear the office down")
    sub.add_parser("list", help="scenarios and running instances")
    return parser


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so `up` cleans up the same way as on Ctrl-C."""
    raise KeyboardInterrupt


def cmd_up(scenario: str, count: int | None) -> int:
    """Bring the office up and print a summary."""
    instance = instance_from_env()
    signal.signal(signal.SIGTERM, _sigterm)
    started = time.monotonic()
    try:
        lab = Lab.up(scenario, phones=count, name=instance)
    except (ScenarioError, AlreadyUp, ValueError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted; everything created was removed", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    print(f"lab {lab.instance!r} up: scenario {lab.scenario} ({elapsed:.1f} s)")
    print("namespaces: " + " ".join(lab.namespaces.values()))
    if lab.fleet_hosts:
        _print_fleet(lab)
    for host in lab.hostile_hosts:
        print(
            f"  {host['name']:<10} {host['ip']:<12} {host['mac']}  hostile, with a"
            f" {host['vendor_name']} MAC prefix (log {lab.state.dir / 'logs' / 'fleet.log'})"
        )
    for ph in lab.phones:
        print(
            f"  {ph['role']:<7} {ph['ip']:<11} {ph['mac']}  {ph['model']} {ph['firmware']}"
            f"  line {ph['line']}"
        )
    print(f"agent config: {lab.config_path}")
    print(f"provider API: {lab.api_endpoint} (billing account {lab.api_account})")
    print("try: .venv/bin/python -m lab run -- phonediag discover")
    return 0


def _print_fleet(lab: Lab) -> None:
    """The fleet's layout: counts, the single-method phones, then one line per host."""
    hosts = lab.fleet_hosts
    info = fleet.summary(hosts)
    kinds = ", ".join(f"{n} {kind}" for kind, n in info["kinds"].items())
    print(f"fleet ({lab.ns('fleet')}): {kinds}; every other address of 10.66.0.0/24 is empty")
    print(f"  router 10.66.0.1, agent 10.66.0.100; log {lab.state.dir / 'logs' / 'fleet.log'}")
    singles = ", ".join(f"{m} {ip}" for m, ip in info["single_method"].items())
    print(f"  single-method phones: {singles}")
    for host in hosts:
        what = " ".join(str(host[k]) for k in ("vendor_name", "model", "firmware") if host[k])
        print(
            f"  {host['ip']:<12} {host['mac']}  {host['name']:<8} {what:<38}"
            f" {','.join(m for m in host['methods'] if m != 'arp') or '-'}"
        )


def cmd_run(cmd: Sequence[str]) -> int:
    """Replace this process by CMD on the agent host (exit code and signals pass through)."""
    cmd = list(cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("lab: run needs a command: python -m lab run -- CMD...", file=sys.stderr)
        return USAGE_ERROR
    try:
        lab = Lab.current()
    except (NotUp, ValueError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return USAGE_ERROR
    argv = lab.agent_argv(cmd)
    os.execvpe(argv[0], argv, lab.agent_env())
    return 0  # not reached


def cmd_down() -> int:
    """Tear the office down (idempotent)."""
    try:
        lab = Lab.current()
    except NotUp as exc:
        print(f"lab: {exc} (nothing to do)")
        return 0
    except ValueError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        lab.down()
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    print(f"lab {lab.instance!r} down")
    return 0


def cmd_list() -> int:
    """Print the scenarios and the instances that are up."""
    print("scenarios:")
    for sc in SCENARIOS.values():
        tag = "" if sc.available else " (not yet available)"
        print(f"  {sc.name:<24}{sc.description}{tag}")
    print("instances:")
    found = False
    for name in instances():
        try:
            state = State.load(name)
        except (FileNotFoundError, ValueError):
            print(f"  {name:<24}(incomplete state: python -m lab down with PHONEDIAG_LAB={name})")
            found = True
            continue
        running = sum(procs.alive(p) for p in state.procs)
        spaces = sum(netns.exists(n) for n in state.namespaces.values())
        print(
            f"  {name:<24}{state.scenario}, {state.status}, prefix {state.prefix}, "
            f"{spaces} namespaces, {running}/{len(state.procs)} processes alive"
        )
        found = True
    if not found:
        print("  (none)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "up":
        return cmd_up(args.scenario, args.phones)
    if args.command == "run":
        return cmd_run(args.cmd)
    if args.command == "down":
        return cmd_down()
    return cmd_list()
