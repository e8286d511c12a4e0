"""Every XML example of the reference corpora: read (or refused as expected) and round-tripped."""

from __future__ import annotations

from pathlib import Path

import pytest

from epcis.errors import (
    EPCISError,
    HostileDocumentError,
    InvalidDocumentError,
    UnsupportedFormatError,
)
from epcis.model import EPCIS_EVENT_TYPES, DocumentFormat, EPCISDocument
from epcis.reading import read_document
from epcis.writing import document_bytes

DATA = Path("/work/shared/reference/data")
PATTERNS = (
    "gs1-epcis/XSL/1.2/XML/*.xml",
    "gs1-epcis/XML/**/*.xml",
    "openepcis-test-resources/1.2/**/XML/**/*.xml",
    "openepcis-test-resources/2.0/**/XML/**/*.xml",
    "event-hash-vectors/tests/examples/*.xml",
)
FILES = (
    sorted({path for pattern in PATTERNS for path in DATA.glob(pattern)}) if DATA.exists() else []
)

CAPTURE_INVALID = "openepcis-test-resources/2.0/EPCIS/XML/Capture/Invalid"
QUERY_INVALID = "openepcis-test-resources/2.0/EPCIS/XML/Query/Invalid"

# Files that are not EPCIS documents we accept, with the error they must raise and why.
EXPECTED: dict[str, tuple[type[EPCISError], str]] = {
    # <!DOCTYPE project> in the prolog: every DOCTYPE is refused, whatever it declares.
    **{
        f"gs1-epcis/XML/{name}": (HostileDocumentError, "document type declaration")
        for name in (
            *(f"WithEventHashID/event_with_identical_hash_id_{n}.xml" for n in range(1, 7)),
            *(
                f"WithFullCombinationOfFields/{kind}_all_possible_fields.xml"
                for kind in ("aggregation_event", "association_event", "masterdata", "object_event")
            ),
            *(
                f"WithFullCombinationOfFields/{kind}_all_possible_fields.xml"
                for kind in ("transaction_event", "transformation_event")
            ),
        )
    },
    **{
        f"gs1-epcis/XML/CaptureJob/Example-CaptureJob{name}.xml": (
            UnsupportedFormatError,
            "not an EPCIS document",
        )
        for name in ("Running", "Success", "WithErrorFile", "WithErrors")
    },
    # The GS1 example misspells sensorMetadata.
    "gs1-epcis/XSL/1.2/XML/AssociationEvent.xml": (InvalidDocumentError, "sensorMetaData"),
    # Namespace-qualified event elements: the XSDs say elementFormDefault="unqualified".
    "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/Document_with_namespace.xml": (
        InvalidDocumentError,
        "unknown event type {urn:epcglobal:epcis:xsd:2}ObjectEvent",
    ),
    "openepcis-test-resources/2.0/EPCIS/XML/Capture/Documents/Namespace_document.xml": (
        InvalidDocumentError,
        "unknown event type {urn:epcglobal:epcis:xsd:2}ObjectEvent",
    ),
    **{
        path: (UnsupportedFormatError, "bare event")
        for path in (
            "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/Single_event.xml",
            "openepcis-test-resources/1.2/EPCIS/XML/Capture/Documents/Single_event_with_namespace.xml",
            "openepcis-test-resources/2.0/EPCIS/XML/Capture/Invalid/ObjectEvent_bare_event_without_action.xml",
            *(
                f"openepcis-test-resources/2.0/EPCIS/XML/Capture/Events/{name}.xml"
                for name in (
                    "AggregationEvent",
                    "AssociationEvent",
                    "Namespace_event",
                    "ObjectEvent",
                    "TransactionEvent",
                    "TransformationEvent",
                )
            ),
        )
    },
    f"{CAPTURE_INVALID}/ObjectEvent_with_invalid_action.xml": (
        InvalidDocumentError,
        "invalid action 'CREATE'",
    ),
    f"{CAPTURE_INVALID}/ObjectEvent_with_near_miss_action.xml": (
        InvalidDocumentError,
        "invalid action 'OBSERV'",
    ),
    f"{CAPTURE_INVALID}/ObjectEvent_with_invalid_eventTime_format.xml": (
        InvalidDocumentError,
        "not an xsd:dateTime: '22-07-2026'",
    ),
    f"{CAPTURE_INVALID}/ObjectEvent_with_unknown_element.xml": (
        InvalidDocumentError,
        "unknown element madeUpField",
    ),
    f"{CAPTURE_INVALID}/ObjectEvent_without_eventTime.xml": (
        InvalidDocumentError,
        "eventTime is missing",
    ),
    f"{QUERY_INVALID}/QueryDocument_with_invalid_action.xml": (
        InvalidDocumentError,
        "invalid action 'INVALIDACTION'",
    ),
    f"{QUERY_INVALID}/QueryDocument_with_invalid_eventType.xml": (
        InvalidDocumentError,
        "unknown event type ObjectEventInvalid",
    ),
    # Query requests, not results: there are no events to read.
    **{
        f"openepcis-test-resources/2.0/EPCIS/XML/Query/{name}.xml": (
            InvalidDocumentError,
            "without QueryResults",
        )
        for name in (
            "Invalid/QueryDocument_with_missing_value",
            "Queries/Invalid/Query_without_queryName",
            "Queries/SimpleEventQuery",
        )
    },
    # Root attribute createdAt instead of creationDate.
    "openepcis-test-resources/2.0/EPCIS/XML/Query/Combination_of_different_event.xml": (
        InvalidDocumentError,
        "without schemaVersion or creationDate",
    ),
    # Example Digital Links whose GS1 keys are malformed (check digit, GRAI zero digit).
    **{
        f"openepcis-test-resources/{name}.xml": (
            InvalidDocumentError,
            f"invalid identifier {uri!r}",
        )
        for name, uri in (
            (
                "1.2/EPCIS/XML/Capture/Documents/All_eventTypes_in_single_document",
                "https://id.example.com/8003/039123450007718765",
            ),
            (
                "2.0/EPCIS/XML/Capture/Documents/Combination_of_different_event",
                "https://id.example.com/8003/030013450007718765",
            ),
            (
                "2.0/EPCIS/XML/Capture/Documents/SensorData_with_combined_events",
                "https://id.example.com/8003/952012200000001004",
            ),
            (
                "2.0/EPCIS/XML/Query/Documents/QueryResultsDocument",
                "https://id.example.com/8003/952012200000001004",
            ),
            (
                "2.0/EPCIS/XML/Query/SensorData_with_combined_events",
                "https://id.example.com/8003/952012200000001004",
            ),
            ("2.0/EPCIS/XML/Query/queryDocument", "https://id.gs1.org/8003/030013450007718765"),
        )
    },
    # queryName/resultsBody directly under the root, no EPCISBody/QueryResults.
    "event-hash-vectors/tests/examples/epcisXmlQueryDocHavingEventWithIgnoreFields.xml": (
        InvalidDocumentError,
        "event outside EPCISBody",
    ),
}
# Element order is the XSD validator's concern; the reader accepts any order (as for the
# corpus's own JumbledFieldsOrder.xml), so this "invalid" file reads.
LENIENT = {
    "openepcis-test-resources/2.0/EPCIS/XML/Capture/Invalid/ObjectEvent_with_wrong_element_order.xml"
}

