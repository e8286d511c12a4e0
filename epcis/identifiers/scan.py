"""Product identifiers as a 2D barcode scanner or a Digital Link delivers them (DSCSA: GTIN,
serial, lot, expiry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from epcis.errors import InvalidIdentifierError
from epcis.identifiers.charsets import check_cset82
from epcis.identifiers.dates import Gs1Date, parse_yymmdd
from epcis.identifiers.digital_link import digital_link_from_pairs, parse_digital_link
from epcis.identifiers.element_strings import parse_element_strings
from epcis.identifiers.epc_uri import urn_from_pairs
from epcis.identifiers.gs1_key_pairs import KeyPairs, key_company_prefix_length
from epcis.identifiers.gs1_keys import normalize_gtin

__all__ = ["ProductIdentifier", "parse_scan"]


@dataclass(frozen=True, slots=True)
class ProductIdentifier:
    """The DSCSA product identifier of one package: GTIN (14 digits), serial, lot, expiry."""

    gtin: str
    serial: str | None = None
    lot: str | None = None
    expiry: Gs1Date | None = None

    @property
    def _pairs(self) -> KeyPairs:
        return (
            (("01", self.gtin),)
            if self.serial is None
            else (("01", self.gtin), ("21", self.serial))
        )

    @property
    def gcp_length(self) -> int | None:
        """The GS1 Company Prefix length from GS1's data (bundled with biip); None if unknown."""
        return key_company_prefix_length(self._pairs)

    def sgtin_urn_with(self, gcp_length: int) -> str:
        """The SGTIN URN with a company prefix length from master data (e.g. an NDC labeler)."""
        if self.serial is None:
            raise InvalidIdentifierError(f"GTIN {self.gtin} scanned without serial: no SGTIN")
        return urn_from_pairs(self._pairs, gcp_length)

    @property
    def sgtin_urn(self) -> str:
        """The SGTIN URN. Without a known prefix length there is none: InvalidIdentifierError.

        The fallback that always works is :attr:`epc` (the Digital Link then), or
        :meth:`sgtin_urn_with` with a length from partner master data.
        """
        length = self.gcp_length
        if length is None:
            raise InvalidIdentifierError(f"GS1 company prefix length unknown for {self.gtin}")
        return self.sgtin_urn_with(length)

    @property
    def epc(self) -> str:
        """The model's form: the SGTIN URN if the prefix length is known, else the Digital Link."""
        return self.sgtin_urn if self.gcp_length is not None else self.digital_link

    @property
    def digital_link(self) -> str:
        """Canonical Digital Link of the instance (``/01/{gtin}/21/{serial}``), or the GTIN's."""
        return digital_link_from_pairs(self._pairs)

    def __str__(self) -> str:
        return self.epc


def parse_scan(data: str, *, today: date | None = None) -> ProductIdentifier:
    """A product identifier from barcode data or a Digital Link.

    Accepts GS1 element strings (FNC1/GS separated, with or without ``]d2``/``]C1``/``]Q3``),
    the parenthesised HRI form, and Digital Link URIs incl. the VRS alpha form
    ``/gtin/../lot/../ser/..?exp=YYMMDD``. ``today`` anchors the expiry's century.
    """
    text = data.strip()
    if not text:
        raise InvalidIdentifierError("empty scan")
    if text.startswith(("http://", "https://")):
        values = _digital_link_values(text)
    else:
        values = parse_element_strings(text)
    if "01" not in values:
        raise InvalidIdentifierError(f"no GTIN (AI 01) in the scan: {data!r}")
    expiry = values.get("17")
    return ProductIdentifier(
        gtin=normalize_gtin(values["01"]),
        serial=check_cset82(values["21"], "serial number", 20) if "21" in values else None,
        lot=check_cset82(values["10"], "lot number", 20) if "10" in values else None,
        expiry=parse_yymmdd(expiry, today=today) if expiry is not None else None,
    )


def _digital_link_values(uri: str) -> dict[str, str]:
    parsed = parse_digital_link(uri)
    if parsed is None:
        raise InvalidIdentifierError(f"not a GS1 Digital Link: {uri!r}")
    values = dict(parsed.pairs)
    for ai, value in parsed.attributes:
        if ai in ("10", "17"):
            values.setdefault(ai, value)
    return values
