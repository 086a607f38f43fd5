"""Shared strategies of the fuzz tests: hostile bytes and text, mutations of real samples,
and a check that a worst-case input costs little time and memory."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

KIB = 1024

# What parsers trip on: separators, line ends, NUL, bad UTF-8 (lone continuation and
# lead bytes, an overlong form, a BOM, a right-to-left override), quotes, escapes,
# numbers at the edges, and the protocols' own keywords.
TOKENS: tuple[bytes, ...] = (
    b"\x00", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n", b" ", b"\t", b"\r\n ", b":", b";",
    b",", b"=", b'"', b"'", b"<", b">", b"[", b"]", b"{", b"}", b"\\", b"%", b"%3a", b"&",
    b"#", b"/", b".", b"@", b"\x80", b"\xbf", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff",
    b"\xef\xbb\xbf", b"\xe2\x80\xae", b"\xf0\x9f\x93\x9e", b"\xc2\xb2", b"\xd9\xa3",
    b"0", b"-1", b"2147483648", b"4294967296", b"9" * 20, b"1e999", b"nan",
    b"SIP/2.0", b"SIP/2.0 200 OK", b"Content-Length: 99999", b"l: 5", b"tag=", b"<?xml",
    b"<!DOCTYPE", b"<![CDATA[", b"<![x[", b"&amp;", b"&#0;", b"&#x110000;", b"</", b"-->",
)  # fmt: skip


# A number longer than int() reads (4300 digits), made on demand (a short repr).
long_numbers = st.integers(4301, 5000).map(lambda n: b"9" * n)
tokens = st.one_of(st.sampled_from(TOKENS), long_numbers)


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: st.SearchStrategy[bytes], max_ops: int = 6) -> bytes:
    """A seed (a real or well-formed sample) with up to ``max_ops`` random edits: bytes
    flipped, tokens inserted, slices deleted, repeated (up to tens of KiB) or swapped,
    the end cut off."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "repeat", "cut", "swap", "set")))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(tokens | st.binary(max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "repeat":
            piece = bytes(data[at : at + draw(st.integers(1, 32))]) or b"A"
            data[at:at] = piece * draw(st.integers(1, 2000))
        elif op == "cut":
            del data[at:]
        elif op == "swap" and len(data) > 1:
            other = draw(st.integers(0, len(data) - 1))
            a, b = sorted((at, other))
            data[a:b] = data[a:b][::-1]
    return bytes(data)


def mutated_text(seeds: st.SearchStrategy[str], max_ops: int = 6) -> st.SearchStrategy[str]:
    """:func:`mutated_bytes` of a text, decoded again (bad UTF-8 replaced)."""
    return mutated_bytes(seeds.map(lambda s: s.encode("utf-8")), max_ops).map(
        lambda b: b.decode("utf-8", errors="replace")
    )


# Any text, control characters and astral planes included (Hypothesis never draws lone
# surrogates, which no decoded input can hold).
any_text = st.text(max_size=512)
tokens_text = st.lists(
    tokens.map(lambda b: b.decode("utf-8", errors="replace")) | any_text,
    max_size=12,
).map("".join)
hostile_text = st.one_of(any_text, tokens_text)
hostile_bytes = st.one_of(
    st.binary(max_size=2048),
    st.lists(tokens | st.binary(max_size=8), max_size=24).map(b"".join),
)


def scaled(fraction: float) -> settings:
    """This profile's example count times ``fraction`` (at least 10): for the targets whose
    every input costs much more (a whole adapter read through a mock HTTP transport)."""
    return settings(max_examples=max(10, int(settings().max_examples * fraction)))


def bounded(
    fn: Callable[..., Any], *args: Any, seconds: float = 0.5, megabytes: float | None = 32
) -> Any:
    """``fn(*args)``, asserting it took at most ``seconds`` of time and allocated at
    most ``megabytes`` at its peak (a second call, traced; None: not measured); returns
    what it returned. For the worst-case inputs (64 KiB built to hit a quadratic path):
    linear parsing stays far below both bounds."""
    gc.disable()  # no collection pause charged to ``fn``
    try:
        start = time.perf_counter()
        result = fn(*args)
        took = time.perf_counter() - start
    finally:
        gc.enable()
    name = getattr(fn, "__qualname__", repr(fn))
    assert took <= seconds, f"{name} took {took:.3f} s (> {seconds} s)"
    if megabytes is not None:
        tracemalloc.start()
        try:
            fn(*args)
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak <= megabytes * 2**20, f"{name} peaked at {peak / 2**20:.1f} MiB"
    return result


# ------------------------------------------------------------------ TOML documents

toml_scalars = st.one_of(
    hostile_text,
    st.integers(-(2**70), 2**70),
    st.integers(10**300, 10**400),  # more than a float holds
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(),
    st.dates(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """One value as TOML (tables inline, on one line)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v > 0 else "-inf") if v in (_INF, -_INF) else repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        pairs = (f"{_toml_string(str(k))} = {toml_value(x)}" for k, x in v.items())
        return "{" + ", ".join(pairs) + "}"
    return v.isoformat()  # datetime, date, time


_INF = float("inf")


def toml_document(doc: dict[str, Any]) -> str:
    """A document: tables as ``[name]`` sections, arrays of tables as ``[[name]]``."""
    lines = []
    tables = []
    for key, value in doc.items():
        if isinstance(value, dict):
            tables.append(f"[{_toml_string(str(key))}]")
            tables += [f"{_toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                tables.append(f"[[{_toml_string(str(key))}]]")
                tables += [f"{_toml_string(str(k))} = {toml_value(v)}" for k, v in item.items()]
        else:
            lines.append(f"{_toml_string(str(key))} = {toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


@st.composite
def mutated_tree(
    draw: st.DrawFn,
    seeds: st.SearchStrategy[Any],
    max_ops: int = 3,
    values: st.SearchStrategy[Any] | None = None,
) -> Any:
    """A seed (parsed TOML or JSON: dicts and lists) with up to ``max_ops`` edits at
    random places: a value replaced by any other (of ``values``, TOML's by default), a
    key deleted, a key added."""
    import copy

    values = values if values is not None else toml_values

    tree = copy.deepcopy(draw(seeds))
    for _ in range(draw(st.integers(1, max_ops))):
        node, path = tree, []
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            path.append((node, key))
            node = node[key]
        if not path:
            if isinstance(tree, dict):
                tree[draw(st.text(max_size=8))] = draw(values)
            continue
        parent, key = path[-1]
        op = draw(st.sampled_from(("replace", "delete", "add")))
        if op == "replace":
            parent[key] = draw(values)
        elif op == "delete":
            del parent[key]
        elif isinstance(node, dict):
            node[draw(st.text(max_size=8))] = draw(values)
        elif isinstance(node, list):
            node.append(draw(values))
    return tree


class FakeTransport:
    """A datagram transport that keeps what a server sends (its UDP handler's answers)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple]] = []

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.sent.append((data, addr))

    def is_closing(self) -> bool:
        return False
