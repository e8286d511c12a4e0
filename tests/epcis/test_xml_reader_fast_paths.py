"""The XML reader's fast paths against the slow ones they stand for.

Models are built without validation, EPC lists of plain SGTINs are checked in one match, and
repeated values (CBV words, EPCs, times) come from bounded caches. Each is compared here with
what it replaces: ``model_construct`` and full validation, ``canonical_epc`` one EPC at a
time, and uncached parsing.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel, ValidationError

from epcis import xml_reader
from epcis.errors import EPCISError, InvalidDocumentError, InvalidIdentifierError
from epcis.identifiers import canonical_epc
from epcis.model import DocumentFormat, DocumentHead, EPCISDocument, ObjectEvent, XmlElement
from epcis.reading import ReadLimits, iter_document, read_document
from epcis.writing import document_bytes
from tests.epcis.strategies import documents_heads, events

FIXTURES = Path(__file__).parents[2] / "fixtures" / "epcis"
DATA = Path("/work/shared/reference/data")
_PATTERNS = (
    "gs1-epcis/XSL/1.2/XML/*.xml",
    "gs1-epcis/XML/**/*.xml",
    "openepcis-test-resources/1.2/**/XML/**/*.xml",
    "openepcis-test-resources/2.0/**/XML/**/*.xml",
    "event-hash-vectors/tests/examples/*.xml",
)
CORPUS = sorted(FIXTURES.glob("*.xml")) + (
    sorted({p for pattern in _PATTERNS for p in DATA.glob(pattern)}) if DATA.is_dir() else []
)


def _models(value: Any) -> list[BaseModel]:
    """Every model in a value, depth first."""
    found: list[BaseModel] = []
    if isinstance(value, BaseModel):
        found.append(value)
        for name in type(value).model_fields:
            found.extend(_models(getattr(value, name)))
    elif isinstance(value, tuple | list):
        for item in value:
            found.extend(_models(item))
    return found


def _assert_like_constructed_and_validated(model: BaseModel) -> None:
    """A fast-built model behaves as ``model_construct`` and full validation would make it."""
    given_fields = {name: getattr(model, name) for name in model.model_fields_set}
    constructed = type(model).model_construct(**given_fields)
    assert model == constructed
    assert model.model_fields_set == constructed.model_fields_set
    assert model.__dict__ == constructed.__dict__
    assert model.__pydantic_extra__ is None
    assert model.__pydantic_private__ is None
    assert model.model_dump(exclude_unset=True) == constructed.model_dump(exclude_unset=True)
    validated = type(model).model_validate(model.model_dump())
    assert model == validated
    assert list(model.__dict__) == list(validated.__dict__)  # so repr and JSON key order agree
    assert model.model_dump() == validated.model_dump()
    assert model.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
    with pytest.raises(ValidationError):
        setattr(model, next(iter(type(model).model_fields)), None)  # frozen


def _read_all(data: bytes) -> list[Any]:
    items: list[Any] = list(iter_document(data))
    items.append(read_document(data).head)  # with document-level extensions
    return items


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_models_built_from_corpus_files_match_construct_and_validation(path: Path) -> None:
    try:
        items = _read_all(path.read_bytes())
    except EPCISError:
        # A file the reader refuses (test_xml_corpus checks which and why) builds no models;
        # refusing it cleanly, with a domain error, is all there is to check here.
        return
    models = _models(items)
    assert models
    for model in models:
        _assert_like_constructed_and_validated(model)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.sampled_from([DocumentFormat.XML_1_2, DocumentFormat.XML_2_0]).flatmap(documents_heads),
    generated=st.lists(events(), min_size=1, max_size=4),
)
def test_models_built_from_generated_events_match_construct_and_validation(
    head: DocumentHead, generated: list[Any]
) -> None:
    data = document_bytes(EPCISDocument(head=head, events=tuple(generated)), head.format)
    models = _models(_read_all(data))
    assert len([m for m in models if m.__class__.__name__.endswith("Event")]) >= len(generated)
    for model in models:
        _assert_like_constructed_and_validated(model)


# --- EPC lists ---------------------------------------------------------------------------

_SGTIN_PARTS = st.tuples(
    st.integers(min_value=4, max_value=14),  # company prefix length, 6-12 valid
    st.text(alphabet="0123456789", min_size=14, max_size=14),
    st.text(alphabet="0123456789AZaz-%./ \n\t\u0661\u00b2é", min_size=0, max_size=22),
)


@st.composite
def _epc_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["plain", "plain", "near", "other", "padded"]))
    gcp_length, digits, serial = draw(_SGTIN_PARTS)
    if kind == "plain":
        length = min(max(gcp_length, 6), 12)
        plain_serial = draw(st.from_regex(r"[0-9A-Za-z]{1,20}", fullmatch=True))
        return f"urn:epc:id:sgtin:{digits[:length]}.{digits[length:13]}.{plain_serial}"
    if kind == "near":
        item_end = draw(st.integers(min_value=gcp_length, max_value=14))
        return f"urn:epc:id:sgtin:{digits[:gcp_length]}.{digits[gcp_length:item_end]}.{serial}"
    if kind == "padded":
        return f"  urn:epc:id:sgtin:{digits[:7]}.{digits[7:13]}.{serial or '1'}\n"
    return draw(
        st.sampled_from(
            [
                "urn:epc:id:sscc:0614141.1234567890",
                "https://id.gs1.org/01/09521101530001/21/ABC",
                "urn:epc:id:sgtin:0614141.812345.6789%2F",
                "urn:example:thing:1",
                "",
                "urn:epc:id:sgtin:0614141.812345.1\nurn:epc:id:sgtin:0614141.812345.2",
            ]
        )
    )


def _epc_list_element(texts: list[str], extra: str = "") -> etree._Element:
    children = "".join(f"<epc>{escape(text)}</epc>" for text in texts)
    return etree.fromstring(f"<epcList>{children}{extra}</epcList>")


def _outcome(convert: Any, element: etree._Element) -> Any:
    ctx = xml_reader._Context("test", ReadLimits(max_text_length=400))
    try:
        return convert(element, ctx)
    except xml_reader._ContentError as error:
        return ("error", error.reason, error.element.sourceline)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_epc_texts(), max_size=6), extra=st.sampled_from(["", "<!-- c -->"]))
def test_epc_list_fast_path_agrees_with_one_by_one(texts: list[str], extra: str) -> None:
    element = _epc_list_element(texts, extra)
    fast = _outcome(xml_reader._epc_list, element)
    assert fast == _outcome(xml_reader._epc_list_one_by_one, element)
    if not isinstance(fast, tuple) or fast[:1] == ("error",):
        return
    for text, value in zip(texts, fast, strict=True):
        assert value == canonical_epc(text.strip())


@settings(max_examples=300, deadline=None)
@given(parts=_SGTIN_PARTS)
def test_plain_sgtin_pattern_only_matches_what_canonical_epc_keeps(
    parts: tuple[int, str, str],
) -> None:
    gcp_length, digits, serial = parts
    for item_end in (13, gcp_length + 1, 14):
        text = f"urn:epc:id:sgtin:{digits[:gcp_length]}.{digits[gcp_length:item_end]}.{serial}"
        if xml_reader._PLAIN_SGTINS.fullmatch(text):
            assert canonical_epc(text) == text


def test_epc_list_with_a_foreign_child_or_a_blank_epc_is_refused_as_before() -> None:
    good = "urn:epc:id:sgtin:0614141.812345.1"
    for element, words in (
        (_epc_list_element([good], "<other>x</other>"), "unexpected element other"),
        (_epc_list_element([good, ""]), "epc is empty"),
        (_epc_list_element([good, "urn:epc:id:sgtin:0614141.81234.1"]), "invalid identifier"),
    ):
        outcome = _outcome(xml_reader._epc_list, element)
        assert outcome[0] == "error"
        assert words in outcome[1]


def test_nested_epc_is_not_read_as_a_value() -> None:
    element = etree.fromstring(
        "<epcList><epc><epc>urn:epc:id:sgtin:0614141.812345.1</epc></epc></epcList>"
    )
    assert _outcome(xml_reader._epc_list, element) == ("error", "epc is empty", 1)


# --- cached values -----------------------------------------------------------------------

_DOC = """<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1" schemaVersion="1.2"
 creationDate="2024-01-01T00:00:00Z"><EPCISBody><EventList>{events}</EventList></EPCISBody>
