"""Large XML captures are answered 202 and checked against our schema by the worker while the
job reads them; nothing of a refused document is stored, in either error behaviour."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

import service.schema_check
from epcis.errors import Problem
from service.app import create_app
from service.audit import LEDGER
from service.cli import main
from service.commands.serve import _warm_schema_check
from service.handlers.capture import SCHEMA_CHECK
from service.schema_check import SchemaChecker
from service.settings import Settings
from service.state import STORE
from tests.service.conftest import Client, bearer, capture, wait_for_job
from tests.service.large_documents import ROOT, shipment_with_commissionings

# Above the lowered threshold below, under the test settings' 256 KB size limit.
EXTRA_EVENTS = 200
TEST_THRESHOLD = 16 * 1024
JSONLD = (ROOT / "fixtures" / "epcis" / "dscsa-shipment.jsonld").read_bytes()
XML = {"Content-Type": "application/xml"}
PROCEED = {"GS1-Capture-Error-Behaviour": "proceed"}


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources the worker was asked to check; every checker defers above 16 KB."""
    monkeypatch.setattr(service.schema_check, "DEFER_ABOVE_BYTES", TEST_THRESHOLD)
    asked: list[str] = []
    original = SchemaChecker.problems

    async def problems(self: SchemaChecker, path: Path | str, source: str | None) -> list[Problem]:
        asked.append(str(source))
        return await original(self, path, source)

    monkeypatch.setattr(SchemaChecker, "problems", problems)
    return asked


@pytest.fixture
def wrong_order() -> bytes:
    document = shipment_with_commissionings(EXTRA_EVENTS, wrong_order_at=EXTRA_EVENTS - 10)
    assert len(document) > TEST_THRESHOLD
    return document


def _line_of(document: bytes, marker: bytes) -> int:
    return document[: document.index(marker)].count(b"\n") + 1


