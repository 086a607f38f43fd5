"""The router's SSH face: Debian's OpenSSH sshd in the router namespace, as on a Linux
office router (OpenWrt's dropbear answers the same way), for the agent's [router] ssh.

Per lab, in the state dir's ``router-ssh/``: a host key and a client key made with
ssh-keygen, ``authorized_keys`` holding the client key, and sshd's config: root may log
in with a key only (``PermitRootLogin prohibit-password``), on 10.66.0.1:22 only,
``LogLevel DEBUG1`` so that the log shows every authentication request
(``userauth-request``), or that there was none.

sshd needs its privilege-separation folder ``/run/sshd``, which must not be made in the
machine's own /run: it runs in a private mount namespace with a tmpfs on /run
(knowledge/lab-recipe.md §6). The lab's state dir lives under /run too, so its folder is
bound back in place first (through ``/proc/self/cwd``, the tmpfs hiding it otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

from lab import probes, procs
from lab.state import Proc

PROC_NAME = "sshd"
ROLE = "rtr"
PORT = 22
USER = "root"
SSHD = "/usr/sbin/sshd"
HOST_KEY = "ssh_host_ed25519_key"
CLIENT_KEY = "client_ed25519"

# In a private mount namespace: keep the key folder at its path, then /run/sshd on a tmpfs.
_START = (
    'cd "$1" && mount -t tmpfs -o mode=755 tmpfs /run'
    ' && mkdir -p -m 755 /run/sshd "$1"'
    ' && mount --no-canonicalize --bind /proc/self/cwd "$1"'
    f' && exec {SSHD} -D -e -f "$1/sshd_config"'
)


def folder(state_dir: Path) -> Path:
    return state_dir / "router-ssh"


def client_key(state_dir: Path) -> Path:
    """The private key the agent logs in with ([router] key)."""
    return folder(state_dir) / CLIENT_KEY


def log_file(state_dir: Path) -> Path:
    """sshd's log (DEBUG1): connections, key exchanges, authentication requests."""
    return state_dir / "logs" / f"{ROLE}-sshd.log"


def agent_config(state_dir: Path, ip: str) -> str:
    """The agent's [router] section: root@IP with the lab's client key."""
    return f'[router]\nssh = "{USER}@{ip}"\nkey = "{client_key(state_dir)}"\n'


def render(state_dir: Path, ip: str) -> str:
    """sshd_config for the router."""
    d = folder(state_dir)
    return (
        f"ListenAddress {ip}\n"
        f"Port {PORT}\n"
        f"HostKey {d / HOST_KEY}\n"
        f"PidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "PrintMotd no\n"
        "DebianBanner no\n"
        "LogLevel DEBUG1\n"
        # Root's shell here is bash, which reads ~/.bashrc for an SSH command when SHLVL < 2:
        # a developer's .bashrc (pyenv...) would cost ~0.4 s per command, where a router's
        # busybox sh costs nothing.
        "SetEnv SHLVL=1\n"
    )


def _keygen(path: Path, comment: str) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def fingerprint(public_key_file: Path) -> str:
    """``SHA256:…`` of an OpenSSH public key file (as ssh-keygen -l and the agent show it)."""
    blob = base64.b64decode(public_key_file.read_text().split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def host_fingerprint(state_dir: Path) -> str:
    """The fingerprint of the router's current host key."""
    return fingerprint(folder(state_dir) / f"{HOST_KEY}.pub")


def new_host_key(state_dir: Path) -> str:
    """A new host key for the router (the old one is gone); returns its fingerprint."""
    _keygen(folder(state_dir) / HOST_KEY, "router")
    return host_fingerprint(state_dir)


def spawn(ns: str, state_dir: Path) -> Proc:
    """Start sshd with the files already in place (see :func:`start`)."""
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", _START, "sshd-lab"]
    argv.append(str(folder(state_dir)))
    return procs.spawn(PROC_NAME, ROLE, ns, argv, log_file(state_dir))


def start(ns: str, ip: str, state_dir: Path) -> Proc:
    """Make the keys, authorized_keys and sshd_config, then start sshd listening on ip:22."""
    d = folder(state_dir)
    d.mkdir(mode=0o700, exist_ok=True)
    _keygen(d / HOST_KEY, "router")
    _keygen(d / CLIENT_KEY, "phonediag-agent")
    (d / "authorized_keys").write_text((d / f"{CLIENT_KEY}.pub").read_text())
    (d / "sshd_config").write_text(render(state_dir, ip))
    return spawn(ns, state_dir)


def reachable(agent_ns: str, ip: str) -> Callable[[], bool]:
    """A ready check: sshd accepts TCP connections on ip:22, from the agent host."""

    return lambda: probes.tcp_open(agent_ns, ip, PORT)
