"""Responder adapter: serial state, recalls and exception holds -> the pure decision input;
plus the verification settings (``DSCSA_VRS_*``)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import sgtin_epc, sgtin_spellings
from service.exception_records import Hold
from service.serial_state import Status
from service.settings import Settings, SettingsError
from service.traceability_store import TraceabilityStore, VerificationView
from verification.decisions import Decision, DecisionInput, SerialFacts, decide
from verification.messages import VerificationData, VerificationRequest, VerificationResponse

__all__ = [
    "IllegitimacyCheck",
    "LocalResponder",
    "VerificationSettings",
    "serial_epc",
]

# Whether an investigation found a package illegitimate, besides the store's own record of it
# (an ``illegitimate`` hold, from an exception resolution's determination).
IllegitimacyCheck = Callable[[str], Awaitable[bool]]

_ENVIRONMENT = {
    "DSCSA_VRS_RESPONDER_GLN": "responder_gln",
    "DSCSA_VRS_LOOKUP_DIRECTORY": "lookup_directory",
    "DSCSA_VRS_CREDENTIAL_HEADER": "credential_header",
    "DSCSA_VRS_ISSUER_KEYS": "issuer_keys",
    "DSCSA_VRS_CREDENTIAL_REQUIRED": "credential_required",
    "DSCSA_VRS_TIMEOUT": "timeout",
    "DSCSA_VRS_RETRIES": "retries",
    "DSCSA_VRS_BREAKER_THRESHOLD": "breaker_threshold",
    "DSCSA_VRS_BREAKER_RESET": "breaker_reset",
}


class VerificationSettings(BaseModel):
    """Responder and requestor configuration; the ATP check is on when a header is named."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    responder_gln: str | None = Field(default=None, pattern=r"^\d{13}$")
    lookup_directory: Path | None = None
    credential_header: str | None = None
    issuer_keys: Path | None = None
    credential_required: bool = True
    timeout: float = Field(default=5.0, gt=0)
    retries: int = Field(default=2, ge=0)
    breaker_threshold: int = Field(default=5, gt=0)
    breaker_reset: float = Field(default=30.0, gt=0)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> VerificationSettings:
        source = os.environ if environ is None else environ
        values = {f: source[n] for n, f in _ENVIRONMENT.items() if source.get(n, "")}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(str(error)) from None

    def gln(self, settings: Settings) -> str:
        gln = self.responder_gln or settings.gln
        if gln is None:
            raise SettingsError("set DSCSA_VRS_RESPONDER_GLN or DSCSA_GLN to answer verifications")
        return gln

    def directory_path(self, settings: Settings) -> Path:
        return self.lookup_directory or settings.data_dir / "lookup-directory.json"


def serial_epc(gtin: str, serial: str) -> str:
    """The spelling serial state is keyed by: the same canonical form capture gives."""
    return sgtin_epc(gtin, serial)


_ENDS = {
    Status.DECOMMISSIONED: "decommissioned",
    Status.DESTROYED: "destroyed",
    Status.DISPENSED: "dispensed",
}


class LocalResponder:
    """Answers verification requests for our own GTINs from the traceability store."""

    def __init__(
        self,
        store: TraceabilityStore,
        company_prefixes: Collection[str],
        responder_gln: str,
        *,
        illegitimate: IllegitimacyCheck | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._prefixes = tuple(company_prefixes)
        self.responder_gln = responder_gln
        self._illegitimate = illegitimate
        self._clock = clock

    def owns(self, gtin: str) -> bool:
        """A GTIN-14 is ours when its digits after the indicator start with our prefix."""
        return gtin[1:].startswith(self._prefixes)

    def now(self) -> datetime:
        """The responder's clock: the time of an answer."""
        return self._clock()

    async def facts(self, gtin: str, serial: str) -> SerialFacts | None:
        try:
            epc = serial_epc(gtin, serial)
        except InvalidIdentifierError:
            return None
        # State, recall and holds in one store call: each call is a hop to the store's thread.
        view = await self._store.verification_view(epc)
        if view is None:
            # Our own documents may spell the URN with another company prefix length than
            # GS1's table gives (NDC labeler codes): looked for in each before "unknown".
            others = sgtin_spellings(gtin, serial)[1:]  # the first is ``epc`` itself
            if others:
                view = await self._store.verification_view(*others)
        if view is None or view.state.commissioned_at is None:
            return None
        return await self._flags(view)

    async def _flags(self, view: VerificationView) -> SerialFacts:
        state = view.state
        ended = _ENDS.get(state.lifecycle)
        illegitimate = Hold.ILLEGITIMATE in view.holds or (
            self._illegitimate is not None and await self._illegitimate(state.epc)
        )
        return SerialFacts(
            lot=state.lot,
            expiry=state.expiry,
            decommissioned=ended == "decommissioned",
            destroyed=ended == "destroyed",
            dispensed=ended == "dispensed",
            recalled=view.recalled,
            suspect=Hold.SUSPECT in view.holds,
            quarantined=Hold.QUARANTINED in view.holds,
            illegitimate=illegitimate,
        )

    async def decision(self, request: VerificationRequest, today: date) -> Decision:
        """The decision table's answer for ``request`` on ``today``, without the response
        models (the HTTP responder writes its answer from this)."""
        found = await self.facts(request.gtin, request.serial)
        return decide(DecisionInput(request.lot, request.expiry_date, found, today))

    async def verify(self, request: VerificationRequest) -> VerificationResponse:
        now = self._clock()
        decision = await self.decision(request, now.date())
        return VerificationResponse(
            verification_timestamp=now,
            responder_gln=self.responder_gln,
            data=VerificationData(
                verified=decision.verified,
                verification_failure_reason=decision.reason,
                additional_info=decision.info,
            ),
            corr_uuid=request.corr_uuid,
        )
