"""Typed DSCSA exception records and their append-only resolutions and determinations.

An investigation of suspect product ends in a determination (DSCSA §582): ``cleared`` releases
the hold like any resolution; ``illegitimate`` is final. Once a record holds an illegitimate
determination its serials stay held as ``illegitimate`` whatever is appended later (notes on
the FDA Form 3911 notification, quarantine and disposition may still be appended), and no other
determination or reopening is accepted: terminating an illegitimate-product notification needs
a consultation with FDA, which this service does not model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from epcis.errors import EPCISError

__all__ = [
    "HOLD_OF",
    "Determination",
    "ExceptionRecord",
    "ExceptionStatus",
    "ExceptionType",
    "Finding",
    "Hold",
    "Resolution",
    "ResolutionRefusedError",
]


class ExceptionType(StrEnum):
    """What went wrong; the values are the wire names of ``GET /exceptions?type=``."""

    MISSING_TRANSACTION_STATEMENT = "missing_transaction_statement"
    MISSING_PRODUCT_MASTER_DATA = "missing_product_master_data"
    MISSING_PARTY_MASTER_DATA = "missing_party_master_data"
    COMMISSIONING_WITHOUT_LOT_OR_EXPIRY = "commissioning_without_lot_or_expiry"
    NEVER_COMMISSIONED = "never_commissioned"
    DUPLICATE_COMMISSIONING = "duplicate_commissioning"
    EVENT_AFTER_END_OF_LIFE = "event_after_end_of_life"
    ALREADY_IN_CONTAINER = "already_in_container"
    NOT_IN_CONTAINER = "not_in_container"
    RECEIVED_NOT_SHIPPED_TO_US = "received_not_shipped_to_us"
    LOT_OR_EXPIRY_MISMATCH = "lot_or_expiry_mismatch"
    PRODUCT_WITHOUT_DATA = "product_without_data"
    DATA_WITHOUT_PRODUCT = "data_without_product"
    SALEABLE_RETURN_HELD = "saleable_return_held"


class Hold(StrEnum):
    """What an open exception does to the serials it names."""

    QUARANTINED = "quarantined"
    SUSPECT = "suspect"
    # Set by a determination, never by a finding: see the module docstring.
    ILLEGITIMATE = "illegitimate"
    NONE = "none"


# Data gaps quarantine the product (a buyer may not accept ownership without TI/TS); findings
# that contradict the product's own history make it suspect until someone investigates.
HOLD_OF: dict[ExceptionType, Hold] = {
    ExceptionType.MISSING_TRANSACTION_STATEMENT: Hold.QUARANTINED,
    ExceptionType.MISSING_PRODUCT_MASTER_DATA: Hold.QUARANTINED,
    ExceptionType.MISSING_PARTY_MASTER_DATA: Hold.QUARANTINED,
    ExceptionType.COMMISSIONING_WITHOUT_LOT_OR_EXPIRY: Hold.QUARANTINED,
    ExceptionType.NEVER_COMMISSIONED: Hold.SUSPECT,
    ExceptionType.DUPLICATE_COMMISSIONING: Hold.SUSPECT,
    ExceptionType.EVENT_AFTER_END_OF_LIFE: Hold.SUSPECT,
    ExceptionType.ALREADY_IN_CONTAINER: Hold.QUARANTINED,
    ExceptionType.NOT_IN_CONTAINER: Hold.QUARANTINED,
    ExceptionType.RECEIVED_NOT_SHIPPED_TO_US: Hold.QUARANTINED,
    ExceptionType.LOT_OR_EXPIRY_MISMATCH: Hold.SUSPECT,
    ExceptionType.PRODUCT_WITHOUT_DATA: Hold.QUARANTINED,
    ExceptionType.DATA_WITHOUT_PRODUCT: Hold.NONE,
    # A returned package that did not verify clean stays out of saleable stock until resolved.
    ExceptionType.SALEABLE_RETURN_HELD: Hold.QUARANTINED,
}


class ExceptionStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Determination(StrEnum):
    """What the investigation of a suspect product concluded."""

    CLEARED = "cleared"
    ILLEGITIMATE = "illegitimate"


class ResolutionRefusedError(EPCISError):
    """A resolution the record's history does not allow (409): see the module docstring."""

    problem_type = "epcisException:ValidationException"
    status = 409


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in the data, before it is recorded as an exception."""

    type: ExceptionType
    detail: str
    identifiers: tuple[str, ...] = ()
    event_hashes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Same finding, same key: recording a finding twice keeps one record."""
        return "|".join((self.type.value, ",".join(self.event_hashes), ",".join(self.identifiers)))


