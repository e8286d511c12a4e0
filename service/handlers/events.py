"""Query interface: ``GET /events``, ``GET /events/{eventID}``, ``GET /epcs/{epc}/events``."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web
from lxml import etree

from epcis.jsonld_context import GS1_CONTEXT_URL
from epcis.jsonld_reader import event_from_jsonld
from epcis.jsonld_writer import EpcFormat, event_to_jsonld
from epcis.model import DocumentFormat, DocumentHead, Event
from epcis.query import PAGING_PARAMETERS, QueryParameterError, parse_query_params
from epcis.xml_writer import format_time, write_xml
from service.auth import Role, require_role
from service.settings import Settings
from service.state import SETTINGS, STORE
from service.store import EventRecord, PageRequest

__all__ = ["get_epc_events", "get_event", "query_events"]

JSONLD = "application/ld+json"
_QUERY_NS = "urn:epcglobal:epcis-query:xsd:2"
_JSON_TYPES = (JSONLD, "application/json")
_XML_TYPES = ("application/xml", "text/xml")
_ANY = frozenset({"*/*", JSONLD})
# GS1-EPC-Format -> what the JSON-LD writer does with identifiers.
_EPC_FORMATS: dict[str, EpcFormat] = {
    "No_Preference": "as-is",
    "Never_Translates": "as-is",
    "Always_EPC_URN": "urn",
    "Always_GS1_Digital_Link": "digital-link",
}


def _media_type(request: web.Request) -> str:
    """The response type from ``Accept``: JSON-LD unless XML is asked for (406 otherwise)."""
    accept = request.headers.get("Accept", "")
    # What most clients send (aiohttp, curl, requests): no need to rank anything.
    if accept in _ANY or not accept.strip():
        return JSONLD
    ranked = []
    for part in accept.split(","):
        kind, *params = (piece.strip() for piece in part.split(";"))
        weight = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            ranked.append((float(weight), kind.lower()))
        except ValueError:
            continue
    for quality, kind in sorted(ranked, key=lambda item: -item[0]):
        if quality <= 0:
            continue
        if kind in _JSON_TYPES or kind in {"*/*", "application/*"}:
            return JSONLD if kind != "application/json" else kind
        if kind in _XML_TYPES:
            return "application/xml"
    raise web.HTTPNotAcceptable(text="this resource is available as JSON-LD or XML")


def _epc_format(request: web.Request) -> EpcFormat:
    value = request.headers.get("GS1-EPC-Format", "No_Preference").strip()
    if value not in _EPC_FORMATS:
        raise QueryParameterError(f"GS1-EPC-Format must be one of {', '.join(_EPC_FORMATS)}")
    return _EPC_FORMATS[value]


def _model_event(record: EventRecord) -> Event:
    return event_from_jsonld(json.loads(record.body), {}, path="/")


def _json_events(records: Sequence[EventRecord], epc_format: EpcFormat) -> list[bytes]:
    if epc_format == "as-is":
        # Stored bodies are already the JSON-LD of each event: no round trip needed.
        return [record.body for record in records]
    return [
        json.dumps(
            event_to_jsonld(_model_event(record), {}, epc_format=epc_format),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        for record in records
    ]


def _query_document_head(creation_date: str) -> dict[str, object]:
    return {
        "@context": [GS1_CONTEXT_URL],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": creation_date,
        "epcisBody": {
            "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": []}}
        },
    }


# The query document around its event list is the same bytes every time but for the
# creation date: serialise it once, with a marker where the date goes, and splice per request.
_DATE_MARK = "creationDate-goes-here"
_EMPTY_LIST_END = b"]}}}}"
_HEAD = json.dumps(_query_document_head(_DATE_MARK), separators=(",", ":")).encode()
_TO_DATE, _, _FROM_DATE = _HEAD.partition(_DATE_MARK.encode())
_TO_EVENTS = _FROM_DATE[: -len(_EMPTY_LIST_END)]


def _query_document_json(events: list[bytes]) -> bytes:
    """The JSON-LD query document with the stored event bodies spliced into its eventList."""
    creation_date = datetime.now(UTC).isoformat(timespec="milliseconds").encode()
    return b"".join((_TO_DATE, creation_date, _TO_EVENTS, b",".join(events), _EMPTY_LIST_END))


def _query_document_xml(records: Sequence[EventRecord], epc_format: EpcFormat) -> bytes:
    """An EPCIS 2.0 XML query document: the writer's event list moved into QueryResults."""
    events = [_model_event(record) for record in records]
    if epc_format != "as-is":
        events = [_convert_epcs(event, epc_format) for event in events]
    now = datetime.now(UTC)
    head = DocumentHead(format=DocumentFormat.XML_2_0, schema_version="2.0", creation_date=now)
    written = io.BytesIO()
    write_xml(head, events, written, version="2.0")
    # Our own writer's output, parsed with entity resolution and network access off anyway.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    event_list = etree.fromstring(written.getvalue(), parser).find("EPCISBody/EventList")
    root = etree.Element(
        f"{{{_QUERY_NS}}}EPCISQueryDocument",
        {"schemaVersion": "2.0", "creationDate": format_time(now)},
        nsmap={"epcisq": _QUERY_NS},
    )
    results = etree.SubElement(etree.SubElement(root, "EPCISBody"), f"{{{_QUERY_NS}}}QueryResults")
    etree.SubElement(results, "queryName").text = "SimpleEventQuery"
    results_body = etree.SubElement(results, "resultsBody")
    results_body.append(event_list if event_list is not None else etree.Element("EventList"))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def _convert_epcs(event: Event, epc_format: EpcFormat) -> Event:
    # Round trip through the JSON writer, which owns the identifier conversion.
    converted = event_to_jsonld(event, {}, epc_format=epc_format)
    return event_from_jsonld(converted, {}, path="/")


