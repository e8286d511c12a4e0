"""Saleable returns: associate the package with our shipment to the returner, verify it
(locally for our GTINs, through the requestor otherwise), then restock or quarantine it.

Restocking captures an ObjectEvent (OBSERVE, receiving, sellable_accessible) through the
normal capture pipeline. Anything else (not verified, verified with additional information,
or no usable answer) records an exception that holds the package.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from epcis.errors import EPCISError, InvalidIdentifierError
from epcis.event_hash import event_hash
from epcis.identifiers import canonical_epc, parse_scan
from epcis.jsonld_writer import write_jsonld
from epcis.model import Action, DocumentFormat, DocumentHead, ObjectEvent, SourceDestination
from epcis.query import EpcFilter, EventQuery, identifier_key
from epcis.reading import ReadLimits
from service.capture import file_document, new_job, run_capture
from service.capture_hooks import CaptureHook
from service.exception_records import ExceptionRecord, ExceptionType
from service.partners import party_keys
from service.store import EventRecord, EventStore, PageRequest, Visibility
from service.traceability_store import TraceabilityStore, known_spelling
from service.verification_log import VerificationLog
from service.verification_responder import LocalResponder, serial_epc
from verification.messages import VerificationRequest, VerificationResponse
from verification.ports import Direction, VerificationLogEntry

__all__ = [
    "RemoteVerifier",
    "ReturnOutcome",
    "ReturnProcessor",
    "find_shipment",
    "local_log_entry",
    "receiving_event",
    "request_from_scan",
]

Disposition = Literal["restocked", "quarantined", "rejected"]
_MAX_DEPTH = 4
_PAGE = PageRequest(per_page=500)


class RemoteVerifier(Protocol):
    async def verify(self, request: VerificationRequest) -> VerificationResponse: ...


@dataclass(frozen=True, slots=True)
class ReturnOutcome:
    disposition: Disposition
    epc: str
    detail: str
    shipment_event: str | None = None
    verification: VerificationResponse | None = None
    event_id: str | None = None
    exception_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.disposition != "rejected",
            "disposition": self.disposition,
            "epc": self.epc,
            "detail": self.detail,
            "shipmentEventID": self.shipment_event,
            "verification": self.verification.to_json() if self.verification else None,
            "eventID": self.event_id,
            "exceptionID": self.exception_id,
        }


def request_from_scan(scan: str, req_gln: str | None) -> VerificationRequest:
    """A verification request from barcode data or a Digital Link with all four elements."""
    identifier = parse_scan(scan)
    if identifier.serial is None or identifier.lot is None or identifier.expiry is None:
        raise InvalidIdentifierError(
            "a DSCSA product identifier needs GTIN, serial (21), lot (10) and expiry (17)"
        )
    return VerificationRequest(
        gtin=identifier.gtin,
        serial=identifier.serial,
        lot=identifier.lot,
        expiry=identifier.expiry,
        req_gln=req_gln,
        context="dscsaSaleableReturn",
    )


async def _all(store: EventStore, query: EventQuery) -> list[EventRecord]:
    records: list[EventRecord] = []
    page = _PAGE
    while True:
        found = await store.query_events(query, Visibility.everything(), page)
        records.extend(found.records)
        if found.next_token is None:
            return records
        page = PageRequest(per_page=_PAGE.per_page, token=found.next_token)


async def _containers(store: EventStore, epc_key: str) -> dict[str, datetime]:
    """Every container the package was packed into (however deep), with the packing time."""
    packed: dict[str, datetime] = {}
    frontier = {epc_key}
    for _ in range(_MAX_DEPTH):
        query = EventQuery(
            event_types=frozenset({"AggregationEvent"}),
            actions=frozenset({"ADD"}),
            match_any_epc=EpcFilter(exact=frozenset(frontier)),
        )
        parents: set[str] = set()
        for record in await _all(store, query):
            children = {key for role, key in record.index.epcs if role == "child"}
            if children & frontier:
                for role, key in record.index.epcs:
                    if role == "parent" and key not in packed:
                        packed[key] = record.event_time
                        parents.add(key)
        frontier = parents
        if not frontier:
            break
    return packed


async def find_shipment(store: EventStore, epc: str, partner_gln: str) -> EventRecord | None:
    """Our latest shipping event of ``epc`` (itself, or a container it had been packed into
    before the shipment) whose destination owning party is the partner."""
    epc_key = identifier_key(epc)
    containers = await _containers(store, epc_key)
    partner = party_keys(partner_gln)
    query = EventQuery(
        biz_steps=frozenset({"shipping"}),
        match_any_epc=EpcFilter(exact=frozenset({epc_key, *containers})),
    )
    shipments = [
        record
        for record in await _all(store, query)
        if any(t == "owning_party" and v in partner for t, v in record.index.destinations)
        and _carried(record, epc_key, containers)
    ]
    return max(shipments, key=lambda r: r.event_time, default=None)


def _carried(record: EventRecord, epc_key: str, containers: dict[str, datetime]) -> bool:
    named = {key for _, key in record.index.epcs}
    if epc_key in named:
        return True
    return any(key in named and packed <= record.event_time for key, packed in containers.items())


class ReturnProcessor:
    def __init__(
        self,
        events: EventStore,
        traceability: TraceabilityStore,
        local: LocalResponder,
        log: VerificationLog,
        *,
        our_gln: str,
        spool_dir: Path,
        remote: RemoteVerifier | None = None,
        hooks: Sequence[CaptureHook] = (),
    ) -> None:
        # The restock event goes through the same hooks as any capture, so trace, checks
        # and the audit ledger see it.
        self._hooks = tuple(hooks)
        self._events = events
        self._traceability = traceability
        self._local = local
        self._log = log
        self._our_gln = our_gln
        self._spool_dir = spool_dir
        self._remote = remote

    async def process(self, scan: str, returned_by: str, by: str) -> ReturnOutcome:
        request = request_from_scan(scan, self._our_gln)
        # The restock event and any hold name the package as its history does.
        epc = await known_spelling(self._traceability, serial_epc(request.gtin, request.serial))
        shipment = await find_shipment(self._events, epc, returned_by)
        if shipment is None:
            return ReturnOutcome("rejected", epc, f"we have no shipment of {epc} to {returned_by}")
        try:
            response = await self._verify(request)
        except EPCISError as error:
            detail = f"return of {epc}: not verified ({error})"
            held = await self._hold(epc, ExceptionType.SALEABLE_RETURN_HELD, detail, by, request)
            return ReturnOutcome("quarantined", epc, detail, shipment.hash_id, None, None, held)
        data = response.data
        if data.verified and data.additional_info is None:
            event_id = await self._restock(epc, returned_by, by)
            return ReturnOutcome(
                "restocked",
                epc,
                "verified; back in saleable stock",
                shipment.hash_id,
                response,
                event_id,
            )
        reason = data.verification_failure_reason
        detail = (
            f"return of {epc} from {returned_by}: verified={str(data.verified).lower()}"
            f" reason={reason} info={data.additional_info}"
        )
        held = await self._hold(epc, ExceptionType.SALEABLE_RETURN_HELD, detail, by, request)
        return ReturnOutcome("quarantined", epc, detail, shipment.hash_id, response, None, held)

    async def _verify(self, request: VerificationRequest) -> VerificationResponse:
        if not self._local.owns(request.gtin):
            if self._remote is None:
                raise EPCISError(f"GTIN {request.gtin} is not ours and no requestor is set up")
            return await self._remote.verify(request)
        started = time.perf_counter()
        response = await self._local.verify(request)
        await self._log.append(local_log_entry(request, response, started, "self"))
        return response

    async def _hold(
        self,
        epc: str,
        kind: ExceptionType,
        detail: str,
        by: str,
        request: VerificationRequest,
    ) -> str:
        record = ExceptionRecord(
            exception_id=uuid.uuid4().hex,
            key=f"saleable_return|{epc}|{request.corr_uuid}",
            type=kind,
            detail=detail,
            created_at=datetime.now(UTC),
            partner_id=by,
            identifiers=(epc,),
        )
        await self._traceability.add_exceptions([record])
        return record.exception_id

    async def _restock(self, epc: str, returned_by: str, by: str) -> str:
        event = receiving_event(epc, returned_by, self._our_gln, datetime.now(UTC))
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        path = await asyncio.to_thread(_write_document, event, self._spool_dir)
        try:
            document = await asyncio.to_thread(file_document, path, 1 << 20)
            job = await run_capture(
                self._events,
                document,
                new_job(by, "rollback"),
                limits=ReadLimits(max_bytes=1 << 20, max_events=1),
                source="saleable return",
                hooks=self._hooks,
                spool_dir=self._spool_dir,
            )
        finally:
            path.unlink(missing_ok=True)
        if not job.success:
            raise EPCISError(f"the receiving event was not captured: {job.errors}")
        return event_hash(event)


def _location(gln: str) -> str:
    return canonical_epc(f"https://id.gs1.org/414/{gln}")


def receiving_event(epc: str, returned_by: str, our_gln: str, when: datetime) -> ObjectEvent:
    """Back into saleable stock at our site, owned by us again."""
    return ObjectEvent(
        event_time=when,
        event_time_zone_offset="+00:00",
        epc_list=(epc,),
        action=Action.OBSERVE,
        biz_step="receiving",
        disposition="sellable_accessible",
        read_point=_location(our_gln),
        biz_location=_location(our_gln),
        source_list=(SourceDestination(type="owning_party", value=_location(returned_by)),),
        destination_list=(SourceDestination(type="owning_party", value=_location(our_gln)),),
    )


def _write_document(event: ObjectEvent, directory: Path) -> Path:
    head = DocumentHead(
        format=DocumentFormat.JSONLD_2_0, schema_version="2.0", creation_date=event.event_time
    )
    descriptor, name = tempfile.mkstemp(dir=directory, prefix="return-", suffix=".jsonld")
    with open(descriptor, "wb") as handle:
        write_jsonld(head, [event], handle)
    return Path(name)


def local_log_entry(
    request: VerificationRequest,
    response: VerificationResponse,
    started: float,
    requestor: str,
    direction: Direction = Direction.OUTBOUND,
) -> VerificationLogEntry:
    """A log entry for a verification we decided ourselves."""
    data = response.data
    return VerificationLogEntry(
        entry_id=uuid.uuid4().hex,
        direction=direction,
        time=datetime.now(UTC),
        requestor=requestor,
        responder="local",
        req_gln=request.req_gln,
        corr_uuid=request.corr_uuid,
        gtin=request.gtin,
        serial=request.serial,
        lot=request.lot,
        expiry=request.expiry.raw,
        context=request.context,
        status=200,
        verified=data.verified,
        failure_reason=data.verification_failure_reason,
        additional_info=data.additional_info,
        latency_ms=(time.perf_counter() - started) * 1000,
        answer=response.to_json(),
    )
