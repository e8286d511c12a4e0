"""The SQLite store adapter: stdlib sqlite3 in WAL mode, run on worker threads off the event loop.

Two database files: the events file (documents, events, their index keys) and a control file
(capture jobs, partners) beside it. A capture holds the events file's write lock for its whole
transaction; keeping job and partner writes in another file lets the pipeline report progress
meanwhile. Document bytes are content-addressed files under ``data_dir/documents``.

Every filterable identifier of an event is a row of ``event_keys`` (key, kind, event rowid),
a clustered index, so ``MATCH_epc`` with one EPC is one index probe followed by rowid lookups.

SQL text is composed only of constant fragments and ``?`` placeholders (hence the S608
waivers); every value is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from epcis.query import EpcFilter, EventQuery, QueryTooLargeError
from service.event_index import index_from_json
from service.store import (
    BatchResult,
    CaptureJob,
    CaptureProblem,
    DocumentRecord,
    EventIndex,
    EventRecord,
    Page,
    PageCursor,
    PageRequest,
    PartnerRecord,
    StoreError,
    Visibility,
    compact_json_encoder,
    from_micros,
    to_micros,
)

__all__ = ["SQLiteCaptureSession", "SQLiteEventStore"]

T = TypeVar("T")

_READ_CHUNK = 1 << 20
_IN_CHUNK = 500  # stay well under SQLite's bound-parameter limit
# Rows per multi-row INSERT. sqlite3 lets go of the GIL around every statement it steps, and
# taking it back waits for the capture's reader thread to yield (up to the 5 ms switch
# interval), so one statement per row made the writer crawl whenever the reader was busy.
_EVENT_ROWS_PER_INSERT = 100  # x 18 columns
_KEY_ROWS_PER_INSERT = 500  # x 3 columns
# Above every other character in SQLite's binary collation: the upper bound of a prefix range.
_MAX_CHAR = "\U0010ffff"

_EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    document_id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    rowid INTEGER PRIMARY KEY,
    hash_id TEXT NOT NULL UNIQUE,
    event_id TEXT,
    event_type TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    record_time INTEGER NOT NULL,
    document_id TEXT,
    sender_partner_id TEXT,
    action TEXT,
    biz_step TEXT,
    disposition TEXT,
    read_point TEXT,
    biz_location TEXT,
    lot TEXT,
    expiry TEXT,
    error_declared INTEGER NOT NULL,
    index_json TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_event_time ON events (event_time, hash_id);
CREATE INDEX IF NOT EXISTS events_record_time ON events (record_time, hash_id);
CREATE INDEX IF NOT EXISTS events_sender ON events (sender_partner_id);
CREATE TABLE IF NOT EXISTS event_keys (
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_rowid INTEGER NOT NULL,
    PRIMARY KEY (key, kind, event_rowid)
) WITHOUT ROWID;
"""

_CONTROL_SCHEMA = """
CREATE TABLE IF NOT EXISTS capture_jobs (
    capture_id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS capture_jobs_partner ON capture_jobs (partner_id, created_at);
CREATE TABLE IF NOT EXISTS partners (
    partner_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
"""

_EVENT_COLUMNS = (
    "rowid, hash_id, event_id, event_type, event_time, record_time, document_id, "
    "sender_partner_id, action, biz_step, disposition, read_point, biz_location, lot, expiry, "
    "error_declared, index_json, body"
)
_SELECT_EVENT = (
    "SELECT e.hash_id, coalesce(e.event_id, e.hash_id), e.event_type, e.event_time, "
    "e.record_time, e.document_id, e.body, e.index_json FROM events e"
)
# The same without the index, whose decoding (~40 us per row) bulk readers do not need.
_SELECT_RECORD = _SELECT_EVENT.replace(", e.index_json FROM", " FROM")
_NO_INDEX = EventIndex()


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 30000")
    # A large writer cache keeps random index inserts (hash_id, event_keys) off the disk;
    # readers mostly probe indexes and share the OS page cache, so theirs stays small.
    connection.execute(f"PRAGMA cache_size = {-16384 if read_only else -65536}")
    if read_only:
        connection.execute("PRAGMA query_only = ON")
    else:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
    return connection


