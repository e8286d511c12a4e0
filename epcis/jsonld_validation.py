"""Validation of EPCIS 2.0 JSON-LD documents against our JSON schema, one event at a time.

The schema is ``schemas/epcis-2.0-document.schema.json`` (Draft 2020-12), compiled once. Its
subschemas may carry ``x-reason``, the reason in plain words reported when that subschema
fails; other failures are worded here from the keyword that failed. Every problem is located
by a JSON pointer such as ``/epcisBody/eventList/3/action``.

The document is read once, as a stream of ijson tokens, rather than with ``json.loads``:

* memory stays at one event plus the document without its events, whatever the size, and
  the events are validated as soon as each is complete;
* nesting depth is bounded (``ReadLimits.max_depth``) before anything reaches the recursive
  JSON-schema validator, and the size (``ReadLimits.max_bytes``) while reading, so a hostile
  document is refused before it is held;
* validating an event costs far more than building it token by token, so one path for small
  and big documents costs nothing worth a second one.

Duplicate keys, over-long strings and identifier syntax are left to the reader
(:mod:`epcis.jsonld_reader`), which ``dscsa validate`` runs once the schema is satisfied.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, cast

import ijson  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from epcis.errors import Problem
from epcis.reading import ReadLimits

__all__ = ["JSON_SCHEMA_FILE", "MAX_PROBLEMS", "format_checker", "json_schema", "validate_jsonld"]

#: Our JSON schema for EPCIS 2.0 JSON-LD documents, in :func:`epcis.validation.schema_dir`.
JSON_SCHEMA_FILE = "epcis-2.0-document.schema.json"

_DEFAULT_LIMITS = ReadLimits()

#: A document with more problems than this is reported with the first ones only.
MAX_PROBLEMS = 100

# Where each kind of document keeps its events (ijson prefixes), and the depth of the list.
_EVENT_LISTS = {
    "epcisBody.eventList.item": ("EPCISDocument", 3),
    "epcisBody.queryResults.resultsBody.eventList.item": ("EPCISQueryDocument", 5),
}


# --- formats ---------------------------------------------------------------------------

# RFC 3339 date-time: JSON schema's "date-time", which always carries its zone.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:[Zz]|[+-](\d\d):(\d\d))\Z"
)
# RFC 3986 absolute URI (a CURIE such as "example:field" is one). Brackets only for an IP
# literal host: the one place RFC 3986 allows them.
_PCHARS = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})"
_URI = re.compile(
    rf"[A-Za-z][A-Za-z0-9+.\-]*:(?://(?:[^@/?#\s]*@)?\[[0-9A-Za-z:.]+\])?{_PCHARS}*(?:#{_PCHARS}*)?\Z"
)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # "format" says nothing about other types; "type" does
    match = _DATE_TIME.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    offset_hour, offset_minute = (int(part or 0) for part in match.groups()[6:])
    if second > 60 or offset_hour > 23 or offset_minute > 59:  # 60: RFC 3339's leap second
        return False
    try:
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return True


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI.match(value) is not None


@cache
def format_checker() -> FormatChecker:
    """The two formats our schema uses, checked by our own code (no optional packages)."""
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    checker.checks("uri")(_is_uri)
    return checker


# --- the schema ------------------------------------------------------------------------


@cache
def json_schema() -> dict[str, Any]:
    """Our JSON schema for EPCIS 2.0 JSON-LD documents, as loaded from its file."""
    from epcis.validation import schema_dir  # not at the top: epcis.validation re-exports us

    loaded: dict[str, Any] = json.loads((schema_dir() / JSON_SCHEMA_FILE).read_text("utf-8"))
    return loaded


@cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    """(whole document without its events, one event); compiled once."""
    schema = json_schema()
    # A registry of our one schema: a $ref never leads anywhere else, nor to the network.
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    document = Draft202012Validator(schema, registry=registry, format_checker=format_checker())
    event = Draft202012Validator(
        {"$ref": schema["$id"] + "#/$defs/event"},
        registry=registry,
        format_checker=format_checker(),
    )
    return document, event


# --- entry point -----------------------------------------------------------------------


def validate_jsonld(
    source: bytes | BinaryIO | str | Path,
    *,
    source_name: str | None = None,
    limits: ReadLimits = _DEFAULT_LIMITS,
) -> list[Problem]:
    """Problems of an EPCIS 2.0 JSON-LD document against our schema; empty when it is valid.

    ``source`` is the document's bytes, a binary stream or a file path. Besides
    ``EPCISDocument`` and ``EPCISQueryDocument``, a single event (with its ``@context``) is
    accepted, as GS1's schema does. ``source_name`` names the input in the problems
    (defaults to the path). ``limits`` bounds size, nesting depth and the number of events.
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as stream:
            return _validate_stream(stream, source_name or str(source), limits)
    if isinstance(source, bytes):
        return _validate_stream(io.BytesIO(source), source_name, limits)
    return _validate_stream(source, source_name, limits)


