"""Trading partners: their identifiers, token issue and revocation, the first operator token."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import epc_match_key
from service.store import EventStore, PartnerRecord, PartnerRole

__all__ = [
    "ROLES",
    "IssuedToken",
    "add_partner",
    "ensure_operator_token",
    "hash_token",
    "new_token",
    "party_keys",
]

ROLES: tuple[PartnerRole, ...] = ("partner", "operator", "auditor")
_DIGITAL_LINK = "https://id.gs1.org"

logger = logging.getLogger(__name__)


def party_keys(identifier: str) -> set[str]:
    """Match keys of a party identifier in any form (GLN, SGLN or PGLN URN, Digital Link).

    A bare 13-digit GLN names both the location (SGLN with extension 0, AI 414) and the
    party (PGLN, AI 417): DSCSA documents use either for the owning party.
    """
    identifier = identifier.strip()
    if identifier.isdigit() and len(identifier) == 13:
        forms = [f"{_DIGITAL_LINK}/414/{identifier}", f"{_DIGITAL_LINK}/417/{identifier}"]
    else:
        forms = [identifier]
    keys = set()
    for form in forms:
        try:
            keys.add(epc_match_key(form))
        except InvalidIdentifierError:
            # Not a GS1 identifier (some senders use DUNS or free text): compare as given.
            keys.add(form)
    return keys


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are stored only as this SHA-256 hex digest; the token itself is shown once."""
    return hashlib.sha256(token.encode()).hexdigest()


class IssuedToken:
    """A partner record with its token; the token exists only here, never in the store."""

    __slots__ = ("record", "token")

    def __init__(self, record: PartnerRecord, token: str) -> None:
        self.record = record
        self.token = token


async def add_partner(
    store: EventStore, name: str, gln: str, role: PartnerRole = "partner"
) -> IssuedToken:
    if not (gln.isdigit() and len(gln) == 13):
        raise ValueError("a GLN is 13 digits")
    token = new_token()
    record = PartnerRecord(
        partner_id=uuid.uuid4().hex,
        name=name,
        gln=gln,
        identifiers=tuple(sorted(party_keys(gln))),
        role=role,
        token_hash=hash_token(token),
        created_at=datetime.now(UTC),
        revoked_at=None,
    )
    await store.add_partner(record)
    return IssuedToken(record, token)


async def ensure_operator_token(store: EventStore, token_path: Path, gln: str | None) -> bool:
    """On first start (no partners at all) create an operator and write its token, mode 0600.

    Returns whether a token was written. Only the file's location is logged, never the token.
    """
    if await store.list_partners():
        return False
    issued = await add_partner(store, "operator", gln or "0000000000000", role="operator")
    token_path.parent.mkdir(parents=True, exist_ok=True)
    # Created with 0600 from the start, so the token is never readable by others.
    descriptor = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(issued.token + "\n")
    os.chmod(token_path, 0o600)
    logger.warning("first start: operator token written to %s (mode 0600)", token_path)
    return True
