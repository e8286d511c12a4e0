"""``dscsa trace`` on a traceability store filled through the capture hook."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from service.commands import traceability
from service.dscsa_checks import on_events_committed
from service.settings import Settings
from service.traceability_store import open_traceability_store
from tests.service.dscsa_scenario import CASES, ITEMS, PALLET, facts, header, scenario_events


@pytest.fixture
async def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCSA_STORE", f"sqlite:///{tmp_path}/events.sqlite3")
    monkeypatch.setenv("DSCSA_DATA_DIR", str(tmp_path))
    store = open_traceability_store(Settings.from_environ())
    await store.open()
    events = scenario_events()
    pairs = [(f.hash_id, e) for f, e in zip(facts(events), events, strict=True)]
    await on_events_committed(store, pairs, header=header(), document_id="d1")
    await store.close()


def _run(*argv: str) -> int:
    # Only this module's subcommands: the whole CLI imports every command group.
    parser = argparse.ArgumentParser(prog="dscsa")
    traceability.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


@pytest.mark.usefixtures("environment")
def test_trace_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("trace", ITEMS[2], "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "packed"
    assert body["state"]["parent"] == CASES[1]


@pytest.mark.usefixtures("environment")
def test_trace_text_names_containers(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("trace", ITEMS[0]) == 0
    out = capsys.readouterr().out
    assert f"via {CASES[0]} > {PALLET}" in out
    assert "GS1 Pharma -> GS1 Drug Distributor" in out


@pytest.mark.usefixtures("environment")
def test_trace_unknown_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("trace", "urn:epc:id:sgtin:030001.0012345.404") == 1
    assert "no event names" in capsys.readouterr().err


@pytest.fixture
async def recalled(environment: None) -> None:
    from datetime import UTC, datetime

    from service.traceability_store import RecallRecord

    store = open_traceability_store(Settings.from_environ())
    await store.open()
    at = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    await store.add_recall(RecallRecord("r1", at, "qa-lead", "mislabelled", serials=(ITEMS[2],)))
    await store.close()


@pytest.mark.usefixtures("recalled")
def test_trace_shows_the_recall_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("trace", ITEMS[2]) == 0
    out = capsys.readouterr().out
    assert "status recalled" in out
    assert "recalled 2026-03-05T08:00:00+00:00 by qa-lead (listed serials): mislabelled" in out
    assert _run("trace", ITEMS[2], "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["recalls"][0]["reason"] == "mislabelled"
    assert body["recalls"][0]["scope"] == "serials"
