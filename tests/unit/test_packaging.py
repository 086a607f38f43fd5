"""Packaging (packaging/, issue 11): what the wheel, the sdist and the single file must
hold, and what the Debian package's unit and scripts must say. The checks of built
artefacts skip when dist/ lacks them (`make packages` builds them); the rest is static
and fast. The artefacts are run in tests/lab/test_lab_packages.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from glob import glob
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
DEB = ROOT / "packaging" / "deb"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _package_dir(package: str) -> Path:
    """Where a package's files are in the repository (package-dir: agent.rulesdata is rules/)."""
    mapping = SETUPTOOLS.get("package-dir", {})
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in mapping:
            return ROOT / mapping[prefix] / Path(*parts[i:])
    return ROOT / Path(*parts)


def _source_files() -> dict[str, Path]:
    """Every file the distribution must ship, by its path inside the wheel: each package's
    modules and every data file beside them (anything but byte-code)."""
    files = {}
    for package in SETUPTOOLS["packages"]:
        where = _package_dir(package)
        inside = PurePosixPath(*package.split("."))
        for path in where.rglob("*"):
            if path.suffix == ".pyc":
                continue
            rel = path.relative_to(where)
            subpackage = any((where / p / "__init__.py").exists() for p in rel.parents if p.parts)
            if path.is_file() and "__pycache__" not in rel.parts and not subpackage:
                files[str(inside / rel.as_posix())] = path
    return files


def _built(pattern: str) -> Path:
    """The built artefact; skips when there is none, or when a source changed since it
    was built (`make unit` after an edit: `make packages` would rebuild it)."""
    found = sorted(DIST.glob(pattern))
    if not found:
        pytest.skip(f"no dist/{pattern}: run `make packages`")
    sources = [ROOT / "pyproject.toml", *_source_files().values()]
    if max(p.stat().st_mtime for p in sources) > found[-1].stat().st_mtime:
        pytest.skip(f"dist/{found[-1].name} is older than the sources: run `make packages`")
    return found[-1]


# ------------------------------------------------------------------- pyproject.toml
def test_every_package_under_agent_is_listed():
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "agent").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk | {"agent.rulesdata"} == set(SETUPTOOLS["packages"])


def test_every_data_file_is_package_data():
    """Each data file under agent/ and rules/ is matched by its package's package-data
    globs (a new data file or folder needs its glob, or the wheel leaves it out)."""
    globs = SETUPTOOLS["package-data"]
    missing = []
    for inside, path in _source_files().items():
        if path.suffix == ".py":
            continue
        package = next(
            p for p in sorted(SETUPTOOLS["packages"], key=len, reverse=True)
            if path.is_relative_to(_package_dir(p))
        )  # fmt: skip
        where = _package_dir(package)
        matched = {Path(m) for g in globs.get(package, []) for m in glob(str(where / g))}
        if path not in matched:
            missing.append(inside)
    assert missing == []


