"""The responder's decision table: what a serial's recorded facts answer to a verification.

Precedence, first match wins for ``verified`` and the failure reason:

1. serial unknown -> false, ``No_match_GTIN_Serial`` (nothing else is looked at)
2. lot and/or expiry differ -> false, ``No_match_GTIN_Serial_Lot`` / ``_Expiry`` /
   ``_Lot_Expiry`` (the package is not what was commissioned under that serial)
3. illegitimate, decommissioned, destroyed or dispensed -> false, ``Not_for_re-distribution``
4. otherwise -> true

``additionalInfo`` carries at most one value (the message has one field), for matched serials
only, in this order: ``Illegitimate``, ``Recalled``, ``Suspect`` (suspect or quarantined),
``Expired``. So a recalled and expired package answers ``Recalled``, and a dispensed package
that is also recalled answers false with ``Recalled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from verification.messages import AdditionalInfo, FailureReason

__all__ = ["Decision", "DecisionInput", "SerialFacts", "decide"]


@dataclass(frozen=True, slots=True)
class SerialFacts:
    """What we recorded about one serial: commissioning data and status flags."""

    lot: str | None
    expiry: date | None
    decommissioned: bool = False
    destroyed: bool = False
    dispensed: bool = False
    recalled: bool = False
    suspect: bool = False
    quarantined: bool = False
    illegitimate: bool = False

    @property
    def ended(self) -> bool:
        return self.decommissioned or self.destroyed or self.dispensed


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """The requested lot and expiry (as a calendar date), what we know, and today's date."""

    lot: str
    expiry: date
    found: SerialFacts | None
    today: date


@dataclass(frozen=True, slots=True)
class Decision:
    verified: bool
    reason: FailureReason | None = None
    info: AdditionalInfo | None = None


_MISMATCH = {
    (True, False): FailureReason.NO_MATCH_LOT,
    (False, True): FailureReason.NO_MATCH_EXPIRY,
    (True, True): FailureReason.NO_MATCH_LOT_EXPIRY,
}


def _mismatch(query: DecisionInput, found: SerialFacts) -> FailureReason | None:
    # A value we never recorded cannot be confirmed, so it counts as not matching.
    lot_differs = found.lot is None or found.lot != query.lot
    expiry_differs = found.expiry is None or found.expiry != query.expiry
    return _MISMATCH.get((lot_differs, expiry_differs))


def _info(query: DecisionInput, found: SerialFacts) -> AdditionalInfo | None:
    if found.illegitimate:
        return AdditionalInfo.ILLEGITIMATE
    if found.recalled:
        return AdditionalInfo.RECALLED
    if found.suspect or found.quarantined:
        return AdditionalInfo.SUSPECT
    if found.expiry is not None and found.expiry < query.today:
        return AdditionalInfo.EXPIRED
    return None


def decide(query: DecisionInput) -> Decision:
    """The answer for one request; see the module docstring for the precedence."""
    found = query.found
    if found is None:
        return Decision(False, FailureReason.NO_MATCH_GTIN_SERIAL)
    mismatch = _mismatch(query, found)
    if mismatch is not None:
        return Decision(False, mismatch)
    info = _info(query, found)
    if found.illegitimate or found.ended:
        return Decision(False, FailureReason.NOT_FOR_REDISTRIBUTION, info)
    return Decision(True, None, info)
