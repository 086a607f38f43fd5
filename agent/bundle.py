"""``phonediag bundle``: one zip to attach to a support ticket.

Inside (README.txt says the same, in French and English):

- ``report.json``: the run's report in the published format, secrets masked;
- ``report.html`` and ``report.txt``: the same report to look at;
- ``evidence.json``: what each method saw of each phone, and the checks that failed;
- ``versions.txt``: phonediag, Python, the system, the libraries;
- ``config.toml``: the effective configuration (defaults included), every secret
  (SNMP communities and v3 keys, web logins' passwords, the OVHcloud API's keys, the
  router's SSH password) as ``***``;
- ``README.txt``.

Secrets never get in (DESIGN §7), three times over: the report never holds one; the
report's strings go through the console's masker (agent/report/evidence.py: values under
secret-looking keys, ``password=...`` parts, ``Authorization:`` headers, the
configuration's own secret values); and every file's text is scrubbed once more of each
configured secret value before it is written (a value shorter than 8 characters, like
``public``, as a whole word only, so ``lan.public_ip`` stays readable).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from agent import __version__, history
from agent.i18n import t

MASK = "***"
_SHORT = 8  # a secret shorter than this is scrubbed as a whole word only
LIBRARIES = (
    "click",
    "rich",
    "zeroconf",
    "pysnmp",
    "netifaces-plus",
    "sipmessage",
    "httpx",
    "defusedxml",
    "cryptography",
    "ovh",
    "keyring",
    "scapy",
    "platformdirs",
    "jsonschema",
    "asyncssh",
)
# The files, in the order they are listed and written.
ORDER = (
    "README.txt",
    "report.html",
    "report.json",
    "report.txt",
    "evidence.json",
    "versions.txt",
    "config.toml",
)
# Config attributes that hold secrets, whatever their names say.
SECRET_ATTRS = frozenset(
    {
        "snmp_communities",
        "snmp_v3_auth_key",
        "snmp_v3_priv_key",
        "provider_application_key",
        "provider_application_secret",
        "provider_consumer_key",
        "router_ssh_password",
    }
)


class Scrubber:
    """Replaces every configured secret value in a text by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if s and s.strip()}, key=len, reverse=True)
        long = [re.escape(s) for s in values if len(s) >= _SHORT]
        short = [re.escape(s) for s in values if len(s) < _SHORT]
        parts = ["|".join(long)] if long else []
        if short:
            parts.append(rf"(?<![A-Za-z0-9_])(?:{'|'.join(short)})(?![A-Za-z0-9_])")
        self._re = re.compile("|".join(parts)) if parts else None

    def __call__(self, text: str) -> str:
        return self._re.sub(MASK, text) if self._re is not None else text

    def json(self, value: Any) -> Any:
        """``value`` (parsed JSON) with every string scrubbed, keys too; numbers are left
        alone, so the document stays what it was, only masked."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value


def _masker(cfg: Any) -> Any:
    from agent.report.evidence import Masker, config_secrets

    return Masker(config_secrets(cfg))


def secrets_of(cfg: Any) -> list[str]:
    """Every secret value the configuration (and the OVH_* environment) holds."""
    from agent.report.evidence import config_secrets

    return config_secrets(cfg)


def redact_report(doc: dict[str, Any], masker: Any) -> dict[str, Any]:
    """A copy of a JSON report with every secret masked, field by field, so that it keeps
    its shape (a fact's ``key`` is a fact's name, never masked as a "key")."""
    out = dict(doc)
    out["site"] = masker(doc.get("site") or {})
    out["devices"] = [
        {
            **d,
            "model": _text(masker, d.get("model")),
            "firmware": _text(masker, d.get("firmware")),
            "evidence": masker(d.get("evidence") or {}),
        }
        for d in doc.get("devices") or []
    ]
    out["facts"] = [
        {
            **f,
            "key": masker.text(f["key"]),
            "value": masker(f.get("value"), f["key"]),
            **({"evidence": masker.text(f["evidence"])} if "evidence" in f else {}),
        }
        for f in doc.get("facts") or []
    ]
    out["findings"] = [
        {
            **f,
            "title": masker.text(f.get("title", "")),
            "explanation": masker.text(f.get("explanation", "")),
            "remedies": [masker.text(s) for s in f.get("remedies") or []],
            "matched": masker(f.get("matched") or {}),
        }
        for f in doc.get("findings") or []
    ]
    out["errors"] = [
        {**e, "reason": masker.text(e.get("reason", ""))} for e in doc.get("errors") or []
    ]
    if "explain" in doc:
        out["explain"] = [
            {**e, "trace": [masker.text(x) for x in e.get("trace") or []]}
            for e in doc.get("explain") or []
        ]
    return out


def _text(masker: Any, value: str | None) -> str | None:
    return masker.text(value) if isinstance(value, str) else value


def config_toml(cfg: Any) -> str:
    """The effective configuration as TOML (defaults included), secrets as ``***``."""
    from agent import config as config_mod

    lines = [
        "# phonediag: the configuration in effect (defaults included).",
        f"# Read from: {cfg.source or '(no file: every value is a default)'}",
        "# Every secret is replaced by ***; the OVHcloud API keys may also come from the",
        "# environment, ovh.conf or the system keyring (not shown).",
    ]
    sections: dict[str, list[str]] = {}
    for (section, key), (attr, _typ) in config_mod._SCHEMA.items():
        value = getattr(cfg, attr, None)
        secret = attr in SECRET_ATTRS or (_secret_name(key) and not key.endswith("_protocol"))
        if value is None:
            sections.setdefault(section, []).append(f"# {key} = (not set)")
            continue
        if secret:
            value = [MASK for _ in value] if isinstance(value, list) else MASK
        sections.setdefault(section, []).append(f"{key} = {_toml(value)}")
    for section, body in sections.items():
        lines += ["", f"[{section}]", *body]
    for c in getattr(cfg, "credentials", []):
        lines += ["", "[[credentials]]"]
        if c.device is not None:
            lines.append(f"device = {_toml(c.device)}")
        if c.vendor is not None:
            lines.append(f"vendor = {_toml(c.vendor)}")
        lines.append(f"username = {_toml(c.username)}")
        lines.append(f"password = {_toml(MASK)}")
    return "\n".join(lines) + "\n"


def _secret_name(key: str) -> bool:
    from agent.report.evidence import secret_key

    return secret_key(key)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def versions_text() -> str:
    """phonediag, Python, the system and the libraries phonediag uses, one per line."""
    lines = [
        f"phonediag {__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"OS {platform.platform()}",
        f"machine {platform.machine()}",
        "",
    ]
    for name in LIBRARIES:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} (not installed)")
    return "\n".join(lines) + "\n"


def evidence_doc(run: history.Run, doc: dict[str, Any]) -> dict[str, Any]:
    """``evidence.json``: the run, each device's evidence, the errors (already masked)."""
    return {
        "run": run.to_dict(),
        "devices": [
            {
                k: d.get(k)
                for k in (
                    "ip",
                    "mac",
                    "vendor",
                    "model",
                    "firmware",
                    "found_by",
                    "identified_by",
                    "evidence",
                )
            }
            for d in doc.get("devices") or []
        ],
        "errors": doc.get("errors") or [],
        "timings": doc.get("timings") or {},
    }


