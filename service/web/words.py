"""Plain words for codes: verification answers, statuses, business steps, exception types."""

from __future__ import annotations

from service.exception_records import ExceptionType
from verification.messages import AdditionalInfo, FailureReason

__all__ = [
    "EXCEPTION_LABELS",
    "exception_label",
    "failure_words",
    "info_words",
    "status_label",
    "step_label",
]

_FAILURES = {
    FailureReason.NO_MATCH_GTIN_SERIAL: (
        "The manufacturer has no record of this product code with this serial number."
    ),
    FailureReason.NO_MATCH_LOT: (
        "The serial number is known, but the lot number on the package is not the one the "
        "manufacturer recorded for it."
    ),
    FailureReason.NO_MATCH_EXPIRY: (
        "The serial number is known, but the expiry date on the package is not the one the "
        "manufacturer recorded for it."
    ),
    FailureReason.NO_MATCH_LOT_EXPIRY: (
        "The serial number is known, but neither the lot number nor the expiry date on the "
        "package match the manufacturer's record."
    ),
    FailureReason.NOT_FOR_REDISTRIBUTION: (
        "The package is recorded as dispensed, decommissioned or destroyed: it must not be "
        "sold or distributed again."
    ),
    FailureReason.MANUFACTURER_POLICY: (
        "The manufacturer's policy does not let it confirm this product."
    ),
    FailureReason.NO_REASON_PROVIDED: "The manufacturer did not say why.",
}

_INFO = {
    AdditionalInfo.EXPIRED: "The product is past its expiry date.",
    AdditionalInfo.EXPIRATION_EXTENDED: "The manufacturer has extended the expiry date.",
    AdditionalInfo.RECALLED: "The product is under recall.",
    AdditionalInfo.SUSPECT: "The product is held: it is suspect or quarantined pending review.",
    AdditionalInfo.ILLEGITIMATE: "The product has been found to be illegitimate.",
}

_STATUSES = {
    "in_transit": "In transit",
    "unknown": "Unknown",
}

_STEPS = {
    "commissioning": "Commissioned",
    "packing": "Packed",
    "unpacking": "Unpacked",
    "shipping": "Shipped",
    "receiving": "Received",
    "dispensing": "Dispensed",
    "decommissioning": "Decommissioned",
    "destroying": "Destroyed",
    "inspecting": "Inspected",
    "holding": "Held",
    "storing": "Stored",
    "returning": "Returned",
}

EXCEPTION_LABELS: dict[ExceptionType, str] = {
    kind: kind.value.replace("_", " ").capitalize() for kind in ExceptionType
}
EXCEPTION_LABELS[ExceptionType.LOT_OR_EXPIRY_MISMATCH] = "Lot or expiry does not match"
EXCEPTION_LABELS[ExceptionType.RECEIVED_NOT_SHIPPED_TO_US] = "Received but not shipped to us"


def failure_words(reason: str | None) -> str | None:
    if reason is None:
        return None
    try:
        return _FAILURES[FailureReason(reason)]
    except ValueError:
        return f"The responder answered {reason!r}."


def info_words(info: str | None) -> str | None:
    if info is None:
        return None
    try:
        return _INFO[AdditionalInfo(info)]
    except ValueError:
        return f"The responder added {info!r}."


def status_label(status: str | None) -> str:
    if not status:
        return "Unknown"
    return _STATUSES.get(status, status.replace("_", " ").capitalize())


def step_label(biz_step: str | None, event_type: str, action: str | None) -> str:
    if biz_step:
        return _STEPS.get(biz_step, biz_step.replace("_", " ").capitalize())
    return f"{event_type} {action or ''}".strip()


def exception_label(kind: str) -> str:
    try:
        return EXCEPTION_LABELS[ExceptionType(kind)]
    except ValueError:
        return kind
