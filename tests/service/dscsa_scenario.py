"""A DSCSA supply chain built from model events: manufacturer, wholesaler, pharmacy.

The manufacturer commissions 4 items and 2 cases (lot L1, expiry 2027-06-30) and one SSCC
pallet, packs 2 items in each case and both cases on the pallet, and ships the pallet to the
wholesaler (PO-1 / DESADV-1). The wholesaler receives it, unpacks the pallet and case 1 and
ships item 1 on to the pharmacy (PO-2 / DESADV-2), which receives and dispenses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from epcis.model import (
    Action,
    AggregationEvent,
    BizTransaction,
    DSCSATransactionStatement,
    EPCISHeader,
    EventBase,
    GS1USHealthcareHeader,
    ObjectEvent,
    SourceDestination,
    Vocabulary,
    VocabularyAttribute,
    VocabularyElement,
    XmlElement,
)
from service.containment import EventFacts

__all__ = [
    "CASES",
    "ITEMS",
    "ITEM_GTIN",
    "MANUFACTURER",
    "PALLET",
    "PHARMACY",
    "WHOLESALER",
    "facts",
    "header",
    "scenario_events",
]

MDA = "urn:epcglobal:cbv:mda"
MANUFACTURER = "urn:epc:id:sgln:030001.111111.0"
MANUFACTURER_DC = "urn:epc:id:sgln:030001.111121.0"
WHOLESALER = "urn:epc:id:sgln:039999.999999.0"
WHOLESALER_DC = "urn:epc:id:sgln:039999.345678.0"
PHARMACY = "urn:epc:id:sgln:038888.888888.0"
ITEMS = tuple(f"urn:epc:id:sgtin:030001.0012345.{n}" for n in (11, 12, 13, 14))
CASES = ("urn:epc:id:sgtin:030001.1012345.110", "urn:epc:id:sgtin:030001.1012345.111")
PALLET = "urn:epc:id:sscc:030001.41234567890"
ITEM_GTIN = "00300010123455"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _ilmd(lot: str, expiry: str) -> tuple[XmlElement, ...]:
    return (
        XmlElement(namespace=MDA, name="lotNumber", text=lot),
        XmlElement(namespace=MDA, name="itemExpirationDate", text=expiry),
    )


def commission(
    minutes: int, epcs: tuple[str, ...], lot: str | None = "L1", expiry: str = "2027-06-30"
) -> ObjectEvent:
    return ObjectEvent(
        event_time=_at(minutes),
        event_time_zone_offset="+00:00",
        epc_list=epcs,
        action=Action.ADD,
        biz_step="commissioning",
        disposition="active",
        read_point=MANUFACTURER,
        biz_location=MANUFACTURER,
        ilmd=_ilmd(lot, expiry) if lot else None,
    )


def aggregate(
    minutes: int, parent: str, children: tuple[str, ...], action: Action = Action.ADD
) -> AggregationEvent:
    return AggregationEvent(
        event_time=_at(minutes),
        event_time_zone_offset="+00:00",
        parent_id=parent,
        child_epcs=children,
        action=action,
        biz_step="packing" if action is Action.ADD else "unpacking",
        disposition="in_progress",
    )


def _trade(
    minutes: int,
    epcs: tuple[str, ...],
    step: str,
    seller: tuple[str, str],
    buyer: tuple[str, str],
    po: str,
    desadv: str,
) -> ObjectEvent:
    return ObjectEvent(
        event_time=_at(minutes),
        event_time_zone_offset="+00:00",
        epc_list=epcs,
        action=Action.OBSERVE,
        biz_step=step,
        disposition="in_transit" if step == "shipping" else "in_progress",
        read_point=seller[1] if step == "shipping" else buyer[1],
        biz_location=None if step == "shipping" else buyer[1],
        biz_transaction_list=(
            BizTransaction(type="po", value=f"urn:epcglobal:cbv:bt:0399999999991:{po}"),
            BizTransaction(type="desadv", value=f"urn:epcglobal:cbv:bt:0300011111215:{desadv}"),
        ),
        source_list=(
            SourceDestination(type="owning_party", value=seller[0]),
            SourceDestination(type="location", value=seller[1]),
        ),
        destination_list=(
            SourceDestination(type="owning_party", value=buyer[0]),
            SourceDestination(type="location", value=buyer[1]),
        ),
    )


def ship(minutes: int, epcs: tuple[str, ...], leg: int) -> ObjectEvent:
    return _trade(minutes, epcs, "shipping", *_LEGS[leg])


def receive(minutes: int, epcs: tuple[str, ...], leg: int) -> ObjectEvent:
    return _trade(minutes, epcs, "receiving", *_LEGS[leg])


_LEGS = {
    1: ((MANUFACTURER, MANUFACTURER_DC), (WHOLESALER, WHOLESALER_DC), "PO-1", "DESADV-1"),
    2: ((WHOLESALER, WHOLESALER_DC), (PHARMACY, PHARMACY), "PO-2", "DESADV-2"),
}


def dispense(minutes: int, epc: str) -> ObjectEvent:
    return ObjectEvent(
        event_time=_at(minutes),
        event_time_zone_offset="+00:00",
        epc_list=(epc,),
        action=Action.OBSERVE,
        biz_step="dispensing",
        disposition="dispensed",
        read_point=PHARMACY,
        biz_location=PHARMACY,
    )


def scenario_events() -> list[EventBase]:
    return [
        commission(0, ITEMS),
        commission(1, CASES),
        commission(2, (PALLET,), lot=None),
        aggregate(3, CASES[0], ITEMS[:2]),
        aggregate(4, CASES[1], ITEMS[2:]),
        aggregate(5, PALLET, CASES),
        ship(10, (PALLET,), 1),
        receive(60, (PALLET,), 1),
        aggregate(61, PALLET, (), Action.DELETE),
        aggregate(62, CASES[0], (), Action.DELETE),
        ship(70, (ITEMS[0],), 2),
        receive(120, (ITEMS[0],), 2),
        dispense(130, ITEMS[0]),
    ]


def facts(events: Sequence[EventBase]) -> list[EventFacts]:
    """Facts with a stable stand-in hash per event (the CBV hash is not needed here)."""
    return [
        EventFacts.from_event(e, f"h{index:03d}-{e.event_time:%H%M}", "doc-1")
        for index, e in enumerate(events)
    ]


def _element(element_id: str, **attributes: str) -> VocabularyElement:
    return VocabularyElement(
        id=element_id,
        attributes=tuple(
            VocabularyAttribute(id=f"{MDA}#{name}", value=value)
            for name, value in attributes.items()
        ),
    )


def header(with_statement: bool = True, with_products: bool = True) -> EPCISHeader:
    products = (
        _element(
            "urn:epc:idpat:sgtin:030001.0012345.*",
            regulatedProductName="Epcistra",
            strengthDescription="100mg",
            dosageFormType="PILL",
            additionalTradeItemIdentification="0001-0123-45",
            additionalTradeItemIdentificationTypeCode="US_FDA_NDC",
        ),
        _element(
            "urn:epc:idpat:sgtin:030001.1012345.*",
            regulatedProductName="Epcistra case",
            additionalTradeItemIdentification="0001-0123-45",
        ),
    )
    parties = tuple(
        _element(party, name=name, streetAddressOne=street, city=city, state="NY", countryCode="US")
        for party, name, street, city in (
            (MANUFACTURER, "GS1 Pharma", "1 Biopharm Ct", "Albany"),
            (MANUFACTURER_DC, "GS1 Pharma DC", "2 Agoura Rd", "Albany"),
            (WHOLESALER, "GS1 Drug Distributor", "230 Park Ave S", "New York"),
            (WHOLESALER_DC, "GS1 Distributor DC", "1 Dock St", "Newark"),
            (PHARMACY, "Corner Pharmacy", "5 Main St", "Brooklyn"),
        )
    )
    vocabularies = [
        Vocabulary(type="urn:epcglobal:epcis:vtype:Location", vocabulary_element_list=parties)
    ]
    if with_products:
        vocabularies.insert(
            0,
            Vocabulary(type="urn:epcglobal:epcis:vtype:EPCClass", vocabulary_element_list=products),
        )
    statement = DSCSATransactionStatement(affirm_transaction_statement=True)
    return EPCISHeader(
        master_data=tuple(vocabularies),
        gs1ushc=GS1USHealthcareHeader(dscsa_transaction_statement=statement)
        if with_statement
        else None,
    )
