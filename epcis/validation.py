"""Schema validation of EPCIS documents: our XSDs for 1.2 and 2.0 XML, our JSON schema for 2.0.

XML is validated in two passes. The fast pass streams the document through an lxml parser
that validates as it parses and drops each element once it is closed, so a valid document of
any size costs little memory. Only when that pass fails is the document parsed into a tree and
validated again, because libxml2 reports the line and element path of an error only against a
tree. Where libxml2's wording is poor (an element ended before a required child), the reason
comes from xmlschema instead, which knows which child was required.

Every parser here is configured never to load a DTD, resolve an entity or touch the network,
and a document that carries a document type declaration is refused unread.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from epcis.errors import Problem

__all__ = [
    "MAX_PROBLEMS",
    "SCHEMA_FILES",
    "XmlSchemaValidator",
    "problems_from_error_log",
    "schema_dir",
    "validate_jsonld",
    "validate_xml",
    "validator_for",
]

EPCIS_1_NS = "urn:epcglobal:epcis:xsd:1"
EPCIS_2_NS = "urn:epcglobal:epcis:xsd:2"

#: Which of our schema files validates a document, by the namespace of its root element.
SCHEMA_FILES: dict[str, str] = {
    EPCIS_1_NS: "epcis-1.2.xsd",
    "urn:epcglobal:epcis-masterdata:xsd:1": "epcis-masterdata-1.2.xsd",
    "urn:epcglobal:epcis-query:xsd:1": "epcis-query-1.2.xsd",
    EPCIS_2_NS: "epcis-2.0.xsd",
    "urn:epcglobal:epcis-masterdata:xsd:2": "epcis-masterdata-2.0.xsd",
    "urn:epcglobal:epcis-query:xsd:2": "epcis-query-2.0.xsd",
}

#: A document with more problems than this is reported with the first ones only.
MAX_PROBLEMS = 100

# xmlschema builds a Python object per element; above this size it would cost more than the
# better wording is worth, and libxml2's messages are used as they are.
_XMLSCHEMA_MAX_BYTES = 8 << 20
_CHUNK = 1 << 16
_SNIFF_SLICE = 512

_SAFE_PARSING: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
}

# The elements a document has many of. Freeing them (not every element) once closed keeps the
# streaming pass's memory flat without a Python call per element.
_BULKY_ELEMENTS = [
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
    "QuantityEvent",
    "VocabularyElement",
]

# libxml2 reports any line past this one as 65535 once a tree has been validated; such a line
# is left out (the element path still locates the problem exactly).
_LAST_EXACT_LINE = 65534

_DTD_REFUSED = "document type declarations (DTD, entities, external references) are refused"


def schema_dir() -> Path:
    """The folder holding our XSD and JSON schema files.

    ``epcis/schemas/`` in an installed wheel (setup.py copies them there), else ``schemas/`` at
    the repository root (a checkout or an editable install).
    """
    packaged = Path(__file__).resolve().parent / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "schemas"


def _safe_parser(**extra: Any) -> etree.XMLParser:
    return etree.XMLParser(**_SAFE_PARSING, **extra)


class XmlSchemaValidator:
    """One of our XSDs, compiled once, validating documents whose root it declares."""

    def __init__(self, schema_file: Path) -> None:
        self.schema_file = schema_file
        # Our own files, but still parsed without network: their imports are relative paths.
        self._schema = etree.XMLSchema(etree.parse(str(schema_file), _safe_parser()))
        self._xmlschema: Any = None

    @property
    def schema(self) -> etree.XMLSchema:
        """The compiled schema, for a reader that validates in its own parse (``iterparse``
        takes ``schema=``): that spares the second parse :func:`validate_xml` makes."""
        return self._schema

    def is_valid_stream(self, chunks: Iterator[bytes]) -> bool:
        """Validate while parsing, keeping only the open elements; True when valid."""
        parser = etree.XMLPullParser(
            events=("end",), tag=_BULKY_ELEMENTS, schema=self._schema, **_SAFE_PARSING
        )
        try:
            for chunk in chunks:
                parser.feed(chunk)
                _drop_closed(parser)
            parser.close()
        except etree.XMLSyntaxError:
            return False
        return True

    def problems_in_tree(self, tree: etree._ElementTree, source: str | None) -> list[Problem]:
        """Located problems of a parsed document (empty when it is valid)."""
        if self._schema.validate(tree):
            return []
        return [
            Problem(_tidy(entry.message), source=source, line=_exact(entry.line), path=entry.path)
            for entry in _entries(self._schema.error_log)
        ]

    def better_reasons(self, tree: etree._ElementTree) -> dict[int, str]:
        """xmlschema's reasons for incomplete content, keyed by the line of the element."""
        reasons: dict[int, str] = {}
        for error in self._load_xmlschema().iter_errors(tree, use_location_hints=False):
            line = getattr(error.elem, "sourceline", None)
            reason = error.reason or ""
            if line is not None and "not complete" in reason:
                reasons.setdefault(line, reason)
            if len(reasons) >= MAX_PROBLEMS:
                break
        return reasons

    def _load_xmlschema(self) -> Any:
        if self._xmlschema is None:
            import xmlschema  # Loaded on the first invalid document only: it takes ~0.5 s.

            self._xmlschema = xmlschema.XMLSchema10(
                str(self.schema_file), allow="local", defuse="always"
            )
        return self._xmlschema


