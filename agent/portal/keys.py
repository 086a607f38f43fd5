"""Ed25519 keys and signatures for portal mode (``cryptography``).

The portal signs each job with its private key; the agent checks it with the portal's
public key (``portal.pub``, stored at enrolment) and signs each result with its own
(``agent.key``). A signature covers the *canonical* form of a JSON object::

    json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

re-made from the parsed message, so the way a message is spaced on the wire does not
matter. Keys are stored as PEM (private: PKCS#8, unencrypted, mode 0600, its folder 0700;
public: SubjectPublicKeyInfo); a key file is never replaced unless asked to
(:class:`KeyExists`). Signatures and raw keys travel as base64url without padding.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The files of the agent's identity in the portal folder (``[portal] dir``).
AGENT_KEY = "agent.key"  # the agent's private key, PEM, 0600
AGENT_PUB = "agent.pub"  # its public key, PEM
PORTAL_PUB = "portal.pub"  # the portal's public key, PEM: the only signer of jobs trusted
AGENT_TOML = "agent.toml"  # agent id, broker URL, CA file, MQTT login (written by enroll)
SIGNATURE_LEN = 64  # bytes: an Ed25519 signature
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class KeyFileError(Exception):
    """A key file cannot be read, written or used; the message names the file."""


class KeyExists(KeyFileError):
    """The key file is already there: it is never replaced without being asked to."""


class BadKey(ValueError):
    """Not an Ed25519 key (of the expected kind)."""


# ------------------------------------------------------------------ base64url, canonical


def b64encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """The bytes of unpadded base64url; ValueError for anything else (padding included)."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded base64url") from None


def canonical(obj: Any) -> bytes:
    """The bytes a signature covers (the contract in docs/portal-protocol.md)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sign(private: Ed25519PrivateKey, obj: Any) -> str:
    """The base64url Ed25519 signature of ``canonical(obj)``."""
    return b64encode(private.sign(canonical(obj)))


def verify(public: Ed25519PublicKey, obj: Any, sig: Any) -> bool:
    """Whether ``sig`` is ``public``'s signature of ``canonical(obj)``. Never raises:
    any garbage (a signature that is not base64url or not 64 bytes, an object that has no
    canonical form, a key that is not a key) is simply False."""
    try:
        raw = b64decode(sig)
        if len(raw) != SIGNATURE_LEN:
            return False
        public.verify(raw, canonical(obj))
        return True
    except (InvalidSignature, ValueError, TypeError, AttributeError, UnicodeError, RecursionError):
        return False
    except Exception:  # a garbage key object, whatever it raises
        return False


# ------------------------------------------------------------------ keys in memory


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_of(key: Ed25519PrivateKey | Ed25519PublicKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    return public_of(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of the public key."""
    return public_of(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as 43 characters of base64url (a token, a command line, a web page)."""
    return b64encode(public_raw(key))


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """``SHA256:<base64url>`` of the raw public key: to compare two keys by eye."""
    return "SHA256:" + b64encode(hashlib.sha256(public_raw(key)).digest())


def parse_private(data: bytes | str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8, unencrypted); BadKey otherwise."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise BadKey(f"not a PEM private key ({e})") from None
    except Exception as e:  # cryptography's UnsupportedAlgorithm...
        raise BadKey(f"not a usable private key ({type(e).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadKey(f"not an Ed25519 private key ({type(key).__name__})")
    return key


def parse_public(data: bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or from its 32 raw bytes in
    base64url (what ``public_b64`` gives); BadKey otherwise."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("utf-8"))
        except (ValueError, TypeError) as e:
            raise BadKey(f"not a PEM public key ({e})") from None
        except Exception as e:
            raise BadKey(f"not a usable public key ({type(e).__name__})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BadKey(f"not an Ed25519 public key ({type(key).__name__})")
        return key
    try:
        raw = b64decode(text)
    except ValueError:
        raise BadKey("neither PEM nor base64url") from None
    if len(raw) != 32:
        raise BadKey(f"a raw Ed25519 public key is 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


# ------------------------------------------------------------------ key files


def directory(cfg: Any) -> Path:
    """The portal folder: ``[portal] dir``, else ``portal/`` next to the local store."""
    configured = getattr(cfg, "portal_dir", None)
    if configured:
        return Path(configured).expanduser()
    from agent import store

    return store.path_for(getattr(cfg, "store_path", None)).parent / "portal"


def _write(path: Path, data: bytes, mode: int, replace: bool) -> None:
    """Write ``data`` to ``path`` with ``mode``: a new file, or (``replace``) an atomic
    replacement; KeyExists when it is there and ``replace`` is false."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = path.with_name(path.name + ".tmp") if replace else path
        if replace:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, mode)
        except FileExistsError:
            raise KeyExists(f"{path}: already exists (never replaced silently)") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if os.name == "posix":
                os.chmod(target, mode)  # whatever the umask said
            if replace:
                os.replace(target, path)
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise
    except OSError as e:
        raise KeyFileError(f"{path}: {e.strerror or e}") from None


_BINARY = getattr(os, "O_BINARY", 0)


def save_private(
    key: Ed25519PrivateKey, path: str | os.PathLike[str], replace: bool = False
) -> None:
    """Write the private key (PEM) readable by its owner only (0600, folder 0700)."""
    _write(Path(path), private_pem(key), 0o600, replace)


def save_public(
    key: Ed25519PrivateKey | Ed25519PublicKey, path: str | os.PathLike[str], replace: bool = False
) -> None:
    """Write a public key (PEM, 0644)."""
    _write(Path(path), public_pem(key), 0o644, replace)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: {e.strerror or e}") from None


def load_private(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The private key at ``path``. KeyFileError when missing, unreadable, not an Ed25519
    key, or (POSIX) readable by others than its owner, as OpenSSH refuses it."""
    path = Path(path)
    data = _read(path)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise KeyFileError(f"{path}: readable by others (chmod 600 {path})")
    try:
        return parse_private(data)
    except BadKey as e:
        raise KeyFileError(f"{path}: {e}") from None


def load_public(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The public key at ``path`` (PEM or base64url); KeyFileError otherwise."""
    path = Path(path)
    try:
        return parse_public(_read(path))
    except BadKey as e:
        raise KeyFileError(f"{path}: {e}") from None
