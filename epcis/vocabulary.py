"""CBV vocabulary values in their three spellings: URN (1.2), Web URI (2.0 XML), bare word (JSON).

The model holds the bare word for every CBV value and the full URI for anything else; the
writers spell it back out in the form their format expects.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BIZ_STEPS",
    "DISPOSITIONS",
    "CBVKind",
    "canonical",
    "to_urn",
    "to_web_uri",
]


class CBVKind(StrEnum):
    """A CBV vocabulary; the value is its URN segment."""

    BIZ_STEP = "bizstep"
    DISPOSITION = "disp"
    BIZ_TRANSACTION_TYPE = "btt"
    SOURCE_DESTINATION_TYPE = "sdt"
    ERROR_REASON = "er"


_WEB_PREFIX = {
    CBVKind.BIZ_STEP: "BizStep-",
    CBVKind.DISPOSITION: "Disp-",
    CBVKind.BIZ_TRANSACTION_TYPE: "BTT-",
    CBVKind.SOURCE_DESTINATION_TYPE: "SDT-",
    CBVKind.ERROR_REASON: "ER-",
}
_URN_BASE = "urn:epcglobal:cbv:"
_WEB_BASE = "https://ref.gs1.org/cbv/"
_CURIE_BASE = "cbv:"

BIZ_STEPS = frozenset(
    "accepting arriving assembling collecting commissioning consigning creating_class_instance "
    "cycle_counting decommissioning departing destroying disassembling dispensing encoding "
    "entering_exiting holding inspecting installing killing loading other packing picking "
    "receiving removing repackaging repairing replacing reserving retail_selling shipping "
    "staging_outbound stock_taking stocking storing transporting unloading unpacking "
    "void_shipping sampling sensor_reporting".split()
)
DISPOSITIONS = frozenset(
    "active container_closed damaged destroyed dispensed disposed encoded expired in_progress "
    "in_transit inactive no_pedigree_match non_sellable_other partially_dispensed recalled "
    "reserved retail_sold returned sellable_accessible sellable_not_accessible stolen unknown "
    "available completeness_verified completeness_inferred conformant container_open "
    "mismatch_instance mismatch_class mismatch_quantity needs_replacement non_conformant "
    "unavailable".split()
)


def canonical(kind: CBVKind, value: str) -> str:
    """The model's spelling: the bare word for a CBV value, the URI otherwise."""
    value = value.strip()
    for prefix in (
        f"{_URN_BASE}{kind.value}:",
        f"{_WEB_BASE}{_WEB_PREFIX[kind]}",
        f"{_CURIE_BASE}{_WEB_PREFIX[kind]}",
    ):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _is_bare(value: str) -> bool:
    return ":" not in value


def to_urn(kind: CBVKind, value: str) -> str:
    return f"{_URN_BASE}{kind.value}:{value}" if _is_bare(value) else value


def to_web_uri(kind: CBVKind, value: str) -> str:
    return f"{_WEB_BASE}{_WEB_PREFIX[kind]}{value}" if _is_bare(value) else value
