"""Discovery speed and recall against peers, in one run on one fleet lab.

    make bench   # = unshare -n ... .venv/bin/python -m benchmarks.discovery [--phones N]

Brings up the ``fleet`` lab (a /24 with N phones scattered among firewalled PCs, a
printer, a switch and empty addresses), then times, from the lab's agent host and with
the neighbour cache flushed before every run: ``phonediag discover`` (its defaults), SIPVicious
svmap (from PyPI, in .venv-bench) and nmap's sip-methods / snmp-sysdescr / ``-sV`` scans.
For each: median wall time, CPU time, peak memory (GNU time) and recall (phones found /
N, the worst run, and the range of phones found), then the ratios to phonediag. Peers that
are not installed are skipped with a note. phonediag's bytecode is compiled first, as pip
does when it installs the package (the source tree's own runs may not write it:
PYTHONDONTWRITEBYTECODE), so that start-up is timed as a user gets it.

Performance is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab import Lab

ROOT = Path(__file__).resolve().parents[1]
SVMAP = ROOT / ".venv-bench" / "bin" / "sipvicious_svmap"
SUBNET = "10.66.0.0/24"
TIME_FORMAT = "BENCH %e %U %S %M"  # wall s, user s, sys s, max RSS KiB
SNMP_V2C = ["--script-args", "snmp.version=v2c"]  # nmap's SNMP library speaks v1 by default


@dataclass
class Tool:
    name: str
    argv: list[str]
    found: Callable[[str], set[str]]  # stdout -> IPs reported
    needs: str = ""  # executable that must exist
    config: str = ""  # phonediag: TOML appended to the lab's agent configuration


@dataclass
class Result:
    tool: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    found: list[int] = field(default_factory=list)
    note: str = ""

    def row(self) -> dict[str, object]:
        if not self.walls:
            return {"tool": self.tool, "note": self.note}
        return {
            "tool": self.tool,
            "wall_s": round(statistics.median(self.walls), 2),
            "wall_range": [round(min(self.walls), 2), round(max(self.walls), 2)],
            "cpu_s": round(statistics.median(self.cpus), 2),
            "peak_mib": round(max(self.rss_kib) / 1024, 1),
            "recall": round(min(self.recalls), 3),
            "found": [min(self.found), max(self.found)],
            "runs": len(self.walls),
            **({"note": self.note} if self.note else {}),
        }


def phonediag_found(out: str) -> set[str]:
    report = json.loads(out)
    return {d["ip"] for d in report.get("devices", [])}


def svmap_found(out: str) -> set[str]:
    return set(re.findall(r"^\|\s*(\d+\.\d+\.\d+\.\d+):\d+", out, re.M))


def nmap_found(out: str) -> set[str]:
    """Hosts with a sip-methods / snmp-sysdescr answer, or an open 161/5060 (-sV)."""
    found = set()
    for host in ET.fromstring(out).iter("host"):
        addr = host.find("address[@addrtype='ipv4']")
        if addr is None:
            continue
        ports = host.findall("ports/port")
        if any(p.find("script") is not None for p in ports) or any(
            (s := p.find("state")) is not None
            and s.get("state") == "open"
            and p.find("service") is not None
            for p in ports
        ):
            found.add(addr.get("addr", ""))
    return found


def tools() -> list[Tool]:
    nmap = ["nmap", "-n", "-oX", "-", "-sU"]
    discover = ["phonediag", "discover", "--json"]
    return [
        Tool("phonediag", discover, phonediag_found),
        Tool("svmap", [str(SVMAP), SUBNET], svmap_found, needs=str(SVMAP)),
        Tool(
            "nmap sip-methods",
            [*nmap, "-p", "5060", "--script", "sip-methods", SUBNET],
            nmap_found,
            "nmap",
        ),
        Tool(
            "nmap snmp-sysdescr",
            # the fleet's agents answer v2c only
            [*nmap, "-p", "161", "--script", "snmp-sysdescr", *SNMP_V2C, SUBNET],
            nmap_found,
            "nmap",
        ),
        Tool(
            "nmap -sV",
            [*nmap, "-p", "161,5060", "-sV", "--version-intensity", "0", SUBNET],
            nmap_found,
            "nmap",
        ),
    ]


def measure(lab: Lab, tool: Tool, phones: set[str], runs: int, tmp: Path) -> Result:
    result = Result(tool.name)
    if tool.needs and not shutil.which(tool.needs):
        result.note = f"not installed ({tool.needs}): make bench installs it"
        return result
    env = {}
    if tool.config:
        config = tmp / f"{len(list(tmp.iterdir()))}.toml"
        config.write_text(lab.config_path.read_text() + "\n" + tool.config)
        env["PHONEDIAG_CONFIG"] = str(config)
    for _ in range(runs):
        lab.exec("agent", ["ip", "neigh", "flush", "all"])  # a cold ARP cache every run
        argv = ["/usr/bin/time", "-f", TIME_FORMAT, *tool.argv]
        r = lab.run(argv, timeout=600, env=env)
        timing = re.search(r"^BENCH (\S+) (\S+) (\S+) (\d+)$", r.stderr, re.M)
        if timing is None:
            result.note = f"exit {r.returncode}: {r.stderr.strip()[-300:]}"
            return result
        wall, user, system, rss = timing.groups()
        result.walls.append(float(wall))
        result.cpus.append(float(user) + float(system))
        result.rss_kib.append(int(rss))
        try:
            found = tool.found(r.stdout)
        except (ValueError, ET.ParseError) as e:
            result.note = f"unreadable output: {e}"
            found = set()
        result.recalls.append(len(found & phones) / len(phones))
        result.found.append(len(found & phones))
    return result


def compile_bytecode() -> None:
    """phonediag's .pyc files, as ``pip install`` writes them (quietly; a failure only
    means start-up is timed with compilation in it)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "agent")],
        capture_output=True,
        check=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    compile_bytecode()
    with (
        Lab.up("fleet", phones=args.phones, timeout=120) as lab,
        tempfile.TemporaryDirectory(prefix="phonediag-bench-") as tmp,
    ):
        phones = {h["ip"] for h in lab.fleet_hosts if h["kind"] == "phone"}
        results = [measure(lab, t, phones, args.runs, Path(tmp)) for t in tools()]
    rows = [r.row() for r in results]
    base = rows[0].get("wall_s")
    for row in rows:
        if base and "wall_s" in row:
            row["x_phonediag"] = round(float(row["wall_s"]) / float(base), 1)  # type: ignore[arg-type]
    if args.json:
        print(json.dumps({"phones": len(phones), "results": rows}, indent=2))
        return 0
    print(f"fleet /24: {len(phones)} phones; median of {args.runs} runs, cold ARP cache")
    heads = ("wall s", "range", "CPU s", "MiB", "recall", "found", "× pd")
    widths = (8, 13, 6, 6, 7, 8, 6)
    print(f"{'tool':22}", *(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for row in rows:
        if "wall_s" not in row:
            print(f"{row['tool']:22} {row['note']}")
            continue
        lo, hi = row["wall_range"]  # type: ignore[misc]
        few, most = row["found"]  # type: ignore[misc]
        found = f"{few}" if few == most else f"{few}–{most}"
        print(
            f"{row['tool']:22} {row['wall_s']:>8} {f'{lo}–{hi}':>13} {row['cpu_s']:>6}"
            f" {row['peak_mib']:>6} {row['recall']:>7.0%} {found:>8}"
            f" {row.get('x_phonediag', ''):>6}"
        )
        if row.get("note"):
            print(f"{'':22} {row['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
