"""Smoke tests of the three built artefacts (`make packages` -> dist/, packaging/build.sh):
the wheel installed by pipx in a fresh environment, the Debian package installed with
`dpkg -i` (and purged again), the single-file executable. Each runs `--help` and a
diagnosis of the lab's healthy office with the installed program, never the repository's.

Running without privileges is tested with the package's binary: as a plain user the ARP
sweep is skipped and the report says so; with CAP_NET_RAW alone (what phonediag.service
grants its user) the sweep runs.

Each artefact is built once and reused; a missing one skips its tests (run `make
packages`). Nothing is left on the machine: the package is purged, the system user it
created removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.discovery import arp
from agent.report import schema
from lab import Lab

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
BUILD = "run `make packages` (packaging/build.sh) to build it"
UNIT = "/lib/systemd/system/phonediag.service"
PACKAGE_PATHS = ("/opt/phonediag", "/etc/phonediag", "/var/lib/phonediag", UNIT)
# The artefacts have no jsonschema (a test dependency): the test checks the report itself.
NO_CHECK = {"PHONEDIAG_CHECK_SCHEMA": "0"}


def _one(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    if not found:
        pytest.skip(f"no dist/{pattern}: {BUILD}")
    return found[-1]


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def _ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0 and "Traceback" not in r.stderr, (r.args, r.stdout, r.stderr)
    return r


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab.up("healthy") as healthy:
        yield healthy


@pytest.fixture(scope="module")
def pipx_phonediag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pipx install` of the wheel into a fresh environment (a plain venv + pip where pipx
    is missing), offline from the wheelhouse: the console script's path."""
    wheel = _one("phonediag-*-py3-none-any.whl")
    home = tmp_path_factory.mktemp("pipx")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(DIST / "wheelhouse")}
    if shutil.which("pipx"):
        env |= {"PIPX_HOME": str(home / "home"), "PIPX_BIN_DIR": str(home / "bin"),
                "PIPX_MAN_DIR": str(home / "man")}  # fmt: skip
        # (offline, pipx's upgrade of its shared pip fails and says so: not fatal)
        r = _run(["pipx", "install", str(wheel)], env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        return home / "bin" / "phonediag"
    _ok(_run(["/usr/bin/python3", "-m", "venv", str(home / "venv")], timeout=120))
    _ok(_run([str(home / "venv/bin/pip"), "install", "--quiet", str(wheel)], env=env, timeout=300))
    return home / "venv" / "bin" / "phonediag"


def _installed(package: str) -> bool:
    r = _run(["dpkg-query", "-W", "-f=${Status}", package])
    return r.returncode == 0 and "ok installed" in r.stdout


def _exists(name: str, database: str) -> bool:
    return _run(["getent", database, name]).returncode == 0


def _purge() -> None:
    _run(["dpkg", "--purge", "phonediag"], timeout=120)


@pytest.fixture(scope="module")
def deb() -> Iterator[Path]:
    """The Debian package installed with `dpkg -i`; purged afterwards, and its system user
    removed if this test made it (the machine is left as it was found)."""
    package = _one("phonediag_*.deb")
    if os.geteuid() != 0 or shutil.which("dpkg") is None:
        pytest.skip("installing the Debian package needs root and dpkg")
    present = [p for p in PACKAGE_PATHS if Path(p).exists()]
    if _installed("phonediag") or present:
        pytest.skip(f"phonediag is already installed here ({present}): not touching it")
    had_user, had_group = _exists("phonediag", "passwd"), _exists("phonediag", "group")
    try:
        _ok(_run(["dpkg", "-i", str(package)], timeout=300))
        yield package
    finally:
        _purge()
        if not had_user and _exists("phonediag", "passwd"):
            _run(["deluser", "--system", "--quiet", "phonediag"])
        if not had_group and _exists("phonediag", "group"):
            _run(["delgroup", "--system", "--quiet", "phonediag"])


@pytest.fixture(scope="module")
def single_file() -> Path:
    exe = DIST / "phonediag"
    if not exe.is_file():
        pytest.skip(f"no dist/phonediag: {BUILD}")
    return exe


def _diagnosis(lab: Lab, exe: str, tmp_path: Path) -> dict:
    """`EXE diagnose --json` on the lab's agent host: a valid report listing every phone
    of the healthy office, and nothing wrong found."""
    r = lab.run([exe, "diagnose", "--json"], env=NO_CHECK, cwd=tmp_path, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    report = json.loads(r.stdout)
    assert schema.validate(report) == []
    devices = {d["ip"]: d for d in report["devices"]}
    assert set(devices) == {p["ip"] for p in lab.phones}, report["devices"]
    for phone in lab.phones:
        d = devices[phone["ip"]]
        assert (d["vendor"], d["model"]) == (phone["vendor"], phone["model"]), d
    assert (r.returncode, report["findings"]) == (0, []), r.stderr
    return report


def _help(exe: str, tmp_path: Path) -> None:
    r = _ok(_run([exe, "--help"], cwd=tmp_path, timeout=60))
    for command in ("discover", "diagnose", "troubleshoot", "serve", "rules"):
        assert re.search(rf"^\s+{command}\s", r.stdout, re.M), (command, r.stdout)


def _rules_test(exe: str, tmp_path: Path) -> None:
    r = _ok(_run([exe, "rules", "test", "--lang", "en"], cwd=tmp_path, timeout=120))
    assert re.search(r"\b[1-9]\d* valid rules, [1-9]\d* test cases pass", r.stdout), r.stdout


# ---------------------------------------------------------------------- pipx (the wheel)
def test_pipx_install_gives_a_working_phonediag(pipx_phonediag, tmp_path):
    _help(str(pipx_phonediag), tmp_path)
    _rules_test(str(pipx_phonediag), tmp_path)


def test_pipx_phonediag_diagnoses_the_lab(pipx_phonediag, lab, tmp_path):
    _diagnosis(lab, str(pipx_phonediag), tmp_path)


# ---------------------------------------------------------------------- the Debian package
def test_deb_installs_the_agent_its_config_unit_and_user(deb, tmp_path):
    _help("/usr/bin/phonediag", tmp_path)
    _rules_test("/usr/bin/phonediag", tmp_path)
    assert os.readlink("/usr/bin/phonediag") == "/opt/phonediag/bin/phonediag"
    user = _run(["getent", "passwd", "phonediag"]).stdout.strip().split(":")
    assert user[5:] == ["/var/lib/phonediag", "/usr/sbin/nologin"], user
    assert int(user[2]) < 1000  # a system user
    state = Path("/var/lib/phonediag").stat()
    assert (state.st_uid, oct(state.st_mode & 0o777)) == (int(user[2]), "0o750")
    conf = Path("/etc/phonediag/phonediag.toml").stat()
    assert (conf.st_uid, conf.st_gid, oct(conf.st_mode & 0o777)) == (0, int(user[3]), "0o640")
    conffiles = _run(["dpkg-query", "-W", "-f=${Conffiles}", "phonediag"]).stdout
    assert "/etc/phonediag/phonediag.toml" in conffiles
    assert Path(UNIT).is_file()
    # nothing enabled or started by the package
    assert not Path("/etc/systemd/system/multi-user.target.wants/phonediag.service").exists()


# The service's privileges (phonediag.service): user phonediag, CAP_NET_RAW ambient and the
# only one in the bounding set, no new privileges.
SERVICE_USER = [
    "setpriv", "--reuid=phonediag", "--regid=phonediag", "--clear-groups",
    "--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw",
    "--bounding-set=-all,+net_raw", "--no-new-privs",
]  # fmt: skip


def test_deb_service_command_reads_its_config_and_wants_enrolment(deb, tmp_path):
    """The unit's ExecStart, as its user: the configuration (0640 root:phonediag) is
    readable, and an agent not yet enrolled stops with exit 2, which the unit does not
    restart (RestartPreventExitStatus=2)."""
    unit = Path(UNIT).read_text(encoding="utf-8")
    command = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
    assert "RestartPreventExitStatus=2" in unit
    # the unit's own environment (systemd sets it; here by hand)
    env = dict(re.findall(r"^Environment=(\w+)=(.*)$", unit, re.M))
    r = _run([*SERVICE_USER, *command], cwd=tmp_path, timeout=60,
             env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **env})  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, (r.stdout, r.stderr)
    assert r.stderr.startswith("phonediag: ") and "/var/lib/phonediag/portal" in r.stderr


def _systemd_analyze_usable() -> str | None:
    """Why `systemd-analyze verify` cannot be used here (None: it can)."""
    if shutil.which("systemd-analyze") is None:
        return "systemd-analyze is not installed (package systemd)"
    r = _run(["systemd-analyze", "verify", "/lib/systemd/system/systemd-journald.service"])
    if r.returncode != 0:
        return f"systemd-analyze verify does not work here: {r.stderr.strip()[:200]}"
    return None


def test_deb_unit_passes_systemd_analyze(deb):
    why = _systemd_analyze_usable()
    if why:
        pytest.skip(why)
    r = _run(["systemd-analyze", "verify", UNIT], timeout=60)
    mine = [line for line in r.stderr.splitlines() if "phonediag" in line]
    assert r.returncode == 0 and mine == [], r.stderr
    r = _run(["systemd-analyze", "security", "--offline=yes", UNIT], timeout=60)
    level = re.search(r"Overall exposure level for phonediag\.service: ([\d.]+)", r.stdout)
    assert level, r.stdout + r.stderr
    assert float(level.group(1)) <= 2.5, r.stdout  # "OK" (systemd: < 4.4 is "MEDIUM")


def test_deb_phonediag_diagnoses_the_lab(deb, lab, tmp_path):
    _diagnosis(lab, "/usr/bin/phonediag", tmp_path)


# Without raw-socket rights: a plain user, as in tests/lab/test_agent_discovery.py. The
# lab's config sits in its owner-only folder: the defaults do for a discovery.
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PLAIN_ENV = {**NO_CHECK, "PHONEDIAG_CONFIG": "", "HOME": "/nonexistent", "NO_COLOR": "1"}


def test_deb_unprivileged_discovery_reads_the_neighbour_table_and_says_so(deb, lab, tmp_path):
    lab.exec("agent", ["ip", "neigh", "flush", "all"])
    r = lab.run([*AS_NOBODY, "/usr/bin/phonediag", "discover", "--json"],
                env=PLAIN_ENV, cwd=tmp_path, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    devices = {d["ip"]: d for d in json.loads(r.stdout)["devices"]}
    assert set(devices) == {p["ip"] for p in lab.phones}
    for d in devices.values():
        assert d["evidence"]["arp"] == {"via": "table", "sweep": arp.NO_RIGHTS}, d
        assert d["mac"], d  # the table still gives each phone's MAC (hence its maker)
    # the technician's view: --verbose shows where ARP came from and why
    r = lab.run([*AS_NOBODY, "/usr/bin/phonediag", "discover", "--verbose", "--lang", "en"],
                env=PLAIN_ENV, cwd=tmp_path, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert f"sweep: {arp.NO_RIGHTS}" in r.stdout and "via: table" in r.stdout, r.stdout


def test_deb_with_cap_net_raw_only_the_arp_sweep_runs(deb, lab, tmp_path):
    """With the service's privileges (SERVICE_USER): enough for the sweep."""
    lab.exec("agent", ["ip", "neigh", "flush", "all"])
    r = lab.run([*SERVICE_USER, "/usr/bin/phonediag", "discover", "--json"],
                env=PLAIN_ENV, cwd=tmp_path, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    devices = {d["ip"]: d for d in json.loads(r.stdout)["devices"]}
    assert set(devices) == {p["ip"] for p in lab.phones}
    for d in devices.values():
        assert d["evidence"]["arp"]["via"] == "sweep", d


def test_deb_purge_leaves_nothing(deb):
    _purge()
    assert not _installed("phonediag")
    assert [p for p in (*PACKAGE_PATHS, "/usr/bin/phonediag") if os.path.lexists(p)] == []
    statoverrides = _run(["dpkg-statoverride", "--list"]).stdout
    assert "phonediag" not in statoverrides


# ---------------------------------------------------------------------- the single file
def test_single_file_runs_help_and_its_rule_tests(single_file, tmp_path):
    _help(str(single_file), tmp_path)
    _rules_test(str(single_file), tmp_path)


def test_single_file_diagnoses_the_lab(single_file, lab, tmp_path):
    _diagnosis(lab, str(single_file), tmp_path)
