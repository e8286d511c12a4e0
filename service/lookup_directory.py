"""The lookup directory: which responder answers for a GTIN or a GS1 company prefix.

A JSON file (``{"entries": [...]}``), edited by hand or through the operator API, which
rewrites it atomically. Entries never hold secrets: ``credential`` is a reference,
``env:NAME`` (an environment variable) or ``file:/path`` (a file, e.g. a mounted secret),
read when a request is sent and never logged or returned by the API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from epcis.errors import InvalidDocumentError
from verification.ports import ResponderEndpoint

__all__ = [
    "CredentialError",
    "DirectoryEntry",
    "FileLookupDirectory",
    "resolve_credential",
]

_CREDENTIAL_SCHEMES = ("env:", "file:")


class CredentialError(InvalidDocumentError):
    """A credential reference that does not resolve (bad entry: 400 from the API)."""


class DirectoryEntry(BaseModel):
    """``key``: a 14-digit GTIN or a 6 to 12 digit company prefix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^\d{6,12}$|^\d{14}$")
    responder_id: str = Field(min_length=1)
    base_url: str = Field(pattern=r"^https?://\S+$")
    auth: Literal["none", "bearer", "basic", "header"] = "none"
    header: str | None = None
    credential: str | None = None

    @field_validator("credential")
    @classmethod
    def _is_reference(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_CREDENTIAL_SCHEMES):
            raise ValueError("credential must be a reference: env:NAME or file:/path")
        return value


def resolve_credential(reference: str, environ: Mapping[str, str]) -> str:
    scheme, _, name = reference.partition(":")
    if scheme == "env":
        value = environ.get(name)
        if value is None:
            raise CredentialError(f"environment variable {name} is not set")
        return value
    try:
        return Path(name).read_text().strip()
    except OSError as error:
        raise CredentialError(f"cannot read credential file {name}: {error.strerror}") from None


def _headers(entry: DirectoryEntry, environ: Mapping[str, str]) -> dict[str, str]:
    if entry.auth == "none" or entry.credential is None:
        return {}
    secret = resolve_credential(entry.credential, environ)
    if entry.auth == "bearer":
        return {"Authorization": f"Bearer {secret}"}
    if entry.auth == "basic":
        # The referenced value is "user:password".
        return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
    return {entry.header or "X-API-Key": secret}


class FileLookupDirectory:
    """Exact GTIN first, then the longest company prefix the GTIN starts with (after its
    indicator digit)."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None) -> None:
        self._path = path
        self._environ = os.environ if environ is None else environ
        self._entries: dict[str, DirectoryEntry] = {}
        self._lock = asyncio.Lock()

    def load(self) -> None:
        if not self._path.exists():
            self._entries = {}
            return
        try:
            raw = json.loads(self._path.read_text())
            entries = [DirectoryEntry.model_validate(item) for item in raw.get("entries", [])]
        except (ValueError, ValidationError, AttributeError) as error:
            raise InvalidDocumentError(f"lookup directory {self._path}: {error}") from None
        self._entries = {entry.key: entry for entry in entries}

    def entries(self) -> list[DirectoryEntry]:
        return sorted(self._entries.values(), key=lambda e: e.key)

    def find(self, gtin: str) -> DirectoryEntry | None:
        exact = self._entries.get(gtin)
        if exact is not None:
            return exact
        digits = gtin[1:]
        for length in range(12, 5, -1):
            found = self._entries.get(digits[:length])
            if found is not None:
                return found
        return None

    async def resolve(self, gtin: str) -> ResponderEndpoint | None:
        entry = self.find(gtin)
        if entry is None:
            return None
        return ResponderEndpoint(entry.responder_id, entry.base_url, _headers(entry, self._environ))

    async def put(self, entry: DirectoryEntry) -> None:
        async with self._lock:
            self._entries[entry.key] = entry
            await asyncio.to_thread(self._save)

    async def remove(self, key: str) -> bool:
        async with self._lock:
            if self._entries.pop(key, None) is None:
                return False
            await asyncio.to_thread(self._save)
            return True

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        document = {"entries": [e.model_dump(exclude_none=True) for e in self.entries()]}
        temporary = self._path.with_suffix(self._path.suffix + ".tmp")
        with temporary.open("w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self._path)
