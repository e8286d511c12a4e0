"""Fixtures for the HTTP service tests: the real app on a real SQLite store in tmp_path."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from service.app import create_app
from service.partners import add_partner
from service.settings import Settings
from service.state import STORE
from service.store import PartnerRole

ROOT = Path(__file__).resolve().parents[2]
PARTNER_FIXTURES = ROOT / "fixtures" / "partners"
# The project's own DSCSA shipment (SBDH, master data, 7 events: 8 packs and 2 cases of lot
# LOT2026A packed onto a pallet and shipped), so these tests run in a clone without ../shared.
PHARMA_EXAMPLE = ROOT / "fixtures" / "scenarios" / "dscsa" / "1-manufacturer-to-wholesaler.xml"
# Its parties, those of the GS1 US pharma example (sender and receiver of its SBDH).
MANUFACTURER_GLN = "0300011111116"
WHOLESALER_GLN = "0399999999991"
STRANGER_GLN = "0614141000005"

Client = TestClient[Any, Any]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def pharma_example() -> bytes:
    return PHARMA_EXAMPLE.read_bytes()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        store=SecretStr(f"sqlite:///{tmp_path}/events.sqlite3"),
        data_dir=tmp_path / "data",
        shutdown_timeout=10,
        capture_file_size_limit=256 * 1024,
    )


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, settings: Settings) -> Client:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def responder_service(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> tuple[Client, dict[str, str]]:
    """The real app run by the scenario's manufacturer (its GLN and company prefix, so /vrs
    answers for its products), and its operator's headers."""
    settings = Settings(
        store=SecretStr(f"sqlite:///{tmp_path}/events.sqlite3"),
        data_dir=tmp_path / "data",
        gln=MANUFACTURER_GLN,
        company_prefixes=("030001",),
        shutdown_timeout=5,
    )
    client = await aiohttp_client(create_app(settings))
    return client, bearer(settings.operator_token_path.read_text().strip())


@pytest.fixture
def operator(client: Client, settings: Settings) -> dict[str, str]:
    """The operator token the first start wrote to the data directory."""
    return bearer(settings.operator_token_path.read_text().strip())


async def _partner(client: Client, name: str, gln: str, role: PartnerRole) -> dict[str, str]:
    issued = await add_partner(client.app[STORE], name, gln, role)
    return bearer(issued.token)


@pytest.fixture
async def manufacturer(client: Client) -> dict[str, str]:
    return await _partner(client, "Manufacturer", MANUFACTURER_GLN, "partner")


@pytest.fixture
async def wholesaler(client: Client) -> dict[str, str]:
    return await _partner(client, "Wholesaler", WHOLESALER_GLN, "partner")


@pytest.fixture
async def stranger(client: Client) -> dict[str, str]:
    return await _partner(client, "Stranger", STRANGER_GLN, "partner")


@pytest.fixture
async def auditor(client: Client) -> dict[str, str]:
    return await _partner(client, "Auditor", STRANGER_GLN, "auditor")


async def wait_for_job(client: Client, location: str, headers: dict[str, str]) -> dict[str, Any]:
    """Poll a capture job until it has finished (at most a few seconds)."""
    for _ in range(200):
        response = await client.get(location, headers=headers)
        assert response.status == 200
        job: dict[str, Any] = await response.json()
        if not job["running"]:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"capture job {location} still running")


async def capture(
    client: Client, body: bytes, headers: dict[str, str], **extra: str
) -> dict[str, Any]:
    """POST /capture and wait for the job; returns the finished job."""
    response = await client.post(
        "/capture", data=body, headers={**headers, "Content-Type": "application/xml", **extra}
    )
    assert response.status == 202, await response.text()
    return await wait_for_job(client, response.headers["Location"], headers)
