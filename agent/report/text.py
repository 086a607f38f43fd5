"""The report for a person: a table of phones, then the diagnosis grouped by phone, line
and site, with numbered steps.

Colour and box drawing only on a terminal; plain text in a log, a ticket or with
``NO_COLOR``: no colour, no line-drawing characters, a table as aligned columns under a
row of dashes, headings as ``== ... ==``, so it reads well in a screen reader too.
Text that comes from devices is printed as text, never as markup, and stripped of
control characters.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from agent import identify
from agent.i18n import t
from agent.model import UNKNOWN, Device, Finding, Report

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
_ORDER = ("critical", "warning", "info")
_NO_WRAP = ("ip", "mac", "findings")
_PLAIN_MAX = 160  # a plain table may be wider than the plain width, up to this

# Aligned columns, the header underlined with dashes: nothing for a screen reader to
# read out but the words (rows: top, head, head row, mid, row, foot row, foot, bottom).
PLAIN_BOX = box.Box("    \n    \n -  \n    \n    \n -  \n    \n    \n", ascii=True)

__all__ = [
    "Console",
    "console",
    "device_title",
    "devices_table",
    "explain",
    "notes",
    "pinned_note",
    "render",
]


def console(file: TextIO | None = None) -> Console:
    file = file or sys.stdout
    plain = not file.isatty() or "NO_COLOR" in os.environ
    return Console(
        file=file,
        no_color=plain,
        highlight=False,
        soft_wrap=plain,
        width=None if not plain else 100,
    )


def _clean(text: str, limit: int = 200) -> str:
    """Text from devices or the network, safe to print (no control characters)."""
    from agent.report.evidence import clean

    return clean(text, limit)


def _masked(text: str) -> str:
    """A failure's reason: secrets masked (a URL with a login, ``Authorization:``...)."""
    from agent.report.evidence import Masker

    return _clean(Masker()(text), 1000)


def _vendor_name(vendor_id: str | None) -> str:
    v = identify.vendor(vendor_id)
    return v.name if v else (vendor_id or "-")


def device_title(device: Device, lang: str | None = None) -> str:
    """``10.66.0.11, Yealink SIP-T46S`` (``téléphone 10.66.0.11, ...`` with ``lang``)."""
    name = " ".join(
        x for x in (_vendor_name(device.vendor), device.model) if x and x != "-"
    ).strip()
    where = t("finding.device", lang, ip=device.ip) if lang else device.ip
    return _clean(f"{where}, {name}" if name else where)


def _where(report: Report, ip: str | None, lang: str, line: str | None = None) -> str:
    if ip is None:
        return t("finding.line_only", lang, line=line) if line else t("finding.site", lang)
    d = next((d for d in report.devices if d.ip == ip), None)
    where = device_title(d, lang) if d else t("finding.device", lang, ip=ip)
    return f"{where}, {t('finding.line', lang, line=line)}" if line else where


# ------------------------------------------------------------------------ phones table
def _known(value: Any) -> bool:
    return value is not None and value is not UNKNOWN


def _registration(facts: dict[str, list[Any]], lang: str) -> str:
    """The line's registration as the phone tells it (its own page) and as OVHcloud sees
    it (the registrar, the API); "-" when neither could tell."""

    def first(key: str) -> Any:
        return next((v for v in facts.get(key, []) if _known(v)), None)

    phone, line, status = first("sip.registered"), first("line.registered"), None
    if phone is False:
        status = first("sip.last_status")

    def word(value: bool, with_status: bool = False) -> str:
        if value:
            return t("registration.yes", lang)
        if with_status and status not in (None, ""):
            return t("registration.no_status", lang, status=status)
        return t("registration.no", lang)

    if phone is None and line is None:
        return "-"
    if phone is None or line is None or phone == line:
        return word(bool(phone if phone is not None else line), with_status=True)
    return t("registration.split", lang, phone=word(phone), line=word(line))


def devices_table(report: Report, lang: str, plain: bool, diagnosis: bool | None = None) -> Table:
    """The phones: IP, MAC, vendor, model, firmware, (registration,) how found,
    (number of findings). The diagnosis's columns show when the report is one."""
    diagnosis = bool(report.facts or report.findings) if diagnosis is None else diagnosis
    table = Table(
        title=t("devices.title", lang, n=len(report.devices)),
        box=PLAIN_BOX if plain else box.ROUNDED,
        show_edge=not plain,
        pad_edge=not plain,
        title_justify="left",
        title_style="" if plain else "bold",
        header_style="" if plain else "bold",
    )
    columns = ["ip", "mac", "vendor", "model", "firmware"]
    columns += ["registration", "found_by", "findings"] if diagnosis else ["found_by"]
    for col in columns:
        header = t(f"col.{col}", lang)
        table.add_column(
            header,
            justify="right" if col == "findings" else "left",
            no_wrap=col in _NO_WRAP,  # never cut an address
            overflow="fold",  # nor hide part of a name: a narrow terminal wraps it
        )
    facts: dict[str, dict[str, list[Any]]] = {}
    for f in report.facts:
        facts.setdefault(f.subject, {}).setdefault(f.key, []).append(f.value)
    for d in report.devices:
        row = [
            Text(_clean(d.ip)),
            Text(_clean(d.mac or "-")),
            Text(_clean(_vendor_name(d.vendor))),
            Text(_clean(d.model or "-")),
            Text(_clean(d.firmware or "-")),
        ]
        found_by = Text(_clean(", ".join(sorted(d.found_by))))
        if diagnosis:
            reg = _registration(facts.get(d.ip, {}), lang)
            registered = reg == t("registration.yes", lang)
            style = "" if plain or reg == "-" else "green" if registered else "yellow"
            mine = [f for f in report.findings if f.device == d.ip]
            ranks = [_ORDER.index(f.severity) for f in mine if f.severity in _ORDER]
            worst = min(ranks, default=None)
            count_style = "" if plain or worst is None else _STYLE[_ORDER[worst]]
            row += [Text(reg, style=style), found_by, Text(str(len(mine)), style=count_style)]
        else:
            row.append(found_by)
        table.add_row(*row)
    return table


