"""The HTML report: where each finding sits on the picture of the site (data: places.toml),
one self-contained file (nothing fetched from anywhere), escaped against hostile names, in
French and English, the empty report, and `phonediag diagnose --html FILE`."""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agent import catalog, cli, i18n, judge
from agent.config import Config
from agent.model import Device, Fact, Finding, ProbeError, Report
from agent.report import html, places, site

YEALINK = Device(
    "10.66.0.11",
    mac="80:5e:c0:09:00:c8",
    vendor="yealink",
    model="SIP-T46S",
    firmware="66.86.0.15",
    found_by=["sip", "mdns", "arp"],
    evidence={"mdns": {"name": "Yealink accueil"}, "sip": {"agent": "Yealink SIP-T46S"}},
)
CISCO = Device("10.66.0.12", vendor="cisco", model="SPA504G", found_by=["sip"])
LINE = {"line.number": "0033972000001", "line.billing_account": "ovhtel-12345678-1"}
SITE_OK = {"provider.access": "ok", "lan.public_ip": "198.51.100.7", "lan.gateway": "10.66.0.1"}


def make_report(
    facts: dict[str, dict], devices: list[Device] | None = None, lang: str = "fr"
) -> Report:
    devices = [YEALINK, CISCO] if devices is None else devices
    fs = [Fact(subject, k, v, "test") for subject, kv in facts.items() for k, v in kv.items()]
    rules, errors = judge.load_all()
    assert errors == []
    subjects = [d.ip for d in devices] + sorted({s for s in facts if s.startswith("line:")})
    return Report(
        duration_s=4.2,
        scope=["10.66.0.0/24"],
        devices=devices,
        facts=fs,
        findings=judge.judge(rules, fs, subjects, lang),
    )


# ---------------------------------------------------------------- a small DOM for the tests

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag)
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]

    def child(self, tag: str) -> Node:
        return next(c for c in self.children if isinstance(c, Node) and c.tag == tag)


class Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#document", {}, None)
        self.decl: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.decl.append(decl)

    def handle_starttag(self, tag, attrs) -> None:
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs) -> None:
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag) -> None:
        node = self.cur
        while node.parent is not None and node.tag != tag:
            node = node.parent
        assert node.parent is not None, f"</{tag}> closes nothing"
        self.cur = node.parent

    def handle_data(self, data) -> None:
        self.cur.children.append(data)


def dom(page: str) -> Tree:
    tree = Tree()
    tree.feed(page)
    tree.close()
    assert tree.cur is tree.root, f"<{tree.cur.tag}> left open"
    return tree


def nodes(tree: Tree) -> dict[str, Node]:
    """The picture's nodes: router, lan, internet, ovhcloud, phone:<ip>, more."""
    out = {}
    for g in tree.root.all("g"):
        place = g.attrs.get("data-place")
        if place:
            out[f"phone:{g.attrs['data-device']}" if place == "phone" else place] = g
    return out


def marked(tree: Tree) -> dict[str, set[str]]:
    return {
        key: set(g.attrs["data-rules"].split())
        for key, g in nodes(tree).items()
        if "fault" in g.classes
    }


# ---------------------------------------------------------------- the mapping (places.toml)


def test_every_rule_of_the_mapping_exists_and_every_place_is_known():
    m = places.mapping()
    ids = {r.id for r in judge.load_all()[0]}
    assert set(m.rules) <= ids, set(m.rules) - ids
    assert set(m.rules.values()) <= {*places.PLACES, places.BY_FACT}
    assert m.default == {"device": "phone", "site": "lan", "line": "ovhcloud"}
    for prefix in m.facts:  # each prefix names facts that exist
        assert any(s.key.startswith(prefix) for s in catalog.catalog()), prefix
    # what the issue names
    for rule in ("sip-alg-detected", "nat-udp-timeout-short", "sip-port-blocked",
                 "rtp-ports-blocked", "ovh-range-unreachable", "dns-failure"):  # fmt: skip
        assert m.rules[rule] == "router", rule
    assert m.rules["registrar-unreachable"] == "internet"
    assert m.rules["provider-not-checked"] == m.rules["line-registration-stale"] == "ovhcloud"
    assert m.rules["forwarding-left-on"] == m.rules["dnd-on"] == places.BY_FACT


