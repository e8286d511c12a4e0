"""GS1 identifiers for the EPCIS core: EPC URNs, Digital Links, element strings, NDCs, dates."""

from __future__ import annotations

from epcis.identifiers.canonical import (
    canonical_class,
    canonical_epc,
    epc_match_key,
    epc_pattern_matches,
    gs1_key_pairs,
    to_digital_link,
    to_epc_urn,
)
from epcis.identifiers.check_digit import check_digit, has_valid_check_digit
from epcis.identifiers.gs1_keys import (
    company_prefix_length,
    normalize_gtin,
    validate_gln,
    validate_sscc,
)

__all__ = [
    "canonical_class",
    "canonical_epc",
    "check_digit",
    "company_prefix_length",
    "epc_match_key",
    "epc_pattern_matches",
    "gs1_key_pairs",
    "has_valid_check_digit",
    "normalize_gtin",
    "to_digital_link",
    "to_epc_urn",
    "validate_gln",
    "validate_sscc",
]
