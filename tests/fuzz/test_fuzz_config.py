"""The configuration file (agent/config.py): whatever it holds (wrong types, unknown keys,
NaN, nesting, bad UTF-8), loading gives a Config whose every setting has its declared
type and a usable value, or a ConfigError naming the file; never a traceback."""

from __future__ import annotations

import atexit
import math
import shutil
import tempfile
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent import config
from tests.fuzz.strategies import (
    hostile_text,
    mutated_bytes,
    mutated_tree,
    toml_document,
    toml_values,
)

HERE = Path(tempfile.mkdtemp(prefix="phonediag-fuzz-config-"))
atexit.register(shutil.rmtree, HERE, ignore_errors=True)  # leave nothing in /tmp
SECTIONS = sorted({s for s, _ in config._SCHEMA})
VALID = """\
[site]
registrar = "sip.ovh.net"
registrar_ports = [5060, 5962]
stun_server = "stun.example.net:3478"
[scope]
networks = ["10.66.0.0/24"]
max_prefix = 22
[discovery]
sip_ports = [5060, 5062]
timeout = 1.5
sweep_timeout = 1.0
mdns_window = 2
rate = 8000
[run]
deadline = 60.0
[snmp]
communities = ["public", "s3cret"]
v3_user = "ops"
v3_auth_key = "auth-secret-1"
v3_priv_key = "priv-secret-1"
v3_auth_protocol = "sha256"
v3_priv_protocol = "aes"
[vendors]
default_logins = true
[history]
keep = 0
[[credentials]]
username = "admin"
password = "admin"
vendor = "yealink"
[[credentials]]
username = "admin"
password = "1234"
device = "10.66.0.11"
"""
VALID_TREE = tomllib.loads(VALID)


@st.composite
def settings_tables(draw: st.DrawFn) -> dict:
    """Sections and keys of the schema (and others), with values of any TOML type."""
    doc: dict = {}
    for _ in range(draw(st.integers(0, 5))):
        section = draw(st.sampled_from(SECTIONS) | st.text(max_size=10))
        keys = [k for s, k in config._SCHEMA if s == section] or ["x"]
        table = doc.setdefault(section, {})
        for _ in range(draw(st.integers(0, 4))):
            table[draw(st.sampled_from(keys) | st.text(max_size=10))] = draw(toml_values)
    if draw(st.booleans()):
        doc["credentials"] = draw(
            st.lists(st.dictionaries(st.sampled_from(["username", "password", "vendor",
                     "device", "x"]), toml_values, max_size=4), max_size=3) | toml_values
        )  # fmt: skip
    return doc


documents = st.one_of(
    settings_tables().map(toml_document).map(str.encode),
    mutated_tree(st.just(VALID_TREE)).map(toml_document).map(str.encode),
    mutated_bytes(st.just(VALID.encode())),
    hostile_text.map(str.encode),
)


def _check(cfg: config.Config) -> None:
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float):
            assert math.isfinite(value), f"{f.name} = {value}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert value >= 0, f"{f.name} = {value}"
    for name in ("registrar_ports", "sip_ports"):
        assert all(isinstance(p, int) and 0 < p < 65536 for p in getattr(cfg, name))
    assert all(isinstance(c, config.Credential) for c in cfg.credentials)


_n = 0


@given(documents)
def test_load(data: bytes) -> None:
    global _n
    _n += 1
    path = HERE / f"c{_n % 8}.toml"
    path.write_bytes(data)
    try:
        cfg = config.load(path)
    except config.ConfigError as e:
        assert str(path) in str(e)
        return
    _check(cfg)


@pytest.mark.parametrize(
    "body",
    [
        "[run]\ndeadline = nan\n",
        "[discovery]\nsweep_timeout = inf\n",
        "[nat]\nbudget = -inf\n",
        "[run]\ndeadline = 1" + "0" * 400 + "\n",
        "[run]\ndeadline = 1" + "0" * 5000 + "\n",
        "a = " + "[" * 5000 + "]" * 5000 + "\n",
        "a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n",
    ],
    ids=["nan", "inf", "-inf", "huge int", "5000 digits", "deep arrays", "deep tables"],
)
def test_regressions(body: str, tmp_path: Path) -> None:
    """Found by the fuzzer: NaN and infinite settings were accepted (a NaN timeout, an
    endless sweep), an integer too large for a float setting raised OverflowError, one of
    over 4300 digits a ValueError out of tomllib, and deeply nested TOML escaped as a
    RecursionError traceback."""
    path = tmp_path / "c.toml"
    path.write_text(body)
    with pytest.raises(config.ConfigError):
        config.load(path)