def _case(rule: judge.Rule) -> dict[str, dict]:
    """The facts of the rule's first matching test case, each on its subject."""
    case = next(c for c in rule.tests if c["expect"] is True)
    facts: dict[str, dict] = {"site": {}, YEALINK.ip: {}}
    for key, value in case["facts"].items():
        spec = catalog.lookup(key)
        subject = "site" if spec is None or spec.subject == "site" else YEALINK.ip
        facts[subject][key] = value
    return facts


@pytest.mark.parametrize("rule_id", sorted(places.mapping().rules))
def test_each_mapped_rule_is_marked_where_the_mapping_says(rule_id):
    rule = next(r for r in judge.load_all()[0] if r.id == rule_id)
    report = make_report(_case(rule), [YEALINK])
    finding = next(f for f in report.findings if f.rule == rule_id)
    want = places.mapping().rules[rule_id]
    got = places.places_of(finding)
    if want == places.BY_FACT:
        assert got and set(got) <= {"phone", "ovhcloud"}, got
    else:
        assert got == [want]


@pytest.mark.parametrize(
    ("facts", "want"),
    [
        ({"line.forward.unconditional": True}, {"dnd": None, "fwd": ["ovhcloud"]}),
        ({"phone.forward.always": True}, {"dnd": None, "fwd": ["phone"]}),
        (
            {"line.forward.unconditional": True, "phone.forward.always": True},
            {"dnd": None, "fwd": ["ovhcloud", "phone"]},
        ),
        ({"line.dnd": True, "phone.dnd": False}, {"dnd": ["ovhcloud"], "fwd": None}),
        ({"line.dnd": False, "phone.dnd": True}, {"dnd": ["phone"], "fwd": None}),
    ],
)
def test_line_side_on_ovhcloud_phone_side_on_the_phone(facts, want):
    report = make_report({"site": SITE_OK, YEALINK.ip: {**LINE, **facts}})
    got = {
        "dnd": next((places.places_of(f) for f in report.findings if f.rule == "dnd-on"), None),
        "fwd": next(
            (places.places_of(f) for f in report.findings if f.rule == "forwarding-left-on"), None
        ),
    }
    assert got == want
    tree = dom(html.render(report, "fr"))
    where = marked(tree)
    for found in filter(None, want.values()):
        for place in found:
            assert f"phone:{YEALINK.ip}" in where if place == "phone" else place in where
    if "phone" not in [p for v in want.values() if v for p in v]:
        assert f"phone:{YEALINK.ip}" not in where  # the line's setting: not the phone's fault


def test_a_line_with_no_phone_on_the_lan_sits_at_ovhcloud():
    report = make_report({"site": SITE_OK, "line:0033972000009": {"line.dnd": True}})
    finding = next(f for f in report.findings if f.rule == "dnd-on")
    assert finding.device is None and places.places_of(finding) == ["ovhcloud"]


def test_an_unknown_rule_takes_its_subjects_default():
    def f(**kw) -> Finding:
        base = {"rule": "not-a-rule", "device": None, "severity": "warning", "title": "t",
                "explanation": "e", "remedies": [], "guide": "g"}  # fmt: skip
        return Finding(**{**base, **kw})

    assert places.places_of(f(device="10.66.0.11")) == ["phone"]
    assert places.places_of(f(line="0033972000001")) == ["ovhcloud"]
    assert places.places_of(f()) == ["lan"]
    # a rule not in the mapping takes its subject's default too
    assert "firmware-outdated" not in places.mapping().rules
    assert places.places_of(f(rule="firmware-outdated", device="10.66.0.11")) == ["phone"]
    assert places.places_of(f(rule="no-ring-checklist")) == ["lan"]


def test_a_bad_places_file_is_refused():
    good = (Path(places.__file__).with_name("places.toml")).read_text("utf-8")
    assert places.parse(good) == places.mapping()
    with pytest.raises(ValueError, match="attic"):
        places.parse(good.replace('sip-alg-detected = "router"', 'sip-alg-detected = "attic"'))
    with pytest.raises(ValueError, match="default"):
        places.parse('[default]\ndevice = "phone"\n')


# ---------------------------------------------------------------- the page


