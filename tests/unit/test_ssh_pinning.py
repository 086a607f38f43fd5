"""The router read over SSH ([router] ssh, issue 12): host keys pinned on first use and
said, a changed key refused before any login is sent, every failure an error entry.

Against a real OpenSSH sshd on 127.0.0.1, inside the test session's private network
namespace (``unshare -n``), itself in a private mount namespace with a tmpfs on /run for
its /run/sshd (knowledge/lab-recipe.md §6); its log (LogLevel DEBUG1) shows every
authentication request, or that there was none. Every process started here is ended by
its own process group."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent import judge
from agent.config import Config, ConfigError, load
from agent.model import UNKNOWN, Fact, Report
from agent.net import ssh
from agent.probes import Context, router
from agent.report import text
from agent.scope import ScopedNetwork

SSHD = "/usr/sbin/sshd"
EXE = str(Path(sys.executable).with_name("phonediag"))
LOOPBACK = ScopedNetwork(ipaddress.IPv4Network("127.0.0.0/8"), "lo", "127.0.0.1")
PASSWORD = "Tr0ub4dor-and-3-more"

needs_sshd = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SSHD).exists() or shutil.which("unshare") is None,
    reason="needs root, OpenSSH's sshd (openssh-server) and unshare",
)


def _keygen(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _fingerprint(pub: Path) -> str:
    import base64
    import hashlib

    blob = base64.b64decode(pub.read_text().split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """sshd on 127.0.0.1:port, root logs in with ``client`` only (prohibit-password)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.log = base / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        _keygen(base / "hostkey")
        _keygen(base / "client")
        _keygen(base / "stranger")  # a key sshd does not know
        (base / "authorized_keys").write_text((base / "client.pub").read_text())
        (base / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {base / 'hostkey'}\n"
            f"PidFile {base / 'sshd.pid'}\nAuthorizedKeysFile {base / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel DEBUG1\n"
            "SetEnv SHLVL=1\n"  # no ~/.bashrc for commands: see lab/services/sshd.py
        )

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.base / "hostkey.pub")

    def start(self) -> None:
        script = (
            "mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd"
            f' && exec {SSHD} -D -e -f "$1"'
        )
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sshd-test"]
        argv.append(str(self.base / "sshd_config"))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1
        listening = f"Server listening on 127.0.0.1 port {self.port}"
        deadline = time.monotonic() + 10
        while self.log_text().count(listening) < self.starts:
            assert self.proc.poll() is None, self.log_text()
            assert time.monotonic() < deadline, self.log_text()
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # sshd and its connections: our group
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def new_host_key(self) -> None:
        """The router was reset (or someone answers in its place): a new key, restarted."""
        self.stop()
        _keygen(self.base / "hostkey")
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def sshd(tmp_path: Path):
    server = Sshd(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _config(tmp_path: Path, target: str, **kw: object) -> Config:
    cfg = Config(router_ssh=target, store_path=str(tmp_path / "store" / "phonediag.sqlite"))
    cfg.router_ssh_key = str(tmp_path / "client")
    cfg.router_ssh_timeout = 2.0
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _probe(cfg: Config, networks=(LOOPBACK,), commands=None) -> tuple[dict, Context, float]:
    ctx = Context(cfg, list(networks), [])
    start = time.monotonic()
    facts = asyncio.run(router.probe(ctx, commands))
    elapsed = time.monotonic() - start
    assert len({f.key for f in facts}) == len(facts), facts  # one fact per key
    return {f.key: f for f in facts}, ctx, elapsed


def _known_hosts(cfg: Config) -> Path:
    return ssh.known_hosts_path(cfg.store_path)


def _text_report(facts: dict, lang: str = "en") -> str:
    report = Report(facts=list(facts.values()))
    out = io.StringIO()
    text.render(report, lang, text.console(out), diagnosis=True)
    return out.getvalue()


def _cli(cfg_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PHONEDIAG_CONFIG"}
    return subprocess.run(
        [EXE, "ssh", *args, "--config", str(cfg_file), "--lang", "en"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


# ---------------------------------------------------------------- pinning, end to end
@needs_sshd
def test_first_use_pins_and_says_so_then_the_same_key_proceeds_silently(sshd, tmp_path):
    cfg = _config(tmp_path, f"root@127.0.0.1:{sshd.port}")
    facts, ctx, _ = _probe(cfg)
    assert ctx.errors == []
    where = f"127.0.0.1:{sshd.port}"
    assert facts["router.ssh_host"].value == where
    assert facts["router.ssh_hostkey"].value == sshd.fingerprint
    assert facts["router.ssh_hostkey_pinned"].value == sshd.fingerprint
    assert facts["router.ssh_hostkey_pinned_now"].value is True
    assert facts["router.ssh_hostkey_changed"].value is False
    assert "pinned now" in facts["router.ssh_hostkey"].evidence
    # the file: OpenSSH's syntax, owner-only
    kh = _known_hosts(cfg)
    assert kh.parent == Path(cfg.store_path).parent
    assert kh.stat().st_mode & 0o777 == 0o600
    line = kh.read_text().splitlines()
    assert len(line) == 1 and line[0].startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    # the router's readings, as this namespace's kernel has them
    assert isinstance(facts["router.udp_timeout"].value, int)
    assert isinstance(facts["router.udp_timeout_unreplied"].value, int)
    assert "$ cat /proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream: " in (
        facts["router.udp_timeout"].evidence
    )
    helper = facts["router.sip_helper"].value
    assert helper is False if shutil.which("nft") else helper is UNKNOWN
    # said in the text report, in both languages
    assert f"Router {where}: SSH host key pinned on this first connection" in _text_report(facts)
    assert sshd.fingerprint in _text_report(facts)
    assert "clé d'hôte SSH enregistrée" in _text_report(facts, "fr")

    again, ctx, _ = _probe(cfg)
    assert ctx.errors == []
    assert again["router.ssh_hostkey_pinned_now"].value is False
    assert again["router.ssh_hostkey_changed"].value is False
    assert again["router.ssh_hostkey"].value == sshd.fingerprint
    assert "same key" in again["router.ssh_hostkey"].evidence
    assert "pinned" not in _text_report(again)  # known and equal: nothing to say
    assert len(kh.read_text().splitlines()) == 1


@needs_sshd
def test_a_changed_key_is_refused_before_any_login_then_forget_pins_again(sshd, tmp_path):
    cfg = _config(tmp_path, f"root@127.0.0.1:{sshd.port}", router_ssh_password=PASSWORD)
    _probe(cfg)
    old = sshd.fingerprint
    sshd.new_host_key()
    new = sshd.fingerprint
    assert new != old
    before = len(sshd.log_text())

    facts, ctx, _ = _probe(cfg)
    where = f"127.0.0.1:{sshd.port}"
    changed = facts["router.ssh_hostkey_changed"]
    assert changed.value is True
    assert old in changed.evidence and new in changed.evidence
    assert facts["router.ssh_hostkey"].value == new
    assert facts["router.ssh_hostkey_pinned"].value == old
    assert facts["router.ssh_hostkey_pinned_now"].value is False
    for key in ("router.udp_timeout", "router.sip_helper"):
        assert facts[key].value is UNKNOWN  # not read: never logged in
    [error] = ctx.errors
    assert error.step == "probe.router" and "refused" in error.reason
    assert old in error.reason and new in error.reason
    assert f"phonediag ssh forget {where}" in error.reason
    assert PASSWORD not in error.reason + json.dumps([f.to_dict() for f in facts.values()])
    # sshd saw a connection and its key exchange, and no authentication request at all
    log = sshd.log_text()[before:]
    assert "Connection from 127.0.0.1" in log, log
    assert "Received disconnect from 127.0.0.1" in log and "Host key is not trusted" in log, log
    assert "userauth-request" not in log and "Accepted" not in log and "Failed" not in log, log
    # the finding, with both fingerprints and the way out
    rules, _ = judge.load_all()
    found = {f.rule: f for f in judge.judge(rules, list(facts.values()), [], "en")}
    finding = found["router-host-key-changed"]
    assert finding.severity == "warning"
    assert old in finding.explanation and new in finding.explanation
    assert any(f"phonediag ssh forget {where}" in step for step in finding.remedies)
    fr = judge.judge(rules, list(facts.values()), [], "fr")
    assert any("La clé SSH du routeur a changé" in f.title for f in fr)
    assert len(_known_hosts(cfg).read_text().splitlines()) == 1  # nothing added

    # `phonediag ssh list` shows it; `forget` removes it; the next run pins the new key
    cfg_file = tmp_path / "phonediag.toml"
    cfg_file.write_text(f'[store]\npath = "{cfg.store_path}"\n')
    listed = _cli(cfg_file, "list")
    assert listed.returncode == 0 and f"[127.0.0.1]:{sshd.port}" in listed.stdout
    assert old in listed.stdout
    keys = json.loads(_cli(cfg_file, "list", "--json").stdout)["keys"]
    assert keys == [{"hosts": [f"[127.0.0.1]:{sshd.port}"], "type": "ssh-ed25519",
                     "fingerprint": old}]  # fmt: skip
    forgotten = _cli(cfg_file, "forget", where)
    assert forgotten.returncode == 0, forgotten.stderr
    assert old in forgotten.stdout and "Key forgotten" in forgotten.stdout
    assert _known_hosts(cfg).read_text() == ""
    again = _cli(cfg_file, "forget", where)
    assert again.returncode == 2 and "no key pinned" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    facts, ctx, _ = _probe(cfg)
    assert ctx.errors == []
    assert facts["router.ssh_hostkey_pinned_now"].value is True
    assert facts["router.ssh_hostkey"].value == new
    assert facts["router.ssh_hostkey_changed"].value is False


@needs_sshd
def test_a_first_key_that_cannot_be_pinned_is_never_logged_in_to(sshd, tmp_path, monkeypatch):
    def full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ssh, "pin", full)
    cfg = _config(tmp_path, f"root@127.0.0.1:{sshd.port}")
    before = len(sshd.log_text())
    facts, ctx, elapsed = _probe(cfg)
    [error] = ctx.errors
    assert error.reason.endswith("No space left on device; not logged in"), error.reason
    assert facts["router.ssh_hostkey_pinned_now"].value is False  # said as it is
    assert "ended before the key could be pinned" in facts["router.ssh_hostkey"].evidence
    assert elapsed < 2.0
    time.sleep(0.2)  # sshd logs the end of the connection
    log = sshd.log_text()[before:]
    assert "Connection from 127.0.0.1" in log and "userauth-request" not in log, log


@needs_sshd
def test_a_router_with_several_host_keys_shows_the_pinned_one(sshd, tmp_path):
    """Pinned key types are offered first (as OpenSSH does): adding an RSA key to the router
    is no "change"."""
    cfg = _config(tmp_path, f"root@127.0.0.1:{sshd.port}")
    _probe(cfg)
    rsa = tmp_path / "hostkey_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)],
                   check=True, capture_output=True)  # fmt: skip
    conf = tmp_path / "sshd_config"
    conf.write_text(f"HostKey {rsa}\n" + conf.read_text())  # RSA first in the server's list
    sshd.restart()  # the same ed25519 key, and an RSA one
    facts, ctx, _ = _probe(cfg)
    assert ctx.errors == []
    assert facts["router.ssh_hostkey_changed"].value is False
    assert facts["router.ssh_hostkey"].value == sshd.fingerprint


# ---------------------------------------------------------------- failures
@needs_sshd
def test_a_login_refused_is_an_error_entry_without_the_password(sshd, tmp_path):
    cfg = _config(
        tmp_path,
        f"admin@127.0.0.1:{sshd.port}",
        router_ssh_key=str(tmp_path / "stranger"),
        router_ssh_password=PASSWORD,
    )
    facts, ctx, elapsed = _probe(cfg)
    [error] = ctx.errors
    assert "login refused for user admin" in error.reason, error.reason
    assert PASSWORD not in error.reason
    assert facts["router.udp_timeout"].value is UNKNOWN
    assert facts["router.sip_helper"].value is UNKNOWN
    assert facts["router.ssh_hostkey_pinned_now"].value is True  # the key was proven: pinned
    assert elapsed < 2.0 * 2


@needs_sshd
def test_a_command_that_does_not_end_is_cut_at_its_timeout(sshd, tmp_path):
    cfg = _config(tmp_path, f"root@127.0.0.1:{sshd.port}", router_ssh_timeout=1.0)
    commands = {"udp_timeout_stream": "sleep 30", "udp_timeout": "echo 30", "nft": "nft-nope x"}
    facts, ctx, elapsed = _probe(cfg, commands=commands)
    assert elapsed < router.budget(cfg), elapsed
    reasons = [e.reason for e in ctx.errors]
    assert any(r.startswith("sleep 30: no end within 1 s") for r in reasons), reasons
    assert any(r.startswith("nft-nope x: command not found (exit 127)") for r in reasons), reasons
    assert facts["router.udp_timeout"].value is UNKNOWN
    assert facts["router.udp_timeout_unreplied"].value == 30
    assert facts["router.sip_helper"].value is UNKNOWN  # nft missing: unknown, not false
    assert "command not found" in facts["router.sip_helper"].evidence


@needs_sshd
def test_output_is_capped(sshd, tmp_path):
    target = ssh.Target("root", "127.0.0.1", sshd.port)
    result = asyncio.run(
        ssh.run(target, ["head -c 5000000 /dev/zero", "echo after"],
                known_hosts=tmp_path / "kh", timeout=3.0, key_file=str(tmp_path / "client"),
                max_bytes=1000)
    )  # fmt: skip
    assert result.error is None
    big, after = result.outputs
    assert len(big.stdout) == 1000 and big.error == "stdout cut at 1000 bytes"
    assert after.status == 0 and after.stdout == "after\n"


def test_unreachable_host_wrong_port_and_silent_server_end_within_the_timeout(tmp_path):
    _keygen(tmp_path / "client")
    lan = ScopedNetwork(ipaddress.IPv4Network("10.99.0.0/24"), "eth9", "10.99.0.100")
    cfg = _config(tmp_path, "root@10.99.0.1", router_ssh_timeout=0.5)
    facts, ctx, elapsed = _probe(cfg, networks=(lan,))  # no route in this namespace
    [error] = ctx.errors
    assert error.reason.startswith("10.99.0.1: ") and "Traceback" not in error.reason
    assert facts["router.ssh_hostkey_changed"].value is UNKNOWN
    assert elapsed < 0.5 + 1

    closed = _free_port()
    cfg = _config(tmp_path, f"root@127.0.0.1:{closed}", router_ssh_timeout=0.5)
    _facts, ctx, elapsed = _probe(cfg)
    [error] = ctx.errors
    assert (
        error.reason == f"127.0.0.1:{closed}: connection refused (no SSH server on port {closed})"
    )
    assert elapsed < 0.5 + 1

    with socket.socket() as silent:  # accepts the connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        cfg = _config(tmp_path, f"root@127.0.0.1:{port}", router_ssh_timeout=0.5)
        _facts, ctx, elapsed = _probe(cfg)
    [error] = ctx.errors
    assert error.reason == f"127.0.0.1:{port}: no SSH answer within 0.5 s"
    assert elapsed < 0.5 + 1
    assert router.budget(cfg) >= 0.5 * (1 + len(router.COMMANDS))
    assert not _known_hosts(cfg).read_text()  # nothing pinned: no key was ever shown


def test_outside_the_scope_nothing_is_sent(tmp_path):
    lan = ScopedNetwork(ipaddress.IPv4Network("10.99.0.0/24"), "eth9", "10.99.0.100")
    cfg = _config(tmp_path, "root@192.168.7.1")
    facts, ctx, _ = _probe(cfg, networks=(lan,))
    [error] = ctx.errors
    assert "outside the networks scanned (10.99.0.0/24): not contacted" in error.reason
    assert facts["router.sip_helper"].value is UNKNOWN
    assert not _known_hosts(cfg).exists()  # not even the file: nothing was attempted
    for addr in ("10.99.0.0", "10.99.0.255"):  # the network and broadcast addresses
        _facts, ctx, _ = _probe(_config(tmp_path, f"root@{addr}"), networks=(lan,))
        assert "outside the networks scanned" in ctx.errors[0].reason


def test_not_configured_means_no_attempt(tmp_path):
    facts, ctx, _ = _probe(Config(store_path=str(tmp_path / "s.sqlite")))
    assert facts == {} and ctx.errors == []
    assert router.budget(Config()) == 1.0


def test_a_missing_key_file_is_an_error_entry(tmp_path):
    cfg = _config(tmp_path, "root@127.0.0.1:2")
    _facts, ctx, _ = _probe(cfg)
    [error] = ctx.errors
    assert error.reason.startswith(f"private key file {tmp_path / 'client'}: ")


# ---------------------------------------------------------------- the configuration
def _load(tmp_path: Path, body: str) -> Config:
    path = tmp_path / "c.toml"
    path.write_text(body)
    return load(path)


def test_router_config_is_checked_and_never_quotes_the_password(tmp_path):
    cfg = _load(tmp_path, '[router]\nssh = "root@10.66.0.1"\nkey = "/k"\n')
    assert (cfg.router_ssh, cfg.router_ssh_key, cfg.router_ssh_timeout) == (
        "root@10.66.0.1",
        "/k",
        None,
    )
    assert router.timeout_of(cfg) == cfg.timeout  # [discovery] timeout by default
    cfg = _load(tmp_path, '[router]\nssh = "admin@192.168.1.1:2222"\npassword = "x"\ntimeout = 3\n')
    assert router.timeout_of(cfg) == 3.0
    assert "router_ssh_password" not in repr(cfg)
    assert ssh.parse_target(cfg.router_ssh or "") == ssh.Target("admin", "192.168.1.1", 2222)
    bad = {
        '[router]\nssh = "root@8.8.8.8"\nkey = "/k"\n': "8.8.8.8 is not a private address",
        '[router]\nssh = "root@127.0.0.1"\nkey = "/k"\n': "127.0.0.1 is not a private address",
        '[router]\nssh = "root@router.lan"\nkey = "/k"\n': "is not an IPv4 address",
        '[router]\nssh = "10.66.0.1"\nkey = "/k"\n': "must be user@host[:port]",
        '[router]\nssh = "root@10.66.0.1:0"\nkey = "/k"\n': "is not a port number",
        '[router]\nssh = "root@10.66.0.1:99999"\nkey = "/k"\n': "is not a port number",
        '[router]\nssh = "root@10.66.0.1"\n': "needs router.key",
        f'[router]\npassword = "{PASSWORD}"\n': "router.password needs router.ssh",
        '[router]\nkey = "/k"\n': "router.key needs router.ssh",
        '[router]\nssh = "root@10.66.0.1"\nkey = "/k"\ntimeout = 0\n': "must be positive",
        '[router]\nssh = "root@10.66.0.1"\nkey = "/k"\nport = 22\n': "unknown setting router.port",
    }
    for body, why in bad.items():
        with pytest.raises(ConfigError) as e:
            _load(tmp_path, body)
        assert why in str(e.value) and "c.toml" in str(e.value), (body, e.value)
        assert PASSWORD not in str(e.value)


def test_the_router_password_is_masked_in_bundles_and_evidence():
    from agent import bundle
    from agent.report.evidence import Masker, config_secrets

    cfg = Config(router_ssh="root@10.66.0.1", router_ssh_password=PASSWORD)
    assert PASSWORD in config_secrets(cfg)
    assert Masker(config_secrets(cfg)).text(f"login {PASSWORD} failed") == "login *** failed"
    dumped = bundle.config_toml(cfg)
    assert PASSWORD not in dumped and 'password = "***"' in dumped
    assert 'ssh = "root@10.66.0.1"' in dumped
    # the facts' names read as no secret: their values stay readable
    m = Masker()
    for key in router.HOSTKEY_FACTS:
        assert m("SHA256:abc", key) == "SHA256:abc", key


# ---------------------------------------------------------------- known_hosts
def test_known_hosts_reads_openssh_syntax_and_forget_keeps_other_hosts(tmp_path):
    import base64
    import hashlib
    import hmac

    blob = base64.b64decode("AAAAC3NzaC1lZDI1NTE5AAAAILcVsxKdUvj8doDvBfVzRUwl9jSLUCAsjs665Oj2GJAu")
    b64 = base64.b64encode(blob).decode()
    salt = b"0123456789abcdef0123"
    hashed = hmac.new(salt, b"[10.0.0.9]:2222", hashlib.sha1).digest()
    path = tmp_path / "known_hosts"
    hashed_name = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(hashed).decode()}"
    path.write_text(
        "# a comment\n\n"
        f"10.0.0.1,other.lan ssh-ed25519 {b64} someone\n"
        f"{hashed_name} ssh-ed25519 {b64}\n"
        f"@revoked 10.0.0.1 ssh-ed25519 {b64}\n"
        "garbage line\n"
    )
    entries = ssh.read_known_hosts(path)
    assert len(entries) == 3
    one = ssh.Target("root", "10.0.0.1")
    nine = ssh.Target("root", "10.0.0.9", 2222)
    assert [e.line for e in ssh.pinned_for(entries, one)] == [3]  # @revoked is no pin
    assert [e.line for e in ssh.pinned_for(entries, nine)] == [4]  # hashed name
    assert ssh.pinned_for(entries, ssh.Target("root", "10.0.0.9")) == []  # port 22: another
    assert entries[0].fingerprint == ssh.fingerprint(blob)
    removed = ssh.forget(path, one)
    assert [e.line for e in removed] == [3]
    text_after = path.read_text()
    assert f"other.lan ssh-ed25519 {b64} someone\n" in text_after  # the other name is kept
    assert f"@revoked 10.0.0.1 ssh-ed25519 {b64}" in text_after
    assert ssh.forget(path, nine) and ssh.pinned_for(ssh.read_known_hosts(path), nine) == []
    assert path.stat().st_mode & 0o777 == 0o600


def test_forget_refuses_a_bad_host_with_exit_2(tmp_path):
    cfg_file = tmp_path / "phonediag.toml"
    cfg_file.write_text(f'[store]\npath = "{tmp_path / "phonediag.sqlite"}"\n')
    for host in ("router.lan", "10.0.0.1:70000", ""):
        r = _cli(cfg_file, "forget", host)
        assert r.returncode == 2 and "invalid host" in r.stderr, (host, r.stderr)
        assert "Traceback" not in r.stderr
    r = _cli(cfg_file, "list")
    assert r.returncode == 0 and "No SSH host key pinned" in r.stdout


# ---------------------------------------------------------------- the SIP helper, as read
SIP_ALG_RULESET = """table ip nat {
\tchain post {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname "wan0" masquerade
\t}
}
table ip alg {
\tct helper sip5060 {
\t\ttype "sip" protocol udp
\t\tl3proto ip
\t}

\tchain pre {
\t\ttype filter hook prerouting priority filter; policy accept;
\t\tiifname "lan0" udp dport 5060 ct helper set "sip5060"
\t}
}
"""


def _out(stdout: str = "", status: int = 0, stderr: str = "") -> ssh.Output:
    return ssh.Output("cmd", status, stdout, stderr)


@pytest.mark.parametrize(
    ("outputs", "want", "said"),
    [
        ({"nft": _out(SIP_ALG_RULESET)}, True, 'ct helper set "sip5060"'),
        ({"nft": _out(SIP_ALG_RULESET.split("table ip alg")[0])}, False, "no ct helper"),
        (
            {"nft": _out(SIP_ALG_RULESET.replace('ct helper set "sip5060"', "accept"))},
            False,
            "assigned by no rule",
        ),
        ({"nft": _out("", 127, "sh: 1: nft: not found")}, UNKNOWN, "command not found"),
        ({"nft": _out("", 1, "Operation not permitted")}, UNKNOWN, "exit status 1"),
        ({"nft": ssh.Output("nft", None, SIP_ALG_RULESET[:40], "", "stdout cut")}, UNKNOWN, "cut"),
        ({"nft": _out('table ip raw {\n  xt target "CT"\n}\n')}, UNKNOWN, "CT"),
        (
            {
                "nft": _out(""),
                "modules": _out("nf_conntrack_sip 40960 0 - Live 0x0\n"),
                "iptables_tables": _out("raw\nfilter\n"),
            },
            UNKNOWN,
            "legacy iptables",
        ),
        (
            {
                "nft": _out("", 127),
                "modules": _out("nf_conntrack_sip 40960 0 - Live 0x0\n"),
                "helper_auto": _out("1\n"),
            },
            True,
            "automatic helper assignment",
        ),
        ({"nft": _out(""), "modules": _out("nf_nat 1 0 - Live\n")}, False, "no nf_conntrack_sip"),
    ],
)
def test_the_sip_helper_is_true_false_or_unknown(outputs, want, said):
    helper = router.sip_helper(outputs)
    assert helper.value is want, helper
    assert said in helper.evidence, helper.evidence


def test_router_readings_make_the_nat_findings_without_the_reflector():
    def findings(**facts: object) -> dict:
        rules, _ = judge.load_all()
        got = [Fact("site", k.replace("_", ".", 1), v, "router") for k, v in facts.items()]
        got.append(Fact("site", "router.ssh_host", "10.66.0.1", "router"))
        return {f.rule: f for f in judge.judge(rules, got, [], "en")}

    short = findings(router_udp_timeout=30)
    assert set(short) == {"nat-udp-timeout-short"}
    f = short["nat-udp-timeout-short"]
    assert "read over SSH on 10.66.0.1, is 30 s" in f.explanation and "?" not in f.explanation
    assert any("nf_conntrack_udp_timeout_stream" in step for step in f.remedies)
    alg = findings(router_sip_helper=True, router_sip_helper_seen="nft: ct helper sip5060")
    assert set(alg) == {"sip-alg-detected"}
    assert "ct helper sip5060" in alg["sip-alg-detected"].explanation
    assert len(alg["sip-alg-detected"].remedies) == 4
    assert findings(router_udp_timeout=180, router_sip_helper=False) == {}
    # measured only: the texts as before, no router sentence, no "?"
    rules, _ = judge.load_all()
    measured = judge.judge(
        rules, [Fact("site", "nat.udp_timeout_s", 25.0, "nat-lifetime")], [], "en"
    )
    assert "after about 25.0 s, measured from the office" in measured[0].explanation
    assert "SSH" not in measured[0].explanation and len(measured[0].remedies) == 2
