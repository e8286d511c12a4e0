"""Exception resolutions and recalls are ledgered as they are stored, and verified later."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from service.commands.ledger import verify
from service.settings import Settings
from service.state import SETTINGS
from tests.service.conftest import Client, capture

FAULTY = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios" / "dscsa" / "faulty"


async def _leaves(client: Client, operator: dict[str, str], kind: str, record_id: str) -> Any:
    response = await client.get(
        "/ledger/inclusion", params={"kind": kind, "record": record_id}, headers=operator
    )
    return response.status, await response.json()


async def _resolved_and_recalled(client: Client, operator: dict[str, str]) -> tuple[str, str]:
    job = await capture(client, (FAULTY / "never-commissioned-serial.xml").read_bytes(), operator)
    assert job["success"], job
    listed = await (await client.get("/exceptions", headers=operator)).json()
    exception_id = listed["exceptions"][0]["exception_id"]
    for note in ("looked at it", "supplier confirmed the lot"):
        response = await client.post(
            f"/exceptions/{exception_id}/resolution",
            json={"note": note, "determination": "cleared"} if note[0] == "s" else {"note": note},
            headers=operator,
        )
        assert response.status == 201, await response.text()
    response = await client.post(
        "/recalls",
        json={"gtin": "00300010123455", "lot": "LOT2026A", "reason": "label"},
        headers=operator,
    )
    assert response.status in (200, 201), await response.text()
    return exception_id, (await response.json())["recall_id"]


async def test_resolutions_and_recalls_get_leaves_and_proofs(
    client: Client, operator: dict[str, str]
) -> None:
    exception_id, recall_id = await _resolved_and_recalled(client, operator)
    indexes = []
    for kind, record_id in (
        ("exception_resolution", f"{exception_id}/0"),
        ("exception_resolution", f"{exception_id}/1"),
        ("recall", recall_id),
    ):
        status, body = await _leaves(client, operator, kind, record_id)
        assert status == 200, body
        assert (body["kind"], body["record"]) == (kind, record_id)
        assert len(body["digest"]) == 64
        indexes.append(body["leafIndex"])
    assert indexes == sorted(indexes)  # ledgered in the order they were stored
    status, _ = await _leaves(client, operator, "exception_resolution", f"{exception_id}/2")
    assert status == 404


async def test_ledger_verify_names_an_edited_recall_and_a_deleted_resolution(
    client: Client, operator: dict[str, str]
) -> None:
    exception_id, recall_id = await _resolved_and_recalled(client, operator)
    settings: Settings = client.app[SETTINGS]
    report = await verify(settings)
    assert report.ok, report.findings
    kinds = {entry async for entry in _kinds(settings)}
    assert {"exception_resolution", "recall"} <= kinds

    database = settings.sqlite_path.with_suffix(".traceability.sqlite")
    with sqlite3.connect(database) as db:
        (body,) = db.execute(
            "SELECT body FROM trace_recalls WHERE recall_id = ?", (recall_id,)
        ).fetchone()
        edited = json.loads(body) | {"reason": "nothing to see"}
        db.execute(
            "UPDATE trace_recalls SET body = ? WHERE recall_id = ?", (json.dumps(edited), recall_id)
        )
        db.execute(
            "DELETE FROM trace_resolutions WHERE rowid = (SELECT max(rowid) FROM trace_resolutions"
            " WHERE exception_id = ?)",
            (exception_id,),
        )
    report = await verify(settings)
    assert not report.ok
    found = {(f.problem, f.detail) for f in report.findings}
    assert any(p == "changed" and recall_id in d for p, d in found), found
    assert any(p == "deleted" and f"{exception_id}/1" in d for p, d in found), found


async def _kinds(settings: Settings) -> Any:
    with sqlite3.connect(settings.sqlite_path) as db:
        for (kind,) in db.execute("SELECT DISTINCT kind FROM ledger_leaves"):
            yield kind
