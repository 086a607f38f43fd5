"""Where a lab instance keeps its state: /run/phonediag-lab/<instance>/state.json and friends."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path("/run/phonediag-lab")
ENV_INSTANCE = "PHONEDIAG_LAB"
INSTANCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def instance_from_env() -> str:
    """Return the instance selected by ``PHONEDIAG_LAB`` (default ``default``)."""
    return os.environ.get(ENV_INSTANCE) or "default"


def check_instance(name: str) -> str:
    """Validate an instance name (it becomes a directory name)."""
    if not INSTANCE_RE.match(name):
        raise ValueError(f"bad lab instance name {name!r} (letters, digits, '.', '_', '-')")
    return name


def state_dir(instance: str) -> Path:
    """Directory of one instance."""
    return ROOT / check_instance(instance)


@dataclass
class Proc:
    """A process the lab started: enough to find it again and kill it safely by PID."""

    name: str
    role: str
    pid: int
    start: int  # /proc/<pid>/stat starttime, guards against PID reuse
    log: str = ""


@dataclass
class State:
    """Everything ``down`` and ``run`` need to find a lab again."""

    instance: str
    scenario: str
    prefix: str
    status: str = "starting"
    # role -> namespace name, recorded before the namespaces are created
    namespaces: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    phones: list[dict[str, Any]] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)  # line -> secret (file is 0600)
    admin_passwords: dict[str, str] = field(default_factory=dict)  # role -> web login secret
    extra_uas: list[dict[str, Any]] = field(default_factory=list)  # SIP UAs that are not phones
    # The OVHcloud API stand-in's account file: credentials (secrets: file is 0600) and the
    # billing account with one line per office phone (lab/startup.py api_account).
    api: dict[str, Any] = field(default_factory=dict)
    # The fleet scenario's hosts (lab/fleet.py plan: phones, PCs, printer, switch); else empty.
    fleet: list[dict[str, Any]] = field(default_factory=list)
    # The portal's MQTT broker: its users' passwords (the agent's and the portal's; the
    # file is 0600), lab/services/mosquitto.py.
    mqtt: dict[str, str] = field(default_factory=dict)
    created: float = 0.0

    @property
    def dir(self) -> Path:
        """This instance's state directory."""
        return state_dir(self.instance)

    @property
    def path(self) -> Path:
        """The state.json file."""
        return self.dir / "state.json"

    def save(self) -> None:
        """Write state.json atomically (owner-only: it holds the line passwords)."""
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=1)
        tmp.replace(self.path)

    @classmethod
    def load(cls, instance: str) -> State:
        """Read an instance's state.json (FileNotFoundError when it is not up)."""
        data = json.loads((state_dir(instance) / "state.json").read_text())
        data["procs"] = [Proc(**p) for p in data.get("procs", [])]
        return cls(**data)


def instances() -> list[str]:
    """Names of the instances that have a state directory."""
    if not ROOT.is_dir():
        return []
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and INSTANCE_RE.match(p.name))
