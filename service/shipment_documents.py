"""The DSCSA EPCIS 1.2 document a buyer must receive for one of our shipping events.

What goes in (GS1 US guideline, see ``dscsa.md`` 3.1-3.3): an SBDH from the seller to the
buyer (the shipping event's source and destination owning parties), Location master data for
every party and location the events name and EPCClass master data for every GTIN shipped, the
affirmed ``gs1ushc`` transaction statement, the commissioning events of the shipped serials
(the shipped EPCs and everything inside them when the shipment left, from the containment the
serial-state projection keeps), the packing events that built that hierarchy, and the shipping
event itself.

Reduced copies: a commissioning or packing event that also names serials that were not shipped
is written as a copy that names only the shipped ones (other customers' serials are none of
this buyer's business). The copy is a different event, so its CBV event hash differs from the
original's; it carries that new hash as its eventID, never the original's eventID, so no one
mistakes it for the original. Events naming only shipped serials are written unchanged and keep
their hash and eventID. :attr:`ShipmentDocument.hashes` maps each original hash to the hash the
buyer will compute.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from epcis.errors import EPCISError, Problem
from epcis.event_hash import event_hash
from epcis.jsonld_reader import event_from_jsonld
from epcis.model import (
    AggregationEvent,
    DocumentFormat,
    DocumentHead,
    DocumentIdentification,
    DSCSATransactionStatement,
    EPCISDocument,
    EPCISHeader,
    Event,
    GS1USHealthcareHeader,
    ObjectEvent,
    Partner,
    StandardBusinessDocumentHeader,
    Vocabulary,
    VocabularyAttribute,
    VocabularyElement,
)
from epcis.validation import validate_xml
from epcis.writing import write_document
from service.containment import EventFacts, Interval
from service.master_data import PartyRecord, ProductRecord
from service.serial_state import gtin_of
from service.store import EventStore, Visibility
from service.traceability_store import TraceabilityStore

__all__ = [
    "GUIDELINE_VERSION",
    "LEGAL_NOTICE",
    "IncompleteShipmentError",
    "NoSuchShipmentError",
    "NotAShipmentError",
    "ShipmentDocument",
    "build_shipment_document",
    "shipment_document_bytes",
]

GUIDELINE_VERSION = "GS1 US DSCSA R1.3"
# The wording GS1 US examples use; DSCSA mandates the statement, not this sentence.
LEGAL_NOTICE = "Seller has complied with each applicable subsection of FDCA Sec. 581(27)(A)-(G)."
_MDA = "urn:epcglobal:cbv:mda"
_EPC_CLASS = "urn:epcglobal:epcis:vtype:EPCClass"
_LOCATION = "urn:epcglobal:epcis:vtype:Location"
_PRODUCT_ATTRIBUTES = (
    ("ndc", "additionalTradeItemIdentification"),
    ("ndc_type", "additionalTradeItemIdentificationTypeCode"),
    ("name", "regulatedProductName"),
    ("manufacturer", "manufacturerOfTradeItemPartyName"),
    ("dosage_form", "dosageFormType"),
    ("strength", "strengthDescription"),
    ("container_size", "netContentDescription"),
)
_PARTY_ATTRIBUTES = (
    ("name", "name"),
    ("street_address_one", "streetAddressOne"),
    ("street_address_two", "streetAddressTwo"),
    ("city", "city"),
    ("state", "state"),
    ("postal_code", "postalCode"),
    ("country_code", "countryCode"),
)
_REQUIRED_PARTY_TYPES = ("owning_party", "location")
_SGTIN = re.compile(r"^urn:epc:id:sgtin:|/21/")


class NoSuchShipmentError(EPCISError):
    """No stored event has this eventID or hash (404)."""

    problem_type = "epcisException:NoSuchResourceException"
    status = 404


class NotAShipmentError(EPCISError):
    """The event is not a shipping event naming identifiers (400)."""

    problem_type = "epcisException:ValidationException"
    status = 400


class IncompleteShipmentError(EPCISError):
    """We lack what the buyer must receive: commissioning events or master data (409)."""

    problem_type = "epcisException:ImplementationException"
    status = 409


@dataclass(frozen=True, slots=True)
class ShipmentDocument:
    """The document, and how it relates to what we store."""

    document: EPCISDocument
    shipment_hash: str
    # Every shipped identifier: the shipping event's EPCs and everything inside them.
    serials: tuple[str, ...]
    # Original event hash -> the hash of the event as written (differs for reduced copies).
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def reduced(self) -> tuple[str, ...]:
        """Original hashes of the events written as reduced copies."""
        return tuple(original for original, written in self.hashes.items() if original != written)


async def build_shipment_document(
    events: EventStore,
    traceability: TraceabilityStore,
    event_id: str,
    *,
    instance_identifier: str | None = None,
    created_at: datetime | None = None,
    legal_notice: str | None = LEGAL_NOTICE,
) -> ShipmentDocument:
    """The outbound document for the shipping event ``event_id`` (its eventID or hash)."""
    record = await events.get_event(event_id, Visibility.everything())
    if record is None:
        raise NoSuchShipmentError(f"no event {event_id}")
    shipping = _stored_event(record.body)
    if shipping.biz_step != "shipping" or not shipping.epcs():
        raise NotAShipmentError(f"event {event_id} is not a shipping event naming identifiers")
    ship_facts = EventFacts.from_event(shipping, record.hash_id)
    packed = await _hierarchy(traceability, shipping.epcs(), ship_facts)
    serials = (*shipping.epcs(), *(i.child for i in packed))
    shipped = set(serials)
    commissioning = await _commissioning_events(events, traceability, serials)
    packing = await _load(events, {i.start[1] for i in packed})
    written: dict[str, Event] = {}
    hashes: dict[str, str] = {}
    history = sorted(
        (*commissioning.items(), *packing.items()), key=lambda item: (item[1].event_time, item[0])
    )
    for original, event in history:
        written[original], hashes[original] = _reduced(original, event, shipped)
    written[record.hash_id], hashes[record.hash_id] = _outbound(shipping), record.hash_id
    now = created_at or datetime.now(UTC)
    header = await _header(traceability, list(written.values()), serials, legal_notice)
    sbdh = _sbdh(shipping, instance_identifier or uuid.uuid4().hex, now)
    head = DocumentHead(
        format=DocumentFormat.XML_1_2,
        schema_version="1.2",
        creation_date=now,
        header=header.model_copy(update={"standard_business_document_header": sbdh}),
        namespaces={},
    )
    document = EPCISDocument(head=head, events=tuple(written.values()))
    return ShipmentDocument(document, record.hash_id, serials, hashes)


def shipment_document_bytes(shipment: ShipmentDocument) -> bytes:
    """The document as EPCIS 1.2 XML, checked against our schema before it leaves."""
    buffer = io.BytesIO()
    write_document(shipment.document.head, shipment.document.events, buffer, DocumentFormat.XML_1_2)
    data = buffer.getvalue()
    problems = validate_xml(data, source_name="shipment document")
    if problems:
        raise EPCISError("the shipment document we built does not validate", tuple(problems))
    return data


def _stored_event(body: bytes) -> Event:
    return event_from_jsonld(json.loads(body), {})


def _outbound(event: Event) -> Event:
    # recordTime is the receiving repository's to set.
    return event.model_copy(update={"record_time": None})


def _reduced(original: str, event: Event, shipped: set[str]) -> tuple[Event, str]:
    """The event as written, and its hash: unchanged, or a copy naming only shipped EPCs."""
    event = _outbound(event)
    if isinstance(event, ObjectEvent):
        kept = tuple(epc for epc in event.epc_list if epc in shipped)
        if kept == event.epc_list:
            return event, original
        # Class-level quantities are not shipped serials either.
        update: dict[str, object] = {"epc_list": kept, "quantity_list": ()}
    elif isinstance(event, AggregationEvent):
        kept = tuple(epc for epc in event.child_epcs if epc in shipped)
        if kept == event.child_epcs:
            return event, original
        update = {"child_epcs": kept, "child_quantity_list": ()}
    else:
        return event, original
    copy = event.model_copy(update={**update, "event_id": None})
    new_hash = event_hash(copy)
    return copy.model_copy(update={"event_id": new_hash}), new_hash


async def _hierarchy(
    store: TraceabilityStore, top: Sequence[str], shipment: EventFacts
) -> list[Interval]:
    """The containment intervals in force when the shipment left, level by level down."""
    found: list[Interval] = []
    frontier, seen = set(top), set(top)
    while frontier:
        children = await store.children_ever(frontier) - seen
        intervals = await store.intervals_for_children(children)
        level = [
            interval
            for child in sorted(children)
            for interval in intervals.get(child, ())
            if interval.parent in frontier and interval.covers(shipment.key)
        ]
        found.extend(level)
        frontier = {interval.child for interval in level} - seen
        seen |= frontier
    return found


async def _load(events: EventStore, hashes: Collection[str]) -> dict[str, Event]:
    loaded: dict[str, Event] = {}
    for hash_id in sorted(hashes):
        record = await events.get_event(hash_id, Visibility.everything())
        if record is None:
            raise IncompleteShipmentError(f"event {hash_id} is not in the event store")
        loaded[hash_id] = _stored_event(record.body)
    return loaded


async def _commissioning_events(
    events: EventStore, store: TraceabilityStore, serials: Sequence[str]
) -> dict[str, Event]:
    states = await store.get_states(serials)
    missing = [s for s in serials if s not in states or not states[s].commissioning_event]
    if missing:
        raise IncompleteShipmentError(
            f"no commissioning event for {len(missing)} shipped identifier(s)",
            tuple(Problem(f"{epc} was never commissioned here") for epc in missing),
        )
    return await _load(events, {states[s].commissioning_event or "" for s in serials})


def _named_parties(events: Sequence[Event]) -> tuple[set[str], set[str]]:
    """(parties the buyer's TI needs, every other location the events name)."""
    required: set[str] = set()
    other: set[str] = set()
    for event in events:
        for entry in (*event.source_list, *event.destination_list):
            (required if entry.type in _REQUIRED_PARTY_TYPES else other).add(entry.value)
        other.update(v for v in (event.read_point, event.biz_location) if v)
    return required, other - required


async def _header(
    store: TraceabilityStore,
    events: Sequence[Event],
    serials: Sequence[str],
    legal_notice: str | None,
) -> EPCISHeader:
    gtins = sorted({g for epc in serials if _SGTIN.search(epc) and (g := gtin_of(epc))})
    required, other = _named_parties(events)
    products = await store.get_products(gtins)
    parties = await store.get_parties(required | other)
    problems = [Problem(f"no product master data for GTIN {g}") for g in gtins if g not in products]
    problems += [Problem(f"no name and address for {p}") for p in sorted(required - set(parties))]
    if problems:
        raise IncompleteShipmentError(
            "master data the buyer must receive is missing", tuple(problems)
        )
    vocabularies = (
        Vocabulary(
            type=_EPC_CLASS,
            vocabulary_element_list=tuple(_product(products[g]) for g in gtins),
        ),
        Vocabulary(
            type=_LOCATION,
            vocabulary_element_list=tuple(_party(parties[p]) for p in sorted(parties)),
        ),
    )
    statement = DSCSATransactionStatement(
        affirm_transaction_statement=True, legal_notice=legal_notice
    )
    return EPCISHeader(
        master_data=tuple(v for v in vocabularies if v.vocabulary_element_list),
        gs1ushc=GS1USHealthcareHeader(
            guideline_version=GUIDELINE_VERSION, dscsa_transaction_statement=statement
        ),
    )


def _attributes(
    record: ProductRecord | PartyRecord, names: Sequence[tuple[str, str]]
) -> tuple[VocabularyAttribute, ...]:
    return tuple(
        VocabularyAttribute(id=f"{_MDA}#{attribute}", value=value)
        for name, attribute in names
        if (value := getattr(record, name))
    )


def _product(record: ProductRecord) -> VocabularyElement:
    return VocabularyElement(
        id=record.class_id, attributes=_attributes(record, _PRODUCT_ATTRIBUTES)
    )


def _party(record: PartyRecord) -> VocabularyElement:
    return VocabularyElement(id=record.party_id, attributes=_attributes(record, _PARTY_ATTRIBUTES))


def _sbdh(
    shipping: Event, instance_identifier: str, now: datetime
) -> StandardBusinessDocumentHeader:
    seller = shipping.source("owning_party") or shipping.source("location")
    buyer = shipping.destination("owning_party") or shipping.destination("location")
    if seller is None or buyer is None:
        raise IncompleteShipmentError(
            "the shipping event names no seller or no buyer (owning_party source/destination)"
        )
    return StandardBusinessDocumentHeader(
        sender=(Partner(identifier=seller, authority="GS1"),),
        receiver=(Partner(identifier=buyer, authority="GS1"),),
        document_identification=DocumentIdentification(
            instance_identifier=instance_identifier, creation_date_and_time=now
        ),
    )
