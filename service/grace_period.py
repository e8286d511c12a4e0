"""Scheduled DSCSA checks with a grace period: product without data, and data without product.

* Product without data: one of our receiving events whose packages still have no inbound
  transaction information (a shipping event, direct or through a container, whose destination
  is one of our parties) once the grace period after the receipt has passed.
* Data without product: an inbound shipping event (to one of our parties, from someone else)
  whose packages we have not received once the grace period after the shipment has passed.

The grace period counts business days (Monday to Friday, minus configured holidays), 3 by
default. Each run looks back over a bounded window of event times, records findings as
exception records (recording the same finding twice keeps one record), and resolves the open
records of both types whose missing data or product has since arrived.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from epcis.errors import EPCISError
from epcis.identifiers import epc_match_key
from epcis.jsonld_reader import event_from_jsonld
from epcis.query import EventQuery
from service.containment import EventFacts
from service.exception_records import (
    ExceptionRecord,
    ExceptionStatus,
    ExceptionType,
    Finding,
    Resolution,
)
from service.serial_state import load_timeline
from service.settings import Settings
from service.store import EventRecord, EventStore, PageRequest, Visibility
from service.traceability_store import ExceptionFilter, TraceabilityStore

__all__ = [
    "GracePolicy",
    "GraceReport",
    "OurParties",
    "add_business_days",
    "check_data_without_product",
    "check_product_without_data",
    "run_grace_period_checks",
]

_GLN_IN_KEY = re.compile(r"/(?:414|417)/(\d{13})")
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class OurParties:
    """Who "we" are: our GLN, our GS1 company prefixes, and any further party identifiers."""

    gln: str | None = None
    company_prefixes: tuple[str, ...] = ()
    identifiers: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings, extra: Collection[str] = ()) -> OurParties:
        return cls(settings.gln, settings.company_prefixes, frozenset(extra))

    def includes(self, identifier: str | None) -> bool:
        """Whether an SGLN, PGLN, GLN Digital Link or other listed identifier is ours."""
        if identifier is None:
            return False
        if identifier in self.identifiers:
            return True
        gln = _gln_of(identifier)
        if gln is None:
            return False
        return gln == self.gln or any(gln.startswith(p) for p in self.company_prefixes)


def _gln_of(identifier: str) -> str | None:
    try:
        key = epc_match_key(identifier)
    except (EPCISError, ValueError):
        return None
    match = _GLN_IN_KEY.search(key)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class GracePolicy:
    business_days: int = 3
    holidays: frozenset[date] = frozenset()
    # Events older than this are not looked at again (their findings are recorded by then).
    lookback: timedelta = timedelta(days=60)


def add_business_days(start: datetime, days: int, holidays: Collection[date] = ()) -> datetime:
    """``start`` moved forward by ``days`` business days (same time of day)."""
    moment, left = start, days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5 and moment.date() not in holidays:
            left -= 1
    return moment


@dataclass(frozen=True, slots=True)
class GraceReport:
    recorded: tuple[ExceptionRecord, ...] = ()
    resolved: tuple[str, ...] = field(default=())


def _ours_on_arrival(facts: EventFacts, ours: OurParties) -> bool:
    places = (
        facts.biz_location,
        facts.read_point,
        facts.destination("location"),
        facts.destination("owning_party"),
    )
    return any(ours.includes(place) for place in places)


def _to_us(facts: EventFacts, ours: OurParties) -> bool:
    return ours.includes(facts.destination("owning_party")) or ours.includes(
        facts.destination("location")
    )


async def _without_inbound_data(
    store: TraceabilityStore, receipt: EventFacts, ours: OurParties
) -> list[str]:
    missing: list[str] = []
    for epc in receipt.epcs:
        entries, _, _ = await load_timeline(store, epc)
        if not any(
            e.facts.biz_step == "shipping"
            and e.facts.event_time <= receipt.event_time
            and _to_us(e.facts, ours)
            for e in entries
        ):
            missing.append(epc)
    return missing


async def _not_received(
    store: TraceabilityStore, shipment: EventFacts, ours: OurParties
) -> list[str]:
    missing: list[str] = []
    for epc in shipment.epcs:
        entries, _, _ = await load_timeline(store, epc)
        if not any(
            e.facts.biz_step == "receiving"
            and e.facts.key > shipment.key
            and _ours_on_arrival(e.facts, ours)
            for e in entries
        ):
            missing.append(epc)
    return missing


def _is_inbound(shipment: EventFacts, ours: OurParties) -> bool:
    return _to_us(shipment, ours) and not ours.includes(shipment.source("owning_party"))


async def _due_events(
    events: EventStore, biz_step: str, now: datetime, policy: GracePolicy
) -> AsyncIterator[tuple[EventRecord, EventFacts]]:
    """Events of ``biz_step`` in the lookback window whose grace period is over."""
    query = EventQuery(
        biz_steps=frozenset({biz_step}), ge_event_time=now - policy.lookback, lt_event_time=now
    )
    token: str | None = None
    while True:
        page = await events.query_events(
            query, Visibility.everything(), PageRequest(per_page=_PAGE, token=token)
        )
        for record in page.records:
            if add_business_days(record.event_time, policy.business_days, policy.holidays) > now:
                continue
            yield record, _facts(record)
        token = page.next_token
        if token is None:
            return


def _facts(record: EventRecord) -> EventFacts:
    event = event_from_jsonld(json.loads(record.body), {})
    return EventFacts.from_event(event, record.hash_id, record.document_id)


async def check_product_without_data(
    events: EventStore,
    traceability: TraceabilityStore,
    ours: OurParties,
    *,
    now: datetime | None = None,
    policy: GracePolicy = GracePolicy(),
) -> list[ExceptionRecord]:
    """Our receipts past the grace period with packages that no inbound shipment covers."""
    moment = now or datetime.now(UTC)
    records: list[ExceptionRecord] = []
    async for record, receipt in _due_events(events, "receiving", moment, policy):
        if not _ours_on_arrival(receipt, ours):
            continue
        missing = await _without_inbound_data(traceability, receipt, ours)
        if missing:
            finding = Finding(
                ExceptionType.PRODUCT_WITHOUT_DATA,
                f"received {len(missing)} package(s) on {receipt.event_time.date()} with no "
                f"inbound transaction information after {policy.business_days} business days",
                tuple(missing),
                (receipt.hash_id,),
            )
            records.append(ExceptionRecord.of(finding, moment, document_id=record.document_id))
    return await traceability.add_exceptions(records)


async def check_data_without_product(
    events: EventStore,
    traceability: TraceabilityStore,
    ours: OurParties,
    *,
    now: datetime | None = None,
    policy: GracePolicy = GracePolicy(),
) -> list[ExceptionRecord]:
    """Inbound shipments past the grace period with packages we have not received."""
    moment = now or datetime.now(UTC)
    records: list[ExceptionRecord] = []
    async for record, shipment in _due_events(events, "shipping", moment, policy):
        if not _is_inbound(shipment, ours):
            continue
        missing = await _not_received(traceability, shipment, ours)
        if missing:
            finding = Finding(
                ExceptionType.DATA_WITHOUT_PRODUCT,
                f"{len(missing)} package(s) shipped to us on {shipment.event_time.date()} not "
                f"received after {policy.business_days} business days",
                tuple(missing),
                (shipment.hash_id,),
            )
            records.append(ExceptionRecord.of(finding, moment, document_id=record.document_id))
    return await traceability.add_exceptions(records)


async def _resolve_answered(
    events: EventStore, traceability: TraceabilityStore, ours: OurParties, now: datetime
) -> list[str]:
    """Open grace-period exceptions whose data or product has arrived since: resolved."""
    resolved: list[str] = []
    for kind in (ExceptionType.PRODUCT_WITHOUT_DATA, ExceptionType.DATA_WITHOUT_PRODUCT):
        query = ExceptionFilter(type=kind, status=ExceptionStatus.OPEN, limit=1000)
        for exception in await traceability.list_exceptions(query):
            record = await events.get_event(exception.event_hashes[0], Visibility.everything())
            if record is None:
                continue
            facts = _facts(record)
            if kind is ExceptionType.PRODUCT_WITHOUT_DATA:
                missing = await _without_inbound_data(traceability, facts, ours)
                note = "inbound transaction information arrived"
            else:
                missing = await _not_received(traceability, facts, ours)
                note = "the shipped packages were received"
            if not missing:
                await traceability.add_resolution(
                    Resolution(exception.exception_id, note, "system", now)
                )
                resolved.append(exception.exception_id)
    return resolved


async def run_grace_period_checks(
    events: EventStore,
    traceability: TraceabilityStore,
    ours: OurParties,
    *,
    now: datetime | None = None,
    policy: GracePolicy = GracePolicy(),
) -> GraceReport:
    """The scheduler job: resolve what has been answered, then record what is overdue."""
    moment = now or datetime.now(UTC)
    resolved = await _resolve_answered(events, traceability, ours, moment)
    recorded = await check_product_without_data(
        events, traceability, ours, now=moment, policy=policy
    )
    recorded += await check_data_without_product(
        events, traceability, ours, now=moment, policy=policy
    )
    return GraceReport(tuple(recorded), tuple(resolved))
