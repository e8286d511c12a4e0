"""``dscsa validate|hash|convert``: work on EPCIS documents (1.2 XML, 2.0 XML, 2.0 JSON-LD)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from epcis.errors import EPCISError, Problem
from epcis.event_hash import HASH_ALGORITHMS, event_hash, ignored_fields
from epcis.model import DocumentFormat, DocumentHead, Event
from epcis.reading import detect_format, iter_document
from epcis.writing import write_document
from epcis.xml_safety import MAX_PROLOG_BYTES

__all__ = ["register"]

EXIT_OK = 0
EXIT_PROBLEMS = 1


def register(subparsers: Any) -> None:
    validate = subparsers.add_parser(
        "validate",
        help="check EPCIS documents against the schema and the model",
        description="Exit 0 when every file is valid; else print one problem per line, exit 1.",
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--json", action="store_true", help="print the problems as JSON")
    validate.set_defaults(handler=_validate_command)

    hashing = subparsers.add_parser(
        "hash", help="print the CBV 2.0 event hash ID of each event, in document order"
    )
    hashing.add_argument("file", type=Path, metavar="FILE")
    hashing.add_argument("--algorithm", choices=sorted(HASH_ALGORITHMS), default="sha-256")
    hashing.set_defaults(handler=_hash_command)

    convert = subparsers.add_parser("convert", help="convert an EPCIS document between formats")
    convert.add_argument("file", type=Path, metavar="FILE")
    convert.add_argument("--to", required=True, choices=[f.value for f in DocumentFormat])
    convert.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    convert.set_defaults(handler=_convert_command)


# --- validate --------------------------------------------------------------------------


def _validate_command(args: argparse.Namespace) -> int:
    problems = [problem for path in args.files for problem in validate_file(path)]
    if args.json:
        print(json.dumps([_as_json(p) for p in problems], indent=2))
    else:
        for problem in problems:
            print(problem)
    return EXIT_PROBLEMS if problems else EXIT_OK


def validate_file(path: Path) -> list[Problem]:
    """Every problem of one file: unreadable, hostile, schema-invalid or not a valid model."""
    name = str(path)
    try:
        with path.open("rb") as stream:
            document_format = detect_format(stream.read(MAX_PROLOG_BYTES))
        problems = _schema_problems(path, document_format, name)
        if problems:  # the model would only restate the first schema problem
            return problems
        with path.open("rb") as stream:
            for _ in iter_document(stream, source_name=name):
                pass
    except OSError as error:
        return [Problem(f"cannot read the file: {error.strerror}", source=name)]
    except EPCISError as error:
        return [_located(problem, name) for problem in error.problems]
    return []


def _schema_problems(path: Path, document_format: DocumentFormat, name: str) -> list[Problem]:
    if document_format is DocumentFormat.JSONLD_2_0:
        from epcis.validation import validate_jsonld  # type: ignore[attr-defined,unused-ignore]

        problems: list[Problem] = validate_jsonld(path, source_name=name)
    else:
        from epcis.validation import validate_xml

        problems = validate_xml(path, source_name=name)
    return [_located(problem, name) for problem in problems]


def _located(problem: Problem, name: str) -> Problem:
    if problem.source:
        return problem
    return Problem(problem.reason, source=name, line=problem.line, path=problem.path)


def _as_json(problem: Problem) -> dict[str, Any]:
    return {
        "source": problem.source,
        "line": problem.line,
        "path": problem.path,
        "reason": problem.reason,
    }


# --- hash ------------------------------------------------------------------------------


def _hash_command(args: argparse.Namespace) -> int:
    name = str(args.file)
    try:
        with args.file.open("rb") as stream:
            items = iter_document(stream, source_name=name)
            head = next(items)
            assert isinstance(head, DocumentHead)
            ignore = ignored_fields(head)
            out = sys.stdout
            for event in items:
                out.write(event_hash(event, args.algorithm, ignore) + "\n")  # type: ignore[arg-type]
    except BrokenPipeError:
        return _closed_stdout()
    except OSError as error:
        return _fail(Problem(f"cannot read the file: {error.strerror}", source=name))
    except EPCISError as error:
        return _fail(*(_located(p, name) for p in error.problems))
    return EXIT_OK


# --- convert ---------------------------------------------------------------------------


def _convert_command(args: argparse.Namespace) -> int:
    name = str(args.file)
    target = DocumentFormat(args.to)
    temporary = args.output.with_name(f".{args.output.name}.partial") if args.output else None
    try:
        with args.file.open("rb") as stream:
            items = iter_document(stream, source_name=name)
            head = next(items)
            assert isinstance(head, DocumentHead)
            events: Iterator[Event] = items  # type: ignore[assignment]
            if temporary is None:
                _write(head, events, sys.stdout.buffer, target)
            else:
                with temporary.open("wb") as out:
                    _write(head, events, out, target)
                # A half-written output never takes the name of the requested file.
                os.replace(temporary, args.output)
    except BrokenPipeError:
        return _closed_stdout()
    except OSError as error:
        return _fail(Problem(f"cannot convert: {error.strerror}", source=error.filename or name))
    except EPCISError as error:
        return _fail(*(_located(p, name) for p in error.problems))
    finally:
        if temporary is not None and temporary.exists():
            temporary.unlink()
    return EXIT_OK


def _write(
    head: DocumentHead, events: Iterator[Event], out: BinaryIO, target: DocumentFormat
) -> None:
    write_document(head, events, out, target)
    out.flush()


def _closed_stdout() -> int:
    # The reader went away (``| head``): stop quietly, and keep Python's exit flush silent.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _fail(*problems: Problem) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return EXIT_PROBLEMS
