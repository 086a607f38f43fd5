"""Yealink desk phones (T4x/T5x) and DECT bases (W56P/W70P), through Yealink's own interfaces.

- Action URI ``GET /servlet?phonecfg=get&accounts=1&dnd=1&fw=1`` (admin guides, "Action
  URI"; HTTP Basic; only from the Action URI allow-IP list, 403 otherwise). The answer is the
  INI text the firmware writes (``[Status]``, ``[Accounts]``, ``[DND] State=On|Off``,
  ``[Forward_always|busy|noanswer] State`` and ``Target``): DND and forwarding. Its accounts
  say enabled/disabled, not registered, so registration comes from the web status page.
- Web UI: ``/servlet?m=mod_listener&p=login&q=loginForm`` (RSA public key ``g_rsa_n``/
  ``g_rsa_e`` and a ``JSESSIONID``), POST ``...&q=login`` (password AES-CBC encrypted, the AES
  key and IV RSA-encrypted), then ``/servlet?m=mod_data&p=status&q=load`` (``g_dataAccStatus``:
  ``"user@server:<line state>"`` per account, 2 = registered; ``tdWANIP``),
  ``p=settings-autop`` (``AutoProvisionServerURL``) and ``p=account-register``
  (``AccountOutboundSwitch``/``AccountOutboundProxy``, ``Transport1``, ``Expires1``).
- The web server's ``Date`` header: the phone's clock.

Writes (the remedies, after consent), through the same Action URI: ``key=DNDOn|DNDOff``
(DND) and ``phonecfg=set&Forward_always_enable=0|1[&Forward_always_target=N]`` (Yealink's
``commonUnits_SetForwardCfg``, SOURCES.md). A 200 answer is not proof: the remedy reads
the state back. Restart: ``key=Reboot``, the same Action URI.

Left unknown: the last REGISTER answer's code and reason (no page shows them), no-answer
forwarding when its section mirrors the always-forward one (see parse_phonecfg), and any
field a page does not carry.

Sources: tests/unit/vendors/data/yealink/SOURCES.md (Yealink admin guides; Yealink's
CreatePhoneInfo/GetAccountInfo in AdamBear/sipphone; UrielCh/yealink ts/Yealink.ts).
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
from typing import Any

from agent.config import Credential
from agent.net.http import HttpError, LockedOut, Reply, Session
from agent.vendors.base import Context, Refused, account, check_write, clock_skew, whole_number

ACTION_URI = "/servlet?phonecfg=get&accounts=1&dnd=1&fw=1"
LOGIN_FORM = "/servlet?m=mod_listener&p=login&q=loginForm&jumpto=status"
LOGIN = "/servlet?m=mod_listener&p=login&q=login"
STATUS = "/servlet?m=mod_data&p=status&q=load"
AUTOP = "/servlet?m=mod_data&p=settings-autop&q=load"
ACCOUNT = "/servlet?m=mod_data&p=account-register&q=load&acc=0"

# The firmware's LINE_STATE: 0 disabled, 1 registering, 2 registered, 3 failed,
# 4 unregistered, 7 re-registering, 8 unregistering (5, 6, 11: no registration to judge).
REGISTERED, NOT_REGISTERED = {2}, {0, 1, 3, 4, 7, 8}
TRANSPORTS = {"0": "udp", "1": "tcp", "2": "tls"}  # 3 = DNS-NAPTR: left unknown
HINTS = {
    401: " (logins refused)",
    403: " (this computer is not in the phone's Action URI allow-IP list, or the phone's"
    " 'Allow remote control?' prompt was not accepted)",
    404: " (not supported by this firmware)",
}


class Yealink:
    vendor = "yealink"
    writable = frozenset({"phone.dnd", "phone.forward.always", "phone.forward.always_target"})

    async def read(self, ctx: Context) -> dict[str, Any]:
        http = ctx.http
        out: dict[str, Any] = {}
        why: list[str] = []  # what could not be read, said when nothing could
        reply = await http.get(ACTION_URI)
        phone_time = reply.date()
        if phone_time is not None:
            out["phone.clock_skew_s"] = clock_skew(phone_time, ctx.now)
        if reply.status == 200:
            try:
                out.update(parse_phonecfg(reply))
            except HttpError as e:
                why.append(str(e))
        else:  # 401, 403 (not in the allow list), 404: the web UI may still answer
            why.append(f"Action URI: HTTP {reply.status}{HINTS.get(reply.status, '')}")
        if not await login(http):
            why.append("web UI: no login (refused, or not this web UI)")
        else:
            for path, parse in PAGES:  # the session sends the login's cookie
                page = await http.get(path)
                out.update(parse(page.text) if page.status == 200 else {})
        if len(out) <= ("phone.clock_skew_s" in out):
            raise HttpError(f"{http.ip}: nothing readable ({'; '.join(why)})")
        return out

    async def write(self, ctx: Context, values: dict[str, Any]) -> None:
        check_write(self, values)
        requests: list[dict[str, str]] = []
        if "phone.dnd" in values:
            requests.append({"key": "DNDOn" if values["phone.dnd"] else "DNDOff"})
        if "phone.forward.always" in values:
            on = values["phone.forward.always"]
            query = {"phonecfg": "set", "Forward_always_enable": "1" if on else "0"}
            if on:
                query["Forward_always_target"] = str(values["phone.forward.always_target"])
            requests.append(query)
        for query in requests:
            await _action(ctx, query)

    async def reboot(self, ctx: Context) -> None:
        """Action URI ``key=Reboot`` (the admin guides' key list): the phone restarts."""
        await _action(ctx, {"key": "Reboot"})


async def _action(ctx: Context, query: dict[str, str]) -> None:
    """One Action URI command; Refused (4xx: nothing done) or HttpError unless HTTP 200."""
    reply = await ctx.http.get("/servlet", params=query)
    if reply.status != 200:
        what = "&".join(f"{k}={v}" for k, v in query.items() if k != "phonecfg")
        hint = HINTS.get(reply.status, "")
        error = Refused if 400 <= reply.status < 500 else HttpError
        raise error(f"{ctx.http.ip}: Action URI {what}: HTTP {reply.status}{hint}")


# ------------------------------------------------------------------ Action URI


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip().lower(), {})
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip().lower()] = value.strip()
    return sections


