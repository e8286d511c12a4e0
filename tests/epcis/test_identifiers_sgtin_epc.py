"""``sgtin_epc`` (GTIN + serial -> the model's EPC, one stem per GTIN) agrees with the general
path: the Digital Link built and canonicalised back."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from epcis.errors import InvalidIdentifierError
from epcis.identifiers import (
    canonical,
    canonical_epc,
    digital_link_from_pairs,
    sgtin_epc,
    with_check_digit,
)

PLAIN = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._"
# Leading digits that GS1's prefix data knows (US 03..., 0614141, ...) and ones it may not.
STARTS = ("0030001", "00300", "0061414", "00000000", "0950", "04", "08", "1030001", "0977", "9")


def general(gtin: str, serial: str) -> str:
    try:
        return canonical_epc(digital_link_from_pairs((("01", gtin), ("21", serial))))
    except InvalidIdentifierError as error:
        return f"error: {type(error).__name__}"


def fast(gtin: str, serial: str) -> str:
    try:
        return sgtin_epc(gtin, serial)
    except InvalidIdentifierError as error:
        return f"error: {type(error).__name__}"


@st.composite
def gtins(draw: st.DrawFn) -> str:
    start = draw(st.sampled_from(STARTS))
    body = start + draw(st.text("0123456789", min_size=13 - len(start), max_size=13 - len(start)))
    gtin: str = with_check_digit(body)
    if draw(st.integers(0, 9)) == 0:
        # A wrong check digit, or a GTIN of the wrong length.
        gtin = draw(st.sampled_from([gtin[:-1] + str((int(gtin[-1]) + 1) % 10), gtin[1:]]))
    return gtin


serials = st.one_of(
    st.text(PLAIN, min_size=0, max_size=22),
    st.text(PLAIN + "!'()*+,:;=%/ \"#?&<>é\x00", min_size=0, max_size=22),
)


@settings(max_examples=400, deadline=None)
@given(gtins(), serials)
@example("00300012000016", ".")
@example("00300012000016", "..")
@example("00300012000016", "a.b")
@example("00300012000016", "")
@example("00300012000016", "A" * 21)
def test_sgtin_epc_equals_the_general_path(gtin: str, serial: str) -> None:
    assert fast(gtin, serial) == general(gtin, serial)
    # A second call answers from the GTIN's cached stem, still the same.
    assert fast(gtin, serial) == general(gtin, serial)


def test_known_prefix_gives_the_urn_and_unknown_the_digital_link() -> None:
    gtin = with_check_digit("0030001200001")
    assert sgtin_epc(gtin, "ABC-1") == "urn:epc:id:sgtin:030001.0200001.ABC-1"
    hits = canonical._sgtin_stem.cache_info().hits
    assert sgtin_epc(gtin, "XYZ.2") == "urn:epc:id:sgtin:030001.0200001.XYZ.2"
    assert canonical._sgtin_stem.cache_info().hits == hits + 1
    assert sgtin_epc(gtin, "a/b") == general(gtin, "a/b")
    with pytest.raises(InvalidIdentifierError):
        sgtin_epc(gtin[:-1] + str((int(gtin[-1]) + 1) % 10), "ABC")