@cache
def validator_for(namespace: str) -> XmlSchemaValidator | None:
    """The validator for documents whose root element is in ``namespace``; loaded once."""
    name = SCHEMA_FILES.get(namespace)
    return None if name is None else XmlSchemaValidator(schema_dir() / name)


def validate_xml(
    source: bytes | BinaryIO | str | Path, *, source_name: str | None = None
) -> list[Problem]:
    """Problems of an EPCIS XML document against our schema; empty when it is valid.

    ``source`` is the document's bytes, a binary stream or a file path. The schema is chosen
    from the namespace of the root element (EPCIS 1.2 or 2.0 event, master-data or query
    document). ``source_name`` names the input in the problems (defaults to the path).
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as stream:
            return _validate_stream(stream, source_name or str(source))
    if isinstance(source, bytes):
        return _validate_stream(io.BytesIO(source), source_name)
    return _validate_stream(source, source_name)


def _validate_stream(stream: BinaryIO, source: str | None) -> list[Problem]:
    replay = _Replay(stream)
    root, refusal = _read_root(replay, source)
    if refusal is not None:
        return [refusal]
    assert root is not None
    namespace = etree.QName(root).namespace or ""
    validator = validator_for(namespace)
    if validator is None:
        return [_not_epcis(root, source)]
    if validator.is_valid_stream(replay.all_chunks()):
        return []
    return _locate_problems(validator, replay.all_bytes(), source)


def _read_root(replay: _Replay, source: str | None) -> tuple[Any, Problem | None]:
    """Parse up to the root start tag; the root, or the problem that stops us there."""
    parser = etree.XMLPullParser(events=("start",), **_SAFE_PARSING)
    try:
        for chunk in replay.new_chunks():
            # Fed in small slices so that a DTD is seen at the root start tag, before the
            # parser meets any entity reference in the content.
            for offset in range(0, len(chunk), _SNIFF_SLICE):
                parser.feed(chunk[offset : offset + _SNIFF_SLICE])
                for _event, element in _read_elements(parser):
                    if element.getroottree().docinfo.doctype:  # type: ignore[attr-defined]
                        return None, Problem(_DTD_REFUSED, source=source, line=1)
                    return element, None
        parser.close()
    except etree.XMLSyntaxError as error:
        return None, _syntax_problem(error, source)
    return None, Problem("not XML: no root element", source=source)


def problems_from_error_log(entries: Iterable[Any], source: str | None) -> list[Problem]:
    """Problems from libxml2 log entries of a streaming validation (lines where it gave one).

    A reader that validates in its own parse uses these when it cannot read the document a
    second time for :func:`validate_xml`'s located problems.
    """
    return [
        Problem(_tidy(entry.message), source=source, line=_exact(entry.line), path=entry.path)
        for entry in list(entries)[:MAX_PROBLEMS]
    ]


def _locate_problems(
    validator: XmlSchemaValidator, data: bytes, source: str | None
) -> list[Problem]:
    try:
        # parse() rather than fromstring(): only the former records lines past 65535.
        tree = etree.parse(io.BytesIO(data), _safe_parser())
    except etree.XMLSyntaxError as error:
        return [_syntax_problem(error, source)]
    problems = validator.problems_in_tree(tree, source)
    if not problems:
        # The streaming pass refused what the tree pass accepts: report it rather than hide it.
        return [Problem("document refused by the streaming schema validation", source=source)]
    if len(data) <= _XMLSCHEMA_MAX_BYTES and any(_INCOMPLETE in p.reason for p in problems):
        reasons = validator.better_reasons(tree)
        problems = [_reworded(problem, reasons) for problem in problems]
    return problems


_INCOMPLETE = "Missing child element"


def _reworded(problem: Problem, reasons: dict[int, str]) -> Problem:
    if _INCOMPLETE not in problem.reason or problem.line not in reasons:
        return problem
    return Problem(reasons[problem.line], problem.source, problem.line, problem.path)


def _syntax_problem(error: etree.XMLSyntaxError, source: str | None) -> Problem:
    message = error.msg or str(error)
    if "DOCTYPE" in message or "Entity" in message or "entity" in message:
        return Problem(_DTD_REFUSED, source=source, line=error.lineno or None)
    return Problem(f"malformed XML: {message}", source=source, line=error.lineno or None)


def _not_epcis(root: etree._Element, source: str | None) -> Problem:
    qname = etree.QName(root)
    where = f"{{{qname.namespace}}}" if qname.namespace else "no namespace "
    return Problem(
        f"root element {where}{qname.localname} is not an EPCIS document we accept "
        f"(expected EPCISDocument, EPCISMasterDataDocument or EPCISQueryDocument "
        f"in an EPCIS 1.2 or 2.0 namespace)",
        source=source,
        line=_line(root),
        path=f"/{root.prefix + ':' if root.prefix else ''}{qname.localname}",
    )


def _read_elements(parser: etree.XMLPullParser) -> Iterator[tuple[str, etree._Element]]:
    """The parser's pending events; only element events are asked for here."""
    events: Any = parser.read_events()  # lxml-stubs also allow namespace-event tuples.
    return iter(events)


