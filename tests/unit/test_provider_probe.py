"""The provider probe end to end: the official ``ovh`` client, signed calls, against the
lab's OVHcloud API stand-in (in-process, HTTPS on 127.0.0.1), then the rules.

What a user would notice: a forward left on at OVHcloud is named with its line, its
destination and the ways out; a healthy line gives no finding; missing or wrong keys,
an API that cannot be reached, that hangs or that answers garbage each give one clear
finding and an error entry, never a traceback."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent import judge
from agent.config import Config
from agent.model import Device, Fact, Report
from agent.probes import Context
from agent.probes import provider as probe
from agent.report import text
from lab.services.ovhapi import Account, MemoryStore, make_server, make_tls

pytestmark = pytest.mark.usefixtures("no_ambient_keys")

BA = "ovhtel-12345678-1"
AK, AS, CK = (
    "7kbG7Bk7S9Nt7ZSV",
    "EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF",
    "MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1",
)
CK_LINES = "OnlyLinesConsumerKey0123456789ab"  # GET /telephony/* but not GET /telephony
MAC = "80:5e:c0:aa:bb:cc"
UA = "Yealink SIP-T46S 66.86.0.15"
PUBLIC = "198.51.100.7"
ACCOUNT = {
    "credentials": [
        {
            "application_key": AK,
            "application_secret": AS,
            "consumer_key": CK,
            "rules": [
                {"method": "GET", "path": "/telephony"},
                {"method": "GET", "path": "/telephony/*"},
            ],
        },
        {
            "application_key": AK,
            "application_secret": AS,
            "consumer_key": CK_LINES,
            "rules": [{"method": "GET", "path": "/telephony/*"}],
        },
    ],
    "billing_accounts": {
        BA: {
            "description": "Bureau",
            "lines": {
                "1001": {
                    "description": "Accueil",
                    "phone": {
                        "brand": "phone.yealink.t46s",
                        "description": "Yealink T46S",
                        "macAddress": MAC,
                        "maxline": 16,
                    },
                },
                "1002": {"description": "Télétravail", "phone": None},
            },
        }
    },
}


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.add_registration("1001", PUBLIC, 5060, "10.66.0.11", 5060, "sip.ovh.test", UA)
    s.add_registration("1002", "203.0.113.50", 5060, "192.168.1.20", 5060, "sip.ovh.test", "Z")
    return s


@pytest.fixture
def api_url(tls: tuple[Path, Path, Path], store: MemoryStore) -> Iterator[str]:
    _ca, cert, key = tls
    server = make_server(Account.from_dict(ACCOUNT), store, "127.0.0.1", 0, cert, key, print)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/1.0"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def config(url: str, ca: Path, ck: str = CK, **more: object) -> Config:
    return Config(
        provider_endpoint=url,
        provider_ca_file=str(ca),
        provider_application_key=AK,
        provider_application_secret=AS,
        provider_consumer_key=ck,
        timeout=0.5,
        **more,  # type: ignore[arg-type]
    )


def lan_phone() -> Device:
    d = Device(ip="10.66.0.11", mac=MAC.upper(), vendor="yealink", model="SIP-T46S")
    d.evidence["sip"] = {"agent": UA}
    return d


def run(cfg: Config, devices: list[Device] | None = None) -> tuple[Report, Context]:
    devices = [lan_phone()] if devices is None else devices
    ctx = Context(cfg, [], devices)
    facts = asyncio.run(asyncio.wait_for(probe.probe(ctx), probe.budget(cfg)))
    rules, errors = judge.load_all()
    assert errors == []
    subjects = [d.ip for d in devices] + sorted(
        {f.subject for f in facts if f.subject.startswith("line:")}
    )
    report = Report(
        devices=devices,
        facts=facts,
        findings=judge.judge(rules, facts, subjects, "fr"),
        errors=ctx.errors,
    )
    return report, ctx


def facts_of(report: Report, subject: str) -> dict:
    return {f.key: f.value for f in report.facts if f.subject == subject}


def rules_of(report: Report) -> list[tuple[str, str | None, str | None]]:
    return [(f.rule, f.device, f.line) for f in report.findings]


# ---------------------------------------------------------------- lines as OVHcloud sees them
def test_healthy_lines_give_no_finding(api_url, tls):
    report, _ = run(config(api_url, tls[0]))
    assert rules_of(report) == []
    assert report.site_facts()["provider.access"] == "ok"
    phone = facts_of(report, "10.66.0.11")
    assert phone["line.number"] == "1001"
    assert phone["line.forward.unconditional"] is False
    assert phone["line.mac_matches"] is True
    assert phone["line.registered_from_other_ip"] is False  # office IP: from the phone's row
    assert phone["line.registration_user_agents"] == 1
    # The remote worker's line is read too, on its own subject, and registered elsewhere.
    remote = facts_of(report, "line:1002")
    assert remote["line.registered"] is True


def test_forward_left_on_names_the_line_destination_and_ways_out(api_url, tls, store):
    store.set_option("1001", "forwardUnconditional", "true")
    store.set_option("1001", "forwardUnconditionalNumber", "0612345678")
    report, _ = run(config(api_url, tls[0]))
    assert rules_of(report) == [("forwarding-left-on", "10.66.0.11", "1001")]
    finding = report.findings[0]
    assert "1001" in finding.explanation and "0612345678" in finding.explanation
    assert "téléphone vers" not in finding.explanation  # no phone-side forward was seen
    steps = " ".join(finding.remedies)
    assert "#21#" in steps and "#002" in steps
    assert f"PUT /telephony/{BA}/line/1001/options" in steps


def test_a_line_without_a_lan_phone_is_reported_as_such(api_url, tls, store):
    store.set_option("1002", "doNotDisturb", "true")
    report, _ = run(config(api_url, tls[0]))
    assert rules_of(report) == [("dnd-on", None, "1002")]
    out = text.Console(record=True, no_color=True, width=200)
    text.render(report, "fr", out, diagnosis=True)
    assert "ligne 1002, téléphone non trouvé sur ce réseau" in out.export_text()


def test_the_control_panel_mac_differs_from_the_phone(api_url, tls):
    other = lan_phone()
    other.mac = "80:5e:c0:00:00:01"  # same UA and LAN IP: joined by its registration
    report, _ = run(config(api_url, tls[0]), [other])
    assert ("phone-mac-mismatch", "10.66.0.11", "1001") in rules_of(report)
    finding = next(f for f in report.findings if f.rule == "phone-mac-mismatch")
    assert MAC in finding.explanation


def test_only_the_configured_lines_are_read(api_url, tls):
    report, _ = run(config(api_url, tls[0], provider_lines=["1001"]))
    assert not [f for f in report.facts if f.subject.startswith("line:")]


# ---------------------------------------------------------------- keys and failures
def only_not_checked(report: Report, access: str) -> str:
    assert report.site_facts()["provider.access"] == access
    assert rules_of(report) == [("provider-not-checked", None, None)]
    finding = report.findings[0]
    assert finding.severity == "info"
    assert "*#21#" in " ".join(finding.remedies)
    assert "Traceback" not in finding.explanation
    return finding.explanation


def test_no_keys_says_what_was_not_checked():
    report, ctx = run(Config(timeout=0.5))
    why = only_not_checked(report, "not-configured")
    assert "application_key, application_secret, consumer_key" in why
    assert "renvois" in why
    assert ctx.errors == []  # not configured is a choice, not an error


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ck": "NoSuchConsumerKey0123456789abcde"}, "This credential does not exist"),
        ({"ak": "NoSuchAppKey0123"}, "Invalid application key"),
        ({"secret": "x" * 32}, "Invalid signature"),
    ],
)
def test_wrong_keys_are_refused_with_the_apis_words(api_url, tls, change, message):
    cfg = config(api_url, tls[0], ck=change.get("ck", CK))
    cfg.provider_application_key = change.get("ak", AK)
    cfg.provider_application_secret = change.get("secret", AS)
    report, ctx = run(cfg)
    assert message in only_not_checked(report, "refused")
    assert [e.step for e in ctx.errors] == ["probe.provider"]
    assert AS not in str(report.to_dict()) and CK not in str(report.to_dict())


def test_keys_without_the_listing_right_work_with_configured_accounts(api_url, tls):
    report, _ = run(config(api_url, tls[0], ck=CK_LINES))
    assert "This call has not been granted" in only_not_checked(report, "not-granted")
    report, _ = run(config(api_url, tls[0], ck=CK_LINES, provider_billing_accounts=[BA]))
    assert report.site_facts()["provider.access"] == "ok"


def test_an_untrusted_certificate_is_refused(api_url, tmp_path):
    other_ca = make_tls(tmp_path, "localhost")[0]
    report, _ = run(config(api_url, other_ca))
    assert "certificate not trusted" in only_not_checked(report, "unreachable")


def test_plain_http_endpoint_is_refused(tls):
    report, _ = run(config("http://localhost:1/1.0", tls[0]))
    assert "https://" in only_not_checked(report, "refused")


def test_nothing_listening(tls):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe runs
    report, _ = run(config(f"https://localhost:{port}/1.0", tls[0]))
    only_not_checked(report, "unreachable")


def test_an_api_that_never_answers_times_out(tls):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts (kernel backlog), never answers
        port = listener.getsockname()[1]
        start = time.monotonic()
        report, _ = run(config(f"https://localhost:{port}/1.0", tls[0]))
        assert time.monotonic() - start < 5
    only_not_checked(report, "unreachable")


class Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>502 Bad Gateway</html>" if "time" not in self.path else b"1764230000"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_api_answering_garbage_is_an_error(tls):
    ca, cert, key = tls
    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        report, _ = run(config(f"https://localhost:{server.server_address[1]}/1.0", ca))
    finally:
        server.shutdown()
        server.server_close()
    assert "Failed to decode" in only_not_checked(report, "error")


def test_the_probe_fact_is_site_wide():
    facts = probe._access("ok", "2 line(s)")
    assert all(isinstance(f, Fact) and f.subject == "site" for f in facts)


async def test_a_slow_key_lookup_does_not_hold_the_run(monkeypatch):
    """Looking the keys up (files, the OS keyring) and building the client take CPU time (and
    a keyring may hang): done in a worker thread, the step still ends when its time is up.
    Before, that work ran in the event loop: a step started with no time left by the run's
    deadline still took it (0.2-0.3 s measured, a whole hanging keyring at worst)."""
    from agent import pipeline

    def slow_resolve(cfg):
        time.sleep(1.0)
        raise AssertionError("not reached in time")

    monkeypatch.setattr(probe, "resolve", slow_resolve)
    run = pipeline.Runner(60)
    ctx = Context(Config(), [], [])
    start = time.monotonic()
    facts = await run.step("probe.provider", probe.probe(ctx), 0.2, [])
    assert time.monotonic() - start < 0.6
    assert facts == [] and [e.reason for e in run.errors] == ["no result within 0.2 s"]