# ------------------------------------------------------------- the built wheel and sdist
def test_the_wheel_holds_every_module_and_data_file():
    wheel = _built("phonediag-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = z.read(entry).decode()
    assert sorted(set(_source_files()) - names) == []
    assert "agent/rulesdata/flows.toml" in names
    assert not [n for n in names if n.startswith(("lab/", "tests/", "benchmarks/"))]
    assert "phonediag = agent.cli:main" in scripts


def test_the_sdist_holds_the_sources_rules_and_packaging():
    sdist = _built("phonediag-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    wanted = {str(p.relative_to(ROOT)) for p in _source_files().values()}
    assert sorted(wanted - names) == []
    assert {"pyproject.toml", "README.md"} <= names


def test_the_single_file_holds_every_data_file():
    exe = _built("phonediag")
    viewer = ROOT / ".venv-build" / "bin" / "pyi-archive_viewer"
    if not viewer.exists():
        pytest.skip("no .venv-build (PyInstaller): run `make packages`")
    listing = subprocess.run(
        [str(viewer), "--list", "--recursive", "--brief", str(exe)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    entries = {line.strip() for line in listing.splitlines()}
    data = {inside for inside, path in _source_files().items() if path.suffix != ".py"}
    modules = {
        inside.removesuffix("/__init__.py").removesuffix(".py").replace("/", ".")
        for inside, path in _source_files().items()
        if path.suffix == ".py"
    }
    assert sorted(data - entries) == []
    assert sorted(modules - entries) == []  # agent.vendors.<id> etc., loaded by name
    lazy = {
        "pysnmp/smi/mibs/SNMPv2-MIB.py",  # pysnmp reads its MIBs as files
        "keyring.backends.SecretService",
        "keyring.backends.Windows",
        "anyio._backends._asyncio",
        "scapy.sendrecv",
        "paho.mqtt.client",
        "asyncssh.connection",  # [router] ssh, imported lazily
    }
    assert sorted(lazy - entries) == []


# ------------------------------------------------------------ the Debian package's files
def _unit() -> list[tuple[str, str, str]]:
    """phonediag.service as (section, key, value), in order (keys may repeat)."""
    section, out = "", []
    for line in (DEB / "phonediag.service").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def test_the_unit_runs_serve_as_its_own_user_with_cap_net_raw_only():
    service = {}
    for section, key, value in _unit():
        if section == "Service":
            service.setdefault(key, []).append(value)
    one = {k: v[-1] for k, v in service.items()}
    assert one["User"] == "phonediag" and one["Group"] == "phonediag"
    assert one["ExecStart"] == "/usr/bin/phonediag serve --config /etc/phonediag/phonediag.toml"
    assert one["AmbientCapabilities"] == "CAP_NET_RAW"
    assert one["CapabilityBoundingSet"] == "CAP_NET_RAW"
    assert one["RestrictAddressFamilies"].split() == [
        "AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK", "AF_PACKET"
    ]  # fmt: skip
    hardening = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes",
        "SystemCallArchitectures": "native", "StateDirectory": "phonediag",
        "ConfigurationDirectory": "phonediag", "Restart": "on-failure",
    }  # fmt: skip
    assert {k: one.get(k) for k in hardening} == hardening
    assert "ProcSubset" not in one  # it would hide /proc/net/arp, the neighbour table


def test_the_unit_has_only_keys_systemd_252_knows():
    """Debian 12's systemd (252) warns about keys it does not know (RestartSteps= and
    RestartMaxDelaySec= came in 254): the unit must stay clean there."""
    keys = {key for _, key, _ in _unit()}
    assert not keys & {"RestartSteps", "RestartMaxDelaySec", "MemoryDenyWriteExecute"}


def test_the_unit_passes_systemd_analyze_security_offline():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(DEB / "phonediag.service")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    level = re.search(r"Overall exposure level for phonediag\.service: ([\d.]+)", r.stdout)
    if level is None:
        pytest.skip(f"systemd-analyze security --offline does not work here: {r.stderr[:200]}")
    assert float(level.group(1)) <= 2.5, r.stdout
    # the only complaint verify may have before installation: the binary is not there yet
    unknown = [line for line in r.stderr.splitlines() if "Unknown" in line or "Invalid" in line]
    assert unknown == []


def test_the_maintainer_scripts_are_valid_sh_and_enable_nothing():
    for name in ("postinst", "prerm", "postrm"):
        script = DEB / name
        assert script.stat().st_mode & 0o111, name
        r = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, (name, r.stderr)
        text = script.read_text(encoding="utf-8")
        assert "systemctl enable" not in text and "systemctl start" not in text, name
    postinst = (DEB / "postinst").read_text(encoding="utf-8")
    assert "adduser --system --group" in postinst and "/usr/sbin/nologin" in postinst
    assert (DEB / "conffiles").read_text().split() == ["/etc/phonediag/phonediag.toml"]


def test_the_packaged_config_is_valid_and_keeps_the_state_in_var_lib():
    from agent import config

    cfg = config.load(str(DEB / "phonediag.toml"))
    assert cfg.store_path == "/var/lib/phonediag/phonediag.sqlite"
    assert cfg.networks == [] and cfg.remedies_portal_allowed == []  # the defaults
