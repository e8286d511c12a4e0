"""GS1 identifiers for the EPCIS core: EPC URNs, Digital Links, element strings, NDCs, dates."""

from __future__ import annotations

from epcis.identifiers.canonical import (
    canonical_class,
    canonical_epc,
    epc_match_key,
    epc_pattern_matches,
    gs1_key_pairs,
    sgtin_epc,
    sgtin_spellings,
    to_digital_link,
    to_epc_urn,
)
from epcis.identifiers.charsets import CSET82, check_cset82, dl_escape, urn_escape
from epcis.identifiers.check_digit import check_digit, has_valid_check_digit, with_check_digit
from epcis.identifiers.dates import (
    Gs1Date,
    as_date,
    format_yymmdd,
    is_expired,
    parse_yymmdd,
    same_expiry,
)
from epcis.identifiers.digital_link import (
    CANONICAL_DOMAIN,
    ParsedDigitalLink,
    digital_link_from_pairs,
    parse_digital_link,
)
from epcis.identifiers.element_strings import (
    GROUP_SEPARATOR,
    element_string_from_pairs,
    element_string_to_urn,
    pairs_from_element_string,
    parse_element_strings,
    urn_to_element_string,
)
from epcis.identifiers.epc_uri import NoEpcFormError, pairs_from_urn, urn_from_pairs
from epcis.identifiers.gs1_key_pairs import KeyPairs
from epcis.identifiers.gs1_keys import (
    company_prefix_length,
    normalize_gtin,
    validate_gln,
    validate_sscc,
)
from epcis.identifiers.ndc import (
    Ndc,
    gtin_to_ndc,
    gtin_to_ndc10_digits,
    ndc_company_prefix,
    ndc_to_gtin,
    parse_ndc,
)
from epcis.identifiers.scan import ProductIdentifier, parse_scan

__all__ = [
    "CANONICAL_DOMAIN",
    "CSET82",
    "GROUP_SEPARATOR",
    "Gs1Date",
    "KeyPairs",
    "Ndc",
    "NoEpcFormError",
    "ParsedDigitalLink",
    "ProductIdentifier",
    "as_date",
    "canonical_class",
    "canonical_epc",
    "check_cset82",
    "check_digit",
    "company_prefix_length",
    "digital_link_from_pairs",
    "dl_escape",
    "element_string_from_pairs",
    "element_string_to_urn",
    "epc_match_key",
    "epc_pattern_matches",
    "format_yymmdd",
    "gs1_key_pairs",
    "gtin_to_ndc",
    "gtin_to_ndc10_digits",
    "has_valid_check_digit",
    "is_expired",
    "ndc_company_prefix",
    "ndc_to_gtin",
    "normalize_gtin",
    "pairs_from_element_string",
    "pairs_from_urn",
    "parse_digital_link",
    "parse_element_strings",
    "parse_ndc",
    "parse_scan",
    "parse_yymmdd",
    "same_expiry",
    "sgtin_epc",
    "sgtin_spellings",
    "to_digital_link",
    "to_epc_urn",
    "urn_escape",
    "urn_from_pairs",
    "urn_to_element_string",
    "validate_gln",
    "validate_sscc",
    "with_check_digit",
]
