"""Typed DSCSA exception records and their append-only resolutions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "HOLD_OF",
    "ExceptionRecord",
    "ExceptionStatus",
    "ExceptionType",
    "Finding",
    "Hold",
    "Resolution",
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
    exception_id: str
    note: str
    resolved_by: str
    resolved_at: datetime
    status: ExceptionStatus = ExceptionStatus.RESOLVED


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
    def hold(self) -> Hold:
        return HOLD_OF[self.type] if self.status is ExceptionStatus.OPEN else Hold.NONE
