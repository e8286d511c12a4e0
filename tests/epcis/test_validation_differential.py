"""Our XSDs against GS1's: every public example must get the same verdict from both."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from epcis.validation import SCHEMA_FILES, validate_xml

_DTD_REFUSED = "document type declarations (DTD, entities, external references) are refused"

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "data"
GS1 = REFERENCE / "gs1-epcis"
OPENEPCIS = REFERENCE / "openepcis-test-resources"

_OFFICIAL_XSD = {
    "urn:epcglobal:epcis:xsd:1": GS1 / "XSL/1.2/XSD/EPCglobal-epcis-1_2.xsd",
    "urn:epcglobal:epcis-masterdata:xsd:1": GS1 / "XSL/1.2/XSD/EPCglobal-epcis-masterdata-1_2.xsd",
    "urn:epcglobal:epcis-query:xsd:1": GS1 / "XSL/1.2/XSD/EPCglobal-epcis-query-1_2.xsd",
    "urn:epcglobal:epcis:xsd:2": GS1 / "XSD/EPCglobal-epcis-2_0.xsd",
    "urn:epcglobal:epcis-masterdata:xsd:2": GS1 / "XSD/EPCglobal-epcis-masterdata-2_0.xsd",
    "urn:epcglobal:epcis-query:xsd:2": GS1 / "XSD/EPCglobal-epcis-query-2_0.xsd",
}

# Files on which we deliberately disagree with GS1's XSDs, and why. Keep this short.
DELIBERATE: dict[str, str] = {}

# One rule rather than a list of files: we refuse every document type declaration, even the
# bare <!DOCTYPE project> some GS1 examples carry, because a DTD is how entity expansion and
# external references get in. For those files the schema verdict is compared on the same
# document without its (bare) declaration.
_BARE_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*>")


def _corpus() -> list[Path]:
    if not REFERENCE.is_dir():
        return []
    files = [
        *sorted((GS1 / "XSL/1.2/XML").glob("*.xml")),
        *sorted((GS1 / "XML").rglob("*.xml")),
    ]
    for version in ("1.2", "2.0"):
        for kind in ("Documents", "Events", "Invalid"):
            files += sorted((OPENEPCIS / version / "EPCIS/XML/Capture" / kind).glob("*.xml"))
    return files


def _test_id(path: Path) -> str:
    return str(path.relative_to(REFERENCE))


CORPUS = _corpus()


@cache
def _official(namespace: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(_OFFICIAL_XSD[namespace])))


def _official_verdict(path: Path) -> bool:
    """GS1's verdict; a root no official schema declares is not a valid EPCIS document."""
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    namespace = etree.QName(tree.getroot()).namespace or ""
    if namespace not in _OFFICIAL_XSD:
        return False
    return bool(_official(namespace).validate(tree))


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference corpus absent: {REFERENCE}")
def test_corpus_is_present_and_large() -> None:
    assert len(CORPUS) > 100
    assert set(_OFFICIAL_XSD) == set(SCHEMA_FILES)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference corpus absent: {REFERENCE}")
@pytest.mark.parametrize("path", CORPUS, ids=_test_id)
def test_same_verdict_as_the_official_xsd(path: Path) -> None:
    ours = validate_xml(path, source_name=path.name)
    official = _official_verdict(path)
    data = path.read_bytes()
    if _BARE_DOCTYPE.search(data):
        assert [problem.reason for problem in ours] == [_DTD_REFUSED]
        ours = validate_xml(_BARE_DOCTYPE.sub(b"", data, count=1), source_name=path.name)
    if _test_id(path) in DELIBERATE:
        assert (not ours) != official, DELIBERATE[_test_id(path)]
        return
    assert (not ours) == official, [str(problem) for problem in ours]
    for problem in ours:
        assert problem.source == path.name
        assert problem.reason
