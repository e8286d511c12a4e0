"""Writes DSCSA-shaped EPCIS 1.2 XML documents of any size, streaming, for the benchmarks.

The events follow the GS1 US serialized choreography: items are commissioned with lot and
expiry in the ILMD, then their case, the items are packed into the case, and each group of
cases ships with a PO and a despatch advice, owning party and location as source and
destination. The header carries an SBDH, master data and the gs1ushc transaction statement.

``python -m bench.generate N OUT`` writes N events to OUT.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

__all__ = ["CASES_PER_SHIPMENT", "ITEMS_PER_CASE", "generate", "write_document"]

ITEMS_PER_CASE = 10
CASES_PER_SHIPMENT = 10
_COMPANY = "0300011"
_ITEM_REF = "012345"
_CASE_REF = "112345"
_SELLER = f"urn:epc:id:sgln:{_COMPANY}.11111.0"
_SELLER_DC = f"urn:epc:id:sgln:{_COMPANY}.11112.0"
_BUYER = "urn:epc:id:sgln:0399999.99999.0"
_BUYER_DC = "urn:epc:id:sgln:0399999.34567.0"
_START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1" \
xmlns:sbdh="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader" \
xmlns:cbvmda="urn:epcglobal:cbv:mda" xmlns:gs1ushc="http://epcis.gs1us.org/hc/ns" \
schemaVersion="1.2" creationDate="2025-03-03T08:00:00Z">
<EPCISHeader>
<sbdh:StandardBusinessDocumentHeader>
<sbdh:HeaderVersion>1.0</sbdh:HeaderVersion>
<sbdh:Sender><sbdh:Identifier Authority="SGLN">{seller}</sbdh:Identifier></sbdh:Sender>
<sbdh:Receiver><sbdh:Identifier Authority="SGLN">{buyer}</sbdh:Identifier></sbdh:Receiver>
<sbdh:DocumentIdentification>
<sbdh:Standard>EPCglobal</sbdh:Standard>
<sbdh:TypeVersion>1.0</sbdh:TypeVersion>
<sbdh:InstanceIdentifier>bench-{events}</sbdh:InstanceIdentifier>
<sbdh:Type>Events</sbdh:Type>
<sbdh:CreationDateAndTime>2025-03-03T08:00:00Z</sbdh:CreationDateAndTime>
</sbdh:DocumentIdentification>
</sbdh:StandardBusinessDocumentHeader>
<extension>
<EPCISMasterData>
<VocabularyList>
<Vocabulary type="urn:epcglobal:epcis:vtype:EPCClass">
<VocabularyElementList>
{products}</VocabularyElementList>
</Vocabulary>
<Vocabulary type="urn:epcglobal:epcis:vtype:Location">
<VocabularyElementList>
{locations}</VocabularyElementList>
</Vocabulary>
</VocabularyList>
</EPCISMasterData>
</extension>
<gs1ushc:guidelineVersion>GS1 US DSCSA R1.3</gs1ushc:guidelineVersion>
<gs1ushc:dscsaTransactionStatement>
<gs1ushc:affirmTransactionStatement>true</gs1ushc:affirmTransactionStatement>
<gs1ushc:legalNotice>Seller has complied with each applicable subsection of FDCA Sec. \
581(27)(A)-(G).</gs1ushc:legalNotice>
</gs1ushc:dscsaTransactionStatement>
</EPCISHeader>
<EPCISBody>
<EventList>
"""
_TAIL = "</EventList>\n</EPCISBody>\n</epcis:EPCISDocument>\n"

_PRODUCT = """<VocabularyElement id="urn:epc:idpat:sgtin:{company}.{ref}.*">
<attribute id="urn:epcglobal:cbv:mda#additionalTradeItemIdentification">0300-0123-45</attribute>
<attribute id="urn:epcglobal:cbv:mda#additionalTradeItemIdentificationTypeCode">US_FDA_NDC\
</attribute>
<attribute id="urn:epcglobal:cbv:mda#regulatedProductName">Benchmarol</attribute>
<attribute id="urn:epcglobal:cbv:mda#manufacturerOfTradeItemPartyName">Bench Pharma LLC\
</attribute>
<attribute id="urn:epcglobal:cbv:mda#dosageFormType">TABLET</attribute>
<attribute id="urn:epcglobal:cbv:mda#strengthDescription">100mg</attribute>
<attribute id="urn:epcglobal:cbv:mda#netContentDescription">{content}</attribute>
</VocabularyElement>
"""
_LOCATION = """<VocabularyElement id="{id}">
<attribute id="urn:epcglobal:cbv:mda#name">{name}</attribute>
<attribute id="urn:epcglobal:cbv:mda#streetAddressOne">{street}</attribute>
<attribute id="urn:epcglobal:cbv:mda#city">{city}</attribute>
<attribute id="urn:epcglobal:cbv:mda#state">{state}</attribute>
<attribute id="urn:epcglobal:cbv:mda#postalCode">{postal}</attribute>
<attribute id="urn:epcglobal:cbv:mda#countryCode">US</attribute>
</VocabularyElement>
"""
_COMMISSIONING = """<ObjectEvent>
<eventTime>{time}</eventTime>
<eventTimeZoneOffset>-05:00</eventTimeZoneOffset>
<epcList>
{epcs}</epcList>
<action>ADD</action>
<bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
<disposition>urn:epcglobal:cbv:disp:active</disposition>
<readPoint><id>{seller}</id></readPoint>
<bizLocation><id>{seller}</id></bizLocation>
<extension>
<ilmd>
<cbvmda:lotNumber>{lot}</cbvmda:lotNumber>
<cbvmda:itemExpirationDate>{expiry}</cbvmda:itemExpirationDate>
</ilmd>
</extension>
</ObjectEvent>
"""
_PACKING = """<AggregationEvent>
<eventTime>{time}</eventTime>
<eventTimeZoneOffset>-05:00</eventTimeZoneOffset>
<parentID>{parent}</parentID>
<childEPCs>
{epcs}</childEPCs>
<action>ADD</action>
<bizStep>urn:epcglobal:cbv:bizstep:packing</bizStep>
<disposition>urn:epcglobal:cbv:disp:in_progress</disposition>
<readPoint><id>{seller}</id></readPoint>
<bizLocation><id>{seller}</id></bizLocation>
</AggregationEvent>
"""
_SHIPPING = """<ObjectEvent>
<eventTime>{time}</eventTime>
<eventTimeZoneOffset>-05:00</eventTimeZoneOffset>
<epcList>
{epcs}</epcList>
<action>OBSERVE</action>
<bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep>
<disposition>urn:epcglobal:cbv:disp:in_transit</disposition>
<readPoint><id>{seller_dc}</id></readPoint>
<bizTransactionList>
<bizTransaction type="urn:epcglobal:cbv:btt:po">urn:epcglobal:cbv:bt:0399999999991:PO{n}\
</bizTransaction>
<bizTransaction type="urn:epcglobal:cbv:btt:desadv">urn:epcglobal:cbv:bt:0300011111116:DA{n}\
</bizTransaction>
</bizTransactionList>
<extension>
<sourceList>
<source type="urn:epcglobal:cbv:sdt:owning_party">{seller}</source>
<source type="urn:epcglobal:cbv:sdt:location">{seller_dc}</source>
</sourceList>
<destinationList>
<destination type="urn:epcglobal:cbv:sdt:owning_party">{buyer}</destination>
<destination type="urn:epcglobal:cbv:sdt:location">{buyer_dc}</destination>
</destinationList>
</extension>
<gs1ushc:dropShipment>false</gs1ushc:dropShipment>
</ObjectEvent>
"""