def _validate_stream(stream: BinaryIO, source: str | None, limits: ReadLimits) -> list[Problem]:
    document_validator, event_validator = _validators()
    event_problems: dict[str, list[Problem]] = {name: [] for name, _ in _EVENT_LISTS.values()}
    found = 0
    scan = _Scan(limits)
    try:
        for document_type, base, event in scan.events(_Bounded(stream, limits.max_bytes)):
            if found >= MAX_PROBLEMS:
                continue  # read on: the document may still be malformed or too big
            problems = _problems(event_validator.iter_errors(event), base, source)
            event_problems[document_type].extend(problems)
            found += len(problems)
    except _Refused as refusal:
        return [Problem(refusal.reason, source=source, path=refusal.path)]
    except ijson.JSONError as error:
        return [Problem(f"not well-formed JSON: {_first_line(error)}", source=source)]
    root = scan.root
    problems = _problems(document_validator.iter_errors(root), "", source)
    # Events count only where the document's type keeps them; elsewhere the schema says
    # whether the list may be there at all.
    if isinstance(root, dict) and isinstance(root.get("type"), str):
        problems += event_problems.get(root["type"], [])
    return problems[:MAX_PROBLEMS]


# --- reading ---------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, reason: str, path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


class _Bounded(io.RawIOBase):
    """A read-only view of a stream that refuses to read past ``limit`` bytes."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise _Refused(f"document larger than {self._limit} bytes")
        buffer[: len(data)] = data
        return len(data)


class _Scan:
    """Builds the document from ijson tokens, handing out each event instead of keeping it."""

    def __init__(self, limits: ReadLimits) -> None:
        self.root: Any = None
        self._limits = limits

    def events(self, stream: io.RawIOBase) -> Iterator[tuple[str, str, Any]]:
        """(document type, JSON pointer, event) for each member of an event list."""
        open_: list[list[Any]] = []  # [container, key awaiting its value]
        counts: dict[str, int] = {}
        event_at = -1  # depth of the event being built, -1 when building the document
        listed: tuple[str, int] | None = None
        max_depth, max_events, total = self._limits.max_depth, self._limits.max_events, 0
        for prefix, kind, value in ijson.parse(stream, use_float=True):
            if kind == "map_key":
                open_[-1][1] = value
                continue
            depth = len(open_)
            if event_at < 0 and (listed := _EVENT_LISTS.get(prefix)) and depth == listed[1]:
                total += 1
                if total > max_events:
                    raise _Refused(f"more than {max_events} events")
                if kind in ("start_map", "start_array"):
                    event_at = depth
                    open_.append([{} if kind == "start_map" else [], None])
                    continue
                yield self._event(listed[0], prefix, counts, value)
                continue
            if kind in ("start_map", "start_array"):
                if depth >= max_depth:
                    raise _Refused(f"nested deeper than {max_depth} levels", _pointer_of(prefix))
                container: Any = {} if kind == "start_map" else []
                if open_:
                    _attach(open_[-1], container)
                else:
                    self.root = container
                open_.append([container, None])
            elif kind in ("end_map", "end_array"):
                done = open_.pop()[0]
                if len(open_) == event_at:
                    event_at = -1
                    assert listed is not None
                    yield self._event(listed[0], prefix, counts, done)
            elif open_:
                _attach(open_[-1], value)
            else:
                self.root = value

    @staticmethod
    def _event(
        document_type: str, prefix: str, counts: dict[str, int], event: Any
    ) -> tuple[str, str, Any]:
        index = counts.get(prefix, 0)
        counts[prefix] = index + 1
        return document_type, f"{_pointer_of(prefix.removesuffix('.item'))}/{index}", event


def _attach(slot: list[Any], value: Any) -> None:
    container, key = slot
    if isinstance(container, list):
        container.append(value)
    else:
        container[key] = value


def _pointer_of(prefix: str) -> str:
    """ijson's dotted prefix as a JSON pointer (array items are 'item' there; fine for errors)."""
    return "/" + "/".join(_escape(part) for part in prefix.split(".")) if prefix else ""


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# --- problems --------------------------------------------------------------------------


