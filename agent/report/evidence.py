"""``--verbose``: what the report's conclusions rest on, with every secret masked.

Per phone: what each discovery method saw (the SIP OPTIONS answer's status line and
headers, the SNMP values read, mDNS TXT, SIP PnP, LLDP, ARP), what identified it, the
observations of each probe with their evidence (the pages read from the phone's web
interface, the registrar's answers...), and the steps that failed for it, with why.
Then the office's own observations, the lines OVHcloud knows that no phone was found
for, every failure, and how long each step took.

Secrets never show (DESIGN §7): :func:`mask` replaces with ``***`` any value under a
key named like a secret (password, secret, token, community, key...) however deeply
nested; in text, the values of ``password=`` / ``xpassword=`` / ``&xuser=`` parts,
``Authorization:`` headers, ``Basic``/``Bearer`` credentials, URL user info; and every
secret value of the configuration itself (SNMP communities, web passwords, API keys, the
router's SSH password), wherever it appears. Device-supplied text is also stripped of
control characters, so a hostile phone cannot drive the terminal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape

from agent.i18n import t
from agent.model import UNKNOWN, Fact, Report

MASK = "***"

# ---------------------------------------------------------------------------- masking
# Key names that hold a secret: one of these anywhere in the name...
_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "communit",  # community, communities
    "apikey",
    "api_key",
    "consumer_key",
    "application_key",
    "auth_key",
    "priv_key",
    "authorization",
    "auth_pass",
    "credential",
    "cookie",
    "signature",
    "xuser",
)
# ... or one of these as a whole word of it (``v3.key``, ``sip-pwd``, ``pin``).
_SECRET_WORDS = frozenset({"key", "pass", "pwd", "pin", "psk", "auth", "xuser", "session"})

_WORDS = r"[A-Za-z0-9]*(?:pass(?:word|wd)?|pwd|secret|token|communit(?:y|ies)|key|auth_pass)"
# name=value / name: value / "name": "value" (query strings, config dumps, JSON, logs)
_ASSIGNMENT = re.compile(
    rf"""(?ix)
    (?<![A-Za-z0-9])
    ( (?:xuser|{_WORDS}) ["']? \s* [=:] \s* )
    ( "[^"]*" | '[^']*' | [^\s&;,"'<>]+ )
    """
)
_AUTH_HEADER = re.compile(r"(?im)\b((?:proxy-)?authorization\s*[:=]\s*)([^\r\n]+)")
_OVH_HEADER = re.compile(r"(?i)\b(x-ovh-(?:application|consumer|signature)\s*[:=]\s*)([^\s,;]+)")
_BEARER = re.compile(r"(?i)\b(basic|bearer)(\s+)([A-Za-z0-9+/=._~-]{6,})")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]+:)([^\s/@]+)(@)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A configured secret this short (or a word like "public") is masked as a whole token
# only, not inside other words (``lan.public_ip`` stays readable).
_SHORT = 8


def secret_key(name: object) -> bool:
    """Whether a key of this name holds a secret (by its name alone)."""
    if not isinstance(name, str):
        return False
    low = name.lower()
    if any(part in low for part in _SECRET_PARTS):
        return True
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return any(w in _SECRET_WORDS for w in words)


def config_secrets(cfg: Any) -> list[str]:
    """Every secret value the configuration holds (and the OVHcloud keys the environment
    gives), to be scrubbed wherever it shows up."""
    if cfg is None:
        return []
    values: list[Any] = [
        *getattr(cfg, "snmp_communities", []),
        getattr(cfg, "snmp_v3_auth_key", None),
        getattr(cfg, "snmp_v3_priv_key", None),
        getattr(cfg, "provider_application_key", None),
        getattr(cfg, "provider_application_secret", None),
        getattr(cfg, "provider_consumer_key", None),
        getattr(cfg, "router_ssh_password", None),
        *(getattr(c, "password", None) for c in getattr(cfg, "credentials", [])),
    ]
    for name in ("OVH_APPLICATION_KEY", "OVH_APPLICATION_SECRET", "OVH_CONSUMER_KEY"):
        values.append(os.environ.get(name))
    return sorted({v for v in values if isinstance(v, str) and v.strip()}, key=len, reverse=True)


class Masker:
    """Masks secrets in nested data and text (see the module's docstring)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        long = [re.escape(s) for s in self.secrets if len(s) >= _SHORT]
        short = [re.escape(s) for s in self.secrets if len(s) < _SHORT]
        parts = []
        if long:
            parts.append("|".join(long))
        if short:
            parts.append(rf"(?<![A-Za-z0-9_])(?:{'|'.join(short)})(?![A-Za-z0-9_])")
        self._values = re.compile("|".join(parts)) if parts else None

    def text(self, text: str) -> str:
        """``text`` with every secret in it replaced by ``***``."""
        if self._values is not None:
            text = self._values.sub(MASK, text)
        text = _AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
        text = _OVH_HEADER.sub(lambda m: m.group(1) + MASK, text)
        text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
        text = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + m.group(3), text)
        return _ASSIGNMENT.sub(_masked_assignment, text)

    def __call__(self, value: Any, key: object = None) -> Any:
        """``value`` (any nesting of dicts, lists, tuples, strings) with its secrets
        masked: all of it when ``key`` names a secret."""
        if key is not None and secret_key(key) and value not in (None, "", UNKNOWN):
            return MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._key(k): self(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        if isinstance(value, set | frozenset):
            return [self(v) for v in sorted(value, key=str)]
        return value

    def _key(self, key: object) -> object:
        return self.text(key) if isinstance(key, str) else key


def _masked_assignment(m: re.Match[str]) -> str:
    value = m.group(2)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{m.group(1)}{quote}{MASK}{quote}"


def mask(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` with its secrets masked (one-off use of :class:`Masker`)."""
    return Masker(secrets)(value)


def clean(text: str, limit: int = 400) -> str:
    """Device-supplied text made safe to print: control characters shown as ``\\xNN``,
    long values cut."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------- the view
# Discovery methods by their protocol names (the same in both languages).
METHODS = {
    "sip": "SIP OPTIONS",
    "snmp": "SNMP",
    "mdns": "mDNS/DNS-SD",
    "pnp": "SIP PnP",
    "lldp": "LLDP",
    "arp": "ARP",
}


class View:
    """Writes the evidence of a report on a console, masked and cleaned."""

    def __init__(self, out: Console, lang: str, masker: Masker) -> None:
        self.out, self.lang, self.masker = out, lang, masker
        self.plain = out.no_color

    def _say(self, text: str, indent: int = 0, style: str | None = None) -> None:
        line = " " * indent + text
        if style and not self.plain:
            self.out.print(f"[{style}]{escape(line)}[/]", soft_wrap=True, highlight=False)
        else:
            self.out.print(line, markup=False, soft_wrap=True, highlight=False)

    def heading(self, text: str) -> None:
        self._say("")
        self._say(text if not self.plain else f"== {text} ==", style="bold underline")

    def sub(self, text: str, indent: int = 2) -> None:
        self._say(text, indent, style="bold")

    def value(self, value: Any, key: object = None) -> str:
        """A value as shown: masked, cleaned, yes/no/unknown in the report's language."""
        value = self.masker(value, key)
        if value is UNKNOWN or value is None:
            return t("evidence.unknown", self.lang)
        if value is True or value is False:
            return t("evidence.yes" if value else "evidence.no", self.lang)
        if isinstance(value, list | tuple):
            return clean(", ".join(str(v) for v in value)) or '""'
        if isinstance(value, dict):
            return clean(", ".join(f"{k}={v}" for k, v in value.items())) or "{}"
        if value == "":
            return '""'
        return clean(str(value))

    def pairs(self, attrs: dict[str, Any], indent: int = 4) -> None:
        if not attrs:
            self._say(t("evidence.nothing", self.lang), indent)
        for key in sorted(attrs, key=_attr_order):
            shown_key = clean(str(self.masker(key)))
            self._say(f"{shown_key}: {self.value(attrs[key], key)}", indent)

    def facts(self, facts: list[Fact], indent: int = 2) -> None:
        """Observations grouped by their source; an evidence shared by most of a group is
        said once, under the source."""
        by_source: dict[str, list[Fact]] = {}
        for f in facts:
            by_source.setdefault(f.source, []).append(f)
        for source, group in by_source.items():
            evidences = [f.evidence for f in group if f.evidence]
            common = max(set(evidences), key=evidences.count) if evidences else ""
            shared = common if evidences.count(common) > 1 else ""
            self.sub(t("evidence.facts", self.lang, source=source), indent)
            if shared:
                self._say(f"({self.value(shared)})", indent + 2)
            for f in group:
                line = f"{clean(f.key)} = {self.value(f.value, f.key)}"
                if f.evidence and f.evidence != shared:
                    line += f" — {self.value(f.evidence)}"
                self._say(line, indent + 2)

    def errors(self, errors: list[Any], indent: int = 2) -> None:
        from agent.report.progress import label

        for e in errors:
            name = label(e.step, self.lang)
            step = e.step if name == e.step else f"{e.step} ({name})"
            where = f" [{e.subject}]" if e.subject else ""
            self._say(f"- {step}{where}: {self.value(e.reason)}", indent)


def _attr_order(key: str) -> tuple[int, str]:
    """Status lines first (``udp.5060``), then identity, then the rest, by name."""
    first = ("udp.", "tcp.", "agent", "server", "user-agent", "sysdescr", "sysobjectid")
    low = key.lower()
    for i, prefix in enumerate(first):
        if low.startswith(prefix):
            return (i, key)
    return (len(first), key)


def _device_name(device: Any, lang: str) -> str:
    from agent.report.text import device_title

    return _capital(device_title(device, lang))


def render(report: Report, lang: str, out: Console, config: Any = None) -> None:
    """The evidence of ``report`` (after the report itself), secrets masked with the
    configuration's own secret values too."""
    view = View(out, lang, Masker(config_secrets(config)))
    facts_of: dict[str, list[Fact]] = {}
    for f in report.facts:
        facts_of.setdefault(f.subject, []).append(f)
    errors_of: dict[str | None, list[Any]] = {}
    for e in report.errors:
        errors_of.setdefault(e.subject, []).append(e)
    out.print()
    view._say(t("evidence.title", lang), style="bold")
    view._say(t("evidence.masked", lang))

    for d in report.devices:
        view.heading(_device_name(d, lang))
        for method, attrs in d.evidence.items():
            if method == "merge":
                view.sub(t("evidence.merge", lang))
            else:
                name = METHODS.get(method, method)
                view.sub(t("evidence.found_by", lang, method=name))
            view.pairs(attrs)
        if d.identified_by:
            view._say(
                t("evidence.identified_by", lang, what=view.value(sorted(d.identified_by))), 2
            )
        view.facts(facts_of.pop(d.ip, []))
        if errors_of.get(d.ip):
            view.sub(t("evidence.errors", lang))
            view.errors(errors_of.pop(d.ip), 4)

    site = facts_of.pop("site", [])
    if site:
        view.heading(_capital(t("finding.site", lang)))
        view.facts(site)
    for subject in sorted(facts_of):  # lines no phone was found for, anything else
        line = subject.split(":", 1)[1] if subject.startswith("line:") else None
        title = t("finding.line_only", lang, line=line) if line else subject
        view.heading(_capital(title))
        view.facts(facts_of[subject])

    rest = [e for errs in errors_of.values() for e in errs]
    if rest:
        view.heading(t("evidence.other_errors", lang))
        view.errors(rest)
    if report.timings:
        view.heading(t("evidence.timings", lang))
        from agent.report.progress import label

        for step, seconds in report.timings.items():
            name = label(step, lang)
            shown = step if name == step else f"{name} ({step})"
            view._say(f"{shown}: {seconds:.2f} s", 2)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