def _entries(error_log: Any) -> list[Any]:
    """The first :data:`MAX_PROBLEMS` entries of an lxml error log."""
    return list(error_log)[:MAX_PROBLEMS]


def _exact(line: int) -> int | None:
    return line if 0 < line <= _LAST_EXACT_LINE else None


def _line(element: etree._Element) -> int | None:
    line: Any = element.sourceline
    return line if isinstance(line, int) else None


def _drop_closed(parser: etree.XMLPullParser) -> None:
    """Free every element that has been closed, and its earlier siblings."""
    for _event, element in _read_elements(parser):
        element.clear(keep_tail=True)  # type: ignore[call-arg]
        parent = element.getparent()
        while parent is not None and element.getprevious() is not None:
            del parent[0]


class _Replay:
    """Reads a stream in chunks and lets the document be read again from its start."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._seen: list[bytes] = []
        self._start: int | None = None
        try:
            if stream.seekable():
                self._start = stream.tell()
        except (AttributeError, OSError):
            self._start = None

    def new_chunks(self) -> Iterator[bytes]:
        """Chunks not read yet; remembered so that :meth:`all_chunks` can replay them."""
        while chunk := self._stream.read(_CHUNK):
            self._seen.append(chunk)
            yield chunk

    def all_chunks(self) -> Iterator[bytes]:
        """The whole document from its start, re-reading when the stream can seek."""
        if self._start is not None:
            self._stream.seek(self._start)
            self._seen = []
            while chunk := self._stream.read(_CHUNK):
                yield chunk
            return
        yield from list(self._seen)
        for chunk in self.new_chunks():
            yield chunk

    def all_bytes(self) -> bytes:
        return b"".join(self.all_chunks())


# libxml2 names wildcards and the namespace they admit in its own notation; say it in words.
_WILDCARD = re.compile(r"##other\{[^}]*\}\*")
_LOCAL_WILDCARD = re.compile(r"##local\*|\{\}\*|##any\*")


_OUR_TYPE = re.compile(r"'\{urn:epcglobal:[^}]*\}(\w+?)T'")


# Our two patterns, said in words rather than as regular expressions.
_PATTERNS = {
    ".+T.+(Z|[+\\-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))": (
        "a date and time with its zone (Z or +hh:mm / -hh:mm)"
    ),
    "[+\\-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)": "an offset written +hh:mm or -hh:mm",
}
_PATTERN_FACET = re.compile(
    r"\[facet 'pattern'\] The value '(.*)' is not accepted by the pattern '(.*)'\."
)


def _in_words(match: re.Match[str]) -> str:
    wanted = _PATTERNS.get(match.group(2))
    if wanted is None:
        return match.group(0)
    return f"The value '{match.group(1)}' is not {wanted}."


def _tidy(message: str) -> str:
    text = _OUR_TYPE.sub(r"'\1'", message.strip())
    text = _PATTERN_FACET.sub(_in_words, text)
    text = _WILDCARD.sub("any element from another namespace", text)
    text = _LOCAL_WILDCARD.sub("any element in no namespace", text)
    text = text.replace("Missing child element(s).", "Missing child element(s):")
    return text.replace("This element is not expected.", "This element is not expected here.")


from epcis.jsonld_validation import validate_jsonld  # noqa: E402  (re-export; it imports us lazily)