def _chunks(values: Sequence[T], size: int = _IN_CHUNK) -> list[Sequence[T]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


def _marks(count: int) -> str:
    return ",".join("?" * count)


# --- records <-> rows ---------------------------------------------------------------------


_INDEX_FIELDS = tuple(EventIndex.__dataclass_fields__)
_index_values = attrgetter(*_INDEX_FIELDS)
_EXPIRY = _INDEX_FIELDS.index("expiry")
_ERROR_TIME = _INDEX_FIELDS.index("error_declaration_time")
_encode_json = compact_json_encoder()


def _encode_index(index: EventIndex) -> str:
    """The index as a JSON array of its fields in declaration order.

    Positional rather than an object: it is written for every event, and building a dict of
    names first cost more than the encoding itself.
    """
    values = _index_values(index)
    if index.expiry is None and index.error_declaration_time is None:
        return _encode_json(values)
    patched = list(values)
    patched[_EXPIRY] = index.expiry and index.expiry.isoformat()
    moment = index.error_declaration_time
    patched[_ERROR_TIME] = moment and moment.isoformat()
    return _encode_json(patched)


def _decode_index(text: str) -> EventIndex:
    state = json.loads(text)
    if isinstance(state, dict):  # written before the positional form
        return index_from_json(state)
    return index_from_json(dict(zip(_INDEX_FIELDS, state, strict=True)))


# A batch shares one recordTime and a document's events share their times; equal datetimes
# are one instant, whatever their zones, so the micros of one serve all of them.
_micros = lru_cache(maxsize=1024)(to_micros)


def _event_row(
    rowid: int, record: EventRecord, sender: str | None, *, every_event_id: bool
) -> tuple[Any, ...]:
    index = record.index
    # NULL when it is the hash (no eventID given): one index entry less per event. Files
    # made before that declare the column NOT NULL, and keep getting every eventID.
    event_id = record.event_id if every_event_id or record.event_id != record.hash_id else None
    return (
        rowid,
        record.hash_id,
        event_id,
        record.event_type,
        _micros(record.event_time),
        _micros(record.record_time),
        record.document_id,
        sender,
        index.action,
        index.biz_step,
        index.disposition,
        index.read_point,
        index.biz_location,
        index.lot,
        index.expiry.isoformat() if index.expiry else None,
        int(index.error_declared),
        _encode_index(index),
        record.body,
    )


class _Kinds(dict[str, str]):
    """``role`` -> ``prefix:role``, remembered: a capture builds several keys per event."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def __missing__(self, role: str) -> str:
        kind = self[role] = f"{self.prefix}:{role}"
        return kind


_EPC_KINDS, _CLASS_KINDS = _Kinds("epc"), _Kinds("class")
_BT_KINDS, _SRC_KINDS, _DST_KINDS = _Kinds("bt"), _Kinds("src"), _Kinds("dst")


def _key_rows(rowid: int, record: EventRecord) -> list[tuple[str, str, int]]:
    index = record.index
    rows = [(key, _EPC_KINDS[role], rowid) for role, key in index.epcs]
    if index.classes:
        rows += [(key, _CLASS_KINDS[role], rowid) for role, key in index.classes]
    if index.parties:  # only events with sources or destinations have parties
        rows += [(value, _BT_KINDS[kind], rowid) for kind, value in index.biz_transactions]
        rows += [(value, _SRC_KINDS[kind], rowid) for kind, value in index.sources]
        rows += [(value, _DST_KINDS[kind], rowid) for kind, value in index.destinations]
        rows += [(party, "party", rowid) for party in index.parties]
    elif index.biz_transactions:
        rows += [(value, _BT_KINDS[kind], rowid) for kind, value in index.biz_transactions]
    return rows


def _event_record(row: sqlite3.Row | tuple[Any, ...]) -> EventRecord:
    """A stored row as a record; a ``None`` index column (not selected) gives an empty index."""
    hash_id, event_id, event_type, event_time, record_time, document_id, body, index = row
    return EventRecord(
        hash_id=hash_id,
        event_id=event_id,
        event_type=event_type,
        event_time=from_micros(event_time),
        record_time=from_micros(record_time),
        document_id=document_id,
        body=bytes(body),
        index=_NO_INDEX if index is None else _decode_index(index),
    )


def _dump(record: object) -> str:
    return json.dumps(asdict(record), default=_json_default, separators=(",", ":"))  # type: ignore[call-overload]


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__}")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _document(text: str) -> DocumentRecord:
    state = json.loads(text)
    state["received_at"] = datetime.fromisoformat(state["received_at"])
    state["sbdh_receivers"] = tuple(state["sbdh_receivers"])
    return DocumentRecord(**state)


def _capture_job(text: str) -> CaptureJob:
    state = json.loads(text)
    state["created_at"] = datetime.fromisoformat(state["created_at"])
    state["finished_at"] = _time(state["finished_at"])
    state["errors"] = tuple(CaptureProblem(**problem) for problem in state["errors"])
    return CaptureJob(**state)


def _partner(text: str) -> PartnerRecord:
    state = json.loads(text)
    state["created_at"] = datetime.fromisoformat(state["created_at"])
    state["revoked_at"] = _time(state["revoked_at"])
    state["identifiers"] = tuple(state["identifiers"])
    return PartnerRecord(**state)


# --- query -> SQL -------------------------------------------------------------------------


class _Where:
    """Accumulates SQL conditions on ``events e`` and their parameters."""

    def __init__(self) -> None:
        self.terms: list[str] = []
        self.params: list[Any] = []

    def add(self, term: str, *params: Any) -> None:
        self.terms.append(term)
        self.params.extend(params)

    def one_of(self, column: str, values: frozenset[str] | None) -> None:
        if values is not None:
            ordered = sorted(values)
            self.add(f"e.{column} IN ({_marks(len(ordered))})", *ordered)

    def keys(self, kinds: Sequence[str], epc_filter: EpcFilter) -> None:
        kinds_sql = f"kind IN ({_marks(len(kinds))})"
        selects: list[str] = []
        params: list[Any] = []
        if epc_filter.exact:
            exact = sorted(epc_filter.exact)
            selects.append(f"key IN ({_marks(len(exact))}) AND {kinds_sql}")
            params += [*exact, *kinds]
        for prefix in epc_filter.prefixes:
            selects.append(f"key >= ? AND key < ? AND {kinds_sql}")
            params += [prefix, prefix + _MAX_CHAR, *kinds]
        if not selects:
            self.add("0")
            return
        union = " UNION ALL ".join(
            f"SELECT event_rowid FROM event_keys WHERE {s}"  # noqa: S608
            for s in selects
        )
        self.add(f"e.rowid IN ({union})", *params)

    def sql(self) -> str:
        return " AND ".join(self.terms) or "1"


_EPC_ROLES = ("epc:epc", "epc:child")
_ANY_ROLES = ("epc:epc", "epc:child", "epc:parent", "epc:input", "epc:output")


def _where(query: EventQuery, visibility: Visibility) -> _Where:
    where = _Where()
    where.one_of("event_type", query.event_types)
    for column, bound, operator in (
        ("event_time", query.ge_event_time, ">="),
        ("event_time", query.lt_event_time, "<"),
        ("record_time", query.ge_record_time, ">="),
        ("record_time", query.lt_record_time, "<"),
    ):
        if bound is not None:
            where.add(f"e.{column} {operator} ?", to_micros(bound))
    where.one_of("action", query.actions)
    where.one_of("biz_step", query.biz_steps)
    where.one_of("disposition", query.dispositions)
    where.one_of("read_point", query.read_points)
    where.one_of("biz_location", query.biz_locations)
    if query.event_ids is not None:
        ids = sorted(query.event_ids)
        marks = _marks(len(ids))
        where.add(
            f"(e.event_id IN ({marks}) OR (e.event_id IS NULL AND e.hash_id IN ({marks})))",
            *ids,
            *ids,
        )
    where.one_of("lot", query.lots)
    if query.expiry_dates is not None:
        where.one_of("expiry", frozenset(day.isoformat() for day in query.expiry_dates))
    if query.error_declared is not None:
        where.add("e.error_declared = ?", int(query.error_declared))
    for epc_filter, kinds in (
        (query.match_epc, _EPC_ROLES),
        (query.match_parent_id, ("epc:parent",)),
        (query.match_any_epc, _ANY_ROLES),
        (query.match_epc_class, ("class:epc", "class:child")),
    ):
        if epc_filter is not None:
            where.keys(kinds, epc_filter)
    for prefix, criteria in (
        ("bt", query.biz_transactions),
        ("src", query.sources),
        ("dst", query.destinations),
    ):
        for kind, values in criteria:
            where.keys((f"{prefix}:{kind}",), EpcFilter(exact=values))
    _visible(where, visibility)
    return where


def _visible(where: _Where, visibility: Visibility) -> None:
    if visibility.all:
        return
    parties = sorted(visibility.identifiers)
    term = "e.sender_partner_id = ?"
    if parties:
        term += (
            " OR e.rowid IN (SELECT event_rowid FROM event_keys "  # noqa: S608
            f"WHERE key IN ({_marks(len(parties))}) AND kind = 'party')"
        )
    where.add(f"({term})", visibility.partner_id, *parties)


# --- the store ----------------------------------------------------------------------------


class SQLiteEventStore:
    """An :class:`~service.store.EventStore` on two SQLite files and a document directory."""

    def __init__(self, path: Path, data_dir: Path, *, readers: int = 4) -> None:
        self._path = path
        self._control_path = path.with_name(f"{path.stem}-control{path.suffix or '.sqlite3'}")
        self._documents = data_dir / "documents"
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-events-writer")
        self._control_writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-control-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._write_connection: sqlite3.Connection | None = None
        self._control_connection: sqlite3.Connection | None = None
        # One capture transaction at a time on the events file (SQLite has one writer anyway).
        self.write_lock = asyncio.Lock()
        self.every_event_id = False

    @classmethod
    def from_url(cls, url: str, data_dir: Path) -> SQLiteEventStore:
        """``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3``."""
        parts = urlsplit(url)
        if parts.scheme != "sqlite" or not parts.path.lstrip("/"):
            raise ValueError(f"not a sqlite URL: {url!r}")
        return cls(Path(parts.path[1:]), data_dir)

    # --- plumbing ---------------------------------------------------------------------------

    async def _run(self, executor: ThreadPoolExecutor, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def write(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``call`` with the events writer connection on its thread."""
        return await self._run(self._writer, lambda: call(self._writer_connection()))

    def _writer_connection(self) -> sqlite3.Connection:
        if self._write_connection is None:
            raise StoreError("the SQLite store is not open")
        return self._write_connection

    async def _control(self, call: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            if self._control_connection is None:
                raise StoreError("the SQLite store is not open")
            return call(self._control_connection)

        return await self._run(self._control_writer, run)

    async def _read(self, call: Callable[[sqlite3.Connection, sqlite3.Connection], T]) -> T:
        return await self._run(self._readers, lambda: call(*self._reader_pair()))

    def _reader_pair(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        pair: tuple[sqlite3.Connection, sqlite3.Connection] | None
        pair = getattr(self._local, "pair", None)
        if pair is None:
            pair = (
                _connect(self._path, read_only=True),
                _connect(self._control_path, read_only=True),
            )
            self._local.pair = pair
            with self._reader_lock:
                self._reader_connections.extend(pair)
        return pair

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._documents.mkdir(parents=True, exist_ok=True)

        def open_events() -> sqlite3.Connection:
            connection = _connect(self._path, read_only=False)
            connection.executescript(_EVENTS_SCHEMA)
            columns = connection.execute("PRAGMA table_info(events)").fetchall()
            self.every_event_id = any(c[1] == "event_id" and c[3] for c in columns)
            return connection

        def open_control() -> sqlite3.Connection:
            connection = _connect(self._control_path, read_only=False)
            connection.executescript(_CONTROL_SCHEMA)
            return connection

        self._write_connection = await self._run(self._writer, open_events)
        self._control_connection = await self._run(self._control_writer, open_control)

    async def close(self) -> None:
        async with self.write_lock:
            for executor, attribute in (
                (self._writer, "_write_connection"),
                (self._control_writer, "_control_connection"),
            ):
                connection = getattr(self, attribute)
                if connection is not None:
                    setattr(self, attribute, None)
                    await self._run(executor, connection.close)
        self._readers.shutdown(wait=True)
        with self._reader_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
        self._writer.shutdown(wait=True)
        self._control_writer.shutdown(wait=True)

    async def ping(self) -> bool:
        try:
            row = await self._read(lambda events, _: events.execute("SELECT 1").fetchone())
            return bool(row == (1,))
        except (sqlite3.Error, RuntimeError):
            return False

    # --- document content -------------------------------------------------------------------

    def _content_path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a lowercase SHA-256 hex digest: {sha256!r}")
        return self._documents / sha256[:2] / sha256

    async def put_document_content(self, sha256: str, chunks: AsyncIterable[bytes]) -> None:
        target = self._content_path(sha256)
        if await asyncio.to_thread(target.exists):
            return
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        handle, temp_name = await asyncio.to_thread(
            tempfile.mkstemp, dir=target.parent, prefix=".incoming-"
        )
        try:
            digest = hashlib.sha256()
            async for chunk in chunks:
                digest.update(chunk)
                await asyncio.to_thread(os.write, handle, chunk)
            await asyncio.to_thread(os.fsync, handle)
            os.close(handle)
            handle = -1
            if digest.hexdigest() != sha256:
                raise StoreError(f"document content does not hash to {sha256}")
            await asyncio.to_thread(os.replace, temp_name, target)
            await asyncio.to_thread(_fsync_directory, target.parent)
        finally:
            if handle >= 0:
                os.close(handle)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)

    async def open_document_content(self, sha256: str) -> AsyncIterator[bytes]:
        path = self._content_path(sha256)
        try:
            stream = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise KeyError(sha256) from None
        try:
            while chunk := await asyncio.to_thread(stream.read, _READ_CHUNK):
                yield chunk
        finally:
            stream.close()

    async def get_document(self, document_id: str) -> DocumentRecord | None:
        def read(events: sqlite3.Connection, _: sqlite3.Connection) -> DocumentRecord | None:
            sql = "SELECT record FROM documents WHERE document_id = ?"
            row = events.execute(sql, (document_id,)).fetchone()
            return _document(row[0]) if row else None

        return await self._read(read)

    # --- events -----------------------------------------------------------------------------

    def begin_capture(
        self, document: DocumentRecord, *, atomic: bool = True
    ) -> SQLiteCaptureSession:
        return SQLiteCaptureSession(self, document, atomic=atomic)

    async def get_event(self, event_id_or_hash: str, visibility: Visibility) -> EventRecord | None:
        where = _Where()
        _visible(where, visibility)

        def read(events: sqlite3.Connection, _: sqlite3.Connection) -> EventRecord | None:
            for column in ("hash_id", "event_id"):
                # event_id is NULL where it equals hash_id: the first probe finds those.
                sql = f"{_SELECT_EVENT} WHERE e.{column} = ? AND ({where.sql()}) LIMIT 1"
                row = events.execute(sql, (event_id_or_hash, *where.params)).fetchone()
                if row:
                    return _event_record(row)
            return None

        return await self._read(read)

    async def query_events(
        self, query: EventQuery, visibility: Visibility, page: PageRequest
    ) -> Page:
        # The fingerprint (~50 us) is needed only to check a token or to make the next one:
        # most point look-ups (one page, MATCH_epc) need neither.
        cursor = PageCursor.decode(page.token, query.fingerprint()) if page.token else None
        served = cursor.served if cursor else 0
        size = page.per_page
        if query.event_count_limit is not None:
            size = min(size, query.event_count_limit - served)
        if size <= 0:
            return Page((), None)
        where = _where(query, visibility)
        column = "event_time" if query.sort_field == "eventTime" else "record_time"
        direction = "DESC" if query.descending else "ASC"

        def read(events: sqlite3.Connection, _: sqlite3.Connection) -> list[Any]:
            if cursor is None and query.max_event_count is not None:
                _check_count(events, where, query.max_event_count)
            terms, params = where.sql(), list(where.params)
            if cursor is not None:
                terms += f" AND (e.{column}, e.hash_id) {'<' if query.descending else '>'} (?, ?)"
                params += [cursor.sort_value, cursor.hash_id]
            sql = (
                f"{_SELECT_EVENT} WHERE {terms} "
                f"ORDER BY e.{column} {direction}, e.hash_id {direction} LIMIT ?"
            )
            return events.execute(sql, (*params, size + 1)).fetchall()

        rows = await self._read(read)
        records = tuple(_event_record(row) for row in rows[:size])
        more = len(rows) > size
        if query.event_count_limit is not None:
            more = more and served + size < query.event_count_limit
        if not more or not records:
            return Page(records, None)
        last = records[-1]
        sort_time = last.event_time if query.sort_field == "eventTime" else last.record_time
        next_cursor = PageCursor(
            query.fingerprint(), to_micros(sort_time), last.hash_id, served + size
        )
        return Page(records, next_cursor.encode())

    async def count_events(self) -> int:
        def read(events: sqlite3.Connection, _: sqlite3.Connection) -> int:
            return int(events.execute("SELECT count(*) FROM events").fetchone()[0])

        return await self._read(read)

    async def event_bodies(self, hash_ids: Sequence[str]) -> dict[str, bytes]:
        def read(events: sqlite3.Connection, _: sqlite3.Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            # Below SQLite's default limit of 999 bound parameters per statement.
            for start in range(0, len(hash_ids), 900):
                chunk = hash_ids[start : start + 900]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT hash_id, body FROM events WHERE hash_id IN ({marks})"  # noqa: S608
                found.update((h, bytes(body)) for h, body in events.execute(sql, chunk))
            return found

        return await self._read(read)

    async def event_records(self, hash_ids: Sequence[str]) -> dict[str, EventRecord]:
        def read(events: sqlite3.Connection, _: sqlite3.Connection) -> dict[str, EventRecord]:
            found: dict[str, EventRecord] = {}
            for chunk in _chunks(hash_ids, 900):  # below SQLite's 999 bound parameters
                sql = f"{_SELECT_RECORD} WHERE e.hash_id IN ({_marks(len(chunk))})"
                for row in events.execute(sql, chunk):
                    record = _event_record((*row, None))
                    found[record.hash_id] = record
            return found

        return await self._read(read)

    # --- capture jobs -----------------------------------------------------------------------

    async def put_capture_job(self, job: CaptureJob) -> None:
        def write(control: sqlite3.Connection) -> None:
            control.execute(
                "INSERT OR REPLACE INTO capture_jobs VALUES (?, ?, ?, ?)",
                (job.capture_id, job.partner_id, to_micros(job.created_at), _dump(job)),
            )

        await self._control(write)

    async def get_capture_job(self, capture_id: str) -> CaptureJob | None:
        def read(_: sqlite3.Connection, control: sqlite3.Connection) -> CaptureJob | None:
            sql = "SELECT record FROM capture_jobs WHERE capture_id = ?"
            row = control.execute(sql, (capture_id,)).fetchone()
            return _capture_job(row[0]) if row else None

        return await self._read(read)

    async def list_capture_jobs(
        self, partner_id: str | None = None, limit: int = 100
    ) -> Sequence[CaptureJob]:
        def read(_: sqlite3.Connection, control: sqlite3.Connection) -> list[CaptureJob]:
            where, params = ("WHERE partner_id = ?", [partner_id]) if partner_id else ("", [])
            sql = (
                f"SELECT record FROM capture_jobs {where} "  # noqa: S608
                "ORDER BY created_at DESC, capture_id DESC LIMIT ?"
            )
            return [_capture_job(row[0]) for row in control.execute(sql, (*params, limit))]

        return await self._read(read)

    # --- partners ---------------------------------------------------------------------------

    async def add_partner(self, partner: PartnerRecord) -> None:
        def write(control: sqlite3.Connection) -> None:
            try:
                control.execute(
                    "INSERT INTO partners VALUES (?, ?, ?)",
                    (partner.partner_id, partner.token_hash, _dump(partner)),
                )
            except sqlite3.IntegrityError as error:
                raise StoreError(f"partner exists: {partner.partner_id}") from error

        await self._control(write)

    async def get_partner(self, partner_id: str) -> PartnerRecord | None:
        return await self._partner_where("partner_id", partner_id)

    async def get_partner_by_token_hash(self, token_hash: str) -> PartnerRecord | None:
        return await self._partner_where("token_hash", token_hash)

    async def _partner_where(self, column: str, value: str) -> PartnerRecord | None:
        def read(_: sqlite3.Connection, control: sqlite3.Connection) -> PartnerRecord | None:
            row = control.execute(
                f"SELECT record FROM partners WHERE {column} = ?",  # noqa: S608
                (value,),
            ).fetchone()
            return _partner(row[0]) if row else None

        return await self._read(read)

    async def list_partners(self) -> Sequence[PartnerRecord]:
        def read(_: sqlite3.Connection, control: sqlite3.Connection) -> list[PartnerRecord]:
            rows = control.execute("SELECT record FROM partners ORDER BY partner_id")
            return [_partner(row[0]) for row in rows]

        return await self._read(read)

    async def revoke_partner(self, partner_id: str, at: datetime) -> bool:
        def write(control: sqlite3.Connection) -> bool:
            row = control.execute(
                "SELECT record FROM partners WHERE partner_id = ?", (partner_id,)
            ).fetchone()
            if row is None:
                return False
            partner = _partner(row[0])
            if partner.revoked_at is not None:
                return False
            state = json.loads(row[0])
            state["revoked_at"] = at.isoformat()
            control.execute(
                "UPDATE partners SET record = ? WHERE partner_id = ?",
                (json.dumps(state, separators=(",", ":")), partner_id),
            )
            return True

        return await self._control(write)


def _check_count(events: sqlite3.Connection, where: _Where, maximum: int) -> None:
    sql = f"SELECT count(*) FROM (SELECT 1 FROM events e WHERE {where.sql()} LIMIT ?)"  # noqa: S608
    found = events.execute(sql, (*where.params, maximum + 1)).fetchone()[0]
    if found > maximum:
        raise QueryTooLargeError(f"more than maxEventCount={maximum} events match the query")


def _insert_rows(
    connection: sqlite3.Connection, insert: str, rows: Sequence[tuple[Any, ...]], width: int
) -> None:
    """``insert`` (ending in VALUES) for every row, many rows per statement."""
    per = _EVENT_ROWS_PER_INSERT if width > 3 else _KEY_ROWS_PER_INSERT
    group = f"({_marks(width)})"
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        values = ",".join(itertools.repeat(group, len(chunk)))
        connection.execute(f"{insert} {values}", list(itertools.chain.from_iterable(chunk)))


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- capture sessions -----------------------------------------------------------------------


class SQLiteCaptureSession:
    """One capture: an IMMEDIATE transaction on the events file, held until commit/rollback.

    Without ``atomic`` each batch is its own transaction (``rollback`` drops only the batch in
    flight; earlier batches stay, as ``GS1-Capture-Error-Behaviour: proceed`` wants).
    """

    def __init__(self, store: SQLiteEventStore, document: DocumentRecord, *, atomic: bool) -> None:
        self._store = store
        self._document = document
        self._atomic = atomic
        self._open = False
        self._document_written = False

    async def __aenter__(self) -> Self:
        if self._atomic:
            await self._store.write_lock.acquire()
            try:
                await self._store.write(lambda connection: connection.execute("BEGIN IMMEDIATE"))
            except BaseException:
                self._store.write_lock.release()
                raise
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._open:
            await self.rollback()

    async def add_events(self, records: Sequence[EventRecord]) -> BatchResult:
        if not self._open:
            raise StoreError("add_events outside an open capture session")
        # Only this batch's hashes are remembered: earlier batches of the capture are already
        # in the events table, where the write transaction's own existence check sees them
        # (a set of every hash of a 1M-event capture would cost the server ~100 MB).
        seen: set[str] = set()
        fresh: list[EventRecord] = []
        duplicates: list[str] = []
        for record in records:
            if record.hash_id in seen:
                duplicates.append(record.hash_id)
            else:
                fresh.append(record)
                seen.add(record.hash_id)
        if self._atomic:
            inserted = await self._store.write(lambda connection: self._insert(connection, fresh))
        else:
            async with self._store.write_lock:
                inserted = await self._store.write(lambda c: self._insert_batch(c, fresh))
        stored = {record.hash_id for record in inserted}
        duplicates += [record.hash_id for record in fresh if record.hash_id not in stored]
        return BatchResult(tuple(record.hash_id for record in inserted), tuple(duplicates))

    def _insert_batch(
        self, connection: sqlite3.Connection, records: list[EventRecord]
    ) -> list[EventRecord]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            inserted = self._insert(connection, records)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return inserted

    def _insert(
        self, connection: sqlite3.Connection, records: list[EventRecord]
    ) -> list[EventRecord]:
        """Insert the records not yet stored; runs inside the caller's write transaction, so
        nobody else can insert between the existence check and the insert."""
        if not self._document_written:
            document = self._document
            connection.execute(
                "INSERT OR IGNORE INTO documents VALUES (?, ?, ?)",
                (document.document_id, document.sha256, _dump(document)),
            )
            self._document_written = True
        existing: set[str] = set()
        for chunk in _chunks([record.hash_id for record in records]):
            sql = f"SELECT hash_id FROM events WHERE hash_id IN ({_marks(len(chunk))})"  # noqa: S608
            existing.update(row[0] for row in connection.execute(sql, chunk))
        fresh = [record for record in records if record.hash_id not in existing]
        if not fresh:
            return []
        first = connection.execute("SELECT coalesce(max(rowid), 0) + 1 FROM events").fetchone()[0]
        sender = self._document.sender_partner_id
        every = self._store.every_event_id
        rows = [
            _event_row(first + n, record, sender, every_event_id=every)
            for n, record in enumerate(fresh)
        ]
        _insert_rows(connection, f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES", rows, 18)
        keys = [row for n, record in enumerate(fresh) for row in _key_rows(first + n, record)]
        _insert_rows(connection, "INSERT OR IGNORE INTO event_keys VALUES", keys, 3)
        return fresh

    async def commit(self) -> None:
        if not self._open:
            raise StoreError("commit outside an open capture session")
        if self._atomic:
            if not self._document_written:
                await self._store.write(lambda connection: self._insert(connection, []))
            await self._finish("COMMIT")
        else:
            if not self._document_written:
                await self.add_events(())
            self._open = False

    async def rollback(self) -> None:
        if not self._open:
            return
        if self._atomic:
            await self._finish("ROLLBACK")
        self._open = False

    async def _finish(self, statement: str) -> None:
        self._open = False
        try:
            await self._store.write(lambda connection: connection.execute(statement))
        finally:
            self._store.write_lock.release()
