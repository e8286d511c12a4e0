"""The integrated service on SQLite in a temporary folder, and the DSCSA scenario captured
into it through ``POST /capture`` (so the capture hooks project and ledger it), as a partner
system would send it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from service.app import create_app
from service.partners import add_partner
from service.settings import Settings
from service.state import STORE

__all__ = [
    "CASE",
    "GLN",
    "PACK",
    "PACK_GTIN",
    "SCENARIO",
    "build_app",
    "capture_scenario",
    "issue_token",
    "site_settings",
]

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "fixtures" / "scenarios" / "dscsa"
GLN = "0300011111116"  # GS1 Pharma, the manufacturer of the scenario
PACK = "urn:epc:id:sgtin:030001.0012345"
CASE = "urn:epc:id:sgtin:030001.1012345"
PACK_GTIN = "00300010123455"
# One instance holding the whole chain, then a receipt of a case never shipped there and a
# shipment without its transaction statement (two exceptions for the queue).
CHAIN = (
    "1-manufacturer-to-wholesaler.xml",
    "2-wholesaler-operations.xml",
    "4-pharmacy-operations.xml",
    "faulty/received-not-shipped-to-us.xml",
    "faulty/missing-transaction-statement.xml",
)


def site_settings(folder: Path) -> Settings:
    return Settings(
        store=SecretStr(f"sqlite:///{folder}/events.sqlite3"),
        data_dir=folder / "data",
        gln=GLN,
        company_prefixes=("030001",),
        shutdown_timeout=10,
    )


def build_app(settings: Settings) -> web.Application:
    """The app factory's own app: it wires the pages, stores, hooks and verification."""
    return create_app(settings)


async def _wait(session: aiohttp.ClientSession, location: str) -> dict[str, Any]:
    for _ in range(500):
        async with session.get(location) as response:
            assert response.status == 200, await response.text()
            job: dict[str, Any] = await response.json()
        if not job["running"]:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"capture job {location} still running")


async def capture_scenario(base_url: str, token: str, names: tuple[str, ...] = CHAIN) -> None:
    """Send each file to ``POST /capture`` with ``token`` and wait until it is stored."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url, headers=headers) as session:
        for name in names:
            async with session.post(
                "/capture",
                data=(SCENARIO / name).read_bytes(),
                headers={"Content-Type": "application/xml"},
            ) as response:
                assert response.status == 202, await response.text()
                location = response.headers["Location"]
            job = await _wait(session, location)
            assert job["success"], (name, job)


async def issue_token(app: web.Application, name: str, gln: str, role: str) -> str:
    issued = await add_partner(app[STORE], name, gln, role)  # type: ignore[arg-type]
    return issued.token