def _header(events: int) -> str:
    products = "".join(
        _PRODUCT.format(company=_COMPANY, ref=ref, content=content)
        for ref, content in ((_ITEM_REF, "100 tablets"), (_CASE_REF, "10 x 100 tablets"))
    )
    locations = "".join(
        _LOCATION.format(id=loc, name=name, street=street, city=city, state=state, postal=postal)
        for loc, name, street, city, state, postal in (
            (_SELLER, "Bench Pharma", "1 Biopharm Ct", "Thousand Oaks", "CA", "91320"),
            (_SELLER_DC, "Bench Pharma DC", "2806 Agoura Rd", "Westlake Village", "CA", "91361"),
            (_BUYER, "Bench Distributor", "230 Park Ave S", "New York", "NY", "10003"),
            (_BUYER_DC, "Bench Distributor DC", "136 Main St", "Louisville", "KY", "40218"),
        )
    )
    return _HEAD.format(
        seller=_SELLER, buyer=_BUYER, events=events, products=products, locations=locations
    )


def _epcs(reference: str, serials: range) -> str:
    return "".join(f"<epc>urn:epc:id:sgtin:{_COMPANY}.{reference}.{s}</epc>\n" for s in serials)


def _events() -> Iterator[str]:
    """An endless DSCSA choreography: per case 3 events, per shipment one more."""
    clock = _START
    second = timedelta(seconds=1)
    case_serial = 0
    shipment = 0
    while True:
        shipped: list[int] = []
        for _ in range(CASES_PER_SHIPMENT):
            case_serial += 1
            lot = f"L{case_serial // 100:06d}"
            first = case_serial * ITEMS_PER_CASE
            items = range(first, first + ITEMS_PER_CASE)
            stamp = clock.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            common = {"time": stamp, "seller": _SELLER, "lot": lot, "expiry": "2027-03-31"}
            yield _COMMISSIONING.format(epcs=_epcs(_ITEM_REF, items), **common)
            case = range(case_serial, case_serial + 1)
            yield _COMMISSIONING.format(epcs=_epcs(_CASE_REF, case), **common)
            yield _PACKING.format(
                time=stamp,
                seller=_SELLER,
                parent=f"urn:epc:id:sgtin:{_COMPANY}.{_CASE_REF}.{case_serial}",
                epcs=_epcs(_ITEM_REF, items),
            )
            shipped.append(case_serial)
            clock += second
        shipment += 1
        yield _SHIPPING.format(
            time=clock.strftime("%Y-%m-%dT%H:%M:%S") + ".000Z",
            epcs=_epcs(_CASE_REF, range(shipped[0], shipped[-1] + 1)),
            n=shipment,
            seller=_SELLER,
            seller_dc=_SELLER_DC,
            buyer=_BUYER,
            buyer_dc=_BUYER_DC,
        )
        clock += second


def write_document(out: TextIO, events: int) -> None:
    """Write an EPCIS 1.2 document of exactly ``events`` events to ``out``."""
    out.write(_header(events))
    chunk: list[str] = []
    for count, event in enumerate(_events(), start=1):
        if count > events:
            break
        chunk.append(event)
        if len(chunk) == 1000:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))
    out.write(_TAIL)


def generate(path: Path, events: int) -> Path:
    """Write the document to ``path`` (reused if it already holds that many events)."""
    marker = path.with_suffix(path.suffix + ".done")
    if path.exists() and marker.exists() and marker.read_text() == str(events):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        write_document(out, events)
    marker.write_text(str(events))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=int)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    generate(args.out, args.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
