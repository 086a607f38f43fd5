"""Text from the network made safe for HTML and SVG: escaped, and without the characters
that could hide or disguise it (control characters, bidirectional overrides)."""

from __future__ import annotations

import html
import re

# C0/C1 controls but tab and newline; bidi embeddings, overrides and isolates; BOM
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean(value: object) -> str:
    return _UNSAFE.sub("\ufffd", "" if value is None else str(value))


def text(value: object) -> str:
    """``value`` as element content or an attribute value (quotes escaped too)."""
    return html.escape(clean(value), quote=True)


attr = text


def clip(value: object, width: int) -> str:
    """At most ``width`` characters, an ellipsis marking a cut (SVG text does not wrap)."""
    s = clean(value)
    return s if len(s) <= width else s[: max(width - 1, 1)] + "…"
