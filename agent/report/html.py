"""The HTML report: one self-contained file to look at, print, or attach to a ticket.

Inline CSS and SVG only: no script, no font, no image or link to fetch (a
Content-Security-Policy says so to the browser too), so it opens offline and can never
call anywhere. Every value that came from the network (a phone's User-Agent, an mDNS
name, a fact) is escaped (:mod:`agent.report.escape`). Sections: the header (scope, date,
duration, counts by severity), the picture of the site (:mod:`agent.report.site`), a
card per phone, the findings with their steps and remedies, the checks that could not
complete. Text in the report's language, through :mod:`agent.i18n`.
"""

from __future__ import annotations

import errno
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from agent import __version__
from agent.i18n import t
from agent.judge.loader import SEVERITIES
from agent.model import SCHEMA_VERSION, UNKNOWN, Device, Finding, Report
from agent.report import site
from agent.report.escape import text as e
from agent.report.places import places_of

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"

CSS = """
:root{--critical:#c62828;--warning:#d84315;--info:#1565c0;--ok:#546e7a;--ink:#1b1f23;
--muted:#57606a;--rule:#d0d7de;--critical-bg:#fdecea;--warning-bg:#fff1e6;--info-bg:#e8f0fe}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;
color:var(--ink);background:#fff;margin:0 auto;max-width:62rem;padding:1rem;line-height:1.45;
-webkit-print-color-adjust:exact;print-color-adjust:exact;overflow-wrap:anywhere}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}
h2{font-size:1.2rem;border-bottom:2px solid var(--rule);padding-bottom:.2rem;margin-top:1.8rem}
h3{font-size:1.05rem;margin:.1rem 0 .4rem}
h4{font-size:.95rem;margin:.7rem 0 .2rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}
.counts span{display:inline-block;margin:.1rem .4rem .1rem 0}
.verdict{font-weight:600;font-size:1.05rem}
.sev{display:inline-block;padding:0 .45em;border-radius:4px;color:#fff;font-weight:700;
font-size:.8em;letter-spacing:.02em;vertical-align:.1em}
.sev.critical{background:var(--critical)}.sev.warning{background:var(--warning)}
.sev.info{background:var(--info)}.sev.ok{background:var(--ok)}
svg.site{display:block;width:100%;max-width:40rem;height:auto;margin:.5rem auto}
svg.site text{font-family:system-ui,"Liberation Sans",Arial,sans-serif;text-anchor:middle;
font-size:13.5px;fill:var(--ink)}
svg.site .name{font-weight:700;font-size:15px}
svg.site .box{fill:#fff;stroke:var(--ok);stroke-width:1.5}
svg.site .wire{stroke:#90a4ae;stroke-width:2}
svg.site .fault .box{stroke-width:3.5}
svg.site .fault .refs{font-weight:700}
svg.site .count{fill:#fff;font-weight:700;font-size:14px}
svg.site .critical .box{fill:var(--critical-bg);stroke:var(--critical)}
svg.site .critical .badge,svg.site .critical .refs{fill:var(--critical)}
svg.site .warning .box{fill:var(--warning-bg);stroke:var(--warning)}
svg.site .warning .badge,svg.site .warning .refs{fill:var(--warning)}
svg.site .info .box{fill:var(--info-bg);stroke:var(--info)}
svg.site .info .badge,svg.site .info .refs{fill:var(--info)}
svg.site [data-place=more] .box{stroke-dasharray:5 4}
.legend{text-align:center;color:var(--muted);font-size:.9rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:.8rem}
.card,.finding,.errors li{break-inside:avoid}
.card{border:1px solid var(--rule);border-left:6px solid var(--ok);border-radius:6px;
padding:.6rem .8rem}
.card.critical,.finding.critical{border-left-color:var(--critical)}
.card.warning,.finding.warning{border-left-color:var(--warning)}
.card.info,.finding.info{border-left-color:var(--info)}
.card ul{margin:.2rem 0 0;padding-left:1.1rem}
.finding{border:1px solid var(--rule);border-left:6px solid var(--ok);border-radius:6px;
padding:.7rem .9rem;margin:.9rem 0}
.meta{color:var(--muted);font-size:.92rem;margin:.1rem 0 .5rem}
ol.steps li,ol.manual li{margin:.15rem 0}
ul.remedies{padding-left:1.1rem}
ul.remedies li{margin:.35rem 0}
.kind{font-style:italic;color:var(--muted)}
code{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:.9em;
background:#f3f4f6;border-radius:3px;padding:0 .25em}
a{color:inherit}
footer{margin-top:2rem;color:var(--muted);font-size:.85rem;border-top:1px solid var(--rule);
padding-top:.5rem}
@media (max-width:32rem){body{padding:.6rem}h1{font-size:1.25rem}}
@media print{body{max-width:none;padding:0;font-size:11pt}a{text-decoration:none}
h2{break-after:avoid}svg.site{max-width:34rem}}
"""


