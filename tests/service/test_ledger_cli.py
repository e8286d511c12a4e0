"""``dscsa capture`` feeds the audit ledger; ``dscsa ledger verify`` finds edits behind its back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from tests.service.conftest import PHARMA_EXAMPLE

SHIPMENT = Path(__file__).resolve().parents[2] / "fixtures" / "epcis" / "dscsa-shipment-1.2.xml"


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("DSCSA_STORE", f"sqlite:///{database}")
    monkeypatch.setenv("DSCSA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DSCSA_KEY_PASSPHRASE", "a passphrase for the test key ring")
    return database


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().out


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    status, out = _run(capsys, "ledger", "verify", "--json")
    report: dict[str, Any] = json.loads(out)
    return status, report


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]) -> int:
    """Two documents captured from the command line and one signed checkpoint."""
    status, out = _run(capsys, "capture", str(PHARMA_EXAMPLE), str(SHIPMENT), "--json")
    assert status == 0, out
    events = sum(int(row["captured"]) for row in json.loads(out))
    status, out = _run(capsys, "ledger", "checkpoint")
    assert status == 0
    assert f"checkpoint: {events + 2} leaves" in out
    return events


def _events(database: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(database) as db:
        return [(h, bytes(b)) for h, b in db.execute("SELECT hash_id, body FROM events")]


def test_a_clean_store_verifies(capsys: pytest.CaptureFixture[str], captured: int) -> None:
    status, report = _verify(capsys)
    assert status == 0, report
    assert report["ok"] is True
    assert report["leaves"] == captured + 2
    assert report["checkpoints"] == 1
    assert report["findings"] == []
    status, out = _run(capsys, "ledger", "verify")
    assert status == 0
    assert "OK" in out


def test_an_edited_event_body_is_named(
    capsys: pytest.CaptureFixture[str], captured: int, environment: Path
) -> None:
    hash_id, body = _events(environment)[3]
    edited = body.replace(b'"eventTime":"', b'"eventTime":"1', 1)
    assert edited != body
    with sqlite3.connect(environment) as db:
        db.execute("UPDATE events SET body = ? WHERE hash_id = ?", (edited, hash_id))
    status, report = _verify(capsys)
    assert status == 1
    (finding,) = report["findings"]
    assert finding["problem"] == "changed"
    assert hash_id in finding["detail"]
    status, out = _run(capsys, "ledger", "verify")
    assert status == 1
    assert f"changed: event {hash_id} was altered" in out


def test_a_deleted_event_is_named(
    capsys: pytest.CaptureFixture[str], captured: int, environment: Path
) -> None:
    hash_id, _ = _events(environment)[0]
    with sqlite3.connect(environment) as db:
        db.execute("DELETE FROM events WHERE hash_id = ?", (hash_id,))
    status, report = _verify(capsys)
    assert status == 1
    problems = [(f["problem"], f["detail"]) for f in report["findings"]]
    assert problems == [("deleted", f"event {hash_id} is gone")]


def test_a_removed_ledger_leaf_breaks_the_checkpoint(
    capsys: pytest.CaptureFixture[str], captured: int, environment: Path
) -> None:
    with sqlite3.connect(environment) as db:
        db.execute("DELETE FROM ledger_leaves WHERE rowid = (SELECT max(rowid) FROM ledger_leaves)")
    status, report = _verify(capsys)
    assert status == 1
    assert {f["problem"] for f in report["findings"]} >= {"checkpoint-size"}


def test_capture_from_the_command_line_projects_state(
    capsys: pytest.CaptureFixture[str], captured: int
) -> None:
    status, out = _run(capsys, "trace", "urn:epc:id:sgtin:030001.0012345.1001", "--json")
    assert status == 0, out
    trace = json.loads(out)
    assert trace["events"][0]["biz_step"] == "commissioning"
