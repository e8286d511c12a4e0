"""Signed tree heads of the audit ledger: (size, root, time), signed with an Ed25519 key."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from service.keys import KeyRing, verify_signature

__all__ = ["Checkpoint", "sign_checkpoint", "verify_checkpoint"]

# The signed text names its purpose and version so a signature over a checkpoint can never be
# replayed as a signature over anything else we sign (export manifests use another header).
_HEADER = "dscsa-ledger-checkpoint/v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    root: str  # hex SHA-256
    timestamp: str  # ISO 8601, UTC
    key_id: str
    signature: str  # base64

    def signed_bytes(self) -> bytes:
        return f"{_HEADER}\n{self.size}\n{self.root}\n{self.timestamp}\n{self.key_id}\n".encode()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            size=int(data["size"]),
            root=str(data["root"]),
            timestamp=str(data["timestamp"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )


def sign_checkpoint(
    keyring: KeyRing, size: int, root: bytes, at: datetime | None = None
) -> Checkpoint:
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    key_id = keyring.active().key_id
    unsigned = Checkpoint(size, root.hex(), moment, key_id, "")
    signer_id, signature = keyring.sign(unsigned.signed_bytes())
    if signer_id != key_id:
        raise RuntimeError("the active key changed while signing a checkpoint")
    return Checkpoint(size, root.hex(), moment, key_id, base64.b64encode(signature).decode())


def verify_checkpoint(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except ValueError:
        return False
    return verify_signature(public_key, signature, checkpoint.signed_bytes())
