"""The store port: the records the service keeps and the protocol every storage adapter fulfils.

Events are append-only: there is no API to update or delete one. Capture jobs are the only
records whose fields change (their status), and partners are revoked by setting a time.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

if TYPE_CHECKING:
    from epcis.query import EventQuery

__all__ = [
    "DEFAULT_PER_PAGE",
    "BatchResult",
    "CaptureErrorBehaviour",
    "CaptureJob",
    "CaptureProblem",
    "CaptureSession",
    "DocumentRecord",
    "EventIndex",
    "EventRecord",
    "EventStore",
    "Page",
    "PageCursor",
    "PageRequest",
    "PartnerRecord",
    "PartnerRole",
    "StoreError",
    "Visibility",
    "compact_json_encoder",
    "from_micros",
    "to_micros",
]

DEFAULT_PER_PAGE = 30
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PartnerRole = Literal["operator", "partner", "auditor"]
CaptureErrorBehaviour = Literal["rollback", "proceed"]


class StoreError(Exception):
    """The storage backend failed or was used outside its contract (not a client error)."""


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """A received document: its bytes are kept separately, content-addressed by ``sha256``."""

    document_id: str
    sha256: str
    size: int
    format: str
    sender_partner_id: str
    received_at: datetime
    sbdh_instance_id: str | None
    sbdh_sender: str | None
    sbdh_receivers: tuple[str, ...]
    capture_id: str


@dataclass(frozen=True, slots=True)
class EventIndex:
    """Everything queries filter on, derived once at capture by ``service.event_index``.

    Identifiers (``epcs``, ``classes``, ``parties`` and the values of ``sources`` and
    ``destinations``) are ``epcis.identifiers.epc_match_key`` keys; vocabulary values
    (bizStep, disposition, transaction and source/destination types) are canonical model
    spellings; ``read_point``/``biz_location`` are match keys too.
    """

    action: str | None = None
    biz_step: str | None = None
    disposition: str | None = None
    read_point: str | None = None
    biz_location: str | None = None
    # (role, key); role is one of epc, child, parent, input, output.
    epcs: tuple[tuple[str, str], ...] = ()
    # (role, class key) from the quantity lists; role is one of epc, child, input, output.
    classes: tuple[tuple[str, str], ...] = ()
    # (type, value); type is the canonical vocabulary value ("" when the list entry has none).
    biz_transactions: tuple[tuple[str, str], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    destinations: tuple[tuple[str, str], ...] = ()
    # Every party/location key named in a source or destination list (partner visibility).
    parties: tuple[str, ...] = ()
    lot: str | None = None
    expiry: date | None = None
    error_declared: bool = False
    error_declaration_time: datetime | None = None
    transformation_id: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event; ``hash_id`` (the CBV 2.0 event hash) is its identity."""

    hash_id: str
    event_id: str
    event_type: str
    event_time: datetime
    record_time: datetime
    document_id: str | None
    # Compact JSON of epcis.jsonld_writer.event_to_jsonld(event), eventID and recordTime set.
    body: bytes
    index: EventIndex


@dataclass(frozen=True, slots=True)
class CaptureProblem:
    """An RFC 7807 problem recorded on a capture job."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureJob:
    """The status object of one capture (EPCIS 2.0 capture job); replaced as it progresses."""

    capture_id: str
    partner_id: str
    created_at: datetime
    capture_error_behaviour: CaptureErrorBehaviour = "rollback"
    running: bool = True
    success: bool = True
    finished_at: datetime | None = None
    document_id: str | None = None
    captured: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: tuple[CaptureProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    """A trading partner (or operator/auditor) and the hash of its bearer token."""

    partner_id: str
    name: str
    gln: str
    identifiers: tuple[str, ...]
    role: PartnerRole
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which events a reader may see.

    ``all`` readers (operators, auditors) see everything. A partner sees the events of the
    documents it sent and the events naming one of ``identifiers`` (match keys) in a source
    or destination list.
    """

    all: bool
    partner_id: str | None = None
    identifiers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def everything(cls) -> Visibility:
        return cls(all=True)

    @classmethod
    def for_partner(cls, partner_id: str, identifiers: frozenset[str]) -> Visibility:
        return cls(all=False, partner_id=partner_id, identifiers=identifiers)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page of a query: ``token`` is the ``next_token`` of the previous page, if any."""

    per_page: int = DEFAULT_PER_PAGE
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    records: tuple[EventRecord, ...]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What ``add_events`` did: duplicates are events already stored or repeated in the capture."""

    inserted: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(self.inserted + other.inserted, self.duplicates + other.duplicates)