def _natural_width(out: Console, table: Table) -> int:
    return Measurement.get(out, out.options.update_width(_PLAIN_MAX), table).maximum


def _print_table(out: Console, table: Table, plain: bool) -> None:
    """Plain: at its natural width (a log has no right edge: a long line rather than a
    folded cell). On a terminal too narrow for the frame: a lighter frame, then rich
    wraps the cells."""
    natural = _natural_width(out, table)
    if natural <= out.width:
        out.print(table)
    elif plain:
        width = out.width
        out.width = min(natural, _PLAIN_MAX)
        try:
            out.print(table)
        finally:
            out.width = width
    else:
        table.box, table.show_edge, table.pad_edge = box.SIMPLE_HEAD, False, False
        table.padding = (0, 1, 0, 0)
        out.print(table)


# ------------------------------------------------------------------------ findings
def _groups(report: Report, lang: str) -> list[tuple[str, list[Finding]]]:
    """Findings by what they are about (a phone, a line no phone was found for, the
    office), the groups in the order of their first finding (root causes first)."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        key = ("device", f.device) if f.device else ("line", f.line) if f.line else ("site", "")
        groups.setdefault(key, []).append(f)
    out = []
    for (kind, subject), findings in groups.items():
        if kind == "device":
            lines = {f.line for f in findings}
            line = lines.pop() if len(lines) == 1 else None
            title = _where(report, subject, lang, line)
        else:
            title = _where(report, None, lang, subject or None)
        out.append((title, findings))
    return out


def _count(report: Report, lang: str) -> str:
    counts = [(sev, sum(1 for f in report.findings if f.severity == sev)) for sev in _ORDER]
    detail = ", ".join(f"{n} {t(f'severity.{sev}', lang)}" for sev, n in counts if n)
    return t("findings.count", lang, n=len(report.findings), detail=detail)


def _heading(out: Console, text: str, plain: bool) -> None:
    if plain:
        out.print(f"== {text} ==", markup=False)
    else:
        out.print(f"[bold underline]{escape(text)}[/]", highlight=False)


def findings(report: Report, lang: str, out: Console) -> None:
    plain = out.no_color
    title = t("findings.title", lang)
    out.print(title if plain else f"[bold]{escape(title)}[/bold]", markup=not plain)
    if not report.findings:
        out.print(t("findings.none", lang), markup=False)
        return
    out.print(_count(report, lang), markup=False)
    n = 0
    for where, group in _groups(report, lang):
        out.print()
        _heading(out, where, plain)
        for f in group:
            n += 1
            sev = t(f"severity.{f.severity}", lang)
            head = Text(f"\n{n}. ")
            head.append(sev, style="" if plain else _STYLE.get(f.severity, ""))
            head.append(f" {f.title}")
            if f.device and f.line and f.line not in where:
                head.append(f" ({t('finding.line', lang, line=f.line)})")
            out.print(head)
            out.print(f"   {_clean(f.explanation, 10_000)}", markup=False)
            if f.remedies:
                out.print(f"   {t('finding.steps', lang)}", markup=False)
                for i, step in enumerate(f.remedies, 1):
                    out.print(f"     {i}. {step}", markup=False)
            out.print(f"   {t('finding.guide', lang, guide=f.guide)}", markup=False)


def pinned_note(report: Report, lang: str) -> str | None:
    """The router's SSH host key pinned on this first connection, said (trust on first
    use is never silent); None when nothing was pinned."""
    site = report.site_facts()
    if site.get("router.ssh_hostkey_pinned_now") is not True:
        return None
    host = _clean(str(site.get("router.ssh_host", "?")))
    fingerprint = _clean(str(site.get("router.ssh_hostkey", "?")))
    return t("router.hostkey_pinned", lang, host=host, fingerprint=fingerprint)


def notes(report: Report, lang: str, out: Console) -> None:
    """What a person must be told that is no problem (:func:`pinned_note`)."""
    note = pinned_note(report, lang)
    if note is not None:
        out.print()
        out.print(note, markup=False)


def render(report: Report, lang: str, out: Console, diagnosis: bool) -> None:
    plain = out.no_color
    scope = ", ".join(report.scope) or "-"
    if report.devices:
        _print_table(out, devices_table(report, lang, plain, diagnosis), plain)
    else:
        out.print(t("devices.none", lang, scope=scope), markup=False)
    if diagnosis:
        out.print()
        findings(report, lang, out)
        notes(report, lang, out)
    if report.errors:
        out.print()
        out.print(t("errors.title", lang), markup=False)
        for e in report.errors:
            where = f" [{e.subject}]" if e.subject else ""
            out.print(f"  - {e.step}{where}: {_masked(e.reason)}", markup=False)
    out.print()
    out.print(t("summary", lang, scope=scope, duration=report.duration_s), markup=False)


def explain(report: Report, out: Console) -> None:
    """Why each rule matched, did not, or could not be decided (unknown facts)."""
    verdict = {True: "MATCH", False: "no", None: "unknown"}
    out.print()
    for e in report.explain or []:
        where = f" [{e['device']}]" if e["device"] else ""
        out.print(f"{verdict[e['result']]:8} {e['rule']}{where}", markup=False)
        for line in e["trace"]:
            out.print(f"           {line}", markup=False)
