"""The event hash's leaf values are the same with the shared, remembered EPC shortcut first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from epcis import event_hash
from epcis.errors import InvalidIdentifierError
from epcis.identifiers import to_digital_link
from epcis.identifiers.canonical import plain_digital_link


def _previous_value(text: str) -> str:
    """event_hash._value's identifier branch before the shared shortcut."""
    fast = event_hash._fast_digital_link(text)
    if fast is not None:
        return fast
    try:
        return to_digital_link(text)
    except (InvalidIdentifierError, ValueError):
        return text


_digits = st.text(alphabet="0123456789", min_size=1, max_size=14) | st.text(
    alphabet="0123456789\u0663", min_size=1, max_size=14
)
_serials = st.text(alphabet="0123456789AZaz-._%2F", min_size=0, max_size=22)


@st.composite
def _urns(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["sgtin", "sscc", "sgln", "giai"]))
    company, middle = draw(_digits), draw(_digits)
    if scheme == "sscc":
        return f"urn:epc:id:sscc:{company}.{middle}"
    return f"urn:epc:id:{scheme}:{company}.{middle}.{draw(_serials)}"


@st.composite
def _plausible_urns(draw: st.DrawFn) -> str:
    # Right lengths, so that the shortcuts do answer.
    prefix_length = draw(st.integers(min_value=4, max_value=13))
    company = draw(st.text(alphabet="0123456789", min_size=prefix_length, max_size=prefix_length))
    if draw(st.booleans()):
        size = max(0, 13 - prefix_length)
        item = draw(st.text(alphabet="0123456789", min_size=size, max_size=size))
        return f"urn:epc:id:sgtin:{company}.{item}.{draw(_serials)}"
    size = max(0, 17 - prefix_length)
    reference = draw(st.text(alphabet="0123456789", min_size=size, max_size=size))
    return f"urn:epc:id:sscc:{company}.{reference}"


@settings(max_examples=300, deadline=None)
@given(_urns() | _plausible_urns())
def test_hash_values_are_what_they_were_before_the_shared_shortcut(urn: str) -> None:
    event_hash._value.cache_clear()
    assert event_hash._value(urn) == _previous_value(urn)
    shared = plain_digital_link(urn)
    assert shared is None or shared == to_digital_link(urn)


def test_the_shared_shortcut_remembers_and_declines() -> None:
    urn = "urn:epc:id:sgtin:0614141.107346.2017"
    assert plain_digital_link(urn) == "https://id.gs1.org/01/10614141073464/21/2017"
    assert plain_digital_link(urn) is plain_digital_link(urn)
    assert plain_digital_link("urn:epc:id:sgln:0614141.07346.0") is None
    assert event_hash._value("urn:epc:id:sgln:0614141.07346.0") == (
        "https://id.gs1.org/414/0614141073467"
    )
