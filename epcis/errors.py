"""Errors raised by the EPCIS core, each carrying its EPCIS 2.0 problem type and HTTP status.

EPCISError
├── InvalidDocumentError     the bytes are not an EPCIS document we accept (400)
│   ├── HostileDocumentError DTD, entity, external reference (400)
│   └── SchemaViolationError fails XSD or JSON-schema validation (400)
├── DocumentTooLargeError    over a configured size or event limit (413)
├── UnsupportedFormatError   neither EPCIS XML nor EPCIS JSON-LD (415)
└── InvalidIdentifierError   a malformed GS1 key, EPC URI or barcode string (400)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DocumentTooLargeError",
    "EPCISError",
    "HostileDocumentError",
    "InvalidDocumentError",
    "InvalidIdentifierError",
    "Problem",
    "SchemaViolationError",
    "UnsupportedFormatError",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem: where in which input, and why."""

    reason: str
    source: str | None = None
    line: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.source, self.line) if part is not None)
        located = f"{where}: " if where else ""
        at = f" (at {self.path})" if self.path else ""
        return f"{located}{self.reason}{at}"


class EPCISError(Exception):
    """Base of every error the EPCIS core raises."""

    problem_type = "epcisException:ImplementationException"
    status = 500

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (Problem(message),)


class InvalidDocumentError(EPCISError):
    problem_type = "epcisException:ValidationException"
    status = 400


class HostileDocumentError(InvalidDocumentError):
    """Raised for DTDs, entity declarations and external references, before any expansion."""


class SchemaViolationError(InvalidDocumentError):
    """Raised when a document does not conform to our schema."""


class DocumentTooLargeError(EPCISError):
    problem_type = "epcisException:CaptureLimitExceededException"
    status = 413


class UnsupportedFormatError(EPCISError):
    problem_type = "epcisException:UnsupportedMediaTypeException"
    status = 415


class InvalidIdentifierError(EPCISError, ValueError):
    problem_type = "epcisException:ValidationException"
    status = 400
