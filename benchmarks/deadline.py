"""How closely a whole ``phonediag`` command keeps its ``--deadline``.

    make bench-deadline   # = unshare -n ... .venv/bin/python -m benchmarks.deadline

For each deadline (``--deadlines``, default 4 6 10 20 s) and each place, runs
``phonediag diagnose --json --deadline D`` ``--repeat`` times (default 3) and measures the
command's wall time from outside, process start to exit:

- ``silent LAN``: a namespace of its own whose /28 answers nothing and a 60 s mDNS
  listening window: discovery never ends by itself, every deadline binds there;
- ``hostile office`` (unless ``--no-lab``): the lab's ``hostile`` scenario, the healthy
  office plus silent, slow, garbage, 60 KB, TCP-resetting, out-of-scope and mDNS-flooding
  devices (lab/hostile.py), with the lab's settings: discovery ends, and the deadline cuts
  the probes still waiting on the hostile devices, or nothing when it is long enough;
- ``hostile office, DNS silent``: the same while the box's resolver answers nothing
  (lab/outages.py ``dns-timeout``): lookups stuck in worker threads past the deadline.

Prints a Markdown table (place, deadline, wall time min/median/max, worst overrun in %
of the deadline, exit codes, how many steps the deadline cut) for docs/reliability.md;
``--json`` prints the raw runs. The exit status is 1 when a run overran its deadline by
more than 10 %. Run it where the tests may run (inside ``unshare -n``), alone on the
machine: a loaded machine measures itself, not phonediag.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXE = str(Path(sys.executable).with_name("phonediag"))
SLOW = "[discovery]\nmdns_window = 60\n"
SILENT_LAN = """\
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.200.0.1/28 dev v0
ip link set v0 up
ip link set v1 up
exec "$@"
"""
TOLERANCE = 0.10


def measure(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One run: wall time, exit code, the steps cut by the deadline."""
    began = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    wall = time.monotonic() - began
    try:
        report = json.loads(p.stdout)
    except ValueError:
        report = {"errors": [], "duration_s": None}
    cut = sorted(e["step"] for e in report["errors"] if "deadline" in e["reason"])
    return {"wall_s": round(wall, 3), "exit": p.returncode, "cut": cut,
            "traceback": "Traceback" in p.stderr}  # fmt: skip


def silent_lan(deadline: float, config: Path) -> dict[str, Any]:
    argv = ["unshare", "-n", "sh", "-ec", SILENT_LAN, "sh", EXE, "diagnose", "--json"]
    argv += ["--deadline", str(deadline), "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if k != "PHONEDIAG_CONFIG"}
    return measure(argv, env)


def lab_runner():
    """The hostile office: up once, one function per run, and the lab to take down."""
    from lab import Lab

    lab = Lab.up("hostile")

    def run(deadline: float) -> dict[str, Any]:
        argv = lab.agent_argv([EXE, "diagnose", "--json", "--deadline", str(deadline)])
        return measure(argv, lab.agent_env())

    return lab, run


def dns_silent(lab: Any, run: Any, deadline: float) -> dict[str, Any]:
    """A run while the box's resolver answers nothing (lab/outages.py): name lookups stuck
    in worker threads until the resolver's own timeouts (agent/aio.py)."""
    from lab.outages import outage

    with outage(lab, "dns-timeout"):
        return run(deadline)


def table(runs: list[dict[str, Any]]) -> str:
    rows = ["| Place | Deadline | Wall time (min / median / max) | Worst overrun | Exit codes "
            "| Steps cut by the deadline |", "|---|---:|---|---:|---|---|"]  # fmt: skip
    keys = sorted({(r["place"], r["deadline"]) for r in runs}, key=lambda k: (k[0], k[1]))
    for place, deadline in keys:
        mine = [r for r in runs if (r["place"], r["deadline"]) == (place, deadline)]
        walls = [r["wall_s"] for r in mine]
        over = max((w - deadline) / deadline for w in walls)
        codes = ", ".join(str(c) for c in sorted({r["exit"] for r in mine}))
        cut = sorted({len(r["cut"]) for r in mine})
        said = (
            "none: finished first"
            if cut == [0]
            else " to ".join(str(n) for n in cut[:: max(1, len(cut) - 1)])
        )
        rows.append(
            f"| {place} | {deadline:g} s | {min(walls):.2f} / {statistics.median(walls):.2f} / "
            f"{max(walls):.2f} s | {over * 100:+.1f} % | {codes} | {said} |"
        )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deadlines", type=float, nargs="+", default=[4, 6, 10, 20])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-lab", action="store_true", help="Only the silent LAN.")
    ap.add_argument("--json", action="store_true", help="Print the raw runs.")
    args = ap.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="phonediag-deadline-") as tmp:
        config = Path(tmp) / "slow.toml"
        config.write_text(SLOW + f'[store]\npath = "{Path(tmp) / "s.sqlite"}"\n')
        places = [("silent LAN", lambda d: silent_lan(d, config))]
        lab = None
        try:
            if not args.no_lab:
                lab, run = lab_runner()
                places.append(("hostile office", run))
                places.append(("hostile office, DNS silent", lambda d: dns_silent(lab, run, d)))
            for place, fn in places:
                for deadline in args.deadlines:
                    for _ in range(args.repeat):
                        runs.append({"place": place, "deadline": deadline, **fn(deadline)})
                        print(".", end="", file=sys.stderr, flush=True)
        finally:
            if lab is not None:
                lab.down()
    print(file=sys.stderr)
    worst = max((r["wall_s"] - r["deadline"]) / r["deadline"] for r in runs)
    if args.json:
        print(json.dumps(runs, indent=1))
    else:
        print(table(runs))
        print()
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(f"{len(runs)} runs, worst overrun {worst * 100:+.1f} % of the deadline "
              f"(tolerance +{TOLERANCE * 100:.0f} %), {sum(r['traceback'] for r in runs)} "
              f"tracebacks. Run: {when}, `python -m benchmarks.deadline "
              f"--deadlines {' '.join(f'{d:g}' for d in args.deadlines)} --repeat "
              f"{args.repeat}{' --no-lab' if args.no_lab else ''}`; {os.cpu_count()} vCPU, "
              f"Linux {platform.release()}, Python {platform.python_version()}.")  # fmt: skip
    bad = worst > TOLERANCE or any(r["traceback"] for r in runs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
