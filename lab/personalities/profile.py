"""A phone's configuration profile: fetch a ``<flat-profile>`` and apply it to the state.

Cisco's XML provisioning format (SPA5xx provisioning guide): a ``<flat-profile>`` root whose
children are parameters, ``<DND_Setting>No</DND_Setting>``. Both the Cisco face's resync and
every phone's boot-time provisioning (``controller.py``) apply profiles with ``apply``: only
the parameters present change the state, unknown ones are ignored, and a body that is
malformed, oversized or not a ``<flat-profile>`` changes nothing (``ProfileError``).

The lab has no DNS for OVHcloud's ``*.prov.voip.ovh.net``: ``fetch`` connects to the
provisioning server given (the state's ``provisioning_server``) and sends the URL's host in
``Host``, as a phone resolving that name would.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

MAX_PROFILE = 64 * 1024  # bytes
FETCH_TIMEOUT_S = 5.0
OVH_PROVISIONING = ".prov.voip.ovh.net"  # reached through the state's provisioning_server
ROOT = "flat-profile"


class ProfileError(ValueError):
    """A profile that cannot be applied (nothing was changed)."""


def _yes_no(value: str) -> bool:
    if value.lower() not in ("yes", "no"):
        raise ValueError(value)
    return value.lower() == "yes"


def _forward(kind: str) -> Callable[[dict[str, Any], str], None]:
    def set_forward(state: dict[str, Any], value: str) -> None:
        state["forward"] = {**(state.get("forward") or {}), kind: value}

    return set_forward


def _setter(key: str, convert: Callable[[str], Any] = str) -> Callable[[dict[str, Any], str], None]:
    def set_key(state: dict[str, Any], value: str) -> None:
        state[key] = convert(value)

    return set_key


# Cisco parameter -> how it changes the phone state (ATAs suffix user settings with _1_).
PARAMETERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "User_ID_1_": _setter("line"),
    "Password_1_": _setter("sip_password"),
    "Proxy_1_": _setter("registrar"),
    "Register_Expires_1_": _setter("expires", int),
    "Profile_Rule": _setter("provisioning_url"),
}
for _suffix in ("", "_1_"):
    PARAMETERS[f"DND_Setting{_suffix}"] = _setter("dnd", _yes_no)
    PARAMETERS[f"Cfwd_All_Dest{_suffix}"] = _forward("always")
    PARAMETERS[f"Cfwd_Busy_Dest{_suffix}"] = _forward("busy")
    PARAMETERS[f"Cfwd_No_Ans_Dest{_suffix}"] = _forward("noanswer")


def parse(body: bytes) -> dict[str, str]:
    """The parameters of a ``<flat-profile>`` (name -> text, "" for an empty element)."""
    if len(body) > MAX_PROFILE:
        raise ProfileError(f"profile of {len(body)} bytes (more than {MAX_PROFILE})")
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise ProfileError(f"not well-formed XML: {exc}") from None
    if root.tag != ROOT:
        raise ProfileError(f"root element <{root.tag}>, not <{ROOT}>")
    return {str(child.tag): (child.text or "").strip() for child in root}


def apply(state: dict[str, Any], body: bytes) -> list[str]:
    """Apply a profile to ``state`` in place; the names of the parameters that changed it.

    ProfileError (and ``state`` untouched) if the body is not an applicable profile; a
    known parameter with a bad value (``DND_Setting`` "Maybe") is skipped.
    """
    params = parse(body)
    new = dict(state)
    changed = []
    for name, value in params.items():
        setter = PARAMETERS.get(name)
        if setter is None:
            continue
        before = dict(new)
        try:
            setter(new, value)
        except ValueError:
            continue
        if new != before:
            changed.append(name)
    state.clear()
    state.update(new)
    return changed


def profile_url(provisioning_url: str, mac: str) -> str:
    """Where a phone asks for its own profile at boot: ``<mac12>.xml`` next to the URL."""
    mac12 = "".join(c for c in mac.lower() if c in "0123456789abcdef")
    return urljoin(provisioning_url, f"{mac12}.xml")


def fetch(url: str, server: str = "") -> tuple[int, bytes]:
    """GET ``url`` (http only): (status, body up to MAX_PROFILE + 1 bytes).

    ``server`` ("ip:port"): where OVHcloud's provisioning hosts are reached (the lab has no
    DNS for them); other hosts are connected to directly. 5 s in all. OSError (and
    ValueError for a URL that is not http) on failure.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not an http URL: {url!r}")
    host, port = parts.hostname, parts.port or 80
    if server and host.endswith(OVH_PROVISIONING):
        addr, _, server_port = server.rpartition(":")
        host, port = addr, int(server_port)
    deadline = time.monotonic() + FETCH_TIMEOUT_S
    conn = http.client.HTTPConnection(host, port, timeout=FETCH_TIMEOUT_S)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers={"Host": parts.netloc, "Connection": "close"})
        resp = conn.getresponse()
        body = b""
        while len(body) <= MAX_PROFILE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: more than {FETCH_TIMEOUT_S:.0f} s")
            chunk = resp.read(min(65536, MAX_PROFILE + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        return resp.status, body
    except http.client.HTTPException as exc:
        raise OSError(f"{url}: {exc!r}") from None
    finally:
        conn.close()
