"""The report for a person: a table of phones, then the diagnosis with numbered steps.

Colour and box drawing only on a terminal; plain text in a log, a ticket or with
``NO_COLOR``, so it reads well in a screen reader too.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from agent import identify
from agent.i18n import t
from agent.model import Report

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


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


def _vendor_name(vendor_id: str | None) -> str:
    v = identify.vendor(vendor_id)
    return v.name if v else (vendor_id or "-")


def _where(report: Report, ip: str | None, lang: str, line: str | None = None) -> str:
    if ip is None:
        return t("finding.line_only", lang, line=line) if line else t("finding.site", lang)
    d = next((d for d in report.devices if d.ip == ip), None)
    name = " ".join(x for x in (_vendor_name(d.vendor), d.model) if x and x != "-") if d else ""
    where = t("finding.device", lang, ip=ip)
    where = f"{where}, {name}" if name else where
    return f"{where}, {t('finding.line', lang, line=line)}" if line else where


def devices_table(report: Report, lang: str, plain: bool) -> Table:
    table = Table(
        title=t("devices.title", lang, n=len(report.devices)),
        box=box.ASCII if plain else box.ROUNDED,
        title_justify="left",
    )
    for col in ("ip", "mac", "vendor", "model", "firmware", "found_by"):
        table.add_column(t(f"col.{col}", lang))
    for d in report.devices:
        table.add_row(
            d.ip,
            d.mac or "-",
            _vendor_name(d.vendor),
            d.model or "-",
            d.firmware or "-",
            ", ".join(sorted(d.found_by)),
        )
    return table


def render(report: Report, lang: str, out: Console, diagnosis: bool) -> None:
    plain = out.no_color
    scope = ", ".join(report.scope) or "-"
    if report.devices:
        out.print(devices_table(report, lang, plain))
    else:
        out.print(t("devices.none", lang, scope=scope))
    if diagnosis:
        out.print()
        out.print(f"[bold]{t('findings.title', lang)}[/bold]")
        if not report.findings:
            out.print(t("findings.none", lang))
        for i, f in enumerate(report.findings, 1):
            where = _where(report, f.device, lang, f.line)
            sev = t(f"severity.{f.severity}", lang)
            out.print(f"\n{i}. [{_STYLE[f.severity]}]{sev}[/] {f.title} ({where})", markup=True)
            out.print(f"   {f.explanation}", markup=False)
            if f.remedies:
                out.print(f"   {t('finding.steps', lang)}")
                for n, step in enumerate(f.remedies, 1):
                    out.print(f"     {n}. {step}", markup=False)
            out.print(f"   {t('finding.guide', lang, guide=f.guide)}", markup=False)
    if report.errors:
        out.print()
        out.print(t("errors.title", lang))
        for e in report.errors:
            out.print(f"  - {e.step}: {e.reason}", markup=False)
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
