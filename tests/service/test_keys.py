"""Signing keys on disk and signed ledger checkpoints."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from service.checkpoints import Checkpoint, sign_checkpoint, verify_checkpoint
from service.keys import KeyRing, KeyRingError, load_public_key, passphrase_from_environment
from service.merkle import MerkleTree


@pytest.fixture
def keyring(tmp_path: Path) -> KeyRing:
    return KeyRing(tmp_path / "keys", b"correct horse battery staple")


def test_generated_key_is_encrypted_and_private(keyring: KeyRing) -> None:
    info = keyring.generate()
    private = keyring.folder / f"{info.key_id}.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    assert info.status == "active"


def test_wrong_passphrase_cannot_sign(keyring: KeyRing) -> None:
    keyring.generate()
    intruder = KeyRing(keyring.folder, b"guess")
    with pytest.raises(KeyRingError, match="passphrase"):
        intruder.sign(b"data")


def test_rotation_keeps_old_keys_verifying(keyring: KeyRing) -> None:
    first = keyring.generate()
    old_key, old_signature = keyring.sign(b"checkpoint 1")
    second = keyring.rotate()
    statuses = {info.key_id: info.status for info in keyring.key_infos()}
    assert statuses == {first.key_id: "retired", second.key_id: "active"}
    assert old_key == first.key_id
    assert keyring.verify(first.key_id, old_signature, b"checkpoint 1")
    assert keyring.sign(b"checkpoint 2")[0] == second.key_id


def test_second_generate_does_not_take_over_signing(keyring: KeyRing) -> None:
    first = keyring.generate()
    keyring.generate()
    assert keyring.active().key_id == first.key_id


def test_no_key_is_a_clear_error(keyring: KeyRing) -> None:
    with pytest.raises(KeyRingError, match="dscsa keys generate"):
        keyring.sign(b"x")


def test_passphrase_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("from-a-file\n")
    assert passphrase_from_environment({"DSCSA_KEY_PASSPHRASE_FILE": str(secret)}) == b"from-a-file"
    with pytest.raises(KeyRingError):
        passphrase_from_environment({})


def test_checkpoint_signature_binds_size_root_and_time(keyring: KeyRing) -> None:
    keyring.generate()
    tree = MerkleTree()
    for i in range(5):
        tree.append(b"%d" % i)
    checkpoint = sign_checkpoint(keyring, tree.size, tree.root())
    public_key = load_public_key(keyring.public_pem())
    assert verify_checkpoint(checkpoint, public_key)
    assert verify_checkpoint(Checkpoint.from_json(checkpoint.to_json()), public_key)
    for change in ({"size": 6}, {"root": "00" * 32}, {"timestamp": "2020-01-01T00:00:00Z"}):
        assert not verify_checkpoint(dataclasses.replace(checkpoint, **change), public_key)
