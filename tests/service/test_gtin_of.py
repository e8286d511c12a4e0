"""gtin_of's remembered URN stems answer what matching each URN answers."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from service.serial_state import _kind_and_gtin, _kind_of, gtin_of

_SGTIN = re.compile(r"^urn:epc:id:sgtin:(\d+)\.(\d+)\.(.+)$")
_DL_GTIN = re.compile(r"/01/(\d{14})(?:/|$)")


def _reference(epc: str) -> str | None:
    """gtin_of as it was: the regular expressions on every call."""
    match = _SGTIN.match(epc)
    if match:
        body = match.group(2)[:1] + match.group(1) + match.group(2)[1:]
        total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
        return body + str((10 - total % 10) % 10)
    dl = _DL_GTIN.search(epc)
    return dl.group(1) if dl else None


_STEMS = ["urn:epc:id:sgtin:0300011.012345", "urn:epc:id:sgtin:030001.0012345", "urn:epc:id:sgtin:"]
_SERIALS = st.text(alphabet="0123456789.aZ\n-/", max_size=8)


@settings(max_examples=300)
@given(st.sampled_from(_STEMS), _SERIALS, _SERIALS)
def test_remembered_stems_agree_with_matching(stem: str, first: str, second: str) -> None:
    # The first URN teaches its stem; the second, of the same stem, is answered from it.
    for epc in (f"{stem}.{first}", f"{stem}.{second}", f"{stem}{second}"):
        assert gtin_of(epc) == _reference(epc), epc
        kind, gtin = _kind_and_gtin(epc)
        assert (kind, gtin) == (_kind_of(epc), _reference(epc)), epc


def test_known_values() -> None:
    assert gtin_of("urn:epc:id:sgtin:0300011.012345.190") == "00300011123454"
    assert gtin_of("urn:epc:id:sgtin:0300011.012345.19.0") == "00300011123454"
    assert gtin_of("urn:epc:id:sgtin:0300011.012345.") is None
    assert gtin_of("https://id.gs1.org/01/09506000134352/21/abc") == "09506000134352"
    assert gtin_of("urn:epc:id:sscc:0300011.0000000001") is None
