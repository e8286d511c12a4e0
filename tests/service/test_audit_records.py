"""Exception resolutions and recalls are ledgered as they are stored, and verified later."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

from service.audit_records import LeafQueue, LedgeredVerificationLog
from service.commands.ledger import verify
from service.export_verification import verify_bundle
from service.handlers.verification import VERIFICATION
from service.settings import Settings
from service.sqlite_traceability_store import records_path
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

    # Recalls and resolutions live in the traceability store's records file.
    database = records_path(settings.sqlite_path.with_suffix(".traceability.sqlite"))
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


SCENARIO = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios" / "dscsa"
VRS_QUERY = {
    "exp": "280331",
    "linkType": "verificationService",
    "context": "dscsaSaleableReturn",
}


async def test_verifications_are_ledgered_in_groups_and_verified(
    responder_service: tuple[Client, dict[str, str]],
) -> None:
    client, operator = responder_service
    app = client.app
    settings: Settings = app[SETTINGS]
    job = await capture(
        client, (SCENARIO / "1-manufacturer-to-wholesaler.xml").read_bytes(), operator
    )
    assert job["success"], job
    replies = await asyncio.gather(
        *(
            client.get(
                f"/vrs/gtin/00300010123455/lot/LOT2026A/ser/{serial}",
                params=VRS_QUERY,
                headers=operator,
            )
            for serial in (1001, 1002, 1003, 4242)
        )
    )
    assert [r.status for r in replies] == [200] * 4
    log = app[VERIFICATION].log
    assert isinstance(log, LedgeredVerificationLog)
    await log.drain()
    logged = await (await client.get("/verifications", headers=operator)).json()
    entry_ids = [e["entry_id"] for e in logged["verifications"]]
    assert len(entry_ids) == 4
    for entry_id in entry_ids:
        status, body = await _leaves(client, operator, "verification", entry_id)
        assert status == 200, body
    report = await verify(settings)
    assert report.ok, report.findings

    log_file = settings.sqlite_path.with_suffix(".verifications.sqlite")
    with sqlite3.connect(log_file) as db:
        # What someone editing the file behind the service's back would do.
        db.execute("DROP TRIGGER verifications_no_update")
        (body,) = db.execute(
            "SELECT body FROM verifications WHERE entry_id = ?", (entry_ids[3],)
        ).fetchone()
        db.execute(
            "UPDATE verifications SET body = ? WHERE entry_id = ?",
            (body.replace('"verified":false', '"verified":true'), entry_ids[3]),
        )
    report = await verify(settings)
    assert [(f.problem, entry_ids[3] in f.detail) for f in report.findings] == [("changed", True)]


async def test_leaf_queue_groups_a_turn_and_what_arrives_during_an_append() -> None:
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def append(leaves: Any) -> None:
        calls.append([record_id for _, record_id, _ in leaves])
        if len(calls) == 1:
            await release.wait()

    queue = LeafQueue(append)
    for n in range(3):
        queue.add(("verification", f"a{n}", "0" * 64))
    await asyncio.sleep(0.01)
    queue.add(("verification", "b0", "0" * 64))  # while the first group is appended
    queue.add(("verification", "b1", "0" * 64))
    release.set()
    await queue.drain()
    assert calls == [["a0", "a1", "a2"], ["b0", "b1"]]


async def test_leaf_queue_lingers_to_group_records_of_later_turns() -> None:
    calls: list[list[str]] = []

    async def append(leaves: Any) -> None:
        calls.append([record_id for _, record_id, _ in leaves])

    queue = LeafQueue(append, linger=0.2)
    queue.add(("verification", "a0", "0" * 64))
    await asyncio.sleep(0.01)  # later turns of the loop, within the linger
    queue.add(("verification", "a1", "0" * 64))
    assert calls == []
    await queue.drain()
    assert calls == [["a0", "a1"]]


async def test_leaf_queue_goes_on_after_a_failed_append(caplog: Any) -> None:
    calls: list[int] = []

    async def append(leaves: Any) -> None:
        calls.append(len(leaves))
        if len(calls) == 1:
            raise OSError("disk full")

    queue = LeafQueue(append)
    queue.add(("recall", "r1", "0" * 64))
    await queue.drain()
    queue.add(("recall", "r2", "0" * 64))
    await queue.drain()
    assert calls == [1, 1]
    assert "could not ledger 1 records" in caplog.text


async def test_export_bundles_prove_the_verifications_and_resolutions_they_report(
    responder_service: tuple[Client, dict[str, str]], tmp_path: Path
) -> None:
    client, operator = responder_service
    app = client.app
    for document in (SCENARIO / "1-manufacturer-to-wholesaler.xml", FAULTY / "lot-mismatch.xml"):
        job = await capture(client, document.read_bytes(), operator)
        assert job["success"], job
    (exception,) = (await (await client.get("/exceptions", headers=operator)).json())["exceptions"]
    resolved = await client.post(
        f"/exceptions/{exception['exception_id']}/resolution",
        json={"note": "second label printed in error", "determination": "cleared"},
        headers=operator,
    )
    assert resolved.status == 201
    reply = await client.get(
        "/vrs/gtin/00300010123455/lot/LOT2026A/ser/1001", params=VRS_QUERY, headers=operator
    )
    assert (await reply.json())["data"]["verified"] is True
    log = app[VERIFICATION].log
    assert isinstance(log, LedgeredVerificationLog)
    await log.drain()
    (entry,) = (await (await client.get("/verifications", headers=operator)).json())[
        "verifications"
    ]

    request = {
        "requester_kind": "fda",
        "requester": "FDA",
        "reason": "investigation",
        "scope": {"kind": "lot", "gtin": "00300010123455", "lot": "LOT2026A"},
    }
    accepted = await client.post("/exports", json=request, headers=operator)
    location = accepted.headers["Location"]
    for _ in range(500):
        done = await (await client.get(location, headers=operator)).json()
        if done["status"] in ("ready", "failed"):
            break
        await asyncio.sleep(0.02)
    assert done["status"] == "ready", done
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(await (await client.get(done["bundle"], headers=operator)).read())
    assert verify_bundle(bundle).ok
    with zipfile.ZipFile(bundle) as members:
        ledger = json.loads(members.read("manifest.json"))["ledger"]
    proven = {(kind, record_id) for kind, record_id, *_ in ledger["records"]}
    assert ("verification", entry["entry_id"]) in proven
    assert ("exception_resolution", f"{exception['exception_id']}/0") in proven
    assert ledger["missing"] == []
    assert ledger["mismatched"] == []
