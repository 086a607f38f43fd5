"""The nightly fuzz run: every property test of tests/fuzz with many examples each.

    make fuzz    # = unshare -n ... nice -n 19 .venv/bin/python -m benchmarks.fuzz

Runs pytest on tests/fuzz with the ``nightly`` profile (``PHONEDIAG_FUZZ_EXAMPLES``
examples per target, ``--examples``; by default enough for over a million inputs in all),
counts the inputs each target was actually called with (tests/fuzz/conftest.py), and
prints a Markdown table: per target, the inputs, the failures (a crash, an exception the
parser does not document, a deadline or bound exceeded: 0 expected), the time and the
rate; then the totals, the date and the machine. ``--jobs 2`` splits the modules over two
pytest processes. ``--profile ci`` gives the same table for the fast profile ``make test``
runs. ``--json`` prints the raw figures instead. The exit status is pytest's (0: no
failure).

Run it where the tests may run (tests/conftest.py: inside ``unshare -n``), and niced on a
shared machine. The figures of a run go to docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "tests" / "fuzz"
DEFAULT_EXAMPLES = 15_000  # per target: with the 76 targets, over 1,100,000 inputs
# Seconds per 1,000 examples of each module's targets together (a run on 2 vCPUs), to share
# the modules out evenly between the pytest processes.
COST = {
    "snmp": 86, "vendors": 83, "sip": 76, "mdns": 74, "reflector": 64, "rules": 62, "pnp": 55,
    "portal": 38, "stun": 13, "identify": 12, "config": 10, "http": 9, "arp": 5,
}  # fmt: skip


def modules(only: str | None) -> list[Path]:
    found = sorted(FUZZ.glob("test_fuzz_*.py"))
    return [m for m in found if not only or only in m.stem]


def run(
    mods: list[Path], profile: str, examples: int, report: Path, extra: list[str]
) -> subprocess.Popen:
    env = {
        **os.environ,
        "PHONEDIAG_FUZZ": profile,
        "PHONEDIAG_FUZZ_EXAMPLES": str(examples),
        "PHONEDIAG_FUZZ_REPORT": str(report),
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    cmd += [str(m.relative_to(ROOT)) for m in mods]
    return subprocess.Popen(cmd, cwd=ROOT, env=env)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import hypothesis

    return (
        f"{cpu}, {os.cpu_count()} vCPU, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Hypothesis {hypothesis.__version__}"
    )


def _family(node: str) -> str:
    return node.split("::")[0].rsplit("/", 1)[-1].removeprefix("test_fuzz_").removesuffix(".py")


def table(doc: dict, wall: float, settings: str) -> str:
    targets = doc["targets"]
    fuzzed = {n: t for n, t in targets.items() if t.get("inputs")}
    fixed = {n: t for n, t in targets.items() if not t.get("inputs")}
    failed = [n for n, t in targets.items() if t.get("outcome") != "passed"]
    lines = [
        "| Family | Target | Inputs | Failures | Seconds | Inputs/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for node, t in sorted(fuzzed.items()):
        seconds = float(t.get("seconds", 0.0))
        rate = t["inputs"] / seconds if seconds else 0.0
        fails = int(t.get("outcome") != "passed")
        name = node.split("::", 1)[1]
        lines.append(
            f"| {_family(node)} | `{name}` | {t['inputs']:,} | {fails} | {seconds:,.1f} "
            f"| {rate:,.0f} |"
        )
    total = sum(t["inputs"] for t in fuzzed.values())
    busy = sum(float(t.get("seconds", 0.0)) for t in fuzzed.values())
    fixed_fails = sum(1 for t in fixed.values() if t.get("outcome") != "passed")
    lines += [
        f"| **all** | {len(fuzzed)} property targets | **{total:,}** "
        f"| **{len(failed) - fixed_fails}** | {busy:,.0f} | {total / busy if busy else 0:,.0f} |",
        "",
        f"Plus {len(fixed)} worst-case and regression checks (fixed inputs of up to 64 KiB "
        f"and more, each bounded in time and memory): {fixed_fails} failed.",
        "",
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {settings}, {wall / 60:,.1f} min wall; "
        f"{machine()}.",
    ]
    if failed:
        lines += ["", "Failed: " + ", ".join(f"`{n}`" for n in failed)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--examples",
        type=int,
        default=int(os.environ.get("PHONEDIAG_FUZZ_EXAMPLES") or DEFAULT_EXAMPLES),
        help=f"examples per target (default {DEFAULT_EXAMPLES:,})",
    )
    ap.add_argument("--jobs", type=int, default=1, help="pytest processes (modules split)")
    ap.add_argument(
        "--profile", choices=("nightly", "ci"), default="nightly", help="tests/fuzz/conftest.py"
    )
    ap.add_argument("--only", help="only the modules whose name holds this (e.g. sip)")
    ap.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    ap.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = ap.parse_args()
    mods = modules(args.only)
    if not mods:
        ap.error(f"no fuzz module matches {args.only!r}")
    jobs = max(1, min(args.jobs, len(mods)))
    shares: list[list[Path]] = [[] for _ in range(jobs)]
    load = [0.0] * jobs
    cost = {m: COST.get(m.stem.removeprefix("test_fuzz_"), 50) for m in mods}
    for mod in sorted(mods, key=cost.__getitem__, reverse=True):  # the costliest first
        i = load.index(min(load))
        shares[i].append(mod)
        load[i] += cost[mod]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="phonediag-fuzz-") as tmp:
        reports = [Path(tmp) / f"report-{i}.json" for i in range(jobs)]
        shares = [sorted(share) for share in shares]
        procs = [
            run(share, args.profile, args.examples, report, args.pytest_args)
            for share, report in zip(shares, reports, strict=True)
        ]
        codes = [p.wait() for p in procs]
        doc: dict = {"targets": {}}
        for report in reports:
            if report.exists():
                doc["targets"].update(json.loads(report.read_text())["targets"])
    wall = time.monotonic() - start
    settings = f"profile `{args.profile}`"
    if args.profile == "nightly":
        settings += f", `PHONEDIAG_FUZZ_EXAMPLES={args.examples}`"
    if args.json:
        print(json.dumps({**doc, "settings": settings, "wall_s": wall}, indent=1))
    else:
        print(table(doc, wall, settings))
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    sys.exit(main())