def parse_phonecfg(reply: Reply) -> dict[str, Any]:
    """DND and forwarding from the ``phonecfg=get`` INI answer."""
    ini = parse_ini(reply.text)
    if not ini:
        kind = reply.headers.get("content-type", "unknown type")
        raise HttpError(f"{reply.url}: expected the phonecfg INI answer, got {kind}")
    out: dict[str, Any] = {}
    for section, key in (
        ("dnd", "phone.dnd"),
        ("forward_always", "phone.forward.always"),
        ("forward_busy", "phone.forward.busy"),
        ("forward_noanswer", "phone.forward.noanswer"),
    ):
        state = ini.get(section, {}).get("state", "").lower()
        if state in ("on", "off"):
            out[key] = state == "on"
    always, noanswer = ini.get("forward_always", {}), ini.get("forward_noanswer", {})
    if "target" in always:
        out["phone.forward.always_target"] = always["target"]
    # One Yealink source tree fills [Forward_noanswer] from the always-forward settings
    # (SOURCES.md): only a section that differs from [Forward_always] is surely its own.
    if [noanswer.get(k, "").lower() for k in ("state", "target")] == [
        always.get(k, "").lower() for k in ("state", "target")
    ]:
        out.pop("phone.forward.noanswer", None)
    return out


# ------------------------------------------------------------------ web UI


def _var(page: str, name: str) -> str | None:
    m = re.search(rf'\b{name}\s*=\s*"([^"]*)"', page)
    return m.group(1) if m else None


def _sid(reply: Reply) -> str | None:
    m = re.search(r"JSESSIONID=([^;,\s]+)", reply.headers.get("set-cookie", ""))
    return m.group(1) if m else None