def test_sip_alg_is_marked_on_the_router_only():
    report = make_report({"site": {**SITE_OK, "nat.sip_alg": True}})
    page = html.render(report, "fr")
    tree = dom(page)
    assert tree.decl == ["DOCTYPE html"]
    assert marked(tree) == {"router": {"sip-alg-detected"}}
    router = nodes(tree)["router"]
    assert router.classes == {"node", "fault", "critical"}
    tip = router.child("title").text()
    assert "ALG" in tip and "sip-alg-detected" in tip and "CRITIQUE" in tip
    assert "n° 1" in router.text()  # the finding's number, visible
    assert router.parent.tag == "a" and router.parent.attrs["href"] == "#finding-1"
    for key in ("phone:10.66.0.11", "phone:10.66.0.12", "lan", "internet", "ovhcloud"):
        assert nodes(tree)[key].classes == {"node"}, key
    section = tree.root.one("article", id="finding-1")
    assert section.attrs["data-rule"] == "sip-alg-detected"
    assert section.attrs["data-fault-places"] == "router"
    steps = section.one("ol", **{"class": "steps"}).all("li")
    assert len(steps) >= 3 and "SIP ALG" in section.text()
    assert "Que faire" in section.text() and "la box / le routeur" in section.text()


def test_header_counts_cards_and_remedies():
    report = make_report(
        {
            "site": {**SITE_OK, "nat.sip_alg": True, "registrar.host": "sip.ovh.net"},
            YEALINK.ip: {
                **LINE,
                "line.forward.unconditional": True,
                "sip.registered": True,
                "line.registered": True,
                "firmware.outdated": True,
            },
        },
        lang="en",
    )
    tree = dom(html.render(report, "en"))
    counts = {
        s: int(tree.root.one("span", **{"class": f"count-{s}"}).attrs["data-count"])
        for s in ("critical", "warning", "info")
    }
    assert counts == {"critical": 1, "warning": 2, "info": 0}
    header = tree.root.one("header").text()
    assert "10.66.0.0/24" in header and "4.2 s" in header
    where = marked(tree)
    assert where["router"] == {"sip-alg-detected"}
    assert where["ovhcloud"] == {"forwarding-left-on"}
    assert where[f"phone:{YEALINK.ip}"] == {"firmware-outdated"}
    assert nodes(tree)["ovhcloud"].classes == {"node", "fault", "warning"}
    card = tree.root.one("article", data_device=YEALINK.ip).text()
    assert "Yealink SIP-T46S" in card and "80:5e:c0:09:00:c8" in card
    assert "Yealink accueil" in card and "the phone says: registered" in card
    assert "at OVHcloud: registered" in card and "0033972000001" in card
    assert "sits at: OVHcloud" in card  # its forward is the line's, at OVHcloud
    n = next(i for i, f in enumerate(report.findings, 1) if f.rule == "forwarding-left-on")
    fwd = tree.root.one("article", id=f"finding-{n}")
    ready = fwd.one("li", data_remedy="disable-line-forwarding")
    assert "remedy" in ready.classes and "ready" in ready.classes
    assert "phonediag remedy apply disable-line-forwarding --device 10.66.0.11" in ready.text()
    manual = fwd.one("li", data_remedy="forwarding-off-by-code")
    assert "manual" in manual.classes and "done by hand" in manual.text()
    assert "#21#" in manual.text() and manual.all("ol")
    cisco = tree.root.one("article", data_device=CISCO.ip).text()
    assert "No finding here." in cisco


def test_a_severity_this_version_does_not_know_shows_as_info():
    report = make_report({"site": {**SITE_OK, "nat.sip_alg": True}})
    report.findings[0].severity = "catastrophic"
    tree = dom(html.render(report, "en"))
    assert nodes(tree)["router"].classes == {"node", "fault", "info"}
    assert "info" in tree.root.one("article", id="finding-1").classes


def test_errors_are_listed():
    report = make_report({"site": SITE_OK})
    report.errors = [
        ProbeError("probe.alg", "timed out after 6 s"),
        ProbeError("probe.device", "401", "10.66.0.12"),
    ]
    tree = dom(html.render(report, "en"))
    errors = tree.root.one("section", id="errors").text()
    assert "Checks that could not complete" in errors
    assert "probe.alg: timed out after 6 s" in errors and "probe.device (10.66.0.12): 401" in errors


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_empty_report_says_so_plainly(lang):
    tree = dom(html.render(Report(scope=["10.66.0.0/24"]), lang))
    assert tree.root.one("html").attrs["lang"] == lang
    assert marked(tree) == {}
    text = tree.root.text()
    assert i18n.t("findings.none", lang) in text
    assert i18n.t("devices.none", lang, scope="10.66.0.0/24") in text
    assert i18n.t("html.node.none", lang) in text
    assert not tree.root.all("article", **{"class": "finding"})


