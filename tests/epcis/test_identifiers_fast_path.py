"""The shortcut for common SGTIN and SSCC URNs agrees with the general conversion."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from epcis.identifiers import canonical
from epcis.identifiers.digital_link import digital_link_from_pairs

PLAIN = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._"


@st.composite
def urns(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=6, max_value=12))
    company = draw(st.text("0123456789", min_size=length, max_size=length))
    if draw(st.booleans()):
        item = draw(st.text("0123456789", min_size=13 - length, max_size=13 - length))
        serial = draw(st.text(PLAIN + "!'()*+,:;=", min_size=1, max_size=20))
        return f"urn:epc:id:sgtin:{company}.{item}.{serial}"
    reference = draw(st.text("0123456789", min_size=17 - length, max_size=17 - length))
    return f"urn:epc:id:sscc:{company}.{reference}"


@settings(max_examples=300, deadline=None)
@given(urns())
def test_shortcut_equals_general_path(urn: str) -> None:
    pairs = canonical.gs1_key_pairs(urn)
    assert pairs is not None
    general = digital_link_from_pairs(pairs)
    shortcut = canonical._fast_digital_link(urn)
    assert shortcut in (None, general)
    assert canonical.epc_match_key(urn) == general


def test_shortcut_declines_what_it_does_not_know() -> None:
    assert canonical._fast_digital_link("urn:epc:id:sgtin:0614141.107346.a%2Fb") is None
    assert canonical._fast_digital_link("urn:epc:id:sgln:0614141.07346.0") is None
    assert canonical._fast_digital_link("urn:epc:id:sgtin:0614141.10734.1") is None
