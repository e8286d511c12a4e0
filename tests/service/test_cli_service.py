"""``dscsa partners`` and ``dscsa capture`` through the real CLI on a SQLite store in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from service.partners import hash_token
from tests.service.conftest import MANUFACTURER_GLN, PARTNER_FIXTURES, PHARMA_EXAMPLE


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCSA_STORE", f"sqlite:///{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("DSCSA_DATA_DIR", str(tmp_path / "data"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_partners_add_list_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(
        capsys, "partners", "add", "--name", "Manufacturer", "--gln", MANUFACTURER_GLN
    )
    assert status == 0
    token = out.strip()
    assert len(token) >= 40
    assert "shown only this once" in err
    status, out, _ = _run(capsys, "partners", "list", "--json")
    (row,) = json.loads(out)
    assert (row["gln"], row["role"], row["revokedAt"]) == (MANUFACTURER_GLN, "partner", None)
    assert token not in out
    assert hash_token(token) not in out
    assert _run(capsys, "partners", "revoke", row["partnerID"])[0] == 0
    (row,) = json.loads(_run(capsys, "partners", "list", "--json")[1])
    assert row["revokedAt"] is not None
    assert _run(capsys, "partners", "revoke", row["partnerID"])[0] == 1


def test_partners_add_refuses_a_bad_gln(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _run(capsys, "partners", "add", "--name", "X", "--gln", "123")
    assert status == 2
    assert "13 digits" in err


def test_capture_prints_a_summary_and_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "capture", str(PHARMA_EXAMPLE), "--json")
    assert status == 0
    (first,) = json.loads(out)
    assert (first["captured"], first["duplicates"], first["rejected"]) == (7, 0, 0)
    status, out, _ = _run(capsys, "capture", str(PHARMA_EXAMPLE))
    assert status == 0
    assert "captured 0, duplicates 7, rejected 0" in out


def test_capture_reports_rejected_events(capsys: pytest.CaptureFixture[str]) -> None:
    bad = PARTNER_FIXTURES / "shipment_with_bad_event.xml"
    status, out, _ = _run(capsys, "capture", str(bad), "--json")
    assert status == 1
    (row,) = json.loads(out)
    assert row["captured"] == 0
    assert row["rejected"] >= 1
    assert row["errors"]
    status, out, _ = _run(capsys, "capture", "--proceed", str(bad), "--json")
    (row,) = json.loads(out)
    assert (row["captured"], row["success"]) == (2, False)
