"""The serial-state fold as it was before the fast path (dataclasses.replace per event), kept
as the oracle that the optimised fold in service.serial_state is compared against. One rule
was added to it since, as to the fast fold: a re-capture of the same commissioning (see
``service.serial_state.same_commissioning``) is not a duplicate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from service.containment import EventFacts, TimelineEntry
from service.exception_records import ExceptionType, Finding
from service.serial_state import TERMINAL, SerialState, Status, same_commissioning

__all__ = ["compute_state", "gtin_of"]

_SGTIN = re.compile(r"^urn:epc:id:sgtin:(\d+)\.(\d+)\.(.+)$")
_SSCC = re.compile(r"^urn:epc:id:sscc:(\d+)\.(\d+)$")
_DL_GTIN = re.compile(r"/01/(\d{14})(?:/|$)")


def gtin_of(epc: str) -> str | None:
    """The GTIN-14 of an SGTIN URN or GS1 Digital Link, else None."""
    match = _SGTIN.match(epc)
    if match:
        prefix, reference = match.group(1), match.group(2)
        body = reference[:1] + prefix + reference[1:]
        return body + _check_digit(body)
    dl = _DL_GTIN.search(epc)
    return dl.group(1) if dl else None


def _check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def _kind_of(epc: str) -> str:
    if _SGTIN.match(epc) or "/21/" in epc:
        return "sgtin"
    if _SSCC.match(epc) or "/00/" in epc:
        return "sscc"
    return "other"


_END_STEPS = {
    "dispensing": Status.DISPENSED,
    "decommissioning": Status.DECOMMISSIONED,
    "destroying": Status.DESTROYED,
}
_END_DISPOSITIONS = {
    "dispensed": Status.DISPENSED,
    "inactive": Status.DECOMMISSIONED,
    "destroyed": Status.DESTROYED,
}


def _is_commissioning(facts: EventFacts, epc: str) -> bool:
    return (
        facts.event_type == "ObjectEvent"
        and facts.action == "ADD"
        and facts.biz_step == "commissioning"
        and epc in facts.epcs
    )


class _Fold:
    """Mutable accumulator for one identifier; only :func:`compute_state` uses it."""

    def __init__(self, epc: str) -> None:
        self.state = SerialState(epc=epc, kind=_kind_of(epc), gtin=gtin_of(epc))
        self.findings: list[Finding] = []
        self.first_uncommissioned: str | None = None
        self.commissioning: EventFacts | None = None

    def step(self, entry: TimelineEntry) -> None:
        facts, epc = entry.facts, self.state.epc
        direct = not entry.inferred
        if direct and _is_commissioning(facts, epc):
            self._commission(facts)
            return
        if direct and self.state.commissioned_at is None and self.first_uncommissioned is None:
            self.first_uncommissioned = facts.hash_id
        if self.state.lifecycle in TERMINAL and direct and facts.action != "DELETE":
            self.findings.append(
                Finding(
                    ExceptionType.EVENT_AFTER_END_OF_LIFE,
                    f"{facts.biz_step or facts.event_type} on {epc}, "
                    f"which is {self.state.lifecycle.value}",
                    (epc,),
                    (facts.hash_id,),
                )
            )
        self._apply(facts)

    def _commission(self, facts: EventFacts) -> None:
        state = self.state
        if state.commissioned_at is not None:
            if self.commissioning is not None and same_commissioning(self.commissioning, facts):
                return
            differs = (facts.lot, facts.expiry) != (state.lot, state.expiry)
            kind = (
                ExceptionType.LOT_OR_EXPIRY_MISMATCH
                if differs
                else ExceptionType.DUPLICATE_COMMISSIONING
            )
            self.findings.append(
                Finding(
                    kind,
                    f"{state.epc} commissioned again (lot {facts.lot}, expiry {facts.expiry}; "
                    f"first: lot {state.lot}, expiry {state.expiry})",
                    (state.epc,),
                    (state.commissioning_event or "", facts.hash_id),
                )
            )
            return
        commissioner = facts.biz_location or facts.read_point
        self.commissioning = facts
        self.state = replace(
            state,
            lot=facts.lot,
            expiry=facts.expiry,
            commissioned_at=facts.event_time,
            commissioner=commissioner,
            commissioning_event=facts.hash_id,
            owner=state.owner or commissioner,
            custodian=state.custodian or commissioner,
            location=facts.biz_location or state.location,
            lifecycle=Status.COMMISSIONED if state.lifecycle is Status.UNKNOWN else state.lifecycle,
            last_event=facts.hash_id,
            last_event_time=facts.event_time,
        )

    def _apply(self, facts: EventFacts) -> None:
        state = self.state
        lifecycle = state.lifecycle
        owner, custodian, location = state.owner, state.custodian, state.location
        destination, shipment = state.destination, state.last_shipment
        if facts.biz_step == "shipping":
            lifecycle = Status.IN_TRANSIT
            owner = facts.destination("owning_party") or owner
            custodian = (
                facts.source("possessing_party") or facts.source("owning_party") or custodian
            )
            location = facts.source("location") or facts.read_point or location
            destination = facts.destination("location") or facts.destination("owning_party")
            shipment = facts.hash_id
        elif facts.biz_step == "receiving":
            lifecycle = Status.RECEIVED
            owner = facts.destination("owning_party") or owner
            custodian = (
                facts.destination("possessing_party")
                or facts.destination("owning_party")
                or facts.biz_location
                or custodian
            )
            location = facts.biz_location or facts.destination("location") or location
            destination = None
        elif facts.biz_location:
            location = facts.biz_location
        end = _END_STEPS.get(facts.biz_step or "") or _END_DISPOSITIONS.get(facts.disposition or "")
        if end is None and facts.event_type == "ObjectEvent" and facts.action == "DELETE":
            end = Status.DECOMMISSIONED
        if state.lifecycle in TERMINAL:
            lifecycle = state.lifecycle  # no way back from an end of life
        elif end is not None:
            lifecycle = end
        self.state = replace(
            state,
            lifecycle=lifecycle,
            owner=owner,
            custodian=custodian,
            location=location,
            destination=destination,
            last_shipment=shipment,
            recalled_in_data=state.recalled_in_data or facts.disposition == "recalled",
            last_event=facts.hash_id,
            last_event_time=facts.event_time,
        )

    def finish(self, parent: str | None, top: str | None) -> SerialState:
        state = self.state
        if state.commissioned_at is None and self.first_uncommissioned is not None:
            self.findings.append(
                Finding(
                    ExceptionType.NEVER_COMMISSIONED,
                    f"event on {state.epc}, which was never commissioned",
                    (state.epc,),
                    (self.first_uncommissioned,),
                )
            )
        if state.lifecycle in TERMINAL:
            status = state.lifecycle
        elif state.recalled_in_data:
            status = Status.RECALLED
        elif state.lifecycle is Status.IN_TRANSIT:
            status = Status.IN_TRANSIT
        elif parent is not None:
            status = Status.PACKED
        else:
            status = state.lifecycle
        return replace(state, parent=parent, top_container=top, status=status)


def compute_state(
    epc: str, entries: Sequence[TimelineEntry], parent: str | None, top: str | None
) -> tuple[SerialState, list[Finding]]:
    """The state of ``epc`` from its time-ordered timeline and its current containers."""
    fold = _Fold(epc)
    for entry in entries:
        fold.step(entry)
    state = fold.finish(parent, top)
    return state, fold.findings