def _problems(errors: Iterable[ValidationError], base: str, source: str | None) -> list[Problem]:
    found: list[Problem] = []
    for error in errors:
        path, reason = _located_reason(error)
        problem = Problem(reason, source=source, path=base + path or "/")
        if problem not in found:
            found.append(problem)
        if len(found) >= MAX_PROBLEMS:
            break
    return found


def _located_reason(error: ValidationError) -> tuple[str, str]:
    """(JSON pointer below the validated value, reason in plain words) of one failure."""
    path = "".join("/" + _escape(str(part)) for part in error.absolute_path)
    if "propertyNames" in error.relative_schema_path:
        key = str(error.instance)
        return f"{path}/{_escape(key)}", (
            f"field {key!r} is not an EPCIS field here; an extension field needs a prefix "
            f"declared in @context, like 'example:{key}'"
        )
    said = error.schema.get("x-reason") if isinstance(error.schema, dict) else None
    if isinstance(said, str):
        return path, f"{_shown(error.instance)} {said}" if said.startswith("is ") else said
    if error.validator in ("anyOf", "oneOf") and error.context:
        below, reason = _located_reason(best_match(error.context))
        return path + below, reason
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = [key for key in error.instance if key not in allowed]
        if extra:
            return f"{path}/{_escape(extra[0])}", f"field {extra[0]!r} is not allowed here"
    return path, _worded(error)


def _worded(error: ValidationError) -> str:
    value, wanted = error.instance, cast(Any, error.validator_value)
    match error.validator:
        case "required":
            missing = error.message.removesuffix(" is a required property")
            return f"required field {missing} is missing"
        case "enum":
            choices = ", ".join(str(choice) for choice in wanted)
            if len(wanted) > 8:
                return f"{_shown(value)} is not one of the allowed values"
            return f"{_shown(value)} is not one of: {choices}"
        case "const":
            return f"{_shown(value)} is not {wanted!r}"
        case "type":
            kinds = [wanted] if isinstance(wanted, str) else list(wanted)
            return f"{_shown(value)} is not {' or '.join(_KINDS.get(k, k) for k in kinds)}"
        case "minItems":
            return "must not be empty" if wanted == 1 else f"needs at least {wanted} items"
        case "uniqueItems":
            return "lists the same item more than once"
        case "format":
            return f"{_shown(value)} is not a valid {wanted}"
        case "pattern":
            return f"{_shown(value)} does not match the pattern {wanted}"
    return error.message


_KINDS = {
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "array": "a list",
    "object": "an object",
    "boolean": "true or false",
    "null": "null",
}


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, dict):
        return "the object"
    if isinstance(value, list):
        return "the list"
    return json.dumps(value)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