def _sev_label(sev: str, lang: str) -> str:
    return f'<span class="sev {sev}">{e(t(f"severity.{sev}", lang))}</span>'


def _worst(findings: list[Finding]) -> str | None:
    return min((f.severity for f in findings), key=SEVERITIES.index) if findings else None


def _header(report: Report, lang: str, when: datetime) -> list[str]:
    counts = {s: sum(f.severity == s for f in report.findings) for s in SEVERITIES}
    rows = [
        (t("html.scope", lang), ", ".join(report.scope) or "-"),
        (t("html.date", lang), when.strftime("%Y-%m-%d %H:%M UTC%z")),
        (t("html.duration", lang), t("html.duration_value", lang, s=report.duration_s)),
        (t("html.phones", lang), str(len(report.devices))),
    ]
    out = [f"<header><h1>{e(t('html.title', lang))}</h1>", '<dl class="facts">']
    out += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows]
    shown = " ".join(
        f'<span class="count-{s}" data-count="{counts[s]}">{_sev_label(s, lang)} {counts[s]}</span>'
        for s in SEVERITIES
    )
    out.append(f'<dt>{e(t("html.counts", lang))}</dt><dd class="counts">{shown}</dd></dl>')
    if not report.findings:
        out.append(f'<p class="verdict all-clear">{e(t("findings.none", lang))}</p>')
    out.append("</header>")
    return out


def _picture(report: Report, lang: str) -> list[str]:
    out = [
        '<section id="site"><h2>' + e(t("html.picture.title", lang)) + "</h2>",
        site.render(report, lang),
        f'<p class="legend">{e(t("html.legend", lang))} '
        + " ".join(_sev_label(s, lang) for s in SEVERITIES)
        + f' <span class="sev ok">{e(t("html.legend.ok", lang))}</span></p>',
    ]
    if not report.findings:
        out.append(f"<p>{e(t('html.picture.all_clear', lang))}</p>")
    out.append("</section>")
    return out


def _own_facts(report: Report) -> dict[str, dict[str, Any]]:
    """Each subject's facts (unknown as None), read once for every card."""
    out: dict[str, dict[str, Any]] = {}
    for f in report.facts:
        out.setdefault(f.subject, {})[f.key] = None if f.value is UNKNOWN else f.value
    return out


def _registration(facts: dict[str, Any], lang: str) -> list[str]:
    def state(value: Any) -> str:
        if value is None:
            return t("html.reg.unknown", lang)
        return t("html.reg.yes" if value is True else "html.reg.no", lang)

    phone, line = facts.get("sip.registered"), facts.get("line.registered")
    if phone is None and line is None:
        return []
    parts = [t("html.reg.phone", lang, state=state(phone))]
    parts.append(t("html.reg.line", lang, state=state(line)))
    last = facts.get("line.last_registration")
    if last:
        parts.append(t("html.reg.last", lang, when=str(last).replace("T", " ")))
    return parts


