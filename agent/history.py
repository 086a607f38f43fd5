"""The run history: every ``discover`` and ``diagnose`` run, kept in the local store
(agent/store.py, the same file as the remedies' audit log), read back by
``phonediag report list|show|diff|export`` and ``phonediag bundle``.

One row per run: its id (never reused, so ``report show 12`` always means the same run),
when it started (UTC), the command and its options, scope, language, exit code, counts
(phones, findings by severity, errors), and the full JSON report exactly as
``--json`` prints it (zlib-compressed: about 4 kB for a 3-phone office). The newest
``[history] keep`` runs (1000 by default) are kept; storing a run never makes its command
fail (:func:`record` warns on stderr and the exit code stays what it was).

:func:`load_report` rebuilds a :class:`~agent.model.Report` from the JSON
(``to_dict(load_report(doc)) == doc``); :func:`diff` compares two runs the way a
technician reads them after a fix: phones appeared, gone or changed, findings new,
resolved or still there, per phone, line or site.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import sys
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import store
from agent.i18n import t
from agent.model import UNKNOWN, Device, Fact, Finding, ProbeError, Report

DEFAULT_KEEP = 1000
SEVERITIES = ("critical", "warning", "info")

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_history (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    started        TEXT NOT NULL,
    command        TEXT NOT NULL,
    options        TEXT NOT NULL DEFAULT '{}',
    scope          TEXT NOT NULL DEFAULT '[]',
    lang           TEXT NOT NULL,
    exit_code      INTEGER NOT NULL,
    duration_s     REAL NOT NULL DEFAULT 0,
    phones         INTEGER NOT NULL DEFAULT 0,
    critical       INTEGER NOT NULL DEFAULT 0,
    warning        INTEGER NOT NULL DEFAULT 0,
    info           INTEGER NOT NULL DEFAULT 0,
    errors         INTEGER NOT NULL DEFAULT 0,
    schema_version TEXT NOT NULL,
    report         BLOB NOT NULL
);
"""

_COLUMNS = (
    "id, started, command, options, scope, lang, exit_code, duration_s, phones, critical,"
    " warning, info, errors, schema_version"
)


@dataclass
class Run:
    """One stored run; ``report_json`` only when read with :meth:`History.get`."""

    id: int
    started: str  # ISO 8601, UTC
    command: str
    options: dict[str, Any]
    scope: list[str]
    lang: str
    exit_code: int
    duration_s: float
    phones: int
    critical: int
    warning: int
    info: int
    errors: int
    schema_version: str
    report_json: str | None = field(default=None, repr=False)

    @classmethod
    def unsaved(
        cls,
        report_json: str,
        command: str,
        lang: str,
        exit_code: int,
        started: datetime,
        options: dict[str, Any] | None = None,
        run_id: int = 0,
    ) -> Run:
        """A run as it would be stored (``run_id`` 0: it could not be)."""
        s = _summary(json.loads(report_json))
        return cls(
            id=run_id,
            started=started.astimezone(UTC).isoformat(timespec="seconds"),
            command=command,
            options=options or {},
            scope=s["scope"],
            lang=lang,
            exit_code=exit_code,
            duration_s=s["duration_s"],
            phones=s["phones"],
            critical=s["critical"],
            warning=s["warning"],
            info=s["info"],
            errors=s["errors"],
            schema_version=s["schema_version"],
            report_json=report_json,
        )

    def to_dict(self) -> dict[str, Any]:
        """The run's summary, as ``report list --json`` prints it."""
        return {
            "id": self.id,
            "started": self.started,
            "command": self.command,
            "options": self.options,
            "scope": self.scope,
            "lang": self.lang,
            "exit_code": self.exit_code,
            "duration_s": self.duration_s,
            "phones": self.phones,
            "findings": {"critical": self.critical, "warning": self.warning, "info": self.info},
            "errors": self.errors,
            "schema_version": self.schema_version,
        }

    def document(self) -> dict[str, Any]:
        """The stored JSON report, parsed."""
        if self.report_json is None:
            raise ValueError(f"run {self.id} was read without its report")
        return json.loads(self.report_json)

    def report(self) -> Report:
        return load_report(self.document())

    def when(self) -> str:
        """The start time in this computer's time zone, to the second."""
        return local_time(self.started)

    @property
    def discovery(self) -> bool:
        """A discovery (no findings): ``discover``, or ``portal:discover`` (a portal job)."""
        return is_discovery(self.command)


