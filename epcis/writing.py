"""Entry points for writing an EPCIS document in any of our formats."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import BinaryIO

from epcis.model import DocumentFormat, DocumentHead, EPCISDocument, Event
from epcis.xml_writer import write_xml

__all__ = ["document_bytes", "write_document"]


def write_document(
    head: DocumentHead, events: Iterable[Event], stream: BinaryIO, format: DocumentFormat
) -> None:
    """Stream the document to ``stream`` in ``format``; events are consumed one at a time."""
    if format is DocumentFormat.XML_1_2:
        write_xml(head, events, stream, version="1.2")
    elif format is DocumentFormat.XML_2_0:
        write_xml(head, events, stream, version="2.0")
    else:
        from epcis.jsonld_writer import write_jsonld

        write_jsonld(head, events, stream)


def document_bytes(doc: EPCISDocument, format: DocumentFormat) -> bytes:
    """The whole document as bytes in ``format``."""
    buffer = io.BytesIO()
    write_document(doc.head, doc.events, buffer, format)
    return buffer.getvalue()