def test_a_healthy_office_marks_nothing():
    report = make_report({"site": {**SITE_OK, "nat.sip_alg": False}, YEALINK.ip: LINE})
    assert report.findings == []
    tree = dom(html.render(report, "fr"))
    assert marked(tree) == {} and len(nodes(tree)) == 6
    assert "Aucun problème détecté." in tree.root.one("header").text()


def test_both_languages_use_their_own_words():
    report = make_report({"site": {**SITE_OK, "nat.sip_alg": True}})
    fr = html.render(report, "fr")
    en = html.render(make_report({"site": {**SITE_OK, "nat.sip_alg": True}}, lang="en"), "en")
    assert '<html lang="fr">' in fr and '<html lang="en">' in en
    for key in ("html.title", "html.picture.title", "html.place.router", "finding.steps"):
        assert i18n.t(key, "fr") in fr and i18n.t(key, "en") in en
        assert i18n.t(key, "fr") not in en or i18n.t(key, "fr") == i18n.t(key, "en")
    assert "Un routeur modifie les messages SIP" in fr and "A router rewrites SIP" in en
    # every label of the page has both languages
    used = set(re.findall(r'"(html\.[\w.]+)"', Path(html.__file__).read_text()))
    used |= set(re.findall(r'"(html\.[\w.]+)"', Path(site.__file__).read_text()))
    for key in used:
        assert set(i18n.MESSAGES[key]) == {"fr", "en"}, key


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def test_hostile_names_never_become_markup():
    evil = Device(
        "10.66.0.66",
        vendor='evil"><svg onload=alert(1)>',
        model=HOSTILE,
        firmware="1.0\x1b[31m\u202egnp.exe",
        found_by=["mdns", "sip<iframe>"],
        evidence={
            "mdns": {"name": f"</title></g></svg>{HOSTILE}"},
            "sip": {"agent": "UA</style><script>x()</script>"},
        },
    )
    report = make_report(
        {
            "site": {"dns.registrar.resolves": False, "registrar.host": f"sip.{HOSTILE}"},
            "10.66.0.66": {**LINE, "firmware.outdated": True},
        },
        [evil],
    )
    report.errors = [ProbeError("probe.device", f"bad answer {HOSTILE}", "10.66.0.66")]
    page = html.render(report, "en")
    tree = dom(page)
    tags = {n.tag for n in tree.root.walk()}
    assert tags.isdisjoint({"script", "img", "iframe", "object", "embed", "link", "style2"})
    assert len(tree.root.all("svg")) == 1 and len(tree.root.all("style")) == 1
    for n in tree.root.walk():
        assert not any(k.startswith("on") for k in n.attrs), (n.tag, n.attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page and "\u202e" not in page
    # the names are still shown, as text
    assert HOSTILE in tree.root.one("article", data_device="10.66.0.66").text()
    assert f"sip.{HOSTILE}" in tree.root.one("article", id="finding-1").text()
    # the node of the hostile phone is marked (its firmware), its label clipped, as text
    node = nodes(tree)["phone:10.66.0.66"]
    assert "fault" in node.classes and "firmware-outdated" in node.attrs["data-rules"]


def test_nothing_is_fetched_from_anywhere():
    report = make_report(
        {
            "site": {
                "provider.access": "refused",
                "provider.access_reason": "403 from https://eu.api.ovh.com/1.0",
            },
            YEALINK.ip: LINE,
        }
    )
    page = html.render(report, "fr")
    tree = dom(page)
    assert any(f.rule == "provider-not-checked" for f in report.findings)
    assert "https://eu.api.ovh.com/createToken/" in page  # a guide's address, written as text
    for n in tree.root.walk():
        for name, value in n.attrs.items():
            if name in (
                "href",
                "src",
                "action",
                "xlink:href",
                "srcset",
                "poster",
                "data",
                "formaction",
            ):
                assert (value or "").startswith("#"), (n.tag, name, value)
            assert "://" not in (value or ""), (n.tag, name, value)
    fetching = {"script", "link", "img", "iframe", "object", "embed", "base", "form", "audio"}
    assert not {n.tag for n in tree.root.walk()} & fetching
    css = tree.root.one("style").text()
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    csp = tree.root.one("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in csp and "script-src" not in csp


def test_many_phones_the_healthy_ones_are_summed_up():
    phones = [Device(f"10.66.1.{i}", vendor="yealink", model="SIP-T46S") for i in range(1, 61)]
    report = make_report({"site": SITE_OK, "10.66.1.60": {"firmware.outdated": True}}, phones)
    tree = dom(html.render(report, "en"))
    shown = [k for k in nodes(tree) if k.startswith("phone:")]
    assert len(shown) == site.MAX_PHONES and "phone:10.66.1.60" in shown
    more = nodes(tree)["more"]
    assert more.attrs["data-count"] == str(60 - site.MAX_PHONES) and "fault" not in more.classes
    cards = [n for n in tree.root.all("article") if "card" in n.classes]
    assert len(cards) == 60  # every phone has its card


def test_write_is_atomic_and_refuses_what_cannot_be_written(tmp_path):
    target = tmp_path / "r.html"
    target.write_text("old")
    html.check_writable(target)
    html.write(target, "<!DOCTYPE html>new")
    assert target.read_text() == "<!DOCTYPE html>new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left
    with pytest.raises(OSError):
        html.check_writable(tmp_path / "missing" / "r.html")
    with pytest.raises(OSError):
        html.check_writable(tmp_path)  # a directory
    with pytest.raises(OSError):
        html.write(tmp_path / "missing" / "r.html", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


# ---------------------------------------------------------------- phonediag diagnose --html


@pytest.fixture
def diagnose_cli(monkeypatch, capsys, tmp_path):
    """`phonediag diagnose ...` on a made report (no network): (exit code, stdout, stderr,
    whether the diagnosis ran)."""
    from agent import pipeline

    ran: list[bool] = []
    report = make_report({"site": {**SITE_OK, "nat.sip_alg": True}})

    async def fake_diagnose(*_args, **_kwargs):
        ran.append(True)
        return report

    cfg = Config(store_path=str(tmp_path / "store" / "phonediag.sqlite"))  # its history here
    monkeypatch.setattr(cli, "_setup", lambda lang, *_a: (i18n.detect(lang), cfg, []))
    monkeypatch.setattr(pipeline, "run_diagnose", fake_diagnose)

    def run(*args: str) -> tuple[int, str, str, bool]:
        monkeypatch.setattr(sys, "argv", ["phonediag", "diagnose", *args])
        ran.clear()
        with pytest.raises(SystemExit) as exit_:
            cli.main()
            raise SystemExit(0)
        out = capsys.readouterr()
        return exit_.value.code, out.out, out.err, bool(ran)

    return run


def test_diagnose_json_and_html_together(diagnose_cli, tmp_path):
    path = tmp_path / "report.html"
    code, out, err, ran = diagnose_cli("--json", "--html", str(path), "--lang", "fr")
    assert ran and code == 1  # a critical finding
    assert json.loads(out)["findings"][0]["rule"] == "sip-alg-detected"  # stdout: JSON only
    assert err == ""
    tree = dom(path.read_text("utf-8"))
    assert tree.root.one("html").attrs["lang"] == "fr"
    assert marked(tree) == {"router": {"sip-alg-detected"}}


def test_diagnose_html_in_text_mode_says_where(diagnose_cli, tmp_path):
    path = tmp_path / "r.html"
    code, out, _err, _ran = diagnose_cli("--html", str(path), "--lang", "en")
    assert code == 1 and path.exists()
    assert out.rstrip().endswith(f"HTML report: {path}")


@pytest.mark.parametrize("where", ["missing/r.html", "."])
def test_diagnose_html_unwritable_is_a_clear_error_before_diagnosing(diagnose_cli, tmp_path, where):
    path = tmp_path / where
    code, out, err, ran = diagnose_cli("--json", "--html", str(path), "--lang", "en")
    assert code == 2 and not ran and out == ""
    assert err.startswith("phonediag: cannot write the HTML report") and str(path) in err
    assert len(err.strip().splitlines()) == 1