def is_discovery(command: str) -> bool:
    """Whether a stored run's command found phones only (``discover``, ``portal:discover``)."""
    return command.rsplit(":", 1)[-1] == "discover"


def local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


class History:
    """The history table of one store file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = store.connect(path)
        try:
            self.db.executescript(SCHEMA)
        except sqlite3.Error as e:
            self.db.close()
            raise store.StoreError(f"{path}: {e}") from None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def add(
        self,
        report_json: str,
        command: str,
        lang: str,
        exit_code: int,
        started: datetime | None = None,
        options: dict[str, Any] | None = None,
        keep: int = DEFAULT_KEEP,
    ) -> int:
        """Store one run (``report_json``: the report as printed); keep the newest ``keep``.
        Returns the run's id."""
        s = _summary(json.loads(report_json))
        started = (started or datetime.now(UTC)).astimezone(UTC)
        row = (
            started.isoformat(timespec="seconds"),
            command,
            json.dumps(options or {}, ensure_ascii=False, sort_keys=True),
            json.dumps(s["scope"], ensure_ascii=False),
            lang,
            exit_code,
            s["duration_s"],
            s["phones"],
            s["critical"],
            s["warning"],
            s["info"],
            s["errors"],
            s["schema_version"],
            zlib.compress(report_json.encode("utf-8"), 6),
        )
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                cur = self.db.execute(
                    "INSERT INTO run_history (started, command, options, scope, lang, exit_code,"
                    " duration_s, phones, critical, warning, info, errors, schema_version,"
                    " report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                self._prune(keep)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise store.StoreError(f"{self.path}: {e}") from None
        return int(cur.lastrowid or 0)

    def _prune(self, keep: int) -> None:
        self.db.execute(
            "DELETE FROM run_history WHERE id NOT IN"
            " (SELECT id FROM run_history ORDER BY id DESC LIMIT ?)",
            (max(keep, 0),),
        )

    def prune(self, keep: int) -> None:
        """Keep only the newest ``keep`` runs."""
        try:
            self._prune(keep)
        except sqlite3.Error as e:
            raise store.StoreError(f"{self.path}: {e}") from None

    def list(self, limit: int = 20) -> list[Run]:
        """The newest runs first, without their reports."""
        return self._select(f"SELECT {_COLUMNS} FROM run_history ORDER BY id DESC LIMIT ?", limit)

    def count(self) -> int:
        try:
            return int(self.db.execute("SELECT COUNT(*) FROM run_history").fetchone()[0])
        except sqlite3.Error as e:
            raise store.StoreError(f"{self.path}: {e}") from None

    def get(self, run_id: int) -> Run | None:
        """One run with its report, or None."""
        runs = self._select(f"SELECT {_COLUMNS}, report FROM run_history WHERE id = ?", run_id)
        return runs[0] if runs else None

    def last(self) -> Run | None:
        """The newest run with its report, or None when the history is empty."""
        runs = self._select(f"SELECT {_COLUMNS}, report FROM run_history ORDER BY id DESC LIMIT 1")
        return runs[0] if runs else None

    def resolve(self, ref: str) -> Run | None:
        """A run named on the command line: its number, or ``last`` (the newest)."""
        ref = ref.strip()
        if ref.lower() in ("last", "dernier"):
            return self.last()
        if ref.isdigit():
            return self.get(int(ref))
        return None

    def _select(self, sql: str, *args: Any) -> list[Run]:
        try:
            rows = self.db.execute(sql, args).fetchall()
            return [_run(r) for r in rows]
        except (sqlite3.Error, zlib.error, ValueError) as e:
            raise store.StoreError(f"{self.path}: {e}") from None


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What a run's row says of its report: scope, duration, counts."""
    severities = [f.get("severity") for f in doc.get("findings") or []]
    return {
        "scope": list(doc.get("scope") or []),
        "duration_s": float(doc.get("duration_s") or 0.0),
        "phones": len(doc.get("devices") or []),
        **{s: severities.count(s) for s in SEVERITIES},
        "errors": len(doc.get("errors") or []),
        "schema_version": str(doc.get("schema_version", "")),
    }


def _run(row: tuple[Any, ...]) -> Run:
    run = Run(
        id=row[0],
        started=row[1],
        command=row[2],
        options=json.loads(row[3] or "{}"),
        scope=json.loads(row[4] or "[]"),
        lang=row[5],
        exit_code=row[6],
        duration_s=row[7],
        phones=row[8],
        critical=row[9],
        warning=row[10],
        info=row[11],
        errors=row[12],
        schema_version=row[13],
    )
    if len(row) > 14:
        run.report_json = zlib.decompress(row[14]).decode("utf-8")
    return run


def record(
    cfg: Any,
    report_json: str,
    command: str,
    lang: str,
    exit_code: int,
    started: datetime | None = None,
    options: dict[str, Any] | None = None,
) -> int | None:
    """Store a run in the configured store; its id, or None when nothing was stored.

    Never raises for the store: a history that cannot be written is a warning on stderr
    (the command's exit code stays what it was). A report breaking the published schema
    still raises when schema checking is on (agent/report/schema.py)."""
    from agent.report import schema

    schema.check_text(report_json, "stored report")
    keep = getattr(cfg, "history_keep", DEFAULT_KEEP)
    try:
        path = store.path_for(getattr(cfg, "store_path", None))
        if keep <= 0:  # keep none: forget what an earlier setting kept
            if path.exists():
                with History(path) as h:
                    h.prune(0)
            return None
        with History(path) as h:
            return h.add(report_json, command, lang, exit_code, started, options, keep)
    except (store.StoreError, OSError, sqlite3.Error, ValueError, RuntimeError) as e:
        # RuntimeError: no home folder to find the default place in
        sys.stderr.write(f"phonediag: {t('history.not_stored', lang, why=e)}\n")
        return None


# --------------------------------------------------------------------- the loader


def load_report(doc: dict[str, Any]) -> Report:
    """The :class:`Report` a JSON report (``json.py``'s output, parsed) was made from.
    ``site`` is not read: it is derived from the facts."""
    devices = [
        Device(
            ip=d["ip"],
            mac=d.get("mac"),
            vendor=d.get("vendor"),
            model=d.get("model"),
            firmware=d.get("firmware"),
            found_by=list(d.get("found_by") or []),
            evidence={m: dict(a) for m, a in (d.get("evidence") or {}).items()},
            identified_by=list(d.get("identified_by") or []),
        )
        for d in doc.get("devices") or []
    ]
    facts = [
        Fact(
            subject=f["subject"],
            key=f["key"],
            value=UNKNOWN if f.get("unknown") else f.get("value"),
            source=f.get("source", ""),
            evidence=f.get("evidence", ""),
        )
        for f in doc.get("facts") or []
    ]
    findings = [
        Finding(
            rule=f["rule"],
            device=f.get("device"),
            severity=f["severity"],
            title=f.get("title", ""),
            explanation=f.get("explanation", ""),
            remedies=list(f.get("remedies") or []),
            guide=f.get("guide", ""),
            matched=dict(f.get("matched") or {}),
            line=f.get("line"),
        )
        for f in doc.get("findings") or []
    ]
    errors = [
        ProbeError(step=e["step"], reason=e.get("reason", ""), subject=e.get("subject"))
        for e in doc.get("errors") or []
    ]
    return Report(
        duration_s=float(doc.get("duration_s") or 0.0),
        scope=list(doc.get("scope") or []),
        devices=devices,
        facts=facts,
        findings=findings,
        errors=errors,
        timings=dict(doc.get("timings") or {}),
        explain=doc.get("explain"),
    )


# --------------------------------------------------------------------- the listing


def listing(runs: list[Run], total: int, lang: str) -> str:
    """``report list``: one line per run, newest first."""
    if not runs:
        return t("report.empty", lang)
    cols = ("id", "when", "command", "phones", "critical", "warning", "info", "exit")
    heads = [t(f"report.col.{c}", lang) for c in cols]
    rows = [
        [
            str(r.id),
            r.when(),
            _command_line(r),
            str(r.phones),
            str(r.critical),
            str(r.warning),
            str(r.info),
            str(r.exit_code),
        ]
        for r in runs
    ]
    widths = [max(len(x) for x in col) for col in zip(heads, *rows, strict=True)]
    left = {1, 2}  # date and command read left-aligned; numbers right-aligned

    def line(cells: list[str]) -> str:
        out = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    title = t("report.list.title", lang, shown=len(runs), total=total)
    return "\n".join([title, "", line(heads), *(line(r) for r in rows)])


def _command_line(run: Run) -> str:
    """``diagnose --symptom no-ring``: the command and the options that change what it does."""
    words = [run.command]
    for key, value in sorted(run.options.items()):
        if value is True:
            words.append(f"--{key}")
        elif value not in (None, False, "", []):
            words.append(f"--{key} {value}")
    text = " ".join(words)
    return text if len(text) <= 40 else text[:39] + "…"


def header(run: Run, lang: str) -> str:
    """The line above a stored report: which run, when, what command, its exit code."""
    return t(
        "report.header",
        lang,
        id=run.id,
        when=run.when(),
        command=_command_line(run),
        code=run.exit_code,
    )


# ------------------------------------------------------------------------ the diff

DEVICE_FIELDS = ("vendor", "model", "firmware", "ip", "mac")


def _pair_devices(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(pairs, gone, appeared): the same phone in both runs is the same MAC, else (when a
    run did not see its MAC) the same IP with no conflicting MAC."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    left, right = list(old), list(new)
    for a in list(left):
        b = next((b for b in right if a.get("mac") and b.get("mac") == a.get("mac")), None)
        if b is not None:
            pairs.append((a, b))
            left.remove(a)
            right.remove(b)
    for a in list(left):
        b = next(
            (
                b
                for b in right
                if b["ip"] == a["ip"] and not (a.get("mac") and b.get("mac"))  # else: another
            ),
            None,
        )
        if b is not None:
            pairs.append((a, b))
            left.remove(a)
            right.remove(b)
    return pairs, left, right


def _ip_key(ip: str | None) -> tuple[int, int, str]:
    """Addresses in numeric order (IPv4 first), anything else after them."""
    try:
        addr = ipaddress.ip_address(ip or "")
        return (addr.version, int(addr), "")
    except ValueError:
        return (99, 0, ip or "")


def diff(a: Run, b: Run) -> dict[str, Any]:
    """What changed from run ``a`` to run ``b`` (JSON-ready: ``report diff --json``).

    ``devices``: ``appeared``, ``disappeared`` (their summaries), ``changed`` (the phone as
    now, with ``changes``: field -> [before, after] for vendor, model, firmware, IP, MAC).
    ``findings``: ``new``, ``resolved``, ``still`` — each finding with its ``subject``:
    ``site``, ``line:N`` (a line no phone was found for) or the phone's IP, the phone
    as in ``b`` when it is in both runs (a phone whose IP changed keeps its findings), and
    ``device``, that phone's summary. ``compared_findings`` is false when either run is a
    discovery (no findings to compare)."""
    da, db = a.document(), b.document()
    pairs, gone, appeared = _pair_devices(da.get("devices", []), db.get("devices", []))
    changed = []
    for x, y in pairs:
        changes = {k: [x.get(k), y.get(k)] for k in DEVICE_FIELDS if x.get(k) != y.get(k)}
        if changes:
            changed.append({**_device_summary(y), "changes": changes})
    # Who each finding is about, the same in both runs for the same phone.
    who_a: dict[str, tuple[str, dict[str, Any]]] = {x["ip"]: (f"ip:{y['ip']}", y) for x, y in pairs}
    who_b: dict[str, tuple[str, dict[str, Any]]] = {y["ip"]: (f"ip:{y['ip']}", y) for _, y in pairs}
    who_a |= {x["ip"]: (f"before:{x['ip']}", x) for x in gone}
    who_b |= {y["ip"]: (f"ip:{y['ip']}", y) for y in appeared}
    compared = not a.discovery and not b.discovery
    old = _findings(da, who_a) if compared else {}
    new = _findings(db, who_b) if compared else {}

    def by_severity(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda e: SEVERITIES.index(e["severity"]))

    return {
        "from": a.to_dict(),
        "to": b.to_dict(),
        "devices": {
            "appeared": [_device_summary(d) for d in sorted(appeared, key=_by_ip)],
            "disappeared": [_device_summary(d) for d in sorted(gone, key=_by_ip)],
            "changed": sorted(changed, key=_by_ip),
        },
        "compared_findings": compared,
        "findings": {
            "new": by_severity([e for k, e in new.items() if k not in old]),
            "resolved": by_severity([e for k, e in old.items() if k not in new]),
            "still": by_severity([e for k, e in new.items() if k in old]),
        },
    }


def _by_ip(d: dict[str, Any]) -> tuple[int, int, str]:
    return _ip_key(d.get("ip"))


def _device_summary(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d.get(k) for k in ("ip", "mac", "vendor", "model", "firmware")}


def _findings(
    doc: dict[str, Any], who: dict[str, tuple[str, dict[str, Any]]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """A run's findings by (rule, who it is about), each as a diff entry."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for f in doc.get("findings", []):
        device = None
        if f.get("device"):
            key, d = who.get(f["device"], (f"ip:{f['device']}", None))
            subject = f["device"] if d is None else d["ip"]
            device = _device_summary(d) if d is not None else None
        elif f.get("line"):
            key = subject = f"line:{f['line']}"
        else:
            key = subject = "site"
        entry = {
            "subject": subject,
            "rule": f["rule"],
            "severity": f["severity"],
            "title": f.get("title", ""),
            "device": device,
            "line": f.get("line"),
        }
        out.setdefault((f["rule"], key), entry)
    return out


def _vendor_name(vendor: str | None) -> str | None:
    from agent import identify

    v = identify.vendor(vendor)
    return v.name if v else vendor


def _phone_label(d: dict[str, Any] | None, ip: str, lang: str) -> str:
    name = ""
    if d:
        name = " ".join(x for x in (_vendor_name(d.get("vendor")), d.get("model")) if x)
    label = t("finding.device", lang, ip=ip)
    return f"{label}, {name}" if name else label


def _subject_label(e: dict[str, Any], lang: str) -> str:
    subject = e["subject"]
    if subject == "site":
        return t("finding.site", lang)
    if subject.startswith("line:"):
        return t("finding.line_only", lang, line=subject.removeprefix("line:"))
    return _phone_label(e["device"], subject, lang)


def diff_text(d: dict[str, Any], lang: str) -> str:
    """``report diff`` for a person: phones, then findings grouped per site, phone, line."""
    a, b = d["from"], d["to"]
    out = [
        t(
            "report.diff.title",
            lang,
            a=a["id"],
            when_a=local_time(a["started"]),
            cmd_a=a["command"],
            b=b["id"],
            when_b=local_time(b["started"]),
            cmd_b=b["command"],
        ),
        "",
    ]
    dev = d["devices"]
    out.append(
        t(
            "report.diff.phones",
            lang,
            appeared=len(dev["appeared"]),
            disappeared=len(dev["disappeared"]),
            changed=len(dev["changed"]),
        )
    )
    for x in dev["appeared"]:
        out.append(f"  + {_phone_label(x, x['ip'], lang)} ({t('report.diff.appeared', lang)})")
    for x in dev["disappeared"]:
        out.append(f"  - {_phone_label(x, x['ip'], lang)} ({t('report.diff.disappeared', lang)})")
    for x in dev["changed"]:
        what = "; ".join(
            f"{t(f'report.diff.field.{k}', lang)} {v[0] or '-'} → {v[1] or '-'}"
            for k, v in x["changes"].items()
        )
        out.append(
            t("report.diff.changed_line", lang, phone=_phone_label(x, x["ip"], lang), what=what)
        )
    out.append("")
    if not d["compared_findings"]:
        which = a["id"] if is_discovery(a["command"]) else b["id"]
        out.append(t("report.diff.not_compared", lang, id=which))
        return "\n".join(out)
    fnd = d["findings"]
    out.append(
        t(
            "report.diff.findings",
            lang,
            new=len(fnd["new"]),
            resolved=len(fnd["resolved"]),
            still=len(fnd["still"]),
        )
    )
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for status in ("new", "resolved", "still"):
        for e in fnd[status]:
            groups.setdefault(e["subject"], []).append((status, e))

    def order(subject: str) -> tuple[int, tuple[int, int, str]]:
        if subject == "site":
            return (0, (0, 0, ""))
        if subject.startswith("line:"):
            return (2, (0, 0, subject))
        return (1, _ip_key(subject))

    status_w = max(len(t(f"report.diff.{s}", lang)) for s in ("new", "resolved", "still"))
    sev_w = max(len(t(f"severity.{s}", lang)) for s in SEVERITIES)
    for subject in sorted(groups, key=order):
        entries = groups[subject]
        out.append(f"  {_subject_label(entries[0][1], lang)}")
        for status, e in entries:
            label = t(f"report.diff.{status}", lang).ljust(status_w)
            sev = t(f"severity.{e['severity']}", lang).ljust(sev_w)
            out.append(f"    {label}  {sev}  {e['rule']} — {e['title']}")
    return "\n".join(out).rstrip()
