"""Ed25519 signing keys for ledger checkpoints and export bundles, kept encrypted on disk.

A key ring is a folder: ``<key id>.pem`` holds the private key as passphrase-encrypted PKCS#8
(mode 0600), ``<key id>.pub.pem`` its public key, and ``keyring.json`` which key signs now.
Rotation retires the signing key but keeps its public key, so whatever it signed still verifies.
The key ID is the first 16 hex digits of SHA-256 over the raw public key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "KeyInfo",
    "KeyRing",
    "KeyRingError",
    "key_id_of",
    "load_public_key",
    "passphrase_from_environment",
    "verify_signature",
]

# Names of environment variables, not secrets.
PASSPHRASE_VARIABLE = "DSCSA_KEY_PASSPHRASE"  # noqa: S105
PASSPHRASE_FILE_VARIABLE = "DSCSA_KEY_PASSPHRASE_FILE"  # noqa: S105


class KeyRingError(Exception):
    """The key ring is missing, locked or inconsistent."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    algorithm: str
    created_at: str
    status: str  # "active" signs new material; "retired" only verifies


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyRingError("only Ed25519 public keys are accepted")
    return key


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def passphrase_from_environment(environ: dict[str, str] | None = None) -> bytes:
    """The key passphrase from DSCSA_KEY_PASSPHRASE or the file DSCSA_KEY_PASSPHRASE_FILE names."""
    env = os.environ if environ is None else environ
    if value := env.get(PASSPHRASE_VARIABLE):
        return value.encode()
    if path := env.get(PASSPHRASE_FILE_VARIABLE):
        return Path(path).read_bytes().strip()
    raise KeyRingError(
        f"set {PASSPHRASE_VARIABLE} or {PASSPHRASE_FILE_VARIABLE} to unlock the signing keys"
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created with 0600 from the start: the key never exists on disk with wider permissions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


class KeyRing:
    """The signing keys in one folder."""

    def __init__(self, folder: Path, passphrase: bytes) -> None:
        if not passphrase:
            raise KeyRingError("an empty passphrase would leave the keys unencrypted")
        self.folder = folder
        self._passphrase = passphrase

    @property
    def _index_path(self) -> Path:
        return self.folder / "keyring.json"

    def key_infos(self) -> list[KeyInfo]:
        if not self._index_path.exists():
            return []
        entries = json.loads(self._index_path.read_text())
        return [KeyInfo(**entry) for entry in entries]

    def active(self) -> KeyInfo:
        for info in self.key_infos():
            if info.status == "active":
                return info
        raise KeyRingError(f"no active signing key in {self.folder}; run 'dscsa keys generate'")

    def generate(self) -> KeyInfo:
        """A new key; it becomes the active one only when there is none."""
        has_active = any(info.status == "active" for info in self.key_infos())
        return self._add(status="retired" if has_active else "active")

    def rotate(self) -> KeyInfo:
        """A new active key; the previous one is retired and keeps verifying."""
        retired = [KeyInfo(**{**asdict(info), "status": "retired"}) for info in self.key_infos()]
        self._save_index(retired)
        return self._add(status="active")

    def public_pem(self, key_id: str | None = None) -> bytes:
        key_id = key_id or self.active().key_id
        path = self.folder / f"{key_id}.pub.pem"
        if not path.exists():
            raise KeyRingError(f"no key {key_id} in {self.folder}")
        return path.read_bytes()

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        return load_public_key(self.public_pem(key_id))

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """Sign with the active key; answer (key ID, signature)."""
        key_id = self.active().key_id
        return key_id, self._private_key(key_id).sign(data)

    def verify(self, key_id: str, signature: bytes, data: bytes) -> bool:
        return verify_signature(self.public_key(key_id), signature, data)

    def _private_key(self, key_id: str) -> Ed25519PrivateKey:
        pem = (self.folder / f"{key_id}.pem").read_bytes()
        try:
            key = serialization.load_pem_private_key(pem, password=self._passphrase)
        except ValueError as err:
            raise KeyRingError(f"cannot unlock key {key_id}: wrong passphrase?") from err
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyRingError(f"key {key_id} is not an Ed25519 key")
        return key

    def _add(self, *, status: str) -> KeyInfo:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_key = Ed25519PrivateKey.generate()
        public_key = private_key.public_key()
        key_id = key_id_of(public_key)
        encrypted = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        _write_private(self.folder / f"{key_id}.pem", encrypted)
        (self.folder / f"{key_id}.pub.pem").write_bytes(
            public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        info = KeyInfo(
            key_id=key_id,
            algorithm="Ed25519",
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            status=status,
        )
        self._save_index([*self.key_infos(), info])
        return info

    def _save_index(self, infos: Sequence[KeyInfo]) -> None:
        temporary = self._index_path.with_suffix(".tmp")
        temporary.write_text(json.dumps([asdict(info) for info in infos], indent=2))
        temporary.replace(self._index_path)