class CaptureSession(Protocol):
    """The events of one document, written atomically when the session is atomic.

    Used as ``async with store.begin_capture(doc) as session``; leaving the block without
    ``commit()`` (or by an exception) rolls back. The document record is stored with the
    events on commit.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def add_events(self, records: Sequence[EventRecord]) -> BatchResult: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class EventStore(Protocol):
    """What the service needs from storage; adapters: SQLite and MongoDB."""

    async def open(self) -> None:
        """Connect and create the schema and indexes (idempotent)."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    # --- documents ------------------------------------------------------------------------

    async def put_document_content(self, sha256: str, chunks: AsyncIterable[bytes]) -> None:
        """Store bytes under their SHA-256, byte-exact; a second call for the same hash is a
        no-op. Raises StoreError if the bytes do not hash to ``sha256``."""
        ...

    def open_document_content(self, sha256: str) -> AsyncIterator[bytes]:
        """The stored bytes in chunks; raises KeyError if unknown."""
        ...

    async def get_document(self, document_id: str) -> DocumentRecord | None: ...

    # --- events ---------------------------------------------------------------------------

    def begin_capture(self, document: DocumentRecord, *, atomic: bool = True) -> CaptureSession:
        """A capture session; with ``atomic=False`` each ``add_events`` batch is durable at
        once and ``rollback`` only discards the batch in flight."""
        ...

    async def get_event(self, event_id_or_hash: str, visibility: Visibility) -> EventRecord | None:
        """The event with this hash ID or (else) this eventID, if visible."""
        ...

    async def query_events(
        self, query: EventQuery, visibility: Visibility, page: PageRequest
    ) -> Page:
        """Matching events in query order, keyset-paged.

        Raises ``epcis.query.QueryParameterError`` for a token from another query and
        ``epcis.query.QueryTooLargeError`` when ``maxEventCount`` is exceeded.
        """
        ...

    async def count_events(self) -> int: ...

    async def event_bodies(self, hash_ids: Sequence[str]) -> dict[str, bytes]:
        """The stored JSON of the events with these hash IDs (absent ones left out), read in
        bulk and regardless of visibility: for audits such as ledger verification."""
        ...

    async def event_records(self, hash_ids: Sequence[str]) -> dict[str, EventRecord]:
        """The stored events with these hash IDs (absent ones left out), read in bulk and
        regardless of visibility, with an empty query index (``EventIndex()``): for exports,
        which need records by the ten thousand and never their index."""
        ...

    # --- capture jobs ---------------------------------------------------------------------

    async def put_capture_job(self, job: CaptureJob) -> None:
        """Insert or replace the job with this capture_id."""
        ...

    async def get_capture_job(self, capture_id: str) -> CaptureJob | None: ...

    async def list_capture_jobs(
        self, partner_id: str | None = None, limit: int = 100
    ) -> Sequence[CaptureJob]:
        """Newest first; only this partner's jobs when ``partner_id`` is given."""
        ...

    # --- partners -------------------------------------------------------------------------

    async def add_partner(self, partner: PartnerRecord) -> None:
        """Raises StoreError if the partner_id or token hash exists."""
        ...

    async def get_partner(self, partner_id: str) -> PartnerRecord | None: ...

    async def get_partner_by_token_hash(self, token_hash: str) -> PartnerRecord | None:
        """The partner holding this token, revoked or not (the caller checks revoked_at)."""
        ...

    async def list_partners(self) -> Sequence[PartnerRecord]: ...

    async def revoke_partner(self, partner_id: str, at: datetime) -> bool:
        """Set revoked_at; False if no such partner or already revoked."""
        ...


# --- keyset page tokens (shared by the adapters) --------------------------------------------


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page ended: the last (sort value, hash_id), how many events were served, and
    the fingerprint of the query it belongs to."""

    fingerprint: str
    sort_value: int
    hash_id: str
    served: int

    def encode(self) -> str:
        payload = [self.fingerprint, self.sort_value, self.hash_id, self.served]
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, fingerprint: str) -> PageCursor:
        """Raises QueryParameterError for a malformed token or one from another query."""
        from epcis.query import QueryParameterError

        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            found, sort_value, hash_id, served = json.loads(raw)
            cursor = cls(str(found), int(sort_value), str(hash_id), int(served))
        except (ValueError, TypeError):
            raise QueryParameterError("nextPageToken is not a token this server issued") from None
        if cursor.fingerprint != fingerprint:
            raise QueryParameterError("nextPageToken belongs to a different query")
        return cursor


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch: an exact, sortable integer for a tz-aware time."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def compact_json_encoder() -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode``, same output.

    Stored bodies and index rows are encoded once per event; the encoder's own ``encode``
    builds a new C encoder (and a circular-reference table) per call, which cost a fifth of
    the encoding. This one is built once and reused; capture's values hold no cycles.
    """
    fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make: Any = getattr(json.encoder, "c_make_encoder", None)  # not in the type stubs
    if make is None:  # pragma: no cover - CPython always has the C encoder
        return fallback.encode
    # The arguments JSONEncoder.iterencode passes for these options (markers None: no
    # circular-reference check).
    encode = make(
        None, fallback.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    join = "".join

    def encoded(value: Any) -> str:
        return join(encode(value, 0))

    return encoded
