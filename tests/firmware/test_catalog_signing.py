"""The firmware signing key: created once (0600, optional passphrase), never overwritten, its
public key and key id printed for devices to pin."""

import hashlib
import io
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django.core.management.base import CommandError

from firmware import signing


@pytest.fixture
def key_path(settings, tmp_path):
    settings.FIRMWARE_SIGNING_KEY = tmp_path / "keys" / "firmware-signing.key"
    settings.FIRMWARE_SIGNING_KEY_PASSPHRASE = ""
    return settings.FIRMWARE_SIGNING_KEY


def run(command: str) -> str:
    out = io.StringIO()
    call_command(command, stdout=out)
    return out.getvalue()


def test_init_firmware_key_creates_a_private_p256_key(key_path):
    assert "Created the firmware signing key" in run("init_firmware_key")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    assert signing.current().private_key.curve.name == "secp256r1"


def test_init_firmware_key_leaves_an_existing_key_untouched(key_path):
    run("init_firmware_key")
    before = key_path.read_bytes()
    assert "exists; left untouched" in run("init_firmware_key")
    assert key_path.read_bytes() == before


def test_create_key_refuses_to_overwrite(key_path):
    signing.create_key(key_path)
    with pytest.raises(signing.SigningKeyError, match="never overwritten"):
        signing.create_key(key_path)


def test_public_key_command_prints_the_pem_and_the_pinned_key_id(key_path):
    run("init_firmware_key")
    printed = run("firmware_public_key")
    pem = printed[printed.index("-----BEGIN PUBLIC KEY-----") :]
    der = serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert f"key id: {hashlib.sha256(der).hexdigest()[:16]}" in printed


def test_public_key_command_without_a_key_says_how_to_make_one(key_path):
    with pytest.raises(CommandError, match="init_firmware_key"):
        run("firmware_public_key")


def test_a_passphrase_encrypts_the_key(settings, key_path):
    settings.FIRMWARE_SIGNING_KEY_PASSPHRASE = "correct horse"
    run("init_firmware_key")
    assert b"ENCRYPTED" in key_path.read_bytes()
    signed = signing.current().sign(b"manifest")
    assert signing.verify(signing.current().public_key_pem, b"manifest", signed)
    settings.FIRMWARE_SIGNING_KEY_PASSPHRASE = "wrong"
    with pytest.raises(signing.SigningKeyError, match="PASSPHRASE"):
        signing.current()


def test_a_signature_covers_exactly_the_signed_bytes(key_path):
    key = signing.create_key(key_path)
    signature = key.sign(signing.canonical_json({"b": 1, "a": "x"}))
    assert signing.canonical_json({"a": "x", "b": 1}) == b'{"a":"x","b":1}'
    assert signing.verify(key.public_key_pem, b'{"a":"x","b":1}', signature)
    assert not signing.verify(key.public_key_pem, b'{"a":"x","b":2}', signature)
