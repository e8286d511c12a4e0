"""``dscsa verify`` and ``dscsa return`` on real SQLite stores named by DSCSA_* variables."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from service.app import open_store
from service.cli import main
from service.dscsa_checks import on_events_committed
from service.settings import Settings
from service.traceability_store import open_traceability_store
from service.verification_log import LogFilter, open_verification_log
from tests.service.dscsa_scenario import ITEM_GTIN, facts, header, scenario_events
from tests.service.test_verification_http import MANUFACTURER_GLN, WHOLESALER_GLN, load_scenario


@pytest.fixture
async def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    env = {
        "DSCSA_STORE": f"sqlite:///{tmp_path}/events.sqlite3",
        "DSCSA_DATA_DIR": str(tmp_path / "data"),
        "DSCSA_GLN": MANUFACTURER_GLN,
        "DSCSA_COMPANY_PREFIXES": "030001",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_environ()
    store = open_traceability_store(settings)
    await store.open()
    events = scenario_events()
    pairs = [(f.hash_id, e) for f, e in zip(facts(events), events, strict=True)]
    await on_events_committed(store, pairs, header=header(), document_id="d1")
    await store.close()
    events_store = open_store(settings)
    await events_store.open()
    await load_scenario(events_store, tmp_path)
    await events_store.close()
    return settings


async def _log_size(settings: Settings) -> int:
    log = open_verification_log(settings)
    await log.open()
    try:
        return len(await log.query(LogFilter()))
    finally:
        await log.close()


async def test_verify_our_gtin_locally(
    environment: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command calls asyncio.run, which needs a thread without a running loop.
    status = await asyncio.to_thread(
        main, ["verify", f"(01){ITEM_GTIN}(21)12(10)L1(17)270630", "--json"]
    )
    body = json.loads(capsys.readouterr().out)
    assert status == 0
    assert body["data"] == {"verified": True}
    assert body["responderGLN"] == MANUFACTURER_GLN
    assert await _log_size(environment) == 1


async def test_verify_digital_link_of_a_dispensed_package(
    environment: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    link = f"https://id.gs1.org/01/{ITEM_GTIN}/21/11?10=L1&17=270630"
    status = await asyncio.to_thread(main, ["verify", link])
    assert status == 1
    assert "NOT verified Not_for_re-distribution" in capsys.readouterr().out


async def test_verify_foreign_gtin_without_directory_entry(
    environment: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await asyncio.to_thread(main, ["verify", "(01)00614141000036(21)1(10)A(17)270630"])
    assert status == 2
    assert "no responder" in capsys.readouterr().err


async def test_return_restocks_a_clean_package(
    environment: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = f"01{ITEM_GTIN}2112\x1d10L1\x1d17270630"
    status = await asyncio.to_thread(main, ["return", scan, "--from", WHOLESALER_GLN, "--json"])
    body = json.loads(capsys.readouterr().out)
    assert (status, body["disposition"]) == (0, "restocked"), body
    assert body["eventID"].startswith("ni:///sha-256;")
