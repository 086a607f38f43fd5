"""Portal mode's keys: Ed25519 signatures over the canonical JSON form, key files that stay
private and are never replaced silently, and a verify() that never raises on garbage."""

from __future__ import annotations

import json
import os
import stat

import pytest

from agent.config import Config
from agent.portal import keys, topic, valid_agent_id

JOB = {"v": 1, "id": "x", "params": {"symptom": "no-ring", "lang": "fr"}, "note": "é"}


def test_sign_verify_round_trip():
    private = keys.generate()
    sig = keys.sign(private, JOB)
    assert len(sig) == 86 and "=" not in sig
    assert keys.verify(private.public_key(), JOB, sig)
    # the canonical form: the key order and the spacing of the wire do not matter
    reordered = json.loads(json.dumps(dict(reversed(list(JOB.items()))), indent=4))
    assert keys.verify(private.public_key(), reordered, sig)
    assert keys.canonical(JOB) == (
        '{"id":"x","note":"é","params":{"lang":"fr","symptom":"no-ring"},"v":1}'.encode()
    )


def test_verify_refuses_other_keys_and_changes():
    private, other = keys.generate(), keys.generate()
    sig = keys.sign(private, JOB)
    assert not keys.verify(other.public_key(), JOB, sig)
    assert not keys.verify(private.public_key(), {**JOB, "v": 2}, sig)
    assert not keys.verify(private.public_key(), {**JOB, "note": "e"}, sig)


@pytest.mark.parametrize(
    "sig",
    [None, "", 12, b"bytes", "not base64!", "A" * 85, "A" * 86, "A" * 88 + "==", "=" * 86, ["x"]],
)
def test_verify_never_raises_on_garbage(sig):
    private = keys.generate()
    assert keys.verify(private.public_key(), JOB, sig) is False


def test_verify_never_raises_on_garbage_objects_or_keys():
    private = keys.generate()
    sig = keys.sign(private, JOB)
    assert keys.verify(private.public_key(), {"x": float("nan")}, sig) is False
    assert keys.verify(private.public_key(), {"x": "\ud800"}, sig) is False  # no UTF-8 form
    assert keys.verify(private.public_key(), {"x": object()}, sig) is False
    assert keys.verify(None, JOB, sig) is False
    assert keys.verify("a key", JOB, sig) is False


def test_base64url_without_padding():
    for n in range(0, 40):
        data = os.urandom(n)
        text = keys.b64encode(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert keys.b64decode(text) == data
    for bad in ("abc=", "a", "ab+c", "ab/c", "abcde", 5):
        with pytest.raises(ValueError):
            keys.b64decode(bad)  # type: ignore[arg-type]


def test_key_files(tmp_path):
    private = keys.generate()
    folder = tmp_path / "portal"
    keys.save_private(private, folder / keys.AGENT_KEY)
    keys.save_public(private, folder / keys.AGENT_PUB)
    assert stat.S_IMODE((folder / keys.AGENT_KEY).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (folder / keys.AGENT_KEY).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = keys.load_private(folder / keys.AGENT_KEY)
    assert keys.public_raw(loaded) == keys.public_raw(private)
    public = keys.load_public(folder / keys.AGENT_PUB)
    assert keys.verify(public, JOB, keys.sign(loaded, JOB))
    assert keys.fingerprint(public) == keys.fingerprint(private)
    assert keys.fingerprint(public).startswith("SHA256:")


def test_key_files_are_never_replaced_silently(tmp_path):
    first, second = keys.generate(), keys.generate()
    path = tmp_path / keys.AGENT_KEY
    keys.save_private(first, path)
    with pytest.raises(keys.KeyExists):
        keys.save_private(second, path)
    with pytest.raises(keys.KeyExists):
        keys.save_public(second, tmp_path / keys.AGENT_KEY)
    assert keys.public_raw(keys.load_private(path)) == keys.public_raw(first)
    keys.save_private(second, path, replace=True)  # asked for: replaced, still 0600
    assert keys.public_raw(keys.load_private(path)) == keys.public_raw(second)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [keys.AGENT_KEY]  # no temp left


def test_a_private_key_readable_by_others_is_refused(tmp_path):
    path = tmp_path / keys.AGENT_KEY
    keys.save_private(keys.generate(), path)
    path.chmod(0o644)
    with pytest.raises(keys.KeyFileError, match="readable by others"):
        keys.load_private(path)


def test_bad_key_files(tmp_path):
    with pytest.raises(keys.KeyFileError, match=r"missing\.key"):
        keys.load_private(tmp_path / "missing.key")
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("hello")
    with pytest.raises(keys.KeyFileError, match=r"garbage\.pub"):
        keys.load_public(garbage)
    rsa_like = tmp_path / "x.key"
    rsa_like.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    rsa_like.chmod(0o600)
    with pytest.raises(keys.KeyFileError):
        keys.load_private(rsa_like)


def test_public_keys_as_pem_or_base64url():
    private = keys.generate()
    raw = keys.public_raw(private)
    assert keys.public_raw(keys.parse_public(keys.public_pem(private))) == raw
    assert keys.public_raw(keys.parse_public(keys.public_b64(private))) == raw
    assert len(keys.public_b64(private)) == 43
    for bad in ("", "abc", keys.b64encode(b"x" * 31), "-----BEGIN PUBLIC KEY-----\nx\n"):
        with pytest.raises(keys.BadKey):
            keys.parse_public(bad)


def test_the_portal_folder_defaults_next_to_the_store(tmp_path):
    cfg = Config(store_path=str(tmp_path / "store" / "phonediag.sqlite"))
    assert keys.directory(cfg) == tmp_path / "store" / "portal"
    cfg.portal_dir = str(tmp_path / "elsewhere")
    assert keys.directory(cfg) == tmp_path / "elsewhere"


def test_agent_ids_and_topics():
    assert valid_agent_id("office-1") and valid_agent_id("a" * 63)
    for bad in ("ab", "-office", "Office", "a" * 64, "office/1", "office+", "office#", 5, None):
        assert not valid_agent_id(bad)
    assert topic("office-1", "jobs") == "phonediag/v1/agents/office-1/jobs"
    assert topic("office-1", "results", "j") == "phonediag/v1/agents/office-1/results/j"
    with pytest.raises(ValueError):
        topic("office/+", "jobs")
