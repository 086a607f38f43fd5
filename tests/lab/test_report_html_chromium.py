"""The HTML report of a real diagnosis, opened in a real browser: Debian's chromium, driven
by Playwright (its Python package only: no browser is downloaded), with JavaScript off.

In the sip-alg office the router is marked (and nothing else), the finding is there in
French with its steps, the page fetches nothing but itself, and its screenshot and PDF
are real; the healthy office marks nothing. Chromium runs inside the test session's
network namespace (`unshare -n`: loopback only); Playwright talks to it over a pipe, and
as root it needs `--no-sandbox` (Playwright adds it by default; said here explicitly).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium missing: `make test` installs it"
)


def diagnose_html(scenario: str, out: Path) -> int:
    with Lab.up(scenario) as lab:
        r = lab.run(["phonediag", "diagnose", "--html", str(out), "--lang", "fr"], timeout=180)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 1), (r.returncode, r.stderr)
    assert f"Rapport HTML : {out}" in r.stdout
    assert out.is_file() and not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    return r.returncode


@contextlib.contextmanager
def opened(path: Path, width: int = 1000) -> Iterator[tuple[object, list[str]]]:
    """The report in chromium (JavaScript off: it must read without it), and every URL
    the page requested."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(
                java_script_enabled=False, viewport={"width": width, "height": 800}
            )
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            yield page, requests
        finally:
            browser.close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


def test_sip_alg_office_marks_the_router_in_chromium(tmp_path):
    report = tmp_path / "sip-alg.html"
    assert diagnose_html("sip-alg", report) == 1
    with opened(report) as (page, requests):
        assert page.get_attribute("html", "lang") == "fr"
        router = page.locator('[data-place="router"]')
        assert router.count() == 1
        assert {"node", "fault", "critical"} <= set(router.get_attribute("class").split())
        assert "sip-alg-detected" in router.get_attribute("data-rules").split()
        tooltip = page.locator('[data-place="router"] > title').text_content()
        assert "ALG" in tooltip and "CRITIQUE" in tooltip
        assert "CRITIQUE · n° 1" in router.text_content()  # the visible label
        # the marker as drawn: a red outline and a red badge with the count
        red = "rgb(198, 40, 40)"
        assert (
            page.eval_on_selector(
                '[data-place="router"] rect.box', "e => getComputedStyle(e).stroke"
            )
            == red
        )
        assert (
            page.eval_on_selector(
                '[data-place="router"] circle.badge', "e => getComputedStyle(e).fill"
            )
            == red
        )
        # only the router: no phone, nor anything else, carries the ALG
        phones = page.locator('[data-place="phone"]')
        assert phones.count() == 3
        assert page.locator('[data-place="phone"].fault').count() == 0
        assert page.locator('[data-rules~="sip-alg-detected"]').count() == 1
        assert page.locator(".fault").count() == 1
        # the finding, in French, with its numbered steps
        finding = page.locator('article[data-rule="sip-alg-detected"]')
        assert finding.count() == 1
        assert "Un routeur modifie les messages SIP (SIP ALG)" in finding.locator("h3").inner_text()
        steps = finding.locator("ol.steps > li")
        assert steps.count() >= 3 and "SIP ALG" in steps.nth(1).inner_text()
        assert "Que faire" in finding.inner_text() and "la box / le routeur" in finding.inner_text()
        assert finding.locator('li[data-remedy="router-voip-settings"]').count() == 1
        # nothing fetched but the file itself
        assert requests == [report.as_uri()]
        # a real picture: the whole page, and the router's marker on it
        shot = tmp_path / "sip-alg.png"
        page.screenshot(path=str(shot), full_page=True)
        width, height = png_size(shot.read_bytes())
        assert width == 1000 and height > 1200 and shot.stat().st_size > 30_000
        box = page.locator('[data-place="router"] rect.box').bounding_box()
        assert box and box["width"] > 100 and box["height"] > 40
        assert (
            box["x"] >= 0
            and box["x"] + box["width"] <= width
            and box["y"] + box["height"] <= height
        )
        assert router.is_visible()
        badge = page.locator('[data-place="router"] circle.badge').bounding_box()
        assert badge and badge["width"] > 10 and badge["height"] > 10
        # printed: a real PDF, the picture still there
        page.emulate_media(media="print")
        assert page.pdf()[:5] == b"%PDF-"
        assert router.is_visible()
    with opened(report, width=390) as (page, requests):  # a phone's screen: no sideways scroll
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = page.locator('[data-place="router"] rect.box').bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.screenshot(path=str(tmp_path / "sip-alg-phone.png"), full_page=True)
        assert requests == [report.as_uri()]


def test_healthy_office_marks_nothing_in_chromium(tmp_path):
    report = tmp_path / "healthy.html"
    assert diagnose_html("healthy", report) == 0
    with opened(report) as (page, requests):
        assert (
            page.locator("[data-place]").count() == 7
        )  # OVHcloud, Internet, router, LAN, 3 phones
        assert page.locator(".fault").count() == 0
        assert page.locator("svg .badge").count() == 0
        assert "Aucun problème détecté." in page.locator("header").inner_text()
        assert page.locator("article.finding").count() == 0
        assert page.locator("article.card").count() == 3
        page.screenshot(path=str(tmp_path / "healthy.png"), full_page=True)
        assert requests == [report.as_uri()]
