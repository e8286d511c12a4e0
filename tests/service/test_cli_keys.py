"""``dscsa keys`` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from service.keys import load_public_key


@pytest.fixture
def keys_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DSCSA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DSCSA_KEY_PASSPHRASE", "test passphrase")
    return tmp_path / "keys"


def test_generate_rotate_list_export(keys_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate"]) == 0
    first = capsys.readouterr().out.split()[0]
    assert main(["keys", "rotate"]) == 0
    second = capsys.readouterr().out.split()[0]
    assert main(["keys", "list", "--json"]) == 0
    listed = {k["key_id"]: k["status"] for k in json.loads(capsys.readouterr().out)}
    assert listed == {first: "retired", second: "active"}
    assert main(["keys", "export-public", first]) == 0
    assert load_public_key(capsys.readouterr().out.encode())


def test_missing_passphrase_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DSCSA_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("DSCSA_KEY_PASSPHRASE_FILE", raising=False)
    assert main(["keys", "--keys-dir", str(tmp_path), "generate"]) == 1
    assert "DSCSA_KEY_PASSPHRASE" in capsys.readouterr().err