def _card(d: Device, facts: dict[str, Any], numbered: list[tuple[int, Finding]], lang: str) -> str:
    mine = [(n, f) for n, f in numbered if f.device == d.ip]
    sev = _worst([f for _n, f in mine])
    rows: list[tuple[str, str]] = [
        (t("col.ip", lang), d.ip),
        (t("col.mac", lang), d.mac or "-"),
        (t("col.firmware", lang), d.firmware or "-"),
        (t("col.found_by", lang), ", ".join(sorted(d.found_by)) or "-"),
    ]
    announced = d.evidence.get("mdns", {}).get("name") or d.evidence.get("snmp", {}).get("sysName")
    if announced:
        rows.append((t("html.card.name", lang), announced))
    if d.evidence.get("sip", {}).get("agent"):
        rows.append((t("html.card.user_agent", lang), d.evidence["sip"]["agent"]))
    line = facts.get("line.number")
    if line:
        rows.append((t("html.card.line", lang), str(line)))
    registration = _registration(facts, lang)
    name = " ".join(x for x in (site.vendor_name(d.vendor), d.model) if x) or d.ip
    out = [
        f'<article class="card{" " + sev if sev else ""}" id="phone-{e(d.ip)}"'
        f' data-device="{e(d.ip)}"><h3>{e(name)}</h3><dl class="facts">',
        *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows),
        "</dl>",
        *(
            [f"<h4>{e(t('html.card.registration', lang))}</h4><ul>"]
            + [f"<li>{e(r)}</li>" for r in registration]
            + ["</ul>"]
            if registration
            else []
        ),
        f"<h4>{e(t('html.card.findings', lang))}</h4>",
    ]
    if not mine:
        out.append(f"<p>{e(t('html.card.no_finding', lang))}</p>")
    else:
        out.append("<ul>")
        for n, f in mine:
            places = [p for p in places_of(f) if p != "phone"]
            where = (
                " — " + e(t("html.card.elsewhere", lang, place=_places(places, lang)))
                if places
                else ""
            )
            out.append(
                f'<li>{_sev_label(f.severity, lang)} <a href="#finding-{n}">{n}. {e(f.title)}'
                f"</a>{where}</li>"
            )
        out.append("</ul>")
    out.append("</article>")
    return "".join(out)


def _places(places: list[str], lang: str) -> str:
    return ", ".join(t(f"html.where.{p}", lang) for p in places)


def _phones(report: Report, lang: str, numbered: list[tuple[int, Finding]]) -> list[str]:
    out = [f'<section id="phones"><h2>{e(t("devices.title", lang, n=len(report.devices)))}</h2>']
    if not report.devices:
        scope = ", ".join(report.scope) or "-"
        out.append(f"<p>{e(t('devices.none', lang, scope=scope))}</p>")
    else:
        out.append('<div class="cards">')
        own = _own_facts(report)
        out += [_card(d, own.get(d.ip, {}), numbered, lang) for d in report.devices]
        out.append("</div>")
    out.append("</section>")
    return out


def _offers(report: Report) -> list[Any]:
    """The remedies that answer the findings (``agent.remedies.offers``), decided on the
    report's own facts."""
    from agent.config import Config
    from agent.remedies import offers

    return offers.offers(report, Config())


def _remedies(f: Finding, offers: list[Any], lang: str) -> list[str]:
    from agent.remedies.render import steps_of

    mine = [o for o in offers if o.finding is f]
    out = [f"<h4>{e(t('html.remedies.title', lang))}</h4>"]
    if not mine:
        return [*out, f"<p>{e(t('html.remedies.none', lang))}</p>"]
    out.append('<ul class="remedies">')
    for o in mine:
        head = f"<code>{e(o.remedy.id)}</code> — {e(o.remedy.title(lang))}"
        if o.status == "ready":
            command = t("remedy.list.apply", lang, id=o.remedy.id, device=o.target.subject)
            body = f'<br><span class="kind">{e(t("html.remedy.ready", lang))}</span> '
            body += f"<code>{e(command)}</code>"
        elif o.status == "manual":
            body = f'<br><span class="kind">{e(t("html.remedy.manual", lang))}</span>'
            if o.why:
                body += f" {e(o.why.text(lang))}"
            steps = steps_of(o.remedy, o.target, lang)
            body += '<ol class="manual">' + "".join(f"<li>{e(s)}</li>" for s in steps) + "</ol>"
        else:
            why = o.why.text(lang) if o.why else "?"
            body = f'<br><span class="kind">{e(t("html.remedy.unavailable", lang, why=why))}</span>'
        out.append(
            f'<li class="remedy {e(o.status)}" data-remedy="{e(o.remedy.id)}">{head}{body}</li>'
        )
    out.append("</ul>")
    return out