async def _refused_job(client: Client, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/capture", data=body, headers={**headers, **XML})
    assert response.status == 202, await response.text()
    return await wait_for_job(client, response.headers["Location"], headers)


@pytest.mark.parametrize("behaviour", ["rollback", "proceed"])
async def test_a_large_invalid_document_is_accepted_then_refused_whole(
    checks: list[str],
    client: Client,
    operator: dict[str, str],
    wrong_order: bytes,
    behaviour: str,
) -> None:
    ledger_size = client.app[LEDGER].size
    headers = {**operator, "GS1-Capture-Error-Behaviour": behaviour}
    job = await _refused_job(client, wrong_order, headers)
    assert checks == ["body"]
    assert job["success"] is False
    assert (job["captured"], job["duplicates"], job["rejected"]) == (0, 0, 0)
    (error,) = job["errors"]
    assert error["type"] == "epcisException:ValidationException"
    assert error["status"] == 400
    assert "does not conform to the EPCIS 1.2 schema" in error["detail"]
    line = _line_of(wrong_order, b"<action>ADD</action><epcList>")
    assert f"body:{line}: Element 'action'" in error["detail"]
    assert f"ObjectEvent[{EXTRA_EVENTS - 8}]/action" in error["detail"]
    assert await client.app[STORE].count_events() == 0
    assert client.app[LEDGER].size == ledger_size  # the post-commit hooks never ran


async def test_the_schema_problem_wins_over_the_reader_error_it_causes(
    checks: list[str], client: Client, operator: dict[str, str]
) -> None:
    document = shipment_with_commissionings(EXTRA_EVENTS, no_action_at=5)
    job = await _refused_job(client, document, operator)
    (error,) = job["errors"]
    assert "schema" in error["detail"]
    assert "Expected is ( action )" in error["detail"]
    assert "ObjectEvent[7]/bizStep" in error["detail"]
    assert await client.app[STORE].count_events() == 0
    job = await _refused_job(client, document, {**operator, **PROCEED})
    (error,) = job["errors"]
    assert "schema" in error["detail"]
    assert await client.app[STORE].count_events() == 0


@pytest.mark.parametrize("behaviour", ["rollback", "proceed"])
async def test_a_large_valid_document_captures_the_same_events_as_a_checked_one(
    checks: list[str], client: Client, operator: dict[str, str], behaviour: str
) -> None:
    document = shipment_with_commissionings(EXTRA_EVENTS)
    headers = {**operator, "GS1-Capture-Error-Behaviour": behaviour}
    ledger_size = client.app[LEDGER].size
    job = await capture(client, document, headers)
    assert checks == ["body"]
    assert client.app[LEDGER].size > ledger_size  # hooks ran once the events were durable
    assert (job["success"], job["captured"], job["duplicates"]) == (True, EXTRA_EVENTS + 3, 0)
    assert await client.app[STORE].count_events() == EXTRA_EVENTS + 3
    # The synchronous path stores exactly these events: all of them are duplicates now.
    client.app[SCHEMA_CHECK].defer_above = len(document)
    again = await capture(client, document, headers)
    assert checks == ["body"]
    assert (again["success"], again["captured"], again["duplicates"]) == (True, 0, EXTRA_EVENTS + 3)


async def test_small_and_json_ld_documents_are_checked_before_the_202(
    checks: list[str], client: Client, operator: dict[str, str]
) -> None:
    small = shipment_with_commissionings(2, wrong_order_at=1)
    assert len(small) < TEST_THRESHOLD
    response = await client.post("/capture", data=small, headers={**operator, **XML})
    assert response.status == 400
    problem = await response.json()
    assert problem["line"] == _line_of(small, b"<action>ADD</action><epcList>")
    padded = JSONLD.replace(b"{", b"{" + b" " * TEST_THRESHOLD, 1)
    job = await capture(client, padded, operator)
    assert job["success"] is True
    assert checks == []


async def test_strict_mode_checks_a_large_document_before_the_202(
    aiohttp_client: AiohttpClient, settings: Settings, checks: list[str], wrong_order: bytes
) -> None:
    strict = await aiohttp_client(
        create_app(settings.model_copy(update={"dscsa_checks": "strict"}))
    )
    token = settings.operator_token_path.read_text().strip()
    response = await strict.post("/capture", data=wrong_order, headers={**bearer(token), **XML})
    assert response.status == 400
    assert (await response.json())["problems"]
    assert checks == []
    assert await strict.app[STORE].count_events() == 0


async def test_a_worker_dying_twice_fails_the_job_with_a_server_error(
    checks: list[str],
    monkeypatch: pytest.MonkeyPatch,
    client: Client,
    operator: dict[str, str],
) -> None:
    monkeypatch.setattr(service.schema_check, "_warm_worker", os.abort)
    document = shipment_with_commissionings(EXTRA_EVENTS)
    job = await _refused_job(client, document, operator)
    (error,) = job["errors"]
    assert error["status"] == 500
    assert "died twice" in error["detail"]
    assert await client.app[STORE].count_events() == 0


# --- dscsa capture ------------------------------------------------------------------------------


@pytest.fixture
def cli_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCSA_STORE", f"sqlite:///{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("DSCSA_DATA_DIR", str(tmp_path / "data"))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    status = main(["capture", "--json", *argv])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("proceed", [(), ("--proceed",)])
def test_dscsa_capture_refuses_a_large_invalid_file_and_stores_nothing(
    cli_environment: None,
    checks: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    wrong_order: bytes,
    proceed: tuple[str, ...],
) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(wrong_order)
    valid = tmp_path / "valid.xml"
    valid.write_bytes(shipment_with_commissionings(EXTRA_EVENTS))
    status, rows = _cli(capsys, *proceed, str(broken))
    assert status == 1
    assert checks == [str(broken)]
    (row,) = rows
    assert (row["success"], row["captured"], row["rejected"]) == (False, 0, 0)
    line = _line_of(wrong_order, b"<action>ADD</action><epcList>")
    assert f"{broken}:{line}: Element 'action'" in row["errors"][0]
    # Nothing of the refused file was stored: the valid one, sharing all but one event's
    # serials, is captured whole.
    status, rows = _cli(capsys, *proceed, str(valid))
    assert status == 0
    assert (rows[0]["captured"], rows[0]["duplicates"]) == (EXTRA_EVENTS + 3, 0)


# --- dscsa serve ----------------------------------------------------------------------------------


async def test_dscsa_serve_warms_the_worker_at_start_up(
    aiohttp_client: AiohttpClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)
    app.on_startup.append(_warm_schema_check)
    with caplog.at_level(logging.INFO, logger="service.commands.serve"):
        client = await aiohttp_client(app)
    (ready,) = [r.getMessage() for r in caplog.records if "schema check worker" in r.message]
    pid = int(ready.rsplit("pid ", 1)[1].rstrip(")"))
    assert pid != os.getpid()
    assert await client.app[SCHEMA_CHECK].warm() == pid  # the same worker, already running
    await client.close()
    with pytest.raises(ProcessLookupError):  # stopped with the app
        os.kill(pid, 0)
