"""HTTP Basic and Digest (RFC 7616, MD5, qop=auth) checks for phone faces."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from lab.personalities import Request, Response

_NONCES: set[str] = set()


def basic_ok(req: Request, username: str, password: str) -> bool:
    value = req.headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return False
    try:
        user, _, pwd = base64.b64decode(value[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return secrets.compare_digest(user, username) and secrets.compare_digest(pwd, password)


def basic_challenge(realm: str) -> Response:
    return Response(401, {"WWW-Authenticate": f'Basic realm="{realm}"'}, b"401 Unauthorized")


def digest_challenge(realm: str) -> Response:
    nonce = secrets.token_hex(16)
    _NONCES.add(nonce)
    header = f'Digest realm="{realm}", qop="auth", nonce="{nonce}", algorithm=MD5'
    return Response(401, {"WWW-Authenticate": header}, b"401 Unauthorized")


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()  # the protocol's hash


def digest_ok(req: Request, username: str, password: str, realm: str) -> bool:
    value = req.headers.get("authorization", "")
    if not value.lower().startswith("digest "):
        return False
    p = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', value)}
    if p.get("username") != username or p.get("realm") != realm or p.get("nonce") not in _NONCES:
        return False
    ha1 = _md5(f"{username}:{realm}:{password}")
    uri = p.get("uri", "")
    ha2 = _md5(f"{req.method}:{uri}")
    if p.get("qop"):
        expected = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
    else:
        expected = _md5(f"{ha1}:{p['nonce']}:{ha2}")
    return secrets.compare_digest(expected, p.get("response", ""))
