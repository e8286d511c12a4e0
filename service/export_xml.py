"""Write an export's ``epcis.xml`` (EPCIS 1.2) from stored event bodies, in or out of process.

Turning each stored JSON body back into a model event and rendering it as XML is the longest
single step of a large export, and it needs nothing but the bodies and the document head. So
for large exports it runs in a child interpreter (``python -m service.export_xml``, importing
little beyond ``epcis``) while the service process proves ledger inclusion and writes the other
files; the bytes are the same either way, because both run :func:`write_epcis_xml`. The bodies
reach the child through a length-prefixed spool file next to the output, read as it goes.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import struct
import sys
from collections.abc import Iterable, Iterator
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
    head_file = path.with_name(path.name + ".head")
    try:
        await asyncio.to_thread(_write_inputs, spool, head_file, head, bodies)
        # A fresh interpreter (not multiprocessing): nothing of the caller's __main__ is re-run.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            str(path),
            str(head_file),
            str(spool),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, errors = await process.communicate()
        except BaseException:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        if process.returncode != 0:
            lines = errors.decode(errors="replace").strip().splitlines() or ["(no output)"]
            raise RuntimeError(f"writing epcis.xml failed: {lines[-1]}")
    finally:
        spool.unlink(missing_ok=True)
        head_file.unlink(missing_ok=True)


def _write_inputs(
    spool: Path, head_file: Path, head: DocumentHead, bodies: Iterable[bytes]
) -> None:
    head_file.write_bytes(pickle.dumps(head))
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


def _child(arguments: list[str]) -> None:
    path, head_file, spool = (Path(argument) for argument in arguments)
    # The head file was written by the parent a moment ago in its own work folder.
    head = pickle.loads(head_file.read_bytes())  # noqa: S301
    write_epcis_xml(path, head, _read_spool(spool))


if __name__ == "__main__":
    _child(sys.argv[1:])