async def _respond(
    request: web.Request, records: Sequence[EventRecord], headers: Mapping[str, str]
) -> web.Response:
    media_type = _media_type(request)
    epc_format = _epc_format(request)
    if media_type == "application/xml":
        body = await asyncio.to_thread(_query_document_xml, records, epc_format)
    elif epc_format == "as-is":
        # Splicing stored bodies is microseconds: a thread hop would cost more than it saves.
        body = _query_document_json([record.body for record in records])
    else:
        events = await asyncio.to_thread(_json_events, records, epc_format)
        body = _query_document_json(events)
    response = web.Response(body=body, content_type=media_type, headers=headers)
    if epc_format != "as-is":
        response.headers["GS1-EPC-Format"] = request.headers["GS1-EPC-Format"]
    return response


def _page_request(params: Mapping[str, str], settings: Settings) -> PageRequest:
    raw = params.get("perPage")
    if raw is None:
        per_page = settings.default_page_size
    elif raw.isdigit() and int(raw) > 0:
        per_page = min(int(raw), settings.max_page_size)
    else:
        raise QueryParameterError("perPage must be a positive integer")
    return PageRequest(per_page=per_page, token=params.get("nextPageToken"))


def _single_valued(request: web.Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query.items():
        if name in params:
            raise QueryParameterError(f"{name} is given more than once; use a|b for a list")
        params[name] = value
    return params


async def _run_query(request: web.Request, params: dict[str, str]) -> web.Response:
    principal = require_role(request, Role.PARTNER, Role.OPERATOR, Role.AUDITOR)
    query = parse_query_params(params)
    page_request = _page_request(params, request.app[SETTINGS])
    page = await request.app[STORE].query_events(query, principal.visibility, page_request)
    headers = {}
    if page.next_token is not None:
        kept = {k: v for k, v in request.query.items() if k not in PAGING_PARAMETERS}
        kept.update(perPage=str(page_request.per_page), nextPageToken=page.next_token)
        headers["Link"] = f'<{request.path}?{urlencode(kept)}>; rel="next"'
    return await _respond(request, page.records, headers)


async def query_events(request: web.Request) -> web.Response:
    return await _run_query(request, _single_valued(request))


async def get_epc_events(request: web.Request) -> web.Response:
    params = _single_valued(request)
    if "MATCH_anyEPC" in params:
        raise QueryParameterError("MATCH_anyEPC is given by the path")
    params["MATCH_anyEPC"] = request.match_info["epc"]
    return await _run_query(request, params)


async def get_event(request: web.Request) -> web.Response:
    principal = require_role(request, Role.PARTNER, Role.OPERATOR, Role.AUDITOR)
    event_id = request.match_info["eventID"]
    record = await request.app[STORE].get_event(event_id, principal.visibility)
    if record is None:
        raise web.HTTPNotFound(text=f"no event {event_id}")
    return await _respond(request, [record], {})
