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
    sgtin_spellings,
    with_check_digit,
)
from epcis.query import identifier_key

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


@settings(max_examples=200, deadline=None)
@given(gtins(), st.text(PLAIN, min_size=1, max_size=20))
@example("00300011123454", "10")
def test_every_spelling_names_the_same_gtin_and_serial(gtin: str, serial: str) -> None:
    try:
        spellings = sgtin_spellings(gtin, serial)
    except InvalidIdentifierError:
        assert fast(gtin, serial).startswith("error")
        return
    assert spellings[0] == sgtin_epc(gtin, serial)
    assert len(set(spellings)) == len(spellings)
    assert {identifier_key(spelling) for spelling in spellings} == {identifier_key(spellings[0])}
    urns = [s for s in spellings if s.startswith("urn:epc:id:sgtin:")]
    # One URN per company prefix length from 6 to 12 digits.
    assert sorted(len(urn.split(":")[-1].split(".")[0]) for urn in urns) == list(range(6, 13))


def test_a_seven_digit_ndc_prefix_is_among_the_spellings() -> None:
    assert sgtin_spellings("00300011123454", "10")[:2] == (
        "urn:epc:id:sgtin:030001.0112345.10",  # GS1's prefix table
        "urn:epc:id:sgtin:0300011.012345.10",  # '03' and a 5-digit labeler code
    )


@settings(max_examples=200, deadline=None)
@given(gtins(), st.one_of(st.text(PLAIN, min_size=1, max_size=22), st.text(min_size=1, max_size=8)))
@example("00300011123454", "10")
@example("00300011123454", "A" * 20)
@example("00300011123454", "A" * 21)
def test_spellings_from_stems_equal_the_spellings_built_one_by_one(gtin: str, serial: str) -> None:
    try:
        first = sgtin_epc(gtin, serial)
    except InvalidIdentifierError:
        with pytest.raises(InvalidIdentifierError):
            sgtin_spellings.__wrapped__(gtin, serial)
        return
    built = canonical._sgtin_spellings_general(first, gtin.zfill(14), serial)
    assert sgtin_spellings.__wrapped__(gtin, serial) == built
