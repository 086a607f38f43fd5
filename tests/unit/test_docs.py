"""The generated reference pages match the data they describe."""

from pathlib import Path

import pytest

from agent import docs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(docs.PAGES))
def test_generated_page_is_current(name):
    current = (ROOT / name).read_text(encoding="utf-8")
    assert current == docs.PAGES[name](), f"{name} is stale: run `python -m agent.docs`"
