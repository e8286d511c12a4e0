"""Trading-partner credential checks beyond the bearer token: the interface, and an ATP
credential check of a signed JWT verifiable presentation (ES256 or EdDSA).

The presentation (VC-JWT form) is signed by the holder and carries ``nonce`` = the request's
corrUUID, so it cannot be replayed on another request. Inside, ``vp.verifiableCredential``
holds credential JWTs; one must be signed by a configured issuer key, be of the configured
type (``DSCSAATPCredential``), name the presenter as ``sub`` and bind the holder's public key
in ``cnf.jwk`` (RFC 7800), which is the key the presentation is checked against. DID
resolution and revocation lists are not consulted: issuers and their keys are configured.
JWS verification itself is PyJWT's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt

from epcis.errors import EPCISError

__all__ = [
    "CredentialCheck",
    "CredentialOutcome",
    "CredentialRejectedError",
    "JwtPresentationCheck",
    "load_issuer_keys",
]

_ALGORITHMS = ["ES256", "EdDSA"]


class CredentialRejectedError(EPCISError):
    """Missing, expired, wrongly signed or unbound credential: 403 per GS1 US LMVS 1.3."""

    problem_type = "epcisException:SecurityException"
    status = 403


@dataclass(frozen=True, slots=True)
class CredentialOutcome:
    """What a check established; logged with the verification (no token, no secret)."""

    scheme: str
    presented: bool
    holder: str | None = None
    issuer: str | None = None


class CredentialCheck(Protocol):
    """One credential scheme; raises :class:`CredentialRejectedError` to refuse the request."""

    scheme: str

    async def check(self, headers: Mapping[str, str], *, corr_uuid: str) -> CredentialOutcome: ...


def load_issuer_keys(path: Path) -> dict[str, jwt.PyJWK]:
    """``{"issuer id": <public JWK>, ...}`` from a JSON file."""
    raw = json.loads(path.read_text())
    return {issuer: jwt.PyJWK(jwk) for issuer, jwk in raw.items()}


class JwtPresentationCheck:
    scheme = "jwt-vp"

    def __init__(
        self,
        header: str,
        issuers: Mapping[str, jwt.PyJWK],
        *,
        credential_type: str = "DSCSAATPCredential",
        required: bool = True,
        audience: str | None = None,
        leeway: float = 60.0,
    ) -> None:
        self.header = header
        self._issuers = dict(issuers)
        self._type = credential_type
        self._required = required
        self._audience = audience
        self._leeway = leeway

    async def check(self, headers: Mapping[str, str], *, corr_uuid: str) -> CredentialOutcome:
        token = headers.get(self.header)
        if not token:
            if self._required:
                raise CredentialRejectedError(
                    f"the {self.header} header with an ATP credential is required"
                )
            return CredentialOutcome(self.scheme, presented=False)
        try:
            return self._verify(token.strip(), corr_uuid)
        except jwt.PyJWTError as error:
            raise CredentialRejectedError(f"ATP credential rejected: {error}") from None

    def _verify(self, token: str, corr_uuid: str) -> CredentialOutcome:
        unverified = jwt.decode(token, options={"verify_signature": False})
        holder = unverified.get("iss")
        credentials = (unverified.get("vp") or {}).get("verifiableCredential") or []
        for credential in credentials if isinstance(credentials, list) else []:
            claims = self._credential(credential, holder)
            if claims is None:
                continue
            key = jwt.PyJWK(claims["cnf"]["jwk"])
            presentation = jwt.decode(
                token,
                key,
                algorithms=_ALGORITHMS,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "nonce"], "verify_aud": bool(self._audience)},
            )
            if str(presentation["nonce"]).lower() != corr_uuid.lower():
                raise CredentialRejectedError("the presentation was made for another corrUUID")
            return CredentialOutcome(self.scheme, True, holder, claims["iss"])
        raise CredentialRejectedError(
            f"no {self._type} from a trusted issuer bound to the presenter"
        )

    def _credential(self, credential: Any, holder: Any) -> dict[str, Any] | None:
        if not isinstance(credential, str):
            return None
        issuer = jwt.decode(credential, options={"verify_signature": False}).get("iss")
        key = self._issuers.get(str(issuer))
        if key is None:
            return None
        claims: dict[str, Any] = jwt.decode(
            credential,
            key,
            algorithms=_ALGORITHMS,
            leeway=self._leeway,
            options={"require": ["exp", "iss", "sub"], "verify_aud": False},
        )
        types = (claims.get("vc") or {}).get("type") or []
        bound = isinstance(claims.get("cnf"), dict) and isinstance(claims["cnf"].get("jwk"), dict)
        if self._type not in types or claims["sub"] != holder or not bound:
            return None
        return claims
