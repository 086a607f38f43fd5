"""A phone's HTTP answers as agent/net/http.py reads them: ``Reply.xml()`` (defusedxml) and
``Reply.json()`` give a value or HttpError, never anything else; entities are never
expanded and nothing external is fetched; ``Reply.date()`` a time or None."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.net.http import HttpError, Reply
from tests.fuzz.strategies import KIB, bounded, hostile_bytes, hostile_text, mutated_bytes

DATA = Path(__file__).parents[1] / "unit/vendors/data"
XML = [p.read_bytes() for p in sorted(DATA.glob("*/*.xml"))]
JSON = [p.read_bytes() for p in sorted(DATA.glob("*/*.json"))]

xml_seeds = st.one_of(
    st.sampled_from(XML),
    st.builds(
        '<?xml version="1.0" encoding="{}"?><a>{}</a>'.format,
        st.sampled_from(("UTF-8", "utf-16", "latin-1", "ascii", "x-unknown", "T", "")),
        hostile_text,
    ).map(lambda s: s.encode("utf-8", "replace")),
)
json_seeds = st.sampled_from(JSON)


def reply(body: bytes) -> Reply:
    return Reply(200, {"content-type": "text/xml"}, body, "http://10.0.0.9/x")


@given(st.one_of(xml_seeds, mutated_bytes(xml_seeds), hostile_bytes))
def test_xml_is_a_tree_or_an_httperror(body: bytes) -> None:
    try:
        root = reply(body).xml()
    except HttpError:
        return
    assert isinstance(root.tag, str)


@given(st.one_of(json_seeds, mutated_bytes(json_seeds), hostile_bytes))
def test_json_is_a_value_or_an_httperror(body: bytes) -> None:
    with contextlib.suppress(HttpError):
        reply(body).json()


DATE = r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} (GMT|[+-]\d{4})"


@given(st.one_of(hostile_text, st.from_regex(DATE, fullmatch=True)))
def test_date(value: str) -> None:
    when = Reply(200, {"date": value}, b"", "http://10.0.0.9/").date()
    assert when is None or math.isfinite(when)


# ------------------------------------------------------------------ hostile documents

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;">
]><flat-status>&lol3;</flat-status>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]><flat-status>&secret;</flat-status>"""
PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % ext SYSTEM "http://203.0.113.1/x.dtd"> %ext;]><a/>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE a SYSTEM "http://203.0.113.1/x.dtd"><a>x</a>"""


@pytest.mark.parametrize("body", [LAUGHS, EXTERNAL, PARAMETER])
def test_entities_are_refused(body: bytes) -> None:
    with pytest.raises(HttpError):
        reply(body).xml()


def test_an_external_dtd_is_never_fetched() -> None:
    """Under ``unshare -n`` a fetch could not succeed anyway: the point is that parsing
    neither tries nor fails on it (defusedxml ignores external DTDs)."""
    root = reply(EXTERNAL_DTD).xml()
    assert root.tag == "a" and root.text == "x"


WORST = {
    "deep XML": b"<a>" * 100_000 + b"</a>" * 100_000,
    "wide XML": b"<a>" + b"<b/>" * 64 * KIB + b"</a>",
    "deep JSON": b"[" * 64 * KIB,
    "long JSON string": b'"' + b"\\u0041" * 16 * KIB + b'"',
}


@pytest.mark.parametrize("name", WORST)
def test_worst_case_documents_cost_little(name: str) -> None:
    parse = Reply.xml if "XML" in name else Reply.json

    def read(body: bytes) -> None:
        with contextlib.suppress(HttpError):
            parse(reply(body))

    bounded(read, WORST[name], seconds=1.0, megabytes=128)
