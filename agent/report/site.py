"""The picture of the site, as inline SVG: OVHcloud, the Internet link, the router (NAT),
the office network and one node per phone; each finding marked where its fault sits
(:mod:`agent.report.places`).

A marked node carries what people and tests look for: a coloured outline and a badge
with the count (red critical, orange warning, blue info), a line naming the severity and
the numbers of the findings below, a ``<title>`` tooltip naming the findings, and the
attributes ``data-place``, ``data-rules`` (the rule ids, space-separated) and
``class="node fault critical|warning|info"``. A phone's node also has ``data-device``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from agent import identify
from agent.i18n import t
from agent.judge.loader import SEVERITIES
from agent.model import Finding, Report
from agent.report.escape import clip, text
from agent.report.places import places_of

W = 440  # the viewBox width: still readable scaled down to a phone's screen
CENTRE_W, MARGIN, LINE_H = 280, 16, 19
COL_W, ROW_H, ROW_GAP = 184, 66, 12
COLS_X = (34, 240)  # two columns of phones, each with its riser 12 px to its left
MAX_PHONES = 48  # past this, the phones with no finding are summed up in one node


@dataclass
class Mark:
    """The findings marked on one node, with their numbers in the report."""

    numbered: list[tuple[int, Finding]] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return min((f.severity for _n, f in self.numbered), key=SEVERITIES.index)

    @property
    def rules(self) -> list[str]:
        return list(dict.fromkeys(f.rule for _n, f in self.numbered))


def known_severities(report: Report) -> Report:
    """The report with a severity this version does not know (a stored report from
    another version) shown as info; the same report when there is none."""
    if all(f.severity in SEVERITIES for f in report.findings):
        return report
    findings = [
        f if f.severity in SEVERITIES else replace(f, severity="info") for f in report.findings
    ]
    return replace(report, findings=findings)


def node_key(place: str, finding: Finding) -> str:
    return f"phone:{finding.device}" if place == "phone" else place


def marks(report: Report) -> dict[str, Mark]:
    """Node key (``router``, ``phone:<ip>``...) -> the findings marked on it."""
    out: dict[str, Mark] = {}
    for n, f in enumerate(report.findings, 1):
        for place in places_of(f):
            out.setdefault(node_key(place, f), Mark()).numbered.append((n, f))
    return out


def vendor_name(vendor_id: str | None) -> str:
    v = identify.vendor(vendor_id)
    return v.name if v else (vendor_id or "")


def phone_name(report: Report, ip: str, lang: str) -> str:
    d = next((d for d in report.devices if d.ip == ip), None)
    name = " ".join(x for x in (vendor_name(d.vendor), d.model) if x) if d else ""
    return name or t("html.place.phone", lang)


def about(report: Report, f: Finding, lang: str) -> str:
    """Who the finding is about: a phone (and its line), a line alone, or the site."""
    if f.device is None:
        return t("finding.line_only", lang, line=f.line) if f.line else t("finding.site", lang)
    where = f"{t('finding.device', lang, ip=f.device)}, {phone_name(report, f.device, lang)}"
    return f"{where}, {t('finding.line', lang, line=f.line)}" if f.line else where


class _Picture:
    def __init__(self, report: Report, lang: str) -> None:
        self.report, self.lang = report, lang
        self.found = marks(report)
        self.out: list[str] = []

    def wire(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.out.append(f'<line class="wire" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/>')

    def node(
        self,
        key: str,
        place: str,
        xy: tuple[float, float],
        width: float,
        lines: list[str],
        height: float | None = None,
        attrs: str = "",
    ) -> float:
        """Draw one node; returns its height."""
        lang, mark = self.lang, self.found.get(key)
        x, y = xy
        if mark:
            sev = mark.severity
            nums = ", ".join(str(n) for n, _f in mark.numbered)
            sev_name = t(f"severity.{sev}", lang)
            lines = [*lines, t("html.node.refs", lang, severity=sev_name, refs=nums)]
            tip = [f"{lines[0]} — {t('html.node.findings', lang, n=len(mark.numbered))}"]
            tip += [
                t(
                    "html.node.finding",
                    lang,
                    n=n,
                    severity=t(f"severity.{f.severity}", lang),
                    title=f.title,
                    rule=f.rule,
                    about=about(self.report, f, lang),
                )
                for n, f in mark.numbered
            ]
            cls, rules = f"node fault {sev}", " ".join(mark.rules)
            self.out.append(f'<a href="#finding-{mark.numbered[0][0]}">')
        else:
            cls, rules, tip = "node", "", [lines[0]]
        h = height or 14 + LINE_H * len(lines)
        self.out.append(
            f'<g class="{cls}" data-place="{place}" data-rules="{text(rules)}"{attrs}>'
            f"<title>{text(chr(10).join(tip))}</title>"
            f'<rect class="box" x="{x}" y="{y}" width="{width}" height="{h}" rx="8"/>'
        )
        top = y + (h - LINE_H * len(lines)) / 2
        for i, value in enumerate(lines):
            kind = "name" if i == 0 else "refs" if mark and i == len(lines) - 1 else "sub"
            chars = int(width / (8.4 if kind == "name" else 7.2))
            self.out.append(
                f'<text class="{kind}" x="{x + width / 2}" y="{top + LINE_H * i + 14:.1f}">'
                f"{text(clip(value, chars))}</text>"
            )
        if mark:
            bx, by = x + width - 4, y + 4
            self.out.append(
                f'<circle class="badge" cx="{bx}" cy="{by}" r="12"/>'
                f'<text class="count" x="{bx}" y="{by + 5}">{len(mark.numbered)}</text>'
            )
        self.out.append("</g></a>" if mark else "</g>")
        return h

    def draw(self) -> float:
        """The whole picture, top (OVHcloud) to bottom (the phones); returns its height."""
        lang, site = self.lang, self.report.site_facts()
        cx, x0 = W / 2, (W - CENTRE_W) / 2
        ovh = [t("html.place.ovhcloud", lang)]
        if site.get("registrar.host"):
            ovh.append(t("html.node.registrar", lang, host=site["registrar.host"]))
        if site.get("provider.access"):
            ok = site["provider.access"] == "ok"
            ovh.append(t("html.node.api_ok" if ok else "html.node.api_not", lang))
        y = 16.0
        for key, lines in (
            ("ovhcloud", ovh),
            ("internet", [t("html.place.internet", lang), t("html.node.internet", lang)]),
        ):
            y += self.node(key, key, (x0, y), CENTRE_W, lines)
            self.wire(cx, y, cx, y + 22)
            y += 22
        router = [t("html.place.router", lang)]
        if site.get("lan.gateway"):
            router.append(t("html.node.gateway", lang, ip=site["lan.gateway"]))
        if site.get("lan.public_ip"):
            router.append(t("html.node.public_ip", lang, ip=site["lan.public_ip"]))
        y += self.node("router", "router", (x0, y), CENTRE_W, router)
        self.wire(cx, y, cx, y + 22)
        y += 22
        lan = [t("html.place.lan", lang), ", ".join(self.report.scope) or "-"]
        y += self.node("lan", "lan", (MARGIN, y), W - 2 * MARGIN, lan)
        return self.phones(y)

    def phones(self, y: float) -> float:
        """One node per phone under the LAN, in two columns; past MAX_PHONES the phones
        with no finding are summed up in one node. Returns the bottom of the picture."""
        lang, found = self.lang, self.found
        ips = [d.ip for d in self.report.devices]
        ips += [k.removeprefix("phone:") for k in found if k.startswith("phone:")]
        ips = list(dict.fromkeys(ips))
        marked = {ip for ip in ips if f"phone:{ip}" in found}
        room = max(MAX_PHONES - len(marked), 0)
        unmarked = [ip for ip in ips if ip not in marked]
        keep = marked | set(unmarked[:room])
        hidden = len(ips) - len(keep)
        items: list[str | None] = [ip for ip in ips if ip in keep]
        if hidden or not ips:
            items.append(None)
        top = y + 22
        for col, x in enumerate(COLS_X):
            rows = len(items[col::2])
            if rows:
                self.wire(x - 12, y, x - 12, top + (rows - 1) * (ROW_H + ROW_GAP) + ROW_H / 2)
        for i, ip in enumerate(items):
            x, ny = COLS_X[i % 2], top + (i // 2) * (ROW_H + ROW_GAP)
            self.wire(x - 12, ny + ROW_H / 2, x, ny + ROW_H / 2)
            if ip is None:
                what = [t("html.node.more", lang, n=hidden), t("html.node.more_sub", lang)]
                what = what if hidden else [t("html.node.none", lang)]
                self.node("more", "more", (x, ny), COL_W, what, ROW_H, f' data-count="{hidden}"')
            else:
                lines = [phone_name(self.report, ip, lang), ip]
                attrs = f' data-device="{text(ip)}"'
                self.node(f"phone:{ip}", "phone", (x, ny), COL_W, lines, ROW_H, attrs)
        return top + ((len(items) + 1) // 2) * (ROW_H + ROW_GAP)


def render(report: Report, lang: str) -> str:
    """The ``<svg>`` element of the site, marked with the report's findings."""
    picture = _Picture(known_severities(report), lang)
    height = picture.draw() + 8
    return (
        f'<svg class="site" viewBox="0 0 {W} {height:.0f}"'
        ' role="img" aria-labelledby="site-title site-desc">'
        f'<title id="site-title">{text(t("html.picture.title", lang))}</title>'
        f'<desc id="site-desc">{text(t("html.picture.desc", lang))}</desc>'
        + "".join(picture.out)
        + "</svg>"
    )