pytestmark = pytest.mark.skipif(not FILES, reason="/work/shared reference corpora not present")


def _id(path: Path) -> str:
    return str(path.relative_to(DATA))


def _read(path: Path) -> EPCISDocument:
    with path.open("rb") as stream:
        return read_document(stream, source_name=path.name)


READABLE = [path for path in FILES if _id(path) not in EXPECTED]


def test_every_expected_error_names_a_corpus_file() -> None:
    assert set(EXPECTED) <= {_id(path) for path in FILES}
    assert {_id(path) for path in READABLE} >= LENIENT


@pytest.mark.parametrize("path", READABLE, ids=_id)
def test_reads(path: Path) -> None:
    doc = _read(path)
    assert doc.head.format in (DocumentFormat.XML_1_2, DocumentFormat.XML_2_0)
    for event in doc.events:
        # model_construct was used: the values must pass full validation unchanged.
        assert type(event).model_validate(event.model_dump()) == event
        assert event.event_time.tzinfo is not None
    EPCISDocument.model_validate(doc.model_dump())


@pytest.mark.parametrize("path", [p for p in FILES if _id(p) in EXPECTED], ids=_id)
def test_refused_as_expected(path: Path) -> None:
    error_type, message = EXPECTED[_id(path)]
    with pytest.raises(error_type) as caught:
        _read(path)
    assert message in str(caught.value)


@pytest.mark.parametrize("path", READABLE, ids=_id)
@pytest.mark.parametrize("target", [DocumentFormat.XML_1_2, DocumentFormat.XML_2_0], ids=str)
def test_round_trip(path: Path, target: DocumentFormat) -> None:
    doc = _read(path)
    again = read_document(document_bytes(doc, target))
    assert again.events == doc.events
    assert again.head.header == doc.head.header
    assert again.head.namespaces == doc.head.namespaces
    assert again.head.extensions == doc.head.extensions
    if target is doc.head.format:
        assert again == doc


def test_corpus_covers_every_event_type() -> None:
    seen = {type(event).__name__ for path in READABLE for event in _read(path).events}
    assert seen == set(EPCIS_EVENT_TYPES)
