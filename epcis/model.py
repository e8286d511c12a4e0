"""The one in-memory model of an EPCIS document, shared by every reader and writer.

Values are held in one canonical form whatever the wire format was:

* CBV vocabulary values (bizStep, disposition, business transaction, source/destination and
  error reason types) are bare words (``shipping``) when they belong to the CBV, and the full
  URI otherwise (see :mod:`epcis.vocabulary`);
* EPC identifiers are EPC URNs (``urn:epc:id:sgtin:...``) where the GS1 Company Prefix length
  is known, otherwise canonical GS1 Digital Link URIs (see :mod:`epcis.identifiers`);
* times are timezone-aware :class:`datetime` values;
* anything outside the standard (ILMD fields, user extensions, unknown header elements) is an
  :class:`XmlElement` tree, which keeps namespaces, attributes, nesting and order.

Field names are snake_case; each carries the EPCIS 2.0 JSON name as its alias, so
``Model.model_validate(json_dict)`` and ``model.model_dump(by_alias=True)`` speak JSON-LD names.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "EPCIS_EVENT_TYPES",
    "Action",
    "AggregationEvent",
    "AssociationEvent",
    "BizTransaction",
    "ContactInformation",
    "DSCSATransactionStatement",
    "DocumentFormat",
    "DocumentHead",
    "DocumentIdentification",
    "EPCISDocument",
    "EPCISHeader",
    "ErrorDeclaration",
    "Event",
    "EventBase",
    "GS1USHealthcareHeader",
    "ObjectEvent",
    "Partner",
    "PersistentDisposition",
    "QuantityElement",
    "SensorElement",
    "SensorMetadata",
    "SensorReport",
    "SourceDestination",
    "StandardBusinessDocumentHeader",
    "TransactionEvent",
    "TransformationEvent",
    "Vocabulary",
    "VocabularyAttribute",
    "VocabularyElement",
    "XmlElement",
]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
    )


class DocumentFormat(StrEnum):
    """The wire formats we read and write."""

    XML_1_2 = "1.2-xml"
    XML_2_0 = "2.0-xml"
    JSONLD_2_0 = "2.0-jsonld"


class Action(StrEnum):
    ADD = "ADD"
    OBSERVE = "OBSERVE"
    DELETE = "DELETE"


class XmlElement(_Model):
    """An element outside the EPCIS schema (ILMD field, user extension), kept losslessly.

    ``attributes`` keys are Clark names (``{namespace}local`` or ``local``). An element has
    either ``text`` or ``children`` (mixed content keeps the text before the first child).
    """

    namespace: str | None = None
    name: str
    attributes: dict[str, str] = Field(default_factory=dict)
    text: str | None = None
    children: tuple[XmlElement, ...] = ()

    @property
    def clark_name(self) -> str:
        return f"{{{self.namespace}}}{self.name}" if self.namespace else self.name

    def find(self, namespace: str | None, name: str) -> XmlElement | None:
        """The first child with this qualified name."""
        for child in self.children:
            if child.name == name and child.namespace == namespace:
                return child
        return None


# --- Standard Business Document Header -------------------------------------------------


class ContactInformation(_Model):
    contact: str | None = None
    email_address: str | None = None
    fax_number: str | None = None
    telephone_number: str | None = None
    contact_type_identifier: str | None = None


class Partner(_Model):
    """An SBDH Sender or Receiver."""

    identifier: str
    authority: str | None = None
    contact_information: tuple[ContactInformation, ...] = ()


class DocumentIdentification(_Model):
    standard: str = "EPCglobal"
    type_version: str = "1.0"
    instance_identifier: str
    type: str = "Events"
    multiple_type: bool | None = None
    creation_date_and_time: datetime


class StandardBusinessDocumentHeader(_Model):
    header_version: str = "1.0"
    sender: tuple[Partner, ...] = ()
    receiver: tuple[Partner, ...] = ()
    document_identification: DocumentIdentification
    # Manifest and BusinessScope are rare in EPCIS exchange; kept as raw SBDH elements.
    manifest: XmlElement | None = None
    business_scope: XmlElement | None = None


# --- Master data -----------------------------------------------------------------------


class VocabularyAttribute(_Model):
    """A master-data attribute; a simple value is ``value``, a structured one ``children``."""

    id: str
    value: str | None = None
    children: tuple[XmlElement, ...] = ()


class VocabularyElement(_Model):
    id: str
    attributes: tuple[VocabularyAttribute, ...] = ()
    children: tuple[str, ...] = ()

    def attribute(self, attribute_id: str) -> str | None:
        for attribute in self.attributes:
            if attribute.id == attribute_id:
                return attribute.value
        return None


class Vocabulary(_Model):
    type: str
    vocabulary_element_list: tuple[VocabularyElement, ...] = ()


# --- GS1 US healthcare header extensions -----------------------------------------------


class DSCSATransactionStatement(_Model):
    """``gs1ushc:dscsaTransactionStatement``: the DSCSA transaction statement (TS)."""

    affirm_transaction_statement: bool
    legal_notice: str | None = None
    # Any further gs1ushc statement children (release-specific) are kept as they came.
    other: tuple[XmlElement, ...] = ()


class GS1USHealthcareHeader(_Model):
    guideline_version: str | None = None
    dscsa_transaction_statement: DSCSATransactionStatement | None = None


class EPCISHeader(_Model):
    standard_business_document_header: StandardBusinessDocumentHeader | None = None
    master_data: tuple[Vocabulary, ...] = ()
    gs1ushc: GS1USHealthcareHeader | None = None
    extensions: tuple[XmlElement, ...] = ()


# --- Event parts -----------------------------------------------------------------------


class QuantityElement(_Model):
    epc_class: str
    quantity: Decimal | None = None
    uom: str | None = None


class BizTransaction(_Model):
    """A business transaction reference; ``type`` is a bare CBV word or a URI."""

    value: str = Field(alias="bizTransaction")
    type: str | None = None


class SourceDestination(_Model):
    """A source or destination entry; ``type`` is a bare CBV word or a URI."""

    value: str
    type: str


class ErrorDeclaration(_Model):
    declaration_time: datetime
    reason: str | None = None
    corrective_event_ids: tuple[str, ...] = Field(default=(), alias="correctiveEventIDs")
    extensions: tuple[XmlElement, ...] = ()


class PersistentDisposition(_Model):
    set: tuple[str, ...] = ()
    unset: tuple[str, ...] = ()


class SensorMetadata(_Model):
    time: datetime | None = None
    device_id: str | None = Field(default=None, alias="deviceID")
    device_metadata: str | None = None
    raw_data: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    data_processing_method: str | None = None
    biz_rules: str | None = None
    other_attributes: dict[str, str] = Field(default_factory=dict)


class SensorReport(_Model):
    type: str | None = None
    exception: str | None = None
    device_id: str | None = Field(default=None, alias="deviceID")
    device_metadata: str | None = None
    raw_data: str | None = None
    data_processing_method: str | None = None
    biz_rules: str | None = None
    time: datetime | None = None
    microorganism: str | None = None
    chemical_substance: str | None = None
    value: Decimal | None = None
    component: str | None = None
    string_value: str | None = None
    boolean_value: bool | None = None
    hex_binary_value: str | None = None
    uri_value: str | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    mean_value: Decimal | None = None
    s_dev: Decimal | None = Field(default=None, alias="sDev")
    perc_rank: Decimal | None = None
    perc_value: Decimal | None = None
    uom: str | None = None
    coordinate_reference_system: str | None = None
    other_attributes: dict[str, str] = Field(default_factory=dict)


class SensorElement(_Model):
    sensor_metadata: SensorMetadata | None = None
    sensor_report: tuple[SensorReport, ...] = ()
    extensions: tuple[XmlElement, ...] = ()


# --- Events ----------------------------------------------------------------------------


class EventBase(_Model):
    """Fields every EPCIS event has."""

    event_time: datetime
    event_time_zone_offset: str
    record_time: datetime | None = None
    event_id: str | None = Field(default=None, alias="eventID")
    error_declaration: ErrorDeclaration | None = None
    certification_info: tuple[str, ...] = ()
    biz_step: str | None = None
    disposition: str | None = None
    persistent_disposition: PersistentDisposition | None = None
    read_point: str | None = None
    biz_location: str | None = None
    # Namespaced children of readPoint / bizLocation after their id (the event hash uses them).
    read_point_extensions: tuple[XmlElement, ...] = ()
    biz_location_extensions: tuple[XmlElement, ...] = ()
    biz_transaction_list: tuple[BizTransaction, ...] = ()
    source_list: tuple[SourceDestination, ...] = ()
    destination_list: tuple[SourceDestination, ...] = ()
    sensor_element_list: tuple[SensorElement, ...] = ()
    # Namespaced elements outside the standard, at event level, in document order.
    extensions: tuple[XmlElement, ...] = ()

    def epcs(self) -> tuple[str, ...]:
        """Every instance-level identifier the event names directly."""
        raise NotImplementedError

    def source(self, source_type: str) -> str | None:
        return next((s.value for s in self.source_list if s.type == source_type), None)

    def destination(self, destination_type: str) -> str | None:
        return next((d.value for d in self.destination_list if d.type == destination_type), None)


class ObjectEvent(EventBase):
    type: Literal["ObjectEvent"] = "ObjectEvent"
    epc_list: tuple[str, ...] = ()
    action: Action
    quantity_list: tuple[QuantityElement, ...] = ()
    ilmd: tuple[XmlElement, ...] | None = None

    def epcs(self) -> tuple[str, ...]:
        return self.epc_list


class AggregationEvent(EventBase):
    type: Literal["AggregationEvent"] = "AggregationEvent"
    parent_id: str | None = Field(default=None, alias="parentID")
    child_epcs: tuple[str, ...] = Field(default=(), alias="childEPCs")
    action: Action
    child_quantity_list: tuple[QuantityElement, ...] = ()

    def epcs(self) -> tuple[str, ...]:
        return ((self.parent_id,) if self.parent_id else ()) + self.child_epcs


class TransactionEvent(EventBase):
    type: Literal["TransactionEvent"] = "TransactionEvent"
    parent_id: str | None = Field(default=None, alias="parentID")
    epc_list: tuple[str, ...] = ()
    action: Action
    quantity_list: tuple[QuantityElement, ...] = ()

    def epcs(self) -> tuple[str, ...]:
        return ((self.parent_id,) if self.parent_id else ()) + self.epc_list


class TransformationEvent(EventBase):
    type: Literal["TransformationEvent"] = "TransformationEvent"
    input_epc_list: tuple[str, ...] = Field(default=(), alias="inputEPCList")
    input_quantity_list: tuple[QuantityElement, ...] = ()
    output_epc_list: tuple[str, ...] = Field(default=(), alias="outputEPCList")
    output_quantity_list: tuple[QuantityElement, ...] = ()
    transformation_id: str | None = Field(default=None, alias="transformationID")
    ilmd: tuple[XmlElement, ...] | None = None

    def epcs(self) -> tuple[str, ...]:
        return self.input_epc_list + self.output_epc_list


class AssociationEvent(EventBase):
    type: Literal["AssociationEvent"] = "AssociationEvent"
    parent_id: str | None = Field(default=None, alias="parentID")
    child_epcs: tuple[str, ...] = Field(default=(), alias="childEPCs")
    action: Action
    child_quantity_list: tuple[QuantityElement, ...] = ()

    def epcs(self) -> tuple[str, ...]:
        return ((self.parent_id,) if self.parent_id else ()) + self.child_epcs


Event = Annotated[
    ObjectEvent | AggregationEvent | TransactionEvent | TransformationEvent | AssociationEvent,
    Field(discriminator="type"),
]

EPCIS_EVENT_TYPES: dict[str, type[EventBase]] = {
    "ObjectEvent": ObjectEvent,
    "AggregationEvent": AggregationEvent,
    "TransactionEvent": TransactionEvent,
    "TransformationEvent": TransformationEvent,
    "AssociationEvent": AssociationEvent,
}


# --- Documents -------------------------------------------------------------------------


class DocumentHead(_Model):
    """Everything of a document but its events: what a streaming reader yields first."""

    format: DocumentFormat
    schema_version: str
    creation_date: datetime
    header: EPCISHeader | None = None
    # Prefixes the sender used (prefix -> namespace URI), reused on output where possible.
    namespaces: dict[str, str] = Field(default_factory=dict)
    # Document-level elements outside the standard (after EPCISBody in XML).
    extensions: tuple[XmlElement, ...] = ()


class EPCISDocument(_Model):
    head: DocumentHead
    events: tuple[Event, ...] = ()
