"""Write an export's ``epcis.xml`` (EPCIS 1.2) from stored event bodies, in or out of process.

Turning each stored JSON body back into a model event and rendering it as XML is the longest
single step of a large export, and it needs nothing but the bodies and the document head. So
for large exports it runs in a separate process (spawned, importing only ``epcis``) while the
service process proves ledger inclusion and writes the other files; the bytes are the same
either way, because both run :func:`write_epcis_xml`. Bodies reach the child through a
length-prefixed spool file next to the output, so neither process holds them twice.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import struct
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from epcis.jsonld_reader import event_from_jsonld
from epcis.model import DocumentHead, Event
from epcis.xml_writer import write_xml

__all__ = ["CHILD_PROCESS_MIN_EVENTS", "write_epcis_xml", "write_epcis_xml_async"]

# Below this many events a child process (about half a second to start and import) costs more
# than it saves.
CHILD_PROCESS_MIN_EVENTS = 5000
_LENGTH = struct.Struct(">I")


def write_epcis_xml(path: Path, head: DocumentHead, bodies: Iterable[bytes]) -> None:
    """EPCIS 1.2 XML of ``head`` and the events whose stored JSON bodies are ``bodies``."""
    with path.open("wb") as stream:
        write_xml(head, _models(bodies), stream, version="1.2")


def _models(bodies: Iterable[bytes]) -> Iterator[Event]:
    for body in bodies:
        yield event_from_jsonld(json.loads(body), {})


async def write_epcis_xml_async(
    path: Path, head: DocumentHead, bodies: list[bytes], *, min_events: int | None = None
) -> None:
    """:func:`write_epcis_xml` off the event loop: a thread for small exports, else a process."""
    threshold = CHILD_PROCESS_MIN_EVENTS if min_events is None else min_events
    if len(bodies) < threshold:
        await asyncio.to_thread(write_epcis_xml, path, head, bodies)
        return
    spool = path.with_name(path.name + ".bodies")
    await asyncio.to_thread(_write_spool, spool, bodies)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    finished = False
    try:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, _write_from_spool, str(path), head, str(spool))
        finished = True
    finally:
        # After a failure or cancellation the loop must not wait for the child.
        pool.shutdown(wait=finished, cancel_futures=True)
        spool.unlink(missing_ok=True)


def _write_spool(spool: Path, bodies: Iterable[bytes]) -> None:
    with spool.open("wb") as out:
        for body in bodies:
            out.write(_LENGTH.pack(len(body)))
            out.write(body)


def _read_spool(spool: Path) -> Iterator[bytes]:
    with spool.open("rb") as source:
        while header := source.read(_LENGTH.size):
            (size,) = _LENGTH.unpack(header)
            body = source.read(size)
            if len(body) != size:
                raise ValueError(f"{spool} is truncated")
            yield body


def _write_from_spool(path: str, head: DocumentHead, spool: str) -> None:
    write_epcis_xml(Path(path), head, _read_spool(Path(spool)))
