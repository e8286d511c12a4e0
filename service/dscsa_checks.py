"""DSCSA checks on capture, and the capture hook that keeps serial state and exceptions current.

Two kinds of check:

* document checks (transaction statement, master data, lot and expiry at commissioning) look
  at one document alone; in strict mode :func:`precheck` runs them before anything is stored
  and a finding rejects the capture;
* history checks (never commissioned, duplicate commissioning, event after end of life,
  packing and unpacking consistency, receipt of what was not shipped to us, lot or expiry
  disagreeing with commissioning) depend on what else has arrived, and data legitimately
  arrives out of order, so they are always recorded as exceptions (never rejections).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from epcis.errors import EPCISError, Problem
from epcis.model import EPCISHeader, EventBase
from epcis.query import identifier_key
from service.collector import collector_paused
from service.containment import EventFacts
from service.exception_records import (
    ExceptionRecord,
    ExceptionStatus,
    ExceptionType,
    Finding,
    Hold,
    Resolution,
)
from service.master_data import extract_master_data
from service.serial_state import (
    ProjectionStore,
    ProjectionUpdate,
    SerialStateProjection,
    gtin_of,
    load_timeline,
)
from service.traceability_store import ExceptionFilter, TraceabilityStore

__all__ = [
    "CaptureOutcome",
    "CheckMode",
    "DSCSACheckFailedError",
    "MasterDataReader",
    "after_projection",
    "commissioned_by",
    "document_findings",
    "facts_committed",
    "on_events_committed",
    "precheck",
    "update_findings",
]


class CheckMode(StrEnum):
    STRICT = "strict"
    LENIENT = "lenient"


class DSCSACheckFailedError(EPCISError):
    """Strict mode: the document breaks a DSCSA rule and was not stored (422)."""

    problem_type = "epcisException:ValidationException"
    status = 422


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    states_updated: int
    exceptions: tuple[ExceptionRecord, ...]


def _is_sgtin(epc: str) -> bool:
    return epc.startswith("urn:epc:id:sgtin:") or "/21/" in epc


def document_findings(
    header: EPCISHeader | None,
    facts: Sequence[EventFacts],
    known_gtins: Collection[str],
    known_parties: Collection[str],
) -> list[Finding]:
    """Findings about one document alone; ``known_*`` include master data stored earlier."""
    shipping = [f for f in facts if f.biz_step == "shipping"]
    findings: list[Finding] = []
    statement = header.gs1ushc.dscsa_transaction_statement if header and header.gs1ushc else None
    if shipping and (statement is None or not statement.affirm_transaction_statement):
        findings.append(
            Finding(
                ExceptionType.MISSING_TRANSACTION_STATEMENT,
                "shipment document without an affirmed DSCSA transaction statement",
                tuple(sorted({epc for f in shipping for epc in f.names()})),
                tuple(f.hash_id for f in shipping),
            )
        )
    if shipping:
        findings.extend(_missing_master_data(facts, shipping, known_gtins, known_parties))
    for f in facts:
        if f.biz_step == "commissioning" and f.action == "ADD" and (not f.lot or not f.expiry):
            items = tuple(epc for epc in f.epcs if _is_sgtin(epc))
            if items:
                findings.append(
                    Finding(
                        ExceptionType.COMMISSIONING_WITHOUT_LOT_OR_EXPIRY,
                        f"commissioning of {len(items)} SGTINs without lot number or expiry",
                        items,
                        (f.hash_id,),
                    )
                )
    return findings


def _missing_master_data(
    facts: Sequence[EventFacts],
    shipping: Sequence[EventFacts],
    known_gtins: Collection[str],
    known_parties: Collection[str],
) -> list[Finding]:
    findings: list[Finding] = []
    # The shipped serials travel with their commissioning events in the same document.
    serials = {epc for f in facts for epc in f.names() if _is_sgtin(epc)}
    missing = sorted({g for epc in serials if (g := gtin_of(epc)) and g not in known_gtins})
    if missing:
        findings.append(
            Finding(
                ExceptionType.MISSING_PRODUCT_MASTER_DATA,
                f"no product master data for GTIN {', '.join(missing)}",
                tuple(sorted(e for e in serials if gtin_of(e) in missing)),
                tuple(f.hash_id for f in shipping),
            )
        )
    for f in shipping:
        parties = {v for t, v in (*f.sources, *f.destinations) if t in ("owning_party", "location")}
        absent = sorted(parties - set(known_parties))
        if absent:
            findings.append(
                Finding(
                    ExceptionType.MISSING_PARTY_MASTER_DATA,
                    f"no name and address for {', '.join(absent)}",
                    tuple(sorted(set(f.names()))),
                    (f.hash_id,),
                )
            )
    return findings


async def _document_findings(
    store: MasterDataReader, header: EPCISHeader | None, facts: Sequence[EventFacts]
) -> list[Finding]:
    master = extract_master_data(header)
    gtins = {g for f in facts for epc in f.names() if (g := gtin_of(epc))}
    parties = {v for f in facts for _, v in (*f.sources, *f.destinations)}
    known_gtins = {p.gtin for p in master.products} | set(await store.get_products(gtins))
    known_parties = {p.party_id for p in master.parties} | set(await store.get_parties(parties))
    return document_findings(header, facts, known_gtins, known_parties)


async def precheck(
    store: TraceabilityStore,
    header: EPCISHeader | None,
    events: Sequence[tuple[str, EventBase]],
    mode: CheckMode,
) -> list[Finding]:
    """Strict mode: raise :class:`DSCSACheckFailedError` on any document finding."""
    facts = [EventFacts.from_event(event, hash_id) for hash_id, event in events]
    findings = await _document_findings(store, header, facts)
    if findings and mode is CheckMode.STRICT:
        raise DSCSACheckFailedError(
            f"{len(findings)} DSCSA check(s) failed",
            tuple(Problem(f"{f.type.value}: {f.detail}") for f in findings),
        )
    return findings


def _keys(*values: str | None) -> set[str]:
    # Parties and places compared by GS1 key, not by spelling: an SGLN URN's company prefix
    # length and a Digital Link name the same GLN.
    return {identifier_key(value) for value in values if value is not None}


def _is_return(receipt: EventFacts, last: EventFacts | None, to: set[str], us: set[str]) -> bool:
    """A receipt back from the party we last shipped to, of a shipment that left from us."""
    if last is None or not _keys(receipt.source("owning_party")) & to:
        return False
    return bool(_keys(last.source("owning_party"), last.source("location")) & us)


async def _receipt_findings(store: ProjectionStore, facts: Sequence[EventFacts]) -> list[Finding]:
    findings: list[Finding] = []
    for receipt in (f for f in facts if f.biz_step == "receiving"):
        ours = (
            receipt.biz_location,
            receipt.read_point,
            receipt.destination("location"),
            receipt.destination("owning_party"),
        )
        us = _keys(*ours)
        for epc in receipt.epcs:
            entries, _, _ = await load_timeline(store, epc)
            shipped = [
                e.facts
                for e in entries
                if e.facts.biz_step == "shipping" and e.facts.key < receipt.key
            ]
            last = shipped[-1] if shipped else None
            to = (
                _keys(last.destination("location"), last.destination("owning_party"))
                if last
                else set()
            )
            if not to & us and not _is_return(receipt, last, to, us):
                findings.append(
                    Finding(
                        ExceptionType.RECEIVED_NOT_SHIPPED_TO_US,
                        f"{epc} received at {', '.join(sorted({u for u in ours if u}))} "
                        "without a shipment to there",
                        (epc,),
                        (receipt.hash_id,),
                    )
                )
    return findings


async def on_events_committed(
    store: TraceabilityStore,
    events: Sequence[tuple[str, EventBase]],
    *,
    header: EPCISHeader | None = None,
    document_id: str | None = None,
    partner_id: str | None = None,
) -> CaptureOutcome:
    """After a capture batch commits: keep master data, project state, record findings.

    ``events`` are ``(hash_id, event)`` pairs of the events this batch stored (duplicates
    left out or not: facts already known are skipped). Pass the document's header with the
    first batch of a document so its master data and transaction statement are checked.
    """
    # The collector paused for the batch, awaits included, as during the projection's update
    # (see service.collector): the batch's facts live until it ends.
    with collector_paused():
        facts = [EventFacts.from_event(event, hash_id, document_id) for hash_id, event in events]
        return await facts_committed(
            store, facts, header=header, document_id=document_id, partner_id=partner_id
        )


async def facts_committed(
    store: TraceabilityStore,
    facts: Sequence[EventFacts],
    *,
    header: EPCISHeader | None = None,
    document_id: str | None = None,
    partner_id: str | None = None,
) -> CaptureOutcome:
    """:func:`on_events_committed` for facts already derived from the events, so that a
    capture need not keep model events until its commit."""
    with collector_paused():  # see on_events_committed
        return await _facts_committed(store, facts, header, document_id, partner_id)


async def _facts_committed(
    store: TraceabilityStore,
    facts: Sequence[EventFacts],
    header: EPCISHeader | None,
    document_id: str | None,
    partner_id: str | None,
) -> CaptureOutcome:
    update = await SerialStateProjection(store).apply(facts)
    findings = await update_findings(store, store, update, header)
    return await _record_findings(
        store,
        findings,
        commissioned_by(update),
        len(update.states),
        header,
        document_id,
        partner_id,
    )


class MasterDataReader(Protocol):
    """Where the document checks look up master data stored earlier."""

    async def get_products(self, gtins: Collection[str]) -> Mapping[str, object]: ...
    async def get_parties(self, party_ids: Collection[str]) -> Mapping[str, object]: ...


async def update_findings(
    store: ProjectionStore,
    master: MasterDataReader,
    update: ProjectionUpdate,
    header: EPCISHeader | None,
) -> list[Finding]:
    """Everything wrong with one applied batch: the projection's findings about its events,
    the document's (statement, master data, commissioning), and its receipts'. ``store``
    shows the batch applied (the projection worker's open transaction, or the store)."""
    batch = {f.hash_id for f in update.inserted}
    findings = [f for f in update.findings if batch.intersection(f.event_hashes)]
    if header is not None:
        findings.extend(await _document_findings(master, header, update.inserted))
    findings.extend(await _receipt_findings(store, update.inserted))
    return findings


def commissioned_by(update: ProjectionUpdate) -> list[tuple[str, str]]:
    """The serials whose state the update gave a commissioning event, with that event."""
    return [(s.epc, s.commissioning_event) for s in update.states if s.commissioning_event]


async def after_projection(
    store: TraceabilityStore,
    findings: Sequence[Finding],
    commissioned: Sequence[tuple[str, str]],
    *,
    states: int = 0,
    header: EPCISHeader | None = None,
    document_id: str | None = None,
    partner_id: str | None = None,
) -> CaptureOutcome:
    """What :func:`facts_committed` does once the projection and its checks ran elsewhere
    (the projection worker, see :func:`update_findings`): the document's master data stored,
    the ``findings`` recorded, and never-commissioned exceptions answered by the
    ``commissioned`` serials (each with its commissioning event)."""
    with collector_paused():  # see on_events_committed
        return await _record_findings(
            store, findings, commissioned, states, header, document_id, partner_id
        )


async def _record_findings(
    store: TraceabilityStore,
    findings: Sequence[Finding],
    commissioned: Sequence[tuple[str, str]],
    states: int,
    header: EPCISHeader | None,
    document_id: str | None,
    partner_id: str | None,
) -> CaptureOutcome:
    master = extract_master_data(header)
    await store.put_products(master.products)
    await store.put_parties(master.parties)
    now = datetime.now(UTC)
    records = [
        ExceptionRecord.of(finding, now, document_id=document_id, partner_id=partner_id)
        for finding in {f.key: f for f in findings}.values()
    ]
    stored = await store.add_exceptions(records)
    await _close_answered(store, commissioned, now)
    return CaptureOutcome(states, tuple(stored))


async def _close_answered(
    store: TraceabilityStore, commissioned: Sequence[tuple[str, str]], now: datetime
) -> None:
    """A late commissioning event answers an earlier never-commissioned exception."""
    held = await store.holds_for([epc for epc, _ in commissioned])
    for epc, event in commissioned:
        if Hold.SUSPECT not in held.get(epc, ()):
            continue
        query = ExceptionFilter(
            type=ExceptionType.NEVER_COMMISSIONED,
            status=ExceptionStatus.OPEN,
            identifier=epc,
        )
        for record in await store.list_exceptions(query):
            await store.add_resolution(
                Resolution(
                    record.exception_id,
                    f"commissioning event {event} arrived",
                    "system",
                    now,
                )
            )
