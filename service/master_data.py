"""Product and party master data kept from captured document headers (DSCSA TI names, addresses)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from epcis.model import EPCISHeader, VocabularyElement
from service.serial_state import gtin_of

__all__ = [
    "MasterData",
    "PartyRecord",
    "ProductRecord",
    "extract_master_data",
    "gtin_of_class",
]

_MDA = "urn:epcglobal:cbv:mda#"
_EPC_CLASS = "urn:epcglobal:epcis:vtype:epcclass"
_LOCATION = "urn:epcglobal:epcis:vtype:location"
_CLASS_PATTERN = re.compile(r"^urn:epc:(?:idpat:sgtin|class:lgtin):(\d+)\.(\d+)\.")


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """DSCSA TI product data for one GTIN (EPCClass vocabulary)."""

    gtin: str
    class_id: str
    name: str | None = None
    strength: str | None = None
    dosage_form: str | None = None
    ndc: str | None = None
    ndc_type: str | None = None
    manufacturer: str | None = None
    container_size: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PartyRecord:
    """DSCSA TI business name and address of a party or location (Location vocabulary)."""

    party_id: str
    name: str | None = None
    street_address_one: str | None = None
    street_address_two: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def address(self) -> str:
        city_line = " ".join(p for p in (self.city, self.state, self.postal_code) if p)
        parts = (self.street_address_one, self.street_address_two, city_line, self.country_code)
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class MasterData:
    products: tuple[ProductRecord, ...] = ()
    parties: tuple[PartyRecord, ...] = ()


def gtin_of_class(class_id: str) -> str | None:
    """The GTIN-14 an EPCClass id (SGTIN pattern, LGTIN, or Digital Link) stands for."""
    match = _CLASS_PATTERN.match(class_id)
    if match:
        return gtin_of(f"urn:epc:id:sgtin:{match.group(1)}.{match.group(2)}.0")
    return gtin_of(class_id)


def extract_master_data(header: EPCISHeader | None) -> MasterData:
    """Product and party records from a header's EPCClass and Location vocabularies."""
    if header is None:
        return MasterData()
    products: list[ProductRecord] = []
    parties: list[PartyRecord] = []
    for vocabulary in header.master_data:
        # Some senders spell the vocabulary type in lower case.
        kind = vocabulary.type.strip().lower()
        if kind == _EPC_CLASS:
            products.extend(_products(vocabulary.vocabulary_element_list))
        elif kind == _LOCATION:
            parties.extend(_party(element) for element in vocabulary.vocabulary_element_list)
    return MasterData(tuple(products), tuple(parties))


def _attr(element: VocabularyElement, name: str) -> str | None:
    value = element.attribute(_MDA + name)
    return value.strip() if value else None


def _products(elements: Iterable[VocabularyElement]) -> Iterable[ProductRecord]:
    for element in elements:
        gtin = gtin_of_class(element.id)
        if gtin is None:
            continue
        yield ProductRecord(
            gtin=gtin,
            class_id=element.id,
            name=_attr(element, "regulatedProductName"),
            strength=_attr(element, "strengthDescription"),
            dosage_form=_attr(element, "dosageFormType"),
            ndc=_attr(element, "additionalTradeItemIdentification"),
            ndc_type=_attr(element, "additionalTradeItemIdentificationTypeCode"),
            manufacturer=_attr(element, "manufacturerOfTradeItemPartyName"),
            container_size=_attr(element, "netContentDescription"),
        )


def _party(element: VocabularyElement) -> PartyRecord:
    return PartyRecord(
        party_id=element.id,
        name=_attr(element, "name"),
        street_address_one=_attr(element, "streetAddressOne"),
        street_address_two=_attr(element, "streetAddressTwo"),
        city=_attr(element, "city"),
        state=_attr(element, "state"),
        postal_code=_attr(element, "postalCode"),
        country_code=_attr(element, "countryCode"),
    )
