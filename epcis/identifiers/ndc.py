"""US National Drug Codes and their GTINs (GS1 US: ``03`` prefix + NDC-10 digits)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from epcis.errors import InvalidIdentifierError
from epcis.identifiers.check_digit import with_check_digit
from epcis.identifiers.gs1_keys import normalize_gtin

__all__ = [
    "Ndc",
    "gtin_to_ndc",
    "gtin_to_ndc10_digits",
    "ndc_company_prefix",
    "ndc_to_gtin",
    "parse_ndc",
]

_HYPHENATED = re.compile(r"^(\d{4,5})-(\d{3,4})-(\d{1,2})$")
_CONFIGURATIONS = {(4, 4, 2): "4-4-2", (5, 3, 2): "5-3-2", (5, 4, 1): "5-4-1"}


@dataclass(frozen=True, slots=True)
class Ndc:
    """An NDC-10 as its three segments; the hyphen positions are part of its identity."""

    labeler: str
    product: str
    package: str

    @property
    def configuration(self) -> str:
        """``4-4-2``, ``5-3-2`` or ``5-4-1``."""
        return _CONFIGURATIONS[(len(self.labeler), len(self.product), len(self.package))]

    @property
    def ndc10(self) -> str:
        """The hyphenated NDC-10."""
        return f"{self.labeler}-{self.product}-{self.package}"

    @property
    def digits(self) -> str:
        """The ten digits without hyphens, as they appear inside the GTIN."""
        return self.labeler + self.product + self.package

    @property
    def ndc11(self) -> str:
        """The 5-4-2 HIPAA billing form: the short segment padded with a zero."""
        return f"{self.labeler.zfill(5)}-{self.product.zfill(4)}-{self.package.zfill(2)}"


def parse_ndc(value: str) -> Ndc:
    """A hyphenated NDC-10 (4-4-2, 5-3-2 or 5-4-1); bare digits are ambiguous and refused."""
    match = _HYPHENATED.match(value.strip())
    if not match:
        raise InvalidIdentifierError(
            f"an NDC-10 is written 4-4-2, 5-3-2 or 5-4-1 with hyphens, not {value!r}"
        )
    ndc = Ndc(*match.groups())
    if (len(ndc.labeler), len(ndc.product), len(ndc.package)) not in _CONFIGURATIONS:
        raise InvalidIdentifierError(f"{value!r} is not a 4-4-2, 5-3-2 or 5-4-1 NDC")
    return ndc


def ndc_to_gtin(value: str, indicator: int = 0) -> str:
    """GTIN-14: indicator digit, ``03``, the ten NDC digits, check digit."""
    if not 0 <= indicator <= 8:  # 9 marks variable-measure items, which NDCs are not
        raise InvalidIdentifierError("a GTIN indicator digit is 0 to 8")
    return with_check_digit(f"{indicator}03{parse_ndc(value).digits}")


def gtin_to_ndc10_digits(gtin: str) -> str:
    """The ten NDC digits inside a US pharma GTIN; where the hyphens go needs master data."""
    gtin14 = normalize_gtin(gtin)
    if gtin14[1:3] != "03":
        raise InvalidIdentifierError(f"GTIN {gtin14} does not carry an NDC (no 03 prefix)")
    return gtin14[3:13]


def ndc_company_prefix(value: str) -> str:
    """The GS1 Company Prefix of an NDC labeler: ``03`` + labeler code (6 or 7 digits)."""
    return "03" + parse_ndc(value).labeler


def gtin_to_ndc(gtin: str, configuration: str) -> Ndc:
    """The NDC inside a US pharma GTIN, hyphenated as ``configuration`` (from master data)."""
    digits = gtin_to_ndc10_digits(gtin)
    sizes = next((k for k, v in _CONFIGURATIONS.items() if v == configuration), None)
    if sizes is None:
        raise InvalidIdentifierError(f"unknown NDC configuration {configuration!r}")
    labeler, product = sizes[0], sizes[0] + sizes[1]
    return Ndc(digits[:labeler], digits[labeler:product], digits[product:])