def _findings(report: Report, lang: str, offers: list[Any]) -> list[str]:
    out = [f'<section id="findings"><h2>{e(t("findings.title", lang))}</h2>']
    if not report.findings:
        out.append(f'<p class="verdict all-clear">{e(t("findings.none", lang))}</p>')
    for n, f in enumerate(report.findings, 1):
        places = places_of(f)
        meta = [
            t("html.finding.about", lang, where=site.about(report, f, lang)),
            t("html.finding.place", lang, places=_places(places, lang)),
            t("html.finding.rule", lang, id=f.rule),
        ]
        out += [
            f'<article class="finding {e(f.severity)}" id="finding-{n}" data-rule="{e(f.rule)}"'
            f' data-fault-places="{e(" ".join(places))}">',
            f"<h3>{n}. {_sev_label(f.severity, lang)} {e(f.title)}</h3>",
            '<p class="meta">' + " · ".join(e(m) for m in meta) + "</p>",
            f"<p>{e(f.explanation)}</p>",
        ]
        if f.remedies:
            out.append(f"<h4>{e(t('finding.steps', lang))}</h4>")
            out.append('<ol class="steps">' + "".join(f"<li>{e(s)}</li>" for s in f.remedies))
            out.append("</ol>")
        out.append(f'<p class="guide">{e(t("finding.guide", lang, guide=f.guide))}</p>')
        out += _remedies(f, offers, lang)
        out.append("</article>")
    out.append("</section>")
    return out


def _errors(report: Report, lang: str) -> list[str]:
    if not report.errors:
        return []
    out = [f'<section id="errors"><h2>{e(t("errors.title", lang))}</h2><ul class="errors">']
    for err in report.errors:
        step = f"{err.step} ({err.subject})" if err.subject else err.step
        out.append(f"<li>{e(t('html.errors.step', lang, step=step, reason=err.reason))}</li>")
    out.append("</ul></section>")
    return out


def render(report: Report, lang: str, *, when: datetime | None = None) -> str:
    """The whole report as one HTML5 document in ``lang`` (fr or en). ``when``: the
    date to show (the diagnosis's, when known; else now)."""
    when = (when or datetime.now()).astimezone()
    report = site.known_severities(report)
    numbered = list(enumerate(report.findings, 1))
    offers = _offers(report) if report.findings else []
    body = [
        *_header(report, lang, when),
        "<main>",
        *_picture(report, lang),
        *_phones(report, lang, numbered),
        *_findings(report, lang, offers),
        *_errors(report, lang),
        "</main>",
        "<footer>"
        + e(t("html.footer", lang, version=__version__, schema=SCHEMA_VERSION))
        + "</footer>",
    ]
    title = f"{t('html.title', lang)} — {', '.join(report.scope) or '-'}"
    head = [
        "<!DOCTYPE html>",
        f'<html lang="{e(lang)}">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f'<meta name="generator" content="phonediag {e(__version__)}">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
    ]
    return "\n".join([*head, *body, "</body>", "</html>", ""])


def check_writable(path: str | os.PathLike[str]) -> None:
    """OSError unless a report can be written at ``path``: tried for real, with an empty
    temporary file beside it (removed at once); ``path`` itself is left untouched."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    tmp.unlink()


def write(path: str | os.PathLike[str], content: str) -> None:
    """Write ``content`` to ``path`` atomically: a temporary file beside it, then a
    rename, so a reader never sees half a report. OSError when it cannot be written."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