@dataclass(frozen=True, slots=True)
class Resolution:
    """One appended step: a note and a status, and optionally the investigation's
    determination and the incident number FDA gave the Form 3911 notification."""

    exception_id: str
    note: str
    resolved_by: str
    resolved_at: datetime
    status: ExceptionStatus = ExceptionStatus.RESOLVED
    determination: Determination | None = None
    form3911: str | None = None

    def __post_init__(self) -> None:
        if self.determination is not None and self.status is not ExceptionStatus.RESOLVED:
            raise ValueError("a determination concludes the investigation: status is resolved")


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """A recorded finding; never updated: its status is that of its latest resolution."""

    exception_id: str
    key: str
    type: ExceptionType
    detail: str
    created_at: datetime
    document_id: str | None = None
    partner_id: str | None = None
    identifiers: tuple[str, ...] = ()
    event_hashes: tuple[str, ...] = ()
    resolutions: tuple[Resolution, ...] = field(default=())

    @classmethod
    def of(
        cls,
        finding: Finding,
        created_at: datetime,
        *,
        document_id: str | None = None,
        partner_id: str | None = None,
    ) -> ExceptionRecord:
        """A new record of ``finding``: a fresh ID, no resolution yet."""
        return cls(
            exception_id=uuid.uuid4().hex,
            key=finding.key,
            type=finding.type,
            detail=finding.detail,
            created_at=created_at,
            document_id=document_id,
            partner_id=partner_id,
            identifiers=finding.identifiers,
            event_hashes=finding.event_hashes,
        )

    @property
    def status(self) -> ExceptionStatus:
        return self.resolutions[-1].status if self.resolutions else ExceptionStatus.OPEN

    @property
    def illegitimate(self) -> Resolution | None:
        """The resolution that determined the product illegitimate, if one did (the first)."""
        return next(
            (r for r in self.resolutions if r.determination is Determination.ILLEGITIMATE), None
        )

    @property
    def determination(self) -> Determination | None:
        """Illegitimate once determined so; otherwise the latest determination, if any."""
        if self.illegitimate is not None:
            return Determination.ILLEGITIMATE
        return next((r.determination for r in reversed(self.resolutions) if r.determination), None)

    @property
    def form3911(self) -> str | None:
        """The latest Form FDA 3911 incident number recorded, if any."""
        return next((r.form3911 for r in reversed(self.resolutions) if r.form3911), None)

    @property
    def hold(self) -> Hold:
        if self.illegitimate is not None:
            return Hold.ILLEGITIMATE
        return HOLD_OF[self.type] if self.status is ExceptionStatus.OPEN else Hold.NONE

    def refusal(self, resolution: Resolution) -> str | None:
        """Why ``resolution`` may not be appended to this record, or None when it may."""
        final = self.illegitimate is not None
        if final and resolution.determination is not None:
            return "the product was determined illegitimate; that determination is final"
        if final and resolution.status is ExceptionStatus.OPEN:
            return "an illegitimate determination concluded the investigation: it cannot reopen"
        if resolution.form3911 and not (
            final or resolution.determination is Determination.ILLEGITIMATE
        ):
            return "a Form FDA 3911 incident number belongs to an illegitimate determination"
        return None
