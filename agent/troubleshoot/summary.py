"""The support summary: what OVHcloud's support asks for when a phone still fails (the
guides: "listing every test performed"; the control panel's reconfiguration needs the
phone's MAC and the office's public IP): the problem as the person put it, the message
on the screen, the phone (model, MAC, local IP, firmware, line), the public IP, the tests
phonediag ran and how each ended, what it found, and what was tried. Plain text, ready to
paste into a ticket; no secret is ever part of a report, so none can be here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent.i18n import t
from agent.model import UNKNOWN, Device, Report
from agent.troubleshoot.session import Result, vendor_name


def _fact(report: Report, subject: str, key: str) -> object | None:
    for f in report.facts:
        if f.subject == subject and f.key == key and f.value is not UNKNOWN:
            return f.value
    return None


def _phone(report: Report, d: Device, lang: str) -> str:
    name = " ".join(x for x in (vendor_name(d.vendor), d.model) if x) or "?"
    line = _fact(report, d.ip, "line.number")
    parts = [
        name,
        f"MAC {d.mac or '?'}",
        t("ts.sum.local_ip", lang, ip=d.ip),
        t("ts.sum.firmware", lang, fw=d.firmware or "?"),
    ]
    if line:
        parts.append(t("ts.sum.line", lang, line=line))
    registered = _fact(report, d.ip, "sip.registered")
    if registered is not None:
        parts.append(t("ts.sum.registered" if registered else "ts.sum.not_registered", lang))
    return ", ".join(parts)


def build(result: Result, lang: str, now: datetime | None = None) -> str:
    report = result.report
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    out = [t("ts.sum.title", lang), t("ts.sum.date", lang, when=when)]
    problem = result.choice.label(lang) if result.choice else t("ts.detect", lang)
    out.append(t("ts.sum.problem", lang, problem=problem))
    if result.message:
        out.append(t("ts.sum.message", lang, message=result.message))
    if report is None:
        return "\n".join(out)
    phones = [result.device] if result.device else report.devices
    if not phones:
        out.append(t("ts.sum.no_phone", lang))
    for d in phones:
        out.append(t("ts.sum.phone", lang, phone=_phone(report, d, lang)))
    public = _fact(report, "site", "lan.public_ip")
    out.append(t("ts.sum.public_ip", lang, ip=public or "?"))
    failed = {e.step for e in report.errors}
    tests = [
        f"{step} ({t('ts.sum.failed' if step in failed else 'ts.sum.ok', lang)})"
        for step in sorted(report.timings)
    ]
    out.append(t("ts.sum.tests", lang, tests=", ".join(tests) or "-"))
    for e in report.errors:
        out.append(f"  ! {e.step}: {e.reason}")
    out.append(t("ts.sum.findings", lang))
    mine = {result.device.ip, "site"} if result.device else None
    findings = [f for f in report.findings if mine is None or (f.device or "site") in mine]
    for f in findings:
        where = f.device or (f"{t('ts.sum.line_word', lang)} {f.line}" if f.line else "site")
        out.append(f"  - [{f.severity}] {f.rule} ({where}): {f.title}")
    if not findings:
        out.append("  - " + t("ts.sum.none", lang))
    out.append(t("ts.sum.tried", lang))
    for tried in result.tried:
        audit = f" ({t('ts.sum.audit', lang, run=tried.audit_run)})" if tried.audit_run else ""
        out.append(f"  - {tried.rule}: {tried.what} -> {tried.outcome}{audit}")
    if not result.tried:
        out.append("  - " + t("ts.sum.none", lang))
    out.append(t("ts.sum.contact", lang))
    return "\n".join(out)
