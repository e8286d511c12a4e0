"""Generated EPCIS 1.2 documents of any size, built from the project's DSCSA shipment fixture."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPMENT = ROOT / "fixtures" / "epcis" / "dscsa-shipment-1.2.xml"

_FIRST_EVENT_START = b"      <ObjectEvent>"
_FIRST_EVENT_END = b"      </ObjectEvent>\n"
_EPC_LIST = b"<epcList>"
_ACTION = b"<action>ADD</action>"

__all__ = ["SHIPMENT", "shipment_with_commissionings"]


def shipment_with_commissionings(
    extra: int, *, wrong_order_at: int | None = None, no_action_at: int | None = None
) -> bytes:
    """The shipment fixture with ``extra`` more commissioning events (two fresh serials each)
    after its own first event, so it holds ``extra + 3`` events with distinct hashes.

    ``wrong_order_at`` puts the action before the EPC list in that extra event (the reader
    accepts it, the XSD does not); ``no_action_at`` leaves the action out (both refuse it).
    """
    data = SHIPMENT.read_bytes()
    start = data.index(_FIRST_EVENT_START)
    end = data.index(_FIRST_EVENT_END, start) + len(_FIRST_EVENT_END)
    template = data[start:end]
    copies = []
    for n in range(extra):
        event = template.replace(b".1001<", f".{200_000 + 2 * n}<".encode()).replace(
            b".1002<", f".{200_001 + 2 * n}<".encode()
        )
        if n == wrong_order_at:
            event = event.replace(_ACTION, b"").replace(_EPC_LIST, _ACTION + _EPC_LIST)
        if n == no_action_at:
            event = event.replace(_ACTION, b"")
        copies.append(event)
    return data[:end] + b"".join(copies) + data[end:]