</epcis:EPCISDocument>"""
_EVENT = """<ObjectEvent><eventTime>{time}</eventTime><eventTimeZoneOffset>{offset}
</eventTimeZoneOffset><epcList><epc>{epc}</epc></epcList><action>ADD</action>
<bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep></ObjectEvent>"""


def _events_of(*specs: tuple[str, str, str]) -> list[ObjectEvent]:
    body = "".join(_EVENT.format(time=t, offset=o, epc=e) for t, o, e in specs)
    items = list(iter_document(io.BytesIO(_DOC.format(events=body).encode())))
    return [item for item in items if isinstance(item, ObjectEvent)]


def test_zoneless_time_takes_each_events_own_offset_when_cached() -> None:
    epc = "urn:epc:id:sgtin:0614141.812345.1"
    first, second = _events_of(
        ("2024-05-01T10:00:00", "-05:00", epc), ("2024-05-01T10:00:00", "+02:00", epc)
    )
    assert first.event_time.utcoffset() == timedelta(hours=-5)
    assert second.event_time.utcoffset() == timedelta(hours=2)
    assert second.event_time - first.event_time == timedelta(hours=-7)


def test_a_bad_value_after_good_ones_is_still_located() -> None:
    epc = "urn:epc:id:sgtin:0614141.812345.1"
    good = ("2024-05-01T10:00:00Z", "+00:00", epc)
    _events_of(good)  # fills the caches
    cases = [
        (("2024-05-01T10:00:00Z", "+00:00", "urn:epc:id:sgtin:0614141.81234.1"), "invalid id"),
        (("2024-05-01T25:00:00Z", "+00:00", epc), "not an xsd:dateTime"),
        (("2024-05-01T10:00:00Z", "+15:00", epc), "invalid eventTimeZoneOffset"),
    ]
    for bad, words in cases:
        with pytest.raises(InvalidDocumentError) as caught:
            _events_of(good, bad)
        problem = caught.value.problems[0]
        assert words in problem.reason
        assert problem.path is not None
        assert "ObjectEvent[2]" in problem.path


def test_cached_epc_conversion_still_refuses_invalid_identifiers() -> None:
    bad = "urn:epc:id:sscc:0614141.12345678901"
    for _ in range(2):  # exceptions are never cached as values
        with pytest.raises(InvalidIdentifierError):
            xml_reader._canonical_epc(bad)


def test_xml_elements_keep_attributes_apart() -> None:
    element = etree.fromstring('<x:a xmlns:x="urn:x" x:b="1" c="2"><d/>t</x:a>')
    ctx_limits = ReadLimits()
    first = xml_reader.xml_element(element, ctx_limits)
    second = xml_reader.xml_element(element, ctx_limits)
    assert (
        first
        == second
        == XmlElement(
            namespace="urn:x",
            name="a",
            attributes={"{urn:x}b": "1", "c": "2"},
            children=(XmlElement(name="d"),),
        )
    )
    assert first.attributes is not second.attributes