async def login(http: Session) -> bool:
    """Log in to the web UI within the session's login budget (the session keeps the cookie)."""
    creds: list[Credential] = [http.working] if http.working else list(http.logins)
    for cred in creds:
        if http.failed_logins >= http.max_logins:
            break
        form = await http.get(LOGIN_FORM)
        n, e, sid = _var(form.text, "g_rsa_n"), _var(form.text, "g_rsa_e"), _sid(form)
        if form.status != 200 or not (n and e and sid):
            return False  # not this web UI (or no web UI): the keys stay unknown
        try:
            rsa = (int(n, 16), int(e, 16))
        except ValueError:
            rsa = (0, 0)
        if not (512 <= rsa[0].bit_length() <= 4096 and 2 < rsa[1] < 2**32):
            raise HttpError(f"{form.url}: malformed RSA key on the login page")
        key, iv = secrets.token_bytes(16), secrets.token_bytes(16)
        plain = f"0.{secrets.randbelow(10**16)};{sid};{cred.password}".encode()
        data = {
            "username": cred.username,
            "pwd": base64.b64encode(aes_cbc_encrypt(key, iv, plain)).decode(),
            "rsakey": rsa_encrypt(*rsa, key.hex().encode()),
            "rsaiv": rsa_encrypt(*rsa, iv.hex().encode()),
        }
        reply = await http.request("POST", LOGIN, data=data)
        m = re.search(r'"authstatus"\s*:\s*"(\w+)"', reply.text)
        answer = m.group(1).lower() if m else ""
        if reply.status in (423, 429) or "lock" in answer:
            raise LockedOut(f"{http.ip}: the phone refuses logins for now (locked)")
        if reply.status == 200 and answer == "done":
            http.working = cred
            return True
        http.failed_logins += 1
    return False


def _attr(tag: str, name: str) -> str | None:
    m = re.search(rf'\b{name}="([^"]*)"', tag)
    return html.unescape(m.group(1)) if m else None


def _tags(page: str) -> list[str]:
    return re.findall(r"<[^<>]*>", page)  # linear: no backtracking over hostile pages


def parse_status(page: str) -> dict[str, Any]:
    """Line 1's registration (``g_dataAccStatus``) and the phone's address (``tdWANIP``)."""
    out: dict[str, Any] = {}
    at = page.find("g_dataAccStatus")
    start = page.find('ParseJSON("', at) if at >= 0 else -1
    end = page.find('")', start) if start >= 0 else -1
    if end > start >= 0:
        try:
            accounts = json.loads(page[start + 11 : end].replace('\\"', '"'))
            state = int(str(accounts["Account1"]).rpartition(":")[2])
        except (ValueError, KeyError, TypeError, RecursionError):
            state = None
        if state in REGISTERED or state in NOT_REGISTERED:
            out["sip.registered"] = state in REGISTERED
    wan = next((t for t in _tags(page) if 'id="tdWANIP"' in t), "")
    ip = (_attr(wan, "dvalue") or "").strip()
    if ip:
        out["phone.ip"] = ip
    return out


def field(page: str, name: str) -> str | None:
    """The value of form field ``name`` (an input, or a select's selected option)."""
    tags = _tags(page)
    for i, tag in enumerate(tags):
        if f'name="{name}"' not in tag:
            continue
        if tag.startswith("<input"):
            return _attr(tag, "value") or ""
        if tag.startswith("<select"):
            for option in tags[i + 1 :]:
                if option.startswith("</select"):
                    break
                if option.startswith("<option") and re.search(r"\bselected\b", option):
                    return _attr(option, "value")
            return None
    return None


def parse_autop(page: str) -> dict[str, Any]:
    url = field(page, "AutoProvisionServerURL")
    return {} if url is None else {"phone.provisioning_url": url.strip()}


def parse_account(page: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    switch, proxy = field(page, "AccountOutboundSwitch"), field(page, "AccountOutboundProxy")
    if switch == "0":
        out["phone.outbound_proxy"] = ""
    elif proxy is not None and switch in ("1", None):
        out["phone.outbound_proxy"] = proxy.strip()
    transport = TRANSPORTS.get(field(page, "Transport1") or "")
    if transport:
        out["sip.transport"] = transport
    expires = whole_number(field(page, "Expires1"))
    if expires is not None:
        out["sip.register_expires_s"] = expires
    user = account(field(page, "AccountRegisterName"), field(page, "server1"))
    if user:
        out["sip.account"] = user
    return out


# ------------------------------------------------------------------ the login's cryptography
# The web UI encrypts the password with AES-128-CBC (zero padding) and the AES key and IV
# (as hex text) with RSA PKCS#1 v1.5, as its page script does.


def aes_cbc_encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain += b"\0" * (-len(plain) % 16)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(plain) + enc.finalize()


def rsa_encrypt(n: int, e: int, message: bytes) -> str:
    """RSA PKCS#1 v1.5 encryption, as hex text."""
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.RSAPublicNumbers(e, n).public_key()
    return key.encrypt(message, padding.PKCS1v15()).hex().zfill(2 * key.key_size // 8)


PAGES = ((STATUS, parse_status), (AUTOP, parse_autop), (ACCOUNT, parse_account))
ADAPTER = Yealink()