def html_report(report: Any, lang: str) -> str:
    """The HTML report (agent/report/html.py, imported only here)."""
    from agent.report import html

    return html.render(report, lang)


def text_report(report: Any, lang: str, diagnosis: bool) -> str:
    """The text report, as ``phonediag diagnose`` prints it in a log (no colour)."""
    from agent.report import text

    buf = io.StringIO()
    text.render(report, lang, text.console(buf), diagnosis)
    return buf.getvalue()


def contents(run: history.Run, cfg: Any, lang: str) -> dict[str, str]:
    """The bundle's files by name. Raises if the HTML report cannot be made (the caller
    says why); every text is scrubbed of the configuration's secret values."""
    from agent.report import schema

    scrub = Scrubber(secrets_of(cfg))
    masked = scrub.json(redact_report(run.document(), _masker(cfg)))
    report_json = json.dumps(masked, ensure_ascii=False, indent=2)
    schema.check_text(report_json, "bundled report")
    evidence = scrub.json(evidence_doc(run, masked))
    report = history.load_report(masked)
    texts = {
        "report.html": html_report(report, lang),
        "report.txt": text_report(report, lang, not run.discovery),
        "versions.txt": versions_text(),
        "config.toml": config_toml(cfg),
        "README.txt": readme(run, masked),
    }
    files = {
        "report.json": report_json,
        "evidence.json": json.dumps(evidence, ensure_ascii=False, indent=2),
        **{name: scrub(text) for name, text in texts.items()},
    }
    return {name: files[name] for name in ORDER}


def readme(run: history.Run, doc: dict[str, Any]) -> str:
    created = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    args = {
        "created": created,
        "version": __version__,
        "id": run.id,
        "command": run.command,
        "when": run.when(),
        "schema": doc.get("schema_version", "?"),
    }
    rule = "-" * 78
    return f"{t('bundle.readme', 'fr', **args)}\n{rule}\n\n{t('bundle.readme', 'en', **args)}"


def default_name(run: history.Run) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"phonediag-bundle-{run.id}-{stamp}.zip"


def write(path: Path, files: dict[str, str]) -> None:
    """Write the zip atomically (a temporary file renamed), readable by its owner only."""
    path = path.expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".phonediag-bundle-", suffix=".zip", dir=folder)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
            now = datetime.now().timetuple()[:6]
            for name, text in files.items():
                info = zipfile.ZipInfo(name, date_time=now)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o600 << 16
                z.writestr(info, text.encode("utf-8"))
        if sys.platform != "win32":
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
